/**
 * A small reader for zip archives (PKWARE's APPNOTE: end-of-central-directory record, central
 * directory, local headers; zip64 records for archives over 4 GiB), enough for PyTorch's checkpoint
 * files, which are zip archives whose entries are usually stored uncompressed. Deflated entries are
 * inflated with node:zlib. Written here rather than taken from npm: it is about 200 lines, needs
 * no dependency, and reads entries from the file on demand instead of holding the whole archive.
 *
 * Every offset and size the archive declares is checked against the file's size before it is read,
 * and each entry's CRC-32 is verified, so a truncated or hand-edited archive is an error naming the
 * entry rather than a huge allocation or garbage data.
 */
import * as fs from 'node:fs';
import { inflateRawSync } from 'node:zlib';

/** One file in the archive, as its central directory describes it. */
export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflated. */
  method: number;
  compressedSize: number;
  uncompressedSize: number;
  crc32: number;
  localHeaderOffset: number;
}

/** A malformed or unsupported zip archive. */
export class ZipError extends Error {
  override name = 'ZipError';
}

const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
const ZIP64_END_LOCATOR = 0x07064b50;
const ZIP64_END_OF_CENTRAL_DIRECTORY = 0x06064b50;
const CENTRAL_HEADER = 0x02014b50;
const LOCAL_HEADER = 0x04034b50;
const MAX_COMMENT = 0xffff;

let crcTable: Uint32Array | undefined;

