import { join } from 'node:path'
import { DemoUpstream } from '../test/helpers/demo-upstream'

/** The file the example's `/file/` pool follows. Editing it adds and removes targets while the gateway runs. */
export const TARGETS_FILE = join(__dirname, 'targets.json')

/**
 * Demo upstreams on fixed ports, so targets.json can name them: d, e and f on
 * 127.0.0.1:3101-3103 (the file lists d and e; add f, remove one, change a weight).
 */
export const FILE_UPSTREAMS: Readonly<Record<string, number>> = { d: 3101, e: 3102, f: 3103 }

export async function startFileUpstreams (): Promise<DemoUpstream[]> {
  return Promise.all(Object.entries(FILE_UPSTREAMS).map(async ([id, port]) => {
    try {
      return await new DemoUpstream(id).start(port)
    } catch (err) {
      throw new Error(`demo upstream ${id} needs 127.0.0.1:${port} for example-gateway/targets.json: ${err instanceof Error ? err.message : String(err)}`)
    }
  }))
}
