// Builds tensile's native CPU backend (native/) with node-gyp; run by `npm install` / `npm ci`.
//
// The build compiles from source with the local compiler and the Node headers already on the machine
// (npm's nodedir): nothing is downloaded. It never fails the install: when the addon cannot be built
// (no compiler, no node-gyp, no headers) it prints one line saying why and what tensile will use
// instead: the package's prebuilt addon (prebuilds/, made by scripts/prepack.mjs) if it loads on this
// machine, else the WebAssembly backend.
// Set TENSILE_SKIP_NATIVE=1 to skip the build. The full compiler output goes to native/build/build.log.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const nativeDirectory = path.join(root, 'native');
const logFile = path.join(nativeDirectory, 'build', 'build.log');

/** What tensile will run on without a build here: the package's prebuilt addon if it loads, else wasm. */
function fallback() {
  const prebuilt = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'tensile_native.node');
  const relative = path.relative(root, prebuilt);
  if (!existsSync(prebuilt))
    return 'no prebuilt addon for this platform; tensile will use the WebAssembly backend';
  try {
    createRequire(import.meta.url)(prebuilt);
    return `tensile will use the prebuilt addon ${relative}, which loads here`;
  } catch (error) {
    const message = String(error instanceof Error ? error.message : error).split('\n')[0];
    return `the prebuilt ${relative} does not load here (${message}); tensile will use the WebAssembly backend`;
  }
}

function giveUp(reason) {
  process.stdout.write(`tensile: native backend not built (${reason}); ${fallback()}\n`);
  process.exit(0);
}

/** node-gyp's entry script: npm's own when npm runs us, else one on PATH or inside npm's install. */
function findNodeGyp() {
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && existsSync(fromNpm)) return { command: process.execPath, prefix: [fromNpm] };
  const candidates = [];
  if (process.env.npm_execpath) {
    candidates.push(
      path.resolve(path.dirname(process.env.npm_execpath), '../node_modules/node-gyp/bin/node-gyp.js'),
    );
  }
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  candidates.push(path.join(prefix, 'lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'));
  candidates.push(path.join(prefix, 'node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'));
  for (const candidate of candidates) {
    if (existsSync(candidate)) return { command: process.execPath, prefix: [candidate] };
  }
  const onPath = spawnSync(process.platform === 'win32' ? 'where' : 'which', ['node-gyp'], {
    encoding: 'utf8',
  });
  if (onPath.status === 0 && onPath.stdout.trim())
    return { command: onPath.stdout.trim().split('\n')[0], prefix: [] };
  return null;
}

/**
 * Node's headers without a download: npm passes its nodedir setting in the environment; run by hand,
 * use the headers installed beside the node binary when they are there.
 */
function nodedirArguments() {
  if (process.env.npm_config_nodedir) return [];
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  return existsSync(path.join(prefix, 'include/node/node_api.h')) ? [`--nodedir=${prefix}`] : [];
}

if (process.env.TENSILE_SKIP_NATIVE === '1') giveUp('TENSILE_SKIP_NATIVE=1');
if (!existsSync(path.join(nativeDirectory, 'binding.gyp'))) giveUp('native/binding.gyp is missing');
const nodeGyp = findNodeGyp();
if (nodeGyp === null) giveUp('node-gyp not found');

const started = Date.now();
const result = spawnSync(
  nodeGyp.command,
  [...nodeGyp.prefix, 'rebuild', '--directory', nativeDirectory, '--jobs', 'max', ...nodedirArguments()],
  { cwd: root, encoding: 'utf8', timeout: 10 * 60 * 1000, maxBuffer: 64 * 1024 * 1024 },
);
const log = `${result.stdout ?? ''}\n${result.stderr ?? ''}`;
try {
  mkdirSync(path.dirname(logFile), { recursive: true });
  writeFileSync(logFile, log);
} catch {
  // The log is a convenience; a read-only checkout must not turn into a failed install.
}
const relativeLog = path.relative(root, logFile);
if (result.error) giveUp(`${result.error.message}; see ${relativeLog}`);
if (result.status !== 0) giveUp(`node-gyp exited with code ${result.status}; see ${relativeLog}`);
const addon = path.join(nativeDirectory, 'build', 'Release', 'tensile_native.node');
if (!existsSync(addon)) giveUp(`node-gyp produced no ${path.relative(root, addon)}`);
process.stdout.write(`tensile: native backend built in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
