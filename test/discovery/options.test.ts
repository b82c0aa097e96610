import { test } from 'tap'
import { resolvePoolOptions } from '../../lib/options/resolve'
import { startupError } from '../helpers/startup'

const cases: Array<[string, unknown, RegExp]> = [
  ['not an object', 3, /pool "users": discovery = 3 \(must be a provider's options/],
  ['no type', { path: '/x' }, /discovery\.type = undefined \(is required: 'file', 'dns', 'consul' or 'etcd'\)/],
  ['an unknown type', { type: 'zookeeper' }, /discovery\.type = "zookeeper" \(must be one of 'file', 'dns', 'consul', 'etcd'\)/],
  ['a file without a path', { type: 'file' }, /discovery\.path = undefined \(must be a non-empty string\)/],
  ['an option of another provider', { type: 'file', path: '/x', prefix: '/y' }, /discovery\.prefix = "\/y" \(is not an option of the file provider\)/],
  ['a negative debounce', { type: 'file', path: '/x', debounce: -1 }, /discovery\.debounce = -1 \(must be an integer from 0 to 60000\)/],
  ['an A record without a port', { type: 'dns', name: 'api', record: 'A' }, /discovery\.port = undefined \(is required with record 'A'\)/],
  ['a port with SRV records', { type: 'dns', name: 'api', port: 80 }, /discovery\.port = 80 \(is given by SRV records/],
  ['an unknown record type', { type: 'dns', name: 'api', record: 'MX' }, /discovery\.record = "MX" \(must be one of 'SRV', 'A', 'AAAA'\)/],
  ['a resolver that is not an address', { type: 'dns', name: 'api', resolver: 'dns.example:53' }, /discovery\.resolver = "dns\.example:53" \(must be DNS server addresses/],
  ['minInterval above interval', { type: 'dns', name: 'api', interval: 1000, minInterval: 5000 }, /discovery\.minInterval = 5000 \(must be an integer from 1 to 1000\)/],
  ['an unknown onEmpty', { type: 'dns', name: 'api', onEmpty: 'drop' }, /discovery\.onEmpty = "drop" \(must be one of 'keep', 'remove'\)/],
  ['consul without a service', { type: 'consul' }, /discovery\.service = undefined/],
  ['a consul URL that is not http', { type: 'consul', service: 's', url: 'consul:8500' }, /discovery\.url = "consul:8500" \(must be an http\(s\) URL/],
  ['a consul wait above 10 minutes', { type: 'consul', service: 's', wait: 600_001 }, /discovery\.wait = 600001/],
  ['an empty tag', { type: 'consul', service: 's', tag: [''] }, /discovery\.tag = \[""\]/],
  ['etcd without a prefix', { type: 'etcd' }, /discovery\.prefix = undefined/],
  ['a bad etcd URL in a list', [{ type: 'file', path: '/x' }, { type: 'etcd', prefix: '/p/', url: ['http://127.0.0.1:2379', 'nope'] }], /discovery\[1\]\.url\[1\] = "nope"/]
]

for (const [what, discovery, message] of cases) {
  test(`startup fails on a discovery option: ${what}`, async (t) => {
    const err = await startupError({ pools: { users: { discovery } } })
    t.equal(err.code, 'FST_LB_INVALID_OPTION')
    t.match(err.message, message)
  })
}

test('discovery defaults', async (t) => {
  const resolve = (discovery: unknown): unknown => resolvePoolOptions('p', { discovery }).discovery
  t.same(resolve(undefined), [], 'none unless configured')
  t.same(resolve({ type: 'file', path: 'targets.json' }), [{ type: 'file', path: 'targets.json', debounce: 50, interval: 5000 }])
  t.same(resolve({ type: 'dns', name: '_http._tcp.api.service.consul' }), [{
    type: 'dns',
    name: '_http._tcp.api.service.consul',
    record: 'SRV',
    port: 0,
    scheme: 'http',
    resolver: [],
    interval: 30_000,
    minInterval: 1000,
    timeout: 2000,
    tries: 2,
    onEmpty: 'keep'
  }])
  t.same(resolve({ type: 'consul', service: 'users' }), [{
    type: 'consul',
    url: 'http://127.0.0.1:8500',
    service: 'users',
    token: undefined,
    dc: undefined,
    tags: [],
    wait: 60_000,
    weightMeta: undefined,
    scheme: 'http',
    retryInterval: 1000,
    maxRetryInterval: 30_000,
    timeout: 10_000,
    onEmpty: 'keep',
    tls: undefined
  }])
  t.same(resolve({ type: 'etcd', prefix: '/services/users/' }), [{
    type: 'etcd',
    urls: ['http://127.0.0.1:2379'],
    prefix: '/services/users/',
    timeout: 5000,
    retryInterval: 1000,
    maxRetryInterval: 30_000,
    credentials: undefined,
    tls: undefined
  }])
  t.match(resolve({ type: 'etcd', prefix: '/p/', url: 'https://etcd:2379', username: 'gw', password: 'pw', tls: {} }), [{
    urls: ['https://etcd:2379'],
    credentials: { username: 'gw', password: 'pw' },
    tls: { rejectUnauthorized: true }
  }], 'credentials; tls verifies certificates unless told otherwise')
  t.same(resolve({ type: 'dns', name: 'api', record: 'A', port: 8080, resolver: '127.0.0.1:8600', interval: 500 }), [{
    type: 'dns',
    name: 'api',
    record: 'A',
    port: 8080,
    scheme: 'http',
    resolver: ['127.0.0.1:8600'],
    interval: 500,
    minInterval: 500,
    timeout: 2000,
    tries: 2,
    onEmpty: 'keep'
  }], 'minInterval never exceeds a shorter interval')
})
