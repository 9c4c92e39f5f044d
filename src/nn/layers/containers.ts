/** Containers: Sequential, and Residual to show that non-sequential structure composes. */
import { add, relu } from '../../ops/index.js';
import { formatShape, sizeOf } from '../../tensor/shape.js';
import { allocateUninitialized, Tensor } from '../../tensor/tensor.js';
import { runChain } from '../chain.js';
import { inferenceFusionApplies } from '../inference.js';
import { computesSamplesIndependently, Module, type ReceptiveField } from '../module.js';
import { fuseBatchNormRelu, type FusedLayers } from './fusion.js';

/**
 * Largest activation of one part of an inference batch (see Sequential): near the chip's L2 and L3
 * share per core, so that each layer's output is still in cache when the next reads it. The seed CNN
 * at batch 256 (28² images, 100 KB per sample after its first convolution) ran 12% faster in parts of
 * 32 to 40 samples than whole.
 */
let inferencePartBytes = 4 * 2 ** 20;

/**
 * Sets the largest activation of one part of an inference batch (see Sequential; default 4 MiB) and
 * returns the previous value: for tests, and for measuring the parts on another chip. Sequentials
 * size their parts again on their next batch.
 */
export function setInferencePartBytes(bytes: number): number {
  if (!(bytes > 0)) throw new RangeError(`setInferencePartBytes: bytes must be positive, got ${bytes}`);
  const previous = inferencePartBytes;
  inferencePartBytes = bytes;
  return previous;
}
/**
 * Fewer samples per part than this run whole: each convolution call re-reads (and for Winograd
 * re-transforms) its weights, which small parts would repeat too often.
 */
const minimumPartSamples = 16;

/**
 * Runs modules in order; children are named '0', '1', ... as in PyTorch's nn.Sequential, so
 * state_dict names match (`0.weight`, `1.running_mean`).
 *
 * A BatchNorm directly followed by a ReLU layer runs as one fused op (see fuseBatchNormRelu in
 * fusion.ts): the same values and gradients in one pass over memory, without the intermediate
 * tensor. Set fuseBatchNormRelu to false to run every layer's own forward. The layers run through
 * runChain (chain.ts), which lets the backward pass reuse the memory of the outputs in between.
 *
 * In inference (where the inference rewrite applies, src/nn/inference.ts) a large batch of small
 * samples runs in parts whose activations stay in cache, when every layer computes each sample on
 * its own (computesSamplesIndependently): the outputs are put together in order and have the bits of
 * the whole batch's (the kernels are batch-invariant; tested). The first batch of a sample shape
 * runs whole and sizes the parts; setInferenceFusion(false) turns this off with the rewrite.
 *
 * @example
 * const model = new Sequential(new Dense(4, 8, { activation: 'relu' }), new Dense(8, 2));
 */
export class Sequential extends Module {
  static override readonly keepsNoTensors = true;
  static override readonly independentSamples = true;
  readonly layers: Module[];
  /** Whether forward() runs BatchNorm + ReLU pairs as one op (see the class comment). */
  fuseBatchNormRelu = true;
  /** The rewrite of layers (fuseBatchNormRelu), and the layers it was made from to tell when it is stale. */
  private fused: { from: Module[]; run: FusedLayers } | null = null;
  /**
   * Samples per part of an inference batch of this sample shape, sized for this part budget (see
   * inferenceParts); 1: whole.
   */
  private parts: { sampleShape: string; budget: number; samples: number } | null = null;

  constructor(...layers: Module[]) {
    super();
    this.layers = [];
    for (const layer of layers) this.append(layer);
  }

  /** Adds a layer at the end. */
  append(layer: Module): this {
    this.addModule(String(this.layers.length), layer);
    this.layers.push(layer);
    this.parts = null;
    return this;
  }

  /** Replaces the layer at index (head surgery); keeps its name. */
  replace(index: number, layer: Module): void {
    if (index < 0 || index >= this.layers.length)
      throw new RangeError(`Sequential.replace: index ${index} out of range 0..${this.layers.length - 1}`);
    this.layers[index] = layer;
    this.addModule(String(index), layer);
    this.parts = null;
  }

  get length(): number {
    return this.layers.length;
  }

  forward(x: Tensor): Tensor {
    const samples = this.inferenceParts(x);
    if (samples === null) return this.runLayers(x);
    if (samples === 0) {
      // The first batch of this sample shape: run it whole (so that any error names the batch the
      // caller passed) and measure the largest output per sample, which sizes the parts.
      let largest = 0;
      const batch = x.shape[0]!;
      const y = this.runLayers(x, (output) => {
        largest = Math.max(largest, (output.size / Math.max(batch, 1)) * output.data.BYTES_PER_ELEMENT);
      });
      const parts = Math.floor(inferencePartBytes / Math.max(largest, 1));
      this.parts = {
        sampleShape: formatShape(x.shape.slice(1)),
        budget: inferencePartBytes,
        samples: parts >= minimumPartSamples ? parts : 1,
      };
      return y;
    }
    return this.runInParts(x, samples);
  }

  /**
   * The layers on x through runChain (with the BatchNorm + ReLU rewrite unless switched off).
   * observe sees every layer's output (see runChain).
   */
  private runLayers(x: Tensor, observe?: (output: Tensor) => void): Tensor {
    if (!this.fuseBatchNormRelu) return runChain(this.layers, x, (index) => this.layerName(index), observe);
    const { modules, positions } = this.fusedLayers();
    return runChain(modules, x, (index) => this.layerName(positions[index]!), observe);
  }

  /**
   * Samples per part for running x in parts, 0 when they are not known yet for x's sample shape, or
   * null when x runs whole: only in inference (inferenceFusionApplies: no gradient wanted, no hooks,
   * no batch statistics), only when every layer computes each sample on its own
   * (computesSamplesIndependently), and only where parts of at least minimumPartSamples samples
   * keep the largest activation within inferencePartBytes.
   */
  private inferenceParts(x: Tensor): number | null {
    if (x.rank < 2 || !inferenceFusionApplies(x, this.layers) || !computesSamplesIndependently(this))
      return null;
    const plan = this.parts;
    if (
      plan === null ||
      plan.budget !== inferencePartBytes ||
      plan.sampleShape !== formatShape(x.shape.slice(1))
    )
      return 0;
    return plan.samples > 1 && x.shape[0]! > plan.samples ? plan.samples : null;
  }

  /** x's samples in parts of `samples`, each through the layers, the outputs put together along dim 0. */
  private runInParts(x: Tensor, samples: number): Tensor {
    const batch = x.shape[0]!;
    const perSample = x.size / batch;
    const outputs: Tensor[] = [];
    for (let first = 0; first < batch; first += samples) {
      const count = Math.min(samples, batch - first);
      const part = new Tensor(x.data.subarray(first * perSample, (first + count) * perSample), [
        count,
        ...x.shape.slice(1),
      ]);
      outputs.push(this.runLayers(part));
    }
    const rest = outputs[0]!.shape.slice(1);
    const outputPerSample = sizeOf(rest);
    const data = allocateUninitialized(outputs[0]!.dtype, batch * outputPerSample);
    let offset = 0;
    for (const output of outputs) {
      data.set(output.data.subarray(0, output.size), offset);
      offset += output.size;
    }
    return new Tensor(data, [batch, ...rest]);
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
