/**
 * Your own images as an ImageDataset: a folder with one subfolder per class (torchvision's
 * ImageFolder and Keras's image_dataset_from_directory layout), or a listing file of path,label rows
 * for images laid out otherwise. Every image is decoded (PNG, JPEG, WebP, GIF, by sharp), converted to
 * RGB or grayscale and resized to one size, into memory, with an optional on-disk cache of the
 * decoded pixels so a second run skips decoding.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type ImageDataset, splitDataset, validateDataset } from './dataset.js';
import { readCsvRecords } from './csv.js';
import { FileListing } from './file-listing.js';
import { PackReader, PackWriter, packKey, packPath } from './image-pack.js';
import {
  type ColorMode,
  decodeImagePixels,
  type DecodeOptions,
  IMAGE_EXTENSIONS,
  ImageDecodeError,
  pixelsToPlanar,
  resolveSize,
  type ResizeFit,
} from './image-decode.js';
import { Random } from '../tensor/random.js';
import type { Dataset, Example } from './protocol.js';

export interface ImageFolderOptions {
  /** Every image is resized to [height, width] (one number: a square). Default 64. */
  imageSize?: number | readonly [number, number];
  /** How images of another aspect ratio are fitted: 'crop' (default), 'pad' or 'stretch'. */
  fit?: ResizeFit;
  /** 'rgb' (default, 3 channels) or 'grayscale' (1 channel). */
  color?: ColorMode;
  /** Hold out this fraction of the images (seeded, stratified by class) as a validation set. */
  validationSplit?: number;
  /** Seeds the validation split (default 0). */
  seed?: number;
  /**
   * An image that cannot be decoded: 'fail' (default) throws an ImageDecodeError naming it; 'skip'
   * leaves it out and reports it through `warn`.
   */
  onBadImage?: 'fail' | 'skip';
  /** Where skipped images are reported (default console.warn). */
  warn?: (message: string) => void;
  /**
   * The class names in label order. Default: the subfolders (or the listing's labels) sorted. Give
   * the training set's to read a test folder with the same labels; a folder it lacks is then allowed.
   */
  classNames?: readonly string[];
  /** Images decoding at once (default 8); libvips decodes them on libuv's thread pool. */
  concurrency?: number;
  /** A directory for decoded, resized pixels, keyed by file, size, modification time and options. */
  cacheDirectory?: string;
  /** Refuse images whose header claims more pixels than this (default 100,000,000). */
  maxPixels?: number;
}

/** The images as one dataset, the same split into train and validation, and the files read. */
export interface ImageFolderResult {
  /** Every image read, as one dataset (labels in class-name order). */
  all: ImageDataset;
  /** The training part: all of it without validationSplit. */
  train: ImageDataset;
  /** The held-out part when validationSplit was given, else null. */
  validation: ImageDataset | null;
  classNames: string[];
  /** The file of each sample of `all`, in order. */
  files: string[];
  /** Files that could not be decoded and were left out (onBadImage 'skip'). */
  skipped: string[];
}

/** The data could not be gathered: a missing folder, an empty class, no images, a bad listing. */
export class ImageFolderError extends Error {
  override readonly name = 'ImageFolderError';
}

function isImageFile(name: string): boolean {
  return IMAGE_EXTENSIONS.includes(path.extname(name).toLowerCase());
}

/**
 * Image files under `directory`, sorted, recursing into subfolders and following symbolic links;
 * a link back to a folder already being visited (a loop) is not followed again.
 */
function imageFilesUnder(directory: string, visited: Set<string>): string[] {
  const real = fs.realpathSync(directory);
  if (visited.has(real)) return [];
  visited.add(real);
  const found: string[] = [];
  const entries = fs.readdirSync(directory, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const name = entry.name;
    if (name.startsWith('.')) continue;
    const full = path.join(directory, name);
    // The entry's type comes with the listing; only links (and file systems that do not say) are
    // followed with a stat, which costs a system call per file.
    let isDirectory = entry.isDirectory();
    let isFile = entry.isFile();
    if (!isDirectory && !isFile) {
      let stats: fs.Stats;
      try {
        stats = fs.statSync(full);
      } catch {
        // A dangling link or a file removed meanwhile: nothing to read.
        continue;
      }
      isDirectory = stats.isDirectory();
      isFile = stats.isFile();
    }
    if (isDirectory) found.push(...imageFilesUnder(full, visited));
    else if (isFile && isImageFile(name)) found.push(full);
  }
  visited.delete(real);
  return found;
}

