// The ES module entry: the CommonJS build under ESM names, so `import lb, { forward } from 'fastify-lb'` and
// `require('fastify-lb')` in one process share one plugin and one set of classes (no second copy of any state).
// Named imports only: what a default import of CommonJS means differs between Node and bundlers (and their types).
import { fastifyLb } from './index.js'

export default fastifyLb
export { fastifyLb, forward, LoadBalancer, InvalidOptionError, UnknownPoolError } from './index.js'
export type * from './index.js'
