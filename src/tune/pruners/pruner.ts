/**
 * The pruner contract (after Optuna's BasePruner): decide from reported intermediate values whether a
 * running trial is unpromising. `trial.shouldPrune()` calls `prune` with the study snapshot taken at
 * the trial's start and the trial's own values up to now; the objective then throws `TrialPruned`
 * (the fit callback `PruningCallback` does both).
 *
 * Steps. tensile numbers steps by the work done: the value reported at step k is the value after k
 * units of work (epochs). `PruningCallback` reports after each epoch at step = epochs done, so a
 * 5-epoch fit reports steps 1, 2, 3, 4, 5 and its last step is its planned epoch count. Step 0, if an
 * objective reports it, is a value before any work and is never judged. Every pruner reads steps this
 * way:
 *   - warm-up (median/percentile `warmupSteps: w`): steps 1…w are never judged; the first judgement is
 *     at step w + 1. Optuna's examples and integrations number steps from 0 (the epoch index), where
 *     its `n_warmup_steps = w` ("the earliest a trial can be pruned is at step == w") likewise leaves
 *     the first w epochs alone: the same epochs, numbered one lower;
 *   - intervals (`intervalSteps: i`): judgements at steps w + 1, w + 1 + i, w + 1 + 2i, ...; a check
 *     whose step was not reported happens at the next report instead, as in Optuna;
 *   - successive-halving rungs at r·η^k mean "after r·η^k epochs" (Optuna's documented meaning, "a
 *     trial is never pruned until it executes r·η^s steps"), and Hyperband's `maxResource` is the
 *     number of epochs of a full trial (its 'auto' value is the last step of the first complete trial).
 * A trial that has reported its final step has had its whole budget and completes: PruningCallback
 * knows the planned epoch count from fit and does not ask the pruner after the last epoch, and
 * Hyperband never judges a step at or past maxResource.
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
