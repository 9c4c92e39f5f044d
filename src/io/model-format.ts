/**
 * Whole-model files: one safetensors file that holds a model's architecture, its weights and buffers
 * and what it needs at prediction time, so `loadModel(file)` gives back a working model without the
 * code that built it.
 *
 * Layout: the tensors are the model's state_dict under PyTorch's names (so `loadWeights` and
 * PyTorch's `safetensors.torch.load_file` read the same file), and the safetensors metadata carries
 *   format: 'tensile-model', version: MODEL_FORMAT_VERSION,
 *   architecture: a JSON tree of { type, options, children } (see ModuleDescription),
 *   extras: JSON (input shape, class names, normalisation; see ModelExtras),
 * and any string metadata the caller adds (test accuracy, dataset, ...).
 *
 * Each layer describes itself with a `config()` method that returns its constructor's options; the
 * table below maps each type name to the class and to the function that builds it back, in one
 * typed place. Modules of your own take part with registerModule. After rebuilding, the model's own
 * description is compared with the file's, so a model whose structure cannot be rebuilt from its
 * configs is refused rather than loaded differently.
 *
 * This module works on bytes and touches no file system (the browser build uses it as it is);
 * ./model-file.ts adds saveModel and loadModel on paths.
 */
import {
  Clip,
  ConstantArithmetic,
  GraphModule,
  type GraphStep,
  Permute,
  Reshape,
  ZeroPad2d,
} from './onnx/layers.js';
import { zeros } from '../tensor/tensor.js';
import {
  ELU,
  GELU,
  LeakyReLU,
  LogSoftmax,
  ReLU,
  Sigmoid,
  Softmax,
  Tanh,
  Activation,
} from '../nn/layers/activation.js';
import { BatchNorm, BatchNorm1d, BatchNorm2d } from '../nn/layers/batchnorm.js';
import { Residual, Sequential } from '../nn/layers/containers.js';
import { Conv2d } from '../nn/layers/conv.js';
import { Dense } from '../nn/layers/dense.js';
import { Dropout } from '../nn/layers/dropout.js';
import { LayerNorm } from '../nn/layers/layernorm.js';
import { AvgPool2d, Flatten, GlobalAvgPool2d, GlobalMaxPool2d, MaxPool2d } from '../nn/layers/pooling.js';
import type { Module } from '../nn/module.js';
import { BasicBlock, Bottleneck, ResNet } from '../models/resnet.js';
import { assertFiniteState } from '../tensor/finite.js';
import {
  parseSafetensors,
  type SafetensorsEntry,
  type SafetensorsFile,
  type SafetensorsInput,
  serializeSafetensors,
} from './safetensors-format.js';

/**
 * Version of the model-file layout, stored as metadata `version`. Bump it when a file written by the
 * new code could be misread by the old: the old code then refuses the file by name instead.
 */
export const MODEL_FORMAT_VERSION = 1;

/** The metadata `format` of whole-model files (weights-only files say 'tensile-weights'). */
export const MODEL_FORMAT = 'tensile-model';

export type ConfigValue = null | boolean | number | string | ConfigValue[] | { [key: string]: ConfigValue };

/** One module in a model file: its registered type name, its config() and its named children. */
export interface ModuleDescription {
  type: string;
  options: { [key: string]: ConfigValue };
  /** Children by state_dict name, in registration order; absent when there are none. */
  children?: { [name: string]: ModuleDescription };
}

/** A module that can describe itself: config() returns its constructor's options as plain JSON. */
export interface ConfigurableModule extends Module {
  config(): object;
}

type ConfigOf<M> = M extends { config(): infer C } ? C : never;

/** The children a container finds in the file while it is rebuilt (see ModuleRegistration). */
export interface ChildBuilder {
  /** Names of the children the file records for this module, in order. */
  readonly names: readonly string[];
  /** Builds the child the file records under name; throws naming it when there is none. */
  build(name: string): Module;
  /** Builds the child under name, or null when the file records none (an optional child). */
  buildOptional(name: string): Module | null;
}

/**
 * How a module type takes part in model files: its class (matched exactly, not by subclass, and
 * not by class name, which minifiers change and two libraries may share) and how to build one from
 * the options its config() returned. Containers build their children through `children`; modules
 * that make their own children (a ResNet) need not.
 */
export interface ModuleRegistration<M extends ConfigurableModule> {
  moduleClass: abstract new (...args: never[]) => M;
  fromConfig(options: ConfigOf<M>, children: ChildBuilder): M;
}

