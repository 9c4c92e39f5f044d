/** The fully connected (dense) layer: y = activation(x·Wᵀ + b). */
import { linear } from '../../ops/index.js';
import type { Tensor } from '../../tensor/tensor.js';
import { defaultWeight } from '../init.js';
import { Module, type Parameter } from '../module.js';
import { type ActivationName, applyActivation, checkActivationName } from './activation.js';

export interface DenseOptions {
  /** Add a learnable bias (default true). */
  bias?: boolean;
  /** Applied after the affine map (default 'none'). */
  activation?: ActivationName;
  /** Slope of leaky_relu / scale of elu. */
  activationAlpha?: number;
}

/** Everything Dense's constructor needs, as plain JSON (see config()). */
export interface DenseConfig {
  inFeatures: number;
  outFeatures: number;
  bias: boolean;
  activation: ActivationName;
  activationAlpha?: number;
}

/**
 * Every output connects to every input. x: [batch, inFeatures] → [batch, outFeatures].
 * weight: [outFeatures, inFeatures] (PyTorch's layout), bias: [outFeatures].
 * Parameters: inFeatures·outFeatures + outFeatures (with bias).
 *
 * @example
 * const layer = new Dense(784, 10, { activation: 'relu' });
 * layer.call(zeros([32, 784])).shape; // [32, 10]
 */
export class Dense extends Module {
  static override readonly keepsNoTensors = true;
  static override readonly independentSamples = true;
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  readonly activation: ActivationName;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    readonly options: DenseOptions = {},
  ) {
    super();
    if (
      !Number.isInteger(inFeatures) ||
      inFeatures < 1 ||
      !Number.isInteger(outFeatures) ||
      outFeatures < 1
    ) {
      throw new RangeError(
        `Dense: feature counts must be positive integers, got in=${inFeatures}, out=${outFeatures}`,
      );
    }
    this.activation = checkActivationName(options.activation ?? 'none', 'Dense');
    this.weight = this.addParameter('weight', defaultWeight([outFeatures, inFeatures], inFeatures))!;
    this.bias = this.addParameter(
      'bias',
      options.bias === false ? null : defaultWeight([outFeatures], inFeatures),
    );
  }

  forward(x: Tensor): Tensor {
    return applyActivation(
      this.activation,
      linear(x, this.weight, this.bias, 'Dense'),
      this.options.activationAlpha,
    );
  }

  /** The constructor's arguments with defaults filled in (saveModel and exporters read this). */
  config(): DenseConfig {
    return {
      inFeatures: this.inFeatures,
      outFeatures: this.outFeatures,
      bias: this.bias !== null,
      activation: this.activation,
      ...(this.options.activationAlpha === undefined
        ? {}
        : { activationAlpha: this.options.activationAlpha }),
    };
  }

  override describe(): string {
    const activation = this.activation === 'none' ? '' : `, ${this.activation}`;
    return `Dense(${this.inFeatures}→${this.outFeatures}${this.bias === null ? ', no bias' : ''}${activation})`;
  }
}
