import { test } from 'tap'
import { Target } from '../lib/target'
test('smoke', async (t) => {
  const x = new Target('a', 'http://127.0.0.1:1', 'http://127.0.0.1:1', '', 1)
  t.equal(x.id, 'a')
})
