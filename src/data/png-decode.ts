/**
 * A fast path for small, plain PNG files (28×28 digits, 32×32 icons) that already have the size a
 * dataset wants: sharp spends about 0.3–0.8 ms setting up a libvips pipeline per image, 10–20 times
 * what reading, inflating (Node's zlib, in C) and unfiltering such a file takes. Only files whose
 * pixels sharp would give unchanged are decoded here — 8-bit gray, gray+alpha, RGB or RGBA, not
 * interlaced, no colour profile, gamma, transparency or orientation chunk, no resize and no colour
 * conversion needed — and only when every check passes: signature, chunk lengths and CRCs, one run
 * of IDAT chunks, IEND at the very end, a zlib stream (Adler-32 checked) that ends exactly where the
 * data does and inflates to exactly the expected size, and valid row filters. Anything else returns
 * undefined and the caller decodes the file with sharp, which then reports a corrupt, truncated or
 * oversized file by path as before. The dimensions are checked against the pixel limit before
 * anything is inflated, and inflating stops at the expected size (maxOutputLength), so a
 * decompression bomb costs no more memory than the image it claims to be.
 */
import * as zlib from 'node:zlib';

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Channels by PNG colour type, for the types read here (0 gray, 2 RGB, 4 gray+alpha, 6 RGBA). */
const CHANNELS_BY_COLOR_TYPE: Partial<Record<number, number>> = { 0: 1, 2: 3, 4: 2, 6: 4 };

/**
 * Ancillary chunks that do not change the pixels libvips gives: text, physical pixel size, time.
 * Any other chunk (iCCP, gAMA, cHRM, sRGB, sBIT, tRNS, bKGD, eXIf, PLTE, ...) sends the file to sharp.
 */
const IGNORED_CHUNKS = new Set(['tEXt', 'zTXt', 'iTXt', 'pHYs', 'tIME']);

/** One PNG's pixels as libvips gives them: interleaved [height, width, channels], 8-bit. */
export interface PlainPngPixels {
  pixels: Uint8Array;
  /** 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA. */
  channels: number;
  height: number;
  width: number;
}

/** What the caller will accept: the exact size wanted, and the pixel limit. */
export interface PlainPngLimits {
  /** [height, width] the image must have (no resizing is done here); default any. */
  size?: readonly [number, number];
  /** Images claiming more pixels are left to sharp, which refuses them by name. */
  maxPixels: number;
}

/**
 * The pixels of a plain 8-bit PNG (of exactly `limits.size` when given), or undefined when the file is anything
 * else or fails any check (then decode it with sharp). Never throws for bad input.
 */
export function decodePlainPng(bytes: Uint8Array, limits: PlainPngLimits): PlainPngPixels | undefined {
  if (bytes.length < 8 + 25 + 12) return undefined;
  for (let i = 0; i < 8; i++) if (bytes[i] !== SIGNATURE[i]) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // IHDR: width, height, bit depth, colour type, compression, filter, interlace.
  if (view.getUint32(8) !== 13 || chunkType(bytes, 12) !== 'IHDR' || !crcMatches(bytes, view, 8, 13))
    return undefined;
  const width = view.getUint32(16);
  const height = view.getUint32(20);
  const [bitDepth, colorType, compression, filter, interlace] = bytes.subarray(24, 29);
  const channels = CHANNELS_BY_COLOR_TYPE[colorType!];
  if (channels === undefined || bitDepth !== 8 || compression !== 0 || filter !== 0 || interlace !== 0)
    return undefined;
  if (width === 0 || height === 0 || width * height > limits.maxPixels) return undefined;
  if (limits.size !== undefined && (height !== limits.size[0] || width !== limits.size[1])) return undefined;

  // Walk the remaining chunks: IDAT in one run, IEND last and at the end of the file.
  const idat: Uint8Array[] = [];
  let idatRunEnded = false;
  let offset = 8 + 25;
  for (;;) {
    if (offset + 12 > bytes.length) return undefined;
    const length = view.getUint32(offset);
    if (length > bytes.length - offset - 12) return undefined;
    const type = chunkType(bytes, offset + 4);
    if (!crcMatches(bytes, view, offset, length)) return undefined;
    if (type === 'IDAT') {
      if (idatRunEnded) return undefined;
      idat.push(bytes.subarray(offset + 8, offset + 8 + length));
    } else {
      if (idat.length > 0) idatRunEnded = true;
      if (type === 'IEND') {
        if (length !== 0 || offset + 12 !== bytes.length || idat.length === 0) return undefined;
        break;
      }
      if (!IGNORED_CHUNKS.has(type)) return undefined;
    }
    offset += 12 + length;
  }

  const stride = width * channels;
  const expected = height * (stride + 1);
  const compressed = idat.length === 1 ? idat[0]! : Buffer.concat(idat);
  let filtered: Buffer;
  try {
    // maxOutputLength bounds the memory a bomb can claim; one byte more than expected shows excess.
    const result = zlib.inflateSync(compressed, { info: true, maxOutputLength: expected + 1 }) as unknown as {
      buffer: Buffer;
      engine: { bytesWritten: number };
    };
    // Data after the end of the zlib stream would be ignored by inflate: not a plain file.
    if (result.buffer.length !== expected || result.engine.bytesWritten !== compressed.length)
      return undefined;
    filtered = result.buffer;
  } catch {
    return undefined;
  }
  const pixels = new Uint8Array(height * stride);
  if (!unfilter(filtered, pixels, height, stride, channels)) return undefined;
  return { pixels, channels, height, width };
}

