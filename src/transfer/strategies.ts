/**
 * The transfer-learning strategies of DL0006, each one call with sensible defaults, plus fineTune
 * (a frozen warm-up, then everything with discriminative learning rates) and the from-scratch
 * baseline they are measured against.
 *
 * Every strategy takes a model whose classifier already fits the task (see replaceHead), sets which
 * block groups train (see blockGroups, freeze), builds an optimizer over all parameters (frozen ones
 * are skipped by it) and calls fit. Defaults: AdamW, a cosine learning-rate schedule over the run,
 * batch 32, 10 epochs, frozen batch norms in inference mode. Every fit option (validation data,
 * callbacks, progress, seed, transforms, …) passes through.
 *
 * The model is left as the strategy ended: headOnly and freezeEarly leave their groups frozen;
 * gradualUnfreeze and fineTune end with everything trainable.
 */
import type { ImageDataset } from '../data/dataset.js';
import type { Module } from '../nn/module.js';
import { AdamW } from '../optim/adam.js';
import type { Optimizer } from '../optim/optimizer.js';
import { cosineSchedule, type LearningRateSchedule } from '../optim/schedule.js';
import { Random } from '../tensor/random.js';
import type { Callback, TrainingControl } from '../train/callbacks.js';
import type { TrainingEvent } from '../train/events.js';
import { fit, type FitOptions, type History } from '../train/fit.js';
import { type BatchNormPolicy, freeze, unfreeze } from './freeze.js';
import { blockGroups } from './groups.js';
import { classifierOutputs } from './head.js';
import { discriminativeLearningRates, type DiscriminativeGroup } from './rates.js';

/** Options every strategy accepts. */
export interface TransferOptions extends Omit<FitOptions, 'optimizer' | 'epochs' | 'schedule'> {
  /** Training epochs (default 10). */
  epochs?: number;
  /** Peak learning rate (of the head, where rates differ by group); each strategy has its own default. */
  lr?: number;
  /** Weight decay of the default AdamW (default AdamW's 0.01, decoupled). Frozen parameters get none. */
  weightDecay?: number;
  /** Builds the optimizer from parameter groups (default AdamW). */
  optimizer?: (groups: DiscriminativeGroup[]) => Optimizer;
  /** Learning-rate schedule (default cosineSchedule(epochs)); null keeps the rate constant. */
  schedule?: LearningRateSchedule | null;
  /** What freezing does to batch norms in frozen groups (default 'inference'; see BatchNormPolicy). */
  batchNorm?: BatchNormPolicy;
}

export const defaultTransferEpochs = 10;

function checkClasses(model: Module, dataset: ImageDataset, what: string): void {
  const outputs = classifierOutputs(model);
  if (outputs !== dataset.classes) {
    throw new RangeError(
      `${what}: the model's classifier has ${outputs} outputs but the data has ${dataset.classes} classes; call replaceHead(model, ${dataset.classes}) first`,
    );
  }
}

const strategyOnlyOptions = new Set(['lr', 'weightDecay', 'optimizer', 'schedule', 'batchNorm', 'epochs']);
type StrategyOnlyOption = 'lr' | 'weightDecay' | 'optimizer' | 'schedule' | 'batchNorm' | 'epochs';

/** fit with the strategy's parameter groups and the shared defaults. */
function train(
  model: Module,
  dataset: ImageDataset,
  groups: DiscriminativeGroup[],
  options: TransferOptions,
  extraCallbacks: Callback[] = [],
): History {
  const epochs = options.epochs ?? defaultTransferEpochs;
  const optimizer =
    options.optimizer?.(groups) ??
    new AdamW(groups, options.weightDecay === undefined ? {} : { weightDecay: options.weightDecay });
  // Every fit option the strategy does not set itself passes through unchanged (metrics, loss,
  // clipping, nonFinite, signal, …); the strategy-only options stay here.
  const passThrough = Object.fromEntries(
    Object.entries(options).filter(([key]) => !strategyOnlyOptions.has(key)),
  ) as Omit<TransferOptions, StrategyOnlyOption>;
  const fitArguments: FitOptions = {
    ...passThrough,
    optimizer,
    epochs,
    batchSize: options.batchSize ?? 32,
    callbacks: [...extraCallbacks, ...(options.callbacks ?? [])],
  };
  const chosen = options.schedule === undefined ? cosineSchedule(epochs) : options.schedule;
  if (chosen !== null) fitArguments.schedule = chosen;
  return fit(model, dataset, fitArguments);
}

