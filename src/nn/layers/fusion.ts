/**
 * Batch norm followed by ReLU as one op, and the rewrite that puts it in place of the two layers.
 *
 * The fused op (ops/normalization.ts batchNorm with relu: true) gives the same values and gradients
 * bit for bit as the two layers, in one pass over memory and without the intermediate tensor (about
 * a fifth of the seed CNN's training step). The rewrite changes what runs, never the model's
 * structure: the BatchNorm and the ReLU stay the children they were, under the same names, so
 * state_dict, saving, exporting and summary() see the two layers.
 */
import { convolutionGeometry, pair, poolGeometry } from '../../ops/index.js';
import type { Tensor } from '../../tensor/tensor.js';
import { convBatchNormInference, foldableConvBatchNorm, inferenceFusionApplies } from '../inference.js';
import { Module } from '../module.js';
import { ReLU } from './activation.js';
import { BatchNorm, BatchNorm2d } from './batchnorm.js';
import { Conv2d } from './conv.js';
import { MaxPool2d } from './pooling.js';

/**
 * relu(batchNorm(x)) in one op. It wraps the two layers (their parameters, buffers and training
 * mode are theirs) and is not meant to be a child in a model: fuseBatchNormRelu puts it in the list
 * of layers a container runs. When either layer has forward hooks it runs them one by one through
 * call(), so that the hooks see their layer's input and output; that gives the same bits.
 * With `pool`, the 2×2 MaxPool2d after the ReLU, it also pools as one op where the batch norm uses
 * the batch's statistics (training) and poolsInTraining holds, and hands the pooled result to the
 * PoolingTail at the pooling's position, which passes it through.
 * x: [N, C] or [N, C, H, W], as BatchNorm.
 */
export class BatchNormRelu extends Module {
  static override readonly keepsNoTensors = true;
  static override readonly independentSamples = true;
  /** The pooled output of the last call that pooled, until the PoolingTail takes it. */
  pending: Tensor | null = null;

  constructor(
    readonly batchNorm: BatchNorm,
    readonly relu: ReLU,
    readonly pool: MaxPool2d | null = null,
  ) {
    super();
    this.addModule('batchNorm', batchNorm);
    this.addModule('relu', relu);
  }

  forward(x: Tensor): Tensor {
    this.pending = null;
    if (this.batchNorm.hasForwardHooks() || this.relu.hasForwardHooks())
      return this.relu.call(this.batchNorm.call(x));
    if (this.pool !== null && this.batchNorm.usesBatchStatistics && poolsInTraining(this.pool, x)) {
      this.pending = this.batchNorm.forwardReluMaxPool(x);
      return this.pending;
    }
    return this.batchNorm.forwardRelu(x);
  }

  override describe(): string {
    return `${this.batchNorm.describe()} + ReLU`;
  }
}

/**
 * The entry at a MaxPool2d's position after a BatchNormRelu that may pool (see BatchNormRelu): its
 * pooled output passes through; anything else goes to the pooling.
 */
export class PoolingTail extends Module {
  static override readonly keepsNoTensors = true;
  static override readonly independentSamples = true;

  constructor(
    readonly head: BatchNormRelu,
    readonly pool: MaxPool2d,
  ) {
    super();
    this.addModule('pool', pool);
  }

  forward(x: Tensor): Tensor {
    if (this.head.pending === x) {
      this.head.pending = null;
      return x;
    }
    return this.pool.call(x);
  }

  override describe(): string {
    return this.pool.describe();
  }
}

/** Whether batchNormReluMaxPool2d may stand for pool on x: a whole 2×2 pooling, no forward hooks. */
function poolsInTraining(pool: MaxPool2d, x: Tensor): boolean {
  return !pool.hasForwardHooks() && poolsWholeTwoByTwo(pool, x.shape);
}

/**
 * Whether pool is 2×2 max pooling with stride 2 and no padding whose windows on an input of `shape`
 * are the whole ones (with ceilMode, only where the sizes are even): the pooling the fused kernels
 * do. False also where the pooling would throw on that shape, so that the layer itself reports it.
 */
