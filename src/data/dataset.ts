/**
 * In-memory image classification datasets and the pure helpers that derive new ones (subsets,
 * seeded splits, class filters, normalisation). Every helper returns a new dataset with its own
 * arrays; none mutates its input.
 */
import { Random } from '../tensor/random.js';

/**
 * Images with integer class labels.
 *
 * `images` is [count, channels, height, width] row-major (NCHW, PyTorch's layout). Loaders produce
 * values in [0, 1]; after `normalize` they are standardised instead.
 */
export interface ImageDataset {
  images: Float32Array;
  /** [count], each in [0, classes). */
  labels: Int32Array;
  count: number;
  channels: number;
  height: number;
  width: number;
  classes: number;
  /** The human-readable name of each label, [classes]. */
  classNames: string[];
}

/** Per-channel statistics of a dataset's pixels; each array has one value per channel. */
export interface DatasetStatistics {
  mean: number[];
  /** Population standard deviation (divide by N), as torchvision's usual normalisation constants. */
  standardDeviation: number[];
}

/** Elements per image: channels · height · width. */
export function imageSize(dataset: ImageDataset): number {
  return dataset.channels * dataset.height * dataset.width;
}

/**
 * Throws when the arrays and dimensions of a dataset disagree; loaders call it before returning, and
 * it is cheap enough (no pass over the pixels) to call at any API boundary.
 * Labels are checked to lie in [0, classes).
 */
export function validateDataset(dataset: ImageDataset, what = 'dataset'): void {
  const { count, channels, height, width, classes } = dataset;
  for (const [field, value] of Object.entries({ count, channels, height, width, classes })) {
    if (!Number.isInteger(value) || value < 0) {
      throw new RangeError(`${what}: ${field} must be a non-negative integer, got ${value}`);
    }
  }
  if (dataset.images.length !== count * channels * height * width) {
    throw new RangeError(
      `${what}: images has ${dataset.images.length} values, expected count·channels·height·width = ` +
        `${count}·${channels}·${height}·${width} = ${count * channels * height * width}`,
    );
  }
  if (dataset.labels.length !== count) {
    throw new RangeError(`${what}: labels has ${dataset.labels.length} entries, expected count = ${count}`);
  }
  if (dataset.classNames.length !== classes) {
    throw new RangeError(
      `${what}: classNames has ${dataset.classNames.length} names, expected classes = ${classes}`,
    );
  }
  for (let i = 0; i < count; i++) {
    const label = dataset.labels[i]!;
    if (label < 0 || label >= classes) {
      throw new RangeError(`${what}: label ${i} is ${label}, outside [0, ${classes})`);
    }
  }
}

/**
 * The samples at `indices`, in that order (indices may repeat).
 *
 * @example
 * const firstTen = subset(dataset, Array.from({ length: 10 }, (_, i) => i));
 */
export function subset(dataset: ImageDataset, indices: ArrayLike<number>): ImageDataset {
  const size = imageSize(dataset);
  const images = new Float32Array(indices.length * size);
  const labels = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const index = indices[i]!;
    if (!Number.isInteger(index) || index < 0 || index >= dataset.count) {
      throw new RangeError(`subset: index ${i} is ${index}, outside [0, ${dataset.count})`);
    }
    images.set(dataset.images.subarray(index * size, (index + 1) * size), i * size);
    labels[i] = dataset.labels[index]!;
  }
  return { ...dataset, images, labels, count: indices.length, classNames: [...dataset.classNames] };
}

export interface SplitOptions {
  /**
   * Split each class separately so train and test keep the class proportions. The test set still has
   * exactly the requested size: each class gets the floor of its share, and the samples left over go
   * to the classes with the largest remainders (ties to the lower class index), as scikit-learn's
   * stratified splits do. Default false.
   */
  stratify?: boolean;
}

/**
 * A seeded random split into disjoint train and test sets.
 *
 * @param testSize the test set's size: a fraction of the dataset in (0, 1) (the test set then has
 *   round(count × fraction) samples), or a sample count (an integer ≥ 1; 0 is allowed and gives an
 *   empty test set). The test set has exactly that many samples, stratified or not.
 * @example
 * const { train, test } = splitDataset(mnist, 0.2, new Random(1)); // 8,000 / 2,000
 */
