/** Batch normalization for [N, C] (after Dense) and [N, C, H, W] (after Conv2d) inputs. */
import { batchNorm, batchNormReluMaxPool2d } from '../../ops/index.js';
import { ones, type Tensor, zeros } from '../../tensor/tensor.js';
import { Module, type Parameter } from '../module.js';

export interface BatchNormLayerOptions {
  /** ε added to the variance (default 1e-5). */
  eps?: number;
  /** Weight of each batch in the running averages, PyTorch's meaning (default 0.1). */
  momentum?: number;
  /** Learnable γ and β (default true). */
  affine?: boolean;
}

/** Everything BatchNorm's constructor needs, as plain JSON (see config()). */
export interface BatchNormConfig {
  channels: number;
  eps: number;
  momentum: number;
  affine: boolean;
}

/**
 * y = γ·(x − μ)/√(σ² + ε) + β per channel, placed after a convolution or dense map and before the
 * activation. In training mode μ and σ² come from the batch and the running statistics (buffers
 * `running_mean`, `running_var`) are updated; in inference mode the running statistics are used.
 *
 * Freezing: when γ and β are frozen (requiresGrad false) the layer also runs in inference mode and
 * leaves its running statistics untouched, as Keras does, because updating statistics of a frozen
 * body would shift the features the frozen weights were trained on. Set `trainStatisticsWhenFrozen`
 * to true to keep batch statistics in a frozen body (fastai's train_bn behaviour keeps γ, β
 * trainable instead; see the transfer module).
 *
 * Parameters: 2·C (γ = `weight`, β = `bias`), buffers 2·C.
 */
export class BatchNorm extends Module {
  static override readonly keepsNoTensors = true;
  static override readonly independentSamples = true;
  readonly weight: Parameter | null;
  readonly bias: Parameter | null;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  readonly eps: number;
  readonly momentum: number;
  trainStatisticsWhenFrozen = false;

  constructor(
    readonly channels: number,
    options: BatchNormLayerOptions = {},
  ) {
    super();
    if (!Number.isInteger(channels) || channels < 1)
      throw new RangeError(`BatchNorm: channels must be a positive integer, got ${channels}`);
    this.eps = options.eps ?? 1e-5;
    this.momentum = options.momentum ?? 0.1;
    const affine = options.affine ?? true;
    this.weight = this.addParameter('weight', affine ? ones([channels]) : null);
    this.bias = this.addParameter('bias', affine ? zeros([channels]) : null);
    this.runningMean = this.addBuffer('running_mean', zeros([channels]));
    this.runningVar = this.addBuffer('running_var', ones([channels]));
  }

  /** Whether the γ/β of this layer are frozen. */
  get frozen(): boolean {
    return this.weight !== null && !this.weight.requiresGrad && this.bias !== null && !this.bias.requiresGrad;
  }

  forward(x: Tensor): Tensor {
    return this.normalize(x, false);
  }

  /**
   * relu(this.forward(x)) as one op (BatchNormRelu runs it, see fuseBatchNormRelu in fusion.ts):
   * the same values and gradients, one pass over memory fewer and no intermediate tensor.
   */
  forwardRelu(x: Tensor): Tensor {
    return this.normalize(x, true);
  }

  /**
   * maxPool2d(relu(this.forward(x)), 2×2, stride 2) as one op, in training with the batch's
   * statistics only (usesBatchStatistics; BatchNormRelu runs it where a 2×2 MaxPool2d follows, see
   * fusion.ts): the same values and gradients, without the full-size activation between them.
   * x: [N, C, H, W] → [N, C, floor(H / 2), floor(W / 2)].
   */
  forwardReluMaxPool(x: Tensor): Tensor {
    return batchNormReluMaxPool2d(
      x,
      this.runningMean,
      this.runningVar,
      this.weight,
      this.bias,
      { momentum: this.momentum, eps: this.eps },
      'BatchNorm+ReLU+MaxPool2d',
    );
  }

  /**
   * Whether forward normalises with the batch's statistics (and updates the running ones): in
   * training mode unless frozen (see the class comment). Otherwise it is a fixed per-channel affine
   * map, which the inference rewrite (src/nn/inference.ts) folds into the convolution before it.
   */
  get usesBatchStatistics(): boolean {
    return this.training && (!this.frozen || this.trainStatisticsWhenFrozen);
  }

  /** Batch statistics mix the samples; the running ones are a per-channel map of each sample. */
  override samplesIndependentNow(): boolean {
    return !this.usesBatchStatistics;
  }

  private normalize(x: Tensor, relu: boolean): Tensor {
    const useBatchStatistics = this.usesBatchStatistics;
    return batchNorm(
      x,
      this.runningMean,
      this.runningVar,
      this.weight,
      this.bias,
      { training: useBatchStatistics, momentum: this.momentum, eps: this.eps, relu },
      relu ? 'BatchNorm+ReLU' : 'BatchNorm',
    );
  }

  /** The constructor's arguments with defaults filled in (saveModel and exporters read this). */
  config(): BatchNormConfig {
    return { channels: this.channels, eps: this.eps, momentum: this.momentum, affine: this.weight !== null };
  }

  override describe(): string {
    return `BatchNorm(${this.channels})`;
  }
}

/** Alias for BatchNorm on [N, C] inputs (PyTorch's BatchNorm1d). */
export class BatchNorm1d extends BatchNorm {
  static override readonly keepsNoTensors = true;
  static override readonly independentSamples = true;
}
/** Alias for BatchNorm on [N, C, H, W] inputs (PyTorch's BatchNorm2d). */
export class BatchNorm2d extends BatchNorm {
  static override readonly keepsNoTensors = true;
  static override readonly independentSamples = true;
}
