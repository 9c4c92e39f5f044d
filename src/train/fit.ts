/**
 * fit / evaluate / predict for image classifiers: the loop that ties a model, an optimizer, a loss
 * and a dataset together, as a sequence of typed events that callbacks observe.
 */
import { noGrad } from '../autograd/graph.js';
import { DataLoader } from '../data/loader.js';
import { type ImageDataset, splitDataset } from '../data/dataset.js';
import { Random } from '../tensor/random.js';
import type { SampleTransform } from '../data/transforms.js';
import type { Module } from '../nn/module.js';
import { crossEntropy } from '../ops/loss.js';
import { argmaxRows } from '../ops/reduce.js';
import type { Optimizer } from '../optim/optimizer.js';
import type { LearningRateSchedule } from '../optim/schedule.js';
import { Tensor } from '../tensor/tensor.js';
import { type Callback, LearningRateScheduler, type TrainingControl } from './callbacks.js';
import type { EpochLogs, TrainingEvent } from './events.js';
import { ProgressBar, type ProgressOptions } from './progress.js';
import {
  assertFiniteInputs,
  firstNonFiniteGradient,
  NonFiniteError,
  type NonFinitePolicy,
} from './non-finite.js';

/** Loss of a batch: logits [N, classes], labels [N] → scalar tensor. */
export type LossFunction = (logits: Tensor, labels: Int32Array) => Tensor;

export interface FitOptions {
  optimizer: Optimizer;
  epochs: number;
  /** Default 64. */
  batchSize?: number;
  /** Default: softmax cross-entropy. */
  loss?: LossFunction;
  /** Hold out this fraction of the training data for validation (seeded split). */
  validationSplit?: number;
  /** Validation data given explicitly (takes precedence over validationSplit). */
  validationData?: ImageDataset;
  /** Per-sample augmentation of training batches. */
  transforms?: readonly SampleTransform[];
  /** Seeds shuffling, augmentation and the validation split; one seed makes a run reproducible. */
  seed?: number;
  /** Stepped per batch or epoch by its unit. */
  schedule?: LearningRateSchedule;
  callbacks?: Callback[];
  /** Progress output (default true: a bar on terminals, lines otherwise); false for silence. */
  progress?: boolean | ProgressOptions;
  /** Epoch to start from (for resuming; schedules continue from there). */
  initialEpoch?: number;
  /** The loader's generator; pass one to save/restore its state in checkpoints. */
  random?: Random;
  /**
   * When the loss or a gradient is NaN or infinite: 'stop' (default) throws a NonFiniteError naming
   * the step, the batch and the first parameter whose gradient went non-finite, before the optimizer
   * applies it; 'skip' leaves the weights unchanged for that batch, counts it in `skippedSteps`, and
   * goes on.
   */
  nonFinite?: NonFinitePolicy;
  /** Train even if the images hold NaN or infinities (default false: fit refuses them up front). */
  allowNonFiniteInputs?: boolean;
}

export interface History {
  epochs: EpochLogs[];
  stoppedEarly: boolean;
  stopReason?: string;
  /** Batches whose step was skipped because the loss or a gradient was not finite (nonFinite: 'skip'). */
  skippedSteps: number;
}

function batchTensor(images: Float32Array, shape: readonly number[]): Tensor {
  return new Tensor(images, shape);
}

function countCorrect(logits: Tensor, labels: Int32Array): number {
  const predicted = argmaxRows(logits);
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if (predicted[i] === labels[i]) correct++;
  return correct;
}

/**
 * Trains model on dataset. images [N, C, H, W] are fed in batches; the model maps them to logits
 * [batch, classes].
 *
 * @example
 * const history = fit(model, train, { optimizer: new Adam(model.parameters(), { lr: 1e-3 }), epochs: 5 });
 */
