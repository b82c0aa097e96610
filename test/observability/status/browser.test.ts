import { test } from 'tap'
import type { Page } from 'playwright-core'
import { startChromium } from '../../helpers/chromium'
import { observed } from '../metrics/fixtures'

/** Runs in the page, where the DOM has it. */
declare const getComputedStyle: (element: unknown) => { backgroundColor: string }
interface PageElement {
  getAttribute: (name: string) => string | null
  innerText: string
}
/** The page's document, as far as these tests read it. */
declare const document: { querySelectorAll: (selector: string) => Iterable<PageElement>, querySelector: (selector: string) => PageElement | null }

/**
 * Reads the page, again once it has loaded if its own reload (every second) replaced it while it was read:
 * every read of the page goes through here.
 */
async function settled<T> (page: Page, read: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await read()
    } catch (err) {
      if (!/context was destroyed|navigat/i.test((err as Error).message)) throw err
      await page.waitForLoadState('load')
    }
  }
}

/** The computed background colour of a target's row. */
async function rowColour (page: Page, id: string): Promise<string> {
  return await settled(page, async () => await page.locator(`tr[data-target="${id}"]`).evaluate((row) => getComputedStyle(row).backgroundColor))
}

interface PageView {
  sections: string[]
  headings: string[]
  rows: string[]
  rowB: string
}

async function readPage (page: Page): Promise<PageView> {
  return await settled(page, async () => await page.evaluate(() => ({
    sections: [...document.querySelectorAll('section')].map((x) => x.getAttribute('data-pool') ?? ''),
    headings: [...document.querySelectorAll('h2')].map((x) => x.innerText),
    rows: [...document.querySelectorAll('tbody tr')].map((r) => `${r.getAttribute('data-target') ?? ''}:${r.getAttribute('data-state') ?? ''}`),
    rowB: document.querySelector('tr[data-target="b"]')?.innerText ?? ''
  })))
}

test('a real Chromium shows every pool and target, and a target that goes down changes colour after the page reloads itself', async (t) => {
  const browser = await startChromium(t)
  if (browser === null) return
  const o = await observed(t, ['a', 'b'], {
    healthCheck: { interval: 30, jitter: 0, timeout: 500, unhealthyThreshold: 1, healthyThreshold: 1 }
  }, {
    pools: { orders: { targets: [{ url: 'http://127.0.0.1:9', id: 'legacy' }], algorithm: 'random' } },
    status: { refreshSeconds: 1 }
  })
  const { ups, gw } = o
  const page = await browser.newPage()
  const requested: string[] = []
  page.on('request', (request) => requested.push(request.url()))
  let loads = 0
  page.on('load', () => { loads++ })

  const url = gw.url + '/lb/status'
  await page.goto(url)
  // The page reloads itself every second: what it shows is read in one evaluation, again if a reload cut it short.
  const view = await readPage(page)
  t.same(view.sections, ['main', 'orders'], 'a section per pool')
  t.same(view.headings, [
    'main round-robin · 2 of 2 eligible · 0 in flight · 0 without target · 0 retries (0 succeeded, 0 refused)',
    'orders random · 1 of 1 eligible · 0 in flight · 0 without target · 0 retries (0 succeeded, 0 refused)'
  ])
  t.same(view.rows, ['a:healthy', 'b:healthy', 'legacy:healthy'], 'a row per target')
  t.ok(view.rowB.includes(ups[1].url), 'the URL shows')
  const healthy = await rowColour(page, 'b')
  t.equal(healthy, 'rgb(218, 251, 225)', 'healthy is green')
  t.equal(await rowColour(page, 'a'), healthy)

  await ups[1].stop()
  // Nothing but the page's own reload can show the change.
  await page.locator('tr[data-target="b"][data-state="unhealthy"]').waitFor({ timeout: 15_000 })
  t.ok(loads >= 2, 'the page reloaded itself')
  const down = await rowColour(page, 'b')
  t.equal(down, 'rgb(255, 235, 233)', 'unhealthy is red')
  t.not(down, healthy)
  t.equal(await rowColour(page, 'a'), healthy, 'a stays green')
  t.match(await settled(page, async () => await page.locator('tr[data-target="b"]').innerText()), /\bfailed \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ connection refused\b/, 'the failed check shows, when and why')
  t.same([...new Set(requested)], [url], 'the page loads nothing but itself')
})
