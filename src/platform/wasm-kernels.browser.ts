/**
 * Where the wasm backend's compiled kernels come from, in a browser (the twin of ./wasm-kernels.ts).
 * A page may not compile a large module synchronously on its main thread, and fetching is
 * asynchronous anyway, so src/browser.ts compiles it (WebAssembly.compileStreaming) and hands it here
 * with provideKernels before the first kernel runs.
 */
export type KernelBuild = 'relaxed-simd' | 'simd';

let provided: { module: object; build: KernelBuild } | null = null;

/** Installs the compiled kernels module (called once by the browser entry's loader). */
export function provideKernels(module: object, build: KernelBuild): void {
  provided = { module, build };
}

/** The compiled kernels module provided by the page; throws, saying what to await, when there is none. */
export function compileKernels(): { module: object; build: KernelBuild } {
  if (provided === null) {
    throw new Error('tensile: the wasm kernels are not loaded yet; await ready() from tensile/browser first');
  }
  return provided;
}
