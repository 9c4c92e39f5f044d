/**
 * Percentile and median pruning (as Optuna's PercentilePruner / MedianPruner): stop a trial whose best
 * reported value so far is worse than the given percentile of what complete trials reported at the
 * same step. Steps are numbered by work done (step k = after k epochs; see pruner.ts), so
 * `warmupSteps: 1` leaves the first epoch alone and judges a trial from its second epoch on.
 */
import type { FrozenTrial } from '../frozen-trial.js';
import { lastIntermediate } from '../frozen-trial.js';
import type { StudyView } from '../samplers/sampler.js';
import type { Pruner } from './pruner.js';

export interface PercentilePrunerOptions {
  /** Don't prune until this many trials are complete (default 5); never before the first. */
  startupTrials?: number;
  /** Steps 1…warmupSteps of a trial are never judged: the first judgement is at step warmupSteps + 1 (default 0). */
  warmupSteps?: number;
  /**
   * Judge at steps warmupSteps + 1 + k·intervalSteps (default 1: every step); a judgement whose step
   * was not reported is made at the next report instead.
   */
  intervalSteps?: number;
  /** Judge a step only when at least this many complete trials reported it (default 1). */
  minTrials?: number;
}

/**
 * Whether a report at `step` is a judgement point: past the warm-up, and the first report at or after
 * the latest interval point (Optuna's _is_first_in_interval_step, with steps counted from 1).
 */
export function isJudgedStep(
  step: number,
  reportedSteps: Iterable<number>,
  warmupSteps: number,
  intervalSteps: number,
): boolean {
  const first = warmupSteps + 1;
  if (step < first) return false;
  const latestPoint = first + Math.floor((step - first) / intervalSteps) * intervalSteps;
  let previous = -Infinity;
  for (const s of reportedSteps) if (s !== step && s > previous) previous = s;
  return previous < latestPoint;
}

/** The p-th percentile (0–100) with linear interpolation between order statistics (numpy's default). */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const position = (p / 100) * (sorted.length - 1);
  const below = Math.floor(position);
  const above = Math.min(sorted.length - 1, below + 1);
  return sorted[below]! + (sorted[above]! - sorted[below]!) * (position - below);
}

export class PercentilePruner implements Pruner {
  readonly percentile: number;
  readonly startupTrials: number;
  readonly warmupSteps: number;
  readonly intervalSteps: number;
  readonly minTrials: number;

  /** @param percentileToKeep 0–100: trials worse than this percentile of their peers are pruned (25 keeps the top quarter). */
  constructor(percentileToKeep: number, options: PercentilePrunerOptions = {}) {
    if (!(percentileToKeep >= 0 && percentileToKeep <= 100))
      throw new RangeError(`percentile must lie in [0, 100], got ${percentileToKeep}`);
    this.percentile = percentileToKeep;
    this.startupTrials = options.startupTrials ?? 5;
    this.warmupSteps = options.warmupSteps ?? 0;
    this.intervalSteps = options.intervalSteps ?? 1;
    this.minTrials = options.minTrials ?? 1;
    for (const [name, value, min] of [
      ['startupTrials', this.startupTrials, 0],
      ['warmupSteps', this.warmupSteps, 0],
      ['intervalSteps', this.intervalSteps, 1],
      ['minTrials', this.minTrials, 1],
    ] as const) {
      if (!Number.isSafeInteger(value) || value < min)
        throw new RangeError(`${name} must be an integer >= ${min}, got ${value}`);
    }
  }

  prune(study: StudyView, trial: FrozenTrial): boolean {
    const complete = study.trials.filter((t) => t.state === 'complete' && t.id !== trial.id);
    if (complete.length === 0 || complete.length < this.startupTrials) return false;
    const last = lastIntermediate(trial);
    if (last === null) return false;
    const { step } = last;
    if (!isJudgedStep(step, trial.intermediateValues.keys(), this.warmupSteps, this.intervalSteps))
      return false;
    const minimize = study.direction === 'minimize';
    // The best value so far, NaN ignored; a trial that reported nothing but NaN is pruned (as in Optuna).
    let best = NaN;
    for (const value of trial.intermediateValues.values()) {
      if (Number.isNaN(value)) continue;
      if (Number.isNaN(best) || (minimize ? value < best : value > best)) best = value;
    }
    if (Number.isNaN(best)) return true;
    const peers: number[] = [];
    for (const other of complete) {
      const value = other.intermediateValues.get(step);
      if (value !== undefined && Number.isFinite(value)) peers.push(value);
    }
    if (peers.length < this.minTrials) return false;
    // For maximization the good end is the top, so the cut moves to the mirrored percentile.
    const threshold = percentile(peers, minimize ? this.percentile : 100 - this.percentile);
    return minimize ? best > threshold : best < threshold;
  }
}

/** Prunes trials worse than the median of complete trials at the same step (Optuna's default pruner). */
export class MedianPruner extends PercentilePruner {
  constructor(options: PercentilePrunerOptions = {}) {
    super(50, options);
  }
}
