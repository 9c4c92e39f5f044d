/**
 * The safetensors format (https://huggingface.co/docs/safetensors) to and from bytes, with no file
 * system: ./safetensors.ts reads and writes files with it, and the browser build uses it alone.
 *
 * Layout: an 8-byte little-endian u64 N, then N bytes of UTF-8 JSON mapping each tensor name to
 * `{ dtype, shape, data_offsets: [begin, end] }` (offsets relative to the first byte after the header)
 * plus an optional `__metadata__` object of string → string, then the raw little-endian tensor data.
 *
 * Everything read is validated, and a bad file gets a SafetensorsError naming the file, the tensor and
 * the field with what was expected and what was found: a model file that is truncated or hand-edited
 * should fail here with a readable message, not later as a shape mismatch or garbage weights.
 */

/** The safetensors dtypes tensile reads and writes. */
export type SafetensorsDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'U8';

/**
 * Element storage. F16 and BF16 are widened to Float32Array on read and narrowed back (round to
 * nearest even) on write, since JavaScript has no 16-bit float array.
 */
export type SafetensorsData = Float64Array | Float32Array | BigInt64Array | Int32Array | Uint8Array;

/** One tensor as read from a file: row-major data with `shape` (product(shape) elements). */
export interface SafetensorsEntry {
  dtype: SafetensorsDType;
  shape: number[];
  data: SafetensorsData;
}

/** One tensor to write; `dtype` defaults to the natural dtype of `data` (Float32Array → F32, ...). */
export interface SafetensorsInput {
  dtype?: SafetensorsDType;
  shape: readonly number[];
  data: SafetensorsData;
}

export interface SafetensorsFile {
  /** Tensors in the order of their data in the file. */
  tensors: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
}

/** A malformed safetensors file or an invalid tensor to write. */
export class SafetensorsError extends Error {
  /** The file (or '<buffer>') the problem is in. */
  readonly source: string;
  /** The tensor concerned, when there is one. */
  readonly tensorName: string | undefined;

  constructor(message: string, source: string, tensorName?: string) {
    super(message);
    this.name = 'SafetensorsError';
    this.source = source;
    this.tensorName = tensorName;
  }
}

interface DTypeInfo {
  itemSize: number;
  /** The typed array that holds this dtype in memory. */
  arrayName: 'Float64Array' | 'Float32Array' | 'BigInt64Array' | 'Int32Array' | 'Uint8Array';
}

const DTYPES: Record<SafetensorsDType, DTypeInfo> = {
  F64: { itemSize: 8, arrayName: 'Float64Array' },
  F32: { itemSize: 4, arrayName: 'Float32Array' },
  F16: { itemSize: 2, arrayName: 'Float32Array' },
  BF16: { itemSize: 2, arrayName: 'Float32Array' },
  I64: { itemSize: 8, arrayName: 'BigInt64Array' },
  I32: { itemSize: 4, arrayName: 'Int32Array' },
  U8: { itemSize: 1, arrayName: 'Uint8Array' },
};

const SUPPORTED_DTYPES = Object.keys(DTYPES) as SafetensorsDType[];

/** Valid in the format but not (yet) read by tensile: named separately so the error says which case. */
const OTHER_KNOWN_DTYPES = new Set([
  'BOOL',
  'I8',
  'I16',
  'U16',
  'U32',
  'U64',
  'F8_E4M3',
  'F8_E5M2',
  'F8_E8M0',
  'F6_E2M3',
  'F6_E3M2',
  'F4',
]);

export const HEADER_LENGTH_BYTES = 8;

// Tensor data is copied byte for byte into typed arrays, which use the host's byte order.
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error('tensile safetensors I/O assumes a little-endian host');
}

