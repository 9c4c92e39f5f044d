/**
 * The IDX format of the original MNIST distribution (http://yann.lecun.com/exdb/mnist/), also used
 * by Fashion-MNIST, KMNIST and EMNIST.
 *
 * Layout: two zero bytes, a dtype byte, the number of dimensions, then one big-endian u32 per
 * dimension, then the elements, big-endian, row-major. Files may be gzip-compressed (as distributed);
 * compression is detected by the gzip magic bytes, not by the file name.
 */
import * as fs from 'node:fs';
import { constants as bufferConstants } from 'node:buffer';
import { constants as zlibConstants, gunzipSync, gzipSync } from 'node:zlib';
import { writeFileAtomic } from '../io/atomic-write.js';
import { type ImageDataset, validateDataset } from './dataset.js';

export type IdxDType = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';

export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

export interface IdxArray {
  dtype: IdxDType;
  /** Dimensions as stored; product(shape) = data.length. */
  shape: number[];
  data: IdxData;
}

interface IdxDTypeInfo {
  code: number;
  itemSize: number;
}

const IDX_DTYPES: Record<IdxDType, IdxDTypeInfo> = {
  uint8: { code: 0x08, itemSize: 1 },
  int8: { code: 0x09, itemSize: 1 },
  int16: { code: 0x0b, itemSize: 2 },
  int32: { code: 0x0c, itemSize: 4 },
  float32: { code: 0x0d, itemSize: 4 },
  float64: { code: 0x0e, itemSize: 8 },
};

function dtypeOfCode(code: number): IdxDType | undefined {
  return (Object.keys(IDX_DTYPES) as IdxDType[]).find((dtype) => IDX_DTYPES[dtype].code === code);
}

/** A malformed IDX file, or image and label files that do not belong together. */
export class IdxError extends Error {
  readonly source: string;

  constructor(message: string, source: string) {
    super(message);
    this.name = 'IdxError';
    this.source = source;
  }
}

function hex(byte: number): string {
  return `0x${byte.toString(16).padStart(2, '0')}`;
}

function isGzip(bytes: Uint8Array): boolean {
  return bytes.byteLength >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** The longest IDX header: the magic and 255 dimensions. */
const LONGEST_HEADER = 4 + 4 * 255;

/**
 * The first bytes of a gzip stream's output, enough for the IDX header, from a small prefix of the
 * compressed bytes (deflate expands at most ~1,032×, so a 4 KiB prefix gives at most ~4 MiB): the
 * header is read before anything else is inflated.
 */
function inflateHeader(bytes: Uint8Array, source: string): Uint8Array {
  try {
    for (let prefix = 4096; ; prefix *= 4) {
      const head = gunzipSync(bytes.subarray(0, prefix), { finishFlush: zlibConstants.Z_SYNC_FLUSH });
      if (head.byteLength >= LONGEST_HEADER) return head;
      if (prefix >= bytes.byteLength) break;
    }
    // The whole file inflates to less than the longest header: inflate it again strictly, so that a
    // truncated stream is an error here rather than a short output.
    return gunzipSync(bytes, { maxOutputLength: LONGEST_HEADER });
  } catch (error) {
    throw new IdxError(`${source}: gzip data is corrupt (${(error as Error).message})`, source);
  }
}

/**
 * Inflates a whole gzip IDX file, stopping as soon as the output passes what its header declares: a
 * small file that inflates to gigabytes (a decompression bomb) costs no more memory than the data
 * its header promised.
 */
function inflateBounded(bytes: Uint8Array, expected: number, source: string): Uint8Array {
  try {
    return gunzipSync(bytes, { maxOutputLength: expected + 1 });
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new IdxError(
        `${source}: gzip data inflates to more than the ${expected} bytes its header declares ` +
          `(trailing data, or a decompression bomb); stopped there`,
        source,
      );
    }
    throw new IdxError(`${source}: gzip data is corrupt (${(error as Error).message})`, source);
  }
}

interface IdxHeader {
  dtype: IdxDType;
  shape: number[];
  headerLength: number;
  /** Bytes of data the shape needs (may exceed what any buffer can hold: checked by the caller). */
  dataBytes: number;
}