/** Ties a class to its builder with the options type checked against the class's config(). */
function registration<M extends ConfigurableModule>(
  moduleClass: abstract new (...args: never[]) => M,
  fromConfig: (options: ConfigOf<M>, children: ChildBuilder) => M,
): ModuleRegistration<M> {
  return { moduleClass, fromConfig };
}

/** Builds the children a Sequential records, in order ('0', '1', ...). */
function sequentialFrom(children: ChildBuilder): Sequential {
  const model = new Sequential();
  children.names.forEach((name, index) => {
    if (name !== String(index))
      throw new TypeError(`a Sequential's children are named 0, 1, ...; child ${index} is named '${name}'`);
    model.append(children.build(name));
  });
  return model;
}

/** Every module type tensile itself has, by the name written in files. */
const builtInModules = {
  Conv2d: registration(Conv2d, (c) => new Conv2d(c.inChannels, c.outChannels, c.kernelSize, c)),
  Dense: registration(Dense, (c) => new Dense(c.inFeatures, c.outFeatures, c)),
  BatchNorm: registration(BatchNorm, (c) => new BatchNorm(c.channels, c)),
  BatchNorm1d: registration(BatchNorm1d, (c) => new BatchNorm1d(c.channels, c)),
  BatchNorm2d: registration(BatchNorm2d, (c) => new BatchNorm2d(c.channels, c)),
  MaxPool2d: registration(MaxPool2d, (c) => new MaxPool2d(c.kernelSize, c)),
  AvgPool2d: registration(AvgPool2d, (c) => new AvgPool2d(c.kernelSize, c)),
  GlobalAvgPool2d: registration(GlobalAvgPool2d, () => new GlobalAvgPool2d()),
  GlobalMaxPool2d: registration(GlobalMaxPool2d, () => new GlobalMaxPool2d()),
  Flatten: registration(Flatten, () => new Flatten()),
  Dropout: registration(Dropout, (c) => new Dropout(c.probability)),
  LayerNorm: registration(LayerNorm, (c) => new LayerNorm(c.normalizedShape, c)),
  Activation: registration(Activation, (c) => new Activation(c.activation, c.alpha)),
  ReLU: registration(ReLU, () => new ReLU()),
  LeakyReLU: registration(LeakyReLU, (c) => new LeakyReLU(c.alpha)),
  ELU: registration(ELU, (c) => new ELU(c.alpha)),
  GELU: registration(GELU, () => new GELU()),
  Sigmoid: registration(Sigmoid, () => new Sigmoid()),
  Tanh: registration(Tanh, () => new Tanh()),
  Softmax: registration(Softmax, () => new Softmax()),
  LogSoftmax: registration(LogSoftmax, () => new LogSoftmax()),
  Sequential: registration(Sequential, (_, children) => sequentialFrom(children)),
  Residual: registration(
    Residual,
    (c, children) => new Residual(children.build('body'), children.buildOptional('shortcut'), c.activate),
  ),
  BasicBlock: registration(BasicBlock, (c) => new BasicBlock(c.inChannels, c.width, c.stride)),
  Bottleneck: registration(Bottleneck, (c) => new Bottleneck(c.inChannels, c.width, c.stride)),
  Reshape: registration(Reshape, (c) => new Reshape(c.shape)),
  Permute: registration(Permute, (c) => new Permute(c.permutation)),
  Clip: registration(Clip, (c) => new Clip(c.minimum ?? -Infinity, c.maximum ?? Infinity)),
  ZeroPad2d: registration(ZeroPad2d, (c) => new ZeroPad2d(c.pads)),
  // The constant's values come with the weights; zeros of its shape until they are loaded.
  ConstantArithmetic: registration(
    ConstantArithmetic,
    (c) => new ConstantArithmetic(c.operation, zeros(c.shape)),
  ),
  GraphModule: registration(GraphModule, (c, children) => {
    const steps: GraphStep[] = c.steps.map((step, index) =>
      step.kind === 'module'
        ? { kind: 'module', module: children.build(String(index)), input: step.input }
        : step,
    );
    return new GraphModule(steps, c.output);
  }),
  ResNet: registration(ResNet, (c, children) => {
    const network = new ResNet(c);
    // A replaced head (replaceHead keeps its bias setting) is rebuilt as recorded.
    const head = children.buildOptional('fc');
    if (head instanceof Dense) network.replaceClassifier(head);
    return network;
  }),
} as const;

