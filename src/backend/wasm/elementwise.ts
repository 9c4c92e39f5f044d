/**
 * The wasm backend's elementwise kernels: ReLU and leaky ReLU, binary arithmetic where one operand is
 * full and the other the same shape or a broadcast vector, and sums that keep one run of axes (bias
 * gradients). Other kinds and patterns are DECLINED, and the reference kernel runs them.
 */
import { DECLINED } from '../kernels.js';
import type { ActivationKind, BinaryKind } from '../types.js';
import { ARGUMENTS as A, type ChunkRunner, type KernelFileJobs } from './jobs.js';
import { channelSum } from './normalization.js';
import {
  apart,
  blockFor,
  chunkTarget,
  itemStages,
  LINE_FLOATS,
  requireLength,
  setArguments,
  setGrid,
} from './plan.js';
import { wasmRuntime } from './runtime.js';
import { jobParameters, runJob, wasmTuning } from './threads.js';

/** Splits `count` elements into cache-line chunks. */
function setElementGrid(p: Float64Array, count: number): void {
  setGrid(p, count, blockFor(count, chunkTarget(count, wasmTuning.parallelElements), LINE_FLOATS));
}

/** out = f(x) for ReLU and leaky ReLU; other kinds are declined (the reference backend runs them). */
export function activationForward(
  kind: ActivationKind,
  x: Float32Array,
  out: Float32Array,
  alpha: number,
): typeof DECLINED | void {
  if (kind !== 'relu' && kind !== 'leaky_relu') return DECLINED;
  const count = x.length;
  requireLength('out', out, count);
  const { arena } = wasmRuntime();
  arena.reset();
  const xAt = arena.place(x, count);
  const outAt = arena.place(out, count);
  const p = jobParameters();
  setElementGrid(p, count);
  setArguments(p, xAt, outAt, alpha);
  const stages = itemStages(p, [[x, xAt, 1]], [[out, outAt, 1]]);
  runJob(kind === 'relu' ? reluForwardChunk : leakyReluForwardChunk, stages);
}

/** gradX = gradOut·f'(x) for ReLU and leaky ReLU; other kinds are declined. */
export function activationBackward(
  kind: ActivationKind,
  x: Float32Array,
  _y: Float32Array,
  gradOut: Float32Array,
  gradX: Float32Array,
  alpha: number,
): typeof DECLINED | void {
  if (kind !== 'relu' && kind !== 'leaky_relu') return DECLINED;
  const count = x.length;
  requireLength('gradOut', gradOut, count);
  requireLength('gradX', gradX, count);
  const { arena } = wasmRuntime();
  arena.reset();
  const xAt = arena.place(x, count);
  const gradOutAt = arena.place(gradOut, count);
  const gradXAt = arena.place(gradX, count);
  const p = jobParameters();
  setElementGrid(p, count);
  setArguments(p, xAt, gradOutAt, gradXAt, alpha);
  const stages = itemStages(
    p,
    [
      [x, xAt, 1],
      [gradOut, gradOutAt, 1],
    ],
    [[gradX, gradXAt, 1]],
  );
  runJob(kind === 'relu' ? reluBackwardChunk : leakyReluBackwardChunk, stages);
}

/** Operation codes of assembly/elementwise.ts. */
const BINARY_CODES: Record<BinaryKind, number> = {
  add: 0,
  sub: 1,
  mul: 2,
  div: 3,
  maximum: 4,
  minimum: 5,
};

/** Product of shape[from, to). */
function product(shape: readonly number[], from: number, to: number): number {
  let size = 1;
  for (let axis = from; axis < to; axis++) size *= shape[axis]!;
  return size;
}

/**
 * Where the axes marked `inRun` form one contiguous run, ignoring axes of size 1 (which take no
 * room), returns the shape read as [outer, run, inner]; null when the marked axes are split apart.
 */
