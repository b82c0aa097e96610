import { test } from 'tap'
import { CircuitBreaker, type BreakerHost, type CircuitEvent } from '../../lib/breaker/breaker'
import { resolveCircuitBreaker, type CircuitBreakerOptions } from '../../lib/breaker/options'
import { SlidingWindow } from '../../lib/breaker/window'

type Listener = Parameters<BreakerHost['onResult']>[0]

/** A breaker on a fake pool and a clock the test moves. */
function setUp (options: CircuitBreakerOptions): { breaker: CircuitBreaker, events: CircuitEvent[], clock: { now: number }, result: (status: number, failure?: string | null, latencyMs?: number) => void } {
  const events: CircuitEvent[] = []
  let listener: Listener | null = null
  const host: BreakerHost = {
    options: { timeout: 5000 },
    onResult: (l) => { listener = l },
    emit: (_event, change) => events.push(change) > 0
  }
  const clock = { now: 1_000_000 }
  const breaker = new CircuitBreaker(host, resolveCircuitBreaker('p', options)!, () => clock.now)
  const result = (status: number, failure: string | null = null, latencyMs = 0): void => listener!({}, status, failure, latencyMs)
  return { breaker, events, clock, result }
}

/** Outcomes as letters: o an answer below 500, x a 500, c a refused connection, a a client that left. */
function play (result: (status: number, failure?: string | null, latencyMs?: number) => void, outcomes: string): void {
  for (const o of outcomes) {
    if (o === 'o') result(200)
    else if (o === 'x') result(500)
    else if (o === 'c') result(0, 'connect')
    else if (o === 'a') result(0, 'aborted')
  }
}

test('closed: opens at the first result that, with minRequests counted, reaches the failure ratio', async (t) => {
  const { breaker, events, result } = setUp({ failureRatio: 0.5, minRequests: 4, window: 10_000, openFor: 5000, halfOpenRequests: 2 })
  t.teardown(() => breaker.stop())
  play(result, 'xxx')
  t.equal(breaker.state, 'closed', 'three failures are fewer than minRequests')
  play(result, 'o')
  t.equal(breaker.state, 'open', '3 of 4 failed')
  t.same(events, [{ from: 'closed', to: 'open', failureRatio: 0.75, slowCallRatio: 0, calls: 4 }])
  t.same(breaker.transitions, { closed: 0, 'half-open': 0, open: 1 })
})

test('closed: a ratio below the threshold keeps it closed; one equal to it opens (>=)', async (t) => {
  const { breaker, result } = setUp({ failureRatio: 0.6, minRequests: 5, openFor: 5000 })
  t.teardown(() => breaker.stop())
  play(result, 'xoxoo')
  t.equal(breaker.state, 'closed', '2 of 5')
  play(result, 'cx')
  t.equal(breaker.state, 'closed', '4 of 7 is below 0.6')
  play(result, 'c')
  t.equal(breaker.state, 'open', '5 of 8 is above 0.6')
  const exact = setUp({ failureRatio: 0.6, minRequests: 5 })
  t.teardown(() => exact.breaker.stop())
  play(exact.result, 'xoxox')
  t.equal(exact.breaker.state, 'open', '3 of 5 is exactly 0.6')
})

test('clients that left and the gateway\'s own failures neither count nor dilute', async (t) => {
  const { breaker, result } = setUp({ failureRatio: 0.5, minRequests: 2 })
  t.teardown(() => breaker.stop())
  play(result, 'aaaa')
  result(0, 'queue')
  t.equal(breaker.snapshot().calls, 0)
  play(result, 'xa')
  t.equal(breaker.state, 'closed', 'one counted call')
  play(result, 'o')
  t.equal(breaker.state, 'open', '1 of 2')
})

test('open: every request refused until openFor; Retry-After counts down to half-open', async (t) => {
  const { breaker, events, clock, result } = setUp({ minRequests: 1, openFor: 2500, halfOpenRequests: 2 })
  t.teardown(() => breaker.stop())
  t.equal(breaker.admit(), true, 'closed admits')
  t.equal(breaker.retryAfterSeconds(), 1)
  play(result, 'x')
  t.same([breaker.admit(), breaker.admit()], [false, false])
  t.equal(breaker.rejected, 2)
  t.equal(breaker.retryAfterSeconds(), 3, '2.5 s rounded up')
  clock.now += 1600
  t.equal(breaker.retryAfterSeconds(), 1)
  play(result, 'o')
  t.same(breaker.snapshot().calls, 1, 'results while open change nothing: the calls that opened it stay shown')
  clock.now += 899
  t.equal(breaker.admit(), false, '1 ms before openFor')
  t.equal(breaker.snapshot().halfOpenInMs, 1)
  clock.now += 1
  t.equal(breaker.admit(), true, 'at openFor the first trial goes (the timer had not run yet)')
  t.equal(breaker.state, 'half-open')
  t.same(events.map((e) => `${e.from}>${e.to}`), ['closed>open', 'open>half-open'])
  t.same(events[1], { from: 'open', to: 'half-open', failureRatio: null, slowCallRatio: null, calls: 0 })
})

test('half-open: halfOpenRequests trials, others refused; trials below the ratio close it', async (t) => {
  const { breaker, events, clock, result } = setUp({ failureRatio: 0.5, minRequests: 1, openFor: 1000, halfOpenRequests: 3 })
  t.teardown(() => breaker.stop())
  play(result, 'x')
  clock.now += 1000
  t.same([breaker.admit(), breaker.admit(), breaker.admit(), breaker.admit()], [true, true, true, false])
  t.equal(breaker.retryAfterSeconds(), 1)
  play(result, 'xo')
  t.equal(breaker.state, 'half-open', 'two of three trials reported')
  t.same(breaker.snapshot(), { state: 'half-open', failureRatio: 0.5, slowCallRatio: 0, calls: 2, rejected: 1, openedMsAgo: 1000, halfOpenInMs: null })
  play(result, 'o')
  t.equal(breaker.state, 'closed', '1 of 3 failed')
  t.same(events.at(-1), { from: 'half-open', to: 'closed', failureRatio: 1 / 3, slowCallRatio: 0, calls: 3 })
  t.equal(breaker.snapshot().calls, 0, 'the window starts afresh')
  t.equal(breaker.admit(), true)
})

