import { Writable } from 'node:stream'
import type { CheckEvent, TransitionEvent } from '../../lib/health/monitor'
import type { HealthRegistry } from '../../lib/health/registry'

/** One active check as a test sees it: its result and the target's state right after it. */
export interface SeenCheck {
  ok: boolean
  error?: string
  healthy: boolean
}

/**
 * Records every check and transition of one target id, with the state the
 * registry reached after each check (read synchronously, so nothing can slip in between).
 */
export class HealthLog {
  readonly checks: SeenCheck[] = []
  readonly transitions: TransitionEvent[] = []

  constructor (registry: HealthRegistry, readonly id: string) {
    registry.on('check', (event: CheckEvent) => {
      if (event.id !== id) return
      const monitor = [...registry.monitors()].find((m) => m.id === id)
      this.checks.push({ ok: event.ok, error: event.error, healthy: monitor?.healthy ?? true })
    })
    registry.on('transition', (event: TransitionEvent) => {
      if (event.id === id) this.transitions.push(event)
    })
  }

  /** The checks from the first one with result `ok` on (inclusive). */
  from (ok: boolean, start = 0): SeenCheck[] {
    const at = this.checks.findIndex((c, i) => i >= start && c.ok === ok)
    return at < 0 ? [] : this.checks.slice(at)
  }
}

/**
 * Resolves once `holds()` is true, asking again after each check and transition
 * the registry reports (so listeners added before this one have recorded it);
 * fails after timeoutMs so a test never hangs.
 */
export async function afterHealthEvents (registry: HealthRegistry, holds: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  if (holds()) return
  await new Promise<void>((resolve, reject) => {
    const done = (error?: Error): void => {
      clearTimeout(timer)
      registry.off('check', ask)
      registry.off('transition', ask)
      if (error === undefined) resolve()
      else reject(error)
    }
    const ask = (): void => { if (holds()) done() }
    const timer = setTimeout(() => done(new Error(`timed out waiting for ${what}`)), timeoutMs)
    registry.on('check', ask)
    registry.on('transition', ask)
  })
}

/** A log destination for Fastify that keeps every line, parsed. */
export class LogLines extends Writable {
  readonly lines: Array<Record<string, unknown>> = []

  override _write (chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    for (const line of chunk.toString('utf8').split('\n')) if (line !== '') this.lines.push(JSON.parse(line) as Record<string, unknown>)
    callback()
  }

  /** The lines whose msg contains `text`. */
  matching (text: string): Array<Record<string, unknown>> {
    return this.lines.filter((l) => typeof l.msg === 'string' && l.msg.includes(text))
  }
}