function contiguousRun(
  shape: readonly number[],
  inRun: (axis: number) => boolean,
): [outer: number, run: number, inner: number] | null {
  let first = -1;
  let last = -1;
  for (let axis = 0; axis < shape.length; axis++) {
    if (shape[axis] === 1 || !inRun(axis)) continue;
    // A gap is an axis of size > 1 outside the run, between two axes inside it.
    if (last >= 0 && product(shape, last + 1, axis) !== 1) return null;
    if (first < 0) first = axis;
    last = axis;
  }
  if (first < 0) return [product(shape, 0, shape.length), 1, 1];
  return [product(shape, 0, first), product(shape, first, last + 1), product(shape, last + 1, shape.length)];
}

/** The binary kinds whose float32 result is their float64 result rounded once (see binary). */
const SCALAR_ARITHMETIC: Partial<Record<BinaryKind, (x: number, y: number) => number>> = {
  add: (x, y) => Math.fround(x + y),
  sub: (x, y) => Math.fround(x - y),
  mul: (x, y) => Math.fround(x * y),
  div: (x, y) => Math.fround(x / y),
};

/**
 * An operand shape against the broadcast shape: 'full' when it has every element of it; [outer,
 * middle, inner] when its axes of size > 1 are one contiguous run of the broadcast shape's, so that
 * it reads as a [middle] vector repeated over outer and inner (a bias, a per-channel factor, a
 * scalar); null for any other pattern.
 */
function broadcastLayout(
  shape: readonly number[],
  outShape: readonly number[],
): 'full' | [outer: number, middle: number, inner: number] | null {
  const offset = outShape.length - shape.length;
  const layout = contiguousRun(outShape, (axis) => axis >= offset && shape[axis - offset] !== 1);
  if (layout === null) return null;
  return layout[0] === 1 && layout[2] === 1 ? 'full' : layout;
}

/**
 * out = a ∘ b with broadcasting. Same-shape operands, and one full operand with the other a bias,
 * per-channel vector or scalar, run in wasm; other patterns are declined.
 */
