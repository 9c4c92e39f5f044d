#!/usr/bin/env node
/**
 * npm run parity -- DIR [DIR...] [--backend reference|wasm|native|all]
 * Runs every *.safetensors case in the directories, one line per case, then "N passed, M failed".
 * Exits non-zero on any failure or on a case it cannot run.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { formatCaseLine, runParityCase } from '../app/parity/index.js';
import { availableBackends, backendByName, setBackend } from '../src/index.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { backend: { type: 'string', default: 'default' } },
});
if (positionals.length === 0) {
  console.error('usage: npm run parity -- DIR [DIR...] [--backend reference|wasm|native|all]');
  process.exit(2);
}
const files: string[] = [];
for (const entry of positionals) {
  if (!fs.existsSync(entry)) {
    console.error(`parity: ${entry} does not exist`);
    process.exit(2);
  }
  if (fs.statSync(entry).isDirectory()) {
    for (const name of fs.readdirSync(entry).sort())
      if (name.endsWith('.safetensors')) files.push(path.join(entry, name));
  } else files.push(entry);
}
if (files.length === 0) {
  console.error(`parity: no .safetensors cases in ${positionals.join(', ')}`);
  process.exit(2);
}
const backendNames =
  values.backend === 'all' ? availableBackends() : values.backend === 'default' ? [null] : [values.backend!];
let passed = 0;
let failed = 0;
for (const name of backendNames) {
  if (name !== null) setBackend(backendByName(name));
  if (backendNames.length > 1 || name !== null) console.log(`# backend: ${name}`);
  for (const file of files) {
    const result = runParityCase(file);
    console.log(formatCaseLine(result));
    if (result.passed) passed++;
    else failed++;
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
