/**
 * Compiles the AssemblyScript kernels in assembly/ into build/wasm/kernels.wasm (WebAssembly SIMD)
 * and build/wasm/kernels-relaxed.wasm (SIMD plus relaxed SIMD, whose fused multiply-add lets the
 * GEMM use a larger register tile; see assembly/gemm.ts). The backend runs the relaxed build where
 * the engine accepts it and the plain one otherwise (src/backend/wasm/runtime.ts).
 *
 * The memory is imported and shared so that a later step can run the same module on worker threads
 * over one memory; the stub runtime is enough because the kernels never allocate (the JavaScript side
 * manages a scratch arena). Run with `npm run build:wasm`; pass --text to also write the .wat files.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import asc from 'assemblyscript/asc';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'build', 'wasm');
mkdirSync(outDir, { recursive: true });

/** Arguments for one build; `features` is the --enable list. */
function buildArguments(name, features) {
  const args = [
    join(root, 'assembly', 'index.ts'),
    '--outFile',
    join(outDir, `${name}.wasm`),
    '-O3',
    '--noAssert',
    '--runtime',
    'stub',
    '--enable',
    features,
    '--importMemory',
    '--sharedMemory',
    // 16 pages (1 MiB) to start; the backend grows the memory as problems need, up to 4 GiB.
    '--initialMemory',
    '16',
    '--maximumMemory',
    '65536',
    '--noExportMemory',
  ];
  if (process.argv.includes('--text')) args.push('--textFile', join(outDir, `${name}.wat`));
  return args;
}

for (const [name, features] of [
  ['kernels', 'simd,threads'],
  ['kernels-relaxed', 'simd,relaxed-simd,threads'],
]) {
  const { error, stderr } = await asc.main(buildArguments(name, features));
  if (error) {
    process.stderr.write(`${stderr.toString()}\nbuild-wasm: ${error.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`build-wasm: wrote ${join('build', 'wasm', `${name}.wasm`)}\n`);
}
