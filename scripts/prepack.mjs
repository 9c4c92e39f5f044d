// Run by `npm pack` and `npm publish` (the prepack script): puts the native addon built on this
// machine into prebuilds/<platform>-<arch>/, where tensile loads it when a project that installs the
// package has no compiler or skips install scripts (src/backend/native/index.ts).
//
// A prebuilt runs on other people's processors, so this checks that the addon is portable: built
// with binding.gyp's flags (baseline x86-64; AVX2/AVX-512 only in the kernels chosen at run time)
// and not with -march=native. With objdump on PATH it checks the code itself: outside the
// AVX2/AVX-512 kernel libraries and GCC's target_clones variants, no function may use an AVX
// (VEX/EVEX-encoded, v-prefixed) instruction. Fails the pack when the addon is missing or not portable.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const buildDirectory = path.join(root, 'native', 'build');
const addon = path.join(buildDirectory, 'Release', 'tensile_native.node');
const target = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);

function fail(message) {
  process.stderr.write(`tensile prepack: ${message}\n`);
  process.exit(1);
}

function relative(file) {
  return path.relative(root, file);
}

if (!existsSync(addon)) {
  process.stdout.write(`tensile prepack: ${relative(addon)} is missing; building it\n`);
  spawnSync(process.execPath, [path.join(root, 'scripts', 'build-native.mjs')], { stdio: 'inherit' });
  if (!existsSync(addon)) fail(`no native addon to ship (${relative(addon)}); see native/build/build.log`);
}

/** Flags that tie the code to the building machine's processor. */
const machineFlags = /-m(arch|tune|cpu)=native\b/;
const buildFlags = [...readdirSync(buildDirectory).filter((name) => name.endsWith('.mk')), 'config.gypi'];
for (const name of buildFlags) {
  const file = path.join(buildDirectory, name);
  if (existsSync(file) && machineFlags.test(readFileSync(file, 'utf8')))
    fail(
      `${relative(file)} builds with ${machineFlags.exec(readFileSync(file, 'utf8'))[0]}; rebuild without it`,
    );
}
/** The objects of the baseline target (not the tensile_avx2/tensile_avx512 static libraries). */
function baselineObjects() {
  const directory = path.join(buildDirectory, 'Release', 'obj.target', 'tensile_native');
  const found = [];
  const walk = (folder) => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const file = path.join(folder, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (entry.name.endsWith('.o')) found.push(file);
    }
  };
  if (existsSync(directory)) walk(directory);
  return found;
}

/** Functions of an object file that use AVX instructions, except target_clones' .avx2/.avx512f variants. */
function functionsUsingAvx(objectFile) {
  const result = spawnSync('objdump', ['-d', '--no-show-raw-insn', objectFile], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  if (result.error || result.status !== 0) return null;
  const offending = new Set();
  let current = '';
  for (const line of result.stdout.split('\n')) {
    const label = /^[0-9a-f]+ <(.+)>:$/.exec(line);
    if (label) {
      current = label[1];
      continue;
    }
    if (/\tv[a-z0-9]+(\s|$)/.test(line) && !/\.avx/.test(current)) offending.add(current);
  }
  return offending;
}

if (process.platform === 'linux' && process.arch === 'x64') {
  const objects = baselineObjects();
  if (objects.length === 0) fail(`no object files under ${relative(buildDirectory)}; rebuild the addon`);
  let checked = 0;
  for (const objectFile of objects) {
    const offending = functionsUsingAvx(objectFile);
    if (offending === null) break; // objdump missing: the flag checks above are all we can do
    checked++;
    if (offending.size > 0) {
      const names = [...offending].slice(0, 3).join(', ');
      fail(
        `${relative(objectFile)} uses AVX outside the run-time-chosen kernels (${names}); was it built with -march=native?`,
      );
    }
  }
  if (checked === 0) process.stdout.write('tensile prepack: objdump not found; checked build flags only\n');
}

rmSync(target, { recursive: true, force: true });
mkdirSync(target, { recursive: true });
copyFileSync(addon, path.join(target, 'tensile_native.node'));
process.stdout.write(`tensile prepack: ${relative(addon)} → ${relative(target)}/tensile_native.node\n`);