function poolsWholeTwoByTwo(pool: MaxPool2d, shape: readonly number[]): boolean {
  const [kernelHeight, kernelWidth] = pair(pool.options.kernelSize);
  const [strideHeight, strideWidth] = pair(pool.options.stride ?? pool.options.kernelSize);
  const [padTop, padLeft] = pair(pool.options.padding ?? 0);
  if (kernelHeight !== 2 || kernelWidth !== 2 || strideHeight !== 2 || strideWidth !== 2) return false;
  if (padTop !== 0 || padLeft !== 0 || shape.length !== 4) return false;
  try {
    const pooled = poolGeometry(shape, pool.options, 'MaxPool2d');
    return pooled.outHeight === Math.floor(shape[2]! / 2) && pooled.outWidth === Math.floor(shape[3]! / 2);
  } catch {
    return false;
  }
}

/** Whether pool, run on conv's output for input x, pools as the fused convolution does (poolsWholeTwoByTwo). */
function poolsAsFused(conv: Conv2d, pool: MaxPool2d, x: Tensor): boolean {
  try {
    const g = convolutionGeometry(x.shape, conv.weight.shape, conv.convolution, 'Conv2d');
    return poolsWholeTwoByTwo(pool, [g.batch, g.outChannels, g.outHeight, g.outWidth]);
  } catch {
    return false;
  }
}

/**
 * The first of the entries that stand for Conv2d → BatchNorm (→ ReLU) (→ MaxPool2d) in a
 * Sequential's run list (see fuseBatchNormRelu), at the convolution's position. Where the inference
 * rewrite applies (src/nn/inference.ts) it computes the whole run as one fused convolution and
 * hands the result to its partners, FusedConvolutionTail entries, which pass it through; otherwise
 * it is the convolution alone and the partners run the batch norm (and ReLU) and the pooling as
 * before. One entry per layer keeps every layer at its own position, so errors name the layer that
 * failed and the memory between the layers is reused as before when the rewrite does not apply.
 * A 2×2 max pooling joins the fused convolution only where poolsAsFused holds for the input: the
 * convolution then never writes its full-size output (a quarter of the memory traffic, and the
 * pooling pass, of the seed CNN's inference).
 */
export class FusedConvolutionHead extends Module {
  static override readonly keepsNoTensors = true;
  static override readonly independentSamples = true;
  /** The output of the last fused call, until the last tail takes it (held for one step only). */
  pending: Tensor | null = null;
  /** Whether pending is pooled already (the pooling's tail passes it through too). */
  pendingPooled = false;

  constructor(
    readonly conv: Conv2d,
    readonly batchNorm: BatchNorm,
    readonly relu: ReLU | null,
    readonly pool: MaxPool2d | null = null,
  ) {
    super();
    this.addModule('conv', conv);
    this.addModule('batchNorm', batchNorm);
    if (relu !== null) this.addModule('relu', relu);
    if (pool !== null) this.addModule('pool', pool);
  }

  forward(x: Tensor): Tensor {
    const layers: Module[] = [this.conv, this.batchNorm];
    if (this.relu !== null) layers.push(this.relu);
    if (inferenceFusionApplies(x, layers)) {
      const pool =
        this.pool !== null && !this.pool.hasForwardHooks() && poolsAsFused(this.conv, this.pool, x);
      const y = convBatchNormInference(x, this.conv, this.batchNorm, {
        relu: this.relu !== null,
        maxPool: pool,
      });
      this.pending = y;
      this.pendingPooled = pool;
      return y;
    }
    this.pending = null;
    return this.conv.call(x);
  }

  override describe(): string {
    return `${this.conv.describe()} + ${this.batchNorm.describe()}${this.relu === null ? '' : ' + ReLU'}${this.pool === null ? '' : ` (+ ${this.pool.describe()})`}`;
  }
}

/**
 * A later entry (see FusedConvolutionHead), at the batch norm's position or the pooling's: the
 * head's fused output passes through where it stands for `rest`; anything else goes to rest (the
 * batch norm or BatchNormRelu, or the pooling).
 */
export class FusedConvolutionTail extends Module {
  static override readonly keepsNoTensors = true;
  static override readonly independentSamples = true;

