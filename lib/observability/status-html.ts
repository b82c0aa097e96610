import { escape } from './html-escape'
import { chartsLegend, poolCharts, type PoolCharts } from './status-charts'
import { describeChange } from '../admin/changes'
import type { HistoryReport, PoolStatus, StatusReport, TargetStatus } from './status-report'

/** Quality a media range gives a type, and how specific the range is (-1: it does not match). */
function matchRange (type: string, range: string): number {
  if (range === type) return 2
  if (range.endsWith('/*') && type.startsWith(range.slice(0, -1))) return 1
  if (range === '*/*') return 0
  return -1
}

/**
 * Whether an Accept header ranks text/html above application/json, the most
 * specific matching range deciding each one's quality (RFC 9110, 12.5.1). A
 * browser's header does; curl's `*\/*` and a missing header get JSON.
 */
export function prefersHtml (accept: string | undefined): boolean {
  if (accept === undefined || accept === '') return false
  let html = 0
  let htmlSpecificity = -1
  let json = 0
  let jsonSpecificity = -1
  for (const part of accept.split(',')) {
    const params = part.split(';')
    const range = params[0].trim().toLowerCase()
    let q = 1
    for (let i = 1; i < params.length; i++) {
      const [key, value] = params[i].split('=')
      if (key.trim().toLowerCase() === 'q') {
        q = Number(value)
        if (!Number.isFinite(q)) q = 0
      }
    }
    const h = matchRange('text/html', range)
    if (h > htmlSpecificity) {
      htmlSpecificity = h
      html = q
    }
    const j = matchRange('application/json', range)
    if (j > jsonSpecificity) {
      jsonSpecificity = j
      json = q
    }
  }
  return html > 0 && html > json
}

function time (epochMs: number | null): string {
  return epochMs === null ? '' : new Date(epochMs).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z')
}

