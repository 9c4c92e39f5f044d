/**
 * Image files (PNG, JPEG, WebP, GIF) decoded to [channels, height, width] Float32 arrays in [0, 1],
 * resized as a dataset needs them. Decoding is done by `sharp` (libvips), an optional peer dependency
 * loaded on first use: libvips decodes on libuv's thread pool, so several images decode in parallel
 * off the main thread while this thread waits for them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { importOptional } from '../util/optional-dependency.js';
import { decodePlainPng } from './png-decode.js';

/** The extensions read as images (lower case, with the dot); other files in a folder are ignored. */
export const IMAGE_EXTENSIONS: readonly string[] = ['.png', '.jpg', '.jpeg', '.webp', '.gif'];

/**
 * How an image whose aspect ratio differs from the target's is fitted:
 * - 'crop': scaled to cover the target, then centre-cropped (torchvision's Resize + CenterCrop);
 * - 'pad': scaled to fit inside, the rest filled with black (letterboxing);
 * - 'stretch': scaled to the target in each direction independently (Keras's default).
 */
export type ResizeFit = 'crop' | 'pad' | 'stretch';

export type ColorMode = 'rgb' | 'grayscale';

export interface DecodeOptions {
  /** Target [height, width], or one number for a square; default: the image's own size. */
  size?: number | readonly [number, number];
  /** Default 'crop'. */
  fit?: ResizeFit;
  /** 'rgb' (3 channels, default; grayscale images are repeated) or 'grayscale' (1 channel). */
  color?: ColorMode;
  /**
   * Refuse images whose header claims more pixels than this (default 100,000,000), before any pixel
   * memory is allocated: a crafted header cannot make decoding take gigabytes.
   */
  maxPixels?: number;
}

/** One decoded image: values [channels, height, width] row-major, in [0, 1]. */
export interface DecodedImage {
  data: Float32Array;
  channels: number;
  height: number;
  width: number;
}

/** An image file could not be read or decoded; `path` names it. */
export class ImageDecodeError extends Error {
  override readonly name = 'ImageDecodeError';

