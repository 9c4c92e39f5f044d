/**
 * Tuning the training loop itself: a trial's hyperparameters (learning rate, batch size, optimizer,
 * momentum, weight decay, dropout, epochs, schedule, augmentation) turned into a seed-CNN training
 * run whose validation metric is the objective. `tensile tune` and the tuning experiments use it.
 */
import { noGrad } from '../autograd/graph.js';
import { splitDataset, type ImageDataset } from '../data/dataset.js';
import { DataLoader } from '../data/loader.js';
import type { TableDataset } from '../data/csv.js';
import { isImageDataset } from '../data/protocol.js';
import { mseLoss } from '../ops/loss.js';
import { ReLU } from '../nn/layers/activation.js';
import { Dense } from '../nn/layers/dense.js';
import { Tensor } from '../tensor/tensor.js';
import { Random } from '../tensor/random.js';
import { randomShift } from '../data/transforms.js';
import { Dropout } from '../nn/layers/dropout.js';
import { Sequential } from '../nn/layers/containers.js';
import { manualSeed } from '../nn/init.js';
import { seedCnn } from '../models/seed-cnn.js';
import { Adam, AdamW } from '../optim/adam.js';
import type { Optimizer } from '../optim/optimizer.js';
import {
  cosineSchedule,
  oneCycleSchedule,
  stepSchedule,
  type LearningRateSchedule,
} from '../optim/schedule.js';
import { SGD } from '../optim/sgd.js';
import type { Callback, TrainingControl } from '../train/callbacks.js';
import type { TrainingEvent } from '../train/events.js';
import { fit, type History } from '../train/fit.js';
import { NonFiniteError } from '../train/non-finite.js';
import type { ParamValue } from './distributions.js';
import { PruningCallback, type PruningMetric } from './pruning-callback.js';
import type { Trial } from './trial.js';

export interface TrainingHyperparameters {
  lr: number;
  batchSize: number;
  optimizer: 'sgd' | 'adam' | 'adamw';
  /** SGD only. */
  momentum: number;
  weightDecay: number;
  /** Dropout before the dense head (0: none). */
  dropout: number;
  epochs: number;
  schedule: 'constant' | 'cosine' | 'one-cycle' | 'step';
  /** Random shift augmentation in pixels (0: none). */
  shift: number;
}

export const trainingDefaults: TrainingHyperparameters = {
  lr: 3e-3,
  batchSize: 64,
  optimizer: 'adamw',
  momentum: 0.9,
  weightDecay: 1e-4,
  dropout: 0,
  epochs: 3,
  schedule: 'constant',
  shift: 0,
};

export const trainingHyperparameterNames = Object.keys(trainingDefaults) as (keyof TrainingHyperparameters)[];

/** Defaults overridden by `values` (from a trial or a config), checked by name, type and range. */
export function trainingHyperparameters(values: Record<string, ParamValue>): TrainingHyperparameters {
  const result: TrainingHyperparameters = { ...trainingDefaults };
  for (const [name, value] of Object.entries(values)) {
    if (!(trainingHyperparameterNames as string[]).includes(name)) {
      throw new Error(
        `unknown training hyperparameter '${name}' (known: ${trainingHyperparameterNames.join(', ')})`,
      );
    }
    const key = name as keyof TrainingHyperparameters;
    if (typeof trainingDefaults[key] === 'number') {
      if (typeof value !== 'number' || !Number.isFinite(value))
        throw new Error(`${name} must be a number, got ${JSON.stringify(value)}`);
      (result as unknown as Record<string, number>)[key] = value;
    } else {
      (result as unknown as Record<string, ParamValue>)[key] = value;
    }
  }
  const check = (ok: boolean, message: string) => {
    if (!ok) throw new Error(message);
  };
  check(result.lr > 0, `lr must be positive, got ${result.lr}`);
  check(
    Number.isInteger(result.batchSize) && result.batchSize >= 1,
    `batchSize must be a positive integer, got ${result.batchSize}`,
  );
  check(
    ['sgd', 'adam', 'adamw'].includes(result.optimizer),
    `optimizer must be sgd, adam or adamw, got ${JSON.stringify(result.optimizer)}`,
  );
  check(result.momentum >= 0 && result.momentum < 1, `momentum must be in [0, 1), got ${result.momentum}`);
  check(result.weightDecay >= 0, `weightDecay must be >= 0, got ${result.weightDecay}`);
  check(result.dropout >= 0 && result.dropout < 1, `dropout must be in [0, 1), got ${result.dropout}`);
  check(
    Number.isInteger(result.epochs) && result.epochs >= 1,
    `epochs must be a positive integer, got ${result.epochs}`,
  );
  check(
    ['constant', 'cosine', 'one-cycle', 'step'].includes(result.schedule),
    `schedule must be constant, cosine, one-cycle or step, got ${JSON.stringify(result.schedule)}`,
  );
  check(
    Number.isInteger(result.shift) && result.shift >= 0,
    `shift must be a non-negative integer, got ${result.shift}`,
  );
  return result;
}

