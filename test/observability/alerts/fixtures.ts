import { join } from 'node:path'

const EXAMPLE = join(__dirname, '..', '..', '..', 'example-gateway')

/** The alerting rules users copy, their promtool unit tests, and the example's Prometheus config that loads them. */
export const RULES = join(EXAMPLE, 'alerts.yml')
export const RULE_TESTS = join(EXAMPLE, 'alerts.test.yml')
export const EXAMPLE_CONFIG = join(EXAMPLE, 'prometheus.yml')

/** The names of the alerts of a rule file, in file order. */
export function alertNames (rules: string): string[] {
  return [...rules.matchAll(/^\s+- alert: (\w+)$/gm)].map((m) => m[1])
}
