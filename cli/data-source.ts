/**
 * `--data DIR|FILE.csv` for tensile train, finetune and evaluate: a folder of class subfolders, a
 * listing file (path,label) or a table with a --target column, read through the public API.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UsageError } from './arguments.js';
import {
  csvDataset,
  type Dataset,
  datasetSubset,
  Dense,
  type Example,
  type ImageDataset,
  imageFolder,
  imageFolderDataset,
  type ImageFileDataset,
  type ImageFolderOptions,
  type ImageFolderResult,
  imageListing,
  type Module,
  readCsvRecords,
  Random,
  ReLU,
  Sequential,
  splitIndices,
  type TableDataset,
  type TableEncoding,
} from '../src/index.js';

/** The options of the three commands that describe the data. */
export const dataOptions = {
  data: { type: 'string' },
  target: { type: 'string' },
  'val-data': { type: 'string' },
  'image-size': { type: 'string' },
  grayscale: { type: 'boolean', default: false },
  fit: { type: 'string' },
  'skip-bad-images': { type: 'boolean', default: false },
  'image-cache': { type: 'string' },
  stream: { type: 'boolean', default: false },
  task: { type: 'string' },
  ignore: { type: 'string' },
} as const;

export const dataHelp = `  --data DIR|FILE.csv             your data: a folder with one subfolder of images per class
                                  (PNG, JPEG, WebP, GIF), a listing CSV of path,label rows, or a
                                  table (CSV with a header) whose --target column is predicted
  --target COLUMN                 the table column to predict (classes, or numbers: regression)
  --task classification|regression  override the target's inferred kind
  --ignore A,B                    table columns to leave out (identifiers, leaks)
  --val-data DIR|FILE.csv         validation data reported every epoch (same layout as --data)
  --image-size N                  images are resized to N×N (default 64)
  --fit crop|pad|stretch          how other aspect ratios are fitted (default crop)
  --grayscale                     read images as one gray channel (default RGB)
  --skip-bad-images               leave out unreadable images with a warning (default: fail)
  --image-cache DIR               keep decoded, resized images there for the next run
  --stream                        images: keep them on disk, not in memory (folders larger than
                                  memory): each is decoded once into --image-cache (default a
                                  temporary folder, removed after) and read back batch by batch`;

export type DataValues = { [K in keyof typeof dataOptions]?: string | boolean | undefined };

/** Images, or an encoded table, with a held-out part when one was asked for. */
export type LoadedData =
  | {
      kind: 'images';
      train: ImageDataset;
      heldOut: ImageDataset | null;
      classNames: string[];
      source: string;
    }
  | {
      kind: 'table';
      train: TableDataset;
      heldOut: TableDataset | null;
      encoding: TableEncoding;
      source: string;
    };

function isListing(file: string): boolean {
  const { columns, hasHeader } = readCsvRecords(file);
  return hasHeader && columns.length === 2 && columns[0] === 'path' && columns[1] === 'label';
}

/** Reads the image options once, checked. */
export function imageOptions(values: DataValues, command: string): ImageFolderOptions {
  const text = values['image-size'] as string | undefined;
  const size = text === undefined ? 64 : Number(text);
  if (!Number.isInteger(size) || size < 1 || size > 4096)
    throw new UsageError(`${command}: --image-size must be an integer in [1, 4096], got '${text}'`);
  const fit = (values.fit as string | undefined) ?? 'crop';
  if (fit !== 'crop' && fit !== 'pad' && fit !== 'stretch')
    throw new UsageError(`${command}: --fit must be crop, pad or stretch, got '${fit}'`);
  return {
    imageSize: size,
    fit,
    color: values.grayscale === true ? 'grayscale' : 'rgb',
    onBadImage: values['skip-bad-images'] === true ? 'skip' : 'fail',
    ...(values['image-cache'] === undefined ? {} : { cacheDirectory: values['image-cache'] as string }),
  };
}

/**
 * The data at `location`: `heldOutFraction` of it held out (seeded; stratified for images), or none
 * when 0. `fixed` gives the class names and table encoding of a trained model, so new data is read
 * the way its training data was.
 */
