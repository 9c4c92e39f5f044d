/**
 * ONNX export: a tensile module tree written as an ONNX model in inference form (batch norm with its
 * running statistics, dropout gone), with a dynamic batch dimension, for onnxruntime and every other
 * ONNX consumer.
 *
 * The walk goes through the module tree by class (containers, ResNets, then layers) and emits one or
 * a few ONNX nodes per layer. Shapes come from running each layer once on a one-example batch as it
 * is emitted, so the graph's value shapes are the ones tensile computes, not a second derivation.
 * Initializers take the parameters' state_dict names (`layer1.0.conv1.weight`), so the file reads
 * like the model.
 */
import { noGrad } from '../../autograd/graph.js';
import { add, concat, mul, pair } from '../../ops/index.js';
import { formatShape } from '../../tensor/shape.js';
import { type Tensor, zeros } from '../../tensor/tensor.js';
import type { Module } from '../../nn/module.js';
import { Activation, type ActivationName } from '../../nn/layers/activation.js';
import { BatchNorm } from '../../nn/layers/batchnorm.js';
import { Residual, Sequential } from '../../nn/layers/containers.js';
import { Conv2d } from '../../nn/layers/conv.js';
import { Dense } from '../../nn/layers/dense.js';
import { Dropout } from '../../nn/layers/dropout.js';
import { AvgPool2d, Flatten, GlobalAvgPool2d, GlobalMaxPool2d, MaxPool2d } from '../../nn/layers/pooling.js';
import { BasicBlock, Bottleneck, ResNet } from '../../models/resnet.js';
import { writeFileAtomic } from '../atomic-write.js';
import { Clip, ConstantArithmetic, GraphModule, Permute, Reshape, ZeroPad2d } from './layers.js';
import {
  encodeModel,
  onnxAttributeType,
  onnxDataType,
  type OnnxAttributeMessage,
  type OnnxNodeMessage,
  type OnnxTensorMessage,
} from './schema.js';

export interface OnnxExportOptions {
  /** One example's shape without the batch axis, e.g. [1, 28, 28] for MNIST digits. */
  inputShape: readonly number[];
  /** ONNX operator-set version, 13 to 21 (default 17). */
  opset?: number;
  /** Name of the graph input (default 'input'). */
  inputName?: string;
  /** Name of the graph output (default 'output'). */
  outputName?: string;
  /** Stored as the model's doc_string. */
  description?: string;
}

export const defaultOnnxOpset = 17;
export const minimumOnnxOpset = 13;
export const maximumOnnxOpset = 21;

/** The oldest IR version that may carry an operator set (onnx's release table). */
function irVersionFor(opset: number): number {
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 10;
}

/** A value in the graph being built: its name and a one-example sample of what it holds. */
interface Value {
  name: string;
  sample: Tensor;
}

type AttributeValue = number | string | readonly number[] | { float: number };

function attribute(name: string, value: AttributeValue): OnnxAttributeMessage {
  if (typeof value === 'string')
    return { name, type: onnxAttributeType.string, s: new TextEncoder().encode(value) };
  if (typeof value === 'number') return { name, type: onnxAttributeType.int, i: value };
  if ('float' in value) return { name, type: onnxAttributeType.float, f: value.float };
  return { name, type: onnxAttributeType.ints, ints: [...value] };
}

function floatTensor(name: string, dims: readonly number[], data: ArrayLike<number>): OnnxTensorMessage {
  const values = Float32Array.from(data);
  return {
    name,
    dims: [...dims],
    dataType: onnxDataType.float,
    // Little-endian float32 bytes, the layout raw_data requires (and every platform Node runs on has).
    rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
  };
}

/** Collects nodes and initializers with unique names, and runs layers for the value shapes. */
class GraphWriter {
  readonly nodes: OnnxNodeMessage[] = [];
  readonly initializers: OnnxTensorMessage[] = [];
  private readonly names = new Set<string>();
  private readonly counts = new Map<string, number>();

