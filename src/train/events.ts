/**
 * The training loop as nested stages with typed events (fit ⊃ epoch ⊃ batch, then validation).
 * Callbacks, the progress bar, run tracking and tests all subscribe to the same events.
 */

/** Metrics of one epoch. Validation entries are present when there is validation data. */
export interface EpochLogs {
  epoch: number;
  loss: number;
  accuracy: number;
  validationLoss?: number;
  validationAccuracy?: number;
  /** Learning rate of the first parameter group at the end of the epoch. */
  learningRate: number;
  seconds: number;
  samplesPerSecond: number;
}

export type TrainingEvent =
  | {
      type: 'fitStart';
      epochs: number;
      batchesPerEpoch: number;
      trainSamples: number;
      validationSamples: number;
      startEpoch: number;
    }
  | { type: 'epochStart'; epoch: number }
  | { type: 'batchStart'; epoch: number; batch: number }
  | {
      type: 'batchEnd';
      epoch: number;
      batch: number;
      /** Mean loss of this batch. */
      loss: number;
      /** Running means over the epoch so far. */
      epochLoss: number;
      epochAccuracy: number;
      samplesSeen: number;
      samplesPerSecond: number;
    }
  | { type: 'validationStart'; epoch: number }
  | { type: 'validationEnd'; epoch: number; loss: number; accuracy: number }
  | { type: 'epochEnd'; epoch: number; logs: EpochLogs }
  | { type: 'fitEnd'; history: EpochLogs[]; stoppedEarly: boolean };

export type TrainingEventType = TrainingEvent['type'];
