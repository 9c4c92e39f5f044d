/**
 * The wasm backend's per-channel kernels: training-mode batch norm (alone, fused with the ReLU after
 * it, and with a 2×2 max pooling after that), channel affine map and channel sums, planned onto
 * assembly/norm.ts by blocks of [batch, channel] planes (or of channels).
 */
import { DECLINED } from '../kernels.js';
import type { BatchNormGeometry, Pool2dGeometry } from '../types.js';
import { ARGUMENTS as A, scratchOf, type ChunkRunner, type KernelFileJobs } from './jobs.js';
import {
  apart,
  blockFor,
  channelStages,
  chunkTarget,
  type ItemArray,
  itemStages,
  requireLength,
  reserveScratch,
  setArguments,
  setGrid,
} from './plan.js';
import { wasmRuntime } from './runtime.js';
import { jobParameters, runJob, wasmTuning } from './threads.js';

/**
 * Splits the batch·channels planes of a batch-norm pass over [batch, channels, spatial]. Batch norm
 * walks planes in memory order, not channel by channel (see assembly/norm.ts for why): each plane's
 * sums go to a table, and each channel's total is added up from it in sample order afterwards.
 */
function setPlaneGrid(p: Float64Array, g: BatchNormGeometry): void {
  const planes = g.batch * g.channels;
  const chunks = chunkTarget(planes * g.spatial, wasmTuning.parallelElements);
  setGrid(p, planes, blockFor(planes, chunks));
}

/**
 * Whether g is the pooling that batchNormReluMaxPoolTrain* fuse on this backend: 2×2 windows with
 * stride 2, no padding, every whole window and no other (what the op asks for; anything else goes to
 * the reference composition of the unfused kernels).
 */
function isWholePool2x2(g: Pool2dGeometry): boolean {
  return (
    g.kernelHeight === 2 &&
    g.kernelWidth === 2 &&
    g.strideHeight === 2 &&
    g.strideWidth === 2 &&
    g.padTop === 0 &&
    g.padLeft === 0 &&
    g.outHeight === Math.floor(g.inHeight / 2) &&
    g.outWidth === Math.floor(g.inWidth / 2)
  );
}

/** The batch norm's view [batch, channels, inHeight·inWidth] of a pooling's input. */
function channelsOf(g: Pool2dGeometry): BatchNormGeometry {
  return { batch: g.batch, channels: g.channels, spatial: g.inHeight * g.inWidth };
}

/** The 2×2 max pooling after a fused batch norm + ReLU: its outputs and geometry. */
interface Pooling {
  readonly out: Float32Array;
  readonly argmax: Int32Array;
  readonly g: Pool2dGeometry;
}

/** out [N,C,S] = batch-normalised x; mean and invStd [C] are saved for backward. */
export function batchNormTrainForward(
  x: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  out: Float32Array,
  mean: Float32Array,
  invStd: Float32Array,
  eps: number,
  g: BatchNormGeometry,
): void {
  runBatchNormForward(x, gamma, beta, out, mean, invStd, eps, g, false, null);
}

/**
 * out [N,C,S] = max(batch-normalised x, 0) in one pass: the same bits as batchNormTrainForward then
 * ReLU, without a second kernel call (and its copies in and out of wasm memory).
 */
export function batchNormReluTrainForward(
  x: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  out: Float32Array,
  mean: Float32Array,
  invStd: Float32Array,
  eps: number,
  g: BatchNormGeometry,
): void {
  runBatchNormForward(x, gamma, beta, out, mean, invStd, eps, g, true, null);
}

/**
 * Batch norm + ReLU into y [N,C,H,W], then 2×2 stride-2 max pooling into out and argmax
 * [N,C,H/2,W/2]: the bits of batchNormReluTrainForward then maxPool2dForward, with each plane pooled
 * while it is in cache (assembly/norm.ts). y is written: the backward reads its ReLU mask there.
 * Other pooling geometries are declined.
 */
export function batchNormReluMaxPoolTrainForward(
  x: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  y: Float32Array,
  out: Float32Array,
  argmax: Int32Array,
  mean: Float32Array,
  invStd: Float32Array,
  eps: number,
  g: Pool2dGeometry,
): typeof DECLINED | void {
  if (!isWholePool2x2(g)) return DECLINED;
  runBatchNormForward(x, gamma, beta, y, mean, invStd, eps, channelsOf(g), true, { out, argmax, g });
}