export interface TrainingTask {
  /** Images train the seed CNN; an encoded table (csvDataset) trains a perceptron of one hidden layer of 64. */
  train: ImageDataset | TableDataset;
  validation: ImageDataset | TableDataset;
  /** Tables only: the classes, or 1 for a regression (trained with mseLoss; metric validationLoss or loss). */
  outputs?: number;
  /** Channels of the seed CNN's two blocks. */
  channels: readonly [number, number];
  /** Seeds initialisation, data order and augmentation (the same for every trial, so trials differ only by hyperparameters). */
  seed: number;
  /** What the objective returns: the metric after the last epoch (default validationAccuracy). */
  metric?: PruningMetric;
}

export interface TrainingOutcome {
  value: number;
  history: History;
  seconds: number;
}

/**
 * Re-estimates batch-norm running statistics just before each validation ("precise BN"): forward
 * passes in training mode, without gradients, over `batches` training batches. The running averages
 * (momentum 0.1) lag behind weights that a large learning rate moves quickly, and validation in
 * inference mode then swings by tens of points from epoch to epoch (measured: 55%, 44%, 30% at train
 * accuracy 39%, 80%, 89%), which would make a noisy objective out of a good configuration.
 */
export class PreciseBatchNorm implements Callback {
  constructor(
    private readonly train: ImageDataset,
    private readonly batches = 30,
    private readonly batchSize = 64,
    private readonly seed = 0,
  ) {}

  handle(event: TrainingEvent, control: TrainingControl): void {
    if (event.type !== 'validationStart') return;
    const model = control.model;
    const wasTraining = model.training;
    model.train();
    const loader = new DataLoader(this.train, {
      batchSize: this.batchSize,
      shuffle: true,
      seed: this.seed + event.epoch,
    });
    let done = 0;
    noGrad(() => {
      for (const { images, shape } of loader) {
        if (done++ >= this.batches) break;
        model.call(new Tensor(images, shape));
      }
    });
    model.train(wasTraining);
  }
}

/** The seed CNN, with dropout before its dense head when asked for. Input [N, C, H, W] → logits [N, classes]. */
export function tunableSeedCnn(
  train: ImageDataset,
  channels: readonly [number, number],
  dropout: number,
): Sequential {
  const model = seedCnn({ inChannels: train.channels, channels, classes: train.classes });
  if (dropout <= 0) return model;
  const layers = [...model.layers];
  const head = layers.pop()!;
  return new Sequential(...layers, new Dropout(dropout), head);
}

/** A table's model: Dense(features, 64), ReLU, dropout when asked for, Dense(64, outputs). */
function tableMlp(task: TrainingTask, dropout: number): Sequential {
  const table = task.train as TableDataset;
  if (task.outputs === undefined)
    throw new Error('a table task needs outputs (classes, or 1 for regression)');
  const head = new Dense(64, task.outputs);
  return dropout > 0
    ? new Sequential(new Dense(table.features, 64), new ReLU(), new Dropout(dropout), head)
    : new Sequential(new Dense(table.features, 64), new ReLU(), head);
}

