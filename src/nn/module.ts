/**
 * Module: the unit of model structure. A module owns parameters (trainable tensors), buffers
 * (state such as batch-norm running statistics, saved with the model but never trained) and child
 * modules, each under a name. Names compose with dots exactly as PyTorch's state_dict does
 * (`0.weight`, `layer1.0.bn1.running_mean`), so weights move between the two frameworks by name.
 *
 * Two independent switches, documented because they are easy to confuse:
 * - `training` (train()/eval()): how layers compute — batch statistics vs running statistics in
 *   batch norm, dropout on or off.
 * - `requiresGrad` on each parameter (freeze()/unfreeze()): whether the optimizer may change it.
 *   Frozen batch-norm layers additionally run in inference mode by default (see BatchNorm).
 */
import { formatShape, shapesEqual } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';

/** A trainable tensor (requiresGrad true unless frozen). */
export class Parameter extends Tensor {
  constructor(value: Tensor) {
    super(value.data, value.shape, true);
  }
}

/** A tensor saved with a module but not trained by gradient descent. */
export type Buffer = Tensor;

/** Raised when weights do not fit a model; lists every offending tensor. */
export class StateDictError extends Error {
  override name = 'StateDictError';
  constructor(
    message: string,
    readonly problems: readonly string[],
  ) {
    super(`${message}:\n  ${problems.join('\n  ')}`);
  }
}

/** Layer classes whose forward keeps no reference to its input or output once it returns. */
const keepingNothing = new WeakSet<abstract new (...args: never[]) => Module>();

/**
 * Declares that the forward of these classes (exactly these, not subclasses) keeps no reference to
 * its input or output after returning: containers may then let the backward pass reuse the memory
 * of the activations between two such layers (see Sequential).
 */
export function declareKeepsNoTensors(...classes: (abstract new (...args: never[]) => Module)[]): void {
  for (const moduleClass of classes) keepingNothing.add(moduleClass);
}

/** Whether module and all its descendants were declared with declareKeepsNoTensors. */
export function keepsNoTensors(module: Module): boolean {
  return (
    keepingNothing.has(module.constructor as abstract new (...args: never[]) => Module) &&
    module.children().every(keepsNoTensors)
  );
}

export abstract class Module {
  /** Whether the module computes in training mode (see the class comment). */
  training = true;
  private readonly parameterSlots = new Map<string, Parameter | null>();
  private readonly bufferSlots = new Map<string, Tensor>();
  private readonly childSlots = new Map<string, Module>();

  /** y = f(x). Shapes are documented on each layer. */
  abstract forward(x: Tensor): Tensor;

  /** A short description of the layer's configuration, for summary(). */
  describe(): string {
    return this.constructor.name;
  }

  /** Registers (or replaces) a parameter under name; null keeps the slot (e.g. bias: false). */
  protected addParameter(name: string, value: Tensor | null): Parameter | null {
    const parameter = value === null ? null : value instanceof Parameter ? value : new Parameter(value);
    this.parameterSlots.set(name, parameter);
    return parameter;
  }

  protected addBuffer(name: string, value: Tensor): Tensor {
    this.bufferSlots.set(name, value);
    return value;
  }

  /** Registers a child module under name (a number for positions in a Sequential). */
  protected addModule<M extends Module>(name: string, module: M): M {
    this.childSlots.set(name, module);
    return module;
  }

  /** Direct children with their names, in registration order. */
  namedChildren(): [string, Module][] {
    return [...this.childSlots.entries()];
  }

  children(): Module[] {
    return [...this.childSlots.values()];
  }

  /** This module and every descendant, with dotted names ('' for this one). */
  namedModules(prefix = ''): [string, Module][] {
    const result: [string, Module][] = [[prefix, this]];
    for (const [name, child] of this.childSlots) {
      result.push(...child.namedModules(prefix === '' ? name : `${prefix}.${name}`));
    }
    return result;
  }