function singleGroup(model: Module, lr: number): DiscriminativeGroup[] {
  return [{ name: 'all', parameters: model.parameters(), lr }];
}

/**
 * Strategy 1: freeze everything but the output layers (the head group) and train the head. Good for
 * small data from a similar task; cheapest, since no gradient flows into the body. Default lr 3e-3.
 *
 * @example
 * replaceHead(model, 10);
 * headOnly(model, fewDigits, { epochs: 20, validationData: heldOut });
 */
export function headOnly(model: Module, dataset: ImageDataset, options: TransferOptions = {}): History {
  checkClasses(model, dataset, 'headOnly');
  const groups = blockGroups(model);
  unfreeze(model);
  freeze(model, { firstGroups: groups.length - 1 }, { batchNorm: options.batchNorm ?? 'inference' });
  return train(model, dataset, singleGroup(model, options.lr ?? 3e-3), options);
}

export interface FreezeEarlyOptions extends TransferOptions {
  /** Block groups to freeze, counted from the input (default 1: the seed CNN's first conv block, a ResNet's stem). */
  frozenGroups?: number;
}

/**
 * Strategy 2: freeze the first block groups, which hold general features (edges, strokes), and train
 * the later, task-specific ones with the head. Default lr 1e-3, one frozen group.
 */
export function freezeEarly(model: Module, dataset: ImageDataset, options: FreezeEarlyOptions = {}): History {
  checkClasses(model, dataset, 'freezeEarly');
  const groups = blockGroups(model);
  const frozenGroups = options.frozenGroups ?? 1;
  if (!Number.isInteger(frozenGroups) || frozenGroups < 0 || frozenGroups >= groups.length) {
    throw new RangeError(
      `freezeEarly: frozenGroups must be an integer in [0, ${groups.length - 1}] (groups ${groups.map((g) => g.name).join(', ')}), got ${frozenGroups}`,
    );
  }
  unfreeze(model);
  freeze(model, { firstGroups: frozenGroups }, { batchNorm: options.batchNorm ?? 'inference' });
  return train(model, dataset, singleGroup(model, options.lr ?? 1e-3), options);
}

/**
 * Strategy 3: everything trainable at a low learning rate (default 1e-4, a tenth of the usual 1e-3),
 * so the pretrained weights move slowly. Use with care on very small data.
 */
export function fullLowLr(model: Module, dataset: ImageDataset, options: TransferOptions = {}): History {
  checkClasses(model, dataset, 'fullLowLr');
  unfreeze(model);
  return train(model, dataset, singleGroup(model, options.lr ?? 1e-4), options);
}

export interface GradualUnfreezeOptions extends TransferOptions {
  /** Epochs between unfreezing steps (default ⌊epochs / groups⌋, at least 1, so the last stage trains everything). */
  epochsPerGroup?: number;
  /** Discriminative rate decay per group (default 1: one rate for all; ULMFiT combines 2.6 with unfreezing). */
  decay?: number;
}

/**
 * Unfreezes block groups one at a time from the top: at epoch e the head and the
 * ⌊e / epochsPerGroup⌋ groups below it are trainable, the rest frozen. A callback for fit; it sets
 * the state from the epoch number alone, so a run resumed from a checkpoint gets the same stages.
 */
export class GradualUnfreezing implements Callback {
  readonly groupNames: string[];

  constructor(
    model: Module,
    readonly epochsPerGroup: number,
    readonly batchNorm: BatchNormPolicy = 'inference',
  ) {
    if (!Number.isInteger(epochsPerGroup) || epochsPerGroup < 1)
      throw new RangeError(
        `GradualUnfreezing: epochsPerGroup must be a positive integer, got ${epochsPerGroup}`,
      );
    this.groupNames = blockGroups(model).map((group) => group.name);
  }

  /** How many groups, counted from the head, are trainable in epoch (0-based). */
  trainableGroups(epoch: number): number {
    return Math.min(this.groupNames.length, 1 + Math.floor(epoch / this.epochsPerGroup));
  }

  /** Sets model's trainable groups for epoch. */
  apply(model: Module, epoch: number): void {
    const frozenCount = this.groupNames.length - this.trainableGroups(epoch);
    unfreeze(model);
    freeze(model, { firstGroups: frozenCount }, { batchNorm: this.batchNorm });
  }

  handle(event: TrainingEvent, control: TrainingControl): void {
    if (event.type === 'epochStart') this.apply(control.model, event.epoch);
  }
}