export function splitDataset(
  dataset: ImageDataset,
  testSize: number,
  random: Random,
  options: SplitOptions = {},
): { train: ImageDataset; test: ImageDataset } {
  const { train, test } = splitIndices(
    dataset.labels.subarray(0, dataset.count),
    dataset.classes,
    testSize,
    random,
    options,
  );
  return { train: subset(dataset, train), test: subset(dataset, test) };
}

/**
 * The split of splitDataset as sample indices, for datasets that are not held in memory (e.g.
 * imageFolderDataset: pass its labels and class count, then datasetSubset each side). The same
 * labels, size and generator state give the same indices as splitDataset.
 */
export function splitIndices(
  labels: ArrayLike<number>,
  classes: number,
  testSize: number,
  random: Random,
  options: SplitOptions = {},
): { train: number[]; test: number[] } {
  const count = labels.length;
  const testTotal = resolveTestCount(testSize, count);
  const trainIndices: number[] = [];
  const testIndices: number[] = [];
  let groups: number[][];
  if (options.stratify) {
    groups = Array.from({ length: classes }, () => []);
    for (let i = 0; i < count; i++) groups[labels[i]!]!.push(i);
  } else groups = [allIndices(count)];
  const testCounts = apportion(
    groups.map((group) => group.length),
    testTotal,
  );
  groups.forEach((group, g) => {
    random.shuffle(group);
    const testCount = testCounts[g]!;
    for (let i = 0; i < group.length; i++) (i < testCount ? testIndices : trainIndices).push(group[i]!);
  });
  // Sorting keeps each side in dataset order; the loader shuffles per epoch anyway.
  trainIndices.sort((a, b) => a - b);
  testIndices.sort((a, b) => a - b);
  return { train: trainIndices, test: testIndices };
}

function resolveTestCount(testSize: number, count: number): number {
  if (testSize > 0 && testSize < 1) return Math.round(count * testSize);
  if (Number.isInteger(testSize) && testSize >= 0 && testSize <= count) return testSize;
  throw new RangeError(
    `splitDataset: testSize must be a fraction in (0, 1) or a count in [0, ${count}], got ${testSize}`,
  );
}

/**
 * Splits `total` among groups in proportion to their sizes, summing to `total` exactly (largest
 * remainder method). Integer arithmetic throughout, so a share of exactly k.5 is not lost to
 * rounding error. Where plain rounding already sums to `total`, the result equals it.
 */
export function apportion(sizes: readonly number[], total: number): number[] {
  const whole = sizes.reduce((sum, size) => sum + size, 0);
  if (whole === 0) return sizes.map(() => 0);
  const counts = sizes.map((size) => Math.floor((size * total) / whole));
  const remainders = sizes.map((size, index) => ({ index, remainder: (size * total) % whole }));
  remainders.sort((a, b) => b.remainder - a.remainder || a.index - b.index);
  let left = total - counts.reduce((sum, count) => sum + count, 0);
  for (const { index } of remainders) {
    if (left === 0) break;
    counts[index]!++;
    left--;
  }
  return counts;
}

function allIndices(count: number): number[] {
  return Array.from({ length: count }, (_, i) => i);
}

/** Sample indices grouped by label, each group in dataset order. */
function indicesByClass(dataset: ImageDataset): number[][] {
  const groups: number[][] = Array.from({ length: dataset.classes }, () => []);
  for (let i = 0; i < dataset.count; i++) groups[dataset.labels[i]!]!.push(i);
  return groups;
}

export interface FilterClassesOptions {
  /**
   * Renumber the kept classes 0, 1, ... in the order given (classNames follow), so a model can have
   * exactly classes.length outputs. Default false: labels, classes and classNames stay as they were.
   */
  relabel?: boolean;
}

/**
 * Keeps only the samples whose label is in `classes`.
 *
 * @example
 * // A 2-class problem out of MNIST: 3 becomes label 0, 8 becomes label 1.
 * const threesAndEights = filterClasses(mnist, [3, 8], { relabel: true });
 */
export function filterClasses(
  dataset: ImageDataset,
  classes: readonly number[],
  options: FilterClassesOptions = {},
): ImageDataset {
  const newLabel = new Map<number, number>();
  classes.forEach((label, position) => {
    if (!Number.isInteger(label) || label < 0 || label >= dataset.classes) {
      throw new RangeError(`filterClasses: class ${label} is outside [0, ${dataset.classes})`);
    }
    if (newLabel.has(label)) throw new RangeError(`filterClasses: class ${label} is listed twice`);
    newLabel.set(label, position);
  });
  const kept: number[] = [];
  for (let i = 0; i < dataset.count; i++) if (newLabel.has(dataset.labels[i]!)) kept.push(i);
  const result = subset(dataset, kept);
  if (!options.relabel) return result;
  for (let i = 0; i < result.count; i++) result.labels[i] = newLabel.get(result.labels[i]!)!;
  return {
    ...result,
    classes: classes.length,
    classNames: classes.map((label) => dataset.classNames[label]!),
  };
}

