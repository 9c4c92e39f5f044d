/**
 * The WebAssembly SIMD backend: the reference backend with its hot kernels (GEMM, convolution,
 * pooling, batch norm, channel affine) replaced by AssemblyScript kernels from assembly/, compiled to
 * build/wasm/kernels.wasm by `npm run build:wasm`.
 *
 * Each kernel copies its float32 inputs into the module's memory, runs there on the calling thread,
 * and copies its outputs back; scratch such as packed GEMM panels and im2col columns stays inside the
 * module. Calls with any Float64Array argument (gradient checks) go to the reference kernels.
 *
 * @example
 * const out = new Float32Array(4);
 * wasmBackend.matmul(new Float32Array([1, 2, 3, 4]), new Float32Array([1, 0, 0, 1]), out, 2, 2, 2, false, false, false);
 * // out is [1, 2, 3, 4]
 */
import { referenceBackend } from '../reference/index.js';
import type { Backend, BatchNormGeometry, Conv2dGeometry, Data, Pool2dGeometry } from '../types.js';
import { wasmRuntime, type ConvArguments, type PoolArguments } from './runtime.js';

function isFloat32(data: Data): data is Float32Array {
  return data instanceof Float32Array;
}

/** Rejects arrays too short for their shape, which would otherwise be read as garbage in wasm memory. */
function requireLength(name: string, data: Float32Array | Int32Array, count: number): void {
  if (data.length < count) {
    throw new RangeError(`wasm backend: ${name} has ${data.length} elements, the shape needs ${count}`);
  }
}

function convArguments(g: Conv2dGeometry): ConvArguments {
  return [
    g.batch,
    g.inChannels,
    g.inHeight,
    g.inWidth,
    g.outChannels,
    g.kernelHeight,
    g.kernelWidth,
    g.strideHeight,
    g.strideWidth,
    g.padTop,
    g.padLeft,
    g.dilationHeight,
    g.dilationWidth,
    g.outHeight,
    g.outWidth,
  ];
}

function poolArguments(g: Pool2dGeometry): PoolArguments {
  return [
    g.batch * g.channels,
    g.inHeight,
    g.inWidth,
    g.kernelHeight,
    g.kernelWidth,
    g.strideHeight,
    g.strideWidth,
    g.padTop,
    g.padLeft,
    g.outHeight,
    g.outWidth,
  ];
}

/** Element counts of a convolution's x [N,C,H,W], weight [O,C,kh,kw] and out [N,O,oh,ow]. */
function convSizes(g: Conv2dGeometry): { x: number; weight: number; out: number } {
  return {
    x: g.batch * g.inChannels * g.inHeight * g.inWidth,
    weight: g.outChannels * g.inChannels * g.kernelHeight * g.kernelWidth,
    out: g.batch * g.outChannels * g.outHeight * g.outWidth,
  };
}

/** Reserves the im2col columns and GEMM workspace a convolution needs; returns [cols, work]. */
function convScratch(g: Conv2dGeometry, gemmM: number, gemmN: number, gemmK: number): [number, number] {
  const { kernels, arena } = wasmRuntime();
  const columnBytes = kernels.convColumnBytes(
    g.inChannels,
    g.kernelHeight,
    g.kernelWidth,
    g.strideHeight,
    g.strideWidth,
    g.padTop,
    g.padLeft,
    g.outHeight,
    g.outWidth,
  );
  const cols = arena.allocate(columnBytes);
  const work = arena.allocate(kernels.gemmWorkspaceBytes(gemmM, gemmN, gemmK));
  return [cols, work];
}

/** out[M,N] (+)= op(A)[M,K]·op(B)[K,N]; see Backend.matmul for the layouts. */
function matmul(
  a: Data,
  b: Data,
  out: Data,
  m: number,
  n: number,
  k: number,
  transposeA: boolean,
  transposeB: boolean,
  accumulate: boolean,
): void {
  if (!isFloat32(a) || !isFloat32(b) || !isFloat32(out)) {
    referenceBackend.matmul(a, b, out, m, n, k, transposeA, transposeB, accumulate);
    return;
  }
  requireLength('a', a, m * k);
  requireLength('b', b, k * n);
  requireLength('out', out, m * n);
  const { kernels, arena } = wasmRuntime();
  arena.reset();
  const aAt = arena.copyIn(a, m * k);
  const bAt = arena.copyIn(b, k * n);
  const outAt = accumulate ? arena.copyIn(out, m * n) : arena.allocate(m * n * 4);
  const work = arena.allocate(kernels.gemmWorkspaceBytes(m, n, k));
  kernels.gemm(aAt, bAt, outAt, m, n, k, transposeA, transposeB, accumulate, work);
  arena.copyOut(outAt, out, m * n);
}