/**
 * batchNormTrainForward on float32 data, with the output clamped at 0 when `relu`, and then pooled
 * when `pooling` is given. Three jobs over the planes: their sums, their squared deviations about the
 * channel means, and the normalising pass; the per-channel steps between them run on this thread.
 */
function runBatchNormForward(
  x: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  out: Float32Array,
  mean: Float32Array,
  invStd: Float32Array,
  eps: number,
  g: BatchNormGeometry,
  relu: boolean,
  pooling: Pooling | null,
): void {
  const pooledOutputs = pooling === null ? [] : [pooling.out, pooling.argmax];
  x = apart(x, out, mean, invStd, ...pooledOutputs);
  gamma = apart(gamma, out, mean, invStd, ...pooledOutputs);
  beta = apart(beta, out, mean, invStd, ...pooledOutputs);
  const count = g.batch * g.channels * g.spatial;
  requireLength('x', x, count);
  requireLength('out', out, count);
  requireLength('gamma', gamma, g.channels);
  requireLength('beta', beta, g.channels);
  requireLength('mean', mean, g.channels);
  requireLength('invStd', invStd, g.channels);
  const planes = g.batch * g.channels;
  const pooled = pooling === null ? 0 : pooling.g.outHeight * pooling.g.outWidth;
  if (pooling !== null) {
    requireLength('pooled out', pooling.out, planes * pooled);
    requireLength('argmax', pooling.argmax, planes * pooled);
  }
  const { arena, kernels } = wasmRuntime();
  arena.reset();
  const xAt = arena.place(x, count);
  const gammaAt = arena.copyIn(gamma, g.channels);
  const betaAt = arena.copyIn(beta, g.channels);
  const outAt = arena.place(out, count);
  const meanAt = arena.place(mean, g.channels);
  const invStdAt = arena.place(invStd, g.channels);
  const pooledAt = pooling === null ? 0 : arena.place(pooling.out, planes * pooled);
  const argmaxAt = pooling === null ? 0 : arena.place(pooling.argmax, planes * pooled);
  const table = arena.allocate(planes * 8);
  const centers = arena.allocate(g.channels * 8);
  const coefficients = arena.allocate(g.channels * 24);

  // The planes' sums (x is copied in here where it is a JavaScript array), then their squared
  // deviations about the channel means.
  let p = jobParameters();
  setPlaneGrid(p, g);
  setArguments(p, xAt, 0, table, g.channels, g.spatial);
  runJob(planeSumsChunk, itemStages(p, [[x, xAt, g.spatial]], []));
  kernels.batchNormCenters(table, centers, g.batch, g.channels, g.spatial);
  p = jobParameters();
  setPlaneGrid(p, g);
  setArguments(p, xAt, centers, table, g.channels, g.spatial);
  runJob(planeSumsChunk);
  kernels.batchNormForwardCoefficients(
    table,
    centers,
    gammaAt,
    betaAt,
    meanAt,
    invStdAt,
    coefficients,
    eps,
    g.batch,
    g.channels,
    g.spatial,
  );
  arena.copyOut(meanAt, mean, g.channels);
  arena.copyOut(invStdAt, invStd, g.channels);

  p = jobParameters();
  setPlaneGrid(p, g);
  if (pooling === null) {
    setArguments(p, xAt, outAt, coefficients, g.channels, g.spatial, +relu);
    runJob(normalizePlanesChunk, itemStages(p, [], [[out, outAt, g.spatial]]));
    return;
  }
  const w = pooling.g;
  setArguments(
    p,
    xAt,
    outAt,
    pooledAt,
    argmaxAt,
    coefficients,
    g.channels,
    w.inHeight,
    w.inWidth,
    w.outHeight,
    w.outWidth,
  );
  const outputs: ItemArray[] = [
    [out, outAt, g.spatial],
    [pooling.out, pooledAt, pooled],
    [pooling.argmax, argmaxAt, pooled],
  ];
  runJob(normalizeMaxPoolPlanesChunk, itemStages(p, [], outputs));
}

