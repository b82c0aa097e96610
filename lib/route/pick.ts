import type { HookHandlerDoneFunction } from 'fastify'
import { answers } from '../errors'
import { fallBack } from '../forward/fallback'
import type { UnavailableReason } from '../forward/fallback-options'
import { readPickInput } from '../forward/pick-input'
import type { RequestState } from '../forward/request-state'
import type { Target } from '../pool/target'

/**
 * Chooses the target of a request on its route's pool (state.upstream), in the
 * route's pick hook: the affinity cookie, then the pool's algorithm. A pool
 * that cannot serve it queues it (every target full, with a queue) or refuses
 * it, through its fallback if it has one for the reason.
 */
export function pickFor (state: RequestState, done: HookHandlerDoneFunction): void {
  const pool = state.pool
  if (pool === null) return
  // An open circuit answers before anything is picked, and without contacting an upstream.
  const breaker = pool.breaker
  if (breaker !== null && !breaker.admit()) {
    refuse(state, 'circuit_open', done)
    return
  }
  readPickInput(pool, state.request, state)
  const waiting = pool.waiting
  // Behind those already waiting: a slot freed now is theirs, in the order they came.
  if (waiting !== null && waiting.length > 0) {
    overloaded(state, done)
    return
  }
  const affinity = pool.affinity
  // A valid affinity cookie first; strict affinity answers 503 rather than move a pinned client.
  const target = affinity === null ? pool.pick(state) : affinity.pick(state)
  if (target !== undefined) {
    go(state, target, done)
    return
  }
  if (affinity !== null && affinity.holds(state)) {
    // Strict affinity keeps it on its target: full, it may neither wait for another target nor move to one.
    if (affinity.pinnedFull) {
      pool.overloaded.full++
      refuse(state, 'overloaded', done)
    } else {
      noTarget(state, done)
    }
  } else if (pool.saturated) {
    overloaded(state, done)
  } else {
    noTarget(state, done)
  }
}

/** No target may take the request (the pool counts it whatever answers it then). */
function noTarget (state: RequestState, done: HookHandlerDoneFunction): void {
  const pool = state.pool
  if (pool !== null) pool.noTarget++
  refuse(state, 'no_target', done)
}

function go (state: RequestState, target: Target, done: HookHandlerDoneFunction): void {
  const pool = state.pool
  // With limits, the slot is the request's from now: the route's other hooks may take their time.
  if (pool !== null && pool.limited) state.reserve(pool, target)
  state.request.target = target
  done()
}

/** Every target is full: the request waits in the queue if there is room, else it is refused. */
function overloaded (state: RequestState, done: HookHandlerDoneFunction): void {
  const pool = state.pool
  if (pool === null) return
  if (pool.waiting === null) {
    pool.overloaded.full++
  } else if (pool.enqueue(state)) {
    state.wait(done, (expired) => {
      pool.overloaded.queue_timeout++
      refuse(expired, 'overloaded', done)
    })
    return
  } else {
    pool.overloaded.queue_full++
  }
  refuse(state, 'overloaded', done)
}

/** The pool cannot serve the request: its fallback does, or the gateway's own 503 answers. */
export function refuse (state: RequestState, reason: Exclude<UnavailableReason, 'failed'>, done: HookHandlerDoneFunction): void {
  const outcome = fallBack(state, reason)
  if (outcome === 'moved') {
    pickFor(state, done)
    return
  }
  if (outcome === 'answered') return
  const pool = state.pool
  const name = pool?.name ?? ''
  if (reason === 'overloaded') answers.overloaded(state.answer, name)
  else if (reason === 'circuit_open') answers.circuitOpen(state.answer, name, pool?.breaker?.retryAfterSeconds() ?? 1)
  else answers.noTarget(state.answer, name)
}
