/** The wasm backend's max and average pooling: planning onto assembly/pool.ts, by blocks of planes. */
import { referenceBackend } from '../reference/index.js';
import type { Data, Pool2dGeometry } from '../types.js';
import { ARGUMENTS as A, JobKind } from './jobs.js';
import {
  apart,
  blockFor,
  chunkTarget,
  isFloat32,
  itemStages,
  requireLength,
  setArguments,
  setGrid,
} from './plan.js';
import { wasmRuntime } from './runtime.js';
import { jobParameters, runJob, wasmTuning } from './threads.js';

/** Pooling arguments after the three pointers: the geometry with planes first, then countIncludePad. */
function setPoolArguments(p: Float64Array, g: Pool2dGeometry, countIncludePad: boolean): void {
  const values = [
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
    +countIncludePad,
  ];
  for (let i = 0; i < values.length; i++) p[A + 3 + i] = values[i]!;
}

/** Splits the planes of a pooling job, by the larger of its input and output sizes. */
function setPlaneGrid(p: Float64Array, g: Pool2dGeometry): void {
  const planes = g.batch * g.channels;
  const planeSize = Math.max(g.inHeight * g.inWidth, g.outHeight * g.outWidth);
  const chunks = chunkTarget(planes * planeSize, wasmTuning.parallelElements);
  setGrid(p, planes, blockFor(planes, chunks));
}

/** out and argmax [N,C,oh,ow] from x [N,C,H,W]; argmax indexes within each (n, c) input plane. */
export function maxPool2dForward(x: Data, out: Data, argmax: Int32Array, g: Pool2dGeometry): void {
  if (!isFloat32(x) || !isFloat32(out)) {
    referenceBackend.maxPool2dForward(x, out, argmax, g);
    return;
  }
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
  runJob(JobKind.maxPool2dForward, stages);
}

/** gradX [N,C,H,W] (overwritten) from gradOut and argmax [N,C,oh,ow]. */
export function maxPool2dBackward(gradOut: Data, argmax: Int32Array, gradX: Data, g: Pool2dGeometry): void {
  if (!isFloat32(gradOut) || !isFloat32(gradX)) {
    referenceBackend.maxPool2dBackward(gradOut, argmax, gradX, g);
    return;
  }
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
  runJob(JobKind.maxPool2dBackward, stages);
}

/** out [N,C,oh,ow] = window means of x [N,C,H,W]; see Backend.avgPool2dForward for the divisor. */
export function avgPool2dForward(x: Data, out: Data, g: Pool2dGeometry, countIncludePad: boolean): void {
  if (!isFloat32(x) || !isFloat32(out)) {
    referenceBackend.avgPool2dForward(x, out, g, countIncludePad);
    return;
  }
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
  runJob(JobKind.avgPool2dForward, itemStages(p, [[x, xAt, planeIn]], [[out, outAt, planeOut]]));
}

/** gradX [N,C,H,W] (overwritten) from gradOut [N,C,oh,ow]. */
export function avgPool2dBackward(
  gradOut: Data,
  gradX: Data,
  g: Pool2dGeometry,
  countIncludePad: boolean,
): void {
  if (!isFloat32(gradOut) || !isFloat32(gradX)) {
    referenceBackend.avgPool2dBackward(gradOut, gradX, g, countIncludePad);
    return;
  }
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
  runJob(JobKind.avgPool2dBackward, stages);
}
