// The ES module entry: the CommonJS build under ESM names, so `import lb, { forward } from 'fastify-lb'` and
// `require('fastify-lb')` in one process share one plugin and one set of classes (no second copy of any state).
import cjs from './index.js'

const lb: typeof cjs.default = cjs.default
export default lb
export { fastifyLb, forward, LoadBalancer, InvalidOptionError, UnknownPoolError } from './index.js'
export type * from './index.js'
