/**
 * The browser build (scripts/build-browser.mjs, `npm run build:browser`): bundled into a temporary
 * folder, its module graph (esbuild's metafile) holds no `node:` import and no package, the platform seams took their browser twins, the package exports it as `tensile/browser`,
 * and what it ships stays inside the size budget.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';

/** JavaScript + WebAssembly shipped in dist/browser, gzipped: the budget stated in docs/browser.md. */
const budgetBytes = 100 * 1024;

interface Metafile {
  inputs: Record<
    string,
    { imports: { path: string; kind: string; external?: boolean; original?: string }[] }
  >;
  outputs: Record<string, { entryPoint?: string; inputs: Record<string, unknown> }>;
}

describe('the browser bundle', () => {
  let directory = '';
  let meta: Metafile;

  before(() => {
    directory = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-bundle-'));
    execFileSync(process.execPath, [path.resolve('scripts', 'build-browser.mjs'), `--outdir=${directory}`], {
      stdio: 'pipe',
    });
    meta = JSON.parse(fs.readFileSync(path.join(directory, 'meta.json'), 'utf8')) as Metafile;
  });

  after(() => {
    if (directory !== '') fs.rmSync(directory, { recursive: true, force: true });
  });

  test('its module graph imports no node: module and no package', () => {
    const inputs = Object.keys(meta.inputs);
    const bundled = Object.values(meta.outputs).flatMap((output) => Object.keys(output.inputs));
    for (const file of bundled) assert.match(file, /^src\//, `${file} in the bundle is not library source`);
    assert.ok(inputs.includes('src/browser.ts'));
    assert.ok(inputs.length > 50, `only ${inputs.length} modules bundled`);
    for (const [file, { imports }] of Object.entries(meta.inputs)) {
      assert.ok(!file.startsWith('node:'), file);
      assert.match(file, /^src\//, `${file} is not library source`);
      for (const record of imports) {
        assert.ok(!record.path.startsWith('node:'), `${file} imports ${record.path}`);
        assert.ok(!(record.original ?? '').startsWith('node:'), `${file} imports ${record.original}`);
        // Library files only, no package (esbuild lists the injected globals and imports
        // of types only, which it elides, as external; both are library files).
        assert.match(record.path, /^(src\/|\.\.?\/|\/)/, `${file} imports the package ${record.path}`);
      }
    }
  });

  test('the platform seams took their browser twins', () => {
    const inputs = new Set(Object.keys(meta.inputs));
    for (const twin of ['bytes', 'kernel-workers', 'wasm-kernels']) {
      assert.ok(inputs.has(`src/platform/${twin}.browser.ts`), twin);
      assert.ok(!inputs.has(`src/platform/${twin}.ts`), `${twin}: the Node module was bundled`);
    }
    assert.ok(inputs.has('src/platform/browser-globals.ts'));
    assert.ok(!inputs.has('src/data/worker-prefetch.ts'));
    // The wasm backend and the training loop are in; the native backend and the file system are not.
    for (const file of ['src/backend/wasm/index.ts', 'src/train/fit.ts', 'src/io/model-format.ts']) {
      assert.ok(inputs.has(file), file);
    }
    for (const file of ['src/backend/native/index.ts', 'src/io/model-file.ts', 'src/io/atomic-write.ts']) {
      assert.ok(!inputs.has(file), file);
    }
  });

  test('ships tensile.js, its kernel worker and both kernels builds within the size budget', () => {
    const shipped = fs.readdirSync(directory).filter((file) => /\.(js|wasm)$/.test(file));
    assert.deepEqual(shipped.sort(), [
      'kernel-worker.js',
      'kernels-relaxed.wasm',
      'kernels.wasm',
      'tensile.js',
    ]);
    const gzipped = shipped.reduce(
      (sum, file) =>
        sum + zlib.gzipSync(fs.readFileSync(path.join(directory, file)), { level: 9 }).byteLength,
      0,
    );
    assert.ok(gzipped <= budgetBytes, `${gzipped} bytes gzipped, over the ${budgetBytes}-byte budget`);
  });

  test('the package exports it as tensile/browser and ships it', () => {
    const manifest = JSON.parse(fs.readFileSync('package.json', 'utf8')) as {
      exports: Record<string, { types: string; default: string }>;
      files: string[];
    };
    assert.deepEqual(manifest.exports['./browser'], {
      types: './dist/src/browser.d.ts',
      default: './dist/browser/tensile.js',
    });
    assert.ok(manifest.files.includes('dist/browser/*.js') && manifest.files.includes('dist/browser/*.wasm'));
  });
});
