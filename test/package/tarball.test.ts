import { test } from 'tap'
import { spawn } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { appLock } from './lockfile'

const root = join(__dirname, '..', '..')
const fixtures = join(__dirname, 'fixtures')
const tsc = require.resolve('typescript/bin/tsc')

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/**
 * Runs a command to its end in its own process group, which is killed by its
 * PID if it outlives the guard (npm starts processes of its own). The npm_*
 * variables of an `npm test` around the suite are left out: the app's npm is
 * a user's, not a lifecycle script's.
 */
async function run (command: string, args: string[], cwd: string, guardMs = 45_000): Promise<Run> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith('npm_')))
  const child = spawn(command, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const guard = setTimeout(() => { if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL') }, guardMs)
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve))
  clearTimeout(guard)
  return { code, stdout, stderr }
}

/** Relative imports of every declaration file under dir that name no file there: what a build left out. */
function danglingTypeImports (dir: string): string[] {
  const missing: string[] = []
  const walk = (at: string): void => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const path = join(at, entry.name)
      if (entry.isDirectory()) walk(path)
      else if (/\.d\.m?ts$/.test(entry.name)) {
        const text = readFileSync(path, 'utf8')
        for (const match of text.matchAll(/(?:from |import\()['"](\.[^'"]+)['"]/g)) {
          const base = resolve(dirname(path), match[1]).replace(/\.m?js$/, '')
          if (![`${base}.d.ts`, `${base}.d.mts`, join(base, 'index.d.ts')].some(existsSync)) missing.push(`${relative(dir, path)}: ${match[1]}`)
        }
      }
    }
  }
  walk(dir)
  return missing
}

function tsconfig (dir: string, resolution: 'node16' | 'bundler', files: string[], emit: boolean): void {
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      strict: true,
      target: 'ES2022',
      module: resolution === 'node16' ? 'node16' : 'esnext',
      moduleResolution: resolution,
      esModuleInterop: true,
      // The app has no @types/node of its own: fastify's declarations need Node's, so the repository's are used.
      typeRoots: [join(root, 'node_modules', '@types')],
      types: ['node'],
      noEmit: !emit,
      outDir: 'out'
    },
    files
  }, null, 2))
}

test('the packed tarball, installed in an app outside the repository, works from CommonJS, ESM and TypeScript', async (t) => {
  const tmp = mkdtempSync(join(tmpdir(), 'lb-package-'))
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }))

  // npm pack runs the prepare script: a fresh build of dist, as an install from git would make.
  const packed = await run('npm', ['pack', '--json', '--pack-destination', tmp], root)
  t.equal(packed.code, 0, packed.stderr)
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as Array<{ filename: string, files: Array<{ path: string }> }>
  const files = info.files.map((f) => f.path)
  t.ok(files.includes('package.json') && files.includes('README.md') && files.includes('LICENSE'), 'manifest, README and LICENSE are packed')
  for (const entry of ['dist/index.js', 'dist/index.mjs', 'dist/index.d.ts', 'dist/index.d.mts']) t.ok(files.includes(entry), `${entry} is packed`)
  for (const types of ['dist/route/split-options.d.ts', 'dist/forward/mirror-options.d.ts', 'dist/affinity/options.d.ts']) t.ok(files.includes(types), `${types} is packed`)
  t.same(files.filter((f) => !f.startsWith('dist/') && !['package.json', 'README.md', 'LICENSE'].includes(f)), [], 'nothing but dist, the manifest, the README and the LICENSE')
  t.same(files.filter((f) => f.endsWith('.map') || (f.endsWith('.ts') && !f.endsWith('.d.ts')) || (f.endsWith('.mts') && !f.endsWith('.d.mts'))), [], 'no sources or source maps')

  // The app: the tarball and fastify (the peer dependency), installed from the npm cache by the repository's lock entries.
  const app = join(tmp, 'app')
  mkdirSync(app)
  const tarball = join(tmp, info.filename)
  const { lock, dependencies } = appLock(root, tarball, ['fastify'])
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, dependencies }, null, 2))
  writeFileSync(join(app, 'package-lock.json'), JSON.stringify(lock, null, 2))
  const installed = await run('npm', ['ci', '--offline', '--no-audit', '--no-fund'], app)
  t.equal(installed.code, 0, installed.stderr)
  const modules = readdirSync(join(app, 'node_modules'))
  t.notOk(modules.includes('typescript') || modules.includes('ts-node') || modules.includes('tap'), 'no development dependency is installed')
  const pkgDir = join(app, 'node_modules', 'fastify-lb')
  t.same(danglingTypeImports(join(pkgDir, 'dist')), [], 'every declaration file the entry reaches is in the package')

  for (const file of readdirSync(join(fixtures, 'app'))) copyFileSync(join(fixtures, 'app', file), join(app, file))
  const expected = { proxied: 'upstream saw /users/1', pool: 1 }
  for (const entry of ['cjs.js', 'esm.mjs']) {
    const ran = await run(process.execPath, [entry], app, 20_000)
    t.equal(ran.code, 0, `${entry} runs: ${ran.stderr}`)
    t.match(JSON.parse(ran.stdout), { ...expected, target: /^t[0-9a-f]{12}$/ }, `${entry}: a request went through the installed plugin`)
  }

  // TypeScript, node16: the same source as a CommonJS (.cts) and an ES module (.mts) file, compiled and run.
  const source = join(fixtures, 'ts', 'app.ts')
  const node16 = join(app, 'node16')
  mkdirSync(node16)
  copyFileSync(source, join(node16, 'app.cts'))
  copyFileSync(source, join(node16, 'app.mts'))
  tsconfig(node16, 'node16', ['app.cts', 'app.mts'], true)
  const compiled = await run(process.execPath, [tsc, '-p', node16], node16)
  t.equal(compiled.code, 0, `node16 compiles (every @ts-expect-error is an error): ${compiled.stdout}`)
  for (const output of ['app.cjs', 'app.mjs']) {
    const ran = await run(process.execPath, [join(node16, 'out', output)], node16, 20_000)
    t.equal(ran.code, 0, `${output} runs: ${ran.stderr}`)
    t.same(JSON.parse(ran.stdout), { targets: 1 }, `${output}: compiled TypeScript registers the plugin`)
  }

  // TypeScript, bundler resolution: the correct use compiles, the misuse fails with the errors a user would read.
  const bundler = join(app, 'bundler')
  mkdirSync(bundler)
  copyFileSync(source, join(bundler, 'app.ts'))
  tsconfig(bundler, 'bundler', ['app.ts'], false)
  const checked = await run(process.execPath, [tsc, '-p', bundler], bundler)
  t.equal(checked.code, 0, `bundler compiles: ${checked.stdout}`)
  copyFileSync(join(fixtures, 'ts', 'misuse.ts'), join(bundler, 'misuse.ts'))
  tsconfig(bundler, 'bundler', ['misuse.ts'], false)
  const misuse = await run(process.execPath, [tsc, '-p', bundler], bundler)
  t.not(misuse.code, 0, 'the misuse does not compile')
  t.match(misuse.stdout, /misuse\.ts\(7,\d+\): error TS2322: Type 'number' is not assignable to type 'string \| PoolOptions \| SplitOptions/, 'a numeric upstream is refused')
  t.match(misuse.stdout, /misuse\.ts\(8,\d+\): error TS18047: 'request\.target' is possibly 'null'/, 'request.target must be checked')
})