function parseHeader(bytes: Uint8Array, source: string): IdxHeader {
  if (bytes.byteLength < 4) {
    throw new IdxError(
      `${source}: file has ${bytes.byteLength} bytes, shorter than the 4-byte IDX magic`,
      source,
    );
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new IdxError(
      `${source}: bad magic: expected the first two bytes to be 0x00 0x00, got ${hex(bytes[0]!)} ${hex(bytes[1]!)} ` +
        `— not an IDX file`,
      source,
    );
  }
  const dtype = dtypeOfCode(bytes[2]!);
  if (dtype === undefined) {
    throw new IdxError(
      `${source}: bad magic: dtype byte ${hex(bytes[2]!)} is not one of 0x08 (u8), 0x09 (i8), 0x0b (i16), ` +
        `0x0c (i32), 0x0d (f32), 0x0e (f64)`,
      source,
    );
  }
  const dimensions = bytes[3]!;
  const headerLength = 4 + 4 * dimensions;
  if (bytes.byteLength < headerLength) {
    throw new IdxError(
      `${source}: header declares ${dimensions} dimensions (${headerLength} header bytes) but the file has only ` +
        `${bytes.byteLength} bytes — the file is truncated`,
      source,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape: number[] = [];
  for (let i = 0; i < dimensions; i++) shape.push(view.getUint32(4 + 4 * i, false));
  const count = shape.reduce((a, b) => a * b, 1);
  return { dtype, shape, headerLength, dataBytes: count * IDX_DTYPES[dtype].itemSize };
}

/**
 * Parses IDX bytes (optionally gzip-compressed). The header is read first; a shape whose data could
 * not fit in memory, or gzip data that inflates past what the header declares, is refused before
 * anything large is allocated.
 *
 * @param source names the file in error messages.
 */
export function parseIdx(fileBytes: Uint8Array, source = '<buffer>'): IdxArray {
  const gzipped = isGzip(fileBytes);
  const { dtype, shape, headerLength, dataBytes } = parseHeader(
    gzipped ? inflateHeader(fileBytes, source) : fileBytes,
    source,
  );
  if (headerLength + dataBytes > bufferConstants.MAX_LENGTH) {
    throw new IdxError(
      `${source}: shape [${shape.join(', ')}] of ${dtype} declares ${dataBytes} data bytes, more than one ` +
        `buffer can hold (${bufferConstants.MAX_LENGTH})`,
      source,
    );
  }
  const expected = headerLength + dataBytes;
  const bytes = gzipped ? inflateBounded(fileBytes, expected, source) : fileBytes;
  const count = dataBytes / IDX_DTYPES[dtype].itemSize;
  if (bytes.byteLength < expected) {
    throw new IdxError(
      `${source}: shape [${shape.join(', ')}] of ${dtype} needs ${dataBytes} data bytes, but the file has ` +
        `only ${bytes.byteLength - headerLength} after the header — the file is truncated`,
      source,
    );
  }
  if (bytes.byteLength > expected) {
    throw new IdxError(
      `${source}: shape [${shape.join(', ')}] of ${dtype} needs ${dataBytes} data bytes, but the file has ` +
        `${bytes.byteLength - headerLength} after the header (trailing data)`,
      source,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { dtype, shape, data: decodeBigEndian(dtype, view, headerLength, count) };
}

function decodeBigEndian(dtype: IdxDType, view: DataView, offset: number, count: number): IdxData {
  switch (dtype) {
    case 'uint8':
      return new Uint8Array(view.buffer, view.byteOffset + offset, count).slice();
    case 'int8':
      return new Int8Array(view.buffer, view.byteOffset + offset, count).slice();
    case 'int16': {
      const out = new Int16Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(offset + 2 * i, false);
      return out;
    }
    case 'int32': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(offset + 4 * i, false);
      return out;
    }
    case 'float32': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(offset + 4 * i, false);
      return out;
    }
    case 'float64': {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(offset + 8 * i, false);
      return out;
    }
  }
}

/** Reads an IDX file (optionally gzip-compressed). */
export function readIdx(path: string): IdxArray {
  // Node reads at most 2 GiB into one buffer; say so by name rather than with its RangeError.
  const size = fs.statSync(path).size;
  if (size > MAX_IDX_FILE_BYTES) {
    throw new IdxError(
      `${path}: the file has ${size} bytes; tensile reads IDX files of up to 2 GiB (split the data into several files)`,
      path,
    );
  }
  return parseIdx(fs.readFileSync(path), path);
}

/** The largest file fs.readFileSync reads in one piece. */
const MAX_IDX_FILE_BYTES = 2 ** 31 - 1;

/** Encodes an IDX array (uncompressed). */
export function serializeIdx(array: IdxArray): Uint8Array {
  const { dtype, shape, data } = array;
  const info = IDX_DTYPES[dtype];
  if (info === undefined) throw new TypeError(`serializeIdx: unknown dtype '${String(dtype)}'`);
  if (shape.length > 255)
    throw new RangeError(`serializeIdx: IDX holds at most 255 dimensions, got ${shape.length}`);
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) {
    throw new RangeError(
      `serializeIdx: shape [${shape.join(', ')}] has ${count} elements, data has ${data.length}`,
    );
  }
  const headerLength = 4 + 4 * shape.length;
  const out = new Uint8Array(headerLength + count * info.itemSize);
  const view = new DataView(out.buffer);
  out[2] = info.code;
  out[3] = shape.length;
  shape.forEach((dimension, i) => view.setUint32(4 + 4 * i, dimension, false));
  for (let i = 0; i < count; i++) {
    const at = headerLength + i * info.itemSize;
    const value = data[i]!;
    switch (dtype) {
      case 'uint8':
        view.setUint8(at, value);
        break;
      case 'int8':
        view.setInt8(at, value);
        break;
      case 'int16':
        view.setInt16(at, value, false);
        break;
      case 'int32':
        view.setInt32(at, value, false);
        break;
      case 'float32':
        view.setFloat32(at, value, false);
        break;
      case 'float64':
        view.setFloat64(at, value, false);
        break;
    }
  }
  return out;
}

/** Writes an IDX file atomically; gzip-compressed when `options.gzip` (the usual `.gz` files). */
export function writeIdx(path: string, array: IdxArray, options: { gzip?: boolean } = {}): void {
  const bytes = serializeIdx(array);
  writeFileAtomic(path, options.gzip ? gzipSync(bytes) : bytes);
}

export interface IdxImagesOptions {
  /** Names of the labels 0, 1, ...; default: the label numbers as strings ('0'..'9' for MNIST). */
  classNames?: string[];
  /**
   * The most classes a label file may imply when no class names are given (default 65,536, above
   * ImageNet-21k's 21,841): a corrupt label of 2,147,483,647 is an error, not two billion classes.
   */
  maxClasses?: number;
}

/**
 * Reads an image file ([count, height, width], uint8 scaled by 1/255, or float32/float64 taken as
 * they are) and its label file ([count], any integer dtype) into an ImageDataset with one channel.
 *
 * @example
 * const train = readIdxImages('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz');
 */
export function readIdxImages(
  imagesPath: string,
  labelsPath: string,
  options: IdxImagesOptions = {},
): ImageDataset {
  const imageArray = readIdx(imagesPath);
  const labelArray = readIdx(labelsPath);
  if (imageArray.shape.length !== 3) {
    throw new IdxError(
      `${imagesPath}: images must have 3 dimensions [count, height, width], got [${imageArray.shape.join(', ')}]`,
      imagesPath,
    );
  }
  if (labelArray.shape.length !== 1) {
    throw new IdxError(
      `${labelsPath}: labels must have 1 dimension [count], got [${labelArray.shape.join(', ')}]`,
      labelsPath,
    );
  }
  const [count, height, width] = imageArray.shape as [number, number, number];
  if (labelArray.shape[0] !== count) {
    throw new IdxError(
      `count mismatch: ${imagesPath} holds ${count} images but ${labelsPath} holds ${labelArray.shape[0]} labels`,
      labelsPath,
    );
  }

  let images: Float32Array;
  if (imageArray.dtype === 'uint8') {
    images = new Float32Array(imageArray.data.length);
    const pixels = imageArray.data;
    for (let i = 0; i < pixels.length; i++) images[i] = pixels[i]! / 255;
  } else if (imageArray.dtype === 'float32' || imageArray.dtype === 'float64') {
    images = Float32Array.from(imageArray.data);
  } else {
    throw new IdxError(
      `${imagesPath}: images must be uint8 (scaled to [0, 1]) or float32/float64, got ${imageArray.dtype}`,
      imagesPath,
    );
  }

  if (labelArray.dtype === 'float32' || labelArray.dtype === 'float64') {
    throw new IdxError(
      `${labelsPath}: labels must have an integer dtype, got ${labelArray.dtype}`,
      labelsPath,
    );
  }
  const labels = Int32Array.from(labelArray.data);
  const maxClasses = options.classNames?.length ?? options.maxClasses ?? 65_536;
  let maximum = -1;
  for (let i = 0; i < count; i++) {
    const label = labels[i]!;
    if (label < 0) throw new IdxError(`${labelsPath}: label ${i} is negative (${label})`, labelsPath);
    if (label >= maxClasses && options.classNames === undefined) {
      throw new IdxError(
        `${labelsPath}: label ${i} is ${label}, which would make ${label + 1} classes (the limit is ` +
          `${maxClasses}; pass classNames or maxClasses if that is meant)`,
        labelsPath,
      );
    }
    if (label > maximum) maximum = label;
  }
  const classNames = options.classNames ?? Array.from({ length: maximum + 1 }, (_, i) => String(i));
  if (maximum >= classNames.length) {
    throw new IdxError(
      `${labelsPath}: label ${maximum} has no class name (${classNames.length} names given)`,
      labelsPath,
    );
  }
  const dataset: ImageDataset = {
    images,
    labels,
    count,
    channels: 1,
    height,
    width,
    classes: classNames.length,
    classNames: [...classNames],
  };
  validateDataset(dataset, imagesPath);
  return dataset;
}
