/**
 * ONNX import: an ONNX CNN graph (as PyTorch, tensile and most converters write it) rebuilt as a
 * trainable tensile module tree, so that a network trained elsewhere can be fine-tuned with the
 * transfer strategies. A chain of layers becomes a Sequential, anything else a GraphModule.
 *
 * How it reads a graph: initializers and Constant nodes are constants; a node whose inputs are all
 * constant is evaluated at import (exporters compute reshape targets and pad widths that way); Shape
 * of a layer's output is known too, except the batch size, which stays a symbol so reshapes keep the
 * batch axis dynamic. Every other node becomes a tensile layer with the node's weights, and runs once
 * on a one-example batch as it is built, so the next node sees the true shape of its input.
 */
import * as fs from 'node:fs';
import { noGrad } from '../../autograd/graph.js';
import { add, concat, mul } from '../../ops/index.js';
import { formatShape, sizeOf } from '../../tensor/shape.js';
import { Tensor, zeros } from '../../tensor/tensor.js';
import type { Module } from '../../nn/module.js';
import {
  ELU,
  GELU,
  LeakyReLU,
  LogSoftmax,
  ReLU,
  Sigmoid,
  Softmax,
  Tanh,
} from '../../nn/layers/activation.js';
import { BatchNorm } from '../../nn/layers/batchnorm.js';
import { Sequential } from '../../nn/layers/containers.js';
import { Conv2d } from '../../nn/layers/conv.js';
import { Dense } from '../../nn/layers/dense.js';
import { Dropout } from '../../nn/layers/dropout.js';
import { AvgPool2d, Flatten, GlobalAvgPool2d, GlobalMaxPool2d, MaxPool2d } from '../../nn/layers/pooling.js';
import {
  Clip,
  ConstantArithmetic,
  GraphModule,
  type GraphStep,
  Permute,
  Reshape,
  ZeroPad2d,
} from './layers.js';
import {
  decodeModel,
  onnxDataType,
  type OnnxAttributeMessage,
  type OnnxNodeMessage,
  type OnnxTensorMessage,
} from './schema.js';

/** An operator (or an operator's setting) importOnnx cannot express in tensile layers. */
export class UnsupportedOnnxOperatorError extends Error {
  override name = 'UnsupportedOnnxOperatorError';
  constructor(
    readonly operator: string,
    readonly node: string,
    readonly opset: number,
    detail: string,
  ) {
    super(`importOnnx: operator '${operator}' (node '${node}', opset ${opset}) ${detail}`);
  }
}

export interface OnnxImportOptions {
  /** One example's shape, needed when the file leaves spatial sizes symbolic (e.g. [3, 224, 224]). */
  inputShape?: readonly number[];
}

/** What importOnnx returns: the model and what the file said about it. */
export interface ImportedOnnxModel {
  /** The model in inference mode (as exported); call train() to train it. */
  model: Module;
  /** One example's shape, without the batch axis. */
  inputShape: number[];
  /** The file's opset for the default ONNX domain. */
  opset: number;
  producer: string;
}

/** The batch size in shape arithmetic: unknown at import, so kept as a symbol. */
const batch = 'batch';
type Scalar = number | typeof batch;

/** A value known at import: data in row-major order. */
interface ConstantValue {
  kind: 'constant';
  shape: number[];
  data: Scalar[];
}

/** A value computed by the network: a GraphModule value index and a one-example sample. */
interface TensorValue {
  kind: 'tensor';
  index: number;
  sample: Tensor;
}

type Value = ConstantValue | TensorValue;

const supported = [
  'Add',
  'AveragePool',
  'BatchNormalization',
  'Cast',
  'Clip',
  'Concat',
  'Constant',
  'ConstantOfShape',
  'Conv',
  'Div',
  'Dropout',
  'Elu',
  'Flatten',
  'Gather',
  'Gelu',
  'Gemm',
  'GlobalAveragePool',
  'GlobalMaxPool',
  'Identity',
  'LeakyRelu',
  'LogSoftmax',
  'MatMul',
  'MaxPool',
  'Mul',
  'Pad',
  'Relu',
  'Reshape',
  'Shape',
  'Sigmoid',
  'Slice',
  'Softmax',
  'Squeeze',
  'Sub',
  'Tanh',
  'Transpose',
  'Unsqueeze',
];

function tensorData(tensor: OnnxTensorMessage, where: string): ConstantValue {
  const shape = (tensor.dims ?? []).map(Number);
  const count = sizeOf(shape);
  if (tensor.dataLocation === 1)
    throw new TypeError(
      `importOnnx: tensor '${tensor.name ?? where}' keeps its data in an external file, which importOnnx does not read`,
    );
  const type = tensor.dataType ?? 0;
  let data: number[];
  const raw = tensor.rawData;
  if (raw !== undefined && raw.length > 0) {
    // A copy: protobufjs hands out Buffers that view a shared pool at any offset.
    const bytes = new Uint8Array(raw).buffer;
    const view = (() => {
      switch (type) {
        case onnxDataType.float:
          return new Float32Array(bytes);
        case onnxDataType.double:
          return new Float64Array(bytes);
        case onnxDataType.int32:
          return new Int32Array(bytes);
        case onnxDataType.int64:
          return Array.from(new BigInt64Array(bytes), Number);
        case onnxDataType.int8:
          return new Int8Array(bytes);
        case onnxDataType.uint8:
        case onnxDataType.bool:
          return new Uint8Array(bytes);
        default:
          throw new TypeError(
            `importOnnx: tensor '${tensor.name ?? where}' has data type ${type}, which importOnnx does not read`,
          );
      }
    })();
    data = Array.from(view, Number);
  } else {
    // Readers fill every repeated field (arrays: true); the one holding this tensor is the non-empty one.
    const fields = [tensor.floatData, tensor.doubleData, tensor.int64Data, tensor.int32Data];
    data = (fields.find((field) => field !== undefined && field.length > 0) ?? []).map(Number);
  }
  if (data.length !== count)
    throw new TypeError(
      `importOnnx: tensor '${tensor.name ?? where}' has ${data.length} values for shape ${formatShape(shape)}`,
    );
  return { kind: 'constant', shape, data };
}

