/**
 * The data protocol the training loop reads: a map-style dataset (a length and `get(index)`, as
 * PyTorch's `Dataset`), an iterable (streamed) dataset, the example a default collate understands,
 * and the batch fit trains on. An in-memory ImageDataset is one implementation (imageExamples views
 * it as a map-style dataset; the loader also reads it directly, without per-sample objects).
 */
import { Tensor } from '../tensor/tensor.js';
import { formatShape, ShapeError } from '../tensor/shape.js';
import { type ImageDataset, imageSize } from './dataset.js';

/** Random access to samples by index, like PyTorch's map-style Dataset. Shuffling needs this form. */
export interface Dataset<Sample> {
  /** Number of samples. */
  readonly length: number;
  /** Sample `index`, in [0, length). */
  get(index: number): Sample;
}

/**
 * Samples in the order a stream gives them (records read from a file or a socket, generated data),
 * like PyTorch's IterableDataset. Each call to the iterator starts a new pass (an epoch). `length`,
 * when known, lets fit announce batches per epoch to progress bars, trackers and per-batch
 * schedules; without it they see 0 batches per epoch.
 */
export interface IterableDataset<Sample> extends Iterable<Sample> {
  readonly length?: number;
}

/**
 * One training example as the default collate reads it: an input of any shape and a target that is a
 * class index (classification) or an array of floats (regression, multi-hot labels).
 */
export interface Example {
  /** The sample's values, row-major. */
  input: ArrayLike<number>;
  /** The sample's shape, without the batch dimension, e.g. [1, 28, 28] or [13]. */
  shape: readonly number[];
  /** A class index, or the sample's float targets (their count fixes the target shape [batch, count]). */
  target: number | ArrayLike<number>;
}

/**
 * What the loop trains on: an input batch and its targets.
 * input: [batch, ...sampleShape]; target: class indices [batch] (Int32Array) or a float tensor
 * [batch, ...] (regression, multi-hot labels).
 */
export interface Batch {
  input: Tensor;
  target: Int32Array | Tensor;
  /** Samples in this batch. */
  size: number;
}

/** Any data fit, evaluate and predict accept: in memory (ImageDataset, map-style) or streamed. */
export type DataSource<Sample = Example> = ImageDataset | Dataset<Sample> | IterableDataset<Sample>;

/** Whether data is an in-memory ImageDataset (its arrays are read directly). */
export function isImageDataset(data: unknown): data is ImageDataset {
  return (
    typeof data === 'object' &&
    data !== null &&
    'images' in data &&
    'labels' in data &&
    'count' in data &&
    !('get' in data)
  );
}

/** Whether data gives random access by index (and so can be shuffled and split). */
export function isMapDataset<Sample>(data: DataSource<Sample>): data is Dataset<Sample> {
  return !isImageDataset(data) && typeof (data as Partial<Dataset<Sample>>).get === 'function';
}

/**
 * Stacks examples into one batch: inputs [batch, ...shape] and targets as class indices [batch]
 * when every target is a number, else a float tensor [batch, targetCount]. Every example must have
 * the same shape and target kind (the error names the first that differs).
 */
export function collateExamples(examples: readonly Example[]): Batch {
  const first = examples[0];
  if (first === undefined) throw new RangeError('collateExamples: no examples to batch');
  const size = examples.length;
  const sampleSize = first.shape.reduce((a, b) => a * b, 1);
  const input = new Float32Array(size * sampleSize);
  const classTargets = typeof first.target === 'number';
  const targetWidth = classTargets ? 1 : (first.target as ArrayLike<number>).length;
  const labels = classTargets ? new Int32Array(size) : undefined;
  const floats = classTargets ? undefined : new Float32Array(size * targetWidth);
  examples.forEach((example, i) => {
    if (example.input.length !== sampleSize || example.shape.length !== first.shape.length)
      throw new ShapeError(
        `collateExamples: example ${i} has shape ${formatShape(example.shape)} (${example.input.length} values), ` +
          `the batch's first has ${formatShape(first.shape)}`,
      );
    input.set(example.input, i * sampleSize);
    if (labels !== undefined) {
      if (typeof example.target !== 'number' || !Number.isInteger(example.target))
        throw new TypeError(`collateExamples: example ${i}'s target is not a class index like the first's`);
      labels[i] = example.target;
    } else {
      const target = example.target;
      if (typeof target === 'number' || target.length !== targetWidth)
        throw new ShapeError(
          `collateExamples: example ${i} has ${typeof target === 'number' ? 'a class index' : `${target.length} targets`}, the first has ${targetWidth}`,
        );
      floats!.set(target, i * targetWidth);
    }
  });
  return {
    input: new Tensor(input, [size, ...first.shape]),
    target: labels ?? new Tensor(floats!, [size, targetWidth]),
    size,
  };
}

/**
 * An ImageDataset as a map-style dataset of examples (input [C, H, W], target the class index). The
 * inputs are views into the dataset's array, not copies.
 */
export function imageExamples(dataset: ImageDataset): Dataset<Example> {
  const size = imageSize(dataset);
  const shape = [dataset.channels, dataset.height, dataset.width];
  return {
    length: dataset.count,
    get: (index) => ({
      input: dataset.images.subarray(index * size, (index + 1) * size),
      shape,
      target: dataset.labels[index]!,
    }),
  };
}

/**
 * A map-style dataset over row-aligned tensors: inputs [N, ...] and targets [N, ...] (floats) or class
 * indices [N]. Sample i is row i of each.
 *
 * @example
 * const data = tensorDataset(tensor([[0], [1], [2]]), tensor([[1], [3], [5]]));   // y = 2x + 1
 */
export function tensorDataset(inputs: Tensor, targets: Tensor | Int32Array): Dataset<Example> {
  const count = inputs.shape[0] ?? 0;
  const targetCount = targets instanceof Tensor ? (targets.shape[0] ?? 0) : targets.length;
  if (inputs.rank < 1 || targetCount !== count)
    throw new ShapeError(
      `tensorDataset: inputs ${formatShape(inputs.shape)} and ${targets instanceof Tensor ? `targets ${formatShape(targets.shape)}` : `${targetCount} class indices`} must have the same first dimension`,
    );
  const shape = inputs.shape.slice(1);
  const size = shape.reduce((a, b) => a * b, 1);
  const targetSize = targets instanceof Tensor ? targets.size / Math.max(1, count) : 1;
  return {
    length: count,
    get: (index) => ({
      input: inputs.data.subarray(index * size, (index + 1) * size),
      shape,
      target:
        targets instanceof Tensor
          ? targets.data.subarray(index * targetSize, (index + 1) * targetSize)
          : targets[index]!,
    }),
  };
}

/** The samples of a map-style dataset at `indices`, in that order (a view: nothing is copied). */
export function datasetSubset<Sample>(dataset: Dataset<Sample>, indices: ArrayLike<number>): Dataset<Sample> {
  const chosen = Int32Array.from(indices as ArrayLike<number>);
  for (const index of chosen)
    if (index < 0 || index >= dataset.length)
      throw new RangeError(`datasetSubset: index ${index} is outside [0, ${dataset.length})`);
  return { length: chosen.length, get: (i) => dataset.get(chosen[i]!) };
}
