/**
 * fit / fitAsync / evaluate / predict: the loop that ties a model, an optimizer, a loss and data
 * together, for any task: classification (class-index targets), multi-label and regression (float
 * tensor targets), in memory or streamed. It runs as nested stages (fit ⊃ epoch ⊃ batch ⊃ step),
 * each announced by typed events that callbacks observe and steer (see events.ts, callbacks.ts);
 * fitEnd fires however the run ends.
 */
import { noGrad } from '../autograd/graph.js';
import { type ImageDataset, splitDataset } from '../data/dataset.js';
import { DataLoader } from '../data/loader.js';
import {
  type Batch,
  type DataSource,
  datasetSubset,
  type Example,
  isImageDataset,
  isMapDataset,
} from '../data/protocol.js';
import type { Module } from '../nn/module.js';
import { crossEntropy } from '../ops/loss.js';
import type { Optimizer } from '../optim/optimizer.js';
import type { LearningRateSchedule } from '../optim/schedule.js';
import { Random } from '../tensor/random.js';
import { formatShape, ShapeError } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import type { SampleTransform } from '../data/transforms.js';
import { type Callback, LearningRateScheduler, type TrainingControl } from './callbacks.js';
import { clipGradientNorm, clipGradientValue } from './clipping.js';
import type { EpochLogs, FitOutcome, TrainingEvent } from './events.js';
import { type BatchLoader, type LoopRun, runToEnd, runYielding } from './loop.js';
import { Accuracy, type Metric } from './metrics.js';
import { ProgressBar, type ProgressOptions } from './progress.js';
import {
  assertFiniteInputs,
  firstNonFiniteGradient,
  firstNonFiniteIndex,
  NonFiniteError,
  type NonFinitePolicy,
} from './non-finite.js';

/** Targets of a batch: class indices [N], or a float tensor [N, ...] (regression, multi-hot labels). */
export type Target = Int32Array | Tensor;

/**
 * Loss of a batch: the model's output and the batch's targets → a scalar tensor. Any function of
 * that form works: crossEntropy (the default for class indices), mseLoss, l1Loss, huberLoss,
 * binaryCrossEntropyWithLogits, or your own.
 */
export type LossFunction<T extends Target = Target> = (output: Tensor, target: T) => Tensor;

/** What fit, evaluate and predict read: a data source, or a DataLoader you configured yourself. */
export type FitData<Sample = Example> = DataSource<Sample> | DataLoader<Batch>;

export interface FitOptions<Sample = Example> {
  optimizer: Optimizer;
  epochs: number;
  /** Default 64. */
  batchSize?: number;
  /**
   * (output, target) → scalar loss. Default: softmax cross-entropy for class-index targets; float
   * targets need one (e.g. mseLoss, binaryCrossEntropyWithLogits).
   */
  loss?(output: Tensor, target: Target): Tensor;
  /**
   * Streaming metrics, reset every epoch and computed at its end, on the training batches and on the
   * validation data (logged as 'validation' + Name). Default: accuracy for class-index targets, none
   * otherwise.
   */
  metrics?: readonly Metric[];
  /** Hold out this fraction of the training data for validation (seeded split; needs random access). */
  validationSplit?: number;
  /** Validation data given explicitly (takes precedence over validationSplit). */
  validationData?: FitData<Sample>;
  /** Per-sample augmentation of training batches (ImageDataset). */
  transforms?: readonly SampleTransform[];
  /** Visit the training samples in a new order every epoch (default true; a stream keeps its order). */
  shuffle?: boolean;
  /** Turns samples into a batch (default collateExamples for Example samples). */
  collate?(samples: Sample[]): Batch;
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
  /** Train even if the inputs hold NaN or infinities (default false: fit refuses them). */
  allowNonFiniteInputs?: boolean;
  /**
   * Clip the gradients' total norm to this before each step (PyTorch's clip_grad_norm_, L2 over all
   * parameters together), or { maxNorm, normType } for another p-norm (Infinity: the largest |g|).
   */
  clipGradientNorm?: number | { maxNorm: number; normType?: number };
  /** Clamp every gradient element to [−value, value] before each step (after norm clipping). */
  clipGradientValue?: number;
  /** Aborting it ends the run after the current batch, as stopAfterBatch does. */
  signal?: AbortSignal;
}

