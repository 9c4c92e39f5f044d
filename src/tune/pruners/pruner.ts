/**
 * The pruner contract (after Optuna's BasePruner): decide from reported intermediate values whether a
 * running trial is unpromising. `trial.shouldPrune()` calls `prune` with the study snapshot taken at
 * the trial's start and the trial's own values up to now; the objective then throws `TrialPruned`
 * (the fit callback `PruningCallback` does both).
 *
 * Pruners are pure functions of what they are given: no storage access, no state of their own beyond
 * their settings, so every worker reaches the same decision from the same history.
 */
import type { FrozenTrial } from '../frozen-trial.js';
import type { StudyView } from '../samplers/sampler.js';

export interface Pruner {
  prune(study: StudyView, trial: FrozenTrial): boolean;
}

/** Thrown by an objective to end its trial as pruned; the study records the last reported value. */
export class TrialPruned extends Error {
  constructor(message = 'trial pruned') {
    super(message);
    this.name = 'TrialPruned';
  }
}

/** Never prunes. */
export class NopPruner implements Pruner {
  prune(): boolean {
    return false;
  }
}
