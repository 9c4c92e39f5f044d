/**
 * The decoded-pixel cache of imageFolderDataset: every image of a folder, decoded and resized, in
 * one file (a "pack") at a fixed offset per image, instead of one file per image. Creating hundreds
 * of thousands of small files costs the kernel far more than decoding them (0.3–0.8 ms of system
 * time an image on an ext4 disk shared with other work, against ~30 µs to decode a 28×28 PNG), and
 * reading one back takes an open, a read and a close where a pack takes one positioned read.
 *
 * File layout (version 1), integers little-endian:
 *
 *   bytes 0–7   magic "TNSLPAK\0"
 *   u32         format version
 *   u32         header length H
 *   H bytes     UTF-8 JSON: { key, count, imageBytes }
 *   count bytes status per image: 1 decoded, 0 not (it could not be decoded)
 *   rest        count × imageBytes pixels, 8-bit, interleaved [height, width, channels]
 *
 * `key` is a SHA-256 over the options and every file's path, size and modification time: a pack
 * whose key, version or size does not match is rebuilt, never trusted. A pack is written under a
 * temporary name and renamed when complete, so a reader (another process, a worker thread) sees a
 * whole pack or none.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FileListing } from './file-listing.js';

const MAGIC = Buffer.from('TNSLPAK\0', 'latin1');
const FORMAT_VERSION = 1;
const PREFIX_BYTES = MAGIC.length + 8;

interface PackHeader {
  key: string;
  count: number;
  imageBytes: number;
}

/**
 * The key of a pack: `options` (JSON) and every file's absolute path, size and modification time.
 * A file that cannot be stat'ed keys as missing (decoding it then reports it by path).
 */
export function packKey(files: FileListing, options: unknown): string {
  const hash = createHash('sha256').update(JSON.stringify(options));
  for (let i = 0; i < files.length; i++) {
    const file = files.at(i);
    const stats = fs.statSync(file, { throwIfNoEntry: false });
    hash.update(`\n${path.resolve(file)}\0${stats?.size ?? -1}\0${stats?.mtimeMs ?? -1}`);
  }
  return hash.digest('hex');
}

/** The pack file of a key in `directory`. */
export function packPath(directory: string, key: string): string {
  return path.join(directory, `${key.slice(0, 32)}.pack`);
}

function headerBytes(header: PackHeader): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(PREFIX_BYTES);
  MAGIC.copy(prefix);
  prefix.writeUInt32LE(FORMAT_VERSION, MAGIC.length);
  prefix.writeUInt32LE(json.length, MAGIC.length + 4);
  return Buffer.concat([prefix, json]);
}

/** A complete pack, open for reading: which images it holds, and their pixels by index. */
export class PackReader {
  private descriptor: number | undefined;

  private constructor(
    readonly file: string,
    /** [count] 1 where the image was decoded. */
    readonly status: Uint8Array,
    readonly imageBytes: number,
    private readonly pixelsStart: number,
  ) {}

  /**
   * The pack at `file` when it is complete and made for `key`, `count` images of `imageBytes` each;
   * undefined when it is missing, from another key or version, or damaged.
   */
  static open(file: string, key: string, count: number, imageBytes: number): PackReader | undefined {
    let descriptor: number;
    try {
      descriptor = fs.openSync(file, 'r');
    } catch {
      return undefined;
    }
    try {
      const size = fs.fstatSync(descriptor).size;
      const prefix = Buffer.alloc(PREFIX_BYTES);
      if (size < PREFIX_BYTES || fs.readSync(descriptor, prefix, 0, PREFIX_BYTES, 0) !== PREFIX_BYTES)
        return undefined;
      if (!prefix.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
      if (prefix.readUInt32LE(MAGIC.length) !== FORMAT_VERSION) return undefined;
      const headerLength = prefix.readUInt32LE(MAGIC.length + 4);
      if (headerLength > 4096 || PREFIX_BYTES + headerLength > size) return undefined;
      const json = Buffer.alloc(headerLength);
      fs.readSync(descriptor, json, 0, headerLength, PREFIX_BYTES);
      let header: PackHeader;
      try {
        header = JSON.parse(json.toString('utf8')) as PackHeader;
      } catch {
        return undefined;
      }
      if (header.key !== key || header.count !== count || header.imageBytes !== imageBytes) return undefined;
      const statusStart = PREFIX_BYTES + headerLength;
      const pixelsStart = statusStart + count;
      if (size !== pixelsStart + count * imageBytes) return undefined;
      const status = new Uint8Array(count);
      if (count > 0 && fs.readSync(descriptor, status, 0, count, statusStart) !== count) return undefined;
      return new PackReader(file, status, imageBytes, pixelsStart);
    } finally {
      fs.closeSync(descriptor);
    }
  }

  /** Reads image `index`'s pixels into `into` (imageBytes long); the file stays open until close(). */
  read(index: number, into: Uint8Array): void {
    this.descriptor ??= fs.openSync(this.file, 'r');
    const position = this.pixelsStart + index * this.imageBytes;
    const got = fs.readSync(this.descriptor, into, 0, this.imageBytes, position);
    if (got !== this.imageBytes)
      throw new Error(`${this.file}: image ${index} has ${got} of its ${this.imageBytes} bytes`);
  }

  /** Closes the file (a later read opens it again). */
  close(): void {
    if (this.descriptor !== undefined) fs.closeSync(this.descriptor);
    this.descriptor = undefined;
  }
}

/** A pack being filled: images are written at their index in any order, then finish() publishes it. */
export class PackWriter {
  private readonly temporary: string;
  private readonly descriptor: number;
  private readonly status: Uint8Array;
  private readonly pixelsStart: number;

  constructor(
    private readonly file: string,
    key: string,
    count: number,
    private readonly imageBytes: number,
  ) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    this.temporary = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    this.descriptor = fs.openSync(this.temporary, 'w');
    const header = headerBytes({ key, count, imageBytes });
    fs.writeSync(this.descriptor, header, 0, header.length, 0);
    this.status = new Uint8Array(count);
    this.pixelsStart = header.length + count;
  }

  /** Stores image `index`'s pixels (imageBytes of them). */
  write(index: number, pixels: Uint8Array): void {
    if (pixels.length !== this.imageBytes)
      throw new RangeError(`pack: image ${index} has ${pixels.length} bytes, not ${this.imageBytes}`);
    fs.writeSync(this.descriptor, pixels, 0, this.imageBytes, this.pixelsStart + index * this.imageBytes);
    this.status[index] = 1;
  }

  /** Writes the status table, gives the file its full size and renames it into place. */
  finish(): void {
    try {
      const statusStart = this.pixelsStart - this.status.length;
      fs.writeSync(this.descriptor, this.status, 0, this.status.length, statusStart);
      // Images that were not decoded leave holes: the file still has its full, checked size.
      fs.ftruncateSync(this.descriptor, this.pixelsStart + this.status.length * this.imageBytes);
    } finally {
      fs.closeSync(this.descriptor);
    }
    fs.renameSync(this.temporary, this.file);
  }

  /** Abandons the pack (an error while filling it). */
  discard(): void {
    try {
      fs.closeSync(this.descriptor);
    } catch {
      // already closed
    }
    fs.rmSync(this.temporary, { force: true });
  }
}