/** out [N,O,oh,ow] = conv(x [N,C,H,W], weight [O,C,kh,kw]). */
function conv2dForward(x: Data, weight: Data, out: Data, g: Conv2dGeometry): void {
  if (!isFloat32(x) || !isFloat32(weight) || !isFloat32(out)) {
    referenceBackend.conv2dForward(x, weight, out, g);
    return;
  }
  const sizes = convSizes(g);
  requireLength('x', x, sizes.x);
  requireLength('weight', weight, sizes.weight);
  requireLength('out', out, sizes.out);
  const { kernels, arena } = wasmRuntime();
  arena.reset();
  const xAt = arena.copyIn(x, sizes.x);
  const weightAt = arena.copyIn(weight, sizes.weight);
  const outAt = arena.allocate(sizes.out * 4);
  const depth = g.inChannels * g.kernelHeight * g.kernelWidth;
  const [cols, work] = convScratch(g, g.outChannels, g.outHeight * g.outWidth, depth);
  kernels.conv2dForward(xAt, weightAt, outAt, ...convArguments(g), cols, work);
  arena.copyOut(outAt, out, sizes.out);
}

/** gradX [N,C,H,W] = ∂L/∂x from gradOut [N,O,oh,ow] and weight [O,C,kh,kw]; overwritten. */
function conv2dBackwardInput(gradOut: Data, weight: Data, gradX: Data, g: Conv2dGeometry): void {
  if (!isFloat32(gradOut) || !isFloat32(weight) || !isFloat32(gradX)) {
    referenceBackend.conv2dBackwardInput(gradOut, weight, gradX, g);
    return;
  }
  const sizes = convSizes(g);
  requireLength('gradOut', gradOut, sizes.out);
  requireLength('weight', weight, sizes.weight);
  requireLength('gradX', gradX, sizes.x);
  const { kernels, arena } = wasmRuntime();
  arena.reset();
  const gradOutAt = arena.copyIn(gradOut, sizes.out);
  const weightAt = arena.copyIn(weight, sizes.weight);
  const gradXAt = arena.allocate(sizes.x * 4);
  const depth = g.inChannels * g.kernelHeight * g.kernelWidth;
  const [cols, work] = convScratch(g, depth, g.outHeight * g.outWidth, g.outChannels);
  kernels.conv2dBackwardInput(gradOutAt, weightAt, gradXAt, ...convArguments(g), cols, work);
  arena.copyOut(gradXAt, gradX, sizes.x);
}

/** gradWeight [O,C,kh,kw] = ∂L/∂weight from x [N,C,H,W] and gradOut [N,O,oh,ow]; overwritten. */
function conv2dBackwardWeight(x: Data, gradOut: Data, gradWeight: Data, g: Conv2dGeometry): void {
  if (!isFloat32(x) || !isFloat32(gradOut) || !isFloat32(gradWeight)) {
    referenceBackend.conv2dBackwardWeight(x, gradOut, gradWeight, g);
    return;
  }
  const sizes = convSizes(g);
  requireLength('x', x, sizes.x);
  requireLength('gradOut', gradOut, sizes.out);
  requireLength('gradWeight', gradWeight, sizes.weight);
  const { kernels, arena } = wasmRuntime();
  arena.reset();
  const xAt = arena.copyIn(x, sizes.x);
  const gradOutAt = arena.copyIn(gradOut, sizes.out);
  const gradWeightAt = arena.allocate(sizes.weight * 4);
  const depth = g.inChannels * g.kernelHeight * g.kernelWidth;
  const [cols, work] = convScratch(g, g.outChannels, depth, g.outHeight * g.outWidth);
  kernels.conv2dBackwardWeight(xAt, gradOutAt, gradWeightAt, ...convArguments(g), cols, work);
  arena.copyOut(gradWeightAt, gradWeight, sizes.weight);
}

