/**
 * Asynchronous successive halving (ASHA; Li et al., "A System for Massively Parallel Hyperparameter
 * Tuning", 2020). Rungs sit at steps r·η^(s+k) (r the minimum resource, η the reduction factor, s the
 * minimum early-stopping rate, k = 0, 1, ...); steps count epochs done (pruner.ts), so the rung at 4
 * is judged after the fourth epoch, as Optuna documents ("a trial is never pruned until it executes
 * r·η^s steps"). When a trial first reports a step at or past a rung, it goes on only if its value
 * there ranks in the top 1/η of all trials that reached that rung so far; otherwise it is pruned. No
 * trial ever waits for others, so workers never idle. A rung on a trial's last epoch is not judged
 * when PruningCallback drives it (a trial that reported its final step completes).
 *
 * The pruner keeps no state: a trial's value at a rung is the value it reported at the first step at
 * or past the rung, read from the study snapshot, and a trial is judged at a rung only at the report
 * that crosses it, so a trial promoted once is not demoted later by late-comers.
 */
import { lastIntermediate, type FrozenTrial } from '../frozen-trial.js';
import type { StudyView } from '../samplers/sampler.js';
import type { Pruner } from './pruner.js';

export interface SuccessiveHalvingOptions {
  /** Steps a trial gets before the first rung; 'auto' (default): a hundredth of the steps of the first complete trial, at least 1. */
  minResource?: number | 'auto';
  /** η: a rung keeps the top 1/η (default 4). */
  reductionFactor?: number;
  /** s: the first rung sits at r·η^s (default 0). */
  minEarlyStoppingRate?: number;
  /** Promote everything at a rung until more than this many trials reached it (default 0). */
  bootstrapCount?: number;
}

/** The value a trial had at the first reported step >= rungStep (and that step), or null. */
export function rungValue(trial: FrozenTrial, rungStep: number): { step: number; value: number } | null {
  let found: { step: number; value: number } | null = null;
  for (const [step, value] of trial.intermediateValues) {
    if (step >= rungStep && (found === null || step < found.step)) found = { step, value };
  }
  return found;
}

/** Steps of the first complete trial's last report (for 'auto' resources), or null when none is complete. */
export function firstCompleteLastStep(study: StudyView): number | null {
  const first = study.trials.find((t) => t.state === 'complete' && t.intermediateValues.size > 0);
  return first === undefined ? null : lastIntermediate(first)!.step;
}

/**
 * ASHA's decision for `trial` among `peers` (other trials of the same bracket). Shared by the
 * successive-halving and Hyperband pruners.
 */
export function successiveHalvingPrune(
  study: StudyView,
  trial: FrozenTrial,
  peers: readonly FrozenTrial[],
  settings: {
    minResource: number;
    reductionFactor: number;
    minEarlyStoppingRate: number;
    bootstrapCount: number;
  },
): boolean {
  const last = lastIntermediate(trial);
  if (last === null) return false;
  if (!Number.isFinite(last.value)) return true;
  const minimize = study.direction === 'minimize';
  for (let rung = 0; ; rung++) {
    const rungStep =
      settings.minResource * settings.reductionFactor ** (settings.minEarlyStoppingRate + rung);
    if (last.step < rungStep) return false;
    const own = rungValue(trial, rungStep)!;
    // Judged only at the report that crosses the rung.
    if (own.step !== last.step) continue;
    const competing = [own.value];
    for (const peer of peers) {
      if (peer.id === trial.id) continue;
      const value = rungValue(peer, rungStep);
      if (value !== null && Number.isFinite(value.value)) competing.push(value.value);
    }
    if (competing.length <= settings.bootstrapCount) continue;
    competing.sort((a, b) => (minimize ? a - b : b - a));
    // Top ⌊n/η⌋ go on; while fewer than η trials reached the rung, only the best does.
    const kept = Math.max(1, Math.floor(competing.length / settings.reductionFactor));
    const threshold = competing[kept - 1]!;
    if (minimize ? own.value > threshold : own.value < threshold) return true;
  }
}

export class SuccessiveHalvingPruner implements Pruner {
  readonly minResource: number | 'auto';
  readonly reductionFactor: number;
  readonly minEarlyStoppingRate: number;
  readonly bootstrapCount: number;

  constructor(options: SuccessiveHalvingOptions = {}) {
    this.minResource = options.minResource ?? 'auto';
    this.reductionFactor = options.reductionFactor ?? 4;
    this.minEarlyStoppingRate = options.minEarlyStoppingRate ?? 0;
    this.bootstrapCount = options.bootstrapCount ?? 0;
    if (this.minResource !== 'auto' && !(Number.isSafeInteger(this.minResource) && this.minResource >= 1))
      throw new RangeError(`minResource must be 'auto' or an integer >= 1, got ${this.minResource}`);
    if (!(Number.isSafeInteger(this.reductionFactor) && this.reductionFactor >= 2))
      throw new RangeError(`reductionFactor must be an integer >= 2, got ${this.reductionFactor}`);
    if (!(Number.isSafeInteger(this.minEarlyStoppingRate) && this.minEarlyStoppingRate >= 0))
      throw new RangeError(`minEarlyStoppingRate must be an integer >= 0`);
    if (!(Number.isSafeInteger(this.bootstrapCount) && this.bootstrapCount >= 0))
      throw new RangeError(`bootstrapCount must be an integer >= 0`);
  }

  prune(study: StudyView, trial: FrozenTrial): boolean {
    let minResource = this.minResource;
    if (minResource === 'auto') {
      const steps = firstCompleteLastStep(study);
      if (steps === null) return false;
      minResource = Math.max(1, Math.floor(steps / 100));
    }
    return successiveHalvingPrune(study, trial, study.trials, {
      minResource,
      reductionFactor: this.reductionFactor,
      minEarlyStoppingRate: this.minEarlyStoppingRate,
      bootstrapCount: this.bootstrapCount,
    });
  }
}