function chunkType(bytes: Uint8Array, offset: number): string {
  return String.fromCharCode(bytes[offset]!, bytes[offset + 1]!, bytes[offset + 2]!, bytes[offset + 3]!);
}

/** Whether the CRC after a chunk of `length` data bytes at `offset` matches its type and data. */
function crcMatches(bytes: Uint8Array, view: DataView, offset: number, length: number): boolean {
  const computed = zlib.crc32(bytes.subarray(offset + 4, offset + 8 + length));
  return computed === view.getUint32(offset + 8 + length);
}

/**
 * Reverses the PNG row filters (None, Sub, Up, Average, Paeth) of `filtered` ([height] rows of a
 * filter byte then `stride` bytes) into `out` ([height, stride]); false for an unknown filter.
 */
function unfilter(
  filtered: Uint8Array,
  out: Uint8Array,
  height: number,
  stride: number,
  bytesPerPixel: number,
): boolean {
  for (let y = 0; y < height; y++) {
    const source = y * (stride + 1) + 1;
    const row = y * stride;
    const previous = row - stride; // only read when y > 0
    const filterType = filtered[source - 1];
    switch (filterType) {
      case 0:
        out.set(filtered.subarray(source, source + stride), row);
        break;
      case 1:
        for (let x = 0; x < stride; x++) {
          const left = x >= bytesPerPixel ? out[row + x - bytesPerPixel]! : 0;
          out[row + x] = (filtered[source + x]! + left) & 0xff;
        }
        break;
      case 2:
        for (let x = 0; x < stride; x++) {
          const up = y > 0 ? out[previous + x]! : 0;
          out[row + x] = (filtered[source + x]! + up) & 0xff;
        }
        break;
      case 3:
        for (let x = 0; x < stride; x++) {
          const left = x >= bytesPerPixel ? out[row + x - bytesPerPixel]! : 0;
          const up = y > 0 ? out[previous + x]! : 0;
          out[row + x] = (filtered[source + x]! + ((left + up) >> 1)) & 0xff;
        }
        break;
      case 4:
        for (let x = 0; x < stride; x++) {
          const left = x >= bytesPerPixel ? out[row + x - bytesPerPixel]! : 0;
          const up = y > 0 ? out[previous + x]! : 0;
          const upLeft = y > 0 && x >= bytesPerPixel ? out[previous + x - bytesPerPixel]! : 0;
          out[row + x] = (filtered[source + x]! + paeth(left, up, upLeft)) & 0xff;
        }
        break;
      default:
        return false;
    }
  }
  return true;
}

/** The Paeth predictor: whichever of left, up and upper-left is closest to left + up − upper-left. */
function paeth(left: number, up: number, upLeft: number): number {
  const estimate = left + up - upLeft;
  const toLeft = Math.abs(estimate - left);
  const toUp = Math.abs(estimate - up);
  const toUpLeft = Math.abs(estimate - upLeft);
  if (toLeft <= toUp && toLeft <= toUpLeft) return left;
  return toUp <= toUpLeft ? up : upLeft;
}
