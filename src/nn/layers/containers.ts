/** Containers: Sequential, and Residual to show that non-sequential structure composes. */
import { add, relu } from '../../ops/index.js';
import type { Tensor } from '../../tensor/tensor.js';
import { runChain } from '../chain.js';
import { Module, type ReceptiveField } from '../module.js';
import { fuseBatchNormRelu, type FusedLayers } from './fusion.js';

/**
 * Runs modules in order; children are named '0', '1', ... as in PyTorch's nn.Sequential, so
 * state_dict names match (`0.weight`, `1.running_mean`).
 *
 * A BatchNorm directly followed by a ReLU layer runs as one fused op (see fuseBatchNormRelu in
 * fusion.ts): the same values and gradients in one pass over memory, without the intermediate
 * tensor. Set fuseBatchNormRelu to false to run every layer's own forward. The layers run through
 * runChain (chain.ts), which lets the backward pass reuse the memory of the outputs in between.
 *
 * @example
 * const model = new Sequential(new Dense(4, 8, { activation: 'relu' }), new Dense(8, 2));
 */
export class Sequential extends Module {
  static override readonly keepsNoTensors = true;
  readonly layers: Module[];
  /** Whether forward() runs BatchNorm + ReLU pairs as one op (see the class comment). */
  fuseBatchNormRelu = true;
  /** The rewrite of layers (fuseBatchNormRelu), and the layers it was made from to tell when it is stale. */
  private fused: { from: Module[]; run: FusedLayers } | null = null;

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
    if (!this.fuseBatchNormRelu) return runChain(this.layers, x, (index) => this.layerName(index));
    const { modules, positions } = this.fusedLayers();
    return runChain(modules, x, (index) => this.layerName(positions[index]!));
  }

  /** The failing layer by its state_dict position, for error messages. */
  private layerName(index: number): string {
    return `layer ${index} ${this.layers[index]!.describe()}`;
  }

  /** fuseBatchNormRelu(this.layers), made again only when the layers changed. */
  private fusedLayers(): FusedLayers {
    const current = this.fused;
    if (
      current !== null &&
      current.from.length === this.layers.length &&
      current.from.every((layer, index) => layer === this.layers[index])
    )
      return current.run;
    const run = fuseBatchNormRelu(this.layers);
    this.fused = { from: [...this.layers], run };
    return run;
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
  static override readonly keepsNoTensors = true;
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
    const sum = add(this.body.call(x), this.shortcut === null ? x : this.shortcut.call(x));
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