/** gradX [N,C,S], gradGamma and gradBeta [C] (all overwritten) of training-mode batch norm. */
export function batchNormTrainBackward(
  x: Float32Array,
  gradOut: Float32Array,
  gamma: Float32Array,
  mean: Float32Array,
  invStd: Float32Array,
  gradX: Float32Array,
  gradGamma: Float32Array,
  gradBeta: Float32Array,
  g: BatchNormGeometry,
): void {
  runBatchNormBackward(x, null, gradOut, null, gamma, mean, invStd, gradX, gradGamma, gradBeta, g, null);
}

/**
 * Backward of batchNormReluTrainForward: the batch-norm gradient of gradOut masked by y > 0, with the
 * mask applied as the kernel reads gradOut (no masked copy, no separate ReLU kernel). Same bits as
 * ReLU backward then batchNormTrainBackward.
 */
export function batchNormReluTrainBackward(
  x: Float32Array,
  y: Float32Array,
  gradOut: Float32Array,
  gamma: Float32Array,
  _beta: Float32Array,
  mean: Float32Array,
  invStd: Float32Array,
  gradX: Float32Array,
  gradGamma: Float32Array,
  gradBeta: Float32Array,
  g: BatchNormGeometry,
): void {
  runBatchNormBackward(x, y, gradOut, null, gamma, mean, invStd, gradX, gradGamma, gradBeta, g, null);
}

/**
 * Backward of batchNormReluMaxPoolTrainForward: gradX [N,C,H,W], gradGamma and gradBeta [C]
 * (overwritten) from the pooled gradOut and argmax [N,C,H/2,W/2], with the bits of maxPool2dBackward
 * then batchNormReluTrainBackward but without the full-size gradient between them: each plane's is
 * built in per-thread scratch while in cache (assembly/norm.ts). y is the forward's. Other pooling
 * geometries are declined.
 */
export function batchNormReluMaxPoolTrainBackward(
  x: Float32Array,
  y: Float32Array,
  gradOut: Float32Array,
  argmax: Int32Array,
  gamma: Float32Array,
  _beta: Float32Array,
  mean: Float32Array,
  invStd: Float32Array,
  gradX: Float32Array,
  gradGamma: Float32Array,
  gradBeta: Float32Array,
  g: Pool2dGeometry,
): typeof DECLINED | void {
  if (!isWholePool2x2(g)) return DECLINED;
  const channels = channelsOf(g);
  runBatchNormBackward(x, y, gradOut, argmax, gamma, mean, invStd, gradX, gradGamma, gradBeta, channels, g);
}

/**
 * batchNormTrainBackward, with the output gradient masked by `reluOutput` > 0 when that is given,
 * and with it the pooled gradient that maxPool2dBackward spreads by `argmax` when `pool` is given.
 * Two jobs over the planes: their gradient sums, and the input gradient; the per-channel step between
 * them runs on this thread.
 */