export interface History {
  epochs: EpochLogs[];
  stoppedEarly: boolean;
  stopReason?: string;
  /** Batches whose step was skipped because the loss or a gradient was not finite (nonFinite: 'skip'). */
  skippedSteps: number;
}

/** Mean loss and metrics over a data set. */
export interface EvaluationResult {
  loss: number;
  /** Present when accuracy is measured (always for an ImageDataset). */
  accuracy?: number;
  /** Every metric by name. */
  metrics: Record<string, number>;
  samples: number;
}

/** What evaluate returns for an ImageDataset: accuracy is always measured. */
export interface ImageEvaluationResult extends EvaluationResult {
  accuracy: number;
}

/** The default loss needs class indices; float targets must name their loss. */
function checkDefaultLoss(target: Target): asserts target is Int32Array {
  if (target instanceof Tensor)
    throw new TypeError(
      'fit: the targets are float tensors, which have no default loss; pass loss (e.g. mseLoss for regression, binaryCrossEntropyWithLogits for multi-hot labels)',
    );
}

const defaultLoss: LossFunction = (output, target) => {
  checkDefaultLoss(target);
  return crossEntropy(output, target);
};

function lossName(loss: ((output: Tensor, target: Target) => Tensor) | undefined): string {
  if (loss === undefined) return 'crossEntropy';
  return loss.name === '' || loss.name === 'loss' ? 'the loss function' : loss.name;
}

/** Refuses an output and targets that cannot belong together, naming both shapes and the loss. */
function checkOutputAgainstTarget(output: Tensor, target: Target, loss: string): void {
  if (target instanceof Tensor) {
    const same = output.rank === target.rank && output.shape.every((size, i) => size === target.shape[i]);
    if (!same)
      throw new ShapeError(
        `fit: the model's output has shape ${formatShape(output.shape)} but the targets have shape ${formatShape(target.shape)} (loss: ${loss}); they must match`,
      );
  } else if (output.rank !== 2 || output.shape[0] !== target.length) {
    throw new ShapeError(
      `fit: the model's output has shape ${formatShape(output.shape)} but the targets are ${target.length} class indices, shape [${target.length}] (loss: ${loss}); class indices need an output [${target.length}, classes]`,
    );
  }
}

function validationName(name: string): string {
  return `validation${name.charAt(0).toUpperCase()}${name.slice(1)}`;
}

function isLoader(data: FitData<unknown>): data is DataLoader<Batch> {
  return data instanceof DataLoader;
}

function sampleCount(data: FitData<unknown>): number {
  if (isLoader(data)) return data.sampleCount ?? 0;
  if (isImageDataset(data)) return data.count;
  return data.length ?? 0;
}

/** A loader over data (unchanged when data already is one). */
function loaderFor<Sample>(
  data: FitData<Sample>,
  options: {
    batchSize: number;
    shuffle?: boolean;
    random?: Random;
    collate?: (samples: Sample[]) => Batch;
    transforms?: readonly SampleTransform[];
  },
): DataLoader<Batch> {
  if (isLoader(data)) return data;
  const common = {
    batchSize: options.batchSize,
    shuffle: options.shuffle ?? false,
    ...(options.random === undefined ? {} : { random: options.random }),
  };
  if (isImageDataset(data)) {
    if (options.collate !== undefined)
      return new DataLoader(data, { ...common, collate: options.collate as (samples: Example[]) => Batch });
    return new DataLoader(data, { ...common, transforms: options.transforms ?? [] });
  }
  if (options.collate !== undefined) return new DataLoader(data, { ...common, collate: options.collate });
  // Without collate, samples must be Examples (collateExamples reads them).
  return new DataLoader(data as DataSource<Example> & Exclude<DataSource<Example>, ImageDataset>, common);
}