export async function loadData(
  location: string,
  values: DataValues,
  options: {
    command: string;
    heldOutFraction: number;
    seed: number;
    classNames?: readonly string[];
    encoding?: TableEncoding;
    /** A trained model's input [channels, height, width]: images are read at that size and colour. */
    imageShape?: readonly number[];
  },
): Promise<LoadedData> {
  const { command } = options;
  if (values.stream === true) throw new UsageError(`${command}: --stream is for tensile train`);
  let stats: fs.Stats;
  try {
    stats = fs.statSync(location);
  } catch {
    throw new UsageError(`${command}: --data '${location}' does not exist`);
  }
  const split =
    options.heldOutFraction > 0 ? { validationSplit: options.heldOutFraction, seed: options.seed } : {};
  const target = (values.target as string | undefined) ?? options.encoding?.target.name;
  const isTable = stats.isFile() && (target !== undefined || !isListing(location));
  if (isTable) {
    if (target === undefined)
      throw new UsageError(
        `${command}: ${location} is a table: name the column to predict with --target COLUMN ` +
          `(a listing of images needs the header path,label)`,
      );
    const task = values.task as string | undefined;
    if (task !== undefined && task !== 'classification' && task !== 'regression')
      throw new UsageError(`${command}: --task must be classification or regression, got '${task}'`);
    const ignore = (values.ignore as string | undefined)?.split(',');
    const table = csvDataset(location, {
      target,
      ...(ignore === undefined ? {} : { ignore }),
      ...split,
      ...(task === undefined ? {} : { task }),
      ...(options.encoding === undefined ? {} : { encoding: options.encoding }),
    });
    return {
      kind: 'table',
      train: table.train,
      heldOut: table.validation,
      encoding: table.encoding,
      source: location,
    };
  }
  const read: ImageFolderResult = await (stats.isDirectory() ? imageFolder : imageListing)(location, {
    ...imageOptions(values, command),
    ...(options.imageShape === undefined
      ? {}
      : {
          imageSize: [options.imageShape[1]!, options.imageShape[2]!] as [number, number],
          color: options.imageShape[0] === 1 ? ('grayscale' as const) : ('rgb' as const),
        }),
    ...split,
    ...(options.classNames === undefined ? {} : { classNames: options.classNames }),
  });
  return {
    kind: 'images',
    train: read.train,
    heldOut: read.validation,
    classNames: read.classNames,
    source: location,
  };
}

/** Images read lazily from disk (--stream): map-style datasets of [C, H, W] Examples. */
export interface StreamedImages {
  train: Dataset<Example>;
  heldOut: Dataset<Example> | null;
  classNames: string[];
  /** [channels, height, width]. */
  shape: readonly [number, number, number];
  source: string;
  /** Removes the temporary cache when no --image-cache was given. */
  close(): void;
}

/**
 * The images at `location` (class folders or a path,label listing) as an imageFolderDataset: decoded
 * once into --image-cache, or a temporary folder that close() removes, and read back per sample. The
 * held-out part is the same stratified, seeded split loadData makes in memory, so a run trains on the
 * same samples in the same order either way.
 */
export async function loadStreamedImages(
  location: string,
  values: DataValues,
  options: { command: string; heldOutFraction: number; seed: number; classNames?: readonly string[] },
): Promise<StreamedImages> {
  const { command } = options;
  if (!fs.existsSync(location)) throw new UsageError(`${command}: --data '${location}' does not exist`);
  if (values.target !== undefined)
    throw new UsageError(`${command}: --stream is for images (class folders or a listing), not tables`);
  const given = values['image-cache'] as string | undefined;
  const cacheDirectory = given ?? fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-stream-'));
  let dataset: ImageFileDataset | undefined;
  const close = () => {
    dataset?.close();
    if (given === undefined) fs.rmSync(cacheDirectory, { recursive: true, force: true });
  };
  try {
    dataset = await imageFolderDataset(location, {
      ...imageOptions(values, command),
      cacheDirectory,
      ...(options.classNames === undefined ? {} : { classNames: options.classNames }),
    });
    let train: Dataset<Example> = dataset;
    let heldOut: Dataset<Example> | null = null;
    if (options.heldOutFraction > 0) {
      const split = splitIndices(
        dataset.labels,
        dataset.classNames.length,
        options.heldOutFraction,
        new Random(options.seed),
        { stratify: true },
      );
      train = datasetSubset(dataset, split.train);
      heldOut = datasetSubset(dataset, split.test);
    }
    return {
      train,
      heldOut,
      classNames: [...dataset.classNames],
      shape: dataset.shape,
      source: location,
      close,
    };
  } catch (error) {
    close();
    throw error;
  }
}

/** A two-layer perceptron for encoded tables: Dense(features, hidden), ReLU, Dense(hidden, outputs). */
export function tableModel(features: number, outputs: number, hidden = 64): Module {
  return new Sequential(new Dense(features, hidden), new ReLU(), new Dense(hidden, outputs));
}

/** Images only (finetune): `location` with `fraction` held out as the test set. */
export async function heldOutImages(
  location: string,
  values: DataValues,
  options: { command: string; fraction: number; seed: number },
): Promise<{ train: ImageDataset; test: ImageDataset; source: string }> {
  const data = await loadData(location, values, {
    command: options.command,
    heldOutFraction: options.fraction,
    seed: options.seed,
  });
  if (data.kind !== 'images')
    throw new UsageError(`${options.command}: --data must be images (class folders or a path,label listing)`);
  return { train: data.train, test: data.heldOut!, source: data.source };
}