function attributeMap(node: OnnxNodeMessage): Map<string, OnnxAttributeMessage> {
  return new Map((node.attribute ?? []).map((attribute) => [attribute.name, attribute]));
}

function numbers(value: ConstantValue, what: string): number[] {
  return value.data.map((entry) => {
    if (entry === batch) throw new TypeError(`${what}: depends on the batch size`);
    return entry;
  });
}

function strides(shape: readonly number[]): number[] {
  const result = new Array<number>(shape.length).fill(1);
  for (let axis = shape.length - 2; axis >= 0; axis--) result[axis] = result[axis + 1]! * shape[axis + 1]!;
  return result;
}

/** Elementwise a ∘ b with ONNX (numpy) broadcasting, on constants. */
function broadcastConstants(
  a: ConstantValue,
  b: ConstantValue,
  operation: (x: number, y: number) => number,
): ConstantValue {
  const rank = Math.max(a.shape.length, b.shape.length);
  const pad = (shape: number[]) => [...new Array<number>(rank - shape.length).fill(1), ...shape];
  const shapeA = pad(a.shape);
  const shapeB = pad(b.shape);
  const shape = shapeA.map((d, i) => Math.max(d, shapeB[i]!));
  const stridesA = strides(shapeA);
  const stridesB = strides(shapeB);
  const outStrides = strides(shape);
  const data: Scalar[] = [];
  for (let flat = 0; flat < sizeOf(shape); flat++) {
    let indexA = 0;
    let indexB = 0;
    for (let axis = 0; axis < rank; axis++) {
      const coordinate = Math.floor(flat / outStrides[axis]!) % shape[axis]!;
      if (shapeA[axis] !== 1) indexA += coordinate * stridesA[axis]!;
      if (shapeB[axis] !== 1) indexB += coordinate * stridesB[axis]!;
    }
    const x = a.data[indexA]!;
    const y = b.data[indexB]!;
    data.push(x === batch || y === batch ? batch : operation(x, y));
  }
  return { kind: 'constant', shape, data };
}

/** Rebuilds the graph of an ONNX model. */
class GraphReader {
  readonly values = new Map<string, Value>();
  readonly steps: GraphStep[] = [];
  /** The sample of each GraphModule value, by index. */
  readonly samples: Tensor[] = [];
  /** How many nodes read each value (a fold into a producer needs it to have no other reader). */
  readonly readers = new Map<string, number>();
  /** Index of a value made by GlobalAveragePool/GlobalMaxPool's keep-dims reshape → the pooled [N, C] value. */
  readonly keptDimensions = new Map<number, number>();

  constructor(
    readonly opset: number,
    input: Tensor,
  ) {
    this.samples.push(input);
  }

  unsupported(node: OnnxNodeMessage, detail: string): never {
    throw new UnsupportedOnnxOperatorError(
      node.opType,
      node.name || node.output[0] || '?',
      this.opset,
      detail,
    );
  }

  /** Adds a module step reading value input; runs it on the sample. */
  addModule(module: Module, input: TensorValue): TensorValue {
    module.eval();
    const sample = noGrad(() => module.call(input.sample));
    this.steps.push({ kind: 'module', module, input: input.index });
    this.samples.push(sample);
    return { kind: 'tensor', index: this.steps.length, sample };
  }

  addJoin(kind: 'add' | 'mul' | 'concat', inputs: TensorValue[], sample: Tensor, axis = 0): TensorValue {
    const indices = inputs.map((value) => value.index);
    this.steps.push(
      kind === 'concat' ? { kind, inputs: indices, axis } : { kind, inputs: [indices[0]!, indices[1]!] },
    );
    this.samples.push(sample);
    return { kind: 'tensor', index: this.steps.length, sample };
  }

  /** The module that wrote value index, if a module step did. */
  producer(value: TensorValue): Module | undefined {
    const step = this.steps[value.index - 1];
    return step?.kind === 'module' ? step.module : undefined;
  }
}

function attributeInt(attributes: Map<string, OnnxAttributeMessage>, name: string, fallback: number): number {
  const attribute = attributes.get(name);
  return attribute?.i === undefined ? fallback : Number(attribute.i);
}
function attributeFloat(
  attributes: Map<string, OnnxAttributeMessage>,
  name: string,
  fallback: number,
): number {
  return attributes.get(name)?.f ?? fallback;
}
function attributeInts(attributes: Map<string, OnnxAttributeMessage>, name: string): number[] | undefined {
  return attributes.get(name)?.ints?.map(Number);
}
function attributeString(
  attributes: Map<string, OnnxAttributeMessage>,
  name: string,
  fallback: string,
): string {
  const bytes = attributes.get(name)?.s;
  return bytes === undefined ? fallback : new TextDecoder().decode(bytes);
}

