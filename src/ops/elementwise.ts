/**
 * Elementwise ops: arithmetic with NumPy broadcasting, scalar arithmetic and the activations.
 * Each op is a forward call into the backend plus its backward rule.
 */
import { record } from '../autograd/graph.js';
import { getBackend } from '../backend/index.js';
import type { ActivationKind, BinaryKind, Data } from '../backend/types.js';
import { broadcastShapes, padShape, type Shape, shapesEqual, sizeOf } from '../tensor/shape.js';
import { allocate, allocateUninitialized, Tensor } from '../tensor/tensor.js';

/** Throws when two tensors of different dtypes meet in one op. */
export function checkSameDtype(a: Tensor, b: Tensor, what: string): void {
  if (a.dtype !== b.dtype) throw new TypeError(`${what}: dtypes differ (${a.dtype} vs ${b.dtype})`);
}

/** Sums a gradient of shape `from` down to the shape of a broadcast operand `to`. */
export function sumToShape(gradient: Data, from: Shape, to: Shape): Data {
  if (shapesEqual(from, to)) return gradient;
  const out = allocate(gradient instanceof Float64Array ? 'float64' : 'float32', sizeOf(to));
  getBackend().reduceSum(gradient, from, out, padShape(to, from.length));
  return out;
}

function binary(
  kind: BinaryKind,
  a: Tensor,
  b: Tensor,
  backward: (gradOut: Data, needs: readonly boolean[], outShape: Shape) => (Data | null)[],
): Tensor {
  checkSameDtype(a, b, kind);
  const outShape = broadcastShapes(a.shape, b.shape, kind);
  // Every backend writes each element of out: no zero-fill, and the backward pass may reuse it.
  const out = allocateUninitialized(a.dtype, sizeOf(outShape));
  getBackend().binary(kind, a.data, a.shape, b.data, b.shape, out, outShape);
  return record(new Tensor(out, outShape), kind, [a, b], (gradOut, needs) =>
    backward(gradOut, needs, outShape),
  );
}

/** Broadcast gradOut·factor(a,b) back to an operand's shape; factor given as a full-size array. */
function product(gradOut: Data, factor: Data, factorShape: Shape, outShape: Shape, to: Shape): Data {
  const scaled = allocate(gradOut instanceof Float64Array ? 'float64' : 'float32', gradOut.length);
  getBackend().binary('mul', gradOut, outShape, factor, factorShape, scaled, outShape);
  return sumToShape(scaled, outShape, to);
}

/** a + b with broadcasting. */
export function add(a: Tensor, b: Tensor): Tensor {
  return binary('add', a, b, (g, needs, outShape) => [
    needs[0] ? sumToShape(g, outShape, a.shape) : null,
    needs[1] ? sumToShape(g, outShape, b.shape) : null,
  ]);
}

/** a - b with broadcasting. */
export function sub(a: Tensor, b: Tensor): Tensor {
  return binary('sub', a, b, (g, needs, outShape) => {
    let gradB: Data | null = null;
    if (needs[1]) {
      const negated = allocate(a.dtype, g.length);
      getBackend().scaleShift(g, -1, 0, negated);
      gradB = sumToShape(negated, outShape, b.shape);
    }
    return [needs[0] ? sumToShape(g, outShape, a.shape) : null, gradB];
  });
}

/** a · b elementwise with broadcasting. */
export function mul(a: Tensor, b: Tensor): Tensor {
  return binary('mul', a, b, (g, needs, outShape) => [
    needs[0] ? product(g, b.data, b.shape, outShape, a.shape) : null,
    needs[1] ? product(g, a.data, a.shape, outShape, b.shape) : null,
  ]);
}

/** a / b elementwise with broadcasting. */
export function div(a: Tensor, b: Tensor): Tensor {
  const out = binary('div', a, b, (g, needs, outShape) => {
    const backend = getBackend();
    let gradA: Data | null = null;
    let gradB: Data | null = null;
    if (needs[0]) {
      const scaled = allocate(a.dtype, g.length);
      backend.binary('div', g, outShape, b.data, b.shape, scaled, outShape);
      gradA = sumToShape(scaled, outShape, a.shape);
    }
    if (needs[1]) {
      // ∂(a/b)/∂b = -(a/b)/b = -out/b.
      const scaled = allocate(a.dtype, g.length);
      backend.binary('mul', g, outShape, out.data, outShape, scaled, outShape);
      backend.binary('div', scaled, outShape, b.data, b.shape, scaled, outShape);
      backend.scaleShift(scaled, -1, 0, scaled);
      gradB = sumToShape(scaled, outShape, b.shape);
    }
    return [gradA, gradB];
  });
  return out;
}

