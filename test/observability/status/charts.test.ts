import { test } from 'tap'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import type { HistoryReport } from '../../../lib/observability/status-report'
import { startChromium } from '../../helpers/chromium'
import { startUpstreams } from '../../helpers/demo-upstream'
import { eventually } from '../../helpers/external'
import { observed, type Observed } from '../metrics/fixtures'

const SAMPLES = 40
/** Where LB_SCREENSHOT=1 saves the page, for the docs. */
const SCREENSHOT = join(__dirname, '..', '..', '..', 'docs', 'status-charts.png')

async function historyOf ({ client, gw }: Observed): Promise<HistoryReport> {
  const res = await client.send(gw.url + '/lb/status')
  return (JSON.parse(res.text) as { history: HistoryReport }).history
}

/** The points of the polylines of one chart cell, as [x, y] pairs. */
async function points (page: Page, id: string, chart: string): Promise<Array<[number, number]>> {
  const out: Array<[number, number]> = []
  for (const line of await page.locator(`tr[data-target="${id}"] td[data-chart="${chart}"] svg polyline`).all()) {
    for (const p of (await line.getAttribute('points') ?? '').split(' ')) out.push(p.split(',').map(Number) as [number, number])
  }
  return out
}

test('a real Chromium shows three charts per target, with a point per sample, drawn from the page alone', async (t) => {
  const browser = await startChromium(t)
  if (browser === null) return
  const [ordersA, ordersB] = await startUpstreams(['orders-1', 'orders-2'])
  t.teardown(async () => { await ordersA.stop(); await ordersB.stop() })
  const o = await observed(t, ['api-1', 'api-2', 'api-3'], { algorithm: 'least-connections', retry: false }, {
    pools: { orders: { targets: [{ url: ordersA.url, id: 'orders-1' }, { url: ordersB.url, id: 'orders-2' }] } },
    status: { refreshSeconds: 0, history: { interval: 100, samples: SAMPLES } }
  })
  const [, api2, api3] = o.ups

  // Traffic on `main` all along; `orders` stays idle. api-2 fails for a while; api-3 turns slow, so it gets fewer requests.
  const traffic = { on: true }
  // A send that fails (the gateway closing after a failed assertion) ends the traffic; what the charts show tells the rest.
  const load = Promise.all([0, 1, 2].map(async () => {
    while (traffic.on) await o.client.send(o.gw.url + '/x').catch(() => { traffic.on = false })
  }))
  const samples = async (n: number): Promise<HistoryReport> =>
    await eventually(async () => await historyOf(o), (h) => h.sampledAt.length >= n, 20_000, `${n} samples`)
  await samples(12)
  api2.status = 500
  api3.mode = 'slow'
  api3.delayMs = 60
  await samples(24)
  api2.status = null
  const full = await samples(SAMPLES)
  t.equal(full.sampledAt.length, SAMPLES, 'the window is full: every series that began with it has a value per sample')

  const page = await browser.newPage({ viewport: { width: 1680, height: 480 } })
  const requested: string[] = []
  page.on('request', (request) => requested.push(request.url()))
  const url = o.gw.url + '/lb/status?format=html'
  await page.goto(url)

  const ids = ['api-1', 'api-2', 'api-3', 'orders-1', 'orders-2']
  t.equal(await page.getByRole('img').count(), ids.length * 3, 'three charts per target, each an image')
  t.equal(await page.getByRole('img', { name: /^api-2: failed tries per second over the last 4 s: now [\d.]+, peak [\d.]+$/ }).count(), 1,
    'a chart is named by its target, series, span, latest value and peak')
  for (const id of ids) {
    for (const chart of ['requests', 'errors']) {
      t.equal((await points(page, id, chart)).length, SAMPLES, `${id} ${chart}: a point per sample`)
    }
  }
  const bottom = 22
  t.ok((await points(page, 'api-2', 'errors')).some(([, y]) => y < bottom), 'api-2 failed for a while: its error line rises')
  t.ok((await points(page, 'api-1', 'errors')).every(([, y]) => y === bottom), 'api-1 never failed: flat on the bottom')
  t.ok((await points(page, 'api-1', 'requests')).some(([, y]) => y < bottom), 'api-1 took requests')
  const p99 = (await points(page, 'api-3', 'p99')).length
  t.ok(p99 > 0 && p99 <= SAMPLES, `api-3: a p99 point per interval with answers (${p99})`)
  for (const id of ['orders-1', 'orders-2']) {
    t.same(await points(page, id, 'p99'), [], `${id} never answered: no p99 line`)
    t.equal(await page.locator(`tr[data-target="${id}"] td[data-chart="p99"] svg`).count(), 1, `${id}: the empty p99 chart is still there`)
  }
  const box = await page.locator('tr[data-target="api-1"] td[data-chart="requests"] svg polyline').first().boundingBox()
  t.ok(box !== null && box.width > 80, 'the line is drawn across the chart')
  t.notMatch(await page.content(), /NaN|Infinity|undefined/, 'no broken number anywhere')
  t.same([...new Set(requested)], [url], 'the page loads nothing but itself')

  if (process.env.LB_SCREENSHOT === '1') await page.screenshot({ path: SCREENSHOT, fullPage: true })
  traffic.on = false
  await load
})