/** Throws a NonFiniteError naming the batch and sample when a streamed batch's inputs are not finite. */
function assertFiniteBatch(batch: Batch, where: string): void {
  const index = firstNonFiniteIndex(batch.input.data);
  if (index < 0) return;
  const sampleSize = batch.input.size / Math.max(1, batch.size);
  throw new NonFiniteError(
    `${where}: sample ${Math.floor(index / sampleSize)} holds ${batch.input.data[index]} at value ${index % sampleSize} ` +
      `(NaN and infinities would turn every weight into NaN; fix the data, or pass allowNonFiniteInputs: true)`,
  );
}

/** The default metrics: accuracy when the data are class-indexed, which an ImageDataset always is. */
function chooseMetrics(metrics: readonly Metric[] | undefined, classIndexed: boolean): Metric[] {
  if (metrics !== undefined) return [...metrics];
  return classIndexed ? [new Accuracy()] : [];
}

interface PassResult {
  lossSum: number;
  samples: number;
  /** The metrics updated: those given, or the defaults for the targets seen. */
  metrics: Metric[];
}

/** One inference pass over a loader: the summed loss and the metrics updated, in eval mode without gradients. */
function* evaluationPass(
  model: Module,
  loader: BatchLoader,
  loss: (output: Tensor, target: Target) => Tensor,
  name: string,
  given: readonly Metric[] | undefined,
  checkInputs: string | null,
): LoopRun<PassResult> {
  const wasTraining = model.training;
  model.eval();
  let metrics = given === undefined ? undefined : [...given];
  for (const metric of metrics ?? []) metric.reset();
  let lossSum = 0;
  let samples = 0;
  yield { kind: 'open', loader };
  try {
    for (;;) {
      const batch = yield { kind: 'next' };
      if (batch === undefined) break;
      if (checkInputs !== null) assertFiniteBatch(batch, checkInputs);
      // The default metrics follow the targets: accuracy for class indices.
      const used = (metrics ??= chooseMetrics(undefined, !(batch.target instanceof Tensor)));
      noGrad(() => {
        const output = model.call(batch.input);
        checkOutputAgainstTarget(output, batch.target, name);
        lossSum += loss(output, batch.target).item() * batch.size;
        for (const metric of used) metric.update(output, batch.target);
      });
      samples += batch.size;
    }
  } finally {
    model.train(wasTraining);
    yield { kind: 'close' };
  }
  return { lossSum, samples, metrics: metrics ?? [] };
}

function computeMetrics(
  metrics: readonly Metric[],
  rename: (name: string) => string = (name) => name,
): Record<string, number> {
  const values: Record<string, number> = {};
  for (const metric of metrics) values[rename(metric.name)] = metric.compute();
  return values;
}

