import { watch, type FSWatcher } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { resolveTargets, TargetList, type ResolvedTarget } from '../../options/resolve'
import { isRecord } from '../../options/validate'
import type { ResolvedFileDiscovery } from '../options'
import { messageOf, type DiscoverySink, type Provider } from '../provider'
import { Timer } from '../timer'

/** Retry of a watch that could not be set up (e.g. the directory does not exist yet). */
const WATCH_RETRY_MS = 1000
/** Entries checked per turn of the event loop: checking tens of thousands at once would hold requests up. */
const CHECK_SLICE = 1000

/**
 * resolveTargets() of a long list in slices, one per turn of the event loop,
 * with the same errors; undefined when `stopped` says so between two slices.
 */
async function resolveInSlices (pool: string, list: unknown, stopped: () => boolean): Promise<ResolvedTarget[] | undefined> {
  if (!Array.isArray(list) || list.length <= CHECK_SLICE) return resolveTargets(pool, list)
  const checked = new TargetList(pool)
  for (let i = 0; i < list.length; i++) {
    if (i % CHECK_SLICE === 0 && i > 0) {
      await new Promise((resolve) => setImmediate(resolve))
      if (stopped()) return undefined
    }
    checked.add(i, list[i])
  }
  return checked.targets
}

/**
 * Where JSON.parse stopped, without the text it quotes: V8 quotes the bytes
 * around the error, which may be part of a URL's password.
 */
function whereInvalid (err: unknown): string {
  const at = /at position (\d+)/.exec(messageOf(err))
  return at === null ? '' : ` (at position ${at[1]})`
}

const DOCUMENT_KEYS = new Set(['targets', 'options'])

/**
 * What a file holds: an array of targets, or `{ targets, options? }` with pool
 * options beside them (checked by the pool when applied). Throws what is wrong.
 */
function readDocument (value: unknown): { list: unknown, policy?: Readonly<Record<string, unknown>> } {
  if (Array.isArray(value)) return { list: value }
  if (!isRecord(value)) throw new Error('must hold an array of targets or an object { targets, options }')
  for (const key of Object.keys(value)) {
    if (!DOCUMENT_KEYS.has(key)) throw new Error(`${JSON.stringify(key.slice(0, 64))} is not a key of a targets file (targets, options)`)
  }
  if (!Array.isArray(value.targets)) throw new Error('targets must be an array of targets')
  const options = value.options
  if (options !== undefined && !isRecord(options)) throw new Error('options must be an object of pool options')
  return { list: value.targets, policy: options }
}

/**
 * Follows a JSON file of targets, with pool options beside them if it has some. The directory is watched rather than the
 * file, so a file replaced by a rename (editors, atomic writers, Kubernetes
 * ConfigMap symlink swaps) is seen like an edit. A file that does not parse or
 * validate, as a half-written one, is reported and the last good list stays.
 */
export class FileProvider implements Provider {
  readonly type = 'file'
  private readonly pool: string
  private readonly path: string
  private readonly options: ResolvedFileDiscovery
  private sink: DiscoverySink | null = null
  private watcher: FSWatcher | null = null
  private readonly readTimer = new Timer(() => { this.read() })
  private readonly watchTimer = new Timer(() => { this.watch(true) })
  private readonly pollTimer = new Timer(() => { this.poll() })
  /** Size, mtime and inode of the file as last read, for the poll. */
  private seen = ''
  private reading = false
  private readAgain = false
  private stopped = false

  constructor (pool: string, options: ResolvedFileDiscovery) {
    this.pool = pool
    this.options = options
    this.path = resolve(options.path)
  }

  start (sink: DiscoverySink): void {
    this.sink = sink
    this.watch()
    this.read()
    if (this.options.interval > 0) this.pollTimer.set(this.options.interval)
  }

  async stop (): Promise<void> {
    this.stopped = true
    this.watcher?.close()
    this.watcher = null
    this.readTimer.clear()
    this.watchTimer.clear()
    this.pollTimer.clear()
  }

  private watch (again = false): void {
    if (this.stopped) return
    try {
      const watcher = watch(dirname(this.path), { persistent: false }, () => this.readTimer.set(this.options.debounce))
      watcher.on('error', (err) => {
        watcher.close()
        if (this.watcher === watcher) this.watcher = null
        this.sink?.fail(new Error(`watching ${dirname(this.path)} failed: ${messageOf(err)}`))
        this.watchTimer.set(WATCH_RETRY_MS)
      })
      this.watcher = watcher
      // Whatever happened while nobody watched is read now.
      if (again) this.read()
    } catch (err) {
      this.sink?.fail(new Error(`cannot watch ${dirname(this.path)}: ${messageOf(err)}`))
      this.watchTimer.set(WATCH_RETRY_MS)
    }
  }

  private poll (): void {
    stat(this.path).then((s) => {
      if (`${s.size}:${s.mtimeMs}:${s.ino}` !== this.seen) this.read()
    }, () => {
      // A missing file is reported by the read a watch event triggers; polling stays quiet.
    }).finally(() => {
      if (!this.stopped) this.pollTimer.set(this.options.interval)
    })
  }

  private read (): void {
    if (this.stopped) return
    if (this.reading) {
      this.readAgain = true
      return
    }
    this.reading = true
    this.load().catch(() => {}).finally(() => {
      this.reading = false
      if (this.readAgain) {
        this.readAgain = false
        this.read()
      }
    })
  }

  private async load (): Promise<void> {
    const sink = this.sink
    if (sink === null) return
    let text: string
    try {
      const s = await stat(this.path)
      text = await readFile(this.path, 'utf8')
      this.seen = `${s.size}:${s.mtimeMs}:${s.ino}`
    } catch (err) {
      if (!this.stopped) sink.fail(new Error(`cannot read ${this.path}: ${messageOf(err)}`))
      return
    }
    if (this.stopped) return
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch (err) {
      sink.fail(new Error(`${this.path} is not valid JSON${whereInvalid(err)}`))
      return
    }
    let targets: ResolvedTarget[] | undefined
    let policy: Readonly<Record<string, unknown>> | undefined
    try {
      const document = readDocument(parsed)
      policy = document.policy
      targets = await resolveInSlices(this.pool, document.list, () => this.stopped)
    } catch (err) {
      sink.fail(new Error(`${this.path}: ${messageOf(err)}`))
      return
    }
    if (targets !== undefined) sink.update(targets, policy)
  }
}