function makeOptimizer(model: Sequential, h: TrainingHyperparameters): Optimizer {
  if (h.optimizer === 'sgd')
    return new SGD(model.parameters(), { lr: h.lr, momentum: h.momentum, weightDecay: h.weightDecay });
  if (h.optimizer === 'adam') return new Adam(model.parameters(), { lr: h.lr, weightDecay: h.weightDecay });
  return new AdamW(model.parameters(), { lr: h.lr, weightDecay: h.weightDecay });
}

function makeSchedule(h: TrainingHyperparameters, batchesPerEpoch: number): LearningRateSchedule | undefined {
  switch (h.schedule) {
    case 'constant':
      return undefined;
    case 'cosine':
      return cosineSchedule(h.epochs);
    case 'step':
      return stepSchedule(Math.max(1, Math.ceil(h.epochs / 3)), 0.3);
    case 'one-cycle':
      return oneCycleSchedule(Math.max(2, h.epochs * batchesPerEpoch));
  }
}

/**
 * Trains the seed CNN with hyperparameters `h` on task.train and returns the validation metric after
 * the last epoch. With a trial, every epoch's metric is reported to it (pruning may then end the run
 * by throwing TrialPruned).
 */
export function trainWithHyperparameters(
  task: TrainingTask,
  h: TrainingHyperparameters,
  options: { trial?: Trial; callbacks?: Callback[] } = {},
): TrainingOutcome {
  const started = performance.now();
  const metric = task.metric ?? 'validationAccuracy';
  manualSeed(task.seed);
  const images = isImageDataset(task.train) ? task.train : null;
  const model =
    images !== null ? tunableSeedCnn(images, task.channels, h.dropout) : tableMlp(task, h.dropout);
  const callbacks: Callback[] = [
    ...(images === null ? [] : [new PreciseBatchNorm(images, 30, 64, task.seed)]),
    ...(options.callbacks ?? []),
  ];
  if (options.trial !== undefined) callbacks.push(new PruningCallback(options.trial, { monitor: metric }));
  const count = images !== null ? images.count : (task.train as TableDataset).length;
  const schedule = makeSchedule(h, Math.ceil(count / h.batchSize));
  const common = {
    optimizer: makeOptimizer(model, h),
    epochs: h.epochs,
    batchSize: h.batchSize,
    seed: task.seed,
    callbacks,
    progress: false,
    ...(schedule === undefined ? {} : { schedule }),
  };
  const history =
    images !== null
      ? fit(model, images, {
          ...common,
          validationData: task.validation,
          transforms: h.shift > 0 ? [randomShift(h.shift)] : [],
        })
      : fit(model, task.train as TableDataset, {
          ...common,
          validationData: task.validation as TableDataset,
          ...(task.outputs === 1 ? { loss: mseLoss } : {}),
        });
  const last = history.epochs[history.epochs.length - 1]!;
  const value = last[metric];
  if (value === undefined) throw new Error(`training produced no ${metric}`);
  // A diverged run fails its trial, with the reason, rather than completing with a made-up score
  // (accuracy 0.1 of a NaN network would rank it among the real results). fit itself stops on a
  // non-finite loss or gradient; this catches a metric that went non-finite without either.
  if (!Number.isFinite(value))
    throw new NonFiniteError(
      `the training diverged: ${metric} after epoch ${history.epochs.length} is ${value} (lr ${h.lr}, optimizer ${h.optimizer})`,
    );
  return { value, history, seconds: (performance.now() - started) / 1000 };
}

/**
 * A validation set of `validationSamples` and a training set of `trainSamples` drawn from `data`
 * (both stratified by class, disjoint, fixed by `seed`).
 */
export function tuningSplit(
  data: ImageDataset,
  options: { trainSamples: number; validationSamples: number; seed: number },
): { train: ImageDataset; validation: ImageDataset } {
  if (options.trainSamples + options.validationSamples > data.count) {
    throw new RangeError(
      `tuningSplit: ${options.trainSamples} + ${options.validationSamples} samples requested, the data has ${data.count}`,
    );
  }
  const random = new Random(options.seed);
  const { train: rest, test: validation } = splitDataset(data, options.validationSamples, random, {
    stratify: true,
  });
  const train =
    options.trainSamples === rest.count
      ? rest
      : splitDataset(rest, options.trainSamples, random, { stratify: true }).test;
  return { train, validation };
}
