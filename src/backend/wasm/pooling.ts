/** The wasm backend's max and average pooling: planning onto assembly/pool.ts, by blocks of planes. */
import { writePoolWindowArguments, type PoolWindowArguments } from '../arguments.js';
import type { Pool2dGeometry } from '../types.js';
import { ARGUMENTS as A, type ChunkRunner, type KernelFileJobs } from './jobs.js';
import { apart, blockFor, chunkTarget, itemStages, requireLength, setArguments, setGrid } from './plan.js';
import { wasmRuntime } from './runtime.js';
import { jobParameters, runJob, wasmTuning } from './threads.js';

/** Pooling arguments after the three pointers: the geometry with planes first, then countIncludePad. */
function setPoolArguments(p: Float64Array, g: Pool2dGeometry, countIncludePad: boolean): void {
  p[A + 3] = g.batch * g.channels;
  p[writePoolWindowArguments(p, A + 4, g)] = +countIncludePad;
}

/** Splits the planes of a pooling job, by the larger of its input and output sizes. */
function setPlaneGrid(p: Float64Array, g: Pool2dGeometry): void {
  const planes = g.batch * g.channels;
  const planeSize = Math.max(g.inHeight * g.inWidth, g.outHeight * g.outWidth);
  const chunks = chunkTarget(planes * planeSize, wasmTuning.parallelElements);
  setGrid(p, planes, blockFor(planes, chunks));
}

/** out and argmax [N,C,oh,ow] from x [N,C,H,W]; argmax indexes within each (n, c) input plane. */
export function maxPool2dForward(
  x: Float32Array,
  out: Float32Array,
  argmax: Int32Array,
  g: Pool2dGeometry,
): void {
  x = apart(x, out, argmax);
  const inCount = g.batch * g.channels * g.inHeight * g.inWidth;
  const outCount = g.batch * g.channels * g.outHeight * g.outWidth;
  requireLength('x', x, inCount);
  requireLength('out', out, outCount);
  requireLength('argmax', argmax, outCount);
  const { arena } = wasmRuntime();
  arena.reset();
  const xAt = arena.place(x, inCount);
  const outAt = arena.place(out, outCount);
  const argmaxAt = arena.place(argmax, outCount);
  const p = jobParameters();
  setPlaneGrid(p, g);
  setArguments(p, xAt, outAt, argmaxAt);
  setPoolArguments(p, g, false);
  const planeIn = g.inHeight * g.inWidth;
  const planeOut = g.outHeight * g.outWidth;
  const stages = itemStages(
    p,
    [[x, xAt, planeIn]],
    [
      [out, outAt, planeOut],
      [argmax, argmaxAt, planeOut],
    ],
  );
  runJob(maxPool2dForwardChunk, stages);
}

/** gradX [N,C,H,W] (overwritten) from gradOut and argmax [N,C,oh,ow]. */
export function maxPool2dBackward(
  gradOut: Float32Array,
  argmax: Int32Array,
  gradX: Float32Array,
  g: Pool2dGeometry,
): void {
  gradOut = apart(gradOut, gradX);
  argmax = apart(argmax, gradX);
  const planes = g.batch * g.channels;
  const planeIn = g.inHeight * g.inWidth;
  const planeOut = g.outHeight * g.outWidth;
  requireLength('gradOut', gradOut, planes * planeOut);
  requireLength('argmax', argmax, planes * planeOut);
  requireLength('gradX', gradX, planes * planeIn);
  const { arena } = wasmRuntime();
  arena.reset();
  const gradOutAt = arena.place(gradOut, planes * planeOut);
  const argmaxAt = arena.place(argmax, planes * planeOut);
  const gradXAt = arena.place(gradX, planes * planeIn);
  const p = jobParameters();
  setPlaneGrid(p, g);
  setArguments(p, gradOutAt, argmaxAt, gradXAt, planeIn, planeOut);
  const stages = itemStages(
    p,
    [
      [gradOut, gradOutAt, planeOut],
      [argmax, argmaxAt, planeOut],
    ],
    [[gradX, gradXAt, planeIn]],
  );
  runJob(maxPool2dBackwardChunk, stages);
}

/** out [N,C,oh,ow] = window means of x [N,C,H,W]; see Backend.avgPool2dForward for the divisor. */
export function avgPool2dForward(
  x: Float32Array,
  out: Float32Array,
  g: Pool2dGeometry,
  countIncludePad: boolean,
): void {
  x = apart(x, out);
  const inCount = g.batch * g.channels * g.inHeight * g.inWidth;
  const outCount = g.batch * g.channels * g.outHeight * g.outWidth;
  requireLength('x', x, inCount);
  requireLength('out', out, outCount);
  const { arena } = wasmRuntime();
  arena.reset();
  const xAt = arena.place(x, inCount);
  const outAt = arena.place(out, outCount);
  const p = jobParameters();
  setPlaneGrid(p, g);
  setArguments(p, xAt, outAt, 0);
  setPoolArguments(p, g, countIncludePad);
  const planeIn = g.inHeight * g.inWidth;
  const planeOut = g.outHeight * g.outWidth;
  runJob(avgPool2dForwardChunk, itemStages(p, [[x, xAt, planeIn]], [[out, outAt, planeOut]]));
}

