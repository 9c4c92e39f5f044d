/**
 * The training loop as nested stages with typed events: fit ⊃ epoch ⊃ batch ⊃ step, then
 * validation. Every stage has a start and an end event; fitEnd fires however the run ends (finished,
 * stopped, failed, pruned). Callbacks, the progress bar, run tracking and tests all subscribe to the
 * same events, and steer the loop through TrainingControl (see callbacks.ts).
 */

/** Metrics of one epoch. Validation entries are present when there is validation data. */
export interface EpochLogs {
  epoch: number;
  loss: number;
  /** Present when the fit measures accuracy (the default for class-index targets). */
  accuracy?: number;
  validationLoss?: number;
  validationAccuracy?: number;
  /**
   * Every metric of the epoch by name: the training metrics under their own names ('accuracy',
   * 'meanAbsoluteError', …) and the validation ones prefixed ('validationAccuracy', …).
   */
  metrics: Record<string, number>;
  /** Learning rate of the first parameter group at the end of the epoch. */
  learningRate: number;
  seconds: number;
  samplesPerSecond: number;
  /** True when a callback cut the epoch short (skipEpoch, stopAfterBatch): fewer batches than planned. */
  partial?: boolean;
}

/** How a fit ended: all epochs done, stopped by a callback, or left by an error (pruning included). */
export type FitOutcome = 'completed' | 'stopped' | 'failed';

export type TrainingEvent =
  | {
      type: 'fitStart';
      epochs: number;
      /** 0 for a stream that does not declare its length. */
      batchesPerEpoch: number;
      trainSamples: number;
      validationSamples: number;
      startEpoch: number;
    }
  | { type: 'epochStart'; epoch: number }
  | { type: 'batchStart'; epoch: number; batch: number; size: number }
  /** After backward and the non-finite check, before the optimizer applies the gradients. */
  | {
      type: 'stepStart';
      epoch: number;
      batch: number;
      loss: number;
      /** The total gradient norm before clipping, when clipping by norm is on. */
      gradientNorm?: number;
    }
  | { type: 'stepEnd'; epoch: number; batch: number }
  /** A batch left out of training: by a callback (skipBatch), or a non-finite loss under nonFinite 'skip'. */
  | { type: 'batchSkipped'; epoch: number; batch: number; reason: string; loss?: number }
  | {
      type: 'batchEnd';
      epoch: number;
      batch: number;
      /** Mean loss of this batch. */
      loss: number;
      /** Running means over the epoch so far. */
      epochLoss: number;
      /** Present when the fit measures accuracy. */
      epochAccuracy?: number;
      samplesSeen: number;
      samplesPerSecond: number;
    }
  | { type: 'validationStart'; epoch: number }
  | {
      type: 'validationEnd';
      epoch: number;
      loss: number;
      accuracy?: number;
      metrics: Record<string, number>;
    }
  | { type: 'epochEnd'; epoch: number; logs: EpochLogs }
  | {
      type: 'fitEnd';
      history: EpochLogs[];
      /** A callback stopped the run (stop, stopAfterBatch, an aborted signal). */
      stoppedEarly: boolean;
      outcome: FitOutcome;
      stopReason?: string;
      /** What ended a failed fit (a TrialPruned for a pruned tuning trial); it is rethrown after fitEnd. */
      error?: unknown;
    };

export type TrainingEventType = TrainingEvent['type'];
