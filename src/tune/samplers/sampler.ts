/**
 * The sampler contract (after Optuna's BaseSampler): how a study asks for parameter values.
 *
 * When a trial starts the study calls, in order:
 *   1. beforeTrial(study, trial): the sampler may claim something for the trial (the grid sampler
 *      picks a grid point) and returns system attributes to store before the trial runs;
 *   2. inferRelativeSearchSpace(study, trial): the parameters the sampler wants to choose jointly
 *      (usually those every finished trial used, with the same distribution);
 *   3. sampleRelative(study, trial, space): one value per parameter of that space. The study stores
 *      them as the trial's planned parameters, so that samplers in other workers treat this running
 *      trial as pending (a constant liar) before the objective has even asked for them.
 * While the objective runs, each suggest call takes the relative value when the name and distribution
 * match the space, and otherwise calls
 *   4. sampleIndependent(study, trial, name, distribution): one value for a parameter outside the
 *      relative space (new parameters, conditional branches, the first trials).
 * When the trial finishes the study calls
 *   5. afterTrial(study, trial, state, value).
 * After step 3 the study also asks `phase(study, trial, space)`, a short name of where the values come
 * from ('startup: sobol', 'gp', 'startup: random', 'tpe', ...), and stores it with the trial as the
 * system attribute `sampler_phase` (`tensile tune` prints it on each trial's line).
 *
 * Finished trials of every state are history: model-based samplers count complete, pruned and failed
 * trials towards their startup trials (each one used up a trial of the budget) and learn from all of
 * them: a pruned trial counts with its last reported value at its step (worse than any complete one
 * for TPE, as in Optuna), a failed trial or one pruned before its first report as a bad result. See
 * each sampler for the details.
 *
 * `study.trials` is a snapshot taken when the trial started: every trial of the study in order of
 * number, including running ones of other workers and the current trial itself (as running). The
 * calls are synchronous: samplers read the snapshot and never touch storage, so one sampler class works
 * with every storage, and a seeded sampler given the same history proposes the same values.
 */
import type { Distribution, JsonValue, ParamValue, SearchSpace } from '../distributions.js';
import type { FinishedTrialState, FrozenTrial, StudyDirection } from '../frozen-trial.js';

/** What samplers and pruners may read about the study. */
export interface StudyView {
  readonly name: string;
  readonly direction: StudyDirection;
  /** All trials, ordered by number, as of the current trial's start (see the contract above). */
  readonly trials: readonly FrozenTrial[];
}

export interface Sampler {
  beforeTrial?(study: StudyView, trial: FrozenTrial): Record<string, JsonValue> | undefined;
  inferRelativeSearchSpace(study: StudyView, trial: FrozenTrial): SearchSpace;
  /** Values (external) for the relative space; may return fewer names (never other ones). */
  sampleRelative(study: StudyView, trial: FrozenTrial, space: SearchSpace): Record<string, ParamValue>;
  sampleIndependent(
    study: StudyView,
    trial: FrozenTrial,
    name: string,
    distribution: Distribution,
  ): ParamValue;
  afterTrial?(study: StudyView, trial: FrozenTrial, state: FinishedTrialState, value: number | null): void;
  /** Where the values for `trial` come from, given the same snapshot and relative space (see above). */
  phase?(study: StudyView, trial: FrozenTrial, space: SearchSpace): string;
  /** True when nothing is left to propose (a fully visited grid): the study then starts no new trials. */
  isExhausted?(study: StudyView): boolean;
}