/** Evaluates a node whose inputs are all constants; undefined when the operator is not one of these. */
function foldConstant(
  reader: GraphReader,
  node: OnnxNodeMessage,
  inputs: (ConstantValue | undefined)[],
  attributes: Map<string, OnnxAttributeMessage>,
): ConstantValue | undefined {
  const first = inputs[0];
  const what = `importOnnx: node '${node.name || node.output[0]}' (${node.opType})`;
  switch (node.opType) {
    case 'Constant': {
      const attribute = node.attribute?.[0];
      if (attribute === undefined) return reader.unsupported(node, 'has no value');
      if (attribute.t !== undefined) return tensorData(attribute.t, node.name ?? '');
      if (attribute.name === 'value_float') return { kind: 'constant', shape: [], data: [attribute.f ?? 0] };
      if (attribute.name === 'value_int')
        return { kind: 'constant', shape: [], data: [Number(attribute.i ?? 0)] };
      if (attribute.name === 'value_floats' || attribute.name === 'value_ints') {
        const values = (attribute.floats ?? attribute.ints ?? []).map(Number);
        return { kind: 'constant', shape: [values.length], data: values };
      }
      return reader.unsupported(node, `with a '${attribute.name}' value is not supported`);
    }
    case 'Identity':
    case 'Cast':
      return first;
    case 'ConstantOfShape': {
      const shape = numbers(first!, what);
      const fill = attributes.get('value')?.t;
      const value = fill === undefined ? 0 : tensorData(fill, node.name ?? '').data[0]!;
      return { kind: 'constant', shape, data: new Array<Scalar>(sizeOf(shape)).fill(value) };
    }
    case 'Concat': {
      const parts = inputs as ConstantValue[];
      const rank = parts[0]!.shape.length;
      const axis = (attributeInt(attributes, 'axis', 0) + rank) % rank;
      const outer = sizeOf(parts[0]!.shape.slice(0, axis));
      const data: Scalar[] = [];
      for (let o = 0; o < outer; o++)
        for (const part of parts) {
          const block = sizeOf(part.shape.slice(axis));
          data.push(...part.data.slice(o * block, (o + 1) * block));
        }
      const shape = [...parts[0]!.shape];
      shape[axis] = parts.reduce((sum, part) => sum + part.shape[axis]!, 0);
      return { kind: 'constant', shape, data };
    }
    case 'Reshape': {
      const target = numbers(inputs[1]!, what).map((d, i) => (d === 0 ? first!.shape[i]! : d));
      const known = sizeOf(target.filter((d) => d !== -1));
      const shape = target.map((d) => (d === -1 ? first!.data.length / known : d));
      return { kind: 'constant', shape, data: first!.data };
    }
    case 'Unsqueeze':
    case 'Squeeze': {
      const axes =
        inputs[1] !== undefined ? numbers(inputs[1], what) : (attributeInts(attributes, 'axes') ?? []);
      let shape = [...first!.shape];
      if (node.opType === 'Squeeze') {
        const rank = shape.length;
        const drop =
          axes.length === 0 ? shape.map((d, i) => (d === 1 ? i : -1)) : axes.map((a) => (a + rank) % rank);
        shape = shape.filter((_, i) => !drop.includes(i));
      } else {
        const rank = shape.length + axes.length;
        for (const axis of axes.map((a) => (a + rank) % rank).sort((p, q) => p - q)) shape.splice(axis, 0, 1);
      }
      return { kind: 'constant', shape, data: first!.data };
    }
    case 'Gather': {
      const indices = numbers(inputs[1]!, what);
      const axis = attributeInt(attributes, 'axis', 0);
      if (axis !== 0 || first!.shape.length !== 1)
        return reader.unsupported(node, 'on constants is supported on one-axis data only');
      const size = first!.shape[0]!;
      return {
        kind: 'constant',
        shape: inputs[1]!.shape,
        data: indices.map((i) => first!.data[(i + size) % size]!),
      };
    }
    case 'Slice': {
      const rank = first!.shape.length;
      const starts = numbers(inputs[1]!, what);
      const ends = numbers(inputs[2]!, what);
      const axes = inputs[3] !== undefined ? numbers(inputs[3], what) : starts.map((_, i) => i);
      const steps = inputs[4] !== undefined ? numbers(inputs[4], what) : starts.map(() => 1);
      // Index lists along each axis, ONNX's clamping rules.
      const picks = first!.shape.map((size) => Array.from({ length: size }, (_, i) => i));
      axes.forEach((axisGiven, k) => {
        const axis = (axisGiven + rank) % rank;
        const size = first!.shape[axis]!;
        const step = steps[k]!;
        const clamp = (value: number, low: number, high: number) => Math.min(Math.max(value, low), high);
        let start = starts[k]! < 0 ? starts[k]! + size : starts[k]!;
        let end = ends[k]! < 0 ? ends[k]! + size : ends[k]!;
        start = step > 0 ? clamp(start, 0, size) : clamp(start, 0, size - 1);
        end = step > 0 ? clamp(end, 0, size) : clamp(end, -1, size - 1);
        const chosen: number[] = [];
        for (let i = start; step > 0 ? i < end : i > end; i += step) chosen.push(i);
        picks[axis] = chosen;
      });
      const shape = picks.map((pick) => pick.length);
      const sourceStrides = strides(first!.shape);
      const data: Scalar[] = [];
      const outStrides = strides(shape);
      for (let flat = 0; flat < sizeOf(shape); flat++) {
        let source = 0;
        for (let axis = 0; axis < rank; axis++)
          source += picks[axis]![Math.floor(flat / outStrides[axis]!) % shape[axis]!]! * sourceStrides[axis]!;
        data.push(first!.data[source]!);
      }
      return { kind: 'constant', shape, data };
    }
    case 'Transpose': {
      const rank = first!.shape.length;
      const permutation = attributeInts(attributes, 'perm') ?? first!.shape.map((_, i) => rank - 1 - i);
      const shape = permutation.map((axis) => first!.shape[axis]!);
      const sourceStrides = strides(first!.shape);
      const outStrides = strides(shape);
      const data: Scalar[] = [];
      for (let flat = 0; flat < sizeOf(shape); flat++) {
        let source = 0;
        for (let axis = 0; axis < rank; axis++)
          source +=
            (Math.floor(flat / outStrides[axis]!) % shape[axis]!) * sourceStrides[permutation[axis]!]!;
        data.push(first!.data[source]!);
      }
      return { kind: 'constant', shape, data };
    }
    case 'Add':
      return broadcastConstants(first!, inputs[1]!, (x, y) => x + y);
    case 'Sub':
      return broadcastConstants(first!, inputs[1]!, (x, y) => x - y);
    case 'Mul':
      return broadcastConstants(first!, inputs[1]!, (x, y) => x * y);
    case 'Div':
      return broadcastConstants(first!, inputs[1]!, (x, y) => x / y);
    default:
      return undefined;
  }
}

