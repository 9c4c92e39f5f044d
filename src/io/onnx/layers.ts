/**
 * Layers that ONNX graphs need beyond tensile's own (the glue exporters put between convolutions:
 * reshapes, transposes, clips, explicit padding, constant arithmetic) and GraphModule, the container
 * for graphs that are not a chain (residual adds, concatenations). Each one is trainable through
 * tensile's autograd and exported back to the ONNX operator it came from.
 */
import { add, concat, maximum, minimum, mul, permute, reshape } from '../../ops/index.js';
import { formatShape, ShapeError } from '../../tensor/shape.js';
import { full, type Tensor, zeros } from '../../tensor/tensor.js';
import { Module } from '../../nn/module.js';

/** x: [N, ...] → [N, ...shape]; shape is one example's shape and may hold one -1. */
export class Reshape extends Module {
  constructor(readonly shape: readonly number[]) {
    super();
  }
  forward(x: Tensor): Tensor {
    return reshape(x, [x.shape[0]!, ...this.shape]);
  }
  override describe(): string {
    return `Reshape(${formatShape(this.shape)})`;
  }
  /** For whole-model files (saveModel). */
  config(): { shape: number[] } {
    return { shape: [...this.shape] };
  }
}

/** Reorders axes; the batch axis stays first (permutation[0] is 0). */
export class Permute extends Module {
  constructor(readonly permutation: readonly number[]) {
    super();
    if (permutation[0] !== 0)
      throw new RangeError(`Permute: the batch axis must stay first, got [${permutation.join(', ')}]`);
  }
  forward(x: Tensor): Tensor {
    return permute(x, this.permutation);
  }
  override describe(): string {
    return `Permute(${this.permutation.join(', ')})`;
  }
  config(): { permutation: number[] } {
    return { permutation: [...this.permutation] };
  }
}

/** min(max(x, minimum), maximum), e.g. ReLU6 with 0 and 6; an infinite bound is not applied. */
export class Clip extends Module {
  constructor(
    readonly minimum = -Infinity,
    readonly maximum = Infinity,
  ) {
    super();
    if (!(minimum <= maximum)) throw new RangeError(`Clip: minimum ${minimum} exceeds maximum ${maximum}`);
  }
  forward(x: Tensor): Tensor {
    let y = x;
    if (Number.isFinite(this.minimum)) y = maximum(y, full([1], this.minimum, x.dtype));
    if (Number.isFinite(this.maximum)) y = minimum(y, full([1], this.maximum, x.dtype));
    return y;
  }
  override describe(): string {
    return `Clip(${this.minimum}, ${this.maximum})`;
  }
  /** JSON has no infinity: an absent bound is null. */
  config(): { minimum: number | null; maximum: number | null } {
    return {
      minimum: Number.isFinite(this.minimum) ? this.minimum : null,
      maximum: Number.isFinite(this.maximum) ? this.maximum : null,
    };
  }
}

/** Zero padding of the two spatial axes of [N, C, H, W]: pads are [top, left, bottom, right]. */
export class ZeroPad2d extends Module {
  constructor(readonly pads: readonly [number, number, number, number]) {
    super();
    if (!pads.every((pad) => Number.isInteger(pad) && pad >= 0))
      throw new RangeError(`ZeroPad2d: pads must be non-negative integers, got [${pads.join(', ')}]`);
  }
  forward(x: Tensor): Tensor {
    if (x.rank !== 4) throw new ShapeError(`ZeroPad2d: expected [N, C, H, W], got ${formatShape(x.shape)}`);
    const [top, left, bottom, right] = this.pads;
    // Built from concatenations, so the gradient is concat's: the padding's share is dropped.
    const [batch, channels, , width] = x.shape as [number, number, number, number];
    const rows = [
      ...(top > 0 ? [zeros([batch, channels, top, width], x.dtype)] : []),
      x,
      ...(bottom > 0 ? [zeros([batch, channels, bottom, width], x.dtype)] : []),
    ];
    const tall = rows.length === 1 ? x : concat(rows, 2);
    const height = tall.shape[2]!;
    const columns = [
      ...(left > 0 ? [zeros([batch, channels, height, left], x.dtype)] : []),
      tall,
      ...(right > 0 ? [zeros([batch, channels, height, right], x.dtype)] : []),
    ];
    return columns.length === 1 ? tall : concat(columns, 3);
  }
  override describe(): string {
    return `ZeroPad2d(${this.pads.join(', ')})`;
  }
  config(): { pads: [number, number, number, number] } {
    return { pads: [...this.pads] };
  }
}