export function fit(model: Module, dataset: ImageDataset, options: FitOptions): History {
  if (!Number.isInteger(options.epochs) || options.epochs < 1)
    throw new RangeError(`fit: epochs must be a positive integer, got ${options.epochs}`);
  const seed = options.seed ?? 0;
  const lossFunction = options.loss ?? ((logits, labels) => crossEntropy(logits, labels));
  let train = dataset;
  let validation = options.validationData;
  if (validation === undefined && options.validationSplit !== undefined && options.validationSplit > 0) {
    ({ train, test: validation } = splitDataset(dataset, options.validationSplit, new Random(seed + 1)));
  }
  if (options.allowNonFiniteInputs !== true) {
    const sampleSize = dataset.channels * dataset.height * dataset.width;
    assertFiniteInputs(train.images, sampleSize, 'fit: the training images');
    if (validation !== undefined)
      assertFiniteInputs(validation.images, sampleSize, 'fit: the validation images');
  }
  const nonFinite = options.nonFinite ?? 'stop';
  let skippedSteps = 0;
  const batchSize = options.batchSize ?? 64;
  const random = options.random ?? new Random(seed);
  const loader = new DataLoader(train, {
    batchSize,
    shuffle: true,
    transforms: options.transforms ?? [],
    random,
  });
  const batchesPerEpoch = Math.ceil(train.count / batchSize);
  const callbacks: Callback[] = [];
  if (options.progress !== false)
    callbacks.push(
      new ProgressBar(options.progress === true || options.progress === undefined ? {} : options.progress),
    );
  if (options.schedule !== undefined) callbacks.push(new LearningRateScheduler(options.schedule));
  callbacks.push(...(options.callbacks ?? []));

  let stopReason: string | undefined;
  const control: TrainingControl = {
    model,
    optimizer: options.optimizer,
    batchesPerEpoch,
    random,
    stop: (reason) => {
      stopReason ??= reason;
    },
  };
  const emit = (event: TrainingEvent) => {
    for (const callback of callbacks) callback.handle(event, control);
  };

  const history: EpochLogs[] = [];
  const startEpoch = options.initialEpoch ?? 0;
  emit({
    type: 'fitStart',
    epochs: options.epochs,
    batchesPerEpoch,
    trainSamples: train.count,
    validationSamples: validation?.count ?? 0,
    startEpoch,
  });
  for (let epoch = startEpoch; epoch < options.epochs && stopReason === undefined; epoch++) {
    emit({ type: 'epochStart', epoch });
    model.train();
    const started = performance.now();
    let lossSum = 0;
    let correct = 0;
    let seen = 0;
    let batch = 0;
    for (const { images, labels, shape, size } of loader) {
      emit({ type: 'batchStart', epoch, batch });
      const logits = model.forward(batchTensor(images, shape));
      const loss = lossFunction(logits, labels);
      options.optimizer.zeroGrad();
      loss.backward();
      const batchLoss = loss.item();
      // A NaN loss gives NaN gradients; a finite loss can still overflow a gradient. Either way the
      // optimizer must not apply it, or every weight becomes NaN and training goes on silently.
      const badGradient = firstNonFiniteGradient(model);
      if (!Number.isFinite(batchLoss) || badGradient !== undefined) {
        const step = (epoch - startEpoch) * batchesPerEpoch + batch + 1;
        if (nonFinite === 'skip') {
          skippedSteps++;
          batch++;
          continue;
        }
        throw new NonFiniteError(
          `training diverged at step ${step} (epoch ${epoch + 1}, batch ${batch + 1} of ${batchesPerEpoch}): ` +
            `the loss is ${batchLoss}` +
            (badGradient === undefined
              ? ''
              : `, and the first parameter with a non-finite gradient is '${badGradient}'`) +
            ` — lower the learning rate or check the data; the weights were left as they were before this step`,
        );
      }
      options.optimizer.step();
      lossSum += batchLoss * size;
      correct += countCorrect(logits, labels);
      seen += size;
      const elapsed = (performance.now() - started) / 1000;
      emit({
        type: 'batchEnd',
        epoch,
        batch,
        loss: batchLoss,
        epochLoss: lossSum / seen,
        epochAccuracy: correct / seen,
        samplesSeen: seen,
        samplesPerSecond: seen / elapsed,
      });
      batch++;
    }
    const seconds = (performance.now() - started) / 1000;
    const logs: EpochLogs = {
      epoch,
      loss: lossSum / seen,
      accuracy: correct / seen,
      learningRate: options.optimizer.groups[0]?.settings.lr ?? 0,
      seconds,
      samplesPerSecond: seen / seconds,
    };
    if (validation !== undefined && validation.count > 0) {
      emit({ type: 'validationStart', epoch });
      const result = evaluate(model, validation, { batchSize: Math.max(batchSize, 256), loss: lossFunction });
      logs.validationLoss = result.loss;
      logs.validationAccuracy = result.accuracy;
      emit({ type: 'validationEnd', epoch, loss: result.loss, accuracy: result.accuracy });
    }
    history.push(logs);
    emit({ type: 'epochEnd', epoch, logs });
  }
  const result: History = { epochs: history, stoppedEarly: stopReason !== undefined, skippedSteps };
  if (stopReason !== undefined) result.stopReason = stopReason;
  emit({ type: 'fitEnd', history, stoppedEarly: result.stoppedEarly });
  return result;
}

