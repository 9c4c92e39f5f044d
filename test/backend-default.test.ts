/**
 * The default backend does not depend on which entry point was imported: a process that imports only
 * `tensile/tune` (dist/src/tune/index.js) runs on the same fast backend as one that imports the root.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

/** The backend name a fresh Node process gets after importing only `entry` (relative to dist/). */
function backendAfterImporting(entry: string): string {
  const url = (path: string) => JSON.stringify(new URL(path, import.meta.url).href);
  const script = `
    await import(${url(`../${entry}`)});
    const { getBackend } = await import(${url('../src/backend/index.js')});
    console.log(getBackend().name);
  `;
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { ...process.env, TENSILE_QUIET: '1' },
    timeout: 60_000,
  });
  assert.equal(result.status, 0, result.stderr);
  return result.stdout.trim();
}

test('importing tensile/tune alone gives the fast backend the root import gives', async () => {
  const { availableBackends } = await import('../src/backend/registry.js');
  const fastest = availableBackends().at(-1);
  const root = backendAfterImporting('src/index.js');
  assert.equal(root, fastest);
  assert.notEqual(root, 'reference', 'this machine loads a fast backend (wasm at least)');
  assert.equal(backendAfterImporting('src/tune/index.js'), root);
});