/** Emits the tensile layers for a node with at least one computed input. */
function importNode(
  reader: GraphReader,
  node: OnnxNodeMessage,
  inputs: (Value | undefined)[],
  attributes: Map<string, OnnxAttributeMessage>,
): Value {
  const x = inputs[0];
  const constantAt = (position: number, role: string): ConstantValue => {
    const value = inputs[position];
    if (value?.kind !== 'constant')
      return reader.unsupported(node, `needs a constant ${role} (input ${position})`);
    return value;
  };
  const what = `importOnnx: node '${node.name || node.output[0]}' (${node.opType})`;
  if (x?.kind !== 'tensor' && !['Add', 'Mul', 'Sub', 'Div', 'Concat'].includes(node.opType))
    return reader.unsupported(node, 'on a constant first input is not supported');
  const input = x as TensorValue;
  const rank = input?.sample.rank;

  switch (node.opType) {
    case 'Identity':
      return input;
    case 'Dropout': {
      const ratio =
        inputs[1]?.kind === 'constant'
          ? numbers(inputs[1], what)[0]!
          : attributeFloat(attributes, 'ratio', 0.5);
      return reader.addModule(new Dropout(ratio), input);
    }
    case 'Relu':
      return reader.addModule(new ReLU(), input);
    case 'Sigmoid':
      return reader.addModule(new Sigmoid(), input);
    case 'Tanh':
      return reader.addModule(new Tanh(), input);
    case 'LeakyRelu':
      return reader.addModule(new LeakyReLU(attributeFloat(attributes, 'alpha', 0.01)), input);
    case 'Elu':
      return reader.addModule(new ELU(attributeFloat(attributes, 'alpha', 1)), input);
    case 'Gelu':
      if (attributeString(attributes, 'approximate', 'none') !== 'none')
        return reader.unsupported(node, "with approximate='tanh' is not supported (tensile's GELU is exact)");
      return reader.addModule(new GELU(), input);
    case 'Softmax':
    case 'LogSoftmax': {
      // Before opset 13 the axis (default 1) flattened the trailing axes; equal to tensile's last-axis
      // softmax when it is the last axis.
      const axis = attributeInt(attributes, 'axis', reader.opset >= 13 ? -1 : 1);
      if ((axis + rank) % rank !== rank - 1)
        return reader.unsupported(
          node,
          `over axis ${axis} of a rank-${rank} value is not supported (tensile's softmax is over the last axis)`,
        );
      return reader.addModule(node.opType === 'Softmax' ? new Softmax() : new LogSoftmax(), input);
    }
    case 'Clip': {
      const bound = (position: number, name: string, fallback: number) => {
        if (reader.opset < 11) return attributeFloat(attributes, name, fallback);
        const value = inputs[position];
        if (value === undefined) return fallback;
        if (value.kind !== 'constant') return reader.unsupported(node, `needs a constant ${name} bound`);
        return numbers(value, what)[0]!;
      };
      return reader.addModule(new Clip(bound(1, 'min', -Infinity), bound(2, 'max', Infinity)), input);
    }
    case 'Conv': {
      const weight = constantAt(1, 'weight');
      if (attributeInt(attributes, 'group', 1) !== 1)
        return reader.unsupported(
          node,
          `with group ${attributeInt(attributes, 'group', 1)} is not supported (tensile's Conv2d has group 1)`,
        );
      if (weight.shape.length !== 4)
        return reader.unsupported(
          node,
          `with a rank-${weight.shape.length} weight is not supported (2-D convolutions only)`,
        );
      const [outChannels, inChannels, kernelHeight, kernelWidth] = weight.shape as [
        number,
        number,
        number,
        number,
      ];
      const stride = attributeInts(attributes, 'strides') ?? [1, 1];
      const dilation = attributeInts(attributes, 'dilations') ?? [1, 1];
      const autoPad = attributeString(attributes, 'auto_pad', 'NOTSET');
      let pads = attributeInts(attributes, 'pads') ?? [0, 0, 0, 0];
      if (autoPad === 'VALID') pads = [0, 0, 0, 0];
      else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
        if (stride[0] !== 1 || stride[1] !== 1)
          return reader.unsupported(
            node,
            `with auto_pad ${autoPad} and stride [${stride.join(', ')}] is not supported`,
          );
        const totals = [dilation[0]! * (kernelHeight - 1), dilation[1]! * (kernelWidth - 1)];
        const low = totals.map((total) =>
          autoPad === 'SAME_UPPER' ? Math.floor(total / 2) : Math.ceil(total / 2),
        );
        pads = [low[0]!, low[1]!, totals[0]! - low[0]!, totals[1]! - low[1]!];
      }
      let source = input;
      let padding: [number, number];
      if (pads[0] === pads[2] && pads[1] === pads[3]) padding = [pads[0]!, pads[1]!];
      else {
        // Uneven padding as its own layer, then a convolution without.
        source = reader.addModule(new ZeroPad2d([pads[0]!, pads[1]!, pads[2]!, pads[3]!]), input);
        padding = [0, 0];
      }
      const bias = inputs[2] === undefined ? null : constantAt(2, 'bias');
      const conv = new Conv2d(inChannels, outChannels, [kernelHeight, kernelWidth], {
        stride: [stride[0]!, stride[1]!],
        dilation: [dilation[0]!, dilation[1]!],
        padding,
        bias: bias !== null,
      });
      conv.weight.data.set(numbers(weight, what));
      if (bias !== null) conv.bias!.data.set(numbers(bias, what));
      return reader.addModule(conv, source);
    }
    case 'BatchNormalization': {
      if (attributeInt(attributes, 'training_mode', 0) !== 0 || node.output.length > 1)
        return reader.unsupported(
          node,
          'in training mode is not supported (export the model in inference mode)',
        );
      const scale = numbers(constantAt(1, 'scale'), what);
      const layer = new BatchNorm(scale.length, {
        eps: attributeFloat(attributes, 'epsilon', 1e-5),
        // ONNX's momentum weighs the running value, tensile's (PyTorch's) the batch.
        momentum: 1 - attributeFloat(attributes, 'momentum', 0.9),
      });
      layer.weight!.data.set(scale);
      layer.bias!.data.set(numbers(constantAt(2, 'bias'), what));
      layer.runningMean.data.set(numbers(constantAt(3, 'mean'), what));
      layer.runningVar.data.set(numbers(constantAt(4, 'variance'), what));
      return reader.addModule(layer, input);
    }
    case 'MaxPool':
    case 'AveragePool': {
      const kernel = attributeInts(attributes, 'kernel_shape')!;
      const stride = attributeInts(attributes, 'strides') ?? [1, 1];
      const pads = attributeInts(attributes, 'pads') ?? [0, 0, 0, 0];
      const dilation = attributeInts(attributes, 'dilations') ?? [1, 1];
      if (kernel.length !== 2)
        return reader.unsupported(node, `with a ${kernel.length}-D window is not supported`);
      if (dilation.some((d) => d !== 1)) return reader.unsupported(node, 'with dilation is not supported');
      if (
        attributeString(attributes, 'auto_pad', 'NOTSET') !== 'NOTSET' &&
        attributeString(attributes, 'auto_pad', 'NOTSET') !== 'VALID'
      )
        return reader.unsupported(
          node,
          `with auto_pad ${attributeString(attributes, 'auto_pad', '')} is not supported`,
        );
      if (pads[0] !== pads[2] || pads[1] !== pads[3])
        return reader.unsupported(node, `with uneven padding [${pads.join(', ')}] is not supported`);
      const options = {
        stride: [stride[0]!, stride[1]!] as [number, number],
        padding: [pads[0]!, pads[1]!] as [number, number],
        ceilMode: attributeInt(attributes, 'ceil_mode', 0) === 1,
      };
      const layer =
        node.opType === 'MaxPool'
          ? new MaxPool2d([kernel[0]!, kernel[1]!], options)
          : new AvgPool2d([kernel[0]!, kernel[1]!], {
              ...options,
              countIncludePad: attributeInt(attributes, 'count_include_pad', 0) === 1,
            });
      return reader.addModule(layer, input);
    }
    case 'GlobalAveragePool':
    case 'GlobalMaxPool': {
      // tensile's global pools drop the 1×1 axes ONNX keeps: they come back as a reshape, which a
      // following flatten or squeeze removes again.
      const pooled = reader.addModule(
        node.opType === 'GlobalAveragePool' ? new GlobalAvgPool2d() : new GlobalMaxPool2d(),
        input,
      );
      const kept = reader.addModule(new Reshape([pooled.sample.shape[1]!, 1, 1]), pooled);
      reader.keptDimensions.set(kept.index, pooled.index);
      return kept;
    }
    case 'Flatten':
    case 'Reshape':
    case 'Squeeze':
    case 'Unsqueeze':
      return importReshape(reader, node, input, inputs, attributes);
    case 'Transpose': {
      const permutation = attributeInts(attributes, 'perm') ?? input.sample.shape.map((_, i) => rank - 1 - i);
      if (permutation[0] !== 0)
        return reader.unsupported(node, `with perm [${permutation.join(', ')}] moves the batch axis`);
      return reader.addModule(new Permute(permutation), input);
    }
    case 'Pad': {
      const mode = attributeString(attributes, 'mode', 'constant');
      if (mode !== 'constant')
        return reader.unsupported(node, `with mode '${mode}' is not supported (zero padding only)`);
      const pads =
        reader.opset >= 11 ? numbers(constantAt(1, 'pads'), what) : (attributeInts(attributes, 'pads') ?? []);
      const fill =
        reader.opset >= 11
          ? inputs[2] === undefined
            ? 0
            : numbers(constantAt(2, 'value'), what)[0]
          : attributeFloat(attributes, 'value', 0);
      if (fill !== 0)
        return reader.unsupported(node, `with the value ${fill} is not supported (zero padding only)`);
      if (inputs[3] !== undefined) return reader.unsupported(node, 'with axes is not supported');
      if (
        rank !== 4 ||
        pads.length !== 8 ||
        pads[0] !== 0 ||
        pads[1] !== 0 ||
        pads[4] !== 0 ||
        pads[5] !== 0 ||
        pads.some((p) => p < 0)
      )
        return reader.unsupported(
          node,
          `with pads [${pads.join(', ')}] is not supported (non-negative, height and width of [N, C, H, W] only)`,
        );
      return reader.addModule(new ZeroPad2d([pads[2]!, pads[3]!, pads[6]!, pads[7]!]), input);
    }
    case 'MatMul': {
      const matrix = constantAt(1, 'weight');
      if (rank !== 2 || matrix.shape.length !== 2)
        return reader.unsupported(
          node,
          `of ${formatShape(input.sample.shape)} by ${formatShape(matrix.shape)} is not supported (a [N, K] value by a constant [K, M])`,
        );
      const [inFeatures, outFeatures] = matrix.shape as [number, number];
      const dense = new Dense(inFeatures, outFeatures, { bias: false });
      const values = numbers(matrix, what);
      for (let o = 0; o < outFeatures; o++)
        for (let i = 0; i < inFeatures; i++)
          dense.weight.data[o * inFeatures + i] = values[i * outFeatures + o]!;
      return reader.addModule(dense, input);
    }
    case 'Gemm': {
      if (attributeInt(attributes, 'transA', 0) !== 0)
        return reader.unsupported(node, 'with transA is not supported');
      const matrix = constantAt(1, 'weight');
      const alpha = attributeFloat(attributes, 'alpha', 1);
      const beta = attributeFloat(attributes, 'beta', 1);
      const transposed = attributeInt(attributes, 'transB', 0) === 1;
      const [rows, columns] = matrix.shape as [number, number];
      const [inFeatures, outFeatures] = transposed ? [columns, rows] : [rows, columns];
      const bias = inputs[2] === undefined ? null : constantAt(2, 'bias');
      const dense = new Dense(inFeatures, outFeatures, { bias: bias !== null });
      const values = numbers(matrix, what);
      for (let o = 0; o < outFeatures; o++)
        for (let i = 0; i < inFeatures; i++)
          dense.weight.data[o * inFeatures + i] =
            alpha * values[transposed ? o * inFeatures + i : i * outFeatures + o]!;
      if (bias !== null) {
        const shift = numbers(bias, what);
        if (sizeOf(bias.shape) !== 1 && sizeOf(bias.shape) !== outFeatures)
          return reader.unsupported(node, `with a bias of shape ${formatShape(bias.shape)} is not supported`);
        for (let o = 0; o < outFeatures; o++) dense.bias!.data[o] = beta * shift[shift.length === 1 ? 0 : o]!;
      }
      return reader.addModule(dense, input);
    }
    case 'Add':
    case 'Sub':
    case 'Mul':
    case 'Div':
      return importArithmetic(reader, node, inputs as Value[], what);
    case 'Concat': {
      const tensors = inputs.filter((value): value is TensorValue => value?.kind === 'tensor');
      if (tensors.length !== inputs.length)
        return reader.unsupported(node, 'of computed values with constants is not supported');
      if (tensors.length === 1) return tensors[0]!;
      const axis = (attributeInt(attributes, 'axis', 0) + rank) % rank;
      if (axis === 0) return reader.unsupported(node, 'along the batch axis is not supported');
      return reader.addJoin(
        'concat',
        tensors,
        operations.concat(
          tensors.map((value) => value.sample),
          axis,
        ),
        axis,
      );
    }
    default:
      return reader.unsupported(node, `is not supported; importOnnx reads ${supported.join(', ')}`);
  }
}