/** Row colours per state: green for serving, blue while ramping up, amber when ejected, red when down, grey when leaving. */
const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1f2328;background:#fff}
h1{font-size:1.4rem;margin:0 0 .25rem}h2{font-size:1.1rem;margin:1.5rem 0 .4rem}h2 small{font-weight:normal;color:#59636e}
.meta,.legend{color:#59636e;margin:.2rem 0}
table{border-collapse:collapse;width:100%}th,td{padding:.3rem .6rem;border-bottom:1px solid #d1d9e0;text-align:left;white-space:nowrap}
th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:0 .5rem;border-radius:1rem;font-weight:600}
tr.state-healthy{background:#dafbe1}tr.state-healthy .badge{background:#1a7f37;color:#fff}
tr.state-slow-start{background:#ddf4ff}tr.state-slow-start .badge{background:#0969da;color:#fff}
tr.state-ejected{background:#fff8c5}tr.state-ejected .badge{background:#9a6700;color:#fff}
tr.state-unhealthy{background:#ffebe9}tr.state-unhealthy .badge{background:#cf222e;color:#fff}
tr.state-disabled{background:#f6f8fa}tr.state-disabled .badge{background:#818b98;color:#fff}
tr.state-draining{background:#eff2f5}tr.state-draining .badge{background:#59636e;color:#fff}
.circuit{margin:.2rem 0 .4rem}.circuit-closed .badge{background:#1a7f37;color:#fff}
.circuit-half-open .badge{background:#9a6700;color:#fff}.circuit-open .badge{background:#cf222e;color:#fff}
td.chart{padding-top:.1rem;padding-bottom:.1rem}td.chart svg{vertical-align:middle;background:#ffffffb3}
td.chart .now{display:inline-block;min-width:2.6rem;margin-left:.3rem;text-align:right;font-variant-numeric:tabular-nums}
`

function check (t: TargetStatus): string {
  const c = t.lastCheck
  if (c === null) return ''
  return `${c.ok ? 'ok' : 'failed'} ${escape(time(c.at))}${c.error === undefined ? '' : ' ' + escape(c.error)} · healthCheck[${c.check}] ${c.type}`
}

/** Cluster mode: the in-flight count of each worker under the machine's (limits and balancing are per worker). */
function perWorker (t: TargetStatus): string {
  if (t.workers === undefined || t.workers.length === 0) return ''
  return `<br><small class="workers" data-workers="${t.workers.map((w) => `${w.worker}:${w.inFlight}`).join(' ')}">` +
    `${t.workers.map((w) => `w${w.worker} ${w.inFlight}`).join(' · ')}</small>`
}

/** Cluster mode: which worker answered, and every worker with its load and whether it runs the checks. */
function clusterLine (cluster: StatusReport['cluster']): string {
  if (cluster === undefined) return ''
  const workers = cluster.workers.map((w) => `worker ${w.id} (PID ${w.pid}${w.checking ? ', runs the checks' : ''}): ${w.inFlight} in flight`)
  return `<p class="meta cluster" data-worker="${cluster.worker}">Cluster: this page from worker ${cluster.worker} · ${workers.join(' · ')}</p>`
}

function row (t: TargetStatus, showUrls: boolean, charts: PoolCharts | null): string {
  return `<tr class="state-${t.state}" data-target="${escape(t.id)}" data-state="${t.state}">` +
    `<td>${escape(t.id)}</td>` +
    (showUrls ? `<td>${escape(t.url ?? '')}</td>` : '') +
    `<td><span class="badge">${t.state}</span></td>` +
    `<td class="n">${t.priority}</td><td class="n">${t.weight}</td><td class="n">${t.effectiveWeight}</td>` +
    `<td class="n">${t.inFlight}${t.maxConnections === 0 ? '' : ` / ${t.maxConnections}${t.full ? ' full' : ''}`}${t.tunnels === 0 ? '' : ` (${t.tunnels} ws)`}${perWorker(t)}</td><td class="n">${t.requests}</td><td class="n">${t.failures}</td><td class="n">${t.aborted}</td>` +
    `<td class="n">${t.ewmaMs === null ? '' : t.ewmaMs.toFixed(1)}</td>` +
    (charts === null ? '' : charts.cells(t.id)) +
    `<td>${check(t)}</td><td>${escape(time(t.ejectedUntil))}</td></tr>`
}

/** Shown once the pool refused a request for load: pools without limits keep their line as it was. */
function overloaded (pool: PoolStatus): string {
  const n = pool.overloaded.full + pool.overloaded.queueFull + pool.overloaded.queueTimeout
  return n === 0 ? '' : `${n} overloaded · `
}

function percent (ratio: number): string {
  return `${Math.round(ratio * 100)}%`
}

/** The breaker's line under a pool's heading: its state, and what it judges by. */
function circuitLine (pool: PoolStatus): string {
  const c = pool.circuit
  if (c === null) return ''
  const of = c.state === 'open' ? 'of the calls that opened it' : c.state === 'half-open' ? 'of the trials so far' : 'of the window'
  const until = c.state === 'open' ? ` · trials from ${escape(time(c.halfOpenAt))}` : ''
  return `<p class="circuit circuit-${c.state}" data-circuit="${c.state}">Circuit breaker: <span class="badge">${c.state}</span> · ` +
    `${percent(c.failureRatio)} failed, ${percent(c.slowCallRatio)} slow ${of} (${c.calls} calls)${until} · ${c.rejected} refused</p>`
}

function table (pool: PoolStatus, history: HistoryReport | null): string {
  const showUrls = pool.targets.some((t) => t.url !== undefined)
  const charts = poolCharts(history, pool.name)
  const head = ['Target', ...(showUrls ? ['URL'] : []), 'State', 'Tier', 'Weight', 'Effective weight', 'In flight', 'Requests', 'Failures', 'Client aborts', 'EWMA ms',
    ...(charts?.heads ?? []), 'Last check', 'Ejected until']
  return `<section data-pool="${escape(pool.name)}"><h2>${escape(pool.name)} <small>${escape(pool.algorithm)} · ` +
    `${pool.eligible} of ${pool.targets.length} eligible${pool.panic ? ' · PANIC: routing over all targets' : ''} · ` +
    `${pool.servingTier > 0 ? `tier ${pool.servingTier} serving · ` : ''}${pool.servingTier < 0 ? 'no tier can serve · ' : ''}` +
    `${pool.inFlight} in flight${pool.maxInFlight === 0 ? '' : ` of ${pool.maxInFlight}`}${pool.queued === null ? '' : ` · ${pool.queued} queued`} · ` +
    `${pool.noTarget} without target · ${overloaded(pool)}` +
    `${pool.retries.attempted} retries (${pool.retries.succeeded} succeeded, ${pool.retries.budgetExhausted + pool.retries.limitExceeded + pool.retries.deadlineExceeded} refused)</small></h2>` +
    circuitLine(pool) +
    `<table><thead><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr></thead>` +
    `<tbody>${pool.targets.map((t) => row(t, showUrls, charts)).join('')}</tbody></table></section>`
}

/** The status report as a self-contained HTML page: inline style and SVG, no script, no external asset. */
/** One line per route that splits its traffic: each pool's weight, share and the requests it got. */
function splitsSection (splits: StatusReport['splits']): string {
  if (splits.length === 0) return ''
  const rows = splits.map((split) => {
    const total = split.arms.reduce((sum, a) => sum + a.weight, 0)
    const arms = split.arms.map((a) => `${escape(a.pool)} ${a.weight} (${(100 * a.weight / total).toFixed(1)}%, ${split.requests[a.pool] ?? 0} requests)`)
    const matched = Object.entries(split.requests).filter(([pool]) => !split.arms.some((a) => a.pool === pool)).map(([pool, n]) => `${escape(pool)} by match (${n} requests)`)
    return `<li><b>${escape(split.route)}</b>: ${[...arms, ...matched].join(' · ')}</li>`
  })
  return `<h2>Splits</h2><ul class="splits">${rows.join('')}</ul>`
}

/** The admin API's recent changes, newest first; only with the admin API (report.changes). */
function changesSection (changes: StatusReport['changes']): string {
  if (changes === undefined) return ''
  const rows = changes.slice().reverse().map((c) => `<li data-change="${c.kind}">${escape(time(c.at))} · ${escape(describeChange(c))}</li>`)
  return `<h2>Recent changes <small>by the admin API</small></h2>${rows.length === 0 ? '<p>None yet.</p>' : `<ul class="changes">${rows.join('')}</ul>`}`
}

export function renderStatusPage (report: StatusReport, refreshSeconds: number): string {
  const refresh = refreshSeconds > 0 ? `<meta http-equiv="refresh" content="${refreshSeconds}">` : ''
  const every = refreshSeconds > 0 ? ` · reloads every ${refreshSeconds} s` : ''
  const pools = report.pools.length === 0 ? '<p>No pools.</p>' : report.pools.map((p) => table(p, report.history)).join('')
  return '<!doctype html><html lang="en"><head><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width,initial-scale=1">' + refresh +
    `<title>Load balancer status</title><style>${STYLE}</style></head><body>` +
    `<h1>Load balancer status</h1><p class="meta">${escape(time(report.generatedAt))}${every} · <a href="?format=json">JSON</a></p>` + clusterLine(report.cluster) +
    '<p class="legend">States: healthy, slow-start (weight ramping up), ejected (outlier detection), unhealthy (health checks), disabled (maintenance: pool.disable), draining (leaving).</p>' +
    chartsLegend(report.history) + splitsSection(report.splits) + changesSection(report.changes) + pools + '</body></html>'
}