function isSupportedDType(value: string): value is SafetensorsDType {
  return Object.prototype.hasOwnProperty.call(DTYPES, value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `array ${JSON.stringify(value)}`;
  if (typeof value === 'object') return 'object';
  return `${typeof value} ${JSON.stringify(value)}`;
}

function formatShape(shape: readonly unknown[]): string {
  return `[${shape.join(',')}]`;
}

function product(shape: readonly number[]): number {
  let count = 1;
  for (const dimension of shape) count *= dimension;
  return count;
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

interface RawEntry {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * Parses a whole safetensors file held in memory. Tensor data is copied into fresh, aligned typed
 * arrays, so the result does not keep `bytes` alive and `bytes` may be reused.
 *
 * @param source names the file in error messages.
 * @example
 * const { tensors, metadata } = parseSafetensors(serializeSafetensors({ w: { shape: [2], data: new Float32Array([1, 2]) } }));
 * tensors.get('w')!.data; // Float32Array [1, 2]
 */
export function parseSafetensors(bytes: Uint8Array, source = '<buffer>'): SafetensorsFile {
  if (bytes.byteLength < HEADER_LENGTH_BYTES) throw tooShort(bytes.byteLength, source);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = checkedHeaderLength(view.getBigUint64(0, true), bytes.byteLength, source);
  const dataStart = HEADER_LENGTH_BYTES + headerLength;
  const { entries, metadata } = parseLayout(
    bytes.subarray(HEADER_LENGTH_BYTES, dataStart),
    bytes.byteLength - dataStart,
    source,
  );
  const tensors = new Map<string, SafetensorsEntry>();
  for (const entry of entries) {
    const raw = bytes.subarray(dataStart + entry.begin, dataStart + entry.end);
    tensors.set(entry.name, { dtype: entry.dtype, shape: entry.shape, data: decode(entry.dtype, raw) });
  }
  return { tensors, metadata };
}

export function tooShort(size: number, source: string): SafetensorsError {
  return new SafetensorsError(
    `${source}: file has ${size} bytes, but a safetensors file starts with an ` +
      `${HEADER_LENGTH_BYTES}-byte header length`,
    source,
  );
}

/** The safetensors reference implementation's limit: larger headers are refused, not parsed. */
const MAX_HEADER_BYTES = 100_000_000;

export function checkedHeaderLength(declared: bigint, fileSize: number, source: string): number {
  const bytesAfterLength = fileSize - HEADER_LENGTH_BYTES;
  if (declared > BigInt(bytesAfterLength)) {
    throw new SafetensorsError(
      `${source}: header length field says ${declared} bytes, but only ${bytesAfterLength} ` +
        `bytes follow it — the file is truncated or is not safetensors`,
      source,
    );
  }
  if (declared > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError(
      `${source}: header length field says ${declared} bytes, over the ${MAX_HEADER_BYTES}-byte limit for a header`,
      source,
    );
  }
  return Number(declared);
}

/**
 * Validates the header against a data section of `dataLength` bytes: every tensor inside it, none
 * overlapping, and no bytes after the last tensor (as the reference implementation requires: extra
 * bytes mean the file is not what its header says).
 */
export function parseLayout(
  headerBytes: Uint8Array,
  dataLength: number,
  source: string,
): { entries: RawEntry[]; metadata: Record<string, string> } {
  const header = parseHeaderJson(headerBytes, source);
  let metadata: Record<string, string> = {};
  const entries: RawEntry[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = validateMetadata(value, source);
    } else {
      entries.push(validateEntry(name, value, source));
    }
  }

  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let previous: RawEntry | undefined;
  let dataEnd = 0;
  for (const entry of entries) {
    if (entry.end > dataLength) {
      throw new SafetensorsError(
        `tensor '${entry.name}' in ${source} ends at byte ${entry.end} of the data section but the file has only ` +
          `${dataLength} bytes after the header — the file is truncated`,
        source,
        entry.name,
      );
    }
    dataEnd = Math.max(dataEnd, entry.end);
    // Empty tensors occupy no bytes and cannot overlap anything.
    if (entry.begin === entry.end) continue;
    if (previous !== undefined && entry.begin < previous.end) {
      throw new SafetensorsError(
        `tensors '${previous.name}' (bytes ${previous.begin}–${previous.end}) and '${entry.name}' ` +
          `(bytes ${entry.begin}–${entry.end}) in ${source} overlap in the data section`,
        source,
        entry.name,
      );
    }
    previous = entry;
  }
  if (dataLength > dataEnd) {
    throw new SafetensorsError(
      `${source}: ${dataLength - dataEnd} bytes follow the last tensor's data (the header describes ` +
        `${dataEnd} bytes of data) — the file is not what its header says`,
      source,
    );
  }
  return { entries, metadata };
}

/** Deeper JSON than any safetensors header needs (3 levels) is refused before JSON.parse sees it. */
const MAX_HEADER_NESTING = 32;

/**
 * One pass over the header text that JSON.parse cannot do for us: refuse nesting deeper than
 * MAX_HEADER_NESTING (JSON.parse would overflow the stack on hostile input and not say which file),
 * and find duplicate top-level keys (JSON.parse keeps the last one silently, so a file could carry
 * two different tensors under one name).
 */
function scanHeader(text: string, source: string): void {
  let depth = 0;
  let inString = false;
  let stringStart = 0;
  const keys = new Set<string>();
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (inString) {
      if (code === 0x5c)
        i++; // backslash: skip the escaped character
      else if (code === 0x22) {
        inString = false;
        if (depth === 1) {
          let next = i + 1;
          while (next < text.length && /\s/.test(text[next]!)) next++;
          if (text[next] === ':') {
            const key = JSON.parse(text.slice(stringStart, i + 1)) as string;
            if (keys.has(key)) {
              throw new SafetensorsError(`${source}: header names '${key}' twice`, source, key);
            }
            keys.add(key);
          }
        }
      }
    } else if (code === 0x22) {
      inString = true;
      stringStart = i;
    } else if (code === 0x7b || code === 0x5b) {
      if (++depth > MAX_HEADER_NESTING) {
        throw new SafetensorsError(
          `${source}: header JSON nests deeper than ${MAX_HEADER_NESTING} levels (a safetensors header needs 3)`,
          source,
        );
      }
    } else if (code === 0x7d || code === 0x5d) depth--;
  }
}

function parseHeaderJson(headerBytes: Uint8Array, source: string): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw new SafetensorsError(`${source}: header is not valid UTF-8`, source);
  }
  let header: unknown;
  try {
    scanHeader(text, source);
    header = JSON.parse(text);
  } catch (error) {
    if (error instanceof SafetensorsError) throw error;
    throw new SafetensorsError(
      `${source}: header is not valid JSON (${(error as Error).message}); it starts ${JSON.stringify(text.slice(0, 40))}`,
      source,
    );
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw new SafetensorsError(
      `${source}: header must be a JSON object mapping tensor names to {dtype, shape, data_offsets}, ` +
        `got ${describe(header)}`,
      source,
    );
  }
  return header as Record<string, unknown>;
}