/** The type names of tensile's own modules. */
export type BuiltInModuleType = keyof typeof builtInModules;

// Registrations are stored untyped: the table above checked each builder against its class.
type AnyRegistration = ModuleRegistration<ConfigurableModule> & {
  fromConfig(options: unknown, children: ChildBuilder): Module;
};
const registrationsByType = new Map<string, AnyRegistration>();
const typesByClass = new Map<abstract new (...args: never[]) => Module, string>();
for (const [type, entry] of Object.entries(builtInModules)) {
  registrationsByType.set(type, entry as unknown as AnyRegistration);
  typesByClass.set(entry.moduleClass, type);
}

/**
 * Lets a module class of your own take part in saveModel/loadModel. Its config() returns plain
 * JSON (numbers, strings, booleans, arrays, objects); fromConfig builds it back from that, taking
 * any child modules from `children`.
 *
 * @example
 * class Scale extends Module {
 *   constructor(readonly factor: number) { super(); }
 *   forward(x: Tensor): Tensor { return mul(x, this.factor); }
 *   config() { return { factor: this.factor }; }
 * }
 * registerModule('Scale', { moduleClass: Scale, fromConfig: (options) => new Scale(options.factor) });
 */
export function registerModule<M extends ConfigurableModule>(
  type: string,
  entry: ModuleRegistration<M>,
): void {
  if (type === '' || type.trim() !== type)
    throw new TypeError(`registerModule: the type name must be non-empty, without spaces around it`);
  const existing = registrationsByType.get(type);
  if (existing !== undefined && existing.moduleClass !== entry.moduleClass)
    throw new TypeError(
      `registerModule: '${type}' is already registered for another class (${existing.moduleClass.name})`,
    );
  const otherName = typesByClass.get(entry.moduleClass);
  if (otherName !== undefined && otherName !== type)
    throw new TypeError(`registerModule: ${entry.moduleClass.name} is already registered as '${otherName}'`);
  registrationsByType.set(type, entry as unknown as AnyRegistration);
  typesByClass.set(entry.moduleClass, type);
}

/** The registered type names, tensile's own first. */
export function registeredModuleTypes(): string[] {
  return [...registrationsByType.keys()];
}

/** A model file that cannot be written or read, naming the file and the part concerned. */
export class ModelFileError extends Error {
  override name = 'ModelFileError';
}

function where(path: string): string {
  return path === '' ? 'the model' : `module '${path}'`;
}

/** Checks that value is plain JSON that survives a round trip unchanged, naming what is not. */
function checkJson(value: unknown, at: string): void {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new ModelFileError(`${at} is ${value}, which JSON cannot hold`);
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((item, index) => checkJson(item, `${at}[${index}]`));
    return;
  }
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const [key, item] of Object.entries(value)) if (item !== undefined) checkJson(item, `${at}.${key}`);
    return;
  }
  throw new ModelFileError(
    `${at} is ${typeof value === 'object' ? 'a class instance' : `a ${typeof value}`}, not JSON`,
  );
}

/**
 * The description of module and its descendants that saveModel writes. Throws, naming the module
 * and its class, when a module is not registered.
 */
export function describeModule(module: Module, path = ''): ModuleDescription {
  const type = typesByClass.get(module.constructor as abstract new (...args: never[]) => Module);
  if (type === undefined) {
    const className = module.constructor.name;
    throw new ModelFileError(
      `${where(path)} is a ${className}, which model files do not know; ` +
        `register it first: registerModule('${className}', { moduleClass: ${className}, fromConfig })`,
    );
  }
  const options = (module as ConfigurableModule).config();
  checkJson(options, `the config() of ${where(path)} (${type})`);
  // Through JSON once, so that the description compares equal to one read back from a file.
  const description: ModuleDescription = {
    type,
    options: JSON.parse(JSON.stringify(options)) as ModuleDescription['options'],
  };
  const children = module.namedChildren();
  if (children.length > 0) {
    description.children = {};
    for (const [name, child] of children)
      description.children[name] = describeModule(child, path === '' ? name : `${path}.${name}`);
  }
  return description;
}