/**
 * Every image file (PNG, JPEG, WebP, GIF, by extension) in `directory` and its subfolders, sorted,
 * following symbolic links but not loops; hidden files are skipped.
 */
export function listImageFiles(directory: string): string[] {
  return imageFilesUnder(directory, new Set());
}

/** The class subfolders of `directory` (following links), sorted by name. */
function classFolders(directory: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(directory);
  } catch (error) {
    throw new ImageFolderError(`${directory}: cannot read the folder: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return names
    .filter((name) => !name.startsWith('.'))
    .filter((name) => {
      try {
        return fs.statSync(path.join(directory, name)).isDirectory();
      } catch {
        return false;
      }
    })
    .sort();
}

/**
 * Images in class subfolders: `directory/cat/1.jpg`, `directory/dog/a/2.png`, ... Labels are the
 * subfolders' indices in sorted order; files in nested folders belong to their top class folder.
 * Non-image files are ignored. A class folder without images, or a folder without class folders, is
 * an error naming it.
 *
 * @example
 * const { train, validation, classNames } = await imageFolder('photos/', { imageSize: 64, validationSplit: 0.2 });
 * fit(seedCnn({ inChannels: 3, classes: classNames.length }), train, { optimizer, epochs: 10, validationData: validation! });
 */
export async function imageFolder(
  directory: string,
  options: ImageFolderOptions = {},
): Promise<ImageFolderResult> {
  const { files, labels, classNames } = gatherFolder(directory, options.classNames);
  return readImages(files, labels, classNames, options);
}

interface LabelledFiles {
  /** Every image file, class by class (folders) or in listing order. */
  files: FileListing;
  /** [files.length] class indices. */
  labels: Int32Array;
  classNames: string[];
}

/** The image files of a class-folder layout with their labels and the class names. */
function gatherFolder(directory: string, given: readonly string[] | undefined): LabelledFiles {
  const folders = classFolders(directory);
  if (folders.length === 0)
    throw new ImageFolderError(
      `${directory}: no class folders; put each class's images in a subfolder named after it (e.g. ${path.join(directory, 'cat')})`,
    );
  const classNames = given === undefined ? folders : [...given];
  // The paths go into a compact listing one class folder at a time, so a folder of a million
  // images never holds a million path strings at once.
  const files = new FileListing();
  let labels = new Int32Array(1024);
  for (const folder of folders) {
    const label = classNames.indexOf(folder);
    if (label < 0)
      throw new ImageFolderError(
        `${path.join(directory, folder)}: class '${folder}' is not one of the given classes (${classNames.join(', ')})`,
      );
    const found = imageFilesUnder(path.join(directory, folder), new Set([fs.realpathSync(directory)]));
    if (found.length === 0)
      throw new ImageFolderError(
        `${path.join(directory, folder)}: the class folder holds no images (${IMAGE_EXTENSIONS.join(', ')})`,
      );
    if (files.length + found.length > labels.length) {
      const larger = new Int32Array(Math.max(labels.length * 2, files.length + found.length));
      larger.set(labels);
      labels = larger;
    }
    labels.fill(label, files.length, files.length + found.length);
    for (const file of found) files.add(file);
  }
  files.trim();
  return { files, labels: labels.slice(0, files.length), classNames };
}

/**
 * Images listed in a CSV file of `path,label` rows (a header row is optional), for images not laid out
 * by class. Paths are relative to the listing's folder unless absolute; labels are class names,
 * sorted to give the label order unless classNames is given.
 */
export async function imageListing(
  listing: string,
  options: ImageFolderOptions = {},
): Promise<ImageFolderResult> {
  const { files, labels, classNames } = gatherListing(listing, options.classNames);
  return readImages(files, labels, classNames, options);
}

