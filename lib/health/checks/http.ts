import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { describeSocketError, type CancelCheck, type CheckDone, type CheckEndpoint } from './endpoint'
import type { ResolvedHealthCheck } from '../options'
import type { ResolvedTls } from '../../options/tls'

/** The part of the body a body match reads: health pages are small, and a huge one must not cost more. */
export const MAX_BODY_CHARS = 64 * 1024

function statusPasses (check: ResolvedHealthCheck, status: number): boolean {
  for (const [from, to] of check.expectedStatuses) if (status >= from && status <= to) return true
  return false
}

function bodyPasses (match: string | RegExp, body: string): boolean {
  return typeof match === 'string' ? body.includes(match) : match.test(body)
}

/**
 * One HTTP check on a connection of its own (no keep-alive), so it also proves
 * that the target accepts new connections. Passes on an expected status and,
 * when configured, a matching body, all within the check's timeout.
 */
export function httpCheck (endpoint: CheckEndpoint, check: ResolvedHealthCheck, tls: ResolvedTls, done: CheckDone): CancelCheck {
  let open = true
  const headers: Record<string, string> = { 'user-agent': 'fastify-lb-health-check', connection: 'close' }
  if (check.host !== null) headers.host = check.host
  const options: RequestOptions & Partial<ResolvedTls> = {
    host: endpoint.hostname,
    port: endpoint.port,
    method: check.method,
    path: endpoint.basePath + check.path,
    headers,
    agent: false
  }
  if (endpoint.tls) {
    options.rejectUnauthorized = tls.rejectUnauthorized
    options.ca = tls.ca
    options.servername = tls.servername
  }
  const onResponse = (res: IncomingMessage): void => {
    const status = res.statusCode ?? 0
    const match = check.body
    if (!statusPasses(check, status) || match === null) {
      res.resume()
      finish(statusPasses(check, status) ? undefined : `status ${status}`)
      return
    }
    let body = ''
    res.setEncoding('utf8')
    res.on('data', (chunk: string) => {
      body += chunk
      if (body.length >= MAX_BODY_CHARS) finish(bodyPasses(match, body.slice(0, MAX_BODY_CHARS)) ? undefined : 'body mismatch')
    })
    res.once('end', () => finish(bodyPasses(match, body) ? undefined : 'body mismatch'))
    res.on('error', (err) => finish(describeSocketError(err)))
  }
  const req = (endpoint.tls ? httpsRequest : httpRequest)(options, onResponse)
  const stop = (): void => {
    open = false
    clearTimeout(timer)
    req.destroy()
  }
  const finish = (error: string | undefined): void => {
    if (!open) return
    stop()
    done(error)
  }
  const timer = setTimeout(() => finish('timeout'), check.timeout)
  timer.unref()
  req.on('error', (err) => finish(describeSocketError(err)))
  req.end()
  return stop
}