/**
 * x + constant or x · constant with broadcasting (a normalisation's fixed shift or scale, say). The
 * constant is a buffer, not a parameter: it is saved with the model but not trained.
 */
export class ConstantArithmetic extends Module {
  readonly constant: Tensor;
  constructor(
    readonly operation: 'add' | 'mul',
    constant: Tensor,
  ) {
    super();
    this.constant = this.addBuffer('constant', constant);
  }
  forward(x: Tensor): Tensor {
    return this.operation === 'add' ? add(x, this.constant) : mul(x, this.constant);
  }
  override describe(): string {
    return `Constant${this.operation === 'add' ? 'Add' : 'Mul'}(${formatShape(this.constant.shape)})`;
  }
  /** The constant itself is a buffer, saved with the weights; the config records its shape. */
  config(): { operation: 'add' | 'mul'; shape: number[] } {
    return { operation: this.operation, shape: [...this.constant.shape] };
  }
}

/** A GraphModule step as written in model files: a module step names its child by the step index. */
export type GraphStepConfig =
  | { kind: 'module'; input: number }
  | { kind: 'add' | 'mul'; inputs: [number, number] }
  | { kind: 'concat'; inputs: number[]; axis: number };

/** One step of a GraphModule: a module applied to one value, or an operation joining values. */
export type GraphStep =
  | { kind: 'module'; module: Module; input: number }
  | { kind: 'add' | 'mul'; inputs: [number, number] }
  | { kind: 'concat'; inputs: number[]; axis: number };

/**
 * A network that is not a chain: values are numbered, 0 is the input, and step i writes value i + 1
 * from earlier values. Modules are children named by their step index, so state_dict names are
 * `3.weight`, `7.running_mean`, …; output is the value returned.
 */
export class GraphModule extends Module {
  readonly steps: readonly GraphStep[];
  readonly output: number;

  constructor(steps: readonly GraphStep[], output: number) {
    super();
    steps.forEach((step, index) => {
      const inputs = step.kind === 'module' ? [step.input] : step.inputs;
      if (inputs.some((value) => !Number.isInteger(value) || value < 0 || value > index))
        throw new RangeError(
          `GraphModule: step ${index} reads a value not yet computed: [${inputs.join(', ')}]`,
        );
      if (step.kind === 'module') this.addModule(String(index), step.module);
    });
    if (!Number.isInteger(output) || output < 0 || output > steps.length)
      throw new RangeError(`GraphModule: output ${output} is not one of the values 0..${steps.length}`);
    this.steps = steps;
    this.output = output;
  }

  forward(x: Tensor): Tensor {
    const values: Tensor[] = [x];
    for (const step of this.steps) {
      switch (step.kind) {
        case 'module':
          values.push(step.module.call(values[step.input]!));
          break;
        case 'add':
          values.push(add(values[step.inputs[0]]!, values[step.inputs[1]]!));
          break;
        case 'mul':
          values.push(mul(values[step.inputs[0]]!, values[step.inputs[1]]!));
          break;
        case 'concat':
          values.push(
            concat(
              step.inputs.map((index) => values[index]!),
              step.axis,
            ),
          );
          break;
      }
    }
    return values[this.output]!;
  }

  override describe(): string {
    return `GraphModule(${this.steps.length} steps)`;
  }
  /** The wiring; the modules are the children, named by their step index. */
  config(): { steps: GraphStepConfig[]; output: number } {
    return {
      steps: this.steps.map((step) =>
        step.kind === 'module'
          ? { kind: 'module', input: step.input }
          : step.kind === 'concat'
            ? { kind: 'concat', inputs: [...step.inputs], axis: step.axis }
            : { kind: step.kind, inputs: [...step.inputs] },
      ),
      output: this.output,
    };
  }
}