  constructor(
    readonly head: FusedConvolutionHead,
    readonly rest: Module,
    /** Whether this tail stands for the head's pooling (the last entry when it pooled). */
    readonly pooling = false,
  ) {
    super();
    this.addModule('rest', rest);
  }

  forward(x: Tensor): Tensor {
    if (this.head.pending === x && (!this.pooling || this.head.pendingPooled)) {
      // The last tail of the fused run lets go of it.
      if (this.pooling || !this.head.pendingPooled) this.head.pending = null;
      return x;
    }
    return this.rest.call(x);
  }

  override describe(): string {
    return this.rest.describe();
  }
}

/** What to run for a list of layers (see fuseBatchNormRelu). */
export interface FusedLayers {
  /** The modules to call in order. */
  modules: Module[];
  /** For each of modules, the index in the original list of the (first) layer it runs. */
  positions: number[];
}

/**
 * The explicit BatchNorm + ReLU rewrite: layers, with every BatchNorm (or subclass) directly
 * followed by a layer of class ReLU exactly (not LeakyReLU, not a subclass that might do more)
 * replaced by one BatchNormRelu wrapping both; where a MaxPool2d follows the ReLU, the
 * BatchNormRelu takes it too and a PoolingTail stands at its position, so that in training a 2×2
 * pooling with stride 2 runs with the batch norm as one op (batchNormReluMaxPool2d). A Conv2d
 * without bias directly followed by a BatchNorm (or BatchNorm2d) of its channels, optionally a ReLU
 * and optionally a MaxPool2d, becomes a FusedConvolutionHead and its FusedConvolutionTail entries,
 * which run as one fused convolution where the inference rewrite applies (src/nn/inference.ts; the
 * pooling only where it is 2×2 with stride 2) and as the layers (with BatchNorm + ReLU, and the
 * pooling, fused as above) elsewhere. Sequential applies it to the layers it runs unless its
 * fuseBatchNormRelu switch is off; layers is not changed.
 *
 * @example
 * fuseBatchNormRelu([dense, batchNorm, relu, pool]).modules // [dense, BatchNormRelu(batchNorm, relu), pool]
 */
export function fuseBatchNormRelu(layers: readonly Module[]): FusedLayers {
  const modules: Module[] = [];
  const positions: number[] = [];
  for (let index = 0; index < layers.length; index++) {
    const layer = layers[index]!;
    const next = layers[index + 1];
    const afterNext = layers[index + 2];
    if (
      layer.constructor === Conv2d &&
      (next?.constructor === BatchNorm || next?.constructor === BatchNorm2d) &&
      foldableConvBatchNorm(layer as Conv2d, next as BatchNorm)
    ) {
      // The inference rewrite's entries (FusedConvolutionHead).
      const batchNorm = next as BatchNorm;
      const relu = afterNext?.constructor === ReLU ? (afterNext as ReLU) : null;
      const poolIndex = index + (relu === null ? 2 : 3);
      const pool = layers[poolIndex]?.constructor === MaxPool2d ? (layers[poolIndex] as MaxPool2d) : null;
      const head = new FusedConvolutionHead(layer as Conv2d, batchNorm, relu, pool);
      const normRelu = relu === null ? null : new BatchNormRelu(batchNorm, relu, pool);
      modules.push(head, new FusedConvolutionTail(head, normRelu ?? batchNorm));
      positions.push(index, index + 1);
      if (pool !== null) {
        modules.push(
          new FusedConvolutionTail(head, normRelu === null ? pool : new PoolingTail(normRelu, pool), true),
        );
        positions.push(poolIndex);
      }
      index = pool === null ? poolIndex - 1 : poolIndex;
      continue;
    }
    positions.push(index);
    if (layer instanceof BatchNorm && next?.constructor === ReLU) {
      const pool = afterNext?.constructor === MaxPool2d ? (afterNext as MaxPool2d) : null;
      const normRelu = new BatchNormRelu(layer, next as ReLU, pool);
      modules.push(normRelu);
      index++;
      if (pool !== null) {
        modules.push(new PoolingTail(normRelu, pool));
        positions.push(index + 1);
        index++;
      }
    } else {
      modules.push(layer);
    }
  }
  return { modules, positions };
}