const operations = { add, concat, mul };

/** Add/Sub/Mul/Div: with a constant a fixed shift or scale (or a dense layer's bias), else a join. */
function importArithmetic(reader: GraphReader, node: OnnxNodeMessage, inputs: Value[], what: string): Value {
  const [left, right] = inputs as [Value, Value];
  if (left.kind === 'tensor' && right.kind === 'tensor') {
    if (node.opType === 'Add')
      return reader.addJoin('add', [left, right], operations.add(left.sample, right.sample));
    if (node.opType === 'Mul')
      return reader.addJoin('mul', [left, right], operations.mul(left.sample, right.sample));
    return reader.unsupported(node, 'of two computed values is not supported (Add and Mul are)');
  }
  const tensorFirst = left.kind === 'tensor';
  const input = (tensorFirst ? left : right) as TensorValue;
  const constant = (tensorFirst ? right : left) as ConstantValue;
  if (!tensorFirst && (node.opType === 'Sub' || node.opType === 'Div'))
    return reader.unsupported(node, 'of a constant by a computed value is not supported');
  let values = numbers(constant, what);
  if (node.opType === 'Sub') values = values.map((v) => -v);
  if (node.opType === 'Div') values = values.map((v) => 1 / v);
  const operation = node.opType === 'Add' || node.opType === 'Sub' ? 'add' : 'mul';
  // A bias after a bias-free dense layer (MatMul + Add, as exporters write torch.matmul(x, W) + b)
  // becomes that layer's bias when nothing else reads the product.
  const producer = reader.producer(input);
  const outFeatures = input.sample.shape[1];
  if (
    operation === 'add' &&
    producer instanceof Dense &&
    producer.bias === null &&
    producer.activation === 'none' &&
    input.index === reader.steps.length &&
    reader.readers.get(node.input[tensorFirst ? 0 : 1]!) === 1 &&
    values.length === outFeatures &&
    constant.shape.every((d, i) => d === 1 || i === constant.shape.length - 1)
  ) {
    const dense = new Dense(producer.inFeatures, producer.outFeatures);
    dense.weight.data.set(producer.weight.data);
    dense.bias!.data.set(values);
    const step = reader.steps[input.index - 1] as { kind: 'module'; module: Module; input: number };
    step.module = dense;
    const sample = noGrad(() => dense.call(reader.samples[step.input]!));
    reader.samples[input.index] = sample;
    return { kind: 'tensor', index: input.index, sample };
  }
  return reader.addModule(
    new ConstantArithmetic(operation, new Tensor(Float32Array.from(values), constant.shape)),
    input,
  );
}

