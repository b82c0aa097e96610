'use strict'
/**
 * Loads .ts files by transpiling them (TypeScript's transpileModule, the emit
 * tsc would produce), for the benchmarked processes: ts-node would also load
 * Node's REPL and with it the `domain` module, which slows down every
 * EventEmitter of the process and would skew what the benchmark measures.
 *   node --require ./bench/transpile.js bench/proxy.ts ...
 */
const { readFileSync } = require('node:fs')
const ts = require('typescript')

const compilerOptions = {
  module: ts.ModuleKind.CommonJS,
  target: ts.ScriptTarget.ES2022,
  esModuleInterop: true
}

// eslint-disable-next-line n/no-deprecated-api -- the one synchronous loader hook of CommonJS, still supported
require.extensions['.ts'] = function load (module, filename) {
  const { outputText } = ts.transpileModule(readFileSync(filename, 'utf8'), { compilerOptions, fileName: filename })
  module._compile(outputText, filename)
}
