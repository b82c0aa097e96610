import { join } from 'node:path'
import type { Test } from 'tap'
import { request } from 'undici'
import { eventually, freePort } from './external'
import { Restartable, tempDir } from './servers'

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64')

/**
 * A real single-member etcd on loopback ports, with its data in a temporary
 * directory, so a stopped server starts again with the same keys. Keys are
 * written through the v3 HTTP/JSON gateway.
 */
export class Etcd {
  readonly url: string
  private readonly process: Restartable

  private constructor (t: Test, path: string, dir: string, clientPort: number, peerPort: number) {
    this.url = `http://127.0.0.1:${clientPort}`
    const peer = `http://127.0.0.1:${peerPort}`
    this.process = new Restartable(t, path, () => [
      '--name', 'test',
      '--data-dir', join(dir, 'data'),
      '--listen-client-urls', this.url,
      '--advertise-client-urls', this.url,
      '--listen-peer-urls', peer,
      '--initial-advertise-peer-urls', peer,
      '--initial-cluster', `test=${peer}`
    ])
  }

  /** Starts etcd (the program at `path`) and waits until it serves requests. */
  static async start (t: Test, path: string): Promise<Etcd> {
    const dir = await tempDir(t, 'etcd')
    const clientPort = await freePort()
    let peerPort = await freePort()
    while (peerPort === clientPort) peerPort = await freePort()
    const etcd = new Etcd(t, path, dir, clientPort, peerPort)
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

  private async call (path: string, body: unknown): Promise<unknown> {
    const res = await request(this.url + path, { method: 'POST', body: JSON.stringify(body), headersTimeout: 5000, bodyTimeout: 5000 })
    const text = await res.body.text()
    if (res.statusCode !== 200) throw new Error(`etcd ${path} answered ${res.statusCode}: ${text}`)
    return JSON.parse(text)
  }
}