export function binary(
  kind: BinaryKind,
  a: Float32Array,
  aShape: readonly number[],
  b: Float32Array,
  bShape: readonly number[],
  out: Float32Array,
  outShape: readonly number[],
): typeof DECLINED | void {
  const aLayout = broadcastLayout(aShape, outShape);
  const bLayout = broadcastLayout(bShape, outShape);
  if (aLayout === null || bLayout === null) return DECLINED;
  const count = product(outShape, 0, outShape.length);
  requireLength('out', out, count);
  const { arena } = wasmRuntime();
  arena.reset();
  const p = jobParameters();
  if (aLayout !== 'full' && bLayout !== 'full') {
    // Both operands broadcast (the gradient of a global average pool: [N, C, 1, 1] / scalar spread
    // over [N, C, H, W]). The reference's general broadcast walks index tuples, about 100 ns per
    // element; spreading one operand into wasm memory with fills and running the vector kernel on it
    // costs a few ns per element and gives the same values.
    const expandLeft = aLayout[1] >= bLayout[1];
    const [source, layout] = expandLeft ? [a, aLayout] : [b, bLayout];
    const [vector, vectorLayout] = expandLeft ? [b, bLayout] : [a, aLayout];
    const [outer, middle, inner] = layout;
    requireLength(expandLeft ? 'a' : 'b', source, middle);
    requireLength(expandLeft ? 'b' : 'a', vector, vectorLayout[1]);
    const arithmetic = SCALAR_ARITHMETIC[kind];
    if (vector.length === 1 && arithmetic !== undefined) {
      // The other operand is a scalar: each of the `middle` results is computed once and filled into
      // its run of out, with no spread copy and no job (0.9 ms → under 0.1 ms for the seed CNN's
      // [64, 64, 1, 1] ÷ 49 over [64, 64, 7, 7]). A float32 +, −, × or ÷ computed in float64 and
      // rounded once is the float32 operation's result, so the bits are the kernel's.
      const values = apart(source, out);
      const scalar = vector[0]!;
      for (let o = 0, at = 0; o < outer; o++) {
        for (let m = 0; m < middle; m++, at += inner) {
          const value = values[m]!;
          out.fill(expandLeft ? arithmetic(value, scalar) : arithmetic(scalar, value), at, at + inner);
        }
      }
      return;
    }
    const fullAt = arena.allocate(count * 4);
    const vectorAt = arena.copyIn(apart(vector, out), vectorLayout[1]);
    const outAt = arena.place(out, count);
    const spread = arena.view(fullAt, count);
    for (let o = 0, at = 0; o < outer; o++) {
      for (let m = 0; m < middle; m++, at += inner) spread.fill(source[m]!, at, at + inner);
    }
    runBroadcast(p, kind, fullAt, vectorAt, outAt, expandLeft, vectorLayout, count);
    runJob(binaryBroadcastChunk, itemStages(p, [], [[out, outAt, vectorLayout[2]]]));
    return;
  }
  if (aLayout === 'full' && bLayout === 'full') {
    requireLength('a', a, count);
    requireLength('b', b, count);
    const aAt = arena.place(a, count);
    const bAt = arena.place(b, count);
    const outAt = arena.place(out, count);
    setElementGrid(p, count);
    setArguments(p, BINARY_CODES[kind], aAt, bAt, outAt);
    const stages = itemStages(
      p,
      [
        [a, aAt, 1],
        [b, bAt, 1],
      ],
      [[out, outAt, 1]],
    );
    runJob(binarySameShapeChunk, stages);
    return;
  }
  const fullIsLeft = aLayout === 'full';
  const full = fullIsLeft ? a : b;
  const vector = fullIsLeft ? b : a;
  const layout = fullIsLeft ? bLayout : aLayout;
  if (layout === 'full') throw new Error('unreachable: both operands full is handled above');
  const [, middle, inner] = layout;
  requireLength(fullIsLeft ? 'a' : 'b', full, count);
  requireLength(fullIsLeft ? 'b' : 'a', vector, middle);
  const fullAt = arena.place(full, count);
  const vectorAt = arena.copyIn(apart(vector, out), middle);
  const outAt = arena.place(out, count);
  runBroadcast(p, kind, fullAt, vectorAt, outAt, fullIsLeft, layout, count);
  runJob(binaryBroadcastChunk, itemStages(p, [[full, fullAt, inner]], [[out, outAt, inner]]));
}

/**
 * The grid and arguments of a binaryBroadcast job: out = full ∘ vector (or vector ∘ full) with the
 * vector laid out as [outer, middle, inner] against out's `count` elements.
 */
function runBroadcast(
  p: Float64Array,
  kind: BinaryKind,
  fullAt: number,
  vectorAt: number,
  outAt: number,
  fullIsLeft: boolean,
  [outer, middle, inner]: readonly [number, number, number],
  count: number,
): void {
  const rows = outer * middle;
  // Rows of `inner` elements; when rows are short, blocks of rows keep chunks to whole cache lines.
  setGrid(
    p,
    rows,
    blockFor(rows, chunkTarget(count, wasmTuning.parallelElements), inner === 1 ? LINE_FLOATS : 1),
  );
  setArguments(p, BINARY_CODES[kind], fullAt, vectorAt, outAt, +fullIsLeft, middle, inner);
}

/**
 * Sum x down to outShape. Where the kept axes are one contiguous run (x read as [outer, kept, inner]:
 * bias gradients [N, F] → [1, F] and [N, C, H, W] → [1, C, 1, 1], or a full sum) this is channelSum;
 * other patterns are declined.
 */
export function reduceSum(
  x: Float32Array,
  xShape: readonly number[],
  out: Float32Array,
  outShape: readonly number[],
): typeof DECLINED | void {
  const layout = keptRun(xShape, outShape);
  if (layout === null) return DECLINED;
  const [outer, kept, inner] = layout;
  channelSum(x, out, { batch: outer, channels: kept, spatial: inner });
}