/** The loop itself; fit and fitAsync drive it. */
function* trainingRun<Sample>(
  model: Module,
  data: FitData<Sample>,
  options: FitOptions<Sample>,
): LoopRun<History> {
  if (!Number.isInteger(options.epochs) || options.epochs < 1)
    throw new RangeError(`fit: epochs must be a positive integer, got ${options.epochs}`);
  const seed = options.seed ?? 0;
  const lossFunction =
    options.loss === undefined
      ? defaultLoss
      : (output: Tensor, target: Target) => options.loss!(output, target);
  const name = lossName(options.loss);
  const batchSize = options.batchSize ?? 64;
  const random = options.random ?? (isLoader(data) ? data.random : new Random(seed));

  // The validation data: given, or a seeded split of data with random access.
  let train: FitData<Sample> = data;
  let validation = options.validationData;
  if (validation === undefined && options.validationSplit !== undefined && options.validationSplit > 0) {
    if (isImageDataset(data)) {
      ({ train, test: validation } = splitDataset(data, options.validationSplit, new Random(seed + 1)));
    } else if (!isLoader(data) && isMapDataset(data)) {
      const order = new Random(seed + 1).permutation(data.length);
      const held = Math.round(data.length * options.validationSplit);
      validation = datasetSubset(data, order.subarray(0, held).slice().sort());
      train = datasetSubset(data, order.subarray(held).slice().sort());
    } else {
      throw new TypeError(
        'fit: validationSplit needs random access (an ImageDataset or a map-style dataset); pass validationData for a stream or a loader',
      );
    }
  }
  // In-memory images are checked once, up front; other data batch by batch as it arrives.
  const checkInputs = options.allowNonFiniteInputs !== true;
  if (checkInputs && isImageDataset(train)) {
    const sampleSize = train.channels * train.height * train.width;
    assertFiniteInputs(train.images, sampleSize, 'fit: the training images');
    if (validation !== undefined && isImageDataset(validation))
      assertFiniteInputs(validation.images, sampleSize, 'fit: the validation images');
  }
  const checkTrainBatches = checkInputs && !isImageDataset(train) ? 'fit: a training batch' : null;
  const checkValidationBatches =
    checkInputs && validation !== undefined && !isImageDataset(validation) ? 'fit: a validation batch' : null;

  const loader = loaderFor(train, {
    batchSize,
    shuffle: isLoader(train)
      ? undefined
      : (options.shuffle ?? (isImageDataset(train) || isMapDataset(train))),
    random,
    ...(options.collate === undefined ? {} : { collate: (samples: Sample[]) => options.collate!(samples) }),
    ...(options.transforms === undefined ? {} : { transforms: options.transforms }),
  });
  const validationLoader =
    validation === undefined || (sampleCount(validation) === 0 && isImageDataset(validation))
      ? undefined
      : loaderFor(validation, {
          batchSize: Math.max(batchSize, 256),
          ...(options.collate === undefined
            ? {}
            : { collate: (samples: Sample[]) => options.collate!(samples) }),
        });
  const classIndexed = isImageDataset(train) || (isLoader(train) && isImageDataset(train.dataset));
  let metrics: Metric[] | undefined =
    options.metrics === undefined && !classIndexed ? undefined : chooseMetrics(options.metrics, classIndexed);

  const nonFinite = options.nonFinite ?? 'stop';
  const clipNorm =
    options.clipGradientNorm === undefined
      ? undefined
      : typeof options.clipGradientNorm === 'number'
        ? { maxNorm: options.clipGradientNorm, normType: 2 }
        : { maxNorm: options.clipGradientNorm.maxNorm, normType: options.clipGradientNorm.normType ?? 2 };
  const batchesPerEpoch = loader.batchCount;
  const callbacks: Callback[] = [];
  if (options.progress !== false)
    callbacks.push(
      new ProgressBar(options.progress === true || options.progress === undefined ? {} : options.progress),
    );
  if (options.schedule !== undefined) callbacks.push(new LearningRateScheduler(options.schedule));
  callbacks.push(...(options.callbacks ?? []));

  let stopReason: string | undefined;
  let stopNowReason: string | undefined;
  let skipBatchReason: string | undefined;
  let skipEpochReason: string | undefined;
  const control: TrainingControl = {
    model,
    optimizer: options.optimizer,
    batchesPerEpoch,
    random,
    stop: (reason) => {
      stopReason ??= reason;
    },
    stopAfterBatch: (reason) => {
      stopNowReason ??= reason;
      stopReason ??= reason;
    },
    skipBatch: (reason = 'skipped by a callback') => {
      skipBatchReason ??= reason;
    },
    skipEpoch: (reason = 'skipped by a callback') => {
      skipEpochReason ??= reason;
    },
  };
  const emit = (event: TrainingEvent): void => {
    for (const callback of callbacks) callback.handle(event, control);
  };
  const onAbort = (): void =>
    control.stopAfterBatch(`aborted: ${String(options.signal?.reason ?? 'signal')}`);
  if (options.signal?.aborted === true) onAbort();
  options.signal?.addEventListener('abort', onAbort);

  const history: EpochLogs[] = [];
  const startEpoch = options.initialEpoch ?? 0;
  let skippedSteps = 0;
  let failure: { error: unknown } | undefined;
  try {
    emit({
      type: 'fitStart',
      epochs: options.epochs,
      batchesPerEpoch,
      trainSamples: sampleCount(train),
      validationSamples: validation === undefined ? 0 : sampleCount(validation),
      startEpoch,
    });
    for (let epoch = startEpoch; epoch < options.epochs && stopReason === undefined; epoch++) {
      emit({ type: 'epochStart', epoch });
      model.train();
      for (const metric of metrics ?? []) metric.reset();
      const started = performance.now();
      let lossSum = 0;
      let seen = 0;
      let batch = 0;
      skipEpochReason = undefined;
      yield { kind: 'open', loader };
      try {
        for (; stopNowReason === undefined && skipEpochReason === undefined; batch++) {
          const next = yield { kind: 'next' };
          if (next === undefined) break;
          const { input, target, size } = next;
          // Known only now for a stream or a custom loader: accuracy by default when targets are classes.
          metrics ??= chooseMetrics(options.metrics, !(target instanceof Tensor));
          skipBatchReason = undefined;
          emit({ type: 'batchStart', epoch, batch, size });
          if (skipBatchReason !== undefined) {
            emit({ type: 'batchSkipped', epoch, batch, reason: skipBatchReason });
            continue;
          }
          if (checkTrainBatches !== null) assertFiniteBatch(next, checkTrainBatches);
          if (options.loss === undefined) checkDefaultLoss(target);
          const output = model.call(input);
          checkOutputAgainstTarget(output, target, name);
          const loss = lossFunction(output, target);
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
              emit({
                type: 'batchSkipped',
                epoch,
                batch,
                reason: 'non-finite loss or gradient',
                loss: batchLoss,
              });
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
          let gradientNorm: number | undefined;
          if (clipNorm !== undefined)
            gradientNorm = clipGradientNorm(model.parameters(), clipNorm.maxNorm, clipNorm.normType);
          if (options.clipGradientValue !== undefined)
            clipGradientValue(model.parameters(), options.clipGradientValue);
          emit({
            type: 'stepStart',
            epoch,
            batch,
            loss: batchLoss,
            ...(gradientNorm === undefined ? {} : { gradientNorm }),
          });
          if (skipBatchReason !== undefined) {
            emit({ type: 'batchSkipped', epoch, batch, reason: skipBatchReason, loss: batchLoss });
            continue;
          }
          options.optimizer.step();
          emit({ type: 'stepEnd', epoch, batch });
          lossSum += batchLoss * size;
          for (const metric of metrics) metric.update(output, target);
          seen += size;
          const accuracy = metrics.find((metric) => metric.name === 'accuracy');
          const elapsed = (performance.now() - started) / 1000;
          emit({
            type: 'batchEnd',
            epoch,
            batch,
            loss: batchLoss,
            epochLoss: lossSum / seen,
            ...(accuracy === undefined ? {} : { epochAccuracy: accuracy.compute() }),
            samplesSeen: seen,
            samplesPerSecond: seen / elapsed,
          });
        }
      } finally {
        yield { kind: 'close' };
      }
      // Ended mid-epoch: no epochEnd for a part of an epoch (see TrainingControl.stopAfterBatch).
      if (stopNowReason !== undefined) break;
      if (batch === 0 && skipEpochReason === undefined)
        throw new RangeError(
          `fit: epoch ${epoch + 1} had no batches: the data is empty, or a stream that cannot be read twice ` +
            '(an iterable dataset must start a new pass each time it is iterated, not be a one-shot iterator)',
        );
      const seconds = (performance.now() - started) / 1000;
      const trainingMetrics = computeMetrics(metrics ?? []);
      const logs: EpochLogs = {
        epoch,
        loss: lossSum / seen,
        metrics: trainingMetrics,
        learningRate: options.optimizer.groups[0]?.settings.lr ?? 0,
        seconds,
        samplesPerSecond: seen / seconds,
      };
      if (trainingMetrics.accuracy !== undefined) logs.accuracy = trainingMetrics.accuracy;
      if (skipEpochReason !== undefined) logs.partial = true;
      if (validationLoader !== undefined) {
        emit({ type: 'validationStart', epoch });
        const pass = yield* evaluationPass(
          model,
          validationLoader,
          lossFunction,
          name,
          metrics,
          checkValidationBatches,
        );
        const validationMetrics = computeMetrics(pass.metrics, validationName);
        logs.validationLoss = pass.lossSum / pass.samples;
        Object.assign(logs.metrics, validationMetrics);
        if (validationMetrics.validationAccuracy !== undefined)
          logs.validationAccuracy = validationMetrics.validationAccuracy;
        emit({
          type: 'validationEnd',
          epoch,
          loss: logs.validationLoss,
          ...(logs.validationAccuracy === undefined ? {} : { accuracy: logs.validationAccuracy }),
          metrics: validationMetrics,
        });
      }
      history.push(logs);
      emit({ type: 'epochEnd', epoch, logs });
    }
  } catch (error) {
    failure = { error };
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }

  // The guaranteed end: every callback hears fitEnd (one failing does not silence the rest), then
  // the run's own error, if any, goes to the caller.
  const outcome: FitOutcome =
    failure !== undefined ? 'failed' : stopReason !== undefined ? 'stopped' : 'completed';
  const end: TrainingEvent = {
    type: 'fitEnd',
    history,
    stoppedEarly: stopReason !== undefined,
    outcome,
    ...(stopReason === undefined ? {} : { stopReason }),
    ...(failure === undefined ? {} : { error: failure.error }),
  };
  let endFailure: { error: unknown } | undefined;
  for (const callback of callbacks) {
    try {
      callback.handle(end, control);
    } catch (error) {
      endFailure ??= { error };
    }
  }
  if (failure !== undefined) throw failure.error;
  if (endFailure !== undefined) throw endFailure.error;
  const result: History = { epochs: history, stoppedEarly: stopReason !== undefined, skippedSteps };
  if (stopReason !== undefined) result.stopReason = stopReason;
  return result;
}

