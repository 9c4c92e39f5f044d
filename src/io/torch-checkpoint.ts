/**
 * PyTorch checkpoints in: state dicts written by `torch.save(model.state_dict(), 'model.pth')`,
 * torchvision's `resnet18-*.pth` among them, read straight into a tensile model with the same names.
 *
 * The file is a zip archive (PyTorch ≥ 1.6) holding `<name>/data.pkl`, a pickle of the dict, and one
 * record `<name>/data/<key>` of raw little-endian elements per storage; a tensor in the pickle is
 * `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` over a storage named by a
 * persistent id ('storage', torch.FloatStorage, key, device, numel). The legacy format (before 1.6,
 * or `_use_new_zipfile_serialization=False`) is a run of pickles (magic number, protocol, system
 * info, the dict, the storage keys) followed by each storage's element count and data; it is read
 * too.
 *
 * The pickle is read as data (see pickle.ts), never run: only the globals a state dict needs are
 * allowed — OrderedDict, the tensor and parameter rebuild functions and the storage types — as
 * `torch.load(weights_only=True)` allows, and anything else is refused with its name. Every size
 * the file declares is checked against what the file holds before memory is given to it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import type { Module } from '../nn/module.js';
import { PickleDict, PickleError, type PickleObject, type PickleValue, unpickle } from './pickle.js';
import { looksLikeZip, ZipArchive, ZipError } from './zip-archive.js';

/** Element types of PyTorch storages. */
export type TorchDType =
  'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

/**
 * One tensor of a state dict, contiguous, row-major. float16 and bfloat16 are widened to float32;
 * int16 and int8 to Int32Array; bool to Uint8Array (0 or 1).
 */
export interface TorchTensor {
  dtype: TorchDType;
  shape: number[];
  data: Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;
}

/** A PyTorch checkpoint that cannot be read, or one that asks for more than a state dict. */
export class TorchCheckpointError extends Error {
  override name = 'TorchCheckpointError';
}

interface StorageType extends PickleObject {
  readonly kind: 'storageType';
  readonly dtype: TorchDType;
  readonly itemSize: number;
}

const storageTypes: [string, TorchDType, number][] = [
  ['FloatStorage', 'float32', 4],
  ['DoubleStorage', 'float64', 8],
  ['HalfStorage', 'float16', 2],
  ['BFloat16Storage', 'bfloat16', 2],
  ['LongStorage', 'int64', 8],
  ['IntStorage', 'int32', 4],
  ['ShortStorage', 'int16', 2],
  ['CharStorage', 'int8', 1],
  ['ByteStorage', 'uint8', 1],
  ['BoolStorage', 'bool', 1],
];

/** A storage named in the pickle; its bytes are read only once a tensor is materialised. */
interface StorageReference extends PickleObject {
  readonly kind: 'storage';
  readonly key: string;
  readonly type: StorageType;
  readonly elements: number;
}

/** A tensor as the pickle describes it: a strided view of a storage. */
interface TensorView extends PickleObject {
  readonly kind: 'tensor';
  readonly storage: StorageReference;
  readonly offset: number;
  readonly shape: number[];
  readonly stride: number[];
}

function isObject<K extends string>(value: PickleValue, kind: K): value is PickleObject & { kind: K } {
  return value !== null && typeof value === 'object' && 'kind' in value && value.kind === kind;
}

function checkIndices(value: PickleValue, what: string, fail: (message: string) => never): number[] {
  if (
    !Array.isArray(value) ||
    !value.every((item) => typeof item === 'number' && Number.isSafeInteger(item) && item >= 0)
  )
    fail(`${what} must be a tuple of non-negative integers, got ${describeValue(value)}`);
  return value as number[];
}

function describeValue(value: PickleValue): string {
  if (value === null) return 'None';
  if (Array.isArray(value)) return `a tuple of ${value.length}`;
  if (value instanceof PickleDict) return 'a dict';
  if (value instanceof Uint8Array) return 'bytes';
  if (typeof value === 'object') return `a ${value.kind}`;
  return `${typeof value} ${String(value)}`;
}

