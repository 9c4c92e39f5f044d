/** Containers: Sequential, and Residual to show that non-sequential structure composes. */
import { add, relu } from '../../ops/index.js';
import { isGradientEnabled } from '../../autograd/graph.js';
import { allocationCount, markInternal, releaseInternal, storageOf } from '../../tensor/memory.js';
import { ShapeError } from '../../tensor/shape.js';
import type { Tensor } from '../../tensor/tensor.js';
import { declareKeepsNoTensors, keepsNoTensors, Module, type ReceptiveField } from '../module.js';
import { ReLU } from './activation.js';
import { BatchNorm } from './batchnorm.js';

/**
 * Runs modules in order; children are named '0', '1', ... as in PyTorch's nn.Sequential, so
 * state_dict names match (`0.weight`, `1.running_mean`).
 *
 * A BatchNorm directly followed by a ReLU layer runs as one fused op (BatchNorm.forwardRelu): the
 * same values and gradients in one pass over memory, without the intermediate tensor. Set
 * fuseBatchNormRelu to false to run every layer's own forward.
 *
 * @example
 * const model = new Sequential(new Dense(4, 8, { activation: 'relu' }), new Dense(8, 2));
 */
export class Sequential extends Module {
  readonly layers: Module[];
  /** Whether forward() runs BatchNorm + ReLU pairs as one op (see the class comment). */
  fuseBatchNormRelu = true;

  constructor(...layers: Module[]) {
    super();
    this.layers = [];
    for (const layer of layers) this.append(layer);
  }

  /** Adds a layer at the end. */
  append(layer: Module): this {
    this.addModule(String(this.layers.length), layer);
    this.layers.push(layer);
    return this;
  }

  /** Replaces the layer at index (head surgery); keeps its name. */
  replace(index: number, layer: Module): void {
    if (index < 0 || index >= this.layers.length)
      throw new RangeError(`Sequential.replace: index ${index} out of range 0..${this.layers.length - 1}`);
    this.layers[index] = layer;
    this.addModule(String(index), layer);
  }

  get length(): number {
    return this.layers.length;
  }

  forward(x: Tensor): Tensor {
    // An output passed between two layers that keep no tensors (tensile's own, see
    // declareKeepsNoTensors) is seen by the next layer and the recorded graph only: marked internal,
    // the backward pass reuses its memory once done with it. Under noGrad nothing records it, so its
    // memory is reused as soon as the next layer has returned.
    const since = allocationCount();
    const recording = isGradientEnabled();
    const inner: Tensor[] = [];
    let y = x;
    let producerKeepsNothing = false;
    for (let index = 0; index < this.layers.length; index++) {
      const layer = this.layers[index]!;
      const next = this.layers[index + 1];
      const keepsNothing = keepsNoTensors(layer);
      const input = y;
      const internal = index > 0 && producerKeepsNothing && keepsNothing;
      if (internal && y.requiresGrad) inner.push(y);
      const fused =
        this.fuseBatchNormRelu &&
        layer instanceof BatchNorm &&
        next !== undefined &&
        next.constructor === ReLU;
      try {
        y = fused ? layer.forwardRelu(y) : layer.forward(y);
      } catch (error) {
        // Name the failing layer by its state_dict position, so the user knows which one to fix.
        if (error instanceof ShapeError)
          error.message = `layer ${index} ${layer.describe()}: ${error.message}`;
        throw error;
      }
      if (internal && !recording && storageOf(input.data) !== storageOf(y.data))
        releaseInternal(input.data, since);
      producerKeepsNothing = keepsNothing && (!fused || keepsNoTensors(next));
      if (fused) index++;
    }
    // The last layer may return a view of an inner output (Flatten shares memory): that one is the
    // caller's.
    for (const tensor of inner)
      if (storageOf(tensor.data) !== storageOf(y.data)) markInternal(tensor.data, since);
    return y;
  }

  override receptiveField(field: ReceptiveField): ReceptiveField {
    return this.layers.reduce((current, layer) => layer.receptiveField(current), field);
  }

  /**
   * No options of its own: the layers are its children, described each by their own config()
   * (saveModel and exporters read this). fuseBatchNormRelu is a speed switch with the same values
   * either way, so it is not part of the description.
   */
  config(): Record<string, never> {
    return {};
  }

  override describe(): string {
    return `Sequential(${this.layers.length})`;
  }
}

/**
 * y = activation(body(x) + shortcut(x)): a residual block. shortcut defaults to the identity; pass
 * a module (e.g. a 1×1 convolution with batch norm) when body changes the shape.
 */
export class Residual extends Module {
  readonly body: Module;
  readonly shortcut: Module | null;

  constructor(
    body: Module,
    shortcut: Module | null = null,
    readonly activate = true,
  ) {
    super();
    this.body = this.addModule('body', body);
    this.shortcut = shortcut === null ? null : this.addModule('shortcut', shortcut);
  }

  forward(x: Tensor): Tensor {
    const sum = add(this.body.forward(x), this.shortcut === null ? x : this.shortcut.forward(x));
    return this.activate ? relu(sum) : sum;
  }

  override receptiveField(field: ReceptiveField): ReceptiveField {
    const body = this.body.receptiveField(field);
    const shortcut = this.shortcut?.receptiveField(field) ?? field;
    return body.size >= shortcut.size ? body : shortcut;
  }

  /** Whether the sum is activated; body and shortcut are children with configs of their own. */
  config(): { activate: boolean } {
    return { activate: this.activate };
  }

  override describe(): string {
    return 'Residual';
  }
}

declareKeepsNoTensors(Sequential, Residual);