/**
 * Trains model on data. Each batch's input [batch, ...] goes through the model; its output and the
 * batch's targets (class indices [batch], or floats of the output's shape) go to the loss. Data may
 * be an ImageDataset (images [N, C, H, W]), a map-style or iterable dataset of Examples (or of your
 * own samples, with collate), or a DataLoader.
 *
 * @example
 * const history = fit(model, train, { optimizer: new Adam(model.parameters(), { lr: 1e-3 }), epochs: 5 });
 * // Regression on rows of features: inputs [N, 13], targets [N, 1].
 * fit(regressor, tensorDataset(features, prices), { optimizer, epochs: 50, loss: mseLoss, metrics: [new MeanAbsoluteError()] });
 */
export function fit<Sample = Example>(
  model: Module,
  data: FitData<Sample>,
  options: FitOptions<Sample>,
): History {
  return runToEnd(trainingRun(model, data, options));
}

/**
 * fit that yields to the event loop before every batch (training and validation), so a server, a
 * dashboard or a UI in the same process stays responsive; the same bits as fit for the same seed.
 * Pass `signal` to end it from outside.
 *
 * @example
 * const controller = new AbortController();
 * const history = await fitAsync(model, train, { optimizer, epochs: 5, signal: controller.signal });
 */
export function fitAsync<Sample = Example>(
  model: Module,
  data: FitData<Sample>,
  options: FitOptions<Sample>,
): Promise<History> {
  return runYielding(trainingRun(model, data, options));
}

