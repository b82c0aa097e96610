import { test } from 'tap'
import { Signer } from '@fastify/cookie'
import { resolveAffinity, type ResolvedAffinity } from '../../lib/affinity/options'
import type { AffinityResult } from '../../lib/affinity/affinity'
import type { SetCookie } from '../helpers/cookie-jar'
import { SECRET, sendCookie, stickyGateway, tally, type Sticky } from './fixtures'

function signer (options: Parameters<typeof resolveAffinity>[1]): ResolvedAffinity {
  const resolved = resolveAffinity('main', options)
  if (resolved === null) throw new Error('affinity options expected')
  return resolved
}

const now = (): number => Math.floor(Date.now() / 1000)

/** A client's pace between two visits: a fraction of the window, not a wait for anything. */
async function pause (ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms))
}

/** The times a cookie value carries: `<id>.<expiry>-<renewed>.<tag>`, base 36 epoch seconds. */
function timesOf (value: string): { expiry: number, renewed: number } {
  const parts = value.split('.')
  const [expiry, renewed] = parts[parts.length - 2].split('-')
  return { expiry: parseInt(expiry, 36), renewed: renewed === undefined ? 0 : parseInt(renewed, 36) }
}

/** Sends `value` as a new client would until the gateway refuses it (each probe is its own client: the value is never renewed by it). */
async function untilRefused (sticky: Sticky, value: string, limit = 100): Promise<AffinityResult[]> {
  for (let i = 0; i < limit; i++) {
    const { produced } = await sendCookie(sticky, value)
    if (produced[0] !== 'hit') return produced
    await pause(100)
  }
  throw new Error('the cookie was never refused')
}

test('idleTimeout: a client that keeps coming keeps its pin past its first cookie; one that stays away is re-pinned', async (t) => {
  const sticky = await stickyGateway(t, ['a', 'b', 'c'], { idleTimeout: 2 })
  const { gw, jar, results } = sticky
  const url = gw.url + '/x'
  const browser = jar()
  const first = await browser.send(url)
  const pinned = first.servedBy
  const firstCookie = browser.last[0]
  t.equal(firstCookie.attributes['max-age'], '2', 'the cookie lives for the idle window')
  const firstValue = firstCookie.value

  // The client comes back every tenth of the window, until its first cookie has run out.
  const servedBy: Array<string | undefined> = []
  const renewals: SetCookie[] = []
  let visits = 0
  let firstRefused: AffinityResult[] = []
  while (firstRefused.length === 0) {
    await pause(200)
    const res = await browser.send(url)
    visits++
    servedBy.push(res.servedBy)
    renewals.push(...browser.last)
    const probe = await sendCookie(sticky, firstValue)
    if (probe.produced[0] !== 'hit') firstRefused = probe.produced
    if (visits > 100) throw new Error('the first cookie never expired')
  }
  t.same(firstRefused, ['expired'], 'the first cookie has expired: nobody renewed that value')
  t.same(new Set(servedBy), new Set([pinned]), `every one of ${visits} visits went to the pinned target`)
  const again = await browser.send(url)
  t.equal(again.servedBy, pinned, 'the client still holds its pin past the life of its first cookie')
  renewals.push(...browser.last)

  t.ok(renewals.length >= 1, 'the cookie was renewed')
  t.ok(renewals.length < visits, `renewed on ${renewals.length} of ${visits + 1} answers, not on each`)
  let previous = timesOf(firstValue).renewed
  for (const cookie of renewals) {
    t.equal(cookie.attributes['max-age'], '2', 'a renewed cookie lives for the idle window again')
    t.match(cookie.value, new RegExp(`^${pinned ?? ''}\\.`), '...for the same target')
    const { expiry, renewed } = timesOf(cookie.value)
    t.equal(expiry, 0, 'without maxAge there is no absolute expiry')
    t.ok(renewed - previous >= 1, 'renewed at most once per quarter of the window (to the second)')
    previous = renewed
  }

  // Away for longer than the window: the last cookie expires and the client is balanced again.
  const last = browser.cookies.get('lb_main') ?? ''
  t.same(await untilRefused(sticky, last), ['expired'], 'the last cookie expires without visits')
  const back = await browser.send(url)
  t.equal(results.at(-1), 'expired', 'counted as expired')
  t.equal(browser.last.length, 1, 'the client is pinned again with a new cookie')
  const repinned = back.servedBy
  t.not(browser.cookies.get('lb_main'), last)
  t.equal((await browser.send(url)).servedBy, repinned, '...and its new pin holds')
  t.equal(results.at(-1), 'hit')
  t.ok((tally(results).expired ?? 0) >= 2)
})