/** Rebuilds a module tree from its description (freshly initialised; the caller loads weights). */
export function moduleFromDescription(description: ModuleDescription, path = ''): Module {
  if (
    description === null ||
    typeof description !== 'object' ||
    typeof description.type !== 'string' ||
    description.options === null ||
    typeof description.options !== 'object' ||
    Array.isArray(description.options)
  )
    throw new ModelFileError(`${where(path)}: a description needs a 'type' string and an 'options' object`);
  const entry = registrationsByType.get(description.type);
  if (entry === undefined) {
    throw new ModelFileError(
      `${where(path)} has type '${description.type}', which is not registered in this program; ` +
        `register it with registerModule('${description.type}', { moduleClass, fromConfig }) before loading ` +
        `(known: ${registeredModuleTypes().join(', ')})`,
    );
  }
  const recorded = description.children ?? {};
  const built = new Set<string>();
  const build = (name: string): Module => {
    const child = recorded[name];
    if (child === undefined)
      throw new ModelFileError(
        `${where(path)} (${description.type}) needs a child '${name}', the file has none`,
      );
    built.add(name);
    return moduleFromDescription(child, path === '' ? name : `${path}.${name}`);
  };
  const children: ChildBuilder = {
    names: Object.keys(recorded),
    build,
    buildOptional: (name) => (recorded[name] === undefined ? null : build(name)),
  };
  try {
    return entry.fromConfig(description.options, children);
  } catch (error) {
    if (error instanceof ModelFileError) throw error;
    throw new ModelFileError(
      `${where(path)} (${description.type}) cannot be built from ${JSON.stringify(description.options)}: ${(error as Error).message}`,
    );
  }
}

/** The first place where two descriptions differ, as a sentence, or undefined when equal. */
function firstDifference(
  expected: ModuleDescription,
  actual: ModuleDescription,
  path: string,
): string | undefined {
  if (expected.type !== actual.type)
    return `${where(path)} is recorded as ${expected.type} but rebuilt as ${actual.type}`;
  const wanted = JSON.stringify(expected.options);
  const got = JSON.stringify(actual.options);
  if (wanted !== got)
    return `${where(path)} (${expected.type}) is recorded with ${wanted} but rebuilt with ${got}`;
  const expectedNames = Object.keys(expected.children ?? {});
  const actualNames = Object.keys(actual.children ?? {});
  if (expectedNames.join('\u0000') !== actualNames.join('\u0000'))
    return `${where(path)} (${expected.type}) is recorded with children [${expectedNames.join(', ')}] but rebuilt with [${actualNames.join(', ')}]`;
  for (const name of expectedNames) {
    const difference = firstDifference(
      expected.children![name]!,
      actual.children![name]!,
      path === '' ? name : `${path}.${name}`,
    );
    if (difference !== undefined) return difference;
  }
  return undefined;
}

/** What a model needs at prediction time besides its weights, saved beside them. */
export interface ModelExtras {
  /** One example's shape without the batch axis, e.g. [1, 28, 28] for MNIST. */
  inputShape?: number[];
  /** The name of each output, in output order. */
  classNames?: string[];
  /** The per-channel standardisation the model was trained with: x' = (x − mean[c]) / standardDeviation[c]. */
  normalization?: { mean: number[]; standardDeviation: number[] };
  /** Anything else, as JSON. */
  [key: string]: ConfigValue | undefined;
}

/** Checks the known fields of extras (written by saveModel or read from a file). */
function checkExtras(extras: ModelExtras, at: string): void {
  checkJson(extras, at);
  const { inputShape, classNames, normalization } = extras;
  if (
    inputShape !== undefined &&
    !(Array.isArray(inputShape) && inputShape.every((d) => Number.isInteger(d) && d >= 1))
  )
    throw new ModelFileError(
      `${at}: inputShape must be positive integers, got ${JSON.stringify(inputShape)}`,
    );
  if (
    classNames !== undefined &&
    !(Array.isArray(classNames) && classNames.every((n) => typeof n === 'string'))
  )
    throw new ModelFileError(`${at}: classNames must be strings, got ${JSON.stringify(classNames)}`);
  if (normalization !== undefined) {
    const { mean, standardDeviation } = normalization as Partial<NonNullable<ModelExtras['normalization']>>;
    if (
      !Array.isArray(mean) ||
      !Array.isArray(standardDeviation) ||
      mean.length !== standardDeviation.length ||
      !mean.every((m) => typeof m === 'number') ||
      !standardDeviation.every((s) => typeof s === 'number' && s > 0)
    )
      throw new ModelFileError(
        `${at}: normalization needs mean and standardDeviation of one number per channel (deviations > 0), got ${JSON.stringify(normalization)}`,
      );
  }
}