export interface EvaluateOptions<Sample = Example> {
  batchSize?: number;
  loss?(output: Tensor, target: Target): Tensor;
  /** Default: accuracy for class-index targets. */
  metrics?: readonly Metric[];
  collate?(samples: Sample[]): Batch;
}

/**
 * Mean loss and metrics of model on data, in inference mode without recording gradients.
 *
 * @example
 * const { loss, accuracy } = evaluate(model, test);
 */
export function evaluate(model: Module, data: ImageDataset, options?: EvaluateOptions): ImageEvaluationResult;
export function evaluate<Sample = Example>(
  model: Module,
  data: FitData<Sample>,
  options?: EvaluateOptions<Sample>,
): EvaluationResult;
export function evaluate<Sample = Example>(
  model: Module,
  data: FitData<Sample>,
  options: EvaluateOptions<Sample> = {},
): EvaluationResult {
  const loader = loaderFor(data, {
    batchSize: options.batchSize ?? 256,
    ...(options.collate === undefined ? {} : { collate: (samples: Sample[]) => options.collate!(samples) }),
  });
  const loss =
    options.loss === undefined
      ? defaultLoss
      : (output: Tensor, target: Target) => options.loss!(output, target);
  const classIndexed = isImageDataset(data);
  // An ImageDataset always reports accuracy; other data get the defaults of their targets.
  const metrics =
    options.metrics === undefined && !classIndexed ? undefined : chooseMetrics(options.metrics, classIndexed);
  if (classIndexed && !metrics!.some((metric) => metric.name === 'accuracy')) metrics!.push(new Accuracy());
  const pass = runToEnd(evaluationPass(model, loader, loss, lossName(options.loss), metrics, null));
  const values = computeMetrics(pass.metrics);
  const result: EvaluationResult = {
    loss: pass.lossSum / pass.samples,
    metrics: values,
    samples: pass.samples,
  };
  if (values.accuracy !== undefined) result.accuracy = values.accuracy;
  return result;
}

