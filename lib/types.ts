/**
 * The logger the core writes to: an object and a message, as pino (Fastify's
 * logger) takes them. Any front-end's logger with these methods will do.
 */
export interface Logger {
  info: (obj: object, msg: string) => void
  warn: (obj: object, msg: string) => void
  error: (obj: object, msg: string) => void
}