/** CRC-32 (the zip and gzip polynomial), table-driven. */
export function crc32(data: Uint8Array): number {
  if (crcTable === undefined) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  const table = crcTable;
  let crc = 0xffffffff;
  for (let i = 0; i < data.length; i++) crc = table[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** Whether bytes start as a zip archive's first local header does. */
export function looksLikeZip(head: Uint8Array): boolean {
  return head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04;
}

/** An open archive: the central directory read, entries read on demand. Close it when done. */
export class ZipArchive {
  readonly entries = new Map<string, ZipEntry>();
  private readonly descriptor: number;
  private readonly size: number;
  /** Where entry data may end: the start of the central directory. */
  private dataLimit = 0;

  private constructor(
    readonly path: string,
    descriptor: number,
  ) {
    this.descriptor = descriptor;
    this.size = fs.fstatSync(descriptor).size;
  }

  /** Opens path and reads its central directory; throws a ZipError for a malformed archive. */
  static open(path: string): ZipArchive {
    const archive = new ZipArchive(path, fs.openSync(path, 'r'));
    try {
      archive.readCentralDirectory();
    } catch (error) {
      archive.close();
      throw error;
    }
    return archive;
  }

  close(): void {
    fs.closeSync(this.descriptor);
  }

  private fail(message: string): never {
    throw new ZipError(`${this.path}: ${message}`);
  }

  private read(position: number, length: number, what: string): Uint8Array {
    if (position < 0 || length < 0 || position + length > this.size)
      this.fail(
        `${what} lies at bytes ${position}–${position + length}, past the end of the ${this.size}-byte file: the archive is truncated or corrupt`,
      );
    const buffer = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const count = fs.readSync(
        this.descriptor,
        buffer,
        done,
        Math.min(1 << 30, length - done),
        position + done,
      );
      if (count === 0) this.fail(`the file ended while reading ${what} (it changed or is truncated)`);
      done += count;
    }
    return buffer;
  }

  private readCentralDirectory(): void {
    const tailLength = Math.min(this.size, 22 + MAX_COMMENT);
    const tail = this.read(this.size - tailLength, tailLength, 'the end of the archive');
    const tailView = new DataView(tail.buffer);
    let end = -1;
    for (let i = tailLength - 22; i >= 0; i--) {
      if (tailView.getUint32(i, true) === END_OF_CENTRAL_DIRECTORY) {
        end = i;
        break;
      }
    }
    if (end < 0)
      this.fail('no end-of-central-directory record: the archive is truncated, or it is not a zip archive');
    const endPosition = this.size - tailLength + end;
    let count = tailView.getUint16(end + 10, true);
    let directorySize = tailView.getUint32(end + 12, true);
    let directoryOffset = tailView.getUint32(end + 16, true);
    if (count === 0xffff || directorySize === 0xffffffff || directoryOffset === 0xffffffff) {
      // zip64: a locator just before the record points at the zip64 end record.
      const locator = new DataView(this.read(endPosition - 20, 20, 'the zip64 locator').buffer);
      if (locator.getUint32(0, true) !== ZIP64_END_LOCATOR)
        this.fail('a zip64 archive without its zip64 locator');
      const recordOffset = this.safeNumber(locator.getBigUint64(8, true), 'the zip64 record offset');
      const record = new DataView(this.read(recordOffset, 56, 'the zip64 end record').buffer);
      if (record.getUint32(0, true) !== ZIP64_END_OF_CENTRAL_DIRECTORY)
        this.fail('the zip64 end record is missing');
      count = this.safeNumber(record.getBigUint64(32, true), 'the entry count');
      directorySize = this.safeNumber(record.getBigUint64(40, true), 'the central directory size');
      directoryOffset = this.safeNumber(record.getBigUint64(48, true), 'the central directory offset');
    }
    if (directoryOffset + directorySize > endPosition)
      this.fail(
        `the central directory (${directorySize} bytes at ${directoryOffset}) runs past where it must end (${endPosition}): the archive is truncated or corrupt`,
      );
    this.dataLimit = directoryOffset;
    const directory = this.read(directoryOffset, directorySize, 'the central directory');
    const view = new DataView(directory.buffer);
    let at = 0;
    for (let index = 0; index < count; index++) {
      if (at + 46 > directorySize || view.getUint32(at, true) !== CENTRAL_HEADER)
        this.fail(`central directory entry ${index} of ${count} is missing or corrupt`);
      const flags = view.getUint16(at + 8, true);
      const method = view.getUint16(at + 10, true);
      const crc = view.getUint32(at + 16, true);
      let compressedSize = view.getUint32(at + 20, true);
      let uncompressedSize = view.getUint32(at + 24, true);
      const nameLength = view.getUint16(at + 28, true);
      const extraLength = view.getUint16(at + 30, true);
      const commentLength = view.getUint16(at + 32, true);
      let localHeaderOffset = view.getUint32(at + 42, true);
      if (at + 46 + nameLength + extraLength + commentLength > directorySize)
        this.fail(`central directory entry ${index} runs past the directory`);
      const name = Buffer.from(directory.subarray(at + 46, at + 46 + nameLength)).toString('utf8');
      // zip64 extra field: 64-bit values for exactly the fields saturated above, in this order.
      let extra = at + 46 + nameLength;
      const extraEnd = extra + extraLength;
      while (extra + 4 <= extraEnd) {
        const id = view.getUint16(extra, true);
        const length = view.getUint16(extra + 2, true);
        if (id === 0x0001) {
          let field = extra + 4;
          const next = (what: string) => {
            if (field + 8 > extra + 4 + length) this.fail(`entry '${name}': its zip64 field lacks ${what}`);
            field += 8;
            return this.safeNumber(view.getBigUint64(field - 8, true), `entry '${name}' ${what}`);
          };
          if (uncompressedSize === 0xffffffff) uncompressedSize = next('the size');
          if (compressedSize === 0xffffffff) compressedSize = next('the compressed size');
          if (localHeaderOffset === 0xffffffff) localHeaderOffset = next('the offset');
        }
        extra += 4 + length;
      }
      if (flags & 1) this.fail(`entry '${name}' is encrypted`);
      if (method !== 0 && method !== 8)
        this.fail(
          `entry '${name}' uses compression method ${method}; only stored (0) and deflate (8) are read`,
        );
      if (localHeaderOffset + 30 + compressedSize > directoryOffset)
        this.fail(
          `entry '${name}' declares ${compressedSize} bytes at offset ${localHeaderOffset}, past the end of the entries (${directoryOffset}): the archive is truncated or corrupt`,
        );
      if (this.entries.has(name)) this.fail(`the archive names '${name}' twice`);
      this.entries.set(name, {
        name,
        method,
        compressedSize,
        uncompressedSize,
        crc32: crc,
        localHeaderOffset,
      });
      at += 46 + nameLength + extraLength + commentLength;
    }
  }

  private safeNumber(value: bigint, what: string): number {
    if (value > BigInt(this.size)) this.fail(`${what} is ${value}, beyond the ${this.size}-byte file`);
    return Number(value);
  }

  /** The uncompressed bytes of entry, checked against its size and CRC-32. */
  readEntry(entry: ZipEntry): Uint8Array {
    const header = new DataView(
      this.read(entry.localHeaderOffset, 30, `the local header of '${entry.name}'`).buffer,
    );
    if (header.getUint32(0, true) !== LOCAL_HEADER)
      this.fail(`entry '${entry.name}' has no local header where the directory says`);
    // The local header's own name and extra lengths: PyTorch pads the extra field to align data.
    const start = entry.localHeaderOffset + 30 + header.getUint16(26, true) + header.getUint16(28, true);
    if (start + entry.compressedSize > this.dataLimit)
      this.fail(
        `entry '${entry.name}' (${entry.compressedSize} bytes at ${start}) runs into the central directory`,
      );
    const stored = this.read(start, entry.compressedSize, `entry '${entry.name}'`);
    let data: Uint8Array;
    if (entry.method === 0) {
      if (entry.compressedSize !== entry.uncompressedSize)
        this.fail(
          `stored entry '${entry.name}' declares ${entry.uncompressedSize} bytes but holds ${entry.compressedSize}`,
        );
      data = stored;
    } else {
      try {
        data = inflateRawSync(stored, { maxOutputLength: Math.max(1, entry.uncompressedSize) });
      } catch (error) {
        this.fail(
          `entry '${entry.name}' does not inflate to its declared ${entry.uncompressedSize} bytes (${(error as Error).message})`,
        );
      }
      if (data.byteLength !== entry.uncompressedSize)
        this.fail(
          `entry '${entry.name}' inflates to ${data.byteLength} bytes, not the declared ${entry.uncompressedSize}`,
        );
    }
    if (crc32(data) !== entry.crc32)
      this.fail(`entry '${entry.name}' fails its CRC-32 check: the archive is corrupt`);
    return data;
  }
}