/** gradX [N,C,H,W] (overwritten) from gradOut [N,C,oh,ow]. */
export function avgPool2dBackward(
  gradOut: Float32Array,
  gradX: Float32Array,
  g: Pool2dGeometry,
  countIncludePad: boolean,
): void {
  gradOut = apart(gradOut, gradX);
  const inCount = g.batch * g.channels * g.inHeight * g.inWidth;
  const outCount = g.batch * g.channels * g.outHeight * g.outWidth;
  requireLength('gradOut', gradOut, outCount);
  requireLength('gradX', gradX, inCount);
  const { arena } = wasmRuntime();
  arena.reset();
  const gradOutAt = arena.place(gradOut, outCount);
  const gradXAt = arena.place(gradX, inCount);
  const p = jobParameters();
  setPlaneGrid(p, g);
  setArguments(p, gradOutAt, gradXAt, 0);
  setPoolArguments(p, g, countIncludePad);
  const planeIn = g.inHeight * g.inWidth;
  const planeOut = g.outHeight * g.outWidth;
  const stages = itemStages(p, [[gradOut, gradOutAt, planeOut]], [[gradX, gradXAt, planeIn]]);
  runJob(avgPool2dBackwardChunk, stages);
}

/** Geometry of a pooling window as the wasm kernels take it (planes = batch·channels). */
type PoolArguments = [planes: number, ...window: PoolWindowArguments];

declare module './runtime.js' {
  /** The exports of assembly/pool.ts (see there for the semantics). */
  interface KernelExports {
    maxPool2dForward(x: Pointer, out: Pointer, argmax: Pointer, ...geometry: PoolArguments): void;
    maxPool2dBackward(
      gradOut: Pointer,
      argmax: Pointer,
      gradX: Pointer,
      planes: number,
      planeIn: number,
      planeOut: number,
    ): void;
    avgPool2dForward(x: Pointer, out: Pointer, ...rest: [...PoolArguments, boolean]): void;
    avgPool2dBackward(gradOut: Pointer, gradX: Pointer, ...rest: [...PoolArguments, boolean]): void;
  }
}

/**
 * Pooling: arguments input, output, argmax (0 for average pooling), the pooling geometry (planes,
 * inHeight, inWidth, kernelHeight, kernelWidth, strideHeight, strideWidth, padTop, padLeft, outHeight,
 * outWidth) and countIncludePad; first = planes. A block of planes is a pooling problem of its own
 * at an offset.
 */
const PLANES = A + 3;

function planeInBytes(p: Float64Array): number {
  return p[PLANES + 1]! * p[PLANES + 2]! * 4;
}

function planeOutBytes(p: Float64Array): number {
  return p[PLANES + 9]! * p[PLANES + 10]! * 4;
}

const maxPool2dForwardChunk: ChunkRunner = (kernels, p, chunk) => {
  const inBytes = planeInBytes(p);
  const outBytes = planeOutBytes(p);
  kernels.maxPool2dForward(
    p[A]! + chunk.firstStart * inBytes,
    p[A + 1]! + chunk.firstStart * outBytes,
    p[A + 2]! + chunk.firstStart * outBytes,
    chunk.firstEnd - chunk.firstStart,
    p[PLANES + 1]!,
    p[PLANES + 2]!,
    p[PLANES + 3]!,
    p[PLANES + 4]!,
    p[PLANES + 5]!,
    p[PLANES + 6]!,
    p[PLANES + 7]!,
    p[PLANES + 8]!,
    p[PLANES + 9]!,
    p[PLANES + 10]!,
  );
};

/** Average pooling, forward (input x, output out) or backward (input gradOut, output gradX). */
function avgPoolChunk(backward: boolean): ChunkRunner {
  return (kernels, p, chunk) => {
    const inBytes = planeInBytes(p);
    const outBytes = planeOutBytes(p);
    const kernel = backward ? kernels.avgPool2dBackward : kernels.avgPool2dForward;
    kernel(
      p[A]! + chunk.firstStart * (backward ? outBytes : inBytes),
      p[A + 1]! + chunk.firstStart * (backward ? inBytes : outBytes),
      chunk.firstEnd - chunk.firstStart,
      p[PLANES + 1]!,
      p[PLANES + 2]!,
      p[PLANES + 3]!,
      p[PLANES + 4]!,
      p[PLANES + 5]!,
      p[PLANES + 6]!,
      p[PLANES + 7]!,
      p[PLANES + 8]!,
      p[PLANES + 9]!,
      p[PLANES + 10]!,
      p[PLANES + 11] !== 0,
    );
  };
}
const avgPool2dForwardChunk = avgPoolChunk(false);
const avgPool2dBackwardChunk = avgPoolChunk(true);

/** maxPool2dBackward: arguments gradOut, argmax, gradX, planeIn, planeOut; first = planes. */
const maxPool2dBackwardChunk: ChunkRunner = (kernels, p, chunk) => {
  const planeIn = p[A + 3]!;
  const planeOut = p[A + 4]!;
  kernels.maxPool2dBackward(
    p[A]! + chunk.firstStart * planeOut * 4,
    p[A + 1]! + chunk.firstStart * planeOut * 4,
    p[A + 2]! + chunk.firstStart * planeIn * 4,
    chunk.firstEnd - chunk.firstStart,
    planeIn,
    planeOut,
  );
};

/** This file's part of the job table (./index.ts). */
export const poolingJobs = {
  exports: {
    maxPool2dForward: true,
    maxPool2dBackward: true,
    avgPool2dForward: true,
    avgPool2dBackward: true,
  },
  runners: {
    maxPool2dForward: maxPool2dForwardChunk,
    maxPool2dBackward: maxPool2dBackwardChunk,
    avgPool2dForward: avgPool2dForwardChunk,
    avgPool2dBackward: avgPool2dBackwardChunk,
  },
} satisfies KernelFileJobs;
