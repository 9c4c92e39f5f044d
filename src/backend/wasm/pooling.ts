/** The wasm backend's max and average pooling: planning onto assembly/pool.ts, by blocks of planes. */
import { writePoolWindowArguments } from '../arguments.js';
import type { Pool2dGeometry } from '../types.js';
import { ARGUMENTS as A, JobKind } from './jobs.js';
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
  runJob(JobKind.maxPool2dForward, stages);
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
  runJob(JobKind.maxPool2dBackward, stages);
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
  runJob(JobKind.avgPool2dForward, itemStages(p, [[x, xAt, planeIn]], [[out, outAt, planeOut]]));
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
  runJob(JobKind.avgPool2dBackward, stages);
}
