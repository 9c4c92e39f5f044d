/**
 * The wasm backend's 2-D convolutions: planning of Backend.conv2dForward, conv2dBackwardInput and
 * conv2dBackwardWeight onto the im2col + GEMM kernels of assembly/conv.ts.
 */
import { writeConvArguments, type ConvArguments } from '../arguments.js';
import type { Conv2dGeometry } from '../types.js';
import { ARGUMENTS as A, scratchOf, Slot, type ChunkRunner, type KernelFileJobs } from './jobs.js';
import {
  apart,
  blockFor,
  chunkTarget,
  itemStages,
  requireLength,
  reserveScratch,
  roundUp,
  setArguments,
  setGrid,
} from './plan.js';
import { wasmRuntime } from './runtime.js';
import { jobParameters, runJob, wasmTuning } from './threads.js';
import {
  usesWinograd,
  usesWinogradWeightGradient,
  winogradBlockImages,
  winogradConv2dBackwardInput,
  winogradConv2dForward,
  winogradJobs,
  winogradWeightGradientJob,
} from './winograd.js';

/** The geometry, after the kernel's three pointers, in the order the conv kernels take it. */
function convGeometryArguments(p: Float64Array, g: Conv2dGeometry): void {
  writeConvArguments(p, A + 3, g);
}

/** Element counts of a convolution's x [N,C,H,W], weight [O,C,kh,kw] and out [N,O,oh,ow]. */
function convSizes(g: Conv2dGeometry): { x: number; weight: number; out: number } {
  return {
    x: g.batch * g.inChannels * g.inHeight * g.inWidth,
    weight: g.outChannels * g.inChannels * g.kernelHeight * g.kernelWidth,
    out: g.batch * g.outChannels * g.outHeight * g.outWidth,
  };
}

/** im2col bytes for `channels` input channels of the convolution (0 for the 1×1 shortcut). */
function columnBytes(g: Conv2dGeometry, channels: number): number {
  const { kernels } = wasmRuntime();
  return kernels.convColumnBytes(
    channels,
    g.kernelHeight,
    g.kernelWidth,
    g.strideHeight,
    g.strideWidth,
    g.padTop,
    g.padLeft,
    g.outHeight,
    g.outWidth,
  );
}

/**
 * Per-thread scratch of a convolution job: im2col columns for `channels` input channels, then the
 * workspace of an M×N×K GEMM.
 */
function reserveConvScratch(
  p: Float64Array,
  g: Conv2dGeometry,
  channels: number,
  m: number,
  n: number,
  k: number,
): void {
  const { kernels } = wasmRuntime();
  const cols = roundUp(columnBytes(g, channels), 64);
  p[Slot.workOffset] = cols;
  reserveScratch(p, cols + kernels.gemmWorkspaceBytes(m, n, k));
}

/** Blocks of `count` channels, in multiples of `multiple`, that bring a job of `otherBlocks` blocks to `chunks`. */
function channelBlock(count: number, otherBlocks: number, chunks: number, multiple: number): number {
  if (otherBlocks >= chunks) return count;
  return Math.min(blockFor(count, Math.ceil(chunks / otherBlocks), multiple), count);
}

/**
 * out [N,O,oh,ow] = conv(x [N,C,H,W], weight [O,C,kh,kw]). Chunks are images (each does its own
 * im2col); with fewer images than chunks wanted, blocks of output channels too.
 */
export function conv2dForward(
  x: Float32Array,
  weight: Float32Array,
  out: Float32Array,
  g: Conv2dGeometry,
): void {
  x = apart(x, out);
  weight = apart(weight, out);
  const sizes = convSizes(g);
  requireLength('x', x, sizes.x);
  requireLength('weight', weight, sizes.weight);
  requireLength('out', out, sizes.out);
  if (usesWinograd(g)) {
    winogradConv2dForward(x, weight, out, g);
    return;
  }
  const { kernels, arena } = wasmRuntime();
  arena.reset();
  const xAt = arena.place(x, sizes.x);
  const weightAt = arena.copyIn(weight, sizes.weight);
  const outAt = arena.place(out, sizes.out);
  const depth = g.inChannels * g.kernelHeight * g.kernelWidth;
  const pixels = g.outHeight * g.outWidth;
  const chunks = chunkTarget(sizes.out * depth, wasmTuning.parallelMultiplyAdds);
  const p = jobParameters();
  // Twice the usual chunks: an image is a small, self-contained task, and finer chunks even out the end.
  const images = chunks === 1 ? g.batch : blockFor(g.batch, 2 * chunks);
  // Channel blocks are whole register tiles (the block is the GEMM's rows).
  const tileRows = kernels.gemmTileRows();
  const outChannels = channelBlock(g.outChannels, Math.ceil(g.batch / images), chunks, tileRows);
  setGrid(p, g.batch, images, g.outChannels, outChannels);
  reserveConvScratch(p, g, g.inChannels, outChannels, pixels, depth);
  setArguments(p, xAt, weightAt, outAt);
  convGeometryArguments(p, g);
  const inImage = g.inChannels * g.inHeight * g.inWidth;
  runJob(conv2dForwardChunk, itemStages(p, [[x, xAt, inImage]], [[out, outAt, g.outChannels * pixels]]));
}