/**
 * The tensors and metadata of model's file (for saveModel and modelToBytes). Refuses when a module is
 * not registered or a weight is NaN or infinite; `source` names the file in messages and `caller`
 * the function.
 */
export function modelFileContents(
  model: Module,
  extras: ModelExtras,
  metadata: Record<string, string>,
  source: string,
  caller = 'saveModel',
): { tensors: Map<string, SafetensorsInput>; metadata: Record<string, string> } {
  const architecture = describeModule(model);
  checkExtras(extras, `${caller}: extras for '${source}'`);
  assertFiniteState(model.stateDict(), `write '${source}'`);
  const tensors = new Map(
    [...model.stateDict()].map(([name, t]) => [name, { shape: t.shape, data: t.data }]),
  );
  return {
    tensors,
    metadata: {
      ...metadata,
      format: MODEL_FORMAT,
      version: String(MODEL_FORMAT_VERSION),
      architecture: JSON.stringify(architecture),
      extras: JSON.stringify(extras),
    },
  };
}

/**
 * The bytes of a whole-model file: what saveModel writes, for a Blob, a download or a message.
 * Refuses, as saveModel does, unregistered modules and non-finite weights.
 *
 * @example
 * const bytes = modelToBytes(seedCnn(), { inputShape: [1, 28, 28] });
 * const { model } = modelFromBytes(bytes);
 */
export function modelToBytes(
  model: Module,
  extras: ModelExtras = {},
  metadata: Record<string, string> = {},
): Uint8Array {
  const contents = modelFileContents(model, extras, metadata, '<bytes>', 'modelToBytes');
  return serializeSafetensors(contents.tensors, contents.metadata, '<bytes>');
}

export interface LoadedModel {
  /** The rebuilt model with the file's weights, in inference mode (eval()); call train() to train on. */
  model: Module;
  extras: ModelExtras;
  /** The file's metadata strings (format, version, architecture, extras and the caller's own). */
  metadata: Record<string, string>;
  /** The architecture as recorded. */
  architecture: ModuleDescription;
}

/** Whether metadata (of a safetensors file) describes a whole model rather than weights alone. */
export function isModelFile(metadata: Record<string, string>): boolean {
  return metadata.format === MODEL_FORMAT;
}

function parseJsonField(text: string | undefined, field: string, file: string): unknown {
  if (text === undefined) throw new ModelFileError(`${file}: the metadata has no '${field}' entry`);
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new ModelFileError(`${file}: metadata '${field}' is not valid JSON (${(error as Error).message})`);
  }
}

/**
 * Rebuilds the model of a parsed whole-model file (see loadModel, which reads the file, and
 * modelFromBytes): checks that the rebuilt model describes itself exactly as recorded, and loads
 * every parameter and buffer strictly. `file` names the source in error messages.
 */
export function modelFromSafetensors({ tensors, metadata }: SafetensorsFile, file: string): LoadedModel {
  if (!isModelFile(metadata)) {
    throw new ModelFileError(
      `${file} holds weights without an architecture (format '${metadata.format ?? 'none'}'); ` +
        `build the model and use loadWeights, or loadPretrained for a seed CNN or ResNet`,
    );
  }
  const version = Number(metadata.version);
  if (!Number.isInteger(version) || version < 1)
    throw new ModelFileError(
      `${file}: model format version '${metadata.version ?? ''}' is not a version number`,
    );
  if (version > MODEL_FORMAT_VERSION)
    throw new ModelFileError(
      `${file} was written in model format version ${version}, newer than this tensile reads (version ${MODEL_FORMAT_VERSION}); upgrade tensile to load it`,
    );
  const architecture = parseJsonField(metadata.architecture, 'architecture', file) as ModuleDescription;
  const extras = parseJsonField(metadata.extras ?? '{}', 'extras', file) as ModelExtras;
  if (extras === null || typeof extras !== 'object' || Array.isArray(extras))
    throw new ModelFileError(`${file}: metadata 'extras' must be a JSON object`);
  checkExtras(extras, `${file}: extras`);
  checkParameterShapes(architecture, tensors, '', file);
  let model: Module;
  try {
    model = moduleFromDescription(architecture);
  } catch (error) {
    if (error instanceof ModelFileError) error.message = `${file}: ${error.message}`;
    throw error;
  }
  const difference = firstDifference(architecture, describeModule(model), '');
  if (difference !== undefined) throw new ModelFileError(`${file}: ${difference}`);
  const values = new Map<string, { shape: number[]; data: ArrayLike<number> }>();
  for (const [name, entry] of tensors) {
    if (!(entry.data instanceof Float32Array || entry.data instanceof Float64Array))
      throw new ModelFileError(`${file}: tensor '${name}' has dtype ${entry.dtype}, expected a float dtype`);
    values.set(name, { shape: entry.shape, data: entry.data });
  }
  model.loadStateDict(values);
  model.eval();
  return { model, extras, metadata, architecture };
}

