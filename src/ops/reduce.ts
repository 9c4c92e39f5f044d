/** Reductions over axes: sum, mean, max. */
import { record } from '../autograd/graph.js';
import { getBackend } from '../backend/index.js';
import { normalizeAxis, sizeOf } from '../tensor/shape.js';
import { allocate, Tensor } from '../tensor/tensor.js';

export interface ReduceOptions {
  /** Axes to reduce (negative counts from the end); all axes when omitted. */
  axes?: number | readonly number[];
  /** Keep reduced axes as size 1 (PyTorch's keepdim). */
  keepDims?: boolean;
}

function reducedShapes(x: Tensor, options: ReduceOptions, what: string) {
  const requested = options.axes === undefined ? x.shape.map((_, i) => i) : [options.axes].flat();
  const axes = new Set(requested.map((axis) => normalizeAxis(axis, x.rank, what)));
  const keptShape = x.shape.map((d, i) => (axes.has(i) ? 1 : d));
  const outShape = options.keepDims ? keptShape : x.shape.filter((_, i) => !axes.has(i));
  return { keptShape, outShape };
}

/** Sum over axes. */
export function sum(x: Tensor, options: ReduceOptions = {}): Tensor {
  const { keptShape, outShape } = reducedShapes(x, options, 'sum');
  const out = allocate(x.dtype, sizeOf(keptShape));
  getBackend().reduceSum(x.data, x.shape, out, keptShape);
  return record(new Tensor(out, outShape), 'sum', [x], (g) => {
    const gradX = allocate(x.dtype, x.size);
    getBackend().binary('add', g, keptShape, allocate(x.dtype, 1), [], gradX, x.shape);
    return [gradX];
  });
}

/** Mean over axes. */
export function mean(x: Tensor, options: ReduceOptions = {}): Tensor {
  const { keptShape, outShape } = reducedShapes(x, options, 'mean');
  const count = x.size / sizeOf(keptShape);
  const out = allocate(x.dtype, sizeOf(keptShape));
  const backend = getBackend();
  backend.reduceSum(x.data, x.shape, out, keptShape);
  backend.scaleShift(out, 1 / count, 0, out);
  return record(new Tensor(out, outShape), 'mean', [x], (g) => {
    const gradX = allocate(x.dtype, x.size);
    backend.binary('add', g, keptShape, allocate(x.dtype, 1), [], gradX, x.shape);
    backend.scaleShift(gradX, 1 / count, 0, gradX);
    return [gradX];
  });
}

/** Maximum over axes; the gradient goes to the first maximal element. */
export function max(x: Tensor, options: ReduceOptions = {}): Tensor {
  const { keptShape, outShape } = reducedShapes(x, options, 'max');
  const out = allocate(x.dtype, sizeOf(keptShape));
  const argmax = new Int32Array(out.length);
  getBackend().reduceMax(x.data, x.shape, out, keptShape, argmax);
  return record(new Tensor(out, outShape), 'max', [x], (g) => {
    const gradX = allocate(x.dtype, x.size);
    for (let i = 0; i < argmax.length; i++) gradX[argmax[i]!]! += g[i]!;
    return [gradX];
  });
}

/** Index of the largest value along the last axis of a [rows, cols] tensor (no gradient). */
export function argmaxRows(x: Tensor): Int32Array {
  const cols = x.shape[x.rank - 1]!;
  const rows = x.size / cols;
  const result = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = -Infinity;
    for (let c = 0; c < cols; c++) {
      if (x.data[r * cols + c]! > best) {
        best = x.data[r * cols + c]!;
        result[r] = c;
      }
    }
  }
  return result;
}
