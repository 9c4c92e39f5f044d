/** The 2-D convolution layer. */
import { conv2d, type Conv2dOptions, type Pair, pair, type Padding } from '../../ops/index.js';
import type { Tensor } from '../../tensor/tensor.js';
import { defaultWeight } from '../init.js';
import { Module, type Parameter, type ReceptiveField } from '../module.js';

export interface Conv2dLayerOptions extends Conv2dOptions {
  /** Add a learnable per-channel bias (default true; false before batch norm, which has its own shift). */
  bias?: boolean;
}

/** Everything Conv2d's constructor needs, as plain JSON (see config()). */
export interface Conv2dConfig {
  inChannels: number;
  outChannels: number;
  kernelSize: [number, number];
  stride: Pair;
  padding: Padding;
  dilation: Pair;
  bias: boolean;
}

/**
 * x: [batch, inChannels, H, W] → [batch, outChannels, Hout, Wout].
 * weight: [outChannels, inChannels, kh, kw] (PyTorch's layout), bias: [outChannels].
 * Parameters: kh·kw·inChannels·outChannels (+ outChannels with bias); two stacked 3×3 layers
 * therefore cost 18·Cin·Cout against 25·Cin·Cout for one 5×5 with the same 5×5 receptive field.
 *
 * @example
 * const conv = new Conv2d(1, 32, 3, { padding: 'same', bias: false });
 */
export class Conv2d extends Module {
  static override readonly keepsNoTensors = true;
  static override readonly independentSamples = true;
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  readonly kernelSize: [number, number];
  readonly convolution: Conv2dOptions;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: Pair,
    options: Conv2dLayerOptions = {},
  ) {
    super();
    this.kernelSize = pair(kernelSize);
    for (const [name, value] of [
      ['inChannels', inChannels],
      ['outChannels', outChannels],
      ['kernel height', this.kernelSize[0]],
      ['kernel width', this.kernelSize[1]],
    ] as const) {
      if (!Number.isInteger(value) || value < 1)
        throw new RangeError(`Conv2d: ${name} must be a positive integer, got ${value}`);
    }
    const padding: Padding = options.padding ?? 0;
    if (typeof padding === 'string' && padding !== 'same' && padding !== 'valid') {
      throw new TypeError(
        `Conv2d: padding must be a number, a pair, 'same' or 'valid', got '${padding as string}'`,
      );
    }
    this.convolution = { stride: options.stride ?? 1, padding, dilation: options.dilation ?? 1 };
    const fanIn = inChannels * this.kernelSize[0] * this.kernelSize[1];
    this.weight = this.addParameter(
      'weight',
      defaultWeight([outChannels, inChannels, ...this.kernelSize], fanIn),
    )!;
    this.bias = this.addParameter(
      'bias',
      options.bias === false ? null : defaultWeight([outChannels], fanIn),
    );
  }

  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, this.convolution, 'Conv2d');
  }

  /**
   * The constructor's arguments with every default filled in: the single description of this layer
   * that whole-model files (saveModel) and exporters read, so `new Conv2d(c.inChannels,
   * c.outChannels, c.kernelSize, c)` rebuilds it.
   */
  config(): Conv2dConfig {
    return {
      inChannels: this.inChannels,
      outChannels: this.outChannels,
      kernelSize: [...this.kernelSize],
      stride: this.convolution.stride ?? 1,
      padding: this.convolution.padding ?? 0,
      dilation: this.convolution.dilation ?? 1,
      bias: this.bias !== null,
    };
  }

  override receptiveField(field: ReceptiveField): ReceptiveField {
    const [dilation] = pair(this.convolution.dilation ?? 1);
    const [stride] = pair(this.convolution.stride ?? 1);
    return { size: field.size + (this.kernelSize[0] - 1) * dilation * field.jump, jump: field.jump * stride };
  }

  override describe(): string {
    const { stride, padding, dilation } = this.convolution;
    const extras = [
      stride !== 1 ? `stride ${String(stride)}` : '',
      padding !== 0 ? `padding ${String(padding)}` : '',
      dilation !== 1 ? `dilation ${String(dilation)}` : '',
      this.bias === null ? 'no bias' : '',
    ].filter((s) => s !== '');
    return `Conv2d(${this.inChannels}→${this.outChannels}, ${this.kernelSize.join('×')}${extras.length ? ', ' + extras.join(', ') : ''})`;
  }
}