/**
 * Model outputs for inputs [N, ...]: a tensor, an ImageDataset or any data source (targets ignored),
 * in inference mode, batched. Returns [N, ...outputs].
 */
export function predict<Sample = Example>(
  model: Module,
  input: Tensor | FitData<Sample>,
  options: { batchSize?: number; collate?(samples: Sample[]): Batch } = {},
): Tensor {
  const wasTraining = model.training;
  model.eval();
  try {
    return noGrad(() => {
      const batchSize = options.batchSize ?? 256;
      const outputs: Tensor[] = [];
      if (input instanceof Tensor || isImageDataset(input)) {
        // Slices of one array: no per-batch copies.
        const images = input instanceof Tensor ? input.data : input.images;
        const sampleShape =
          input instanceof Tensor ? input.shape.slice(1) : [input.channels, input.height, input.width];
        const count = input instanceof Tensor ? input.shape[0]! : input.count;
        const sampleSize = sampleShape.reduce((a, b) => a * b, 1);
        for (let start = 0; start < count; start += batchSize) {
          const end = Math.min(count, start + batchSize);
          const slice = images.subarray(start * sampleSize, end * sampleSize);
          outputs.push(model.call(new Tensor(slice, [end - start, ...sampleShape])));
        }
      } else {
        const loader = loaderFor(input, {
          batchSize,
          ...(options.collate === undefined
            ? {}
            : { collate: (samples: Sample[]) => options.collate!(samples) }),
        });
        for (const batch of loader) outputs.push(model.call(batch.input));
      }
      if (outputs.length === 0) throw new RangeError('predict: the input has no samples');
      const width = outputs[0]!.shape.slice(1);
      const count = outputs.reduce((total, output) => total + output.shape[0]!, 0);
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
