/**
 * Reading and writing the safetensors format (https://huggingface.co/docs/safetensors).
 *
 * Layout: an 8-byte little-endian u64 N, then N bytes of UTF-8 JSON mapping each tensor name to
 * `{ dtype, shape, data_offsets: [begin, end] }` (offsets relative to the first byte after the header)
 * plus an optional `__metadata__` object of string → string, then the raw little-endian tensor data.
 *
 * Everything read is validated, and a bad file gets a SafetensorsError naming the file, the tensor and
 * the field with what was expected and what was found: a model file that is truncated or hand-edited
 * should fail here with a readable message, not later as a shape mismatch or garbage weights.
 */
import * as fs from 'node:fs';
import { writeFileAtomic } from './atomic-write.js';
import {
  checkedHeaderLength,
  decode,
  HEADER_LENGTH_BYTES,
  parseLayout,
  SafetensorsError,
  serializeSafetensors,
  tooShort,
  type SafetensorsEntry,
  type SafetensorsFile,
  type SafetensorsInput,
} from './safetensors-format.js';

// The format itself (bytes in, bytes out) lives in ./safetensors-format.ts, which touches no file
// system so that the browser build can use it; this module adds files.
export {
  int64ToInt32,
  parseSafetensors,
  SafetensorsError,
  serializeSafetensors,
  type SafetensorsData,
  type SafetensorsDType,
  type SafetensorsEntry,
  type SafetensorsFile,
  type SafetensorsInput,
} from './safetensors-format.js';

/**
 * Reads and parses a safetensors file (synchronously; see parseSafetensors). The header is read and
 * checked first, against the file's size, and then each tensor's bytes straight into its array: a
 * malformed file is refused before its data is read, files over 2 GiB work (no whole-file buffer),
 * and memory stays at the size of the tensors.
 */
export function readSafetensors(path: string): SafetensorsFile {
  const descriptor = fs.openSync(path, 'r');
  try {
    const fileSize = fs.fstatSync(descriptor).size;
    if (fileSize < HEADER_LENGTH_BYTES) throw tooShort(fileSize, path);
    const lengthBytes = readExactly(descriptor, new Uint8Array(HEADER_LENGTH_BYTES), 0, path);
    const declared = new DataView(lengthBytes.buffer).getBigUint64(0, true);
    const headerLength = checkedHeaderLength(declared, fileSize, path);
    const headerBytes = readExactly(descriptor, new Uint8Array(headerLength), HEADER_LENGTH_BYTES, path);
    const dataStart = HEADER_LENGTH_BYTES + headerLength;
    const { entries, metadata } = parseLayout(headerBytes, fileSize - dataStart, path);
    const tensors = new Map<string, SafetensorsEntry>();
    for (const entry of entries) {
      const raw = readExactly(
        descriptor,
        new Uint8Array(entry.end - entry.begin),
        dataStart + entry.begin,
        path,
      );
      tensors.set(entry.name, { dtype: entry.dtype, shape: entry.shape, data: decode(entry.dtype, raw) });
    }
    return { tensors, metadata };
  } finally {
    fs.closeSync(descriptor);
  }
}

function readExactly(descriptor: number, target: Uint8Array, position: number, source: string): Uint8Array {
  // readSync moves at most 2 GiB per call; loop in 1 GiB pieces.
  const piece = 1 << 30;
  let done = 0;
  while (done < target.byteLength) {
    const read = fs.readSync(
      descriptor,
      target,
      done,
      Math.min(piece, target.byteLength - done),
      position + done,
    );
    if (read === 0) {
      throw new SafetensorsError(
        `${source}: the file ended while reading it (it changed or is truncated)`,
        source,
      );
    }
    done += read;
  }
  return target;
}

/**
 * Writes a safetensors file atomically: a crash or a full disk leaves the previous file (if any)
 * intact rather than a truncated one, because the bytes go to a temporary file in the same directory
 * that is fsynced and then renamed over `path`.
 */
export function writeSafetensors(
  path: string,
  tensors: ReadonlyMap<string, SafetensorsInput> | Readonly<Record<string, SafetensorsInput>>,
  metadata?: Readonly<Record<string, string>>,
): void {
  writeFileAtomic(path, serializeSafetensors(tensors, metadata, path));
}
