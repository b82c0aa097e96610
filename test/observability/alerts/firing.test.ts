import { test } from 'tap'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { eventually, requireProgram } from '../../helpers/external'
import { startPrometheus } from '../../helpers/prometheus'
import { observed } from '../metrics/fixtures'
import { alertNames, RULES } from './fixtures'

interface Alert {
  labels: Record<string, string>
  annotations: Record<string, string>
  state: 'pending' | 'firing'
}

interface Rule {
  name: string
  type: string
  state: string
  duration: number
  lastEvaluation: string
}

/**
 * The shipped rules with every `for:` cut to one second. The `for:` of a rule
 * cannot be set from outside, and the shipped ones (a minute for LbTargetDown,
 * to ride out a first ejection) belong in production; promtool's unit tests
 * check them to the minute. Here Prometheus runs the expressions, labels and
 * annotations exactly as shipped, on a test's clock.
 */
function shortened (rules: string): string {
  return rules.replace(/^(\s+for: )\S+$/gm, '$11s')
}

test('a real Prometheus with the shipped rules fires LbTargetDown for a stopped upstream, and clears it when it is back', async (t) => {
  const prometheus = requireProgram(t, 'prometheus', 'Prometheus')
  if (prometheus === null) return
  const rules = await readFile(RULES, 'utf8')
  const fast = shortened(rules)
  const changed = rules.split('\n').filter((line, i) => line !== fast.split('\n')[i])
  t.ok(changed.length > 0 && changed.every((line) => /^\s+for: \S+$/.test(line)), `the copy differs in its for: lines only (${changed.length})`)

  const o = await observed(t, ['a', 'b', 'c'], {
    healthCheck: { path: '/health', interval: 50, jitter: 0, timeout: 500, unhealthyThreshold: 1, healthyThreshold: 1 }
  })
  const { ups, gw, client } = o
  const server = await startPrometheus(t, prometheus, client, {
    target: gw.url.replace('http://', ''),
    rules: async (dir) => {
      const path = join(dir, 'alerts.yml')
      await writeFile(path, fast)
      return [path]
    }
  })
  const alerts = async (): Promise<Alert[]> => (await server.get<{ alerts: Alert[] }>('/api/v1/alerts')).alerts
  const firing = async (): Promise<Alert[]> => (await alerts()).filter((a) => a.state === 'firing')
  const targetDown = async (): Promise<Rule> => {
    const { groups } = await server.get<{ groups: Array<{ rules: Rule[] }> }>('/api/v1/rules')
    const rule = groups.flatMap((g) => g.rules).find((r) => r.name === 'LbTargetDown')
    if (rule === undefined) throw new Error('LbTargetDown is not loaded')
    return rule
  }

  try {
    const loaded = (await server.get<{ groups: Array<{ rules: Rule[] }> }>('/api/v1/rules')).groups.flatMap((g) => g.rules)
    t.same(loaded.map((r) => r.name), alertNames(rules), 'Prometheus loaded every alert')
    t.equal((await targetDown()).duration, 1, 'LbTargetDown waits 1 s in the copy')

    // All three healthy in Prometheus; then two evaluations after that, time for a wrong alert to go from pending to firing.
    await eventually(async () => server.query('lb_target_healthy{pool="main"} == 1'), (r) => r.length === 3, 10_000, 'three healthy targets scraped')
    const seenHealthy = Date.now()
    const quiet = await eventually(targetDown, (r) => Date.parse(r.lastEvaluation) > seenHealthy + 2000, 10_000, 'two evaluations with every target healthy')
    t.equal(quiet.state, 'inactive', 'LbTargetDown is inactive while every target is healthy')
    t.same(await alerts(), [], 'and no alert is pending or firing')

    await ups[1].stop()
    const fired = await eventually(firing, (list) => list.length > 0, 20_000, 'an alert firing after b stopped')
    t.same(fired.map((a) => a.labels), [{ alertname: 'LbTargetDown', severity: 'warning', job: 'gateway', instance: gw.url.replace('http://', ''), pool: 'main', target: 'b' }],
      'LbTargetDown fires for b, and no other alert fires')
    t.same(fired[0].annotations, {
      summary: 'Target b of pool main is down',
      description: `${gw.url.replace('http://', '')} has seen target b of pool main fail its health checks, or stay ejected by outlier detection, for over a minute. The pool's other targets take its requests.`
    }, 'its summary and description name the pool and the target')

    await ups[1].start()
    await eventually(alerts, (list) => list.length === 0, 20_000, 'the alert gone after b came back')
    t.pass('LbTargetDown clears once b passes its checks again')
  } catch (err) {
    t.comment(server.output())
    throw err
  }
})
