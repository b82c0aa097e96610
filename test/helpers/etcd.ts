import { generateKeyPairSync } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Test } from 'tap'
import { Agent, request } from 'undici'
import { prefixEnd } from '../../lib/discovery/providers/etcd'
import type { TestCertificates } from './certs'
import type { Member, Publish } from './discovery-scenario'
import { eventually, freePort } from './external'
import { Restartable, tempDir } from './servers'

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64')

export interface EtcdOptions {
  /**
   * Serve clients over https with the server certificate; with clientCertAuth,
   * only to clients with a certificate signed by the CA. The helper's own
   * requests trust the CA and present the client certificate.
   */
  tls?: { certs: TestCertificates, clientCertAuth?: boolean }
  /** --auth-token-ttl, in seconds (etcd's default: 300): how long a simple token lives without use. */
  authTokenTtl?: number
  /** JWT tokens (ES256, with a key pair made for the run) that live this many seconds, instead of simple tokens. */
  jwtTtl?: number
}

/**
 * A real single-member etcd on loopback ports, with its data in a temporary
 * directory, so a stopped server starts again with the same keys. Keys are
 * written through the v3 HTTP/JSON gateway, as root once authentication is on.
 */
export class Etcd {
  readonly url: string
  private readonly process: Restartable
  private readonly agent: Agent | undefined
  /** root's password once enableAuth() turned authentication on. */
  private rootPassword: string | null = null

  private constructor (t: Test, path: string, dir: string, clientPort: number, peerPort: number, options: EtcdOptions) {
    const { tls, authTokenTtl } = options
    this.url = `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${clientPort}`
    const peer = `http://127.0.0.1:${peerPort}`
    const extra: string[] = []
    this.agent = undefined
    if (tls !== undefined) {
      extra.push('--cert-file', tls.certs.server.certFile, '--key-file', tls.certs.server.keyFile)
      if (tls.clientCertAuth === true) extra.push('--client-cert-auth', '--trusted-ca-file', tls.certs.caFile)
      const agent = new Agent({ connect: { ca: tls.certs.ca, cert: tls.certs.client.cert, key: tls.certs.client.key } })
      t.teardown(async () => { await agent.close() })
      this.agent = agent
    }
    if (authTokenTtl !== undefined) extra.push('--auth-token-ttl', String(authTokenTtl))
    if (options.jwtTtl !== undefined) {
      const pair = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
      writeFileSync(join(dir, 'jwt.key'), pair.privateKey.export({ type: 'pkcs8', format: 'pem' }))
      writeFileSync(join(dir, 'jwt.pub'), pair.publicKey.export({ type: 'spki', format: 'pem' }))
      extra.push('--auth-token', `jwt,pub-key=${join(dir, 'jwt.pub')},priv-key=${join(dir, 'jwt.key')},sign-method=ES256,ttl=${options.jwtTtl}s`)
    }
    this.process = new Restartable(t, path, () => [
      '--name', 'test',
      '--data-dir', join(dir, 'data'),
      '--listen-client-urls', this.url,
      '--advertise-client-urls', this.url,
      '--listen-peer-urls', peer,
      '--initial-advertise-peer-urls', peer,
      '--initial-cluster', `test=${peer}`,
      // Tests authenticate often: the cheapest password hashing etcd allows.
      '--bcrypt-cost', '4',
      ...extra
    ])
  }

  /** Starts etcd (the program at `path`) and waits until it serves requests. */
  static async start (t: Test, path: string, options: EtcdOptions = {}): Promise<Etcd> {
    const dir = await tempDir(t, 'etcd')
    const clientPort = await freePort()
    let peerPort = await freePort()
    while (peerPort === clientPort) peerPort = await freePort()
    const etcd = new Etcd(t, path, dir, clientPort, peerPort, options)
    await etcd.start()
    return etcd
  }

  get running (): boolean {
    return this.process.running
  }

  async start (): Promise<void> {
    this.process.start()
    await eventually(async () => {
      if (!this.process.running) throw new Error(`etcd exited: ${this.process.output()}`)
      return this.call('/v3/kv/range', { key: b64('ready') })
    }, () => true, 20_000, 'etcd to serve')
  }

  async stop (): Promise<void> {
    await this.process.stop()
  }

  async put (key: string, value: unknown): Promise<void> {
    await this.call('/v3/kv/put', { key: b64(key), value: b64(typeof value === 'string' ? value : JSON.stringify(value)) })
  }

  async delete (key: string): Promise<void> {
    await this.call('/v3/kv/deleterange', { key: b64(key) })
  }

  /** Turns authentication on, with a root user; the helper's own requests authenticate as root from then on. */
  async enableAuth (rootPassword: string): Promise<void> {
    await this.call('/v3/auth/user/add', { name: 'root', password: rootPassword })
    // etcd refuses to enable authentication until root holds the root role, which must exist first.
    await this.call('/v3/auth/role/add', { name: 'root' })
    await this.call('/v3/auth/user/grant', { user: 'root', role: 'root' })
    await this.call('/v3/auth/enable', {})
    this.rootPassword = rootPassword
  }

  /** A user whose only permission is to read the keys under prefix (which a range and a watch need). */
  async addReader (name: string, password: string, prefix: string): Promise<void> {
    const role = `${name}-reads`
    await this.call('/v3/auth/user/add', { name, password })
    await this.call('/v3/auth/role/add', { name: role })
    const key = Buffer.from(prefix, 'utf8')
    await this.call('/v3/auth/role/grant', { name: role, perm: { permType: 'READ', key: key.toString('base64'), range_end: prefixEnd(key).toString('base64') } })
    await this.call('/v3/auth/user/grant', { user: name, role })
  }

  /** A token for the user, as POST /v3/auth/authenticate gives it. */
  async authenticate (name: string, password: string): Promise<string> {
    const answer = await this.send('/v3/auth/authenticate', { name, password }, undefined)
    const token = (answer as { token?: unknown }).token
    if (typeof token !== 'string') throw new Error(`etcd gave no token: ${JSON.stringify(answer)}`)
    return token
  }

  /**
   * Sends a request to the JSON gateway with `token` (null: none), by default
   * as root once authentication is on; throws on a status other than 200.
   */
  async call (path: string, body: unknown, token?: string | null): Promise<unknown> {
    if (token === undefined && this.rootPassword !== null) token = await this.authenticate('root', this.rootPassword)
    return this.send(path, body, token ?? undefined)
  }

  private async send (path: string, body: unknown, authorization: string | undefined): Promise<unknown> {
    const res = await request(this.url + path, {
      dispatcher: this.agent,
      method: 'POST',
      headers: authorization === undefined ? {} : { authorization },
      body: JSON.stringify(body),
      headersTimeout: 5000,
      bodyTimeout: 5000
    })
    const text = await res.body.text()
    if (res.statusCode !== 200) throw new Error(`etcd ${path} answered ${res.statusCode}: ${text}`)
    return JSON.parse(text)
  }
}

/**
 * Publishes complete member lists under prefix, one key per upstream id
 * holding a JSON target: each call writes its members and deletes the keys of
 * the previous call's members that left.
 */
export function etcdPublisher (etcd: Etcd, prefix: string): Publish {
  const previous = new Set<string>()
  return async (members: Member[]): Promise<void> => {
    const now = new Set(members.map((m) => m.upstream.id))
    for (const m of members) await etcd.put(prefix + m.upstream.id, { url: m.upstream.url, weight: m.weight, id: m.upstream.id })
    for (const id of previous) if (!now.has(id)) await etcd.delete(prefix + id)
    previous.clear()
    for (const id of now) previous.add(id)
  }
}
