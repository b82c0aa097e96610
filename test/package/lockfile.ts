import { readFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { join } from 'node:path'

interface LockEntry {
  version?: string
  resolved?: string
  integrity?: string
  dependencies?: Record<string, string>
  optionalDependencies?: Record<string, string>
  peerDependencies?: Record<string, string>
  [field: string]: unknown
}

interface Manifest {
  name: string
  version: string
  license?: string
  engines?: Record<string, string>
  dependencies?: Record<string, string>
  peerDependencies?: Record<string, string>
}

/** Where Node would find `name` required from the package at `from` (a lock path), in the repository's tree. */
function locate (packages: Record<string, LockEntry>, from: string, name: string): string | undefined {
  for (let at = from; ; at = at.slice(0, Math.max(0, at.lastIndexOf('/node_modules/')))) {
    const path = `${at === '' ? '' : at + '/'}node_modules/${name}`
    if (packages[path] !== undefined) return path
    if (at === '') return undefined
  }
}

/**
 * A package-lock.json for an app that depends on the packed tarball and on
 * `extra` (fastify), made of the repository's own lock entries for their
 * runtime dependencies: `npm ci --offline` then installs them from the npm
 * cache by integrity, with no registry lookup, the versions the suite ran with.
 */
export function appLock (root: string, tarball: string, extra: string[]): { lock: object, dependencies: Record<string, string> } {
  const repo = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> }
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Manifest
  const packages: Record<string, LockEntry> = {}
  const visit = (from: string, deps: Record<string, string> | undefined): void => {
    for (const name of Object.keys(deps ?? {})) {
      const path = locate(repo.packages, from, name)
      if (path === undefined) throw new Error(`${name}, required by ${from === '' ? 'the app' : from}, is not in package-lock.json`)
      if (packages[path] !== undefined) continue
      const { dev, devOptional, peer, ...entry } = repo.packages[path]
      packages[path] = entry
      visit(path, { ...entry.dependencies, ...entry.peerDependencies })
    }
  }
  const integrity = 'sha512-' + createHash('sha512').update(readFileSync(tarball)).digest('base64')
  const dependencies: Record<string, string> = { [manifest.name]: `file:${tarball}` }
  for (const name of extra) dependencies[name] = repo.packages[`node_modules/${name}`].version as string
  visit('', { ...manifest.dependencies, ...Object.fromEntries(extra.map((name) => [name, '*'])) })
  packages[`node_modules/${manifest.name}`] = {
    version: manifest.version,
    resolved: `file:${tarball}`,
    integrity,
    license: manifest.license,
    dependencies: manifest.dependencies,
    peerDependencies: manifest.peerDependencies,
    engines: manifest.engines
  }
  const lock = {
    name: 'app',
    lockfileVersion: 3,
    requires: true,
    packages: { '': { name: 'app', dependencies }, ...packages }
  }
  return { lock, dependencies }
}
