/**
 * pick() micro-benchmark: ns/op of every algorithm at 3, 100 and 10,000
 * targets beside a naive per-request filter, ring and Maglev build times, an
 * allocation check per pick, and memory per target.
 *
 *   node --require ts-node/register bench/pick.ts
 */
import { PerformanceObserver } from 'node:perf_hooks'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { Target } from '../lib/pool/target'
import { algorithms, type AlgorithmName } from '../lib/balancers'
import type { Balancer, PickContext } from '../lib/balancers/balancer'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

/** 64 is the largest set weighted round robin still schedules with nginx's O(n) scan. */
const SIZES = [3, 64, 100, 10_000]
const KEYS = Array.from({ length: 1024 }, (_, i) => `session-${(i * 2654435761) >>> 0}`)
const IPS = Array.from({ length: 1024 }, (_, i) => i % 2 === 0 ? `10.${(i >> 8) & 255}.${i & 255}.7` : `2001:db8::${i.toString(16)}:1`)

type Loop = (lb: Balancer, ctx: PickContext, keys: string[], ips: string[], n: number) => number

/**
 * Each measurement gets a loop compiled from its own source, so its call site
 * sees one balancer class only, as a pool's does; a shared loop would turn
 * megamorphic and slow every algorithm measured after the first.
 */
function freshLoop (withLoad: boolean): Loop {
  const load = withLoad ? 't.inFlight++; lb.loadChanged(t); t.inFlight--; lb.loadChanged(t);' : ''
  // eslint-disable-next-line no-new-func
  return new Function('lb', 'ctx', 'keys', 'ips', 'n', `
    let sum = 0
    for (let i = 0; i < n; i++) {
      ctx.key = keys[i & 1023]
      ctx.ip = ips[i & 1023]
      const t = lb.pick(ctx)
      if (t !== undefined) { sum += t.weight; ${load} }
    }
    return sum
  `) as Loop
}

/** What a server list without a balancer does: filter it per request, then rotate. */
function naive (): Balancer {
  let all: readonly Target[] = []
  let next = 0
  return {
    update (targets) { all = targets },
    pick () {
      const eligible = all.filter((t) => t.enabled)
      if (eligible.length === 0) return undefined
      return eligible[next++ % eligible.length]
    }
  }
}

function makeTargets (n: number): Target[] {
  return Array.from({ length: n }, (_, i) => {
    const id = `t${String(i).padStart(5, '0')}`
    // Mixed weights so the weighted algorithms do real work.
    return new Target(id, `http://10.0.${i >> 8}.${i & 255}:8080`, `http://10.0.${i >> 8}.${i & 255}:8080`, '', 1 + (i % 4))
  })
}

/** Every target ramping up at once (slow start): all weights distinct. */
function rampingTargets (n: number): Target[] {
  const targets = makeTargets(n)
  targets.forEach((t, i) => { t.effectiveWeight = 0.1 + 0.9 * i / n })
  return targets
}

function context (): PickContext {
  return { key: undefined, ip: '', tried: [], poolInFlight: 0 }
}

interface Case { name: string, make: () => Balancer, withLoad?: boolean, targets?: (n: number) => Target[] }
const CASES: Case[] = [
  ...(Object.keys(algorithms) as AlgorithmName[]).map((name) => ({ name, make: () => algorithms[name]({}) })),
  { name: 'weighted-round-robin, all weights distinct', make: () => algorithms['weighted-round-robin']({}), targets: rampingTargets },
  { name: 'least-connections, pick + 2 loadChanged', make: () => algorithms['least-connections']({}), withLoad: true },
  { name: 'p2c-ewma, fixed clock', make: () => algorithms['p2c-ewma']({ now: () => 0 }) },
  { name: 'consistent-hash, bounded 1.25', make: () => algorithms['consistent-hash']({ balanceFactor: 1.25 }) },
  { name: 'naive: filter + rotate', make: naive }
]

