/** The data pipeline: datasets, loaders, augmentation, seeded randomness and dataset file formats. */
export * from './dataset.js';
export * from '../tensor/random.js';
export * from './loader.js';
export * from './transforms.js';
export * from './idx.js';
export * from './mnist.js';
export * from './fashion-mnist.js';
export * from './cifar.js';
export { defaultCacheDirectory, type PackageDatasetOptions } from './image-cache.js';
export { writeFileAtomic } from '../io/atomic-write.js';
export {
  IMAGE_EXTENSIONS,
  DEFAULT_MAX_PIXELS,
  decodeImage,
  ImageDecodeError,
  type ColorMode,
  type DecodedImage,
  type DecodeOptions,
  type ResizeFit,
} from './image-decode.js';
export * from './image-folder.js';
export { FileListing } from './file-listing.js';
export * from './csv.js';
