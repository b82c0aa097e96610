import type { Logger } from '../types'
import type { Pool } from '../pool/pool'
import { ConsulProvider } from './providers/consul'
import { DnsProvider } from './providers/dns'
import { EtcdProvider } from './providers/etcd'
import { FileProvider } from './providers/file'
import type { ResolvedDiscovery } from './options'
import { PoolDiscovery } from './pool-discovery'
import type { Provider } from './provider'

export function createProvider (pool: string, options: ResolvedDiscovery): Provider {
  switch (options.type) {
    case 'file': return new FileProvider(pool, options)
    case 'dns': return new DnsProvider(pool, options)
    case 'consul': return new ConsulProvider(pool, options)
    case 'etcd': return new EtcdProvider(pool, options)
  }
}

/** The discovery of every pool that has providers: started when the gateway is ready, stopped when it closes. */
export class Discovery {
  private readonly pools: PoolDiscovery[] = []
  private readonly log: Logger

  constructor (log: Logger) {
    this.log = log
  }

  /** Takes a pool in; pools without a `discovery` option are left alone. */
  attach (pool: Pool): void {
    const specs = pool.options.discovery
    if (specs.length === 0) return
    this.pools.push(new PoolDiscovery(pool, specs.map((spec) => createProvider(pool.name, spec)), this.log))
  }

  /** Starts every provider; resolves when each has answered (or failed) once, so the gateway starts with their lists. */
  async start (): Promise<void> {
    await Promise.all(this.pools.map(async (p) => p.start()))
  }

  async stop (): Promise<void> {
    await Promise.all(this.pools.map(async (p) => p.stop()))
  }
}

export type { DiscoveryEvent } from './provider'
export type { DiscoveryOptions, FileDiscoveryOptions, DnsDiscoveryOptions, ConsulDiscoveryOptions, EtcdDiscoveryOptions, EtcdTlsOptions, RegistryTlsOptions, OnEmpty } from './options'
