/**
 * The wasm backend's per-channel kernels: training-mode batch norm, channel affine map and channel
 * sums, planned onto assembly/norm.ts by blocks of channels (or planes).
 */
import type { BatchNormGeometry } from '../types.js';
import { ARGUMENTS as A, type ChunkRunner, type KernelFileJobs } from './jobs.js';
import {
  apart,
  blockFor,
  type ChannelArray,
  channelStages,
  chunkTarget,
  itemStages,
  requireLength,
  setArguments,
  setGrid,
} from './plan.js';
import { wasmRuntime } from './runtime.js';
import { jobParameters, runJob, wasmTuning } from './threads.js';

/** Splits the channels of a per-channel job over [batch, channels, spatial]. */
function setChannelGrid(p: Float64Array, g: BatchNormGeometry): void {
  const chunks = chunkTarget(g.batch * g.channels * g.spatial, wasmTuning.parallelElements);
  setGrid(p, g.channels, blockFor(g.channels, chunks));
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
  runBatchNormForward(x, gamma, beta, out, mean, invStd, eps, g, false);
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
  runBatchNormForward(x, gamma, beta, out, mean, invStd, eps, g, true);
}

/** batchNormTrainForward on float32 data, with the output clamped at 0 when `relu`. */
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
): void {
  x = apart(x, out, mean, invStd);
  gamma = apart(gamma, out, mean, invStd);
  beta = apart(beta, out, mean, invStd);
  const count = g.batch * g.channels * g.spatial;
  requireLength('x', x, count);
  requireLength('out', out, count);
  requireLength('gamma', gamma, g.channels);
  requireLength('beta', beta, g.channels);
  requireLength('mean', mean, g.channels);
  requireLength('invStd', invStd, g.channels);
  const { arena } = wasmRuntime();
  arena.reset();
  const xAt = arena.place(x, count);
  const gammaAt = arena.place(gamma, g.channels);
  const betaAt = arena.place(beta, g.channels);
  const outAt = arena.place(out, count);
  const meanAt = arena.place(mean, g.channels);
  const invStdAt = arena.place(invStd, g.channels);
  const p = jobParameters();
  setChannelGrid(p, g);
  setArguments(p, xAt, gammaAt, betaAt, outAt, meanAt, invStdAt, eps, g.batch, g.channels, g.spatial, +relu);
  const stages = channelStages(
    p,
    g,
    [
      [x, xAt, false],
      [gamma, gammaAt, true],
      [beta, betaAt, true],
    ],
    [
      [out, outAt, false],
      [mean, meanAt, true],
      [invStd, invStdAt, true],
    ],
  );
  runJob(batchNormTrainForwardChunk, stages);
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
  runBatchNormBackward(x, null, gradOut, gamma, mean, invStd, gradX, gradGamma, gradBeta, g);
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
  requireLength('y', y, g.batch * g.channels * g.spatial);
  runBatchNormBackward(x, y, gradOut, gamma, mean, invStd, gradX, gradGamma, gradBeta, g);
}