/**
 * gradX [N,C,H,W] = ∂L/∂x from gradOut [N,O,oh,ow] and weight [O,C,kh,kw]; overwritten. Chunks are
 * images; with fewer images than chunks wanted, blocks of input channels too (col2im of one channel
 * touches only that channel's plane).
 */
export function conv2dBackwardInput(
  gradOut: Float32Array,
  weight: Float32Array,
  gradX: Float32Array,
  g: Conv2dGeometry,
): void {
  gradOut = apart(gradOut, gradX);
  weight = apart(weight, gradX);
  const sizes = convSizes(g);
  requireLength('gradOut', gradOut, sizes.out);
  requireLength('weight', weight, sizes.weight);
  requireLength('gradX', gradX, sizes.x);
  if (usesWinograd(g)) {
    winogradConv2dBackwardInput(gradOut, weight, gradX, g);
    return;
  }
  const { arena } = wasmRuntime();
  arena.reset();
  const gradOutAt = arena.place(gradOut, sizes.out);
  const weightAt = arena.copyIn(weight, sizes.weight);
  const gradXAt = arena.place(gradX, sizes.x);
  const taps = g.kernelHeight * g.kernelWidth;
  const pixels = g.outHeight * g.outWidth;
  const chunks = chunkTarget(sizes.out * g.inChannels * taps, wasmTuning.parallelMultiplyAdds);
  const p = jobParameters();
  // Twice the usual chunks: an image is a small, self-contained task, and finer chunks even out the end.
  const images = chunks === 1 ? g.batch : blockFor(g.batch, 2 * chunks);
  const channels = channelBlock(g.inChannels, Math.ceil(g.batch / images), chunks, 1);
  setGrid(p, g.batch, images, g.inChannels, channels);
  reserveConvScratch(p, g, channels, channels * taps, pixels, g.outChannels);
  setArguments(p, gradOutAt, weightAt, gradXAt);
  convGeometryArguments(p, g);
  const inImage = g.inChannels * g.inHeight * g.inWidth;
  const stages = itemStages(p, [[gradOut, gradOutAt, g.outChannels * pixels]], [[gradX, gradXAt, inImage]]);
  runJob(conv2dBackwardInputChunk, stages);
}

/** Most image blocks the weight gradient is summed in, and the most memory their partial sums may take. */
const WEIGHT_GRADIENT_BLOCKS = 8;
const PARTIAL_SUM_BYTES = 64 * 2 ** 20;

/**
 * gradWeight [O,C,kh,kw] = ∂L/∂weight from x [N,C,H,W] and gradOut [N,O,oh,ow]; overwritten. The
 * batch is cut into at most 8 blocks of images, fixed by the batch size alone; each block sums its
 * images into its own partial gradient (chunks: image blocks, and blocks of output channels when there
 * are few images), and the partials are added in block order. The result is therefore the same for
 * any thread count, and every chunk runs full-width GEMMs with no im2col repeated. 3×3 stride-1 pad-1
 * convolutions with enough channels (usesWinogradWeightGradient) compute each block's partial with
 * Winograd instead (assembly/winograd.ts, winogradWeightGradient).
 */