export interface EvaluateOptions {
  batchSize?: number;
  loss?: LossFunction;
}

/** Mean loss and accuracy of model on dataset, in inference mode without recording gradients. */
export function evaluate(
  model: Module,
  dataset: ImageDataset,
  options: EvaluateOptions = {},
): { loss: number; accuracy: number } {
  const lossFunction = options.loss ?? ((logits, labels) => crossEntropy(logits, labels));
  const wasTraining = model.training;
  model.eval();
  let lossSum = 0;
  let correct = 0;
  try {
    noGrad(() => {
      for (const { images, labels, shape, size } of new DataLoader(dataset, {
        batchSize: options.batchSize ?? 256,
      })) {
        const logits = model.forward(batchTensor(images, shape));
        lossSum += lossFunction(logits, labels).item() * size;
        correct += countCorrect(logits, labels);
      }
    });
  } finally {
    model.train(wasTraining);
  }
  return { loss: lossSum / dataset.count, accuracy: correct / dataset.count };
}

/**
 * Model outputs for images [N, C, H, W] (a tensor or a dataset), in inference mode, batched.
 * Returns [N, outputs].
 */
export function predict(
  model: Module,
  input: Tensor | ImageDataset,
  options: { batchSize?: number } = {},
): Tensor {
  const wasTraining = model.training;
  model.eval();
  try {
    return noGrad(() => {
      const batchSize = options.batchSize ?? 256;
      const images = input instanceof Tensor ? input.data : input.images;
      const sampleShape =
        input instanceof Tensor ? input.shape.slice(1) : [input.channels, input.height, input.width];
      const count = input instanceof Tensor ? input.shape[0]! : input.count;
      const sampleSize = sampleShape.reduce((a, b) => a * b, 1);
      const outputs: Tensor[] = [];
      for (let start = 0; start < count; start += batchSize) {
        const end = Math.min(count, start + batchSize);
        const slice = images.subarray(start * sampleSize, end * sampleSize);
        outputs.push(model.forward(new Tensor(slice, [end - start, ...sampleShape])));
      }
      const width = outputs[0]!.shape.slice(1);
      const out = outputs[0]!.newData(count * width.reduce((a, b) => a * b, 1));
      let offset = 0;
      for (const output of outputs) {
        out.set(output.data, offset);
        offset += output.size;
      }
      return new Tensor(out, [count, ...width]);
    });
  } finally {
    model.train(wasTraining);
  }
}
