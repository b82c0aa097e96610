import type { Target } from './target'

/**
 * The one answer to "may this target take a request?", from the flags a
 * target carries: admin (enabled, keepSticky, draining), health (active
 * checks, outlier ejection) and load (full at its connection limit). The
 * pool's pickable sets, panic mode, tier shares, affinity, metrics and the
 * status page all ask here, as HAProxy asks srv_currently_usable(); a new
 * condition is a new flag in these functions, not a new check elsewhere. The
 * flags change only through pool methods, each of which rebuilds what depends on them.
 */

/** Switched on and staying: neither disabled nor draining. */
export function isLive (t: Target): boolean {
  return t.enabled && !t.draining
}

/** Its active checks pass and outlier detection has not ejected it. */
export function passesHealth (t: Target): boolean {
  return t.healthy && t.ejectedUntil === 0
}

/** Below its connection limit (or without one). */
export function hasRoom (t: Target): boolean {
  return !t.full
}

/** Live and healthy, whatever its load: what panic mode and tier shares count. */
export function isServing (t: Target): boolean {
  return isLive(t) && passesHealth(t)
}

/** May be picked for a new request now (in panic mode, health aside: see mayBePickedInPanic). */
export function mayBePicked (t: Target): boolean {
  return isServing(t) && hasRoom(t)
}

/** Picked in panic mode, when too few targets pass their health: every one that is live and has room. */
export function mayBePickedInPanic (t: Target): boolean {
  return isLive(t) && hasRoom(t)
}

/**
 * May serve a client that affinity pins to it: every target that may be picked,
 * and besides those a draining one, or a disabled one told to keep its sticky
 * clients, as long as it passes its health and has room.
 */
export function mayServePinned (t: Target): boolean {
  return (t.enabled || t.keepSticky) && passesHealth(t) && hasRoom(t)
}
