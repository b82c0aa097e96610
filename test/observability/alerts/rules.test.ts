import { test } from 'tap'
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { requireProgram, runProgram } from '../../helpers/external'
import { alertNames, EXAMPLE_CONFIG, RULE_TESTS, RULES } from './fixtures'

const DOCS = join(__dirname, '..', '..', '..', 'docs', 'observability.md')

async function tempDir (t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'lb-alerts-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  return dir
}

test('promtool check rules accepts the rules and finds every alert of the file', async (t) => {
  const promtool = requireProgram(t, 'promtool', "Prometheus's promtool")
  if (promtool === null) return
  const names = alertNames(await readFile(RULES, 'utf8'))
  t.same(names, [
    'LbTargetDown', 'LbPoolHealthyShareLow', 'LbNoTarget', 'LbTargetErrorRatioHigh', 'LbPoolLatencyP99High', 'LbRetryBudgetExhausted',
    'LbTargetEjected', 'LbPoolOverloaded', 'LbQueueNotEmpty', 'LbTargetFull', 'LbServingBackupTier', 'LbCircuitOpen', 'LbCircuitFlapping',
    'LbFallbackServing'
  ], 'the alerts the file ships')
  const result = await runProgram(promtool, ['check', 'rules', RULES])
  t.equal(result.code, 0, 'promtool exits 0', { output: result.output })
  t.match(result.output, `SUCCESS: ${names.length} rules found`, 'and counts them all')
})

test('the unit tests make every alert fire and stay quiet, and pass', async (t) => {
  const promtool = requireProgram(t, 'promtool', "Prometheus's promtool")
  if (promtool === null) return
  const names = alertNames(await readFile(RULES, 'utf8'))
  // Each case of alert_rule_test is `alertname:` followed by `exp_alerts:`, empty (`[]`) or a list.
  const cases = [...(await readFile(RULE_TESTS, 'utf8')).matchAll(/alertname: (\w+)\n\s*exp_alerts:( \[\])?\n/g)]
    .map((m) => ({ name: m[1], fires: m[2] === undefined }))
  // A case naming no rule would pass without testing anything.
  t.same(cases.filter((c) => !names.includes(c.name)), [], 'every case names an alert of the rules')
  for (const name of names) {
    t.ok(cases.some((c) => c.name === name && c.fires), `${name} fires in a case`)
    t.ok(cases.some((c) => c.name === name && !c.fires), `${name} stays quiet in a case`)
  }
  const result = await runProgram(promtool, ['test', 'rules', RULE_TESTS])
  t.equal(result.code, 0, 'promtool test rules passes', { output: result.output })
  t.match(result.output, 'SUCCESS')
})

test('the unit tests fail rules that alert on a target disabled for maintenance', async (t) => {
  const promtool = requireProgram(t, 'promtool', "Prometheus's promtool")
  if (promtool === null) return
  const dir = await tempDir(t)
  const rules = await readFile(RULES, 'utf8')
  const broken = rules.replace('lb_target_healthy == 0 and lb_target_enabled == 1', 'lb_target_healthy == 0')
  t.not(broken, rules, 'the copy of the rules leaves lb_target_enabled out')
  await writeFile(join(dir, 'alerts.yml'), broken)
  await copyFile(RULE_TESTS, join(dir, 'alerts.test.yml'))
  const result = await runProgram(promtool, ['test', 'rules', join(dir, 'alerts.test.yml')])
  t.not(result.code, 0, 'promtool fails')
  t.match(result.output, /alertname: LbTargetDown[\s\S]*target="c"/, 'naming the alert and the disabled target it now fires for')
})

test("the example's prometheus.yml loads the rules by a path relative to itself", async (t) => {
  const promtool = requireProgram(t, 'promtool', "Prometheus's promtool")
  if (promtool === null) return
  const dir = await tempDir(t)
  const names = alertNames(await readFile(RULES, 'utf8'))
  // From another working directory: the path is relative to the config file.
  const result = await runProgram(promtool, ['check', 'config', EXAMPLE_CONFIG], { cwd: dir })
  t.equal(result.code, 0, 'promtool check config passes', { output: result.output })
  t.match(result.output, `${RULES}\n  SUCCESS: ${names.length} rules found`, 'it checked the rules next to it')

  // The config without the rules beside it is refused: promtool does look for them.
  const alone = join(dir, 'prometheus.yml')
  await copyFile(EXAMPLE_CONFIG, alone)
  const missing = await runProgram(promtool, ['check', 'config', alone], { cwd: dir })
  t.not(missing.code, 0, 'a config whose rule file is missing fails')
})

test('docs/observability.md describes every alert', async (t) => {
  const docs = await readFile(DOCS, 'utf8')
  const start = docs.indexOf('\n## Alerts\n')
  t.not(start, -1, 'the docs have a section "Alerts"')
  const end = docs.indexOf('\n## ', start + 1)
  const section = docs.slice(start, end === -1 ? undefined : end)
  for (const name of alertNames(await readFile(RULES, 'utf8'))) {
    t.match(section, `**\`${name}\`**`, `${name} is described`)
  }
})