/** Flatten, Reshape, Squeeze, Unsqueeze of a computed value: the batch axis must stay where it is. */
function importReshape(
  reader: GraphReader,
  node: OnnxNodeMessage,
  input: TensorValue,
  inputs: (Value | undefined)[],
  attributes: Map<string, OnnxAttributeMessage>,
): Value {
  const what = `importOnnx: node '${node.name || node.output[0]}' (${node.opType})`;
  const shape = input.sample.shape;
  const rank = shape.length;
  let target: number[];
  switch (node.opType) {
    case 'Flatten': {
      const axis = (attributeInt(attributes, 'axis', 1) + rank) % rank;
      if (axis === 0) return reader.unsupported(node, 'with axis 0 merges the batch axis');
      target = [sizeOf(shape.slice(1, axis)), sizeOf(shape.slice(axis))];
      if (axis === 1) target = [sizeOf(shape.slice(1))];
      break;
    }
    case 'Reshape': {
      const given = inputs[1];
      if (given?.kind !== 'constant') return reader.unsupported(node, 'needs a shape known at import');
      if (attributeInt(attributes, 'allowzero', 0) === 1 && given.data.includes(0))
        return reader.unsupported(node, 'with allowzero and a zero in the shape is not supported');
      const entries = given.data.map((d, i) => (d === 0 ? (i === 0 ? batch : shape[i]!) : d));
      if (entries.slice(1).includes(batch))
        return reader.unsupported(node, 'moves the batch size off the first axis');
      const rest = entries.slice(1) as number[];
      if (entries[0] === batch || (entries[0] === -1 && !rest.includes(-1))) target = rest;
      else
        return reader.unsupported(
          node,
          `fixes the batch size (shape [${given.data.join(', ')}]); export with a dynamic batch axis`,
        );
      if (entries[0] === -1 && sizeOf(rest) !== sizeOf(shape.slice(1)))
        return reader.unsupported(node, `to [${given.data.join(', ')}] does not keep the batch axis`);
      break;
    }
    default: {
      const given = inputs[1];
      const axes =
        given?.kind === 'constant' ? numbers(given, what) : (attributeInts(attributes, 'axes') ?? []);
      const outRank = node.opType === 'Squeeze' ? rank - axes.length : rank + axes.length;
      const normalized = axes.map(
        (axis) =>
          (axis + (node.opType === 'Squeeze' ? rank : outRank)) %
          (node.opType === 'Squeeze' ? rank : outRank),
      );
      if (normalized.includes(0)) return reader.unsupported(node, 'on the batch axis is not supported');
      const full = [...shape];
      if (node.opType === 'Squeeze') {
        const drop = axes.length === 0 ? full.map((d, i) => (d === 1 && i > 0 ? i : -1)) : normalized;
        target = full.filter((_, i) => !drop.includes(i)).slice(1);
      } else {
        for (const axis of [...normalized].sort((p, q) => p - q)) full.splice(axis, 0, 1);
        target = full.slice(1);
      }
    }
  }
  // After a global pool, the 1×1 axes it kept are dropped again: the pooled [N, C] value is the result.
  const pooled = reader.keptDimensions.get(input.index);
  if (pooled !== undefined && target.length === 1 && (target[0] === -1 || target[0] === shape[1]))
    return { kind: 'tensor', index: pooled, sample: reader.samples[pooled]! };
  const source = input;
  if (target.length === 1 && (target[0] === -1 || target[0] === sizeOf(source.sample.shape.slice(1))))
    return reader.addModule(new Flatten(), source);
  if (target.length === source.sample.rank - 1 && target.every((d, i) => d === source.sample.shape[i + 1]))
    return source;
  return reader.addModule(new Reshape(target), source);
}