function nsPerPick (c: Case, targets: Target[]): number {
  const lb = c.make()
  lb.update(targets)
  const ctx = context()
  const loop = freshLoop(c.withLoad === true)
  loop(lb, ctx, KEYS, IPS, 200_000) // warm up and optimise
  // CPU time of this process, not wall time: on a shared machine the wall
  // clock also counts the time other processes hold the cores.
  let best = Infinity
  for (let round = 0; round < 3; round++) {
    const n = 500_000
    const start = process.cpuUsage()
    loop(lb, ctx, KEYS, IPS, n)
    const used = process.cpuUsage(start)
    best = Math.min(best, (used.user + used.system) * 1000 / n)
  }
  return best
}

let gcEvents = 0
const observer = new PerformanceObserver((list) => { gcEvents += list.getEntries().length })
observer.observe({ entryTypes: ['gc'] })
const settle = async (): Promise<void> => await new Promise((resolve) => setTimeout(resolve, 20))

/** Heap growth and collections over 1e6 picks, after a full GC. */
async function allocation (c: Case, targets: Target[]): Promise<{ bytes: number, gcs: number }> {
  const lb = c.make()
  lb.update(targets)
  const ctx = context()
  const loop = freshLoop(c.withLoad === true)
  loop(lb, ctx, KEYS, IPS, 200_000)
  gc()
  await settle()
  gcEvents = 0
  const before = process.memoryUsage().heapUsed
  loop(lb, ctx, KEYS, IPS, 1_000_000)
  const after = process.memoryUsage().heapUsed
  await settle()
  return { bytes: (after - before) / 1_000_000, gcs: gcEvents }
}

function buildMs (name: AlgorithmName, n: number): number {
  const targets = makeTargets(n)
  const lb = algorithms[name]({})
  lb.update(targets) // warm up
  const runs = n > 1000 ? 2 : 10
  const start = process.cpuUsage()
  for (let i = 0; i < runs; i++) lb.update(targets.slice())
  const used = process.cpuUsage(start)
  return (used.user + used.system) / runs / 1000
}

/** Heap plus array buffers after full collections; array buffers are freed by a later sweep. */
async function memory (): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc()
    await settle()
  }
  const m = process.memoryUsage()
  return m.heapUsed + m.arrayBuffers
}

async function memoryTable (): Promise<void> {
  console.log('## Memory per target, 10,000 targets (heap + array buffers, bytes)\n')
  console.log('| what | bytes/target |')
  console.log('| --- | ---: |')
  const base = await memory()
  const targets = makeTargets(10_000)
  const withTargets = await memory()
  console.log(`| Target object (id, URLs included) | ${((withTargets - base) / 10_000).toFixed(0)} |`)
  for (const name of Object.keys(algorithms) as AlgorithmName[]) {
    const before = await memory()
    const lb = algorithms[name]({})
    lb.update(targets)
    const after = await memory()
    console.log(`| ${name} state | ${((after - before) / 10_000).toFixed(0)} |`)
    lb.update([])
  }
  console.log('')
}

async function main (): Promise<void> {
  console.log(`node ${process.version}, ${process.arch}\n`)
  // First, while the heap holds nothing else.
  await memoryTable()
  console.log('## pick() ns/op (CPU time, best of 3 x 500k picks)\n')
  console.log(`| algorithm | ${SIZES.map((n) => `${n} targets`).join(' | ')} |`)
  console.log(`| --- | ${SIZES.map(() => '---:').join(' | ')} |`)
  for (const c of CASES) {
    const cells = SIZES.map((n) => nsPerPick(c, (c.targets ?? makeTargets)(n)).toFixed(1))
    console.log(`| ${c.name} | ${cells.join(' | ')} |`)
  }

  console.log('\n## Allocation over 1e6 picks at 100 targets (heapUsed growth, GC events)\n')
  console.log('| algorithm | bytes/pick | GC events |')
  console.log('| --- | ---: | ---: |')
  for (const c of CASES) {
    const { bytes, gcs } = await allocation(c, (c.targets ?? makeTargets)(100))
    console.log(`| ${c.name} | ${bytes.toFixed(2)} | ${gcs} |`)
  }

  console.log('\n## Build time (update()), ms\n')
  console.log('| algorithm | 1,000 targets | 10,000 targets |')
  console.log('| --- | ---: | ---: |')
  for (const name of ['consistent-hash', 'maglev'] as const) {
    console.log(`| ${name} | ${buildMs(name, 1000).toFixed(1)} | ${buildMs(name, 10_000).toFixed(1)} |`)
  }

  observer.disconnect()
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
