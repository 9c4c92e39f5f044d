/**
 * The part of the ONNX protobuf schema (onnx.proto, IR version 7–10) that tensile writes and reads,
 * declared as a protobufjs reflection tree: models, graphs, nodes, attributes, tensors, value types
 * and operator-set ids. Field numbers and wire types are those of onnx.proto, which is what makes
 * the files readable by onnxruntime, onnx.checker and PyTorch; fields tensile never uses (training
 * info, functions, sparse tensors, sequence and map types) are left out, and protobuf's rules make a
 * reader skip them in files that carry them.
 *
 * onnx.proto is a proto2 schema: its repeated numbers are unpacked except in TensorProto, where they
 * are declared packed. Both are stated here so that what tensile writes is what the schema says;
 * protobuf readers accept either form.
 */
import protobuf from 'protobufjs';

/** TensorProto.DataType values tensile reads or writes. */
export const onnxDataType = {
  float: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  double: 11,
} as const;

/** AttributeProto.AttributeType values. */
export const onnxAttributeType = {
  float: 1,
  int: 2,
  string: 3,
  tensor: 4,
  graph: 5,
  floats: 6,
  ints: 7,
  strings: 8,
} as const;

/** A TensorProto as protobufjs reads and writes it (camelCase field names). */
export interface OnnxTensorMessage {
  name?: string;
  dims?: number[];
  dataType?: number;
  floatData?: number[];
  int32Data?: number[];
  int64Data?: number[];
  doubleData?: number[];
  rawData?: Uint8Array;
  dataLocation?: number;
}

export interface OnnxAttributeMessage {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: OnnxTensorMessage;
  floats?: number[];
  ints?: number[];
  strings?: Uint8Array[];
}

export interface OnnxNodeMessage {
  input: string[];
  output: string[];
  name?: string;
  opType: string;
  domain?: string;
  attribute?: OnnxAttributeMessage[];
}

export interface OnnxDimensionMessage {
  dimValue?: number;
  dimParam?: string;
}

export interface OnnxValueInfoMessage {
  name: string;
  type?: {
    tensorType?: { elemType?: number; shape?: { dim?: OnnxDimensionMessage[] } };
  };
}

export interface OnnxGraphMessage {
  node?: OnnxNodeMessage[];
  name?: string;
  initializer?: OnnxTensorMessage[];
  input?: OnnxValueInfoMessage[];
  output?: OnnxValueInfoMessage[];
  valueInfo?: OnnxValueInfoMessage[];
  docString?: string;
}

export interface OnnxModelMessage {
  irVersion?: number;
  opsetImport?: { domain?: string; version?: number }[];
  producerName?: string;
  producerVersion?: string;
  docString?: string;
  graph?: OnnxGraphMessage;
  metadataProps?: { key?: string; value?: string }[];
}

type FieldSpec = [name: string, id: number, type: string, rule?: 'repeated' | 'packed'];

/** One message type from its fields: repeated ones unpacked (proto2) unless marked 'packed'. */
function message(fields: FieldSpec[], nested?: Record<string, protobuf.AnyNestedObject>) {
  return {
    fields: Object.fromEntries(
      fields.map(([name, id, type, rule]) => [
        name,
        rule === undefined
          ? { type, id }
          : { type, id, rule: 'repeated', options: { packed: rule === 'packed' } },
      ]),
    ),
    ...(nested === undefined ? {} : { nested }),
  };
}