/** out and argmax [N,C,oh,ow] from x [N,C,H,W]; argmax indexes within each (n, c) input plane. */
function maxPool2dForward(x: Data, out: Data, argmax: Int32Array, g: Pool2dGeometry): void {
  if (!isFloat32(x) || !isFloat32(out)) {
    referenceBackend.maxPool2dForward(x, out, argmax, g);
    return;
  }
  const inCount = g.batch * g.channels * g.inHeight * g.inWidth;
  const outCount = g.batch * g.channels * g.outHeight * g.outWidth;
  requireLength('x', x, inCount);
  requireLength('out', out, outCount);
  requireLength('argmax', argmax, outCount);
  const { kernels, arena } = wasmRuntime();
  arena.reset();
  const xAt = arena.copyIn(x, inCount);
  const outAt = arena.allocate(outCount * 4);
  const argmaxAt = arena.allocate(outCount * 4);
  kernels.maxPool2dForward(xAt, outAt, argmaxAt, ...poolArguments(g));
  arena.copyOut(outAt, out, outCount);
  arena.copyOut(argmaxAt, argmax, outCount);
}

/** gradX [N,C,H,W] (overwritten) from gradOut and argmax [N,C,oh,ow]. */
function maxPool2dBackward(gradOut: Data, argmax: Int32Array, gradX: Data, g: Pool2dGeometry): void {
  if (!isFloat32(gradOut) || !isFloat32(gradX)) {
    referenceBackend.maxPool2dBackward(gradOut, argmax, gradX, g);
    return;
  }
  const planes = g.batch * g.channels;
  const planeIn = g.inHeight * g.inWidth;
  const planeOut = g.outHeight * g.outWidth;
  requireLength('gradOut', gradOut, planes * planeOut);
  requireLength('argmax', argmax, planes * planeOut);
  requireLength('gradX', gradX, planes * planeIn);
  const { kernels, arena } = wasmRuntime();
  arena.reset();
  const gradOutAt = arena.copyIn(gradOut, planes * planeOut);
  const argmaxAt = arena.copyIn(argmax, planes * planeOut);
  const gradXAt = arena.allocate(planes * planeIn * 4);
  kernels.maxPool2dBackward(gradOutAt, argmaxAt, gradXAt, planes, planeIn, planeOut);
  arena.copyOut(gradXAt, gradX, planes * planeIn);
}

/** out [N,C,oh,ow] = window means of x [N,C,H,W]; see Backend.avgPool2dForward for the divisor. */
function avgPool2dForward(x: Data, out: Data, g: Pool2dGeometry, countIncludePad: boolean): void {
  if (!isFloat32(x) || !isFloat32(out)) {
    referenceBackend.avgPool2dForward(x, out, g, countIncludePad);
    return;
  }
  const inCount = g.batch * g.channels * g.inHeight * g.inWidth;
  const outCount = g.batch * g.channels * g.outHeight * g.outWidth;
  requireLength('x', x, inCount);
  requireLength('out', out, outCount);
  const { kernels, arena } = wasmRuntime();
  arena.reset();
  const xAt = arena.copyIn(x, inCount);
  const outAt = arena.allocate(outCount * 4);
  kernels.avgPool2dForward(xAt, outAt, ...poolArguments(g), countIncludePad);
  arena.copyOut(outAt, out, outCount);
}

/** gradX [N,C,H,W] (overwritten) from gradOut [N,C,oh,ow]. */
function avgPool2dBackward(gradOut: Data, gradX: Data, g: Pool2dGeometry, countIncludePad: boolean): void {
  if (!isFloat32(gradOut) || !isFloat32(gradX)) {
    referenceBackend.avgPool2dBackward(gradOut, gradX, g, countIncludePad);
    return;
  }
  const inCount = g.batch * g.channels * g.inHeight * g.inWidth;
  const outCount = g.batch * g.channels * g.outHeight * g.outWidth;
  requireLength('gradOut', gradOut, outCount);
  requireLength('gradX', gradX, inCount);
  const { kernels, arena } = wasmRuntime();
  arena.reset();
  const gradOutAt = arena.copyIn(gradOut, outCount);
  const gradXAt = arena.allocate(inCount * 4);
  kernels.avgPool2dBackward(gradOutAt, gradXAt, ...poolArguments(g), countIncludePad);
  arena.copyOut(gradXAt, gradX, inCount);
}

