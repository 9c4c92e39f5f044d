/**
 * Learning-rate schedules: functions from progress to a factor of each group's initial rate, so that
 * discriminative per-group rates keep their ratios. A schedule is stepped per batch (one-cycle) or
 * per epoch (step, cosine) by the training loop's schedule callback.
 */
import type { Optimizer } from './optimizer.js';

export interface LearningRateSchedule {
  /** Steps the schedule counts in (what `step` in factor() means). */
  readonly unit: 'batch' | 'epoch';
  /** Multiplier of the initial learning rate at step (0-based). */
  factor(step: number): number;
}

/** Multiply by gamma every stepSize epochs (PyTorch's StepLR). */
export function stepSchedule(stepSize: number, gamma = 0.1): LearningRateSchedule {
  if (!(stepSize >= 1)) throw new RangeError(`stepSchedule: stepSize must be ≥ 1, got ${stepSize}`);
  return { unit: 'epoch', factor: (epoch) => gamma ** Math.floor(epoch / stepSize) };
}

/** Cosine annealing from the initial rate to minFactor·initial over totalEpochs (CosineAnnealingLR). */
export function cosineSchedule(totalEpochs: number, minFactor = 0): LearningRateSchedule {
  if (!(totalEpochs >= 1))
    throw new RangeError(`cosineSchedule: totalEpochs must be ≥ 1, got ${totalEpochs}`);
  return {
    unit: 'epoch',
    factor: (epoch) =>
      minFactor +
      ((1 - minFactor) * (1 + Math.cos((Math.PI * Math.min(epoch, totalEpochs)) / totalEpochs))) / 2,
  };
}

export interface OneCycleOptions {
  /** Fraction of the steps spent warming up (default 0.3). */
  percentStart?: number;
  /** Initial rate = peak / divFactor (default 25). */
  divFactor?: number;
  /** Final rate = initial / finalDivFactor (default 1e4). */
  finalDivFactor?: number;
}

/**
 * One-cycle (Smith; PyTorch's OneCycleLR with cosine annealing), per batch. The optimizer's
 * configured lr is the peak: the rate rises from peak/divFactor to peak over the first percentStart
 * of totalSteps, then anneals to peak/(divFactor·finalDivFactor).
 */
export function oneCycleSchedule(totalSteps: number, options: OneCycleOptions = {}): LearningRateSchedule {
  if (!(totalSteps >= 2)) throw new RangeError(`oneCycleSchedule: totalSteps must be ≥ 2, got ${totalSteps}`);
  const percentStart = options.percentStart ?? 0.3;
  const divFactor = options.divFactor ?? 25;
  const finalDivFactor = options.finalDivFactor ?? 1e4;
  const warmupEnd = percentStart * totalSteps - 1;
  const cosine = (start: number, end: number, fraction: number) =>
    end + ((start - end) * (1 + Math.cos(Math.PI * fraction))) / 2;
  const initial = 1 / divFactor;
  const final = initial / finalDivFactor;
  return {
    unit: 'batch',
    factor: (step) => {
      const s = Math.min(step, totalSteps - 1);
      if (s <= warmupEnd) return cosine(initial, 1, s / warmupEnd);
      return cosine(1, final, (s - warmupEnd) / (totalSteps - 1 - warmupEnd));
    },
  };
}

/** Applies schedule at step to optimizer's groups. */
export function applySchedule(optimizer: Optimizer, schedule: LearningRateSchedule, step: number): void {
  optimizer.scaleLearningRates(schedule.factor(step));
}
