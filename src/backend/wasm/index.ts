/**
 * The WebAssembly SIMD backend: the reference backend with its hot kernels (GEMM, convolution,
 * pooling, batch norm alone, fused with the ReLU after it and with a 2×2 max pooling after that,
 * channel affine and sums, ReLU, broadcast
 * arithmetic, bias-gradient sums)
 * replaced by AssemblyScript kernels from assembly/, compiled to build/wasm/kernels.wasm (and
 * kernels-relaxed.wasm, with fused multiply-adds, used where the engine allows) by
 * `npm run build:wasm`, and run on all cores (./threads.ts).
 *
 * Tensors that ops allocate while this backend is current live in the module's shared memory
 * (./heap.ts), so kernels read and write them in place; other float32 operands (user data,
 * parameters) are copied in and their results back, overlapping the copies with the computing. Each
 * kernel splits its output into chunks that the calling thread and the workers claim (./jobs.ts), and
 * each kernel file brings its chunk runners and the exports of the module it calls (wasmJobs below);
 * scratch such as packed GEMM panels and im2col columns stays inside the module, one region per
 * thread. Calls with any Float64Array argument (gradient checks), and broadcast patterns the kernels
 * do not cover, go to the reference kernels (../kernels.ts builds the backend from this table).
 *
 * Files: ./matmul.ts, ./convolution.ts (./winograd.ts for 3×3 stride-1 layers), ./pooling.ts,
 * ./normalization.ts and ./elementwise.ts plan each kernel call (helpers in ./plan.ts); ./heap.ts
 * divides the module's memory into blocks; ./threads.ts is the worker pool, ./jobs.ts the protocol it
 * shares with ./worker.ts, and ./runtime.ts loads the module and owns the memory arena. Design notes:
 * docs/wasm-backend.md.
 *
 * @example
 * const out = new Float32Array(4);
 * wasmBackend.matmul(new Float32Array([1, 2, 3, 4]), new Float32Array([1, 0, 0, 1]), out, 2, 2, 2, false, false, false);
 * // out is [1, 2, 3, 4]
 */
import { fastBackend } from '../kernels.js';
import type { Backend, TensorStorage } from '../types.js';
import { conv2dBackwardInput, conv2dBackwardWeight, conv2dForward, convolutionJobs } from './convolution.js';
import { activationBackward, activationForward, binary, elementwiseJobs, reduceSum } from './elementwise.js';
import { defineJobTable } from './jobs.js';
import { matmul, matmulJobs } from './matmul.js';
import {
  batchNormReluMaxPoolTrainBackward,
  batchNormReluMaxPoolTrainForward,
  batchNormReluTrainBackward,
  batchNormReluTrainForward,
  batchNormTrainBackward,
  batchNormTrainForward,
  channelAffine,
  channelAffineRelu,
  channelSum,
  normalizationJobs,
} from './normalization.js';
import { adamUpdate, sgdUpdate } from './optimizer.js';
import { WasmTensorStorage } from './heap.js';
import {
  avgPool2dBackward,
  avgPool2dForward,
  maxPool2dBackward,
  maxPool2dForward,
  poolingJobs,
} from './pooling.js';
import { wasmRuntime } from './runtime.js';
import { winogradJobs } from './winograd.js';

export { getWasmThreads, setWasmThreads, wasmTuning, type WasmTuning } from './threads.js';
export { wasmKernelBuild, type WasmKernelBuild } from './runtime.js';

/**
 * The chunk runners of the kernel files, one entry per file, numbered in this order on the calling
 * thread and in every worker thread (./worker.ts and src/platform/kernel-worker.browser.ts import it).
 * A kernel file missing here that declares kernels-module exports fails to compile; one whose runner
 * is missing fails on its first call.
 */
export const wasmJobs = defineJobTable([
  matmulJobs,
  convolutionJobs,
  winogradJobs,
  poolingJobs,
  normalizationJobs,
  elementwiseJobs,
]);

/**
 * Tensors computed while this backend is current live in the module's memory (see ./heap.ts), unless
 * TENSILE_WASM_TENSORS=js keeps them in JavaScript arrays, copied in and out by every kernel call.
 */
export const wasmTensorStorage = /* @__PURE__ */ new WasmTensorStorage(() => wasmRuntime().heap);

/**
 * The kernels of this folder, for float32 data; the reference backend runs float64 and what they
 * decline. (The pure annotations let the browser's kernel worker, which imports this file for wasmJobs
 * alone, leave the backend and the reference kernels out of its bundle.)
 */
export const wasmBackend: Backend = /* @__PURE__ */ fastBackend(
  'wasm',
  {
    float32: {
      matmul,
      conv2dForward,
      conv2dBackwardInput,
      conv2dBackwardWeight,
      maxPool2dForward,
      maxPool2dBackward,
      avgPool2dForward,
      avgPool2dBackward,
      batchNormTrainForward,
      batchNormTrainBackward,
      batchNormReluTrainForward,
      batchNormReluTrainBackward,
      batchNormReluMaxPoolTrainForward,
      batchNormReluMaxPoolTrainBackward,
      channelAffine,
      channelAffineRelu,
      channelSum,
      activationForward,
      activationBackward,
      binary,
      reduceSum,
      adamUpdate,
      sgdUpdate,
    },
  },
  /* @__PURE__ */ tensorStorage(),
);

/** Where tensors live while this backend is current (TENSILE_WASM_TENSORS=js: JavaScript arrays). */
function tensorStorage(): TensorStorage | undefined {
  return process.env.TENSILE_WASM_TENSORS === 'js' ? undefined : wasmTensorStorage;
}