/** The globals a state dict needs, and what each stands for: nothing else may be named. */
function stateDictGlobals(fail: (message: string) => never): Map<string, PickleObject> {
  const rebuildTensor = (args: PickleValue[], name: string): TensorView => {
    const [storage, offset, size, stride] = args;
    if (!isObject(storage!, 'storage'))
      fail(`${name} needs a storage first, got ${describeValue(storage ?? null)}`);
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0)
      fail(
        `${name}: the storage offset must be a non-negative integer, got ${describeValue(offset ?? null)}`,
      );
    const shape = checkIndices(size ?? null, `${name}'s size`, fail);
    const strides = checkIndices(stride ?? null, `${name}'s stride`, fail);
    if (shape.length !== strides.length)
      fail(`${name}: size has ${shape.length} dimensions, stride ${strides.length}`);
    return {
      kind: 'tensor',
      storage: storage as StorageReference,
      offset: offset as number,
      shape,
      stride: strides,
    };
  };
  const globals = new Map<string, PickleObject>();
  globals.set('collections.OrderedDict', {
    kind: 'function',
    call(args) {
      if (args.length !== 0)
        fail('OrderedDict is called with arguments; a state dict is built empty and then filled');
      return new PickleDict();
    },
  });
  globals.set('torch._utils._rebuild_tensor_v2', {
    kind: 'function',
    // (storage, offset, size, stride, requires_grad, backward_hooks[, metadata]): the last ones do
    // not change the values.
    call: (args) => rebuildTensor(args, '_rebuild_tensor_v2'),
  });
  globals.set('torch._utils._rebuild_tensor', {
    kind: 'function',
    call: (args) => rebuildTensor(args, '_rebuild_tensor'),
  });
  const rebuildParameter = (args: PickleValue[]): PickleValue => {
    if (!isObject(args[0] ?? null, 'tensor'))
      fail(`_rebuild_parameter needs a tensor, got ${describeValue(args[0] ?? null)}`);
    return args[0]!;
  };
  globals.set('torch._utils._rebuild_parameter', { kind: 'function', call: rebuildParameter });
  globals.set('torch._utils._rebuild_parameter_with_state', { kind: 'function', call: rebuildParameter });
  for (const [name, dtype, itemSize] of storageTypes)
    globals.set(`torch.${name}`, { kind: 'storageType', dtype, itemSize } as StorageType);
  return globals;
}

const refusalHint =
  'tensile reads state dicts: save model.state_dict(), not the model object, and plain tensors only';

/** What a checkpoint's pickle holds before any storage is read. */
interface ParsedCheckpoint {
  dict: PickleValue;
  storages: Map<string, StorageReference>;
}

function parseStateDictPickle(
  bytes: Uint8Array,
  file: string,
  offset = 0,
): ParsedCheckpoint & { end: number } {
  const fail = (message: string): never => {
    throw new TorchCheckpointError(`${file}: ${message}`);
  };
  const storages = new Map<string, StorageReference>();
  const { value, end } = unpickle(bytes, {
    source: file,
    offset,
    globals: stateDictGlobals(fail),
    refusalHint,
    persistentLoad(id) {
      if (!Array.isArray(id) || id[0] !== 'storage' || id.length < 5)
        fail(`a persistent id that is not a storage: ${describeValue(id)}`);
      const [, type, key, , elements, view] = id as PickleValue[];
      if (!isObject(type!, 'storageType')) fail(`storage ${String(key)} has no storage type`);
      if (typeof key !== 'string') fail(`a storage key must be a string, got ${describeValue(key ?? null)}`);
      if (typeof elements !== 'number' || !Number.isSafeInteger(elements) || elements < 0)
        fail(`storage '${String(key)}' declares ${describeValue(elements ?? null)} elements`);
      if (view !== undefined && view !== null)
        fail(
          `storage '${String(key)}' is a view of another storage (PyTorch before 0.4); re-save it with a current PyTorch`,
        );
      const existing = storages.get(key as string);
      if (existing !== undefined) {
        if (existing.type !== type || existing.elements !== elements)
          fail(`storage '${String(key)}' is declared twice, differently`);
        return existing;
      }
      const storage: StorageReference = {
        kind: 'storage',
        key: key as string,
        type: type as StorageType,
        elements: elements as number,
      };
      storages.set(storage.key, storage);
      return storage;
    },
  });
  return { dict: value, storages, end };
}

/** The dict of tensors: the top-level dict, or the one under 'state_dict' or 'model' in a training checkpoint. */
function stateDictOf(value: PickleValue, file: string): Map<string, TensorView> {
  const tensorsOf = (dict: PickleDict): Map<string, TensorView> | undefined => {
    const tensors = new Map<string, TensorView>();
    for (const [key, item] of dict.entries) {
      if (typeof key !== 'string' || !isObject(item, 'tensor')) return undefined;
      tensors.set(key, item as TensorView);
    }
    return tensors;
  };
  if (!(value instanceof PickleDict))
    throw new TorchCheckpointError(
      `${file} holds ${describeValue(value)}, not a state dict (a dict of tensors)`,
    );
  const direct = tensorsOf(value);
  if (direct !== undefined) return direct;
  for (const key of ['state_dict', 'model_state_dict', 'model']) {
    const nested = value.entries.get(key);
    if (nested instanceof PickleDict) {
      const tensors = tensorsOf(nested);
      if (tensors !== undefined) return tensors;
    }
  }
  const offending = [...value.entries].find(
    ([key, item]) => typeof key !== 'string' || !isObject(item, 'tensor'),
  );
  throw new TorchCheckpointError(
    `${file} is not a state dict: entry ${JSON.stringify(String(offending?.[0]))} holds ${describeValue(offending?.[1] ?? null)}, not a tensor ` +
      `(and there is no 'state_dict' or 'model' entry that is one)`,
  );
}