function gatherListing(listing: string, given: readonly string[] | undefined): LabelledFiles {
  const table = readCsvRecords(listing);
  if (table.columns.length < 2)
    throw new ImageFolderError(`${listing}: a listing needs two columns, path and label`);
  const pathColumn = table.hasHeader ? Math.max(0, table.columns.indexOf('path')) : 0;
  const labelColumn = table.hasHeader && table.columns.includes('label') ? table.columns.indexOf('label') : 1;
  const base = path.dirname(listing);
  const files = new FileListing();
  const names: string[] = [];
  table.rows.forEach((row, r) => {
    const file = row[pathColumn]!;
    const label = row[labelColumn]!;
    if (file === '' || label === '')
      throw new ImageFolderError(`${listing}: line ${table.lines[r]}: a row needs a path and a label`);
    files.add(path.isAbsolute(file) ? file : path.join(base, file));
    names.push(label);
  });
  if (files.length === 0) throw new ImageFolderError(`${listing}: the listing has no rows`);
  files.trim();
  const classNames = given === undefined ? [...new Set(names)].sort() : [...given];
  const index = new Map(classNames.map((name, label) => [name, label]));
  const labels = Int32Array.from(names, (name, r) => {
    const label = index.get(name);
    if (label === undefined)
      throw new ImageFolderError(
        `${listing}: line ${table.lines[r]}: label '${name}' is not one of the given classes (${classNames.join(', ')})`,
      );
    return label;
  });
  return { files, labels, classNames };
}

/** Decodes every file (several at once) into one ImageDataset, then splits it. */
async function readImages(
  files: FileListing,
  labels: Int32Array,
  classNames: string[],
  options: ImageFolderOptions,
): Promise<ImageFolderResult> {
  const { decode: decodeOptions, channels, height, width } = decodeOptionsOf(options);
  const size = channels * height * width;
  const images = new Float32Array(files.length * size);
  const ok = new Uint8Array(files.length);
  const skipped: string[] = [];
  if (options.cacheDirectory !== undefined) fs.mkdirSync(options.cacheDirectory, { recursive: true });
  await decodeEach(
    files,
    options,
    async (file, index) => {
      const pixels = await cachedPixels(file, decodeOptions, size, options.cacheDirectory);
      pixelsToPlanar(pixels, channels, height, width, images, index * size);
      ok[index] = 1;
    },
    skipped,
  );
  // Keep the good images, in file order (decoding finished in any order).
  const kept = keptIndices(ok);
  if (kept.length === 0) throw new ImageFolderError(`none of the ${files.length} images could be read`);
  let all: ImageDataset;
  if (kept.length === files.length) {
    all = {
      images,
      labels,
      count: files.length,
      channels,
      height,
      width,
      classes: classNames.length,
      classNames,
    };
  } else {
    const packed = new Float32Array(kept.length * size);
    kept.forEach((source, i) => packed.set(images.subarray(source * size, (source + 1) * size), i * size));
    all = {
      images: packed,
      labels: Int32Array.from(kept, (i) => labels[i]!),
      count: kept.length,
      channels,
      height,
      width,
      classes: classNames.length,
      classNames,
    };
  }
  validateDataset(all, 'imageFolder');
  const keptFiles = Array.from(kept, (i) => files.at(i));
  if (options.validationSplit === undefined)
    return { all, train: all, validation: null, classNames, files: keptFiles, skipped };
  const fraction = options.validationSplit;
  if (!(fraction > 0 && fraction < 1))
    throw new RangeError(`imageFolder: validationSplit must be in (0, 1), got ${fraction}`);
  const { train, test } = splitDataset(all, fraction, new Random(options.seed ?? 0), { stratify: true });
  return { all, train, validation: test, classNames, files: keptFiles, skipped };
}

/** The indices whose flag is 1, in order. */
function keptIndices(ok: Uint8Array): Int32Array {
  let count = 0;
  for (let i = 0; i < ok.length; i++) count += ok[i]!;
  const kept = new Int32Array(count);
  for (let i = 0, k = 0; i < ok.length; i++) if (ok[i] === 1) kept[k++] = i;
  return kept;
}

/**
 * Calls `decode` for every file, `options.concurrency` (default 8) at once. An ImageDecodeError is
 * fatal, or with onBadImage 'skip' a warning and an entry in `skipped`; any other error is fatal.
 */