/**
 * `perClass` randomly chosen samples of every class (the few-shot sets of transfer learning),
 * grouped by class in label order, each group in dataset order.
 * Throws when a class has fewer than `perClass` samples.
 */
export function takePerClass(dataset: ImageDataset, perClass: number, random: Random): ImageDataset {
  if (!Number.isInteger(perClass) || perClass < 0) {
    throw new RangeError(`takePerClass: perClass must be a non-negative integer, got ${perClass}`);
  }
  const chosen: number[] = [];
  indicesByClass(dataset).forEach((group, label) => {
    if (group.length < perClass) {
      throw new RangeError(
        `takePerClass: class ${label} ('${dataset.classNames[label]}') has ${group.length} samples, ` +
          `fewer than the ${perClass} requested`,
      );
    }
    const picked = random.shuffle(group).slice(0, perClass);
    picked.sort((a, b) => a - b);
    chosen.push(...picked);
  });
  return subset(dataset, chosen);
}

/** Per-channel mean and population standard deviation, accumulated in float64. */
export function datasetStatistics(dataset: ImageDataset): DatasetStatistics {
  const { channels } = dataset;
  const plane = dataset.height * dataset.width;
  const sums = new Float64Array(channels);
  const squares = new Float64Array(channels);
  // Two passes (mean, then squared deviations) avoid the cancellation of E[x²] − E[x]².
  forEachPlane(dataset, (channel, start) => {
    let sum = 0;
    for (let i = start; i < start + plane; i++) sum += dataset.images[i]!;
    sums[channel] += sum;
  });
  const perChannel = dataset.count * plane;
  const mean = Array.from(sums, (sum) => (perChannel === 0 ? 0 : sum / perChannel));
  forEachPlane(dataset, (channel, start) => {
    const center = mean[channel]!;
    let sum = 0;
    for (let i = start; i < start + plane; i++) {
      const deviation = dataset.images[i]! - center;
      sum += deviation * deviation;
    }
    squares[channel] += sum;
  });
  const standardDeviation = Array.from(squares, (sum) =>
    perChannel === 0 ? 0 : Math.sqrt(sum / perChannel),
  );
  return { mean, standardDeviation };
}

function forEachPlane(dataset: ImageDataset, visit: (channel: number, start: number) => void): void {
  const plane = dataset.height * dataset.width;
  for (let sample = 0; sample < dataset.count; sample++) {
    for (let channel = 0; channel < dataset.channels; channel++) {
      visit(channel, (sample * dataset.channels + channel) * plane);
    }
  }
}

/**
 * Returns a new dataset with every pixel replaced by (x − mean[c]) / standardDeviation[c].
 * A single number applies to every channel.
 *
 * @example
 * const { mean, standardDeviation } = datasetStatistics(train);
 * const standardised = normalize(train, mean, standardDeviation);
 */
export function normalize(
  dataset: ImageDataset,
  mean: number | readonly number[],
  standardDeviation: number | readonly number[],
): ImageDataset {
  const means = perChannel(mean, dataset.channels, 'mean');
  const scales = perChannel(standardDeviation, dataset.channels, 'standardDeviation').map((std) => {
    if (!(std > 0)) throw new RangeError(`normalize: standard deviations must be positive, got ${std}`);
    return 1 / std;
  });
  const images = new Float32Array(dataset.images.length);
  const plane = dataset.height * dataset.width;
  forEachPlane(dataset, (channel, start) => {
    const center = means[channel]!;
    const scale = scales[channel]!;
    for (let i = start; i < start + plane; i++) images[i] = (dataset.images[i]! - center) * scale;
  });
  return { ...dataset, images, labels: dataset.labels.slice(), classNames: [...dataset.classNames] };
}

/** Expands a scalar to one value per channel, or checks that a list has one per channel. */
export function perChannel(value: number | readonly number[], channels: number, name: string): number[] {
  if (typeof value === 'number') return new Array<number>(channels).fill(value);
  if (value.length !== channels) {
    throw new RangeError(`${name} has ${value.length} values, expected one per channel (${channels})`);
  }
  return [...value];
}