  constructor(readonly opset: number) {}

  unique(base: string): string {
    let name = base;
    while (this.names.has(name)) {
      const count = (this.counts.get(base) ?? 0) + 1;
      this.counts.set(base, count);
      name = `${base}_${count}`;
    }
    this.names.add(name);
    return name;
  }

  constant(base: string, dims: readonly number[], data: ArrayLike<number>): string {
    const name = this.unique(base);
    this.initializers.push(floatTensor(name, dims, data));
    return name;
  }

  node(
    opType: string,
    inputs: string[],
    where: string,
    attributes: Record<string, AttributeValue> = {},
  ): string {
    const output = this.unique(`${where === '' ? 'model' : where}/${opType}`);
    this.nodes.push({
      opType,
      name: output,
      input: inputs,
      output: [output],
      attribute: Object.entries(attributes).map(([name, value]) => attribute(name, value)),
    });
    return output;
  }
}

const join = (prefix: string, name: string) => (prefix === '' ? name : `${prefix}.${name}`);

/** The ONNX nodes of a named activation; 'none' emits nothing. */
function emitActivation(
  writer: GraphWriter,
  kind: ActivationName,
  alpha: number | undefined,
  input: string,
  where: string,
): string {
  switch (kind) {
    case 'none':
      return input;
    case 'relu':
      return writer.node('Relu', [input], where);
    case 'leaky_relu':
      return writer.node('LeakyRelu', [input], where, { alpha: { float: alpha ?? 0.01 } });
    case 'elu':
      return writer.node('Elu', [input], where, { alpha: { float: alpha ?? 1 } });
    case 'sigmoid':
      return writer.node('Sigmoid', [input], where);
    case 'tanh':
      return writer.node('Tanh', [input], where);
    case 'softmax':
      return writer.node('Softmax', [input], where, { axis: -1 });
    case 'log_softmax':
      return writer.node('LogSoftmax', [input], where, { axis: -1 });
    case 'gelu': {
      // Exact GELU, x·Φ(x): an operator of its own from opset 20, x·(1 + erf(x/√2))/2 before.
      if (writer.opset >= 20) return writer.node('Gelu', [input], where, { approximate: 'none' });
      const root2 = writer.constant(`${where}/sqrt2`, [], [Math.SQRT2]);
      const one = writer.constant(`${where}/one`, [], [1]);
      const half = writer.constant(`${where}/half`, [], [0.5]);
      const erf = writer.node('Erf', [writer.node('Div', [input, root2], where)], where);
      const phi = writer.node('Add', [erf, one], where);
      return writer.node('Mul', [writer.node('Mul', [input, phi], where), half], where);
    }
  }
}

/** [top, left, bottom, right] of a convolution, 'same' with its extra row/column at the end. */
function convolutionPads(conv: Conv2d): [number, number, number, number] {
  const padding = conv.convolution.padding ?? 0;
  if (padding === 'valid') return [0, 0, 0, 0];
  if (padding === 'same') {
    const [dilationHeight, dilationWidth] = pair(conv.convolution.dilation ?? 1);
    const totalHeight = dilationHeight * (conv.kernelSize[0] - 1);
    const totalWidth = dilationWidth * (conv.kernelSize[1] - 1);
    const top = Math.floor(totalHeight / 2);
    const left = Math.floor(totalWidth / 2);
    return [top, left, totalHeight - top, totalWidth - left];
  }
  const [top, left] = pair(padding);
  return [top, left, top, left];
}

