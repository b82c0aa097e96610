import type { FastifyReply, FastifyRequest } from 'fastify'
import { answers } from '../errors'
import type { Target } from '../pool/target'
import { Exchange } from './exchange'
import { knownStateOf } from './request-state'
import { Tunnel } from '../tunnel/tunnel'
import { upgradeOf, type ClientSocket } from '../tunnel/upgrades'
import { ASTERISK_ALLOW, climbs, isWebSocketUpgrade, upstreamPath } from './request-path'

/** The route handler that proxies a request to request.target, with failover. */
export function forward (request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const state = knownStateOf(request)
  const upstream = state?.upstream ?? null
  const target = request.target
  if (state === null || upstream === null || target === null) {
    answers.noRoutePool(reply)
    return reply
  }
  const pool = upstream.pool
  const raw = request.raw
  let client: ClientSocket | undefined
  if (raw.headers.upgrade !== undefined && isWebSocketUpgrade(raw.headers.upgrade)) {
    client = upgradeOf(raw)
    // An upgrade the plugin did not route holds no socket to tunnel (inject(), an HTTP/2 gateway): the upstream would see a plain GET.
    if (client === undefined) {
      answers.upgradeUnsupported(reply, pool.name)
      return reply
    }
  }
  const rawUrl = raw.url ?? '/'
  if (rawUrl === '*') {
    // OPTIONS * asks about the server the client talks to, the gateway, and undici sends no asterisk-form target.
    if (request.method === 'OPTIONS') reply.code(204).header('allow', ASTERISK_ALLOW).send()
    else answers.asteriskNotOptions(reply, pool.name)
    return reply
  }
  const url = upstreamPath(rawUrl)
  const q = url.indexOf('?')
  let path = q === -1 ? url : url.slice(0, q)
  if (climbs(path)) {
    answers.badPath(reply, pool.name)
    return reply
  }
  // URL parsers read a backslash as '/' in http paths, so /a\..\..\x would climb out of the target's base path: send it escaped.
  if (path.includes('\\')) path = path.replaceAll('\\', '%5C')
  if (client !== undefined) {
    new Tunnel(upstream, state, client, q === -1 ? path : path + url.slice(q), upstream.client).send(target as Target)
    return reply
  }
  const exchange = new Exchange(upstream, state, path, q === -1 ? '' : url.slice(q + 1))
  state.exchange = exchange
  state.listenClose()
  pool.retryBudget.deposit()
  exchange.send(target as Target, false)
  // After the request's own try is on its way: the copy takes nothing from it.
  if (upstream.mirror !== null) upstream.mirror.offer(request, q === -1 ? path : path + url.slice(q), state.rawBody)
  return reply
}