function runBatchNormBackward(
  x: Float32Array,
  reluOutput: Float32Array | null,
  gradOut: Float32Array,
  argmax: Int32Array | null,
  gamma: Float32Array,
  mean: Float32Array,
  invStd: Float32Array,
  gradX: Float32Array,
  gradGamma: Float32Array,
  gradBeta: Float32Array,
  g: BatchNormGeometry,
  pool: Pool2dGeometry | null,
): void {
  // gradX may overwrite a full-size gradOut in place (the same elements): a copy only where other
  // outputs overlap. A pooled gradOut is read while gradX is written: apart from it too.
  x = apart(x, gradX, gradGamma, gradBeta);
  gradOut = pool === null ? apart(gradOut, gradGamma, gradBeta) : apart(gradOut, gradX, gradGamma, gradBeta);
  if (argmax !== null) argmax = apart(argmax, gradX, gradGamma, gradBeta);
  gamma = apart(gamma, gradX, gradGamma, gradBeta);
  mean = apart(mean, gradX, gradGamma, gradBeta);
  invStd = apart(invStd, gradX, gradGamma, gradBeta);
  if (reluOutput !== null) reluOutput = apart(reluOutput, gradX, gradGamma, gradBeta);
  const count = g.batch * g.channels * g.spatial;
  const planes = g.batch * g.channels;
  const pooled = pool === null ? g.spatial : pool.outHeight * pool.outWidth;
  requireLength('x', x, count);
  requireLength('gradOut', gradOut, planes * pooled);
  requireLength('gradX', gradX, count);
  requireLength('gamma', gamma, g.channels);
  requireLength('mean', mean, g.channels);
  requireLength('invStd', invStd, g.channels);
  requireLength('gradGamma', gradGamma, g.channels);
  requireLength('gradBeta', gradBeta, g.channels);
  if (reluOutput !== null) requireLength('y', reluOutput, count);
  if (argmax !== null) requireLength('argmax', argmax, planes * pooled);
  const { arena, kernels } = wasmRuntime();
  arena.reset();
  const xAt = arena.place(x, count);
  const gradOutAt = arena.place(gradOut, planes * pooled);
  const reluOutputAt = reluOutput === null ? 0 : arena.place(reluOutput, count);
  const argmaxAt = argmax === null ? 0 : arena.place(argmax, planes * pooled);
  const gammaAt = arena.copyIn(gamma, g.channels);
  const meanAt = arena.copyIn(mean, g.channels);
  const invStdAt = arena.copyIn(invStd, g.channels);
  const gradXAt = arena.place(gradX, count);
  const gradGammaAt = arena.place(gradGamma, g.channels);
  const gradBetaAt = arena.place(gradBeta, g.channels);
  const table = arena.allocate(planes * 16);
  const coefficients = arena.allocate(g.channels * 32);
  // Each window's masked gradient, passed from the sums to the input gradient (a quarter of y's size,
  // which the input gradient then does not read).
  const masked = pool === null ? 0 : arena.allocate(planes * pooled * 4);

  // The planes' gradient sums (the inputs are copied in here where they are JavaScript arrays).
  const inputs: ItemArray[] = [
    [x, xAt, g.spatial],
    [gradOut, gradOutAt, pooled],
  ];
  if (reluOutput !== null) inputs.push([reluOutput, reluOutputAt, g.spatial]);
  if (argmax !== null) inputs.push([argmax, argmaxAt, pooled]);
  let p = jobParameters();
  setPlaneGrid(p, g);
  if (pool === null) {
    setArguments(p, xAt, gradOutAt, reluOutputAt, meanAt, table, g.channels, g.spatial);
    runJob(gradientSumsPlanesChunk, itemStages(p, inputs, []));
  } else {
    reserveScratch(p, g.spatial * 4);
    setPooledBackwardArguments(
      p,
      xAt,
      reluOutputAt,
      gradOutAt,
      argmaxAt,
      meanAt,
      table,
      masked,
      0,
      0,
      g,
      pool,
      true,
    );
    runJob(pooledBackwardPlanesChunk, itemStages(p, inputs, []));
  }
  kernels.batchNormBackwardCoefficients(
    table,
    gammaAt,
    meanAt,
    invStdAt,
    gradGammaAt,
    gradBetaAt,
    coefficients,
    g.batch,
    g.channels,
    g.spatial,
  );
  arena.copyOut(gradGammaAt, gradGamma, g.channels);
  arena.copyOut(gradBetaAt, gradBeta, g.channels);

  p = jobParameters();
  setPlaneGrid(p, g);
  const outputs: ItemArray[] = [[gradX, gradXAt, g.spatial]];
  if (pool === null) {
    setArguments(p, xAt, gradOutAt, reluOutputAt, gradXAt, coefficients, g.channels, g.spatial);
    runJob(inputGradientPlanesChunk, itemStages(p, [], outputs));
  } else {
    reserveScratch(p, g.spatial * 4);
    setPooledBackwardArguments(
      p,
      xAt,
      reluOutputAt,
      gradOutAt,
      argmaxAt,
      meanAt,
      0,
      masked,
      gradXAt,
      coefficients,
      g,
      pool,
      false,
    );
    runJob(pooledBackwardPlanesChunk, itemStages(p, [], outputs));
  }
}

