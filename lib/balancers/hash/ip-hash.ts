import type { Balancer, BalancerOptions, PickContext } from '../balancer'
import { hashRing } from './ring'

function clientAddress (ctx: PickContext): string {
  return ctx.ip
}

/**
 * The whole client address (IPv4 or IPv6, as request.ip gives it) on a
 * consistent ring: one address always lands on one target, and removing a
 * target moves only the addresses it had.
 */
export function ipHash (options: BalancerOptions = {}): Balancer {
  return hashRing(options, clientAddress)
}