/** Emits module applied to input; returns the output value. prefix is the module's state_dict name. */
function emit(writer: GraphWriter, module: Module, input: Value, prefix: string): Value {
  const run = (name: string): Value => ({ name, sample: module.call(input.sample) });
  const where = prefix;

  if (module instanceof Sequential) {
    return module.layers.reduce(
      (value, layer, index) => emit(writer, layer, value, join(prefix, String(index))),
      input,
    );
  }
  if (module instanceof GraphModule) {
    const values: Value[] = [input];
    module.steps.forEach((step, index) => {
      if (step.kind === 'module') {
        values.push(emit(writer, step.module, values[step.input]!, join(prefix, String(index))));
        return;
      }
      const operands = step.inputs.map((value) => values[value]!);
      const where = join(prefix, String(index));
      const names = operands.map((operand) => operand.name);
      const [first, second] = operands.map((operand) => operand.sample) as [Tensor, Tensor];
      if (step.kind === 'concat') {
        const name = writer.node('Concat', names, where, { axis: step.axis });
        values.push({
          name,
          sample: concat(
            operands.map((operand) => operand.sample),
            step.axis,
          ),
        });
      } else if (step.kind === 'add') {
        values.push({ name: writer.node('Add', names, where), sample: add(first, second) });
      } else {
        values.push({ name: writer.node('Mul', names, where), sample: mul(first, second) });
      }
    });
    return values[module.output]!;
  }
  if (module instanceof Residual) {
    const body = emit(writer, module.body, input, join(prefix, 'body'));
    const shortcut =
      module.shortcut === null ? input : emit(writer, module.shortcut, input, join(prefix, 'shortcut'));
    const sum = writer.node('Add', [body.name, shortcut.name], where);
    return run(module.activate ? writer.node('Relu', [sum], where) : sum);
  }
  if (module instanceof BasicBlock || module instanceof Bottleneck) {
    const shortcut =
      module.downsample === null ? input : emit(writer, module.downsample, input, join(prefix, 'downsample'));
    let y = emit(writer, module.conv1, input, join(prefix, 'conv1'));
    y = emit(writer, module.bn1, y, join(prefix, 'bn1'));
    y = { name: writer.node('Relu', [y.name], join(prefix, 'relu')), sample: y.sample };
    y = emit(writer, module.conv2, y, join(prefix, 'conv2'));
    y = emit(writer, module.bn2, y, join(prefix, 'bn2'));
    if (module instanceof Bottleneck) {
      y = { name: writer.node('Relu', [y.name], join(prefix, 'relu')), sample: y.sample };
      y = emit(writer, module.conv3, y, join(prefix, 'conv3'));
      y = emit(writer, module.bn3, y, join(prefix, 'bn3'));
    }
    const sum = writer.node('Add', [y.name, shortcut.name], where);
    return run(writer.node('Relu', [sum], join(prefix, 'relu')));
  }
  if (module instanceof ResNet) {
    let y = emit(writer, module.conv1, input, join(prefix, 'conv1'));
    y = emit(writer, module.bn1, y, join(prefix, 'bn1'));
    y = { name: writer.node('Relu', [y.name], join(prefix, 'relu')), sample: y.sample };
    if (module.maxpool !== null) y = emit(writer, module.maxpool, y, join(prefix, 'maxpool'));
    module.stages.forEach((stage, index) => (y = emit(writer, stage, y, join(prefix, `layer${index + 1}`))));
    y = emit(writer, module.avgpool, y, join(prefix, 'avgpool'));
    return emit(writer, module.fc, y, join(prefix, 'fc'));
  }

  if (module instanceof Conv2d) {
    const [strideHeight, strideWidth] = pair(module.convolution.stride ?? 1);
    const inputs = [
      input.name,
      writer.constant(join(prefix, 'weight'), module.weight.shape, module.weight.data),
    ];
    if (module.bias !== null)
      inputs.push(writer.constant(join(prefix, 'bias'), module.bias.shape, module.bias.data));
    return run(
      writer.node('Conv', inputs, where, {
        kernel_shape: module.kernelSize,
        strides: [strideHeight, strideWidth],
        pads: convolutionPads(module),
        dilations: pair(module.convolution.dilation ?? 1),
        group: 1,
      }),
    );
  }
  if (module instanceof BatchNorm) {
    const channels = module.channels;
    const scale = module.weight?.data ?? new Float32Array(channels).fill(1);
    const shift = module.bias?.data ?? new Float32Array(channels);
    const inputs = [
      input.name,
      writer.constant(join(prefix, 'weight'), [channels], scale),
      writer.constant(join(prefix, 'bias'), [channels], shift),
      writer.constant(join(prefix, 'running_mean'), [channels], module.runningMean.data),
      writer.constant(join(prefix, 'running_var'), [channels], module.runningVar.data),
    ];
    // ONNX's momentum weighs the old running value, PyTorch's (and tensile's) the new batch.
    return run(
      writer.node('BatchNormalization', inputs, where, {
        epsilon: { float: module.eps },
        momentum: { float: 1 - module.momentum },
      }),
    );
  }
  if (module instanceof Dense) {
    const inputs = [
      input.name,
      writer.constant(join(prefix, 'weight'), module.weight.shape, module.weight.data),
    ];
    if (module.bias !== null)
      inputs.push(writer.constant(join(prefix, 'bias'), module.bias.shape, module.bias.data));
    const linear = writer.node('Gemm', inputs, where, { transB: 1 });
    return run(emitActivation(writer, module.activation, module.options.activationAlpha, linear, where));
  }
  if (module instanceof Activation) {
    return run(emitActivation(writer, module.activation, module.alpha, input.name, where));
  }
  if (module instanceof MaxPool2d || module instanceof AvgPool2d) {
    const options = module.options as typeof module.options & { countIncludePad?: boolean };
    const [padTop, padLeft] = pair(options.padding ?? 0);
    const attributes: Record<string, AttributeValue> = {
      kernel_shape: pair(options.kernelSize),
      strides: pair(options.stride ?? options.kernelSize),
      pads: [padTop, padLeft, padTop, padLeft],
      ceil_mode: options.ceilMode === true ? 1 : 0,
    };
    if (module instanceof AvgPool2d) attributes.count_include_pad = options.countIncludePad === false ? 0 : 1;
    return run(
      writer.node(module instanceof MaxPool2d ? 'MaxPool' : 'AveragePool', [input.name], where, attributes),
    );
  }
  if (module instanceof GlobalAvgPool2d || module instanceof GlobalMaxPool2d) {
    // ONNX keeps the 1×1 spatial axes; tensile's global pools drop them.
    const pooled = writer.node(
      module instanceof GlobalAvgPool2d ? 'GlobalAveragePool' : 'GlobalMaxPool',
      [input.name],
      where,
    );
    return run(writer.node('Flatten', [pooled], where, { axis: 1 }));
  }
  if (module instanceof Flatten) return run(writer.node('Flatten', [input.name], where, { axis: 1 }));
  if (module instanceof Dropout) return input;
  if (module instanceof Reshape) {
    const shape = writer.unique(join(prefix, 'shape'));
    // 0 copies the batch size from the input, which keeps the batch axis dynamic.
    writer.initializers.push({
      name: shape,
      dims: [module.shape.length + 1],
      dataType: onnxDataType.int64,
      int64Data: [0, ...module.shape],
    });
    return run(writer.node('Reshape', [input.name, shape], where));
  }
  if (module instanceof Permute)
    return run(writer.node('Transpose', [input.name], where, { perm: module.permutation }));
  if (module instanceof Clip) {
    const inputs = [input.name];
    inputs.push(
      Number.isFinite(module.minimum) ? writer.constant(join(prefix, 'min'), [], [module.minimum]) : '',
    );
    if (Number.isFinite(module.maximum))
      inputs.push(writer.constant(join(prefix, 'max'), [], [module.maximum]));
    while (inputs.at(-1) === '') inputs.pop();
    return run(writer.node('Clip', inputs, where));
  }
  if (module instanceof ZeroPad2d) {
    const [top, left, bottom, right] = module.pads;
    const pads = writer.unique(join(prefix, 'pads'));
    writer.initializers.push({
      name: pads,
      dims: [8],
      dataType: onnxDataType.int64,
      int64Data: [0, 0, top, left, 0, 0, bottom, right],
    });
    return run(writer.node('Pad', [input.name, pads], where, { mode: 'constant' }));
  }
  if (module instanceof ConstantArithmetic) {
    const constant = writer.constant(join(prefix, 'constant'), module.constant.shape, module.constant.data);
    return run(writer.node(module.operation === 'add' ? 'Add' : 'Mul', [input.name, constant], where));
  }
  throw new TypeError(
    `exportOnnx: no ONNX form for ${module.describe()} (${module.constructor.name}${prefix === '' ? '' : ` at '${prefix}'`}); tensile exports its own layers, Sequential, Residual, GraphModule and ResNets`,
  );
}

