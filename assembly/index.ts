/**
 * Entry point of build/wasm/kernels.wasm: the hot kernels of tensile's WebAssembly backend.
 *
 * Compiled by scripts/build-wasm.mjs with SIMD, an imported shared memory and the stub runtime. The
 * kernels take byte addresses into that memory and allocate nothing: the JavaScript side
 * (src/backend/wasm/index.ts) lays out inputs, outputs and scratch above heapBase().
 */
export { gemm, gemmWorkspaceBytes } from './gemm';
export { conv2dForward, conv2dBackwardInput, conv2dBackwardWeight, convColumnBytes } from './conv';
export { maxPool2dForward, maxPool2dBackward, avgPool2dForward, avgPool2dBackward } from './pool';
export { batchNormTrainForward, batchNormTrainBackward, channelAffine } from './norm';

/** First byte of linear memory not used by this module's static data. */
export function heapBase(): usize {
  return __heap_base;
}