/** batchNormTrainBackward, with gradOut masked by `reluOutput` > 0 when that is given. */
function runBatchNormBackward(
  x: Float32Array,
  reluOutput: Float32Array | null,
  gradOut: Float32Array,
  gamma: Float32Array,
  mean: Float32Array,
  invStd: Float32Array,
  gradX: Float32Array,
  gradGamma: Float32Array,
  gradBeta: Float32Array,
  g: BatchNormGeometry,
): void {
  // gradX may overwrite gradOut in place (the same elements): a copy only where other outputs overlap.
  x = apart(x, gradX, gradGamma, gradBeta);
  gradOut = apart(gradOut, gradGamma, gradBeta);
  gamma = apart(gamma, gradX, gradGamma, gradBeta);
  mean = apart(mean, gradX, gradGamma, gradBeta);
  invStd = apart(invStd, gradX, gradGamma, gradBeta);
  if (reluOutput !== null) reluOutput = apart(reluOutput, gradX, gradGamma, gradBeta);
  const count = g.batch * g.channels * g.spatial;
  requireLength('x', x, count);
  requireLength('gradOut', gradOut, count);
  requireLength('gradX', gradX, count);
  requireLength('gamma', gamma, g.channels);
  requireLength('mean', mean, g.channels);
  requireLength('invStd', invStd, g.channels);
  requireLength('gradGamma', gradGamma, g.channels);
  requireLength('gradBeta', gradBeta, g.channels);
  const { arena } = wasmRuntime();
  arena.reset();
  const xAt = arena.place(x, count);
  const gradOutAt = arena.place(gradOut, count);
  const gammaAt = arena.place(gamma, g.channels);
  const meanAt = arena.place(mean, g.channels);
  const invStdAt = arena.place(invStd, g.channels);
  const gradXAt = arena.place(gradX, count);
  const gradGammaAt = arena.place(gradGamma, g.channels);
  const gradBetaAt = arena.place(gradBeta, g.channels);
  const reluOutputAt = reluOutput === null ? 0 : arena.place(reluOutput, count);
  const p = jobParameters();
  setChannelGrid(p, g);
  setArguments(
    p,
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
    reluOutputAt,
  );
  const inputs: ChannelArray[] = [
    [x, xAt, false],
    [gradOut, gradOutAt, false],
    [gamma, gammaAt, true],
    [mean, meanAt, true],
    [invStd, invStdAt, true],
  ];
  if (reluOutput !== null) inputs.push([reluOutput, reluOutputAt, false]);
  const stages = channelStages(p, g, inputs, [
    [gradX, gradXAt, false],
    [gradGamma, gradGammaAt, true],
    [gradBeta, gradBetaAt, true],
  ]);
  runJob(batchNormTrainBackwardChunk, stages);
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
    batchNormTrainForward(
      x: Pointer,
      gamma: Pointer,
      beta: Pointer,
      out: Pointer,
      mean: Pointer,
      invStd: Pointer,
      eps: number,
      batch: number,
      channels: number,
      spatial: number,
      channelStart: number,
      channelEnd: number,
      relu: boolean,
    ): void;
    batchNormTrainBackward(
      x: Pointer,
      gradOut: Pointer,
      gamma: Pointer,
      mean: Pointer,
      invStd: Pointer,
      gradX: Pointer,
      gradGamma: Pointer,
      gradBeta: Pointer,
      batch: number,
      channels: number,
      spatial: number,
      channelStart: number,
      channelEnd: number,
      /** The fused forward's output, whose ReLU mask applies to gradOut; 0 for plain batch norm. */
      reluOutput: Pointer,
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

/**
 * batchNormTrainForward: x, gamma, beta, out, mean, invStd, eps, batch, channels, spatial, relu (1 for
 * the fused batch norm + ReLU); first = channels.
 */
const batchNormTrainForwardChunk: ChunkRunner = (kernels, p, chunk) => {
  kernels.batchNormTrainForward(
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
    p[A + 10] !== 0,
  );
};

/**
 * batchNormTrainBackward: its 11 arguments in order, then the fused forward's output (0 for plain
 * batch norm); first = channels.
 */
const batchNormTrainBackwardChunk: ChunkRunner = (kernels, p, chunk) => {
  kernels.batchNormTrainBackward(
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
    chunk.firstStart,
    chunk.firstEnd,
    p[A + 11]!,
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
    batchNormTrainForward: true,
    batchNormTrainBackward: true,
    channelAffine: true,
    channelSum: true,
  },
  runners: {
    batchNormTrainForward: batchNormTrainForwardChunk,
    batchNormTrainBackward: batchNormTrainBackwardChunk,
    channelAffine: channelAffineChunk,
    channelSum: channelSumChunk,
  },
} satisfies KernelFileJobs;