  /** Parameters of this module and its descendants, with state_dict names. */
  namedParameters(): [string, Parameter][] {
    const result: [string, Parameter][] = [];
    for (const [prefix, module] of this.namedModules()) {
      for (const [name, parameter] of module.parameterSlots) {
        if (parameter !== null) result.push([prefix === '' ? name : `${prefix}.${name}`, parameter]);
      }
    }
    return result;
  }

  parameters(): Parameter[] {
    return this.namedParameters().map(([, parameter]) => parameter);
  }

  /** Parameters that the optimizer should update (requiresGrad true). */
  trainableParameters(): Parameter[] {
    return this.parameters().filter((parameter) => parameter.requiresGrad);
  }

  namedBuffers(): [string, Tensor][] {
    const result: [string, Tensor][] = [];
    for (const [prefix, module] of this.namedModules()) {
      for (const [name, buffer] of module.bufferSlots) {
        result.push([prefix === '' ? name : `${prefix}.${name}`, buffer]);
      }
    }
    return result;
  }

  /** Sets training mode on this module and all descendants; returns this. */
  train(mode = true): this {
    for (const [, module] of this.namedModules()) module.training = mode;
    return this;
  }

  /** Inference mode (batch norm uses running statistics, dropout is off); returns this. */
  eval(): this {
    return this.train(false);
  }

  /** Stops gradient updates to every parameter of this module (and descendants). */
  freeze(): this {
    for (const parameter of this.parameters()) parameter.requiresGrad = false;
    return this;
  }

  unfreeze(): this {
    for (const parameter of this.parameters()) parameter.requiresGrad = true;
    return this;
  }

  /** Clears the gradients of all parameters (call before each backward pass). */
  zeroGrad(): void {
    for (const parameter of this.parameters()) parameter.grad = null;
  }

  /** Parameters and buffers by PyTorch state_dict name. The tensors are shared, not copied. */
  stateDict(): Map<string, Tensor> {
    // PyTorch's order: each module's parameters, then its buffers, then its children's.
    const entries = new Map<string, Tensor>();
    for (const [prefix, module] of this.namedModules()) {
      const name = (own: string) => (prefix === '' ? own : `${prefix}.${own}`);
      for (const [own, parameter] of module.parameterSlots)
        if (parameter !== null) entries.set(name(own), parameter);
      for (const [own, buffer] of module.bufferSlots) entries.set(name(own), buffer);
    }
    return entries;
  }

  /**
   * Copies values into this module's parameters and buffers by name. Checks everything first and
   * loads nothing when any tensor is missing, unexpected or of the wrong shape (strict, as PyTorch's
   * default); with strict false, missing and unexpected names are allowed but shapes must still fit.
   */
  loadStateDict(
    values: ReadonlyMap<string, { data: ArrayLike<number>; shape: readonly number[] }>,
    strict = true,
  ): void {
    const own = this.stateDict();
    const problems: string[] = [];
    for (const [name, target] of own) {
      const source = values.get(name);
      if (source === undefined) {
        if (strict) problems.push(`missing: '${name}' (expected shape ${formatShape(target.shape)})`);
      } else if (!shapesEqual(source.shape, target.shape)) {
        problems.push(
          `shape mismatch: '${name}' expected ${formatShape(target.shape)}, got ${formatShape(source.shape)}`,
        );
      }
    }
    if (strict) {
      for (const name of values.keys()) {
        if (!own.has(name))
          problems.push(`unexpected: '${name}' (the model has no such parameter or buffer)`);
      }
    }
    if (problems.length > 0)
      throw new StateDictError(`weights do not fit ${this.constructor.name}; nothing was loaded`, problems);
    for (const [name, target] of own) {
      const source = values.get(name);
      if (source !== undefined) {
        for (let i = 0; i < target.size; i++) target.data[i] = Number(source.data[i]!);
      }
    }
  }

  /**
   * How this module maps a receptive field: size is the field of one output position measured in
   * input pixels of the network, jump the distance between neighbouring output positions in the same
   * pixels. Layers that do not look at neighbours leave it unchanged.
   */
  receptiveField(field: ReceptiveField): ReceptiveField {
    return field;
  }
}

export interface ReceptiveField {
  size: number;
  jump: number;
}
