'use strict'

module.exports = require('neostandard')({
  ts: true,
  filesTs: ['**/*.mts'],
  files: ['**/*.mts'],
  ignores: ['dist/**', 'coverage/**', '.tap/**', 'node_modules/**']
})