/** batchNormReluMaxPoolBackwardPlanes' arguments (see pooledBackwardPlanesChunk). */
function setPooledBackwardArguments(
  p: Float64Array,
  xAt: number,
  yAt: number,
  gradOutAt: number,
  argmaxAt: number,
  meanAt: number,
  table: number,
  masked: number,
  gradXAt: number,
  coefficients: number,
  g: BatchNormGeometry,
  pool: Pool2dGeometry,
  sums: boolean,
): void {
  setArguments(
    p,
    xAt,
    yAt,
    gradOutAt,
    argmaxAt,
    meanAt,
    table,
    masked,
    gradXAt,
    coefficients,
    g.channels,
    pool.inHeight,
    pool.inWidth,
    pool.outHeight,
    pool.outWidth,
    +sums,
  );
}

/** out [N,C,S] = x·scale[c] + shift[c]. */
export function channelAffine(
  x: Float32Array,
  scale: Float32Array,
  shift: Float32Array,
  out: Float32Array,
  g: BatchNormGeometry,
): void {
  runChannelAffine(x, scale, shift, out, g, false);
}

/** out [N,C,S] = max(x·scale[c] + shift[c], 0) in one pass (inference-mode batch norm + ReLU). */
export function channelAffineRelu(
  x: Float32Array,
  scale: Float32Array,
  shift: Float32Array,
  out: Float32Array,
  g: BatchNormGeometry,
): void {
  runChannelAffine(x, scale, shift, out, g, true);
}

/** channelAffine on float32 data, with the output clamped at 0 when `relu`. */
function runChannelAffine(
  x: Float32Array,
  scale: Float32Array,
  shift: Float32Array,
  out: Float32Array,
  g: BatchNormGeometry,
  relu: boolean,
): void {
  scale = apart(scale, out);
  shift = apart(shift, out);
  const count = g.batch * g.channels * g.spatial;
  requireLength('x', x, count);
  requireLength('out', out, count);
  requireLength('scale', scale, g.channels);
  requireLength('shift', shift, g.channels);
  const { arena } = wasmRuntime();
  arena.reset();
  const xAt = arena.place(x, count);
  const scaleAt = arena.copyIn(scale, g.channels);
  const shiftAt = arena.copyIn(shift, g.channels);
  const outAt = arena.place(out, count);
  const planes = g.batch * g.channels;
  const p = jobParameters();
  setGrid(p, planes, blockFor(planes, chunkTarget(count, wasmTuning.parallelElements)));
  setArguments(p, xAt, scaleAt, shiftAt, outAt, g.channels, g.spatial, +relu);
  runJob(channelAffineChunk, itemStages(p, [[x, xAt, g.spatial]], [[out, outAt, g.spatial]]));
}

/** out [C] = Σ over batch and spatial of x [N,C,S] (in float64, as the reference backend). */
export function channelSum(x: Float32Array, out: Float32Array, g: BatchNormGeometry): void {
  x = apart(x, out);
  const count = g.batch * g.channels * g.spatial;
  requireLength('x', x, count);
  requireLength('out', out, g.channels);
  const { arena } = wasmRuntime();
  arena.reset();
  const xAt = arena.place(x, count);
  const outAt = arena.place(out, g.channels);
  const p = jobParameters();
  // Four channels per chunk at least: the [batch, channels] case sums four columns per vector.
  setGrid(p, g.channels, blockFor(g.channels, chunkTarget(count, wasmTuning.parallelElements), 4));
  setArguments(p, xAt, outAt, g.batch, g.channels, g.spatial);
  runJob(channelSumChunk, channelStages(p, g, [[x, xAt, false]], [[out, outAt, true]]));
}