  constructor(
    readonly path: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export const DEFAULT_MAX_PIXELS = 100_000_000;

/** The subset of sharp's API used here, so the package's types are not needed at compile time. */
interface SharpPipeline {
  rotate(): SharpPipeline;
  grayscale(): SharpPipeline;
  toColourspace(space: string): SharpPipeline;
  resize(
    width: number,
    height: number,
    options: {
      fit: string;
      position: string;
      background: { r: number; g: number; b: number; alpha: number };
    },
  ): SharpPipeline;
  raw(): SharpPipeline;
  toBuffer(options: { resolveWithObject: true }): Promise<{
    data: Buffer;
    info: { width: number; height: number; channels: number };
  }>;
}
type SharpFactory = (
  input: string | Buffer,
  options: { limitInputPixels: number; failOn: string; animated: boolean },
) => SharpPipeline;

let sharpModule: Promise<SharpFactory> | undefined;

/** sharp, loaded once; an OptionalDependencyError saying `npm install sharp` when it is missing. */
export function loadSharp(): Promise<SharpFactory> {
  sharpModule ??= importOptional<{ default: SharpFactory }>('sharp', 'reading image files').then(
    (loaded) => loaded.default,
  );
  // A failed load is not cached: installing sharp and retrying in the same process then works.
  sharpModule.catch(() => (sharpModule = undefined));
  return sharpModule;
}

/** [height, width] from a size option. */
export function resolveSize(size: number | readonly [number, number]): [number, number] {
  const [height, width] = typeof size === 'number' ? [size, size] : size;
  for (const side of [height, width])
    if (!Number.isInteger(side) || side < 1)
      throw new RangeError(`image size must be positive integers, got ${JSON.stringify(size)}`);
  return [height, width];
}

/**
 * The 8-bit pixels of one image file, interleaved [height, width, channels] as libvips gives them,
 * oriented by its EXIF tag, converted to the colour mode and resized. Throws ImageDecodeError naming
 * the file for anything unreadable: missing, empty, truncated, corrupt, not an image, too large.
 */
export async function decodeImagePixels(
  file: string,
  options: DecodeOptions = {},
): Promise<{ pixels: Uint8Array; channels: number; height: number; width: number }> {
  const color = options.color ?? 'rgb';
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  const plain = plainPngPixels(file, options, color, maxPixels);
  if (plain !== undefined) return plain;
  const sharp = await loadSharp();
  try {
    // failOn 'warning' makes truncated JPEG and PNG data an error rather than a half-grey image.
    // Only the first frame of an animated GIF or WebP is read.
    let pipeline = sharp(file, { limitInputPixels: maxPixels, failOn: 'warning', animated: false }).rotate();
    pipeline = color === 'grayscale' ? pipeline.grayscale() : pipeline.toColourspace('srgb');
    if (options.size !== undefined) {
      const [height, width] = resolveSize(options.size);
      const fit = options.fit ?? 'crop';
      pipeline = pipeline.resize(width, height, {
        fit: fit === 'crop' ? 'cover' : fit === 'pad' ? 'contain' : 'fill',
        position: 'centre',
        background: { r: 0, g: 0, b: 0, alpha: 1 },
      });
    }
    const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
    const wanted = color === 'grayscale' ? 1 : 3;
    const pixels = selectChannels(data, info.channels, wanted, info.width * info.height);
    return { pixels, channels: wanted, height: info.height, width: info.width };
  } catch (error) {
    const reason = error instanceof Error ? error.message.split('\n')[0]! : String(error);
    const hint = /pixel limit/i.test(reason)
      ? ` (its header claims more than ${maxPixels.toLocaleString('en-US')} pixels; raise maxPixels to read it)`
      : '';
    throw new ImageDecodeError(file, `${file}: cannot read this image: ${reason}${hint}`, { cause: error });
  }
}

/** PNG files up to this size are read here and tried on the plain-PNG path before sharp. */
const PLAIN_PNG_MAX_BYTES = 1 << 20;

/**
 * A small PNG's pixels decoded without sharp (png-decode.ts) when it has the size wanted already and
 * needs no colour conversion; undefined for anything else, which sharp then decodes (and reports by
 * path when it is unreadable, as for every other file). The file is read synchronously: for a file
 * of a few hundred bytes that takes microseconds, where an asynchronous read costs ten times more.
 */
function plainPngPixels(
  file: string,
  options: DecodeOptions,
  color: ColorMode,
  maxPixels: number,
): { pixels: Uint8Array; channels: number; height: number; width: number } | undefined {
  if (path.extname(file).toLowerCase() !== '.png') return undefined;
  let bytes: Buffer;
  let descriptor: number | undefined;
  try {
    descriptor = fs.openSync(file, 'r');
    const { size } = fs.fstatSync(descriptor);
    if (size > PLAIN_PNG_MAX_BYTES) return undefined;
    bytes = Buffer.allocUnsafe(size);
    if (fs.readSync(descriptor, bytes, 0, size, 0) !== size) return undefined;
  } catch {
    // Missing or unreadable: sharp says so, in the words it always has.
    return undefined;
  } finally {
    if (descriptor !== undefined) fs.closeSync(descriptor);
  }
  const decoded = decodePlainPng(bytes, {
    ...(options.size === undefined ? {} : { size: resolveSize(options.size) }),
    maxPixels,
  });
  if (decoded === undefined) return undefined;
  const wanted = color === 'grayscale' ? 1 : 3;
  const pixelCount = decoded.width * decoded.height;
  // Gray is repeated into RGB and alpha dropped, as selectChannels does with sharp's output. Colour
  // to gray is libvips's conversion, left to sharp, except for colour PNGs whose pixels are all gray
  // (red = green = blue, as sharp writes gray images): libvips maps every such level to itself.
  if (color === 'grayscale' && decoded.channels > 2) {
    const gray = grayOfNeutral(decoded.pixels, decoded.channels, pixelCount);
    return gray === undefined
      ? undefined
      : { pixels: gray, channels: 1, height: decoded.height, width: decoded.width };
  }
  const pixels = selectChannels(decoded.pixels, decoded.channels, wanted, pixelCount);
  return { pixels, channels: wanted, height: decoded.height, width: decoded.width };
}

/** The red channel of RGB(A) pixels when every pixel has red = green = blue; else undefined. */
function grayOfNeutral(data: Uint8Array, channels: number, pixelCount: number): Uint8Array | undefined {
  const gray = new Uint8Array(pixelCount);
  for (let p = 0; p < pixelCount; p++) {
    const red = data[p * channels]!;
    if (data[p * channels + 1] !== red || data[p * channels + 2] !== red) return undefined;
    gray[p] = red;
  }
  return gray;
}

/**
 * Interleaved pixels with `have` channels reduced or expanded to `want`: alpha dropped, gray repeated
 * into red, green and blue. libvips keeps a gray PNG gray even when asked for sRGB, and keeps alpha.
 */
function selectChannels(data: Uint8Array, have: number, want: number, pixelCount: number): Uint8Array {
  if (have === want) return new Uint8Array(data.buffer, data.byteOffset, pixelCount * want);
  const out = new Uint8Array(pixelCount * want);
  const gray = have <= 2;
  for (let p = 0; p < pixelCount; p++) {
    for (let c = 0; c < want; c++) out[p * want + c] = data[p * have + (gray ? 0 : c)]!;
  }
  return out;
}

/** level / 255 for every 8-bit level, as float32: a lookup instead of a division per value. */
const UNIT_LEVELS = Float32Array.from({ length: 256 }, (_, level) => level / 255);

/** Interleaved 8-bit pixels [H, W, C] → planar floats [C, H, W] in [0, 1], written into `out` at `offset`. */
export function pixelsToPlanar(
  pixels: Uint8Array,
  channels: number,
  height: number,
  width: number,
  out: Float32Array,
  offset = 0,
): void {
  const plane = height * width;
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < channels; c++) out[offset + c * plane + p] = UNIT_LEVELS[pixels[p * channels + c]!]!;
  }
}

/**
 * One image file as [channels, height, width] floats in [0, 1].
 *
 * @example
 * const { data, channels, height, width } = await decodeImage('cat.jpg', { size: 64 }); // [3, 64, 64]
 */
export async function decodeImage(file: string, options: DecodeOptions = {}): Promise<DecodedImage> {
  const { pixels, channels, height, width } = await decodeImagePixels(file, options);
  const data = new Float32Array(channels * height * width);
  pixelsToPlanar(pixels, channels, height, width, data);
  return { data, channels, height, width };
}
