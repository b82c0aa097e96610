import type { Target } from './target'

/**
 * The one answer to "may this target take a request?", from the flags a
 * target carries: admin (enabled, keepSticky, draining) and health (active
 * checks, outlier ejection). The pool's pickable set, panic mode, affinity,
 * metrics and the status page all ask here, as HAProxy asks
 * srv_currently_usable(); a new condition (a connection limit, a tier) is a
 * new flag in these functions, not a new check elsewhere. The flags change
 * only through pool methods, each of which rebuilds the pickable set.
 */

/** Its active checks pass and outlier detection has not ejected it. */
export function passesHealth (t: Target): boolean {
  return t.healthy && t.ejectedUntil === 0
}

/** May be picked for a new request (in panic mode, health aside: see mayBePickedInPanic). */
export function mayBePicked (t: Target): boolean {
  return t.enabled && !t.draining && passesHealth(t)
}

/** Picked in panic mode, when too few targets pass their health: every one that is switched on and staying. */
export function mayBePickedInPanic (t: Target): boolean {
  return t.enabled && !t.draining
}

/**
 * May serve a client that affinity pins to it: every target that may be picked,
 * and besides those a draining one, or a disabled one told to keep its sticky
 * clients, as long as it passes its health.
 */
export function mayServePinned (t: Target): boolean {
  return (t.enabled || t.keepSticky) && passesHealth(t)
}