/** Drops steps nothing reads (the keep-dims reshapes a flatten bypassed) and renumbers values. */
function pruned(steps: readonly GraphStep[], output: number): { steps: GraphStep[]; output: number } {
  const needed = new Set<number>([output]);
  for (let index = steps.length; index >= 1; index--) {
    if (!needed.has(index)) continue;
    const step = steps[index - 1]!;
    for (const value of step.kind === 'module' ? [step.input] : step.inputs) needed.add(value);
  }
  const renumbered = new Map<number, number>([[0, 0]]);
  const kept: GraphStep[] = [];
  steps.forEach((step, position) => {
    if (!needed.has(position + 1)) return;
    const map = (value: number) => renumbered.get(value)!;
    kept.push(
      step.kind === 'module'
        ? { ...step, input: map(step.input) }
        : step.kind === 'concat'
          ? { ...step, inputs: step.inputs.map(map) }
          : { ...step, inputs: [map(step.inputs[0]), map(step.inputs[1])] },
    );
    renumbered.set(position + 1, kept.length);
  });
  return { steps: kept, output: renumbered.get(output)! };
}

/** Parses ONNX bytes into a tensile model (see importOnnx). */
export function importOnnxBytes(bytes: Uint8Array, options: OnnxImportOptions = {}): ImportedOnnxModel {
  const model = decodeModel(bytes);
  const graph = model.graph;
  if (graph === undefined) throw new TypeError('importOnnx: the file holds no graph');
  const opset = Number(
    model.opsetImport?.find(
      (entry) => entry.domain === undefined || entry.domain === '' || entry.domain === 'ai.onnx',
    )?.version ?? 0,
  );
  const initializers = new Map((graph.initializer ?? []).map((tensor) => [tensor.name ?? '', tensor]));
  const graphInputs = (graph.input ?? []).filter((value) => !initializers.has(value.name));
  if (graphInputs.length !== 1)
    throw new TypeError(`importOnnx: the graph has ${graphInputs.length} inputs; tensile models take one`);
  const declared = graphInputs[0]!;
  const dims = declared.type?.tensorType?.shape?.dim ?? [];
  let inputShape = options.inputShape === undefined ? undefined : [...options.inputShape];
  if (inputShape === undefined) {
    const known = dims.slice(1).map((dim) => dim.dimValue);
    if (dims.length < 2 || known.some((d) => d === undefined || Number(d) < 1))
      throw new TypeError(
        `importOnnx: input '${declared.name}' has shape [${dims.map((dim) => dim.dimParam ?? dim.dimValue ?? '?').join(', ')}]; give options.inputShape (one example's shape)`,
      );
    inputShape = known.map(Number);
  }
  const reader = new GraphReader(opset, zeros([1, ...inputShape]));
  for (const [name, tensor] of initializers) reader.values.set(name, tensorData(tensor, name));
  reader.values.set(declared.name, { kind: 'tensor', index: 0, sample: reader.samples[0]! });
  const nodes = graph.node ?? [];
  for (const node of nodes)
    for (const name of node.input) reader.readers.set(name, (reader.readers.get(name) ?? 0) + 1);

  for (const node of nodes) {
    if (node.domain !== undefined && node.domain !== '' && node.domain !== 'ai.onnx')
      reader.unsupported(
        { ...node, opType: `${node.domain}.${node.opType}` },
        'is from an operator set importOnnx does not read',
      );
    const attributes = attributeMap(node);
    const inputs = node.input.map((name) => {
      if (name === '') return undefined;
      const value = reader.values.get(name);
      if (value === undefined)
        throw new TypeError(
          `importOnnx: node '${node.name || node.output[0]}' (${node.opType}) reads '${name}', which no earlier node writes`,
        );
      return value;
    });
    let result: Value;
    if (node.opType === 'Shape' && inputs[0]?.kind === 'tensor') {
      const shape = inputs[0].sample.shape;
      result = { kind: 'constant', shape: [shape.length], data: [batch, ...shape.slice(1)] };
    } else if (inputs.every((value) => value === undefined || value.kind === 'constant')) {
      const folded = foldConstant(reader, node, inputs as (ConstantValue | undefined)[], attributes);
      result =
        folded ?? reader.unsupported(node, `is not supported; importOnnx reads ${supported.join(', ')}`);
    } else {
      result = importNode(reader, node, inputs, attributes);
    }
    reader.values.set(node.output[0]!, result);
    // Dropout's mask output and other extras are never read by inference graphs tensile imports.
  }
  const outputName = graph.output?.[0]?.name;
  const output = outputName === undefined ? undefined : reader.values.get(outputName);
  if (output?.kind !== 'tensor')
    throw new TypeError(`importOnnx: the graph output '${outputName ?? ''}' is not computed from the input`);
  const { steps, output: last } = pruned(reader.steps, output.index);
  const chain =
    steps.every((step, index) => step.kind === 'module' && step.input === index) && last === steps.length;
  const built: Module = chain
    ? new Sequential(...steps.map((step) => (step as { module: Module }).module))
    : new GraphModule(steps, last);
  built.eval();
  return {
    model: built,
    inputShape,
    opset,
    producer: `${model.producerName ?? ''} ${model.producerVersion ?? ''}`.trim(),
  };
}

/**
 * Reads an ONNX file as a trainable tensile model: a Sequential when the graph is a chain of layers,
 * a GraphModule otherwise. Supports the operators of CNNs (Conv, BatchNormalization, the
 * activations, pooling, Gemm/MatMul) and the glue exporters write (Reshape, Flatten, Shape
 * arithmetic, Transpose, Clip, Pad, constant Add/Mul, Concat, Identity, Dropout). An operator it
 * cannot express throws UnsupportedOnnxOperatorError naming the operator, the node and the opset.
 *
 * @example
 * const { model } = importOnnx('resnet18.onnx');
 * replaceHead(model, 5); // when it is a Sequential or a ResNet
 * freezeEarly(model.train(), data, { epochs: 3 });
 */
export function importOnnx(file: string, options: OnnxImportOptions = {}): ImportedOnnxModel {
  return importOnnxBytes(fs.readFileSync(file), options);
}
