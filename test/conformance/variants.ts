/**
 * The backend variants this machine has: the reference backend, the wasm backend (the kernels
 * build this process loaded), and the native backend once per instruction set the CPU runs.
 */
import {
  availableNativeIsas,
  getNativeIsa,
  getNativeThreads,
  loadNativeBackend,
  setNativeIsa,
  setNativeThreads,
} from '../../src/backend/native/index.js';
import { referenceBackend } from '../../src/backend/reference/index.js';
import {
  getWasmThreads,
  setWasmThreads,
  wasmBackend,
  wasmKernelBuild,
} from '../../src/backend/wasm/index.js';
import type { Variant } from './suite.js';

export const referenceVariant: Variant = { name: 'reference', backend: referenceBackend };

/** The wasm backend with the kernels build this process runs (see TENSILE_WASM_RELAXED_SIMD). */
export function wasmVariant(): Variant {
  return {
    name: `wasm ${wasmKernelBuild()}`,
    backend: wasmBackend,
    setThreads(count) {
      const previous = getWasmThreads();
      setWasmThreads(count);
      return previous;
    },
  };
}

/** The native backend once per instruction set this CPU and build run; none when it does not load. */
export function nativeVariants(): Variant[] {
  const native = loadNativeBackend();
  if (native === null) return [];
  return availableNativeIsas().map((isa) => ({
    name: `native ${isa}`,
    backend: native,
    enter() {
      const previous = getNativeIsa()!;
      setNativeIsa(isa);
      return () => setNativeIsa(previous);
    },
    setThreads(count) {
      const previous = getNativeThreads();
      setNativeThreads(count);
      return previous;
    },
  }));
}
