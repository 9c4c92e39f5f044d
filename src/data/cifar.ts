/**
 * CIFAR-10 and CIFAR-100 (Krizhevsky, 2009) from the "binary version" files a user downloads and
 * extracts (cifar-10-binary.tar.gz → cifar-10-batches-bin/, cifar-100-binary.tar.gz →
 * cifar-100-binary/). tensile downloads nothing: a missing file is an error that says where to get it.
 *
 * Layout (as documented with the data set): fixed-size records, one per image, with no header.
 * CIFAR-10: 1 label byte, then 3,072 pixel bytes. CIFAR-100: a coarse (superclass) label byte, a
 * fine label byte, then the 3,072 pixel bytes. The pixels are the 1,024 red values of the 32×32
 * image in row-major order, then the 1,024 green, then the 1,024 blue: channel-first, which is
 * tensile's [C, H, W] layout already.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ImageDataset } from './dataset.js';

const SIDE = 32;
const PIXELS = 3 * SIDE * SIDE;

export const CIFAR10_CLASS_NAMES: readonly string[] = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
];

export type CifarSplit = 'train' | 'test';

export interface CifarOptions {
  /** Which files to read (default 'train': the five training batches, or train.bin for CIFAR-100). */
  split?: CifarSplit;
}

export interface Cifar100Options extends CifarOptions {
  /** The 100 fine classes (default) or the 20 coarse superclasses. */
  labels?: 'fine' | 'coarse';
}

/** A CIFAR file or folder that is missing or not in the documented binary layout. */
export class CifarError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CifarError';
  }
}

const where = {
  cifar10: {
    folder: 'cifar-10-batches-bin',
    archive: 'cifar-10-binary.tar.gz',
    files: { train: [1, 2, 3, 4, 5].map((b) => `data_batch_${b}.bin`), test: ['test_batch.bin'] },
  },
  cifar100: {
    folder: 'cifar-100-binary',
    archive: 'cifar-100-binary.tar.gz',
    files: { train: ['train.bin'], test: ['test.bin'] },
  },
} as const;

/**
 * The folder that holds the files: `directory` itself, or its extracted sub-folder when given the
 * folder the archive was extracted in.
 */
function dataFolder(directory: string, kind: keyof typeof where): string {
  const { folder, archive, files } = where[kind];
  for (const candidate of [directory, path.join(directory, folder)]) {
    if (fs.existsSync(path.join(candidate, files.test[0]!))) return candidate;
  }
  const name = kind === 'cifar10' ? 'CIFAR-10' : 'CIFAR-100';
  throw new CifarError(
    `${name} not found in '${directory}': expected ${files.test[0]} there or in ${folder}/. Download the ` +
      `binary version (${archive}) from https://www.cs.toronto.edu/~kriz/cifar.html and extract it into ` +
      `'${directory}' (tar xzf ${archive}); tensile does not download data sets`,
  );
}

/** Reads records of `recordBytes` (labels first, then pixels) from the files, checking sizes and labels. */
function readRecords(
  files: readonly string[],
  labelBytes: number,
  labelIndex: number,
  classes: number,
): { images: Float32Array; labels: Int32Array; count: number } {
  const recordBytes = labelBytes + PIXELS;
  const sizes = files.map((file) => {
    if (!fs.existsSync(file))
      throw new CifarError(`'${file}' is missing (the extracted data set is incomplete)`);
    const size = fs.statSync(file).size;
    if (size === 0 || size % recordBytes !== 0) {
      throw new CifarError(
        `'${file}' has ${size} bytes, not a whole number of ${recordBytes}-byte records ` +
          `(${labelBytes} label byte${labelBytes > 1 ? 's' : ''} + ${PIXELS} pixels): truncated, or not this data set`,
      );
    }
    return size / recordBytes;
  });
  const count = sizes.reduce((a, b) => a + b, 0);
  const images = new Float32Array(count * PIXELS);
  const labels = new Int32Array(count);
  let record = 0;
  files.forEach((file) => {
    const bytes = fs.readFileSync(file);
    for (let offset = 0; offset < bytes.byteLength; offset += recordBytes, record++) {
      const label = bytes[offset + labelIndex]!;
      if (label >= classes) {
        throw new CifarError(
          `'${file}': record ${offset / recordBytes} has label ${label}, outside [0, ${classes}) — not this data set's layout`,
        );
      }
      labels[record] = label;
      const pixels = bytes.subarray(offset + labelBytes, offset + recordBytes);
      const target = record * PIXELS;
      for (let i = 0; i < PIXELS; i++) images[target + i] = pixels[i]! / 255;
    }
  });
  return { images, labels, count };
}

/** Label names from a file of one name per line, when the data set ships one of the right length. */
function namesFrom(file: string, expected: number, fallback: () => string[]): string[] {
  if (!fs.existsSync(file)) return fallback();
  const names = fs
    .readFileSync(file, 'utf8')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '');
  return names.length === expected ? names : fallback();
}

/**
 * CIFAR-10 from its extracted binary version: 50,000 training or 10,000 test images, 3×32×32, pixel
 * values scaled to [0, 1], 10 classes.
 *
 * @param directory the extracted `cifar-10-batches-bin` folder, or the folder that contains it.
 * @example
 * const train = loadCifar10('data'); // data/cifar-10-batches-bin/data_batch_{1..5}.bin
 * const test = loadCifar10('data', { split: 'test' });
 */
export function loadCifar10(directory: string, options: CifarOptions = {}): ImageDataset {
  const folder = dataFolder(directory, 'cifar10');
  const files = where.cifar10.files[options.split ?? 'train'].map((name) => path.join(folder, name));
  const { images, labels, count } = readRecords(files, 1, 0, 10);
  const classNames = namesFrom(path.join(folder, 'batches.meta.txt'), 10, () => [...CIFAR10_CLASS_NAMES]);
  return { images, labels, count, channels: 3, height: SIDE, width: SIDE, classes: 10, classNames };
}

/**
 * CIFAR-100 from its extracted binary version: 50,000 training or 10,000 test images, 3×32×32, pixel
 * values scaled to [0, 1], with the 100 fine labels (default) or the 20 coarse ones.
 *
 * @param directory the extracted `cifar-100-binary` folder, or the folder that contains it.
 */
export function loadCifar100(directory: string, options: Cifar100Options = {}): ImageDataset {
  const folder = dataFolder(directory, 'cifar100');
  const files = where.cifar100.files[options.split ?? 'train'].map((name) => path.join(folder, name));
  const coarse = options.labels === 'coarse';
  const classes = coarse ? 20 : 100;
  const { images, labels, count } = readRecords(files, 2, coarse ? 0 : 1, classes);
  const classNames = namesFrom(
    path.join(folder, coarse ? 'coarse_label_names.txt' : 'fine_label_names.txt'),
    classes,
    () => Array.from({ length: classes }, (_, i) => String(i)),
  );
  return { images, labels, count, channels: 3, height: SIDE, width: SIDE, classes, classNames };
}