async function decodeEach(
  files: FileListing,
  options: ImageFolderOptions,
  decode: (file: string, index: number) => Promise<void>,
  skipped: string[],
): Promise<void> {
  const onBadImage = options.onBadImage ?? 'fail';
  const warn = options.warn ?? ((message: string) => console.warn(message));
  const concurrency = Math.max(1, options.concurrency ?? 8);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const work = async (): Promise<void> => {
    while (next < files.length && failure === undefined) {
      const index = next++;
      const file = files.at(index);
      try {
        await decode(file, index);
      } catch (error) {
        if (!(error instanceof ImageDecodeError) || onBadImage === 'fail') {
          failure ??= { error };
          return;
        }
        skipped.push(file);
        warn(`tensile: skipping ${error.message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, files.length) }, work));
  if (failure !== undefined) throw failure.error;
  skipped.sort();
}

/** The decoder's options from a folder's: size, fit, colour and pixel limit. */
function decodeOptionsOf(options: ImageFolderOptions): {
  decode: DecodeOptions;
  channels: number;
  height: number;
  width: number;
} {
  const [height, width] = resolveSize(options.imageSize ?? 64);
  const color = options.color ?? 'rgb';
  return {
    decode: {
      size: [height, width],
      fit: options.fit ?? 'crop',
      color,
      ...(options.maxPixels === undefined ? {} : { maxPixels: options.maxPixels }),
    },
    channels: color === 'grayscale' ? 1 : 3,
    height,
    width,
  };
}

/** The cache file of one image for these options (its path, size and modification time in the key). */
function cacheEntry(file: string, options: DecodeOptions, cacheDirectory: string): string {
  let key: string;
  try {
    const stats = fs.statSync(file);
    key = createHash('sha256')
      .update(JSON.stringify([path.resolve(file), stats.size, stats.mtimeMs, options]))
      .digest('hex');
  } catch (error) {
    throw new ImageDecodeError(file, `${file}: cannot read this image: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return path.join(cacheDirectory, `${key}.u8`);
}

/**
 * The decoded, resized 8-bit pixels of one file, from the cache when it holds them for this file's
 * size and modification time and these options, else decoded (and stored when there is a cache;
 * the caller makes the directory).
 */
async function cachedPixels(
  file: string,
  options: DecodeOptions,
  size: number,
  cacheDirectory: string | undefined,
): Promise<Uint8Array> {
  if (cacheDirectory === undefined) return (await decodeImagePixels(file, options)).pixels;
  const entry = cacheEntry(file, options, cacheDirectory);
  // A missing entry is the common case on a first pass: asked without an exception, which costs more
  // than the read. A truncated entry (a crash mid-write elsewhere) is decoded again, not trusted.
  if (fs.statSync(entry, { throwIfNoEntry: false })?.size === size) {
    try {
      const stored = fs.readFileSync(entry);
      if (stored.length === size) return new Uint8Array(stored.buffer, stored.byteOffset, stored.length);
    } catch {
      // removed meanwhile: decoded again
    }
  }
  const { pixels } = await decodeImagePixels(file, options);
  // Written under a unique name and renamed, so a reader never sees half an entry.
  const temporary = `${entry}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  fs.writeFileSync(temporary, pixels);
  fs.renameSync(temporary, entry);
  return pixels;
}

/** Image files read lazily: a map-style dataset whose samples are decoded pixels read from the cache. */
export interface ImageFileDataset extends Dataset<Example> {
  /** The file of each sample (`files.at(i)`), held compactly: a few bytes a file, not a string each. */
  readonly files: FileListing;
  /** [length] class indices. */
  readonly labels: Int32Array;
  readonly classNames: readonly string[];
  /** Every sample's [channels, height, width]. */
  readonly shape: readonly [number, number, number];
  /** Files that could not be decoded and were left out (onBadImage 'skip'). */
  readonly skipped: readonly string[];
  /** The cache file the samples are read from. */
  readonly cacheFile: string;
  /** Closes the cache file (kept open between reads); a later get opens it again. */
  close(): void;
}

/**
 * A class folder (or a path,label listing CSV) as a map-style dataset that does not hold the images in
 * memory: every image is decoded once into one cache file in `cacheDirectory` (8-bit, resized, at a
 * fixed place per image; a later run, or a worker thread, over the same unchanged files finds it
 * there), and `get(i)` reads sample i from it and returns it as [C, H, W] floats in [0, 1] with its
 * class index. For folders larger than memory, and for WorkerPrefetcher, whose threads each open the
 * same dataset (the cache is then warm) and read batches while the model trains. What it keeps per
 * image is about 25 bytes: the file's name in a compact listing and its label.
 *
 * @example
 * // photos.ts, the worker module:
 * export async function createDataset() {
 *   return { dataset: await imageFolderDataset('photos/', { imageSize: 64, cacheDirectory: '.cache/photos' }) };
 * }
 * // training:
 * const { dataset } = await createDataset();
 * const loader = new DataLoader(dataset, { batchSize: 64, shuffle: true, seed: 1, prefetch: 4,
 *   prefetcher: new WorkerPrefetcher({ module: new URL('./photos.js', import.meta.url) }) });
 * await fitAsync(model, loader, { optimizer, epochs: 10 });
 */
export async function imageFolderDataset(
  source: string,
  options: Omit<ImageFolderOptions, 'validationSplit' | 'seed'> & { cacheDirectory: string },
): Promise<ImageFileDataset> {
  if (typeof options.cacheDirectory !== 'string' || options.cacheDirectory === '')
    throw new TypeError('imageFolderDataset: cacheDirectory is required (decoded images are read from it)');
  let isFile = false;
  try {
    isFile = fs.statSync(source).isFile();
  } catch {
    // gatherFolder reports a missing folder
  }
  const gathered = isFile
    ? gatherListing(source, options.classNames)
    : gatherFolder(source, options.classNames);
  const { decode, channels, height, width } = decodeOptionsOf(options);
  const size = channels * height * width;
  const count = gathered.files.length;
  const key = packKey(gathered.files, decode);
  const cacheFile = packPath(options.cacheDirectory, key);
  const skipped: string[] = [];
  let pack = PackReader.open(cacheFile, key, count, size);
  if (pack === undefined) {
    const writer = new PackWriter(cacheFile, key, count, size);
    try {
      await decodeEach(
        gathered.files,
        options,
        async (file, index) => {
          // Decoded into the cache file; nothing is kept in memory.
          writer.write(index, (await decodeImagePixels(file, decode)).pixels);
        },
        skipped,
      );
      writer.finish();
    } catch (error) {
      writer.discard();
      throw error;
    }
    pack = PackReader.open(cacheFile, key, count, size);
    if (pack === undefined) throw new ImageFolderError(`${cacheFile}: the decoded images did not read back`);
  } else {
    // Images the cache could not hold are decoded again, to fail or be skipped (with a warning)
    // as on the first pass; an unchanged file decodes no better the second time.
    const missing = keptIndices(pack.status.map((done) => 1 - done));
    if (missing.length > 0)
      await decodeEach(
        gathered.files.select(missing),
        options,
        async (file) => {
          await decodeImagePixels(file, decode);
          throw new ImageFolderError(
            `${file}: it decodes now but not when the cache was made; open the dataset again`,
          );
        },
        skipped,
      );
  }
  const kept = keptIndices(pack.status);
  if (kept.length === 0) throw new ImageFolderError(`none of the ${count} images could be read`);
  const all = kept.length === count;
  const files = all ? gathered.files : gathered.files.select(kept);
  const labels = all ? gathered.labels : Int32Array.from(kept, (i) => gathered.labels[i]!);
  const shape: [number, number, number] = [channels, height, width];
  const pixels = new Uint8Array(size);
  const reader = pack;
  return {
    length: kept.length,
    files,
    labels,
    classNames: gathered.classNames,
    shape,
    skipped,
    cacheFile,
    close: () => reader.close(),
    get(index: number): Example {
      if (!Number.isInteger(index) || index < 0 || index >= kept.length)
        throw new RangeError(`imageFolderDataset: index ${index} is outside [0, ${kept.length})`);
      try {
        reader.read(kept[index]!, pixels);
      } catch (error) {
        throw new ImageFolderError(
          `${files.at(index)}: its decoded pixels cannot be read from the cache (${cacheFile}: ${(error as Error).message}); open the dataset again`,
          { cause: error },
        );
      }
      const input = new Float32Array(size);
      pixelsToPlanar(pixels, channels, height, width, input);
      return { input, shape, target: labels[index]! };
    },
  };
}