/** out [N,C,S] = batch-normalised x; mean and invStd [C] are saved for backward. */
function batchNormTrainForward(
  x: Data,
  gamma: Data,
  beta: Data,
  out: Data,
  mean: Data,
  invStd: Data,
  eps: number,
  g: BatchNormGeometry,
): void {
  if (
    !isFloat32(x) ||
    !isFloat32(gamma) ||
    !isFloat32(beta) ||
    !isFloat32(out) ||
    !isFloat32(mean) ||
    !isFloat32(invStd)
  ) {
    referenceBackend.batchNormTrainForward(x, gamma, beta, out, mean, invStd, eps, g);
    return;
  }
  const count = g.batch * g.channels * g.spatial;
  requireLength('x', x, count);
  requireLength('out', out, count);
  for (const [name, data] of [
    ['gamma', gamma],
    ['beta', beta],
    ['mean', mean],
    ['invStd', invStd],
  ] as const) {
    requireLength(name, data, g.channels);
  }
  const { kernels, arena } = wasmRuntime();
  arena.reset();
  const xAt = arena.copyIn(x, count);
  const gammaAt = arena.copyIn(gamma, g.channels);
  const betaAt = arena.copyIn(beta, g.channels);
  const outAt = arena.allocate(count * 4);
  const meanAt = arena.allocate(g.channels * 4);
  const invStdAt = arena.allocate(g.channels * 4);
  kernels.batchNormTrainForward(
    xAt,
    gammaAt,
    betaAt,
    outAt,
    meanAt,
    invStdAt,
    eps,
    g.batch,
    g.channels,
    g.spatial,
  );
  arena.copyOut(outAt, out, count);
  arena.copyOut(meanAt, mean, g.channels);
  arena.copyOut(invStdAt, invStd, g.channels);
}

/** gradX [N,C,S], gradGamma and gradBeta [C] (all overwritten) of training-mode batch norm. */
function batchNormTrainBackward(
  x: Data,
  gradOut: Data,
  gamma: Data,
  mean: Data,
  invStd: Data,
  gradX: Data,
  gradGamma: Data,
  gradBeta: Data,
  g: BatchNormGeometry,
): void {
  if (
    !isFloat32(x) ||
    !isFloat32(gradOut) ||
    !isFloat32(gamma) ||
    !isFloat32(mean) ||
    !isFloat32(invStd) ||
    !isFloat32(gradX) ||
    !isFloat32(gradGamma) ||
    !isFloat32(gradBeta)
  ) {
    referenceBackend.batchNormTrainBackward(x, gradOut, gamma, mean, invStd, gradX, gradGamma, gradBeta, g);
    return;
  }
  const count = g.batch * g.channels * g.spatial;
  requireLength('x', x, count);
  requireLength('gradOut', gradOut, count);
  requireLength('gradX', gradX, count);
  for (const [name, data] of [
    ['gamma', gamma],
    ['mean', mean],
    ['invStd', invStd],
    ['gradGamma', gradGamma],
    ['gradBeta', gradBeta],
  ] as const) {
    requireLength(name, data, g.channels);
  }
  const { kernels, arena } = wasmRuntime();
  arena.reset();
  const xAt = arena.copyIn(x, count);
  const gradOutAt = arena.copyIn(gradOut, count);
  const gammaAt = arena.copyIn(gamma, g.channels);
  const meanAt = arena.copyIn(mean, g.channels);
  const invStdAt = arena.copyIn(invStd, g.channels);
  const gradXAt = arena.allocate(count * 4);
  const gradGammaAt = arena.allocate(g.channels * 4);
  const gradBetaAt = arena.allocate(g.channels * 4);
  kernels.batchNormTrainBackward(
    xAt,
    gradOutAt,
    gammaAt,
    meanAt,
    invStdAt,
    gradXAt,
    gradGammaAt,
    gradBetaAt,
    g.batch,
    g.channels,
    g.spatial,
  );
  arena.copyOut(gradXAt, gradX, count);
  arena.copyOut(gradGammaAt, gradGamma, g.channels);
  arena.copyOut(gradBetaAt, gradBeta, g.channels);
}

/** out [N,C,S] = x·scale[c] + shift[c]. */
function channelAffine(x: Data, scale: Data, shift: Data, out: Data, g: BatchNormGeometry): void {
  if (!isFloat32(x) || !isFloat32(scale) || !isFloat32(shift) || !isFloat32(out)) {
    referenceBackend.channelAffine(x, scale, shift, out, g);
    return;
  }
  const count = g.batch * g.channels * g.spatial;
  requireLength('x', x, count);
  requireLength('out', out, count);
  requireLength('scale', scale, g.channels);
  requireLength('shift', shift, g.channels);
  const { kernels, arena } = wasmRuntime();
  arena.reset();
  const xAt = arena.copyIn(x, count);
  const scaleAt = arena.copyIn(scale, g.channels);
  const shiftAt = arena.copyIn(shift, g.channels);
  const outAt = arena.allocate(count * 4);
  kernels.channelAffine(xAt, scaleAt, shiftAt, outAt, g.batch, g.channels, g.spatial);
  arena.copyOut(outAt, out, count);
}

export const wasmBackend: Backend = {
  ...referenceBackend,
  name: 'wasm',
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
  channelAffine,
};