declare module './runtime.js' {
  /** The exports of assembly/norm.ts (see there for the semantics). */
  interface KernelExports {
    batchNormPlaneSums(
      x: Pointer,
      /** 0: plane sums; else float64 [channels], about which the planes' squared deviations are summed. */
      centers: Pointer,
      table: Pointer,
      channels: number,
      spatial: number,
      planeStart: number,
      planeEnd: number,
    ): void;
    batchNormCenters(
      table: Pointer,
      centers: Pointer,
      batch: number,
      channels: number,
      spatial: number,
    ): void;
    batchNormForwardCoefficients(
      table: Pointer,
      centers: Pointer,
      gamma: Pointer,
      beta: Pointer,
      mean: Pointer,
      invStd: Pointer,
      coefficients: Pointer,
      eps: number,
      batch: number,
      channels: number,
      spatial: number,
    ): void;
    batchNormNormalizePlanes(
      x: Pointer,
      out: Pointer,
      coefficients: Pointer,
      channels: number,
      spatial: number,
      planeStart: number,
      planeEnd: number,
      relu: boolean,
    ): void;
    batchNormReluMaxPoolPlanes(
      x: Pointer,
      y: Pointer,
      out: Pointer,
      argmax: Pointer,
      coefficients: Pointer,
      channels: number,
      inHeight: number,
      inWidth: number,
      outHeight: number,
      outWidth: number,
      planeStart: number,
      planeEnd: number,
    ): void;
    batchNormGradientSumsPlanes(
      x: Pointer,
      gradOut: Pointer,
      /** The fused forward's output, whose ReLU mask applies to gradOut; 0 for plain batch norm. */
      y: Pointer,
      mean: Pointer,
      table: Pointer,
      channels: number,
      spatial: number,
      planeStart: number,
      planeEnd: number,
    ): void;
    batchNormBackwardCoefficients(
      table: Pointer,
      gamma: Pointer,
      mean: Pointer,
      invStd: Pointer,
      gradGamma: Pointer,
      gradBeta: Pointer,
      coefficients: Pointer,
      batch: number,
      channels: number,
      spatial: number,
    ): void;
    batchNormInputGradientPlanes(
      x: Pointer,
      gradOut: Pointer,
      y: Pointer,
      gradX: Pointer,
      coefficients: Pointer,
      channels: number,
      spatial: number,
      planeStart: number,
      planeEnd: number,
    ): void;
    batchNormReluMaxPoolBackwardPlanes(
      x: Pointer,
      y: Pointer,
      gradOut: Pointer,
      argmax: Pointer,
      mean: Pointer,
      table: Pointer,
      /** The windows' masked gradients, [planes, outHeight, outWidth]: written with sums, read without. */
      masked: Pointer,
      gradX: Pointer,
      coefficients: Pointer,
      channels: number,
      inHeight: number,
      inWidth: number,
      outHeight: number,
      outWidth: number,
      planeStart: number,
      planeEnd: number,
      /** This thread's scratch: inHeight·inWidth floats. */
      scratch: Pointer,
      /** true: the gradient sums into table; false: the input gradient into gradX. */
      sums: boolean,
    ): void;
    channelAffine(
      x: Pointer,
      scale: Pointer,
      shift: Pointer,
      out: Pointer,
      channels: number,
      spatial: number,
      planeStart: number,
      planeEnd: number,
      relu: boolean,
    ): void;
    channelSum(
      x: Pointer,
      out: Pointer,
      batch: number,
      channels: number,
      spatial: number,
      channelStart: number,
      channelEnd: number,
    ): void;
  }
}

/** batchNormPlaneSums: x, centers, table, channels, spatial; first = planes. */
const planeSumsChunk: ChunkRunner = (kernels, p, chunk) => {
  kernels.batchNormPlaneSums(
    p[A]!,
    p[A + 1]!,
    p[A + 2]!,
    p[A + 3]!,
    p[A + 4]!,
    chunk.firstStart,
    chunk.firstEnd,
  );
};

/** batchNormNormalizePlanes: x, out, coefficients, channels, spatial, relu; first = planes. */
const normalizePlanesChunk: ChunkRunner = (kernels, p, chunk) => {
  kernels.batchNormNormalizePlanes(
    p[A]!,
    p[A + 1]!,
    p[A + 2]!,
    p[A + 3]!,
    p[A + 4]!,
    chunk.firstStart,
    chunk.firstEnd,
    p[A + 5] !== 0,
  );
};

/**
 * batchNormReluMaxPoolPlanes: x, y, out, argmax, coefficients, channels, inHeight, inWidth,
 * outHeight, outWidth; first = planes.
 */
const normalizeMaxPoolPlanesChunk: ChunkRunner = (kernels, p, chunk) => {
  kernels.batchNormReluMaxPoolPlanes(
    p[A]!,
    p[A + 1]!,
    p[A + 2]!,
    p[A + 3]!,
    p[A + 4]!,
    p[A + 5]!,
    p[A + 6]!,
    p[A + 7]!,
    p[A + 8]!,
    p[A + 9]!,
    chunk.firstStart,
    chunk.firstEnd,
  );
};

