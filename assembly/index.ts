/**
 * Entry point of build/wasm/kernels.wasm and kernels-relaxed.wasm: the hot kernels of tensile's
 * WebAssembly backend.
 *
 * Compiled by scripts/build-wasm.mjs with SIMD (and, for the second build, relaxed SIMD, which only
 * the GEMM's register tile uses), an imported shared memory and the stub runtime. The
 * kernels take byte addresses into that memory and allocate nothing: the JavaScript side
 * (src/backend/wasm/) lays out inputs, outputs and scratch above heapBase(). The module has no data
 * segments, no globals and no start function, so every worker thread can instantiate it over the same
 * memory, and every kernel takes an output range so that the threads can share a call.
 */
export {
  gemmStrided,
  gemmWorkspaceBytes,
  gemmPackA,
  gemmPackB,
  gemmPackedFloats,
  gemmPackedBlock,
  gemmTileRows,
} from './gemm';
export { sumBlocks } from './floats';
export { conv2dForward, conv2dBackwardInput, conv2dBackwardWeight, convColumnBytes } from './conv';
export {
  winogradConv,
  winogradGradientScratchBytes,
  winogradImagesPerProduct,
  winogradScratchBytes,
  winogradPackedBytes,
  winogradWeightFloats,
  winogradWeightGradient,
  winogradWeights,
} from './winograd';
export { maxPool2dForward, maxPool2dBackward, avgPool2dForward, avgPool2dBackward } from './pool';
export {
  batchNormPlaneSums,
  batchNormCenters,
  batchNormForwardCoefficients,
  batchNormNormalizePlanes,
  batchNormReluMaxPoolPlanes,
  batchNormGradientSumsPlanes,
  batchNormBackwardCoefficients,
  batchNormInputGradientPlanes,
  batchNormReluMaxPoolBackwardPlanes,
  channelAffine,
  channelSum,
} from './norm';
export {
  reluForward,
  reluBackward,
  leakyReluForward,
  leakyReluBackward,
  binaryBroadcast,
  binarySameShape,
} from './elementwise';
export { adamUpdate, sgdUpdate } from './optim';

/** First byte of linear memory not used by this module's static data. */
export function heapBase(): usize {
  return __heap_base;
}
