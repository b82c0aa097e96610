import { Resolver } from 'node:dns/promises'
import { writeFile } from 'node:fs/promises'
import { userInfo } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { eventually, freePort } from './external'
import { Restartable, tempDir } from './servers'

export interface SrvRecord {
  /** e.g. '_http._tcp.api.test' */
  name: string
  /** The host name the record points at (give it an address in `hosts`). */
  target: string
  port: number
  priority?: number
  weight?: number
}

export interface DnsRecords {
  srv?: SrvRecord[]
  /** Address records: [name, address]. Several lines with one name give several addresses. */
  hosts?: Array<[string, string]>
}

/**
 * A real dnsmasq on a loopback port, authoritative for the `.test` domain
 * (unknown names there are NXDOMAIN). Address records live in a hosts file
 * that SIGHUP reloads; SRV records are configuration, so changing them
 * restarts the server on the same port.
 */
export class Dnsmasq {
  readonly port: number
  private readonly dir: string
  private readonly process: Restartable
  private readonly ttl: number
  private records: DnsRecords

  private constructor (t: Test, path: string, dir: string, port: number, records: DnsRecords, ttl: number) {
    this.dir = dir
    this.port = port
    this.records = records
    this.ttl = ttl
    this.process = new Restartable(t, path, () => [
      '--keep-in-foreground',
      `--conf-file=${join(dir, 'dnsmasq.conf')}`,
      '--pid-file=',
      '--log-facility=-'
    ])
  }

  /** Starts dnsmasq (the program at `path`) with these records; `ttl` is the TTL of every answer, in seconds. */
  static async start (t: Test, path: string, records: DnsRecords, ttl = 1): Promise<Dnsmasq> {
    const dir = await tempDir(t, 'dnsmasq')
    const server = new Dnsmasq(t, path, dir, await freePort(), records, ttl)
    await server.start()
    return server
  }

  /** The address to give a resolver: '127.0.0.1:<port>'. */
  get address (): string {
    return `127.0.0.1:${this.port}`
  }

  get running (): boolean {
    return this.process.running
  }

  async start (): Promise<void> {
    await this.writeConfig()
    this.process.start()
    const resolver = new Resolver({ timeout: 200, tries: 1 })
    resolver.setServers([this.address])
    await eventually(async () => {
      if (!this.process.running) throw new Error(`dnsmasq exited: ${this.process.output()}`)
      return resolver.resolve4('ready.test')
    }, (a) => a.length === 1, 10_000, 'dnsmasq to answer')
  }

  async stop (): Promise<void> {
    await this.process.stop()
  }

  /** Replaces the address records and has the running server reload them (SIGHUP). */
  async setHosts (hosts: Array<[string, string]>): Promise<void> {
    this.records = { ...this.records, hosts }
    const hostsFile = join(this.dir, 'hosts')
    const reads = (): number => this.process.output().split(`read ${hostsFile}`).length
    const before = reads()
    await this.writeHosts()
    const pid = this.process.pid
    if (pid === undefined || !this.process.running) throw new Error('dnsmasq is not running')
    process.kill(pid, 'SIGHUP')
    await eventually(async () => reads(), (n) => n > before, 10_000, 'dnsmasq to reload its hosts file')
  }

  /** Replaces every record; SRV records need a restart. */
  async setRecords (records: DnsRecords): Promise<void> {
    this.records = records
    await this.stop()
    await this.start()
  }

  private async writeHosts (): Promise<void> {
    const lines = [['ready.test', '127.0.0.1'], ...(this.records.hosts ?? [])].map(([name, address]) => `${address} ${name}`)
    await writeFile(join(this.dir, 'hosts'), lines.join('\n') + '\n')
  }

  private async writeConfig (): Promise<void> {
    await this.writeHosts()
    const config = [
      `port=${this.port}`,
      'listen-address=127.0.0.1',
      'bind-interfaces',
      'no-resolv',
      'no-hosts',
      'no-poll',
      `addn-hosts=${join(this.dir, 'hosts')}`,
      // Authoritative for .test: unknown names are NXDOMAIN, not REFUSED.
      'local=/test/',
      `local-ttl=${this.ttl}`,
      // As root dnsmasq would switch to a user that may not read the temporary directory.
      `user=${userInfo().username}`,
      ...(this.records.srv ?? []).map((r) => `srv-host=${r.name},${r.target},${r.port},${r.priority ?? 0},${r.weight ?? 0}`)
    ]
    await writeFile(join(this.dir, 'dnsmasq.conf'), config.join('\n') + '\n')
  }
}
