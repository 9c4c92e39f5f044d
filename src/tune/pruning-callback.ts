/**
 * Ties a trial to tensile's training loop: after each epoch the monitored metric is reported to the
 * trial at step = epochs done (1 after the first epoch; the numbering every pruner uses, see
 * pruners/pruner.ts), and when the pruner judges the trial unpromising the callback throws
 * TrialPruned out of fit, which the study records as a pruned trial.
 *
 * The last epoch is reported but never judged: fit announces the planned number of epochs, and a trial
 * that has reported its final step has had its whole budget, so it completes (pruning it there would
 * throw the finished training away).
 *
 * @example
 * fit(model, train, { optimizer, epochs, validationData, callbacks: [new PruningCallback(trial)] });
 */
import type { Callback } from '../train/callbacks.js';
import type { EpochLogs, TrainingEvent } from '../train/events.js';
import { TrialPruned } from './pruners/pruner.js';
import type { Trial } from './trial.js';

export type PruningMetric = 'validationAccuracy' | 'validationLoss' | 'accuracy' | 'loss';

export class PruningCallback implements Callback {
  readonly trial: Trial;
  readonly monitor: PruningMetric;
  /** The planned number of epochs of the current fit (from its fitStart event), or null before it. */
  private plannedEpochs: number | null = null;

  /** @param options.monitor the metric reported to the trial (default 'validationAccuracy'); it should match the study's direction. */
  constructor(trial: Trial, options: { monitor?: PruningMetric } = {}) {
    this.trial = trial;
    this.monitor = options.monitor ?? 'validationAccuracy';
  }

  handle(event: TrainingEvent): void {
    if (event.type === 'fitStart') {
      this.plannedEpochs = event.epochs;
      return;
    }
    if (event.type !== 'epochEnd') return;
    const value = (event.logs as EpochLogs)[this.monitor];
    if (value === undefined)
      throw new Error(
        `PruningCallback monitors '${this.monitor}', which this fit does not produce (no validation data?)`,
      );
    const step = event.epoch + 1;
    this.trial.report(value, step);
    if (this.plannedEpochs !== null && step >= this.plannedEpochs) return;
    if (this.trial.shouldPrune())
      throw new TrialPruned(
        `trial ${this.trial.number} pruned after epoch ${step}: ${this.monitor} ${value.toFixed(4)}`,
      );
  }
}