/** batchNormGradientSumsPlanes: x, gradOut, y (or 0), mean, table, channels, spatial; first = planes. */
const gradientSumsPlanesChunk: ChunkRunner = (kernels, p, chunk) => {
  kernels.batchNormGradientSumsPlanes(
    p[A]!,
    p[A + 1]!,
    p[A + 2]!,
    p[A + 3]!,
    p[A + 4]!,
    p[A + 5]!,
    p[A + 6]!,
    chunk.firstStart,
    chunk.firstEnd,
  );
};

/**
 * batchNormInputGradientPlanes: x, gradOut, y (or 0), gradX, coefficients, channels, spatial;
 * first = planes.
 */
const inputGradientPlanesChunk: ChunkRunner = (kernels, p, chunk) => {
  kernels.batchNormInputGradientPlanes(
    p[A]!,
    p[A + 1]!,
    p[A + 2]!,
    p[A + 3]!,
    p[A + 4]!,
    p[A + 5]!,
    p[A + 6]!,
    chunk.firstStart,
    chunk.firstEnd,
  );
};

/**
 * batchNormReluMaxPoolBackwardPlanes: x, y, gradOut, argmax, mean, table, masked, gradX,
 * coefficients, channels, inHeight, inWidth, outHeight, outWidth, sums, with this thread's scratch;
 * first = planes.
 */
const pooledBackwardPlanesChunk: ChunkRunner = (kernels, p, chunk, thread) => {
  kernels.batchNormReluMaxPoolBackwardPlanes(
    p[A]!,
    p[A + 1]!,
    p[A + 2]!,
    p[A + 3]!,
    p[A + 4]!,
    p[A + 5]!,
    p[A + 6]!,
    p[A + 7]!,
    p[A + 8]!,
    p[A + 9]!,
    p[A + 10]!,
    p[A + 11]!,
    p[A + 12]!,
    p[A + 13]!,
    chunk.firstStart,
    chunk.firstEnd,
    scratchOf(p, thread),
    p[A + 14] !== 0,
  );
};

/** channelAffine: x, scale, shift, out, channels, spatial, relu; first = planes (batch·channels). */
const channelAffineChunk: ChunkRunner = (kernels, p, chunk) => {
  kernels.channelAffine(
    p[A]!,
    p[A + 1]!,
    p[A + 2]!,
    p[A + 3]!,
    p[A + 4]!,
    p[A + 5]!,
    chunk.firstStart,
    chunk.firstEnd,
    p[A + 6] !== 0,
  );
};

/** channelSum: x, out, batch, channels, spatial; first = channels. */
const channelSumChunk: ChunkRunner = (kernels, p, chunk) => {
  kernels.channelSum(p[A]!, p[A + 1]!, p[A + 2]!, p[A + 3]!, p[A + 4]!, chunk.firstStart, chunk.firstEnd);
};

/** This file's part of the job table (./index.ts). */
export const normalizationJobs = {
  exports: {
    batchNormPlaneSums: true,
    batchNormCenters: true,
    batchNormForwardCoefficients: true,
    batchNormNormalizePlanes: true,
    batchNormReluMaxPoolPlanes: true,
    batchNormGradientSumsPlanes: true,
    batchNormBackwardCoefficients: true,
    batchNormInputGradientPlanes: true,
    batchNormReluMaxPoolBackwardPlanes: true,
    channelAffine: true,
    channelSum: true,
  },
  runners: {
    batchNormPlaneSums: planeSumsChunk,
    batchNormNormalizePlanes: normalizePlanesChunk,
    batchNormReluMaxPoolPlanes: normalizeMaxPoolPlanesChunk,
    batchNormGradientSumsPlanes: gradientSumsPlanesChunk,
    batchNormInputGradientPlanes: inputGradientPlanesChunk,
    batchNormReluMaxPoolBackwardPlanes: pooledBackwardPlanesChunk,
    channelAffine: channelAffineChunk,
    channelSum: channelSumChunk,
  },
} satisfies KernelFileJobs;