test('half-open: trials at the ratio open it again for openFor', async (t) => {
  const { breaker, events, clock, result } = setUp({ failureRatio: 0.5, minRequests: 1, openFor: 1000, halfOpenRequests: 2 })
  t.teardown(() => breaker.stop())
  play(result, 'x')
  clock.now += 1000
  breaker.admit()
  breaker.admit()
  play(result, 'ox')
  t.equal(breaker.state, 'open')
  t.equal(breaker.retryAfterSeconds(), 1)
  t.equal(breaker.admit(), false)
  clock.now += 1000
  t.equal(breaker.admit(), true)
  t.same(events.map((e) => `${e.from}>${e.to}:${String(e.failureRatio)}`), ['closed>open:1', 'open>half-open:null', 'half-open>open:0.5', 'open>half-open:null'])
  t.same(breaker.transitions, { closed: 0, 'half-open': 2, open: 2 })
})

test('half-open: a trial whose client left gives its slot back; one not reported within the pool\'s timeout is given again', async (t) => {
  const { breaker, clock, result } = setUp({ minRequests: 1, openFor: 1000, halfOpenRequests: 2 })
  t.teardown(() => breaker.stop())
  play(result, 'x')
  clock.now += 1000
  t.same([breaker.admit(), breaker.admit(), breaker.admit()], [true, true, false])
  play(result, 'a')
  t.same([breaker.admit(), breaker.admit()], [true, false], 'the aborted trial\'s slot')
  play(result, 'o')
  clock.now += 4999
  t.equal(breaker.admit(), false, 'two trials out, one reported')
  clock.now += 1
  t.same([breaker.admit(), breaker.admit()], [true, false], 'after the timeout the missing slot is given again, once')
  play(result, 'o')
  t.equal(breaker.state, 'closed')
})

test('half-open: a result of a try sent before it turned half-open is no trial', async (t) => {
  const { breaker, clock, result } = setUp({ minRequests: 1, openFor: 1000, halfOpenRequests: 1 })
  t.teardown(() => breaker.stop())
  play(result, 'x')
  clock.now += 1000
  breaker.admit()
  clock.now += 10
  result(200, null, 1500)
  t.equal(breaker.state, 'half-open', 'it began before the half-open state')
  result(200, null, 5)
  t.equal(breaker.state, 'closed')
})

test('slow calls: longer than slowCallMs, failed or not, against slowCallRatio', async (t) => {
  const { breaker, events, result } = setUp({ failureRatio: 1, slowCallMs: 100, slowCallRatio: 0.5, minRequests: 4 })
  t.teardown(() => breaker.stop())
  result(200, null, 100)
  result(200, null, 101)
  result(500, null, 30)
  t.equal(breaker.snapshot().slowCallRatio, 1 / 3, '100 ms is not slow, 101 ms is')
  result(0, 'timeout', 250)
  t.equal(breaker.state, 'open')
  t.same(events[0], { from: 'closed', to: 'open', failureRatio: 0.5, slowCallRatio: 0.5, calls: 4 })
  const off = setUp({ minRequests: 1 })
  t.teardown(() => off.breaker.stop())
  off.result(200, null, 3_000_000)
  t.equal(off.breaker.state, 'closed', 'without slowCallMs no call is slow')
})

test('the window holds the last window/1000 seconds, the current one included', async (t) => {
  const { breaker, clock, result } = setUp({ window: 3000, minRequests: 4 })
  t.teardown(() => breaker.stop())
  clock.now = 10_000
  play(result, 'xx')
  clock.now = 12_999
  play(result, 'o')
  t.equal(breaker.snapshot().calls, 3, 'seconds 10 to 12')
  clock.now = 13_000
  t.equal(breaker.snapshot().calls, 1, 'second 10 left')
  play(result, 'xx')
  t.equal(breaker.state, 'closed', '3 calls in the window: fewer than minRequests')
  clock.now = 100_000
  t.equal(breaker.snapshot().calls, 0, 'a long silence empties it')
})

test('SlidingWindow: exact totals as time moves, a clock stepping back stays in the newest second', async (t) => {
  const w = new SlidingWindow(2)
  const seen: number[][] = []
  const step = (now: number, failed: boolean, slow: boolean): void => {
    w.add(now, failed, slow)
    seen.push([w.calls, w.failures, w.slow])
  }
  step(0, true, false)
  step(999, false, true)
  step(1000, true, true)
  step(500, false, false)
  step(2000, false, false)
  step(4500, true, false)
  t.same(seen, [[1, 1, 0], [2, 1, 1], [3, 2, 2], [4, 2, 2], [3, 1, 1], [1, 1, 0]])
  w.reset()
  t.same([w.calls, w.failures, w.slow], [0, 0, 0])
})

test('stop() ends the open timer; the next request still finds openFor over', async (t) => {
  const { breaker, clock, result } = setUp({ minRequests: 1, openFor: 60_000 })
  play(result, 'x')
  breaker.stop()
  play(result, 'o')
  clock.now += 60_000
  t.equal(breaker.admit(), true)
  play(result, 'x')
  t.equal(breaker.state, 'half-open')
})
