/** Pooling layers and Flatten. */
import {
  avgPool2d,
  flatten,
  globalAvgPool2d,
  globalMaxPool2d,
  maxPool2d,
  type Pair,
  pair,
  type Pool2dOptions,
} from '../../ops/index.js';
import type { Tensor } from '../../tensor/tensor.js';
import { Module, type ReceptiveField } from '../module.js';

abstract class WindowPool extends Module {
  readonly options: Pool2dOptions;
  constructor(kernelSize: Pair, options: Omit<Pool2dOptions, 'kernelSize'> = {}) {
    super();
    this.options = { ...options, kernelSize };
  }
  override receptiveField(field: ReceptiveField): ReceptiveField {
    const [kernel] = pair(this.options.kernelSize);
    const [stride] = pair(this.options.stride ?? this.options.kernelSize);
    return { size: field.size + (kernel - 1) * field.jump, jump: field.jump * stride };
  }
  /** The constructor's arguments as one object (saveModel and exporters read this). */
  config(): Pool2dOptions & { countIncludePad?: boolean } {
    return { ...this.options };
  }
  protected settings(): string {
    const stride = this.options.stride ?? this.options.kernelSize;
    return `${pair(this.options.kernelSize).join('×')}, stride ${String(stride)}${this.options.padding ? `, padding ${String(this.options.padding)}` : ''}`;
  }
}

/** Keeps the largest value of each window. x: [N, C, H, W] → [N, C, Hout, Wout]; no parameters. */
export class MaxPool2d extends WindowPool {
  static override readonly keepsNoTensors = true;
  static override readonly independentSamples = true;
  forward(x: Tensor): Tensor {
    return maxPool2d(x, this.options);
  }
  override describe(): string {
    return `MaxPool2d(${this.settings()})`;
  }
}

/** Averages each window. x: [N, C, H, W] → [N, C, Hout, Wout]; countIncludePad defaults to true. */
export class AvgPool2d extends WindowPool {
  static override readonly keepsNoTensors = true;
  static override readonly independentSamples = true;
  constructor(
    kernelSize: Pair,
    options: Omit<Pool2dOptions, 'kernelSize'> & { countIncludePad?: boolean } = {},
  ) {
    super(kernelSize, options);
  }
  forward(x: Tensor): Tensor {
    return avgPool2d(x, this.options);
  }
  override describe(): string {
    return `AvgPool2d(${this.settings()})`;
  }
}

/** Global average pooling: one mean per feature map. x: [N, C, H, W] → [N, C]; no parameters. */
export class GlobalAvgPool2d extends Module {
  static override readonly keepsNoTensors = true;
  static override readonly independentSamples = true;
  forward(x: Tensor): Tensor {
    return globalAvgPool2d(x);
  }
  /** No options (saveModel and exporters read this). */
  config(): Record<string, never> {
    return {};
  }
  override describe(): string {
    return 'GlobalAvgPool2d';
  }
}

/** Global max pooling: one maximum per feature map. x: [N, C, H, W] → [N, C]. */
export class GlobalMaxPool2d extends Module {
  static override readonly keepsNoTensors = true;
  static override readonly independentSamples = true;
  forward(x: Tensor): Tensor {
    return globalMaxPool2d(x);
  }
  /** No options (saveModel and exporters read this). */
  config(): Record<string, never> {
    return {};
  }
  override describe(): string {
    return 'GlobalMaxPool2d';
  }
}

/** [N, d1, d2, ...] → [N, d1·d2·...]. */
export class Flatten extends Module {
  static override readonly keepsNoTensors = true;
  static override readonly independentSamples = true;
  forward(x: Tensor): Tensor {
    return flatten(x, 1);
  }
  /** No options (saveModel and exporters read this). */
  config(): Record<string, never> {
    return {};
  }
  override describe(): string {
    return 'Flatten';
  }
}
