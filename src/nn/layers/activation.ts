/** Activation functions by name (for Dense's `activation` option) and as layers. */
import { activation as activationOp, logSoftmax, softmax } from '../../ops/index.js';
import type { Tensor } from '../../tensor/tensor.js';
import { Module } from '../module.js';

export const activationNames = [
  'none',
  'relu',
  'leaky_relu',
  'elu',
  'gelu',
  'sigmoid',
  'tanh',
  'softmax',
  'log_softmax',
] as const;
export type ActivationName = (typeof activationNames)[number];

/** Throws a clear error for a name that is not an activation (for configs read from JSON/YAML). */
export function checkActivationName(name: string, where: string): ActivationName {
  if (!(activationNames as readonly string[]).includes(name)) {
    throw new TypeError(
      `${where}: unknown activation '${name}'; expected one of ${activationNames.join(', ')}`,
    );
  }
  return name as ActivationName;
}

/** Applies a named activation; alpha is the leaky_relu slope (default 0.01) or the elu scale (1). */
export function applyActivation(name: ActivationName, x: Tensor, alpha?: number): Tensor {
  switch (name) {
    case 'none':
      return x;
    case 'softmax':
      return softmax(x);
    case 'log_softmax':
      return logSoftmax(x);
    default:
      return activationOp(name, x, alpha === undefined ? {} : { alpha });
  }
}

/** What an Activation layer is, as plain JSON (see Activation.config()). */
export interface ActivationConfig {
  activation: ActivationName;
  alpha?: number;
}

/** An activation as a layer: ReLU, Sigmoid, ... all are instances of this with a name. */
export class Activation extends Module {
  static override readonly keepsNoTensors = true;
  static override readonly independentSamples = true;
  readonly activation: ActivationName;
  readonly alpha: number | undefined;

  constructor(activation: ActivationName, alpha?: number) {
    super();
    this.activation = checkActivationName(activation, 'Activation');
    this.alpha = alpha;
  }

  forward(x: Tensor): Tensor {
    return applyActivation(this.activation, x, this.alpha);
  }

  /** Element-wise kinds only: softmax normalises along a dimension that may be the batch's. */
  override samplesIndependentNow(): boolean {
    return this.activation !== 'softmax' && this.activation !== 'log_softmax';
  }

  /**
   * The function and its parameter (saveModel and exporters read this). Subclasses (ReLU, LeakyReLU,
   * ...) describe themselves the same way: their class is the activation, alpha its parameter.
   */
  config(): ActivationConfig {
    return { activation: this.activation, ...(this.alpha === undefined ? {} : { alpha: this.alpha }) };
  }

  override describe(): string {
    return `Activation(${this.activation})`;
  }
}

export class ReLU extends Activation {
  static override readonly keepsNoTensors = true;
  static override readonly independentSamples = true;
  constructor() {
    super('relu');
  }
  override describe(): string {
    return 'ReLU';
  }
}
export class LeakyReLU extends Activation {
  static override readonly keepsNoTensors = true;
  static override readonly independentSamples = true;
  constructor(slope = 0.01) {
    super('leaky_relu', slope);
  }
  override describe(): string {
    return `LeakyReLU(${this.alpha})`;
  }
}
export class ELU extends Activation {
  static override readonly keepsNoTensors = true;
  static override readonly independentSamples = true;
  constructor(alpha = 1) {
    super('elu', alpha);
  }
  override describe(): string {
    return 'ELU';
  }
}
export class GELU extends Activation {
  static override readonly keepsNoTensors = true;
  static override readonly independentSamples = true;
  constructor() {
    super('gelu');
  }
  override describe(): string {
    return 'GELU';
  }
}
export class Sigmoid extends Activation {
  static override readonly keepsNoTensors = true;
  static override readonly independentSamples = true;
  constructor() {
    super('sigmoid');
  }
  override describe(): string {
    return 'Sigmoid';
  }
}
export class Tanh extends Activation {
  static override readonly keepsNoTensors = true;
  static override readonly independentSamples = true;
  constructor() {
    super('tanh');
  }
  override describe(): string {
    return 'Tanh';
  }
}
export class Softmax extends Activation {
  static override readonly keepsNoTensors = true;
  constructor() {
    super('softmax');
  }
  override describe(): string {
    return 'Softmax';
  }
}
export class LogSoftmax extends Activation {
  static override readonly keepsNoTensors = true;
  constructor() {
    super('log_softmax');
  }
  override describe(): string {
    return 'LogSoftmax';
  }
}