/** [outer, kept, inner] when outShape keeps one contiguous run of xShape's axes and reduces the rest. */
function keptRun(
  xShape: readonly number[],
  outShape: readonly number[],
): [outer: number, kept: number, inner: number] | null {
  if (xShape.length !== outShape.length) return null;
  for (let axis = 0; axis < xShape.length; axis++) {
    if (outShape[axis] !== 1 && outShape[axis] !== xShape[axis]) return null;
  }
  return contiguousRun(xShape, (axis) => outShape[axis] !== 1);
}

declare module './runtime.js' {
  /** The exports of assembly/elementwise.ts (see there for the semantics). */
  interface KernelExports {
    reluForward(x: Pointer, out: Pointer, start: number, end: number): void;
    reluBackward(x: Pointer, gradOut: Pointer, gradX: Pointer, start: number, end: number): void;
    leakyReluForward(x: Pointer, out: Pointer, slope: number, start: number, end: number): void;
    leakyReluBackward(
      x: Pointer,
      gradOut: Pointer,
      gradX: Pointer,
      slope: number,
      start: number,
      end: number,
    ): void;
    binaryBroadcast(
      kind: number,
      full: Pointer,
      broadcast: Pointer,
      out: Pointer,
      fullIsLeft: boolean,
      middle: number,
      inner: number,
      rowStart: number,
      rowEnd: number,
    ): void;
    binarySameShape(kind: number, a: Pointer, b: Pointer, out: Pointer, start: number, end: number): void;
  }
}

/** Unary and same-shape kernels over an element range: pointers, then (for leaky ReLU) the slope. */
const reluForwardChunk: ChunkRunner = (kernels, p, chunk) => {
  kernels.reluForward(p[A]!, p[A + 1]!, chunk.firstStart, chunk.firstEnd);
};
const reluBackwardChunk: ChunkRunner = (kernels, p, chunk) => {
  kernels.reluBackward(p[A]!, p[A + 1]!, p[A + 2]!, chunk.firstStart, chunk.firstEnd);
};
const leakyReluForwardChunk: ChunkRunner = (kernels, p, chunk) => {
  kernels.leakyReluForward(p[A]!, p[A + 1]!, p[A + 2]!, chunk.firstStart, chunk.firstEnd);
};
const leakyReluBackwardChunk: ChunkRunner = (kernels, p, chunk) => {
  kernels.leakyReluBackward(p[A]!, p[A + 1]!, p[A + 2]!, p[A + 3]!, chunk.firstStart, chunk.firstEnd);
};

/** binaryBroadcast: kind, full, broadcast, out, fullIsLeft, middle, inner; first = rows. */
const binaryBroadcastChunk: ChunkRunner = (kernels, p, chunk) => {
  kernels.binaryBroadcast(
    p[A]!,
    p[A + 1]!,
    p[A + 2]!,
    p[A + 3]!,
    p[A + 4] !== 0,
    p[A + 5]!,
    p[A + 6]!,
    chunk.firstStart,
    chunk.firstEnd,
  );
};

/** binarySameShape: kind, a, b, out; first = elements. */
const binarySameShapeChunk: ChunkRunner = (kernels, p, chunk) => {
  kernels.binarySameShape(p[A]!, p[A + 1]!, p[A + 2]!, p[A + 3]!, chunk.firstStart, chunk.firstEnd);
};

/** This file's part of the job table (./index.ts). */
export const elementwiseJobs = {
  exports: {
    reluForward: true,
    reluBackward: true,
    leakyReluForward: true,
    leakyReluBackward: true,
    binaryBroadcast: true,
    binarySameShape: true,
  },
  runners: {
    reluForward: reluForwardChunk,
    reluBackward: reluBackwardChunk,
    leakyReluForward: leakyReluForwardChunk,
    leakyReluBackward: leakyReluBackwardChunk,
    binaryBroadcast: binaryBroadcastChunk,
    binarySameShape: binarySameShapeChunk,
  },
} satisfies KernelFileJobs;