/**
 * The ONNX model of module as bytes (see exportOnnx). The model is run once on a one-example batch
 * of zeros in inference mode to learn each value's shape; its training/inference mode is restored.
 */
export function onnxModelBytes(module: Module, options: OnnxExportOptions): Uint8Array {
  const opset = options.opset ?? defaultOnnxOpset;
  if (!Number.isInteger(opset) || opset < minimumOnnxOpset || opset > maximumOnnxOpset)
    throw new RangeError(
      `exportOnnx: opset must be an integer from ${minimumOnnxOpset} to ${maximumOnnxOpset}, got ${opset}`,
    );
  const inputShape = [...options.inputShape];
  if (inputShape.length === 0 || !inputShape.every((d) => Number.isInteger(d) && d >= 1))
    throw new RangeError(
      `exportOnnx: inputShape must be one example's shape of positive integers (e.g. [1, 28, 28]), got ${formatShape(inputShape)}`,
    );
  const inputName = options.inputName ?? 'input';
  const outputName = options.outputName ?? 'output';
  const modes = module.namedModules().map(([, child]) => [child, child.training] as const);
  module.eval();
  const writer = new GraphWriter(opset);
  writer.unique(inputName);
  let output: Value;
  try {
    output = noGrad(() => emit(writer, module, { name: inputName, sample: zeros([1, ...inputShape]) }, ''));
  } finally {
    for (const [child, training] of modes) child.training = training;
  }
  // The last node writes the graph output under its public name; a model that computes nothing
  // (only dropout, say) gets an Identity.
  const last = writer.nodes.at(-1);
  if (last !== undefined && output.name === last.output[0]) last.output[0] = outputName;
  else
    writer.nodes.push({ opType: 'Identity', name: outputName, input: [output.name], output: [outputName] });
  const tensorType = (shape: readonly number[]) => ({
    tensorType: {
      elemType: onnxDataType.float,
      shape: { dim: [{ dimParam: 'batch' }, ...shape.slice(1).map((d) => ({ dimValue: d }))] },
    },
  });
  return encodeModel({
    irVersion: irVersionFor(opset),
    producerName: 'tensile',
    opsetImport: [{ domain: '', version: opset }],
    ...(options.description === undefined ? {} : { docString: options.description }),
    graph: {
      name: module.constructor.name,
      node: writer.nodes,
      initializer: writer.initializers,
      input: [{ name: inputName, type: tensorType([1, ...inputShape]) }],
      output: [{ name: outputName, type: tensorType(output.sample.shape) }],
    },
  });
}

/**
 * Writes module as an ONNX model file (inference form: batch norm with running statistics, no
 * dropout) with a dynamic batch axis named 'batch'. Every tensile layer, Sequential, Residual, the
 * ResNets and the layers importOnnx makes are supported; another module is an error naming it.
 *
 * @example
 * exportOnnx(seedCnn(), 'seed-cnn.onnx', { inputShape: [1, 28, 28] });
 * // onnxruntime: session.run({ input: new ort.Tensor('float32', pixels, [n, 1, 28, 28]) })
 */
export function exportOnnx(module: Module, file: string, options: OnnxExportOptions): void {
  writeFileAtomic(file, onnxModelBytes(module, options));
}