function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** Reads element i of a little-endian storage as its dtype. */
type ElementReader = (index: number) => number | bigint;

function elementReader(dtype: TorchDType, bytes: Uint8Array): ElementReader {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'float32':
      return (i) => view.getFloat32(4 * i, true);
    case 'float64':
      return (i) => view.getFloat64(8 * i, true);
    case 'float16':
      return (i) => halfToFloat(view.getUint16(2 * i, true));
    case 'bfloat16':
      // A bfloat16 is the top half of a float32.
      return (i) => {
        scratch.setUint32(0, view.getUint16(2 * i, true) << 16);
        return scratch.getFloat32(0);
      };
    case 'int64':
      return (i) => view.getBigInt64(8 * i, true);
    case 'int32':
      return (i) => view.getInt32(4 * i, true);
    case 'int16':
      return (i) => view.getInt16(2 * i, true);
    case 'int8':
      return (i) => view.getInt8(i);
    case 'uint8':
      return (i) => view.getUint8(i);
    case 'bool':
      return (i) => (view.getUint8(i) === 0 ? 0 : 1);
  }
}
const scratch = new DataView(new ArrayBuffer(4));

function allocate(dtype: TorchDType, count: number): TorchTensor['data'] {
  switch (dtype) {
    case 'float32':
    case 'float16':
    case 'bfloat16':
      return new Float32Array(count);
    case 'float64':
      return new Float64Array(count);
    case 'int64':
      return new BigInt64Array(count);
    case 'int32':
    case 'int16':
    case 'int8':
      return new Int32Array(count);
    case 'uint8':
    case 'bool':
      return new Uint8Array(count);
  }
}

/**
 * Copies each tensor's strided view out of its storage into a contiguous array. Storage bytes come
 * from readStorage (once per storage), after its declared size is checked against the record.
 * Views are checked to lie inside their storage; identical views share one array, and the elements
 * copied in all are bounded by twice the storages' elements plus extraElements (overlapping views
 * such as a weight and its transpose both saved), so a small file cannot ask for gigabytes by
 * repeating a view.
 */
/**
 * Elements the views of a file may add beyond twice its storages' (64 MiB of float32): room for
 * legitimate overlapping views in small files, still bounded.
 */
const extraElements = 1 << 24;

/** Whether a view walks its storage in order (row-major strides), so it is one run of bytes. */
function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    if (shape[axis]! !== 1 && stride[axis]! !== expected) return false;
    expected *= shape[axis]!;
  }
  return true;
}

/** Dtypes whose bytes are their in-memory elements on a little-endian host (no widening). */
const copiedAsBytes = new Set<TorchDType>(['float32', 'float64', 'int64', 'int32', 'uint8']);
const littleEndianHost = os.endianness() === 'LE';

