/**
 * Layer normalization, as PyTorch's nn.LayerNorm: a composite layer, built from existing ops only
 * (mean, sub, square, sqrt, div, mul, add), so autograd derives its backward pass.
 */
import { add, addScalar, div, mean, mul, sqrt, square, sub } from '../../ops/index.js';
import { formatShape, ShapeError } from '../../tensor/shape.js';
import { ones, type Tensor, zeros } from '../../tensor/tensor.js';
import { Module, type Parameter } from '../module.js';

export interface LayerNormOptions {
  /** ε added to the variance (default 1e-5, as PyTorch). */
  eps?: number;
  /** Learnable γ (`weight`, ones) and β (`bias`, zeros) of normalizedShape (default true). */
  elementwiseAffine?: boolean;
}

/** Everything LayerNorm's constructor needs, as plain JSON (see config()). */
export interface LayerNormConfig {
  normalizedShape: number[];
  eps: number;
  elementwiseAffine: boolean;
}

/**
 * y = (x − mean) / √(var + ε) · γ + β, the mean and the (biased) variance taken over the last
 * normalizedShape.length axes of each sample, which must equal normalizedShape; γ and β have that
 * shape. x: [..., ...normalizedShape] → the same shape. The same in training and inference (no
 * running statistics). Parameters: 2·∏normalizedShape (γ = `weight`, β = `bias`), PyTorch's names.
 *
 * @example
 * new LayerNorm(64).call(x); // x: [N, T, 64], each row of 64 normalized
 */
export class LayerNorm extends Module {
  static override readonly keepsNoTensors = true;
  static override readonly independentSamples = true;
  readonly normalizedShape: readonly number[];
  readonly eps: number;
  readonly weight: Parameter | null;
  readonly bias: Parameter | null;
  /** The axes normalized over, counted from the end: [-k, ..., -1]. */
  private readonly axes: number[];

  constructor(normalizedShape: number | readonly number[], options: LayerNormOptions = {}) {
    super();
    const shape = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
    if (shape.length === 0 || !shape.every((size) => Number.isInteger(size) && size >= 1))
      throw new RangeError(
        `LayerNorm: normalizedShape must be one or more positive integers, got [${shape.join(', ')}]`,
      );
    this.normalizedShape = shape;
    this.eps = options.eps ?? 1e-5;
    const affine = options.elementwiseAffine ?? true;
    this.weight = this.addParameter('weight', affine ? ones(shape) : null);
    this.bias = this.addParameter('bias', affine ? zeros(shape) : null);
    this.axes = shape.map((_, index) => index - shape.length);
  }

  forward(x: Tensor): Tensor {
    const trailing = x.shape.slice(x.rank - this.normalizedShape.length);
    if (x.rank < this.normalizedShape.length || !trailing.every((d, i) => d === this.normalizedShape[i]))
      throw new ShapeError(
        `LayerNorm: expected an input whose last axes are ${formatShape(this.normalizedShape)}, got ${formatShape(x.shape)}`,
      );
    const reduce = { axes: this.axes, keepDims: true };
    const centred = sub(x, mean(x, reduce));
    const normalized = div(centred, sqrt(addScalar(mean(square(centred), reduce), this.eps)));
    if (this.weight === null || this.bias === null) return normalized;
    return add(mul(normalized, this.weight), this.bias);
  }

  /** The constructor's arguments with defaults filled in (saveModel and exporters read this). */
  config(): LayerNormConfig {
    return {
      normalizedShape: [...this.normalizedShape],
      eps: this.eps,
      elementwiseAffine: this.weight !== null,
    };
  }

  override describe(): string {
    return `LayerNorm(${formatShape(this.normalizedShape)})`;
  }
}