test('idleTimeout with maxAge: the absolute life stays, renewals keep it, and every time is signed', async (t) => {
  const sticky = await stickyGateway(t, ['a', 'b', 'c'], { idleTimeout: 60, maxAge: 600 })
  const ours = signer({ secret: SECRET })
  const at = now()

  const fresh = await sendCookie(sticky, 'none')
  const issued = timesOf(fresh.client.cookies.get('lb_main') ?? '')
  t.ok(issued.expiry - issued.renewed === 600, 'a new cookie carries its expiry and its renewal time')
  t.equal(fresh.client.last[0].attributes['max-age'], '60', 'the browser keeps it for the idle window')

  const recent = await sendCookie(sticky, ours.codec.encode('b', at + 300, at - 5))
  t.same(recent.produced, ['hit'])
  t.equal(recent.client.last.length, 0, 'renewed 5 s ago: less than a quarter of the window, no Set-Cookie')

  const due = await sendCookie(sticky, ours.codec.encode('b', at + 300, at - 20))
  t.same(due.produced, ['hit'])
  t.equal(due.res.servedBy, 'b')
  const renewed = timesOf(due.client.cookies.get('lb_main') ?? '')
  t.equal(renewed.expiry, at + 300, 'renewed 20 s ago, a third of the window: issued again with the same expiry')
  t.ok(renewed.renewed >= at, '...and a new renewal time')
  t.equal(due.client.last[0].attributes['max-age'], '60')

  const nearEnd = await sendCookie(sticky, ours.codec.encode('b', at + 30, at - 20))
  const maxAge = Number(nearEnd.client.last[0].attributes['max-age'])
  t.ok(maxAge <= 30 && maxAge >= 28, 'near its expiry the browser keeps it no longer than the gateway takes it')

  t.same((await sendCookie(sticky, ours.codec.encode('b', at + 300, at - 61))).produced, ['expired'], 'idle for longer than the window')
  t.same((await sendCookie(sticky, ours.codec.encode('b', at - 1, at))).produced, ['expired'], 'past maxAge, however recent the visit')
  t.same((await sendCookie(sticky, ours.codec.encode('b', at + 300, at + 200))).produced, ['rejected'], 'a renewal time further ahead than the window')
  t.same((await sendCookie(sticky, ours.codec.encode('b', at + 300, at - 5) + 'x')).produced, ['rejected'], 'a tampered value')
  const [id, times, tag] = ours.codec.encode('b', at + 300, at - 100).split('.')
  const moved = `${id}.${times.split('-')[0]}-${(at - 5).toString(36)}.${tag}`
  t.same((await sendCookie(sticky, moved)).produced, ['rejected'], 'a renewal time moved forward: the signature covers it')

  const older = await sendCookie(sticky, ours.codec.encode('b', at + 300))
  t.same(older.produced, ['hit'], 'a cookie from before the idle timeout was set is honoured')
  t.ok(timesOf(older.client.cookies.get('lb_main') ?? '').renewed >= at, '...and renewed at once')
})

test('idleTimeout through pool.configure: existing pins are kept and start sliding', async (t) => {
  const sticky = await stickyGateway(t, ['a', 'b', 'c'], { maxAge: 600 })
  const { gw, pool, jar } = sticky
  const browser = jar()
  const pinned = (await browser.send(gw.url + '/x')).servedBy
  t.equal(timesOf(browser.cookies.get('lb_main') ?? '').renewed, 0, 'no renewal time without idleTimeout')

  t.throws(() => pool.configure({ affinity: { secret: SECRET, idleTimeout: 1 } }), { code: 'FST_LB_INVALID_OPTION', message: /pool "main": affinity\.idleTimeout = 1/ })
  const change = pool.configure({ affinity: { secret: SECRET, maxAge: 600, idleTimeout: 30 } })
  t.same(change.changed, ['affinity'])

  const res = await browser.send(gw.url + '/x')
  t.equal(res.servedBy, pinned, 'the client keeps its pin')
  t.equal(browser.last.length, 1, 'its cookie is issued again with a renewal time')
  t.equal(browser.last[0].attributes['max-age'], '30')
  t.ok(timesOf(browser.last[0].value).renewed > 0)
  t.equal((await browser.send(gw.url + '/x')).servedBy, pinned)
  t.equal(browser.last.length, 0, 'then left alone until a quarter of the window has passed')
  t.match(pool.affinity?.counts, { miss: 1, hit: 2, expired: 0 }, 'the counters go on')
})

test("idleTimeout with @fastify/cookie's Signer: the renewal time is signed by the signer", async (t) => {
  const keys = new Signer(SECRET)
  const sticky = await stickyGateway(t, ['a', 'b', 'c'], { secret: keys, idleTimeout: 60 })
  const at = now()
  const signed = (renewed: number): string => keys.sign(`b.0-${renewed.toString(36)}.lb_main`)

  const due = await sendCookie(sticky, signed(at - 20))
  t.same(due.produced, ['hit'])
  t.equal(due.res.servedBy, 'b')
  const text = keys.unsign(due.client.cookies.get('lb_main') ?? '').value ?? ''
  t.match(text, /^b\.0-[0-9a-z]+\.lb_main$/, 'the Signer signed the renewed value')
  t.ok(parseInt(text.split('.')[1].split('-')[1], 36) >= at, '...with a new renewal time')
  t.same((await sendCookie(sticky, signed(at - 5))).client.last, [], 'not due: no Set-Cookie')
  t.same((await sendCookie(sticky, signed(at - 61))).produced, ['expired'])
})