function materialise(
  views: Map<string, TensorView>,
  storages: Map<string, StorageReference>,
  readStorage: (storage: StorageReference) => Uint8Array,
  file: string,
): Map<string, TorchTensor> {
  const fail = (message: string): never => {
    throw new TorchCheckpointError(`${file}: ${message}`);
  };
  let budget = extraElements;
  for (const storage of storages.values()) budget += 2 * storage.elements;
  const bytesOf = new Map<string, Uint8Array>();
  const shared = new Map<string, TorchTensor>();
  const result = new Map<string, TorchTensor>();
  for (const [name, view] of views) {
    const { storage, offset, shape, stride } = view;
    const count = shape.reduce((product, dimension) => product * dimension, 1);
    const identity = `${storage.key}|${offset}|${shape.join(',')}|${stride.join(',')}`;
    const same = shared.get(identity);
    if (same !== undefined) {
      result.set(name, { dtype: same.dtype, shape: [...shape], data: same.data });
      continue;
    }
    if (count > 0) {
      let last = offset;
      shape.forEach((dimension, axis) => (last += (dimension - 1) * stride[axis]!));
      if (last >= storage.elements)
        fail(
          `tensor '${name}' (shape [${shape.join(', ')}], stride [${stride.join(', ')}], offset ${offset}) reaches element ${last} of storage '${storage.key}', which has ${storage.elements}`,
        );
    }
    budget -= count;
    if (budget < 0)
      fail(
        `tensor '${name}': the views of this file add up to more elements than twice its storages hold; save contiguous tensors`,
      );
    let bytes = bytesOf.get(storage.key);
    if (bytes === undefined) {
      bytes = readStorage(storage);
      bytesOf.set(storage.key, bytes);
    }
    const data = allocate(storage.type.dtype, count);
    if (littleEndianHost && copiedAsBytes.has(storage.type.dtype) && isContiguous(shape, stride)) {
      // The common case (every tensor of a plain state dict): one copy of the bytes.
      const itemSize = storage.type.itemSize;
      new Uint8Array(data.buffer).set(bytes.subarray(offset * itemSize, (offset + count) * itemSize));
      const tensor: TorchTensor = { dtype: storage.type.dtype, shape: [...shape], data };
      shared.set(identity, tensor);
      result.set(name, tensor);
      continue;
    }
    const read = elementReader(storage.type.dtype, bytes);
    // Row-major walk over the view: index holds the position along each axis.
    const index = new Array<number>(shape.length).fill(0);
    let source = offset;
    for (let i = 0; i < count; i++) {
      (data as { [i: number]: number | bigint })[i] = read(source);
      for (let axis = shape.length - 1; axis >= 0; axis--) {
        if (++index[axis]! < shape[axis]!) {
          source += stride[axis]!;
          break;
        }
        source -= (shape[axis]! - 1) * stride[axis]!;
        index[axis] = 0;
      }
    }
    const tensor: TorchTensor = { dtype: storage.type.dtype, shape: [...shape], data };
    shared.set(identity, tensor);
    result.set(name, tensor);
  }
  return result;
}

function readZipCheckpoint(file: string): Map<string, TorchTensor> {
  const archive = ZipArchive.open(file);
  try {
    const pickles = [...archive.entries.keys()].filter((name) => /^[^/]+\/data\.pkl$/.test(name));
    if (pickles.length !== 1)
      throw new TorchCheckpointError(
        `${file} is a zip archive but not a PyTorch checkpoint: it should hold one '<name>/data.pkl', it holds ${pickles.length}`,
      );
    const prefix = pickles[0]!.slice(0, -'data.pkl'.length);
    const byteOrder = archive.entries.get(`${prefix}byteorder`);
    if (byteOrder !== undefined) {
      const order = Buffer.from(archive.readEntry(byteOrder)).toString('latin1');
      if (order !== 'little')
        throw new TorchCheckpointError(
          `${file} stores its tensors ${order}-endian; tensile reads little-endian`,
        );
    }
    const { dict, storages } = parseStateDictPickle(
      archive.readEntry(archive.entries.get(pickles[0]!)!),
      file,
    );
    const views = stateDictOf(dict, file);
    return materialise(
      views,
      storages,
      (storage) => {
        const entry = archive.entries.get(`${prefix}data/${storage.key}`);
        if (entry === undefined)
          throw new TorchCheckpointError(
            `${file}: storage '${storage.key}' has no record '${prefix}data/${storage.key}'`,
          );
        const declared = storage.elements * storage.type.itemSize;
        if (declared > entry.uncompressedSize)
          throw new TorchCheckpointError(
            `${file}: storage '${storage.key}' declares ${storage.elements} ${storage.type.dtype} elements (${declared} bytes) but its record holds ${entry.uncompressedSize} bytes`,
          );
        return archive.readEntry(entry).subarray(0, declared);
      },
      file,
    );
  } finally {
    archive.close();
  }
}

/** The first pickle of a legacy checkpoint: PROTO 2, LONG1 of 10 bytes, 0x1950a86a20f9469cfc6c. */
const legacyMagic = Uint8Array.from([
  0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e,
]);

function isLegacy(head: Uint8Array): boolean {
  return head.length >= legacyMagic.length && legacyMagic.every((byte, i) => head[i] === byte);
}

