import { Readable } from 'node:stream'

/** What a streamed body needs of the try it belongs to. */
export interface BodySource {
  /** Asks the upstream connection for more bytes after the body was full. */
  resume: () => void
  /** The body ended, failed or was dropped by its reader: the try is over. */
  bodyClosed (): void
}

/**
 * The body of an upstream answer too large (or of unknown length) to be held
 * whole: the bytes are passed on as they come, with back-pressure on the
 * upstream connection. Destroying it (the client left, or the answer was
 * dropped for a retry) ends the try, so no listener is needed per request.
 */
export class UpstreamBody extends Readable {
  constructor (private readonly source: BodySource) {
    super({ highWaterMark: 64 * 1024 })
  }

  override _read (): void {
    this.source.resume()
  }

  override _destroy (err: Error | null, callback: (err?: Error | null) => void): void {
    this.source.bodyClosed()
    callback(err)
  }
}
