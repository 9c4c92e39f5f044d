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
 *
 * Calling: a layer author overrides forward(); everyone else calls call(), which runs the forward
 * pre-hooks and hooks around it, as calling a PyTorch module does. Tracing (summary()), counting
 * (bench/flops.ts) and inspecting activations are hooks, never replaced methods.
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

/** A module's class as a value (its constructor), for reading what the class declares. */
type ModuleClass = abstract new (...args: never[]) => Module;

/**
 * Whether module and all its descendants keep no reference to their input, output or any tensor
 * made in between once their call returns, so that a chain container may let the backward pass
 * reuse the memory of the activations between two such modules (see runChain in chain.ts).
 *
 * A class says so with its own static `keepsNoTensors` (see Module.keepsNoTensors); one that does
 * not declare it itself, a subclass of a declared class included, counts as keeping tensors, which
 * only forgoes the reuse. A module with forward hooks counts as keeping tensors too: a hook is user
 * code that may hold on to what it sees.
 */
export function keepsNoTensors(module: Module): boolean {
  return (
    ownClassDeclares(module, 'keepsNoTensors') &&
    !module.hasForwardHooks() &&
    module.children().every(keepsNoTensors)
  );
}

/** Whether module's own class (not a parent class) sets the static flag to true. */
function ownClassDeclares(module: Module, flag: 'keepsNoTensors' | 'independentSamples'): boolean {
  const moduleClass = module.constructor as typeof Module;
  return Object.hasOwn(moduleClass, flag) && moduleClass[flag];
}

/**
 * Whether module computes each sample (each index along its input's first dimension) from that
 * sample alone, with bits that do not depend on the rest of the batch, now: so that a batch may run
 * in parts whose outputs, put together, are the whole batch's bits (see Sequential). A class says so
 * with its own static `independentSamples` (never inherited, as keepsNoTensors: a subclass may mix
 * its samples), its instance with samplesIndependentNow() (a batch norm using batch statistics
 * mixes them); a module with forward hooks never counts (a hook must see the whole batch), and
 * neither does one with a child that does not.
 */
export function computesSamplesIndependently(module: Module): boolean {
  return (
    ownClassDeclares(module, 'independentSamples') &&
    module.samplesIndependentNow() &&
    !module.hasForwardHooks() &&
    module.children().every(computesSamplesIndependently)
  );
}

/**
 * Declares that the forward of these classes (exactly these, not subclasses) keeps no reference to
 * its input or output after returning. Kept for existing callers: declaring
 * `static override readonly keepsNoTensors = true` in the class body does the same and is what
 * tensile's own layers do.
 */
export function declareKeepsNoTensors(...classes: ModuleClass[]): void {
  for (const moduleClass of classes)
    Object.defineProperty(moduleClass, 'keepsNoTensors', { value: true, configurable: true });
}

/**
 * Runs before a module's forward (see Module.call) with the input forward is about to get; returns
 * a tensor to give forward instead, or nothing to keep the input.
 */
export type ForwardPreHook<M extends Module = Module> = (
  module: M,
  input: Tensor,
) => Tensor | undefined | void;

/**
 * Runs after a module's forward (see Module.call) with the input forward got (after the pre-hooks)
 * and its output; returns a tensor to return from call() instead, or nothing to keep the output.
 */
export type ForwardHook<M extends Module = Module> = (
  module: M,
  input: Tensor,
  output: Tensor,
) => Tensor | undefined | void;

/** What registering a hook returns: remove() unregisters it (a second remove() does nothing). */
export interface HookHandle {
  remove(): void;
}

export abstract class Module {
  /**
   * Whether forward keeps no reference to its input, output or any tensor it made once it returns
   * (no field holds one, no closure captures one). Read from the class that declares it only, never
   * inherited (see keepsNoTensors()): a subclass may keep what its parent did not, so it declares
   * its own, and one that does not gets this safe default, false, which forgoes memory reuse and
   * changes no result. Every layer tensile exports declares it (test/module-hooks.test.ts checks).
   */
  static readonly keepsNoTensors: boolean = false;

  /**
   * Whether forward computes each sample from that sample alone, with bits independent of the rest
   * of the batch (see computesSamplesIndependently()). Read from the declaring class only, never
   * inherited; the default, false, only keeps Sequential from running large inference batches in
   * parts.
   */
  static readonly independentSamples: boolean = false;

  /**
   * For a class that declares independentSamples: whether that holds in the module's current state
   * (false for a batch norm that uses batch statistics, or dropout in training). True by default.
   */
  samplesIndependentNow(): boolean {
    return true;
  }

  /** Whether the module computes in training mode (see the class comment). */
  training = true;
  private readonly parameterSlots = new Map<string, Parameter | null>();
  private readonly bufferSlots = new Map<string, Tensor>();
  private readonly childSlots = new Map<string, Module>();
  /**
   * Hooks in registration order, each under a key of its own (one function may be registered
   * twice); null while there are none, so that call() costs one check.
   */
  private forwardPreHooks: Map<symbol, ForwardPreHook> | null = null;
  private forwardHooks: Map<symbol, ForwardHook> | null = null;

  /**
   * y = f(x): what a layer computes, the method a layer author overrides. Shapes are documented on
   * each layer. Callers, containers included, use call(), which also runs the hooks.
   */
  abstract forward(x: Tensor): Tensor;

  /**
   * Runs the module on x: the forward pre-hooks in registration order (each may replace the
   * input), forward, then the forward hooks in registration order (each may replace the output).
   * The entry point for users, the training loop and containers, as calling a PyTorch module.
   */
  call(x: Tensor): Tensor {
    if (this.forwardPreHooks === null && this.forwardHooks === null) return this.forward(x);
    let input = x;
    // Copies, so that a hook removing itself or another does not change this call's list.
    if (this.forwardPreHooks !== null) {
      for (const hook of [...this.forwardPreHooks.values()]) input = hook(this, input) ?? input;
    }
    let output = this.forward(input);
    if (this.forwardHooks !== null) {
      for (const hook of [...this.forwardHooks.values()]) output = hook(this, input, output) ?? output;
    }
    return output;
  }

  /** Registers hook to run before every forward of this module (see call()); PyTorch's register_forward_pre_hook. */
  registerForwardPreHook(hook: ForwardPreHook<this>): HookHandle {
    const hooks = (this.forwardPreHooks ??= new Map());
    const key = Symbol('forward pre-hook');
    hooks.set(key, hook as ForwardPreHook);
    return {
      remove: () => {
        if (this.forwardPreHooks?.delete(key) === true && this.forwardPreHooks.size === 0)
          this.forwardPreHooks = null;
      },
    };
  }

  /** Registers hook to run after every forward of this module (see call()); PyTorch's register_forward_hook. */
  registerForwardHook(hook: ForwardHook<this>): HookHandle {
    const hooks = (this.forwardHooks ??= new Map());
    const key = Symbol('forward hook');
    hooks.set(key, hook as ForwardHook);
    return {
      remove: () => {
        if (this.forwardHooks?.delete(key) === true && this.forwardHooks.size === 0) this.forwardHooks = null;
      },
    };
  }

  /** Whether any forward hook or pre-hook is registered on this module (not its children). */
  hasForwardHooks(): boolean {
    return this.forwardPreHooks !== null || this.forwardHooks !== null;
  }

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
    for (const parameter of this.parameters()) parameter.clearGrad();
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
