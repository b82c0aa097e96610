import { test } from 'tap'
import { readFile } from 'node:fs/promises'
import { FILE_UPSTREAMS, TARGETS_FILE } from '../../example-gateway/file-demo'
import { resolveTargets } from '../../lib/options/resolve'

test('the example targets.json is a valid target list naming the example\'s fixed-port demo upstreams', async (t) => {
  const targets = resolveTargets('/file/*', JSON.parse(await readFile(TARGETS_FILE, 'utf8')))
  t.ok(targets.length > 0)
  for (const target of targets) {
    t.equal(target.url, `http://127.0.0.1:${FILE_UPSTREAMS[target.id]}`, `${target.id} is a demo upstream of the example`)
  }
})