export function conv2dBackwardWeight(
  x: Float32Array,
  gradOut: Float32Array,
  gradWeight: Float32Array,
  g: Conv2dGeometry,
): void {
  x = apart(x, gradWeight);
  gradOut = apart(gradOut, gradWeight);
  const sizes = convSizes(g);
  requireLength('x', x, sizes.x);
  requireLength('gradOut', gradOut, sizes.out);
  requireLength('gradWeight', gradWeight, sizes.weight);
  if (g.batch === 0) {
    // An empty sum: there is no image block to write the zeros.
    gradWeight.fill(0, 0, sizes.weight);
    return;
  }
  const { kernels, arena } = wasmRuntime();
  arena.reset();
  const xAt = arena.place(x, sizes.x);
  const gradOutAt = arena.place(gradOut, sizes.out);
  const gradWeightAt = arena.place(gradWeight, sizes.weight);
  const weightBytes = roundUp(sizes.weight * 4, 64);
  const blockCount = Math.max(
    1,
    Math.min(g.batch, WEIGHT_GRADIENT_BLOCKS, Math.floor(PARTIAL_SUM_BYTES / weightBytes)),
  );
  const winograd = usesWinogradWeightGradient(g);
  let images = Math.max(1, Math.ceil(g.batch / blockCount));
  if (winograd) images = winogradBlockImages(g, images);
  const blocks = Math.max(1, Math.ceil(g.batch / images));
  const partialsAt = blocks > 1 ? arena.allocate(blocks * weightBytes) : gradWeightAt;
  const p = jobParameters();
  let runner = conv2dBackwardWeightChunk;
  if (winograd) {
    runner = winogradJobs.runners.winogradWeightGradient;
    winogradWeightGradientJob(p, g, images, xAt, gradOutAt, partialsAt);
  } else {
    const depth = g.inChannels * g.kernelHeight * g.kernelWidth;
    const chunks = chunkTarget(sizes.out * depth, wasmTuning.parallelMultiplyAdds);
    const outChannels = channelBlock(g.outChannels, blocks, chunks, kernels.gemmTileRows());
    setGrid(p, g.batch, images, g.outChannels, outChannels);
    reserveConvScratch(p, g, g.inChannels, outChannels, depth, g.outHeight * g.outWidth);
    setArguments(p, xAt, gradOutAt, partialsAt);
    convGeometryArguments(p, g);
  }
  p[Slot.blockStride] = weightBytes;
  const inImage = g.inChannels * g.inHeight * g.inWidth;
  const outImage = g.outChannels * g.outHeight * g.outWidth;
  runJob(
    runner,
    itemStages(
      p,
      [
        [x, xAt, inImage],
        [gradOut, gradOutAt, outImage],
      ],
      [],
    ),
  );
  if (blocks > 1) kernels.sumBlocks(partialsAt, blocks, weightBytes / 4, gradWeightAt, 0, sizes.weight);
  arena.copyOut(gradWeightAt, gradWeight, sizes.weight);
}

/** The block of a convolution's output one call computes: two [start, end) ranges. */
type ConvRanges = [firstStart: number, firstEnd: number, secondStart: number, secondEnd: number];

declare module './runtime.js' {
  /** The exports of assembly/conv.ts, and sumBlocks of assembly/floats.ts (see there for the semantics). */
  interface KernelExports {
    convColumnBytes(
      inChannels: number,
      kernelHeight: number,
      kernelWidth: number,
      strideHeight: number,
      strideWidth: number,
      padTop: number,
      padLeft: number,
      outHeight: number,
      outWidth: number,
    ): number;
    conv2dForward(
      x: Pointer,
      weight: Pointer,
      out: Pointer,
      ...rest: [...ConvArguments, ...ConvRanges, Pointer, Pointer]
    ): void;
    conv2dBackwardInput(
      gradOut: Pointer,
      weight: Pointer,
      gradX: Pointer,
      ...rest: [...ConvArguments, ...ConvRanges, Pointer, Pointer]
    ): void;
    conv2dBackwardWeight(
      x: Pointer,
      gradOut: Pointer,
      gradWeight: Pointer,
      ...rest: [...ConvArguments, ...ConvRanges, Pointer, Pointer]
    ): void;
    sumBlocks(blocks: Pointer, count: number, stride: number, out: Pointer, start: number, end: number): void;
  }
}

/**
 * Convolutions: the 18 arguments, then the block's two ranges, then this thread's columns and
 * workspace. The third pointer (the output) moves by Slot.blockStride per first-axis block, which
 * gives each image block of the weight gradient its own partial sum.
 */
function convChunk(kernel: 'conv2dForward' | 'conv2dBackwardInput' | 'conv2dBackwardWeight'): ChunkRunner {
  return (kernels, p, chunk, thread) => {
    const cols = scratchOf(p, thread);
    kernels[kernel](
      p[A]!,
      p[A + 1]!,
      p[A + 2]! + chunk.firstIndex * p[Slot.blockStride]!,
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
      p[A + 14]!,
      p[A + 15]!,
      p[A + 16]!,
      p[A + 17]!,
      chunk.firstStart,
      chunk.firstEnd,
      chunk.secondStart,
      chunk.secondEnd,
      cols,
      cols + p[Slot.workOffset]!,
    );
  };
}
const conv2dForwardChunk = convChunk('conv2dForward');
const conv2dBackwardInputChunk = convChunk('conv2dBackwardInput');
const conv2dBackwardWeightChunk = convChunk('conv2dBackwardWeight');

/** This file's part of the job table (./index.ts). */
export const convolutionJobs = {
  exports: {
    convColumnBytes: true,
    conv2dForward: true,
    conv2dBackwardInput: true,
    conv2dBackwardWeight: true,
    sumBlocks: true,
  },
  runners: {
    conv2dForward: conv2dForwardChunk,
    conv2dBackwardInput: conv2dBackwardInputChunk,
    conv2dBackwardWeight: conv2dBackwardWeightChunk,
  },
} satisfies KernelFileJobs;
