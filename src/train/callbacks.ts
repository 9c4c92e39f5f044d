/**
 * Callbacks: plain objects that receive every training event and may steer the loop through the
 * control handle (stop, read the model and optimizer).
 */
import type { Module } from '../nn/module.js';
import type { Optimizer } from '../optim/optimizer.js';
import { applySchedule, type LearningRateSchedule } from '../optim/schedule.js';
import type { Random } from '../tensor/random.js';
import type { EpochLogs, TrainingEvent } from './events.js';

/**
 * What a callback may see and do during fit. The cancels act at each level of the loop (fastai's
 * CancelBatch/CancelEpoch/CancelFit, as calls instead of exceptions): skip this batch, skip the rest
 * of this epoch, end the run after this batch, or end it after this epoch. fitEnd fires in every case.
 */
export interface TrainingControl {
  readonly model: Module;
  readonly optimizer: Optimizer;
  /** Ends the run after the current epoch (its validation and epochEnd still happen). */
  stop(reason: string): void;
  /**
   * Leaves the current batch out: called at batchStart it is not trained on at all; at stepStart its
   * gradients are not applied. A batchSkipped event follows instead of batchEnd.
   */
  skipBatch(reason?: string): void;
  /**
   * Skips the rest of the current epoch's batches; validation and epochEnd still happen (the logs
   * say partial), and the next epoch starts as planned.
   */
  skipEpoch(reason?: string): void;
  /**
   * Ends the run as soon as the current batch is done: no more batches, no validation, and the
   * unfinished epoch gets no epochEnd (its logs would describe part of an epoch as if whole, and a
   * checkpoint taken there could not resume it). fitEnd follows.
   */
  stopAfterBatch(reason: string): void;
  /** Batches per epoch (for per-batch schedules); 0 for a stream that does not declare its length. */
  readonly batchesPerEpoch: number;
  /**
   * The loader's generator (shuffling, augmentation). Between epochs its state decides every later
   * batch, so checkpoints save it for an exact resume.
   */
  readonly random: Random;
}

export interface Callback {
  handle(event: TrainingEvent, control: TrainingControl): void;
}

/**
 * A value of the epoch logs: 'loss', 'validationLoss', or any metric by name ('accuracy',
 * 'validationAccuracy', 'meanAbsoluteError', 'validationMeanAbsoluteError', …).
 */
export type MonitoredMetric = 'loss' | 'accuracy' | 'validationLoss' | 'validationAccuracy' | (string & {});

/** The monitored value of an epoch; throws naming the metric when the fit does not produce it. */
export function monitoredValue(logs: EpochLogs, metric: MonitoredMetric): number {
  // The named fields first: logs read back from an older checkpoint have no metrics record.
  const named: Record<string, number | undefined> = {
    loss: logs.loss,
    validationLoss: logs.validationLoss,
    accuracy: logs.accuracy,
    validationAccuracy: logs.validationAccuracy,
  };
  const value =
    metric in named ? named[metric] : (logs.metrics as Record<string, number> | undefined)?.[metric];
  if (value === undefined) {
    const known = [
      'loss',
      ...(logs.validationLoss === undefined ? [] : ['validationLoss']),
      ...Object.keys((logs.metrics as Record<string, number> | undefined) ?? {}),
    ];
    throw new Error(
      `callback monitors '${metric}', which this fit does not produce (no validation data?); it has ${known.join(', ')}`,
    );
  }
  return value;
}

export function defaultMode(metric: MonitoredMetric): 'min' | 'max' {
  return metric.toLowerCase().endsWith('accuracy') ? 'max' : 'min';
}

export interface EarlyStoppingOptions {
  monitor?: MonitoredMetric;
  /** Epochs without improvement before stopping (default 3). */
  patience?: number;
  /** Smallest change that counts as improvement (default 0). */
  minDelta?: number;
  mode?: 'min' | 'max';
  /** Put back the weights of the best epoch when stopping or at the end (default true). */
  restoreBestWeights?: boolean;
}

/** Stops training when the monitored metric stops improving (Keras's EarlyStopping). */
export class EarlyStopping implements Callback {
  readonly monitor: MonitoredMetric;
  readonly patience: number;
  readonly minDelta: number;
  readonly mode: 'min' | 'max';
  readonly restoreBestWeights: boolean;
  best = Number.NaN;
  bestEpoch = -1;
  private waited = 0;
  private bestWeights: Map<string, Float32Array | Float64Array> | null = null;

  constructor(options: EarlyStoppingOptions = {}) {
    this.monitor = options.monitor ?? 'validationLoss';
    this.patience = options.patience ?? 3;
    this.minDelta = options.minDelta ?? 0;
    this.mode = options.mode ?? defaultMode(this.monitor);
    this.restoreBestWeights = options.restoreBestWeights ?? true;
  }

  handle(event: TrainingEvent, control: TrainingControl): void {
    if (event.type === 'fitStart') {
      this.best = Number.NaN;
      this.waited = 0;
    }
    if (event.type === 'epochEnd') {
      const value = monitoredValue(event.logs, this.monitor);
      const improved =
        Number.isNaN(this.best) ||
        (this.mode === 'min' ? value < this.best - this.minDelta : value > this.best + this.minDelta);
      if (improved) {
        this.best = value;
        this.bestEpoch = event.epoch;
        this.waited = 0;
        if (this.restoreBestWeights) {
          this.bestWeights = new Map(
            [...control.model.stateDict()].map(([name, t]) => [name, t.data.slice()]),
          );
        }
      } else if (++this.waited >= this.patience) {
        control.stop(
          `early stopping: ${this.monitor} has not improved for ${this.patience} epochs (best ${this.best.toFixed(4)} at epoch ${this.bestEpoch + 1})`,
        );
      }
    }
    // Not after a failure: the caller gets the error, and the weights as they were when it happened.
    if (
      event.type === 'fitEnd' &&
      event.outcome !== 'failed' &&
      this.restoreBestWeights &&
      this.bestWeights !== null
    ) {
      for (const [name, tensor] of control.model.stateDict()) tensor.data.set(this.bestWeights.get(name)!);
    }
  }
}

/** Steps a learning-rate schedule per batch or per epoch, as the schedule's unit says. */
export class LearningRateScheduler implements Callback {
  constructor(readonly schedule: LearningRateSchedule) {}

  handle(event: TrainingEvent, control: TrainingControl): void {
    if (this.schedule.unit === 'epoch' && event.type === 'epochStart') {
      applySchedule(control.optimizer, this.schedule, event.epoch);
    }
    if (this.schedule.unit === 'batch' && event.type === 'batchStart') {
      applySchedule(control.optimizer, this.schedule, event.epoch * control.batchesPerEpoch + event.batch);
    }
  }
}

/** Records every event (for tests and debugging: the loop's trace). */
export class EventRecorder implements Callback {
  readonly events: TrainingEvent[] = [];
  handle(event: TrainingEvent): void {
    this.events.push(event);
  }
}