const schema: protobuf.INamespace = {
  nested: {
    onnx: {
      nested: {
        AttributeProto: message([
          ['name', 1, 'string'],
          ['f', 2, 'float'],
          ['i', 3, 'int64'],
          ['s', 4, 'bytes'],
          ['t', 5, 'TensorProto'],
          ['g', 6, 'GraphProto'],
          ['floats', 7, 'float', 'repeated'],
          ['ints', 8, 'int64', 'repeated'],
          ['strings', 9, 'bytes', 'repeated'],
          ['tensors', 10, 'TensorProto', 'repeated'],
          ['docString', 13, 'string'],
          ['type', 20, 'int32'],
          ['refAttrName', 21, 'string'],
        ]),
        ValueInfoProto: message([
          ['name', 1, 'string'],
          ['type', 2, 'TypeProto'],
          ['docString', 3, 'string'],
        ]),
        NodeProto: message([
          ['input', 1, 'string', 'repeated'],
          ['output', 2, 'string', 'repeated'],
          ['name', 3, 'string'],
          ['opType', 4, 'string'],
          ['attribute', 5, 'AttributeProto', 'repeated'],
          ['docString', 6, 'string'],
          ['domain', 7, 'string'],
        ]),
        ModelProto: message([
          ['irVersion', 1, 'int64'],
          ['producerName', 2, 'string'],
          ['producerVersion', 3, 'string'],
          ['domain', 4, 'string'],
          ['modelVersion', 5, 'int64'],
          ['docString', 6, 'string'],
          ['graph', 7, 'GraphProto'],
          ['opsetImport', 8, 'OperatorSetIdProto', 'repeated'],
          ['metadataProps', 14, 'StringStringEntryProto', 'repeated'],
        ]),
        StringStringEntryProto: message([
          ['key', 1, 'string'],
          ['value', 2, 'string'],
        ]),
        GraphProto: message([
          ['node', 1, 'NodeProto', 'repeated'],
          ['name', 2, 'string'],
          ['initializer', 5, 'TensorProto', 'repeated'],
          ['docString', 10, 'string'],
          ['input', 11, 'ValueInfoProto', 'repeated'],
          ['output', 12, 'ValueInfoProto', 'repeated'],
          ['valueInfo', 13, 'ValueInfoProto', 'repeated'],
        ]),
        TensorProto: message([
          ['dims', 1, 'int64', 'repeated'],
          ['dataType', 2, 'int32'],
          ['floatData', 4, 'float', 'packed'],
          ['int32Data', 5, 'int32', 'packed'],
          ['stringData', 6, 'bytes', 'repeated'],
          ['int64Data', 7, 'int64', 'packed'],
          ['name', 8, 'string'],
          ['rawData', 9, 'bytes'],
          ['doubleData', 10, 'double', 'packed'],
          ['uint64Data', 11, 'uint64', 'packed'],
          ['docString', 12, 'string'],
          ['externalData', 13, 'StringStringEntryProto', 'repeated'],
          ['dataLocation', 14, 'int32'],
        ]),
        TensorShapeProto: message([['dim', 1, 'Dimension', 'repeated']], {
          Dimension: {
            oneofs: { value: { oneof: ['dimValue', 'dimParam'] } },
            fields: {
              dimValue: { type: 'int64', id: 1 },
              dimParam: { type: 'string', id: 2 },
              denotation: { type: 'string', id: 3 },
            },
          },
        }),
        TypeProto: {
          oneofs: { value: { oneof: ['tensorType'] } },
          fields: {
            tensorType: { type: 'Tensor', id: 1 },
            denotation: { type: 'string', id: 6 },
          },
          nested: {
            Tensor: message([
              ['elemType', 1, 'int32'],
              ['shape', 2, 'TensorShapeProto'],
            ]),
          },
        },
        OperatorSetIdProto: message([
          ['domain', 1, 'string'],
          ['version', 2, 'int64'],
        ]),
      },
    },
  },
};

let modelType: protobuf.Type | undefined;

/** The ModelProto type, built once. */
function model(): protobuf.Type {
  modelType ??= protobuf.Root.fromJSON(schema).lookupType('onnx.ModelProto');
  return modelType;
}

/** Serialises a model message to ONNX bytes. */
export function encodeModel(value: OnnxModelMessage): Uint8Array {
  const type = model();
  return type.encode(type.fromObject(value as Record<string, unknown>)).finish();
}

/** Parses ONNX bytes; 64-bit integers come back as numbers (every size tensile handles fits). */
export function decodeModel(bytes: Uint8Array): OnnxModelMessage {
  const type = model();
  return type.toObject(type.decode(bytes), {
    longs: Number,
    arrays: true,
    defaults: false,
  }) as OnnxModelMessage;
}
