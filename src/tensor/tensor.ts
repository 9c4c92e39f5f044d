/**
 * Tensor: a shaped, contiguous, row-major block of float32 (or float64) numbers, with the autograd
 * bookkeeping that lets it take part in reverse-mode differentiation.
 *
 * Lifetime is decided here, once: a tensor's data is an ordinary typed array owned by the JavaScript
 * garbage collector. Backends receive the arrays for the duration of a kernel call and keep nothing,
 * so nothing is ever disposed by hand.
 */
import { getBackend } from '../backend/index.js';
import type { Data, DType } from '../backend/types.js';
import type { GradNode } from '../autograd/graph.js';
import { backward as runBackward } from '../autograd/graph.js';
import { allocate, outsideStorage, recycleReleased } from './memory.js';
import { checkShape, formatShape, type Shape, ShapeError, sizeOf } from './shape.js';

export { allocate, allocateUninitialized } from './memory.js';

/** Nested arrays of numbers, as accepted by tensor() and returned by toArray(). */
export type NestedArray = number | NestedArray[];

export function dtypeOf(data: Data): DType {
  return data instanceof Float64Array ? 'float64' : 'float32';
}

export class Tensor {
  readonly data: Data;
  readonly shape: readonly number[];
  /** Whether gradients flow to (a leaf) or through (an op result) this tensor. */
  requiresGrad: boolean;
  /**
   * ∂L/∂this after backward() for leaves that require gradients; summed across backward calls.
   * Reading it lends the gradient to the caller for good: only a gradient nobody outside the library
   * has read (or set) is reused by clearGrad.
   */
  get grad(): Tensor | null {
    this.gradLent = true;
    return this.gradValue;
  }
  set grad(value: Tensor | null) {
    this.gradValue = value;
    this.gradLent = true;
  }
  private gradValue: Tensor | null = null;
  private gradLent = false;
  /** The op that produced this tensor, while its graph is alive; null for leaves. */
  gradFn: GradNode | null = null;

  /** Wraps data (not copied) as a tensor of the given shape. */
  constructor(data: Data, shape: Shape, requiresGrad = false) {
    checkShape(shape, 'Tensor');
    if (data.length !== sizeOf(shape)) {
      throw new ShapeError(
        `Tensor: shape ${formatShape(shape)} needs ${sizeOf(shape)} elements, the data has ${data.length}`,
      );
    }
    this.data = data;
    this.shape = Object.freeze([...shape]);
    this.requiresGrad = requiresGrad;
  }

  get dtype(): DType {
    return dtypeOf(this.data);
  }

  get size(): number {
    return this.data.length;
  }

  get rank(): number {
    return this.shape.length;
  }

  /** A fresh zeroed array of this tensor's dtype. */
  newData(size: number): Data {
    return allocate(this.dtype, size);
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) {
      throw new ShapeError(`item(): the tensor has shape ${formatShape(this.shape)}, not a single element`);
    }
    return this.data[0]!;
  }

  /** The values as nested arrays, outermost axis first. */
  toArray(): NestedArray {
    if (this.rank === 0) return this.data[0]!;
    const build = (axis: number, offset: number): NestedArray[] => {
      const length = this.shape[axis]!;
      const stride = sizeOf(this.shape.slice(axis + 1));
      const values: NestedArray[] = [];
      for (let i = 0; i < length; i++) {
        values.push(axis === this.rank - 1 ? this.data[offset + i]! : build(axis + 1, offset + i * stride));
      }
      return values;
    };
    return build(0, 0);
  }

  /** A tensor sharing nothing with this one and outside any graph. */
  clone(): Tensor {
    return new Tensor(this.data.slice(), this.shape);
  }

  /** The same data without graph history (PyTorch's detach; shares the array). */
  detach(): Tensor {
    return new Tensor(this.data, this.shape);
  }

  /** Back-propagates from this tensor (a scalar loss unless gradient is given). */
  backward(gradient?: Tensor): void {
    runBackward(this, gradient?.data);
  }

  /** Adds a gradient array into .grad (used by the backward pass for leaves). */
  accumulateGrad(gradient: Data): void {
    if (this.gradValue === null) {
      // .grad outlives the step; an array in a backend's storage would outlive it there too.
      this.gradValue = new Tensor(outsideStorage(gradient), this.shape);
      this.gradLent = false;
      return;
    }
    // Gradients accumulated over several backward calls (micro-batches): the backend's add, the
    // same float sums as a JavaScript loop at a fraction of its time.
    const target = this.gradValue.data;
    const shape = [target.length];
    getBackend().binary('add', target, shape, gradient, shape, target, shape);
  }

  /** .grad's array, or null, without lending it (for the library's own passing reads). */
  gradientData(): Data | null {
    return this.gradValue?.data ?? null;
  }

  /**
   * Sets .grad to null (zeroGrad). A gradient that no code outside the library has read or set since
   * the backward pass made it goes back to the memory pool, for the next step's gradients: dropped
   * for the collector instead, a ResNet-18 step's 43 MiB of them were sometimes still alive when the
   * next step's were made, and the process kept the larger heap from then on.
   */
  clearGrad(): void {
    const grad = this.gradValue;
    this.gradValue = null;
    if (grad !== null && !this.gradLent) recycleReleased(grad.data);
    this.gradLent = false;
  }

  toString(): string {
    return `Tensor(shape=${formatShape(this.shape)}, dtype=${this.dtype}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }
}

/** Builds a tensor from nested arrays (or a flat array with a shape). */
export function tensor(
  values: NestedArray | ArrayLike<number>,
  options: { shape?: Shape; dtype?: DType; requiresGrad?: boolean } = {},
): Tensor {
  const dtype = options.dtype ?? 'float32';
  if (typeof values === 'number') {
    const data = allocate(dtype, 1);
    data[0] = values;
    return new Tensor(data, options.shape ?? [], options.requiresGrad);
  }
  if (options.shape !== undefined || !Array.isArray(values)) {
    const flat = values as ArrayLike<number>;
    const data = allocate(dtype, flat.length);
    for (let i = 0; i < flat.length; i++) data[i] = flat[i]!;
    return new Tensor(data, options.shape ?? [flat.length], options.requiresGrad);
  }
  const shape: number[] = [];
  let level: NestedArray = values;
  while (Array.isArray(level)) {
    shape.push(level.length);
    level = level[0]!;
  }
  const flat: number[] = [];
  const walk = (value: NestedArray, axis: number): void => {
    if (axis === shape.length) {
      if (typeof value !== 'number') throw new ShapeError('tensor(): nested arrays are ragged');
      flat.push(value);
      return;
    }
    if (!Array.isArray(value) || value.length !== shape[axis]) {
      throw new ShapeError(
        `tensor(): nested arrays are ragged at axis ${axis} (expected length ${shape[axis]})`,
      );
    }
    for (const item of value) walk(item, axis + 1);
  };
  walk(values, 0);
  return tensor(flat, { shape, dtype, requiresGrad: options.requiresGrad });
}

export function zeros(shape: Shape, dtype: DType = 'float32'): Tensor {
  return new Tensor(allocate(dtype, sizeOf(shape)), shape);
}

export function ones(shape: Shape, dtype: DType = 'float32'): Tensor {
  return full(shape, 1, dtype);
}

export function full(shape: Shape, value: number, dtype: DType = 'float32'): Tensor {
  return new Tensor(allocate(dtype, sizeOf(shape)).fill(value), shape);
}
