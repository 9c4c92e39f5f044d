/**
 * Head surgery: a new classifier for a new number of classes, and the switch from a Flatten + FC head
 * to a GAP + FC one (DL0011: far fewer parameters, and any input size).
 */
import { defaultWeight } from '../nn/init.js';
import type { Module } from '../nn/module.js';
import { BatchNorm } from '../nn/layers/batchnorm.js';
import { Sequential } from '../nn/layers/containers.js';
import { Conv2d } from '../nn/layers/conv.js';
import { Dense } from '../nn/layers/dense.js';
import { Flatten, GlobalAvgPool2d } from '../nn/layers/pooling.js';
import { ResNet } from '../models/resnet.js';
import type { Random } from '../tensor/random.js';

export interface ReplaceHeadOptions {
  /** Generator for the new layer's initial weights (default: the one manualSeed seeds). */
  random?: Random;
}

/** The last Dense layer in forward order and the container that holds it. */
function findClassifier(model: Module): { parent: Module; name: string; layer: Dense } {
  let found: { parent: Module; name: string; layer: Dense } | undefined;
  for (const [, parent] of model.namedModules()) {
    for (const [name, child] of parent.namedChildren())
      if (child instanceof Dense) found = { parent, name, layer: child };
  }
  if (found === undefined)
    throw new TypeError(`replaceHead: ${model.describe()} has no Dense layer to replace`);
  return found;
}

/**
 * Replaces the classifier (the model's last Dense layer: index 16 of the seed CNN, `fc` of a ResNet)
 * with a freshly initialised Dense(inFeatures → classes), keeping its state_dict name and its bias
 * setting. Returns the new layer, which is trainable.
 *
 * @example
 * const model = seedCnn({ channels: [8, 16] });
 * loadWeights(model, 'pretrained/seed-cnn-fashion-mnist.safetensors');
 * replaceHead(model, 5); // now [N, 1, 28, 28] → [N, 5]
 */
export function replaceHead(model: Module, classes: number, options: ReplaceHeadOptions = {}): Dense {
  if (!Number.isInteger(classes) || classes < 1)
    throw new RangeError(`replaceHead: classes must be a positive integer, got ${classes}`);
  const { parent, name, layer } = findClassifier(model);
  const head = new Dense(layer.inFeatures, classes, { bias: layer.bias !== null });
  if (options.random !== undefined) {
    head.weight.data.set(defaultWeight(head.weight.shape, layer.inFeatures, options.random).data);
    head.bias?.data.set(defaultWeight([classes], layer.inFeatures, options.random).data);
  }
  if (parent instanceof ResNet && name === 'fc') parent.replaceClassifier(head);
  else if (parent instanceof Sequential) parent.replace(Number(name), head);
  else
    throw new TypeError(
      `replaceHead: the classifier sits in a ${parent.describe()}; tensile replaces layers of a Sequential or a ResNet's fc`,
    );
  return head;
}

/** The number of outputs of the model's classifier (its last Dense layer). */
export function classifierOutputs(model: Module): number {
  return findClassifier(model).layer.outFeatures;
}

export interface FlattenToGapOptions {
  /**
   * 'pooled' (default): the new FC's weight for channel c is the sum of the old weights over c's
   * positions, so for feature maps that are constant over space the new head gives exactly the old
   * logits — it keeps what the old head knew. 'fresh': a newly initialised layer.
   */
  weights?: 'pooled' | 'fresh';
  /** Channels of the last feature map (default: read from the last Conv2d or BatchNorm before Flatten). */
  channels?: number;
}

/**
 * Swaps a Flatten + Dense head for global average pooling + Flatten + Dense. The body's layers are
 * shared, not copied; the result is a new Sequential, because the layer count (and so the state_dict
 * names of the head) changes: seedCnn({ head: 'flatten' }) becomes exactly seedCnn()'s layout.
 * Input [N, C, H, W] → logits [N, classes] as before, with C·classes + classes head parameters
 * instead of C·H·W·classes + classes.
 */
export function flattenToGap(model: Sequential, options: FlattenToGapOptions = {}): Sequential {
  const layers = model.layers;
  const flattenIndex = layers.findIndex(
    (layer, i) => layer instanceof Flatten && layers[i + 1] instanceof Dense,
  );
  if (flattenIndex < 0)
    throw new TypeError('flattenToGap: the model has no Flatten followed by a Dense layer');
  const old = layers[flattenIndex + 1] as Dense;
  let channels = options.channels;
  for (let i = flattenIndex - 1; channels === undefined && i >= 0; i--) {
    const layer = layers[i]!;
    if (layer instanceof Conv2d) channels = layer.outChannels;
    else if (layer instanceof BatchNorm) channels = layer.channels;
  }
  if (channels === undefined || old.inFeatures % channels !== 0) {
    throw new RangeError(
      `flattenToGap: cannot split the head's ${old.inFeatures} inputs into channels (found ${String(channels)}); pass options.channels`,
    );
  }
  const positions = old.inFeatures / channels;
  const head = new Dense(channels, old.outFeatures, { bias: old.bias !== null });
  if ((options.weights ?? 'pooled') === 'pooled') {
    // Flatten orders a [C, H, W] map channel-major, so channel c's inputs are c·HW … c·HW + HW − 1.
    for (let k = 0; k < old.outFeatures; k++) {
      for (let c = 0; c < channels; c++) {
        let sum = 0;
        for (let p = 0; p < positions; p++) sum += old.weight.data[k * old.inFeatures + c * positions + p]!;
        head.weight.data[k * channels + c] = sum;
      }
    }
    if (old.bias !== null) head.bias!.data.set(old.bias.data);
  }
  return new Sequential(
    ...layers.slice(0, flattenIndex),
    new GlobalAvgPool2d(),
    new Flatten(),
    head,
    ...layers.slice(flattenIndex + 2),
  );
}
