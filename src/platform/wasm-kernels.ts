/**
 * Where the wasm backend's compiled kernels come from, on Node: build/wasm/*.wasm read from disk and
 * compiled synchronously on first use. The browser build swaps in ./wasm-kernels.browser.ts, where
 * the page compiles the module asynchronously before training (see src/browser.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as v8 from 'node:v8';

/** The part of the WebAssembly API used here (tsconfig's lib has no DOM, where TypeScript declares it). */
declare const WebAssembly: { Module: new (bytes: Uint8Array) => object };

/**
 * Which build of the kernels runs: 'relaxed-simd' (build/wasm/kernels-relaxed.wasm: fused
 * multiply-adds and a 6×8 GEMM register tile) or 'simd' (build/wasm/kernels.wasm: a 4×8 tile of
 * separate multiplies and adds).
 */
export type KernelBuild = 'relaxed-simd' | 'simd';

/** build/wasm/*.wasm, found from dist/src/platform/wasm-kernels.js. */
const buildUrl = new URL('../../../build/wasm/', import.meta.url);

function readBuild(name: string): Uint8Array {
  const path = fileURLToPath(new URL(name, buildUrl));
  if (!existsSync(path)) {
    throw new Error(`wasm backend: ${path} is missing; run \`npm run build:wasm\` to build it`);
  }
  return readFileSync(path);
}

/**
 * Compiles the relaxed-SIMD build, or returns null where it cannot run. Node 20's V8 validates relaxed
 * SIMD only behind --experimental-wasm-relaxed-simd (newer engines ship it), and feature flags are
 * read when a module is compiled, so the flag is turned on for this one compile if it is needed.
 * Relaxed multiply-add may round once (fused) or twice depending on the CPU, so results can differ
 * from the plain build in the last bits; on one machine every thread runs the same instructions, so
 * they still do not depend on the thread count. TENSILE_WASM_RELAXED_SIMD=0 selects the plain build.
 */
function compileRelaxed(): object | null {
  if (process.env.TENSILE_WASM_RELAXED_SIMD === '0') return null;
  const bytes = readBuild('kernels-relaxed.wasm');
  try {
    return new WebAssembly.Module(bytes);
  } catch {
    // Most likely the engine wants the flag; retried below.
  }
  try {
    v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
    return new WebAssembly.Module(bytes);
  } catch {
    return null;
  }
}

/** The compiled kernels module (an opaque WebAssembly.Module) and which build it is. */
export function compileKernels(): { module: object; build: KernelBuild } {
  const relaxed = compileRelaxed();
  if (relaxed !== null) return { module: relaxed, build: 'relaxed-simd' };
  return { module: new WebAssembly.Module(readBuild('kernels.wasm')), build: 'simd' };
}
