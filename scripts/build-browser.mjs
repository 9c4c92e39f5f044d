/**
 * `npm run build:browser`: bundles src/browser.ts (the `tensile/browser` entry) with esbuild into
 * dist/browser/tensile.js, with the wasm backend's worker (kernel-worker.js) and the kernels
 * (kernels.wasm, kernels-relaxed.wasm from build/wasm/) beside it, and writes dist/browser/meta.json
 * (esbuild's metafile: every module in the bundle and what it imports).
 *
 * Platform seams: a module in src/platform/ with a `.browser.ts` twin is replaced by the twin, as is
 * each module in `replacements`; src/platform/browser-globals.ts stands in for Node's globals
 * (process, setImmediate, SharedArrayBuffer). Any `node:` import left on the bundle's paths fails the
 * build, naming the module that imports it.
 *
 * Usage: node scripts/build-browser.mjs [--minify=false] [--outdir=DIRECTORY] (default dist/browser)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import * as zlib from 'node:zlib';
import * as esbuild from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outArgument = process.argv.find((argument) => argument.startsWith('--outdir='));
const out =
  outArgument === undefined
    ? path.join(root, 'dist', 'browser')
    : path.resolve(outArgument.slice('--outdir='.length));
const minify = !process.argv.includes('--minify=false');

/** Library modules whose browser version lives elsewhere (folder owners keep their Node file as is). */
const replacements = new Map([
  [
    path.join(root, 'src/data/worker-prefetch.ts'),
    path.join(root, 'src/platform/worker-prefetch.browser.ts'),
  ],
  [path.join(root, 'src/backend/native/index.ts'), path.join(root, 'src/platform/native-backend.browser.ts')],
]);

/** Resolves `./x.js` imports to the TypeScript sources, preferring a `.browser.ts` twin in src/platform/. */
const platformTwins = {
  name: 'tensile-platform-twins',
  setup(build) {
    build.onResolve({ filter: /^\.\.?\// }, (args) => {
      if (args.importer === '' || !args.path.endsWith('.js')) return undefined;
      const source = path.resolve(args.resolveDir, args.path.replace(/\.js$/, '.ts'));
      const replaced = replacements.get(source);
      if (replaced !== undefined) return { path: replaced };
      if (path.dirname(source) === path.join(root, 'src', 'platform')) {
        const twin = source.replace(/\.ts$/, '.browser.ts');
        if (fs.existsSync(twin)) return { path: twin };
      }
      return fs.existsSync(source) ? { path: source } : undefined;
    });
    build.onResolve({ filter: /^node:/ }, (args) => ({
      errors: [
        { text: `${path.relative(root, args.importer)} imports ${args.path}, which a browser does not have` },
      ],
    }));
  },
};

fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });
const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: {
    tensile: 'src/browser.ts',
    'kernel-worker': 'src/platform/kernel-worker.browser.ts',
  },
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  outdir: out,
  minify,
  sourcemap: true,
  metafile: true,
  inject: ['src/platform/browser-globals.ts'],
  plugins: [platformTwins],
  logLevel: 'warning',
});
fs.writeFileSync(path.join(out, 'meta.json'), JSON.stringify(result.metafile));
for (const name of ['kernels.wasm', 'kernels-relaxed.wasm']) {
  fs.copyFileSync(path.join(root, 'build', 'wasm', name), path.join(out, name));
}
const shipped = fs.readdirSync(out).filter((file) => /\.(js|wasm)$/.test(file));
const gzipped = (file) => zlib.gzipSync(fs.readFileSync(path.join(out, file)), { level: 9 }).byteLength;
const sizes = shipped.map((file) => `${file} ${kibibytes(fs.statSync(path.join(out, file)).size)}`);
const total = shipped.reduce((sum, file) => sum + gzipped(file), 0);
process.stdout.write(
  `build-browser: ${path.relative(root, out) || '.'}: ${sizes.join(', ')}; ${kibibytes(total)} gzipped in all\n`,
);

function kibibytes(bytes) {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}