/** x·scale + shift with scalar scale and shift. */
export function scaleShift(x: Tensor, scale: number, shift = 0): Tensor {
  const out = allocate(x.dtype, x.size);
  getBackend().scaleShift(x.data, scale, shift, out);
  return record(new Tensor(out, x.shape), 'scaleShift', [x], (g) => {
    const gradX = allocate(x.dtype, g.length);
    getBackend().scaleShift(g, scale, 0, gradX);
    return [gradX];
  });
}

/** x + value. */
export function addScalar(x: Tensor, value: number): Tensor {
  return scaleShift(x, 1, value);
}

/** x · value. */
export function mulScalar(x: Tensor, value: number): Tensor {
  return scaleShift(x, value, 0);
}

/** x ^ exponent elementwise (scalar exponent). */
export function pow(x: Tensor, exponent: number): Tensor {
  const out = allocate(x.dtype, x.size);
  getBackend().power(x.data, exponent, out);
  return record(new Tensor(out, x.shape), 'pow', [x], (g) => {
    const derivative = allocate(x.dtype, x.size);
    getBackend().power(x.data, exponent - 1, derivative);
    for (let i = 0; i < derivative.length; i++) derivative[i] = derivative[i]! * exponent * g[i]!;
    return [derivative];
  });
}

/** options.alpha: the negative slope of leaky_relu (default 0.01) or the scale of elu (default 1). */
export interface ActivationOptions {
  alpha?: number;
}

/** f(x) elementwise for one of the activation kinds, with its hand-written derivative. */
export function activation(kind: ActivationKind, x: Tensor, options: ActivationOptions = {}): Tensor {
  const alpha = options.alpha ?? (kind === 'leaky_relu' ? 0.01 : 1);
  const out = allocateUninitialized(x.dtype, x.size);
  getBackend().activationForward(kind, x.data, out, alpha);
  return record(new Tensor(out, x.shape), kind, [x], (g) => {
    const gradX = allocateUninitialized(x.dtype, x.size);
    getBackend().activationBackward(kind, x.data, out, g, gradX, alpha);
    return [gradX];
  });
}

/** max(x, 0). The derivative at 0 is 0, as in PyTorch. */
export const relu = (x: Tensor): Tensor => activation('relu', x);
/** x for x > 0, slope·x otherwise (slope 0.01 by default). */
export const leakyRelu = (x: Tensor, slope = 0.01): Tensor => activation('leaky_relu', x, { alpha: slope });
/** x for x > 0, alpha·(eˣ − 1) otherwise. */
export const elu = (x: Tensor, alpha = 1): Tensor => activation('elu', x, { alpha });
/** Exact GELU, x·Φ(x) (PyTorch's default, not the tanh approximation). */
export const gelu = (x: Tensor): Tensor => activation('gelu', x);
export const sigmoid = (x: Tensor): Tensor => activation('sigmoid', x);
export const tanh = (x: Tensor): Tensor => activation('tanh', x);
export const exp = (x: Tensor): Tensor => activation('exp', x);
export const log = (x: Tensor): Tensor => activation('log', x);
export const sqrt = (x: Tensor): Tensor => activation('sqrt', x);
export const abs = (x: Tensor): Tensor => activation('abs', x);
export const neg = (x: Tensor): Tensor => activation('neg', x);
export const square = (x: Tensor): Tensor => activation('square', x);

/** Elementwise maximum with broadcasting; on ties the gradient is split evenly, as in PyTorch. */
export function maximum(a: Tensor, b: Tensor): Tensor {
  return minMax('maximum', a, b);
}

/** Elementwise minimum with broadcasting; on ties the gradient is split evenly, as in PyTorch. */
export function minimum(a: Tensor, b: Tensor): Tensor {
  return minMax('minimum', a, b);
}

/** x broadcast to shape (a copy). */
function broadcastData(x: Tensor, shape: Shape): Data {
  const out = allocate(x.dtype, sizeOf(shape));
  getBackend().binary('add', x.data, x.shape, allocate(x.dtype, 1), [], out, shape);
  return out;
}

function minMax(kind: 'maximum' | 'minimum', a: Tensor, b: Tensor): Tensor {
  return binary(kind, a, b, (g, needs, outShape) => {
    const fullA = broadcastData(a, outShape);
    const fullB = broadcastData(b, outShape);
    const gradFullA = allocate(a.dtype, g.length);
    const gradFullB = allocate(a.dtype, g.length);
    for (let i = 0; i < g.length; i++) {
      const aWins = kind === 'maximum' ? fullA[i]! > fullB[i]! : fullA[i]! < fullB[i]!;
      const share = fullA[i] === fullB[i] ? 0.5 : aWins ? 1 : 0;
      gradFullA[i] = g[i]! * share;
      gradFullB[i] = g[i]! * (1 - share);
    }
    return [
      needs[0] ? sumToShape(gradFullA, outShape, a.shape) : null,
      needs[1] ? sumToShape(gradFullB, outShape, b.shape) : null,
    ];
  });
}