function validateMetadata(value: unknown, source: string): Record<string, string> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new SafetensorsError(
      `${source}: __metadata__ must be an object of string values, got ${describe(value)}`,
      source,
    );
  }
  const metadata: Record<string, string> = {};
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== 'string') {
      throw new SafetensorsError(
        `${source}: __metadata__ entry '${key}' must be a string, got ${describe(item)}`,
        source,
      );
    }
    metadata[key] = item;
  }
  return metadata;
}

function validateEntry(name: string, value: unknown, source: string): RawEntry {
  const where = `tensor '${name}' in ${source}`;
  const fail = (message: string): never => {
    throw new SafetensorsError(`${where}: ${message}`, source, name);
  };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return fail(`expected an object {dtype, shape, data_offsets}, got ${describe(value)}`);
  }
  const record = value as Record<string, unknown>;
  for (const field of ['dtype', 'shape', 'data_offsets']) {
    if (!(field in record)) fail(`missing field '${field}'`);
  }

  const dtype = record.dtype;
  if (typeof dtype !== 'string') return fail(`dtype must be a string, got ${describe(dtype)}`);
  if (!isSupportedDType(dtype)) {
    const expected = `expected one of ${SUPPORTED_DTYPES.join(', ')}`;
    return fail(
      OTHER_KNOWN_DTYPES.has(dtype)
        ? `dtype '${dtype}' is valid safetensors but not supported by tensile (${expected})`
        : `unknown dtype '${dtype}' (${expected})`,
    );
  }

  const shape = record.shape;
  if (!Array.isArray(shape)) return fail(`shape must be an array of integers, got ${describe(shape)}`);
  shape.forEach((dimension: unknown, index) => {
    if (typeof dimension !== 'number' || !Number.isSafeInteger(dimension)) {
      fail(`shape ${JSON.stringify(shape)} has a non-integer dimension at index ${index}`);
    } else if (dimension < 0) {
      fail(`shape ${formatShape(shape)} has a negative dimension at index ${index}`);
    }
  });

  const offsets = record.data_offsets;
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((offset) => typeof offset === 'number' && Number.isSafeInteger(offset) && offset >= 0)
  ) {
    return fail(`data_offsets must be two non-negative integers [begin, end], got ${describe(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) fail(`data_offsets [${begin},${end}] end before they begin`);

  const needed = product(shape as number[]) * DTYPES[dtype].itemSize;
  if (end - begin !== needed) {
    fail(`shape ${formatShape(shape)} ${dtype} needs ${needed} bytes, data_offsets span ${end - begin}`);
  }
  return { name, dtype, shape: (shape as number[]).slice(), begin, end };
}

/** Copies raw little-endian bytes into a fresh typed array of the dtype's in-memory type. */
export function decode(dtype: SafetensorsDType, raw: Uint8Array): SafetensorsData {
  const count = raw.byteLength / DTYPES[dtype].itemSize;
  switch (dtype) {
    case 'F64':
      return copyInto(new Float64Array(count), raw);
    case 'F32':
      return copyInto(new Float32Array(count), raw);
    case 'I64':
      return copyInto(new BigInt64Array(count), raw);
    case 'I32':
      return copyInto(new Int32Array(count), raw);
    case 'U8':
      return raw.slice();
    case 'F16': {
      const halves = copyInto(new Uint16Array(count), raw);
      const table = halfTable();
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = table[halves[i]!]!;
      return out;
    }
    case 'BF16': {
      // A bfloat16 is the top half of a float32, so widening is a 16-bit shift.
      const halves = copyInto(new Uint16Array(count), raw);
      const words = new Uint32Array(count);
      for (let i = 0; i < count; i++) words[i] = halves[i]! << 16;
      return new Float32Array(words.buffer);
    }
  }
}

function copyInto<T extends ArrayBufferView>(target: T, raw: Uint8Array): T {
  new Uint8Array(target.buffer, target.byteOffset, target.byteLength).set(raw);
  return target;
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/**
 * Encodes tensors and optional string metadata as a safetensors file.
 *
 * Tensors are laid out by decreasing item size (then in the given order), and the header is padded
 * with spaces to a multiple of 8 bytes, so every tensor starts at an offset aligned to its item size
 * and readers can map the data without copying.
 *
 * @example
 * const bytes = serializeSafetensors({ weight: { shape: [2, 2], data: new Float32Array(4) } }, { epoch: '3' });
 */
export function serializeSafetensors(
  tensors: ReadonlyMap<string, SafetensorsInput> | Readonly<Record<string, SafetensorsInput>>,
  metadata?: Readonly<Record<string, string>>,
  source = '<buffer>',
): Uint8Array {
  const pairs = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const prepared = pairs.map(([name, input], order) => {
    const dtype = validateInput(name, input, source);
    return { name, input, dtype, order, itemSize: DTYPES[dtype].itemSize };
  });
  prepared.sort((a, b) => b.itemSize - a.itemSize || a.order - b.order);

  const header: Record<string, unknown> = {};
  if (metadata !== undefined) {
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== 'string') {
        throw new SafetensorsError(
          `${source}: metadata entry '${key}' must be a string, got ${describe(value)}`,
          source,
        );
      }
    }
    header.__metadata__ = { ...metadata };
  }
  let dataLength = 0;
  for (const tensor of prepared) {
    const byteLength = tensor.input.data.length * tensor.itemSize;
    header[tensor.name] = {
      dtype: tensor.dtype,
      shape: [...tensor.input.shape],
      data_offsets: [dataLength, dataLength + byteLength],
    };
    dataLength += byteLength;
  }

  const json = new TextEncoder().encode(JSON.stringify(header));
  const paddedLength = Math.ceil(json.byteLength / 8) * 8;
  const out = new Uint8Array(HEADER_LENGTH_BYTES + paddedLength + dataLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(paddedLength), true);
  out.set(json, HEADER_LENGTH_BYTES);
  out.fill(0x20, HEADER_LENGTH_BYTES + json.byteLength, HEADER_LENGTH_BYTES + paddedLength);
  let offset = HEADER_LENGTH_BYTES + paddedLength;
  for (const tensor of prepared) {
    const byteLength = tensor.input.data.length * tensor.itemSize;
    encode(tensor.dtype, tensor.input.data, out.subarray(offset, offset + byteLength));
    offset += byteLength;
  }
  return out;
}

function naturalDType(data: SafetensorsData): SafetensorsDType | undefined {
  if (data instanceof Float64Array) return 'F64';
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof BigInt64Array) return 'I64';
  if (data instanceof Int32Array) return 'I32';
  if (data instanceof Uint8Array) return 'U8';
  return undefined;
}

function validateInput(name: string, input: SafetensorsInput, source: string): SafetensorsDType {
  const fail = (message: string): never => {
    throw new SafetensorsError(`tensor '${name}' for ${source}: ${message}`, source, name);
  };
  if (name === '' || name === '__metadata__') fail(`the name '${name}' is reserved or empty`);
  const dataType = naturalDType(input.data);
  const actualArray = (input.data as object).constructor?.name ?? typeof input.data;
  if (dataType === undefined) return fail(`unsupported data array ${actualArray}`);
  const dtype = input.dtype ?? dataType;
  if (!isSupportedDType(dtype)) return fail(`unknown dtype '${String(dtype)}'`);
  // Compared through naturalDType (instanceof), so subclasses such as Node's Buffer are accepted.
  if (DTYPES[dtype].arrayName !== DTYPES[dataType].arrayName) {
    fail(`dtype ${dtype} is held in a ${DTYPES[dtype].arrayName}, got a ${actualArray}`);
  }
  for (const [index, dimension] of input.shape.entries()) {
    if (!Number.isSafeInteger(dimension) || dimension < 0) {
      fail(`shape ${formatShape(input.shape)} has an invalid dimension at index ${index}`);
    }
  }
  const count = product(input.shape);
  if (count !== input.data.length) {
    fail(`shape ${formatShape(input.shape)} has ${count} elements but data has ${input.data.length}`);
  }
  return dtype;
}

function encode(dtype: SafetensorsDType, data: SafetensorsData, out: Uint8Array): void {
  if (dtype === 'F16' || dtype === 'BF16') {
    const values = data as Float32Array;
    const halves = new Uint16Array(values.length);
    const narrow = dtype === 'F16' ? floatToHalf : floatToBrainFloat;
    for (let i = 0; i < values.length; i++) halves[i] = narrow(values[i]!);
    out.set(new Uint8Array(halves.buffer));
  } else {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
}

// ---------------------------------------------------------------------------------------------
// 16-bit floats
// ---------------------------------------------------------------------------------------------

const scratchFloat = new Float32Array(1);
const scratchBits = new Uint32Array(scratchFloat.buffer);

let halfToFloatTable: Float32Array | undefined;

/** All 65,536 IEEE binary16 values as float32, built on first use (256 KiB). */
function halfTable(): Float32Array {
  if (halfToFloatTable !== undefined) return halfToFloatTable;
  const table = new Float32Array(65536);
  for (let bits = 0; bits < 65536; bits++) {
    const sign = bits & 0x8000 ? -1 : 1;
    const exponent = (bits >> 10) & 0x1f;
    const mantissa = bits & 0x3ff;
    if (exponent === 0) table[bits] = sign * mantissa * 2 ** -24;
    else if (exponent === 0x1f) table[bits] = mantissa === 0 ? sign * Infinity : NaN;
    else table[bits] = sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  halfToFloatTable = table;
  return table;
}

/** float32 → IEEE binary16 bits, rounding to nearest even; overflow gives ±Infinity. */
function floatToHalf(value: number): number {
  scratchFloat[0] = value;
  const bits = scratchBits[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 : 0);
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent >= 1) {
    const rest = mantissa & 0x1fff;
    let half = (halfExponent << 10) | (mantissa >>> 13);
    // A carry out of the mantissa correctly bumps the exponent (and reaches Infinity at the top).
    if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half += 1;
    return sign | half;
  }
  // Subnormal half: value = m · 2^-24 with m < 1024; anything below 2^-25 rounds to zero.
  if (halfExponent < -10) return sign;
  const full = mantissa | 0x800000;
  const shift = 14 - halfExponent;
  let half = full >>> shift;
  const rest = full & ((1 << shift) - 1);
  const halfway = 1 << (shift - 1);
  if (rest > halfway || (rest === halfway && (half & 1) === 1)) half += 1;
  return sign | half;
}

/** float32 → bfloat16 bits, rounding to nearest even; NaN stays NaN. */
function floatToBrainFloat(value: number): number {
  scratchFloat[0] = value;
  const bits = scratchBits[0]!;
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0) return (bits >>> 16) | 0x40;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

// ---------------------------------------------------------------------------------------------
// Conversions
// ---------------------------------------------------------------------------------------------

/**
 * Narrows int64 data (PyTorch's default for class indices) to an Int32Array, throwing a RangeError
 * that names the element when a value does not fit.
 *
 * @param label names the data in the error message, e.g. "tensor 'target' in case.safetensors".
 */
export function int64ToInt32(data: BigInt64Array, label = 'int64 data'): Int32Array {
  const out = new Int32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const value = data[i]!;
    if (value < -2147483648n || value > 2147483647n) {
      throw new RangeError(
        `${label}: element ${i} is ${value}, outside the int32 range [-2147483648, 2147483647]`,
      );
    }
    out[i] = Number(value);
  }
  return out;
}