/**
 * Strategy 4: gradual unfreezing (ULMFiT): train the head first, then unfreeze one block group at
 * a time from the top, every epochsPerGroup epochs, so early large updates cannot wreck the
 * pretrained features below. Default lr 1e-3.
 */
export function gradualUnfreeze(
  model: Module,
  dataset: ImageDataset,
  options: GradualUnfreezeOptions = {},
): History {
  checkClasses(model, dataset, 'gradualUnfreeze');
  const epochs = options.epochs ?? defaultTransferEpochs;
  const groupCount = blockGroups(model).length;
  const schedule = new GradualUnfreezing(
    model,
    options.epochsPerGroup ?? Math.max(1, Math.floor(epochs / groupCount)),
    options.batchNorm ?? 'inference',
  );
  schedule.apply(model, options.initialEpoch ?? 0);
  const lr = options.lr ?? 1e-3;
  const groups =
    (options.decay ?? 1) === 1
      ? singleGroup(model, lr)
      : discriminativeLearningRates(model, { lr, decay: options.decay! });
  return train(model, dataset, groups, options, [schedule]);
}

export interface FineTuneOptions extends TransferOptions {
  /** Epochs of the frozen warm-up, head only (default 1). `epochs` counts the unfrozen phase after it. */
  freezeEpochs?: number;
  /** Discriminative decay per block group in the unfrozen phase (default 2.6, ULMFiT). */
  decay?: number;
}

/**
 * The fine-tuning recipe (fastai's fine_tune, with ULMFiT's discriminative rates): freezeEpochs of
 * head-only training at lr (default 2e-3), then everything unfrozen for `epochs` more, the head at
 * lr/2 and each block group below it decay× slower. The history covers both phases, numbered
 * continuously; callbacks see the two phases as two fits.
 */
export function fineTune(model: Module, dataset: ImageDataset, options: FineTuneOptions = {}): History {
  checkClasses(model, dataset, 'fineTune');
  const freezeEpochs = options.freezeEpochs ?? 1;
  if (!Number.isInteger(freezeEpochs) || freezeEpochs < 0)
    throw new RangeError(`fineTune: freezeEpochs must be a non-negative integer, got ${freezeEpochs}`);
  const lr = options.lr ?? 2e-3;
  // One generator for both phases, so the second does not replay the first one's batch order.
  const random = options.random ?? new Random(options.seed ?? 0);
  const epochs: History['epochs'] = [];
  let warmUpSkipped = 0;
  if (freezeEpochs > 0) {
    const warmUp = headOnly(model, dataset, {
      ...options,
      epochs: freezeEpochs,
      lr,
      random,
      initialEpoch: 0,
    });
    epochs.push(...warmUp.epochs);
    warmUpSkipped = warmUp.skippedSteps;
    if (warmUp.stoppedEarly) return warmUp;
  }
  unfreeze(model);
  const groups = discriminativeLearningRates(model, { lr: lr / 2, decay: options.decay ?? 2.6 });
  const main = train(model, dataset, groups, { ...options, random, initialEpoch: 0 });
  epochs.push(...main.epochs.map((logs) => ({ ...logs, epoch: logs.epoch + freezeEpochs })));
  const result: History = {
    epochs,
    stoppedEarly: main.stoppedEarly,
    skippedSteps: warmUpSkipped + main.skippedSteps,
  };
  if (main.stopReason !== undefined) result.stopReason = main.stopReason;
  return result;
}

/**
 * The baseline: everything trainable at the usual rate (default lr 1e-3). Pass a freshly
 * initialised model to train from scratch.
 */
export function trainFromScratch(
  model: Module,
  dataset: ImageDataset,
  options: TransferOptions = {},
): History {
  checkClasses(model, dataset, 'trainFromScratch');
  unfreeze(model);
  return train(model, dataset, singleGroup(model, options.lr ?? 1e-3), options);
}

export type StrategyName =
  'headOnly' | 'freezeEarly' | 'fullLowLr' | 'gradualUnfreeze' | 'fineTune' | 'scratch';

/** The strategies by name (for command lines and experiments). */
export const transferStrategies: Record<
  StrategyName,
  (model: Module, dataset: ImageDataset, options?: TransferOptions) => History
> = {
  headOnly,
  freezeEarly,
  fullLowLr,
  gradualUnfreeze,
  fineTune,
  scratch: trainFromScratch,
};
