/**
 * Hyperband (Li et al., JMLR 2018) on top of asynchronous successive halving: several ASHA brackets
 * that trade the number of trials against how long each may run before its first cut. Bracket b starts
 * cutting at r·η^b; every trial belongs to one bracket (a hash of study name and trial number, weighted
 * by each bracket's budget, as Optuna does) and competes only with trials of that bracket.
 */
import { fnv1a } from '../hash.js';
import { lastIntermediate, type FrozenTrial } from '../frozen-trial.js';
import type { StudyView } from '../samplers/sampler.js';
import type { Pruner } from './pruner.js';
import { firstCompleteLastStep, successiveHalvingPrune } from './successive-halving.js';

export interface HyperbandOptions {
  /** Steps before the first cut of the most aggressive bracket (default 1). */
  minResource?: number;
  /**
   * Steps of a full trial (epochs; steps count epochs done, see pruner.ts); 'auto' (default): the last
   * step of the first complete trial. Reports at or past it are never judged.
   */
  maxResource?: number | 'auto';
  /** η (default 3). */
  reductionFactor?: number;
  /** Promote everything at a rung until more than this many trials reached it (default 0). */
  bootstrapCount?: number;
}

export class HyperbandPruner implements Pruner {
  readonly minResource: number;
  readonly maxResource: number | 'auto';
  readonly reductionFactor: number;
  readonly bootstrapCount: number;

  constructor(options: HyperbandOptions = {}) {
    this.minResource = options.minResource ?? 1;
    this.maxResource = options.maxResource ?? 'auto';
    this.reductionFactor = options.reductionFactor ?? 3;
    this.bootstrapCount = options.bootstrapCount ?? 0;
    if (!(Number.isSafeInteger(this.minResource) && this.minResource >= 1))
      throw new RangeError(`minResource must be an integer >= 1, got ${this.minResource}`);
    if (
      this.maxResource !== 'auto' &&
      !(Number.isSafeInteger(this.maxResource) && this.maxResource >= this.minResource)
    )
      throw new RangeError(`maxResource must be 'auto' or an integer >= minResource`);
    if (!(Number.isSafeInteger(this.reductionFactor) && this.reductionFactor >= 2))
      throw new RangeError(`reductionFactor must be an integer >= 2`);
  }

  /** Number of brackets for a given maximum resource: ⌊log_η(R / r)⌋ + 1. */
  bracketCount(maxResource: number): number {
    // The epsilon keeps exact powers (log_3 27 = 2.9999999999999996) from losing a bracket.
    return Math.floor(Math.log(maxResource / this.minResource) / Math.log(this.reductionFactor) + 1e-9) + 1;
  }

  /** The bracket of a trial (0 = most aggressive), from a hash weighted by the brackets' budgets. */
  bracketOf(studyName: string, trialNumber: number, brackets: number): number {
    // Hyperband's n_b: bracket b with s = brackets − 1 − b runs ⌈B·η^s / (s + 1)⌉ trials.
    const budgets = Array.from({ length: brackets }, (_, b) => {
      const s = brackets - 1 - b;
      return Math.ceil((brackets * this.reductionFactor ** s) / (s + 1));
    });
    let ticket = fnv1a(`${studyName}_${trialNumber}`) % budgets.reduce((a, b) => a + b, 0);
    for (let b = 0; b < brackets; b++) {
      if (ticket < budgets[b]!) return b;
      ticket -= budgets[b]!;
    }
    return brackets - 1;
  }

  prune(study: StudyView, trial: FrozenTrial): boolean {
    const maxResource = this.maxResource === 'auto' ? firstCompleteLastStep(study) : this.maxResource;
    if (maxResource === null) return false;
    // A trial at maxResource steps has had a full trial's budget: it completes. (Steps count epochs
    // done, so the last rung of the most aggressive bracket can fall on the last step, r·η^k = R;
    // Optuna, whose steps start at 0, never sees a report at step R.)
    const last = lastIntermediate(trial);
    if (last === null || last.step >= maxResource) return false;
    const brackets = this.bracketCount(Math.max(maxResource, this.minResource));
    const bracket = this.bracketOf(study.name, trial.number, brackets);
    const peers = study.trials.filter((t) => this.bracketOf(study.name, t.number, brackets) === bracket);
    return successiveHalvingPrune(study, trial, peers, {
      minResource: this.minResource,
      reductionFactor: this.reductionFactor,
      minEarlyStoppingRate: bracket,
      bootstrapCount: this.bootstrapCount,
    });
  }
}
