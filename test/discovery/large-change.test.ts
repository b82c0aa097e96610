import { test } from 'tap'
import { rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { AlgorithmName } from '../../lib/balancers/index'
import { resolvePoolOptions } from '../../lib/options/resolve'
import { Pool } from '../../lib/pool/pool'
import { nextDiscovery } from '../helpers/discovery-scenario'
import { startGateway } from '../helpers/gateway'
import { tempDir } from '../helpers/servers'

/**
 * Membership changes of 20,000 targets at once, the size at which a quadratic
 * shrink stalled the event loop for seconds. Nothing listens on the targets'
 * ports: without health checks, nothing connects to them.
 */
const N = 20_000
const FEW = 3
/** The bound: the event loop answers a timer ping within this many ms while a change is applied. */
const PING_MS = 100
/**
 * A sanity bound on the work of one reconcile() of N targets: over ten times
 * what it costs on a slow machine; the quadratic shrink took seconds.
 */
const WORK_MS = 1000

const urls = (n: number): string[] => Array.from({ length: n }, (_, i) => `http://127.0.0.1:${10_000 + i}`)

function cpuMs (): number {
  const { user, system } = process.cpuUsage()
  return (user + system) / 1000
}

/**
 * How long the process itself was busy in a stretch of wall-clock time: the
 * wall time, but no more than the CPU time the process used meanwhile. Other
 * processes on a loaded machine can hold this one back for a while without
 * it doing anything, which says nothing of the code; a stall of the code's own
 * making shows in both clocks.
 */
class Busy {
  private readonly wall = performance.now()
  private readonly cpu = cpuMs()

  get ms (): number {
    return Math.min(performance.now() - this.wall, cpuMs() - this.cpu)
  }
}

/**
 * Pings the event loop every 10 ms and keeps the longest delay of a ping past
 * its due time, counted as Busy counts it, and the longest in wall-clock time.
 */
class Ping {
  worst = 0
  worstWall = 0
  private since = new Busy()
  private last = performance.now()
  private readonly timer = setInterval(() => { this.tick() }, 10)

  stop (): void {
    // A stall that is still going on when the measure ends counts too.
    this.tick()
    clearInterval(this.timer)
  }

  private tick (): void {
    const now = performance.now()
    this.worst = Math.max(this.worst, this.since.ms - 10)
    this.worstWall = Math.max(this.worstWall, now - this.last - 10)
    this.since = new Busy()
    this.last = now
  }
}

/**
 * The least of a measure over several rounds, and all of them for the
 * message. Other processes and a garbage collection that happens to fall in a
 * measure can only lengthen it; code that blocks for longer than a bound does
 * so in every round.
 */
function least (values: number[]): { value: number, all: string } {
  return { value: Math.min(...values), all: values.map((v) => v.toFixed(0)).join(', ') }
}

test(`batch: ${N} add() calls, then ${N} remove() calls, each batch in linear time`, async (t) => {
  const pool = new Pool(resolvePoolOptions('users', { targets: [] }))
  const all = urls(N)
  const added: number[] = []
  const removed: number[] = []
  for (let round = 0; round < 2; round++) {
    let work = new Busy()
    pool.batch(() => {
      for (const url of all) pool.add(url)
    })
    added.push(work.ms)
    t.equal(pool.targets.length, N)
    t.throws(() => pool.add(all[N - 1]), { message: /duplicates a target of the pool/ }, 'a URL already there is refused')

    work = new Busy()
    const leaving = pool.batch(() => pool.targets.map((target) => pool.remove(target.id)))
    removed.push(work.ms)
    await Promise.all(leaving)
    t.equal(pool.targets.length, 0, 'every target left')
  }
  t.equal(pool.add(all[0]).url, all[0], 'a URL that left may come back')
  const add = least(added)
  const remove = least(removed)
  t.ok(add.value < WORK_MS, `adding ${N} targets in one batch kept the process busy ${add.all} ms (bound ${WORK_MS} ms)`)
  t.ok(remove.value < WORK_MS, `removing ${N} targets in one batch kept the process busy ${remove.all} ms (bound ${WORK_MS} ms)`)
})

for (const algorithm of ['least-connections', 'round-robin'] as AlgorithmName[]) {
  test(`reconcile (${algorithm}): ${N} targets leave and come back in linear time; busy ones finish their requests first`, async (t) => {
    const pool = new Pool(resolvePoolOptions('users', { algorithm, targets: urls(FEW) }))
    const all = urls(N)
    const few = urls(FEW)
    const grown: number[] = []
    const shrunk: number[] = []
    for (let round = 0; round < 3; round++) {
      let work = new Busy()
      pool.reconcile(all)
      grown.push(work.ms)
      t.equal(pool.targets.length, N)
      t.equal(pool.eligible.length, N)

      // Five leaving targets have a request in flight: they drain, the others leave at once.
      const busy = pool.targets.filter((x) => !few.includes(x.url)).slice(0, 5)
      for (const target of busy) pool.acquire(target)
      work = new Busy()
      pool.reconcile(few)
      shrunk.push(work.ms)
      t.equal(pool.targets.length, FEW + busy.length, 'the busy targets stay members while their requests run')
      t.ok(busy.every((target) => target.draining && pool.get(target.id) === target), 'and drain')
      t.same(pool.eligible.map((x) => x.url).sort(), [...few].sort(), 'only the listed targets take new requests')
      for (const target of busy) pool.release(target)
      t.equal(pool.targets.length, FEW, 'once their requests ended, they left')
    }
    const grow = least(grown)
    const shrink = least(shrunk)
    t.ok(grow.value < WORK_MS, `adding ${N} targets kept the process busy ${grow.all} ms (bound ${WORK_MS} ms)`)
    t.ok(shrink.value < WORK_MS, `removing ${N} targets kept the process busy ${shrink.all} ms (bound ${WORK_MS} ms)`)
  })

  test(`file discovery (${algorithm}): a registry that lists ${N} targets, then a few, keeps the event loop responsive`, async (t) => {
    const path = join(await tempDir(t, 'large'), 'targets.json')
    // Made once, before any measure: the test's own work must not count.
    const many = JSON.stringify(urls(N))
    const few = JSON.stringify(urls(FEW))
    const write = async (text: string): Promise<void> => {
      await writeFile(path + '.tmp', text)
      await rename(path + '.tmp', path)
    }
    await write(few)
    const gw = await startGateway({ pools: { main: { algorithm, discovery: { type: 'file', path, debounce: 20, interval: 0 } } } })
    t.teardown(gw.close)
    const pool = gw.app.lb.pool('main')
    t.equal(pool.targets.length, FEW)

    /** Publishes a list and resolves once the pool holds it: the 'discovery' event comes after the last step. */
    const publish = async (text: string, n: number): Promise<void> => {
      const applied = nextDiscovery(pool, (e) => e.ok && e.targets === n, 60_000)
      await write(text)
      await applied
    }
    const stalls: number[] = []
    const walls: number[] = []
    for (let round = 0; round < 3; round++) {
      const ping = new Ping()
      await publish(many, N)
      const grown = pool.targets.length
      const serving = pool.eligible.length
      await publish(few, FEW)
      ping.stop()
      stalls.push(ping.worst)
      walls.push(ping.worstWall)
      t.equal(grown, N, `round ${round}: the pool held the ${N} targets`)
      t.equal(serving, N, 'and every one of them served')
      t.equal(pool.targets.length, FEW, `then the ${FEW}`)
    }
    const stall = least(stalls)
    t.ok(stall.value < PING_MS,
      `the event loop answered a ping within ${stall.all} ms of the process's own work (bound ${PING_MS} ms; by the wall clock ${least(walls).all} ms)`)
  })
}
