/**
 * Percentile and median pruning (as Optuna's PercentilePruner / MedianPruner): stop a trial whose best
 * reported value so far is worse than the given percentile of what complete trials reported at the
 * same step.
 */
import type { FrozenTrial } from '../frozen-trial.js';
import { lastIntermediate } from '../frozen-trial.js';
import type { StudyView } from '../samplers/sampler.js';
import type { Pruner } from './pruner.js';

export interface PercentilePrunerOptions {
  /** Don't prune until this many trials are complete (default 5). */
  startupTrials?: number;
  /** Don't prune a trial before it reports this step (default 0). */
  warmupSteps?: number;
  /** Judge only every this many steps after the warm-up (default 1). */
  intervalSteps?: number;
  /** Judge a step only when at least this many complete trials reported it (default 1). */
  minTrials?: number;
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
    const last = lastIntermediate(trial);
    if (last === null) return false;
    const complete = study.trials.filter((t) => t.state === 'complete' && t.id !== trial.id);
    if (complete.length < this.startupTrials) return false;
    const { step } = last;
    if (step < this.warmupSteps || (step - this.warmupSteps) % this.intervalSteps !== 0) return false;
    const minimize = study.direction === 'minimize';
    let best = minimize ? Infinity : -Infinity;
    for (const value of trial.intermediateValues.values())
      best = minimize ? Math.min(best, value) : Math.max(best, value);
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