function readLegacyCheckpoint(file: string): Map<string, TorchTensor> {
  // The legacy format has no index: the pickles and storages are read in turn from the whole file.
  const bytes = fs.readFileSync(file);
  const fail = (message: string): never => {
    throw new TorchCheckpointError(`${file}: ${message}`);
  };
  const plain = { source: file, globals: new Map<string, PickleObject>() };
  const magic = unpickle(bytes, { ...plain, offset: 0 });
  const protocol = unpickle(bytes, { ...plain, offset: magic.end });
  if (protocol.value !== 1001) fail(`legacy protocol version ${String(protocol.value)}, tensile reads 1001`);
  const system = unpickle(bytes, { ...plain, offset: protocol.end });
  if (system.value instanceof PickleDict && system.value.entries.get('little_endian') === false)
    fail('the checkpoint was written big-endian; tensile reads little-endian');
  const parsed = parseStateDictPickle(bytes, file, system.end);
  const keys = unpickle(bytes, { ...plain, offset: parsed.end });
  if (!Array.isArray(keys.value) || !keys.value.every((key) => typeof key === 'string'))
    fail('the list of storage keys after the state dict is missing');
  const records = new Map<string, Uint8Array>();
  let position = keys.end;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const key of keys.value as string[]) {
    const storage = parsed.storages.get(key);
    if (storage === undefined) fail(`storage '${key}' is stored but never used`);
    if (position + 8 > bytes.byteLength) fail(`the file ends before storage '${key}': it is truncated`);
    const count = view.getBigUint64(position, true);
    if (count !== BigInt(storage!.elements))
      fail(`storage '${key}' holds ${count} elements, the state dict says ${storage!.elements}`);
    const length = storage!.elements * storage!.type.itemSize;
    position += 8;
    if (position + length > bytes.byteLength)
      fail(
        `storage '${key}' declares ${length} bytes but the file has ${bytes.byteLength - position} left: it is truncated`,
      );
    records.set(key, bytes.subarray(position, position + length));
    position += length;
  }
  return materialise(
    stateDictOf(parsed.dict, file),
    parsed.storages,
    (storage) => records.get(storage.key) ?? fail(`storage '${storage.key}' has no data in the file`),
    file,
  );
}

/** Whether the file's first bytes are those of a PyTorch checkpoint (zip or legacy), by content. */
export function isTorchCheckpoint(file: string): boolean {
  const descriptor = fs.openSync(file, 'r');
  try {
    const head = new Uint8Array(legacyMagic.length);
    fs.readSync(descriptor, head, 0, head.length, 0);
    return looksLikeZip(head) || isLegacy(head);
  } finally {
    fs.closeSync(descriptor);
  }
}

/**
 * Reads a state dict saved with torch.save (zip or legacy format) as name → tensor, in the file's
 * order. Nothing in the file is executed; a pickle naming any global beyond a state dict's, a
 * truncated archive or a size the file does not hold is a TorchCheckpointError naming it.
 *
 * @example
 * const weights = readTorchStateDict('resnet18-f37072fd.pth');
 * weights.get('fc.weight')!.shape; // [1000, 512]
 */
export function readTorchStateDict(file: string): Map<string, TorchTensor> {
  const descriptor = fs.openSync(file, 'r');
  const head = new Uint8Array(legacyMagic.length);
  try {
    fs.readSync(descriptor, head, 0, head.length, 0);
  } finally {
    fs.closeSync(descriptor);
  }
  try {
    if (looksLikeZip(head)) return readZipCheckpoint(file);
    if (isLegacy(head)) return readLegacyCheckpoint(file);
  } catch (error) {
    if (error instanceof PickleError || error instanceof ZipError)
      throw new TorchCheckpointError(error.message);
    throw error;
  }
  throw new TorchCheckpointError(
    `${file} is not a PyTorch checkpoint (neither a zip archive nor the legacy format); very old files (tar) need re-saving with a current PyTorch: torch.save(torch.load(f), f)`,
  );
}

/**
 * Loads a torch.save'd state dict into model by name, as loadWeights does for safetensors: every
 * name and shape checked first (strict by default), float tensors only, `num_batches_tracked`
 * counters skipped (tensile's batch norm has none).
 *
 * @example
 * const model = resnet18();
 * loadTorchCheckpoint(model, 'resnet18-f37072fd.pth');
 */
export function loadTorchCheckpoint(model: Module, file: string, options: { strict?: boolean } = {}): void {
  const values = new Map<string, { shape: number[]; data: ArrayLike<number> }>();
  for (const [name, tensor] of readTorchStateDict(file)) {
    if (name.endsWith('num_batches_tracked')) continue;
    if (!(tensor.data instanceof Float32Array || tensor.data instanceof Float64Array))
      throw new TorchCheckpointError(
        `${file}: tensor '${name}' has dtype ${tensor.dtype}, expected a float dtype`,
      );
    values.set(name, { shape: tensor.shape, data: tensor.data });
  }
  model.loadStateDict(values, options.strict ?? true);
}