/**
 * Reads a whole-model file from its bytes (a fetched response, a File, a message), as loadModel
 * reads one from a path. `source` names it in error messages.
 *
 * @example
 * const { model, extras } = modelFromBytes(new Uint8Array(await (await fetch('digits.safetensors')).arrayBuffer()));
 */
export function modelFromBytes(bytes: Uint8Array, source = '<bytes>'): LoadedModel {
  return modelFromSafetensors(parseSafetensors(bytes, source), source);
}

/** Checks a residual block's convolution shapes; returns its output channels. */
function checkBlockShapes(
  type: 'BasicBlock' | 'Bottleneck',
  inChannels: unknown,
  width: unknown,
  prefix: string,
  expect: (tensor: string, shape: unknown[]) => void,
): unknown {
  if (type === 'BasicBlock') {
    expect(`${prefix}conv1.weight`, [width, inChannels, 3, 3]);
    return width;
  }
  expect(`${prefix}conv1.weight`, [width, inChannels, 1, 1]);
  expect(`${prefix}conv3.weight`, [4 * (width as number), width, 1, 1]);
  return 4 * (width as number);
}

/**
 * Before anything is built: the weight shapes that the configs of tensile's parameterised layers
 * imply must be the file's. A hand-edited description (a Dense of 100,000 × 100,000) is then
 * refused by name instead of allocating what the file does not hold. Modules of one's own are
 * checked by the strict load after building.
 */
function checkParameterShapes(
  description: ModuleDescription,
  tensors: ReadonlyMap<string, SafetensorsEntry>,
  path: string,
  file: string,
): void {
  if (description === null || typeof description !== 'object') return;
  const options = description.options as Record<string, unknown>;
  const name = (own: string) => (path === '' ? own : `${path}.${own}`);
  const expect = (tensor: string, shape: unknown[]) => {
    const actual = tensors.get(name(tensor))?.shape;
    if (actual === undefined || JSON.stringify(actual) !== JSON.stringify(shape))
      throw new ModelFileError(
        `${file}: ${where(path)} (${description.type}) needs '${name(tensor)}' of shape [${shape.join(', ')}], ` +
          `the file has ${actual === undefined ? 'none' : `[${actual.join(', ')}]`}`,
      );
  };
  if (description.type === 'Conv2d') {
    const kernel = Array.isArray(options.kernelSize)
      ? options.kernelSize
      : [options.kernelSize, options.kernelSize];
    expect('weight', [options.outChannels, options.inChannels, ...kernel]);
  } else if (description.type === 'Dense') {
    expect('weight', [options.outFeatures, options.inFeatures]);
  } else if (['BatchNorm', 'BatchNorm1d', 'BatchNorm2d'].includes(description.type)) {
    expect('running_mean', [options.channels]);
  } else if (description.type === 'BasicBlock' || description.type === 'Bottleneck') {
    checkBlockShapes(description.type, options.inChannels, options.width, '', expect);
  } else if (description.type === 'ResNet') {
    // A ResNet builds its layers from its options, not from the children: check those options.
    const { widths, layers, inChannels, stem, block } = options;
    if (Array.isArray(widths) && Array.isArray(layers)) {
      const kernel = stem === 'small' ? 3 : 7;
      expect('conv1.weight', [widths[0], inChannels, kernel, kernel]);
      const type = block === 'bottleneck' ? 'Bottleneck' : 'BasicBlock';
      let channels = widths[0] as unknown;
      layers.forEach((count, stage) => {
        for (let index = 0; typeof count === 'number' && index < count; index++)
          channels = checkBlockShapes(type, channels, widths[stage], `layer${stage + 1}.${index}.`, expect);
      });
    }
  }
  for (const [childName, child] of Object.entries(description.children ?? {}))
    checkParameterShapes(child, tensors, name(childName), file);
}
