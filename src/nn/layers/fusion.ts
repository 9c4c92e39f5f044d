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
import { Module } from '../module.js';
import { ReLU } from './activation.js';
import { BatchNorm } from './batchnorm.js';

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
 * replaced by one BatchNormRelu wrapping both. Sequential applies it to the layers it runs unless
 * its fuseBatchNormRelu switch is off; layers is not changed.
 *
 * @example
 * fuseBatchNormRelu([conv, batchNorm, relu, pool]).modules // [conv, BatchNormRelu(batchNorm, relu), pool]
 */
export function fuseBatchNormRelu(layers: readonly Module[]): FusedLayers {
  const modules: Module[] = [];
  const positions: number[] = [];
  for (let index = 0; index < layers.length; index++) {
    const layer = layers[index]!;
    const next = layers[index + 1];
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
