/**
 * Batch norm followed by ReLU as one op, and the rewrite that puts it in place of the two layers.
 *
 * The fused op (ops/normalization.ts batchNorm with relu: true) gives the same values and gradients
 * bit for bit as the two layers, in one pass over memory and without the intermediate tensor (about
 * a fifth of the seed CNN's training step). The rewrite changes what runs, never the model's
 * structure: the BatchNorm and the ReLU stay the children they were, under the same names, so
 * state_dict, saving, exporting and summary() see the two layers.
 */
import type { Tensor } from '../../tensor/tensor.js';
import { convBatchNormInference, foldableConvBatchNorm, inferenceFusionApplies } from '../inference.js';
import { Module } from '../module.js';
import { ReLU } from './activation.js';
import { BatchNorm, BatchNorm2d } from './batchnorm.js';
import { Conv2d } from './conv.js';

/**
 * relu(batchNorm(x)) in one op. It wraps the two layers (their parameters, buffers and training
 * mode are theirs) and is not meant to be a child in a model: fuseBatchNormRelu puts it in the list
 * of layers a container runs. When either layer has forward hooks it runs them one by one through
 * call(), so that the hooks see their layer's input and output; that gives the same bits.
 * x: [N, C] or [N, C, H, W], as BatchNorm.
 */
export class BatchNormRelu extends Module {
  static override readonly keepsNoTensors = true;

  constructor(
    readonly batchNorm: BatchNorm,
    readonly relu: ReLU,
  ) {
    super();
    this.addModule('batchNorm', batchNorm);
    this.addModule('relu', relu);
  }

  forward(x: Tensor): Tensor {
    if (this.batchNorm.hasForwardHooks() || this.relu.hasForwardHooks())
      return this.relu.call(this.batchNorm.call(x));
    return this.batchNorm.forwardRelu(x);
  }

  override describe(): string {
    return `${this.batchNorm.describe()} + ReLU`;
  }
}

/**
 * The first of the two entries that stand for Conv2d → BatchNorm (→ ReLU) in a Sequential's run
 * list (see fuseBatchNormRelu), at the convolution's position. Where the inference rewrite applies
 * (src/nn/inference.ts) it computes the whole run as one fused convolution and hands the result to
 * its partner, FusedConvolutionTail, which passes it through; otherwise it is the convolution alone
 * and the partner runs the batch norm (and ReLU) as before. Two entries rather than one keep every
 * layer at its own position, so errors name the layer that failed and the memory between the
 * convolution and the batch norm is reused as before when the rewrite does not apply.
 */
export class FusedConvolutionHead extends Module {
  static override readonly keepsNoTensors = true;
  /** The output of the last fused call, until the tail takes it (it holds it for one step only). */
  pending: Tensor | null = null;

  constructor(
    readonly conv: Conv2d,
    readonly batchNorm: BatchNorm,
    readonly relu: ReLU | null,
  ) {
    super();
    this.addModule('conv', conv);
    this.addModule('batchNorm', batchNorm);
    if (relu !== null) this.addModule('relu', relu);
  }

  forward(x: Tensor): Tensor {
    const layers = this.relu === null ? [this.conv, this.batchNorm] : [this.conv, this.batchNorm, this.relu];
    if (inferenceFusionApplies(x, layers)) {
      const y = convBatchNormInference(x, this.conv, this.batchNorm, { relu: this.relu !== null });
      this.pending = y;
      return y;
    }
    this.pending = null;
    return this.conv.call(x);
  }

  override describe(): string {
    return `${this.conv.describe()} + ${this.batchNorm.describe()}${this.relu === null ? '' : ' + ReLU'}`;
  }
}

/**
 * The second entry (see FusedConvolutionHead), at the batch norm's position: the head's fused
 * output passes through; anything else goes to the batch norm (or BatchNormRelu).
 */
export class FusedConvolutionTail extends Module {
  static override readonly keepsNoTensors = true;

  constructor(
    readonly head: FusedConvolutionHead,
    readonly rest: Module,
  ) {
    super();
    this.addModule('rest', rest);
  }

  forward(x: Tensor): Tensor {
    if (this.head.pending === x) {
      this.head.pending = null;
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
 * replaced by one BatchNormRelu wrapping both. A Conv2d without bias directly followed by a
 * BatchNorm (or BatchNorm2d) of its channels, and optionally a ReLU, becomes a FusedConvolutionHead
 * and FusedConvolutionTail pair, which runs as one fused convolution where the inference rewrite
 * applies (src/nn/inference.ts) and as the layers (with BatchNorm + ReLU fused) elsewhere. Sequential applies it to the layers it runs unless
 * its fuseBatchNormRelu switch is off; layers is not changed.
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
      // The inference rewrite's pair of entries (FusedConvolutionHead).
      const batchNorm = next as BatchNorm;
      const relu = afterNext?.constructor === ReLU ? (afterNext as ReLU) : null;
      const head = new FusedConvolutionHead(layer as Conv2d, batchNorm, relu);
      modules.push(
        head,
        new FusedConvolutionTail(head, relu === null ? batchNorm : new BatchNormRelu(batchNorm, relu)),
      );
      positions.push(index, index + 1);
      index += relu === null ? 1 : 2;
      continue;
    }
    positions.push(index);
    if (layer instanceof BatchNorm && next?.constructor === ReLU) {
      modules.push(new BatchNormRelu(layer, next as ReLU));
      index++;
    } else {
      modules.push(layer);
    }
  }
  return { modules, positions };
}
