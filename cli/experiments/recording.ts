/**
 * What an experiment records in the store, as every other training in tensile does: one run of kind
 * 'experiment' for the whole command (its options, summary and figures) and, under it, one run per
 * training (its configuration and curves; a tuning trial's also names its study and number). The
 * experiment's studies go in the same store, so `tensile dashboard` shows both while it runs.
 * `--no-track` records nothing and keeps the studies in memory.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MemoryStorage, openStorage, type Storage } from '../../src/tune/index.js';
import {
  openRunStore,
  RunTracker,
  trackRun,
  type Callback,
  type JsonObject,
  type RunStore,
} from '../../src/index.js';

/** The options every experiment takes for it (merge into parseArgs' options). */
export const recordingOptions = {
  storage: { type: 'string' },
  'no-track': { type: 'boolean', default: false },
} as const;

export const recordingHelp = (defaultUrl: string) =>
  `  --storage URL      where the runs and studies are recorded (default ${defaultUrl})
  --no-track         record nothing (studies stay in memory)`;

export interface TrainingRunOptions {
  name: string;
  config: JsonObject;
  /** For tuning trials. */
  study?: string;
  trialNumber?: number;
}

export interface ExperimentOptions {
  /** Its name, e.g. 'lr-batch'. */
  experiment: string;
  storage: string;
  track: boolean;
  /** The options it ran with. */
  config: JsonObject;
}

/**
 * Runs an experiment's body with its recording: the experiment's run is a trackRun (failed on a
 * thrown error, complete otherwise), and the stores are closed afterwards.
 */
export async function recordExperiment<T>(
  options: ExperimentOptions,
  body: (recording: ExperimentRecording) => Promise<T>,
): Promise<T> {
  const stamp = new Date().toISOString().slice(0, 19).replace('T', ' ');
  if (!options.track) {
    const studies = new MemoryStorage();
    try {
      return await body(new ExperimentRecording(studies, null, null, stamp));
    } finally {
      await studies.close();
    }
  }
  const runs = await openRunStore(options.storage);
  try {
    const studies = await openStorage(options.storage);
    try {
      return await trackRun(
        runs,
        { kind: 'experiment', name: `experiment ${options.experiment} ${stamp}`, config: options.config },
        (parent) => {
          console.log(
            `recording run #${parent.runId} and its trainings in ${options.storage} (tensile dashboard shows them; --no-track skips this)`,
          );
          return body(new ExperimentRecording(studies, runs, parent, stamp));
        },
      );
    } finally {
      await studies.close();
    }
  } finally {
    await runs.close();
  }
}

export class ExperimentRecording {
  constructor(
    /** Where the experiment's studies live. */
    readonly studies: Storage,
    private readonly runs: RunStore | null,
    private readonly parent: RunTracker | null,
    /** Added to study names so that each invocation's studies are distinct. */
    readonly stamp: string,
  ) {}

  /** A study name unique to this invocation. */
  studyName(base: string): string {
    return this.parent === null ? base : `${base} ${this.stamp}`;
  }

  /**
   * Runs one training, recorded as a child run: `work` gets the callbacks to pass to fit (none when
   * not recording). A thrown error fails the child run and is rethrown.
   */
  async training<T>(options: TrainingRunOptions, work: (callbacks: Callback[]) => T): Promise<T> {
    if (this.runs === null || this.parent === null) return work([]);
    return trackRun(
      this.runs,
      {
        kind: options.study === undefined ? 'fit' : 'trial',
        name: options.name,
        config: options.config,
        parentId: this.parent.runId,
        study: options.study ?? null,
        trialNumber: options.trialNumber ?? null,
      },
      (tracker) => work([tracker]),
    );
  }

  /** Puts the experiment's summary and its SVG figures into its run. */
  async results(summary: JsonObject, figures: string[]): Promise<void> {
    if (this.parent === null) return;
    this.parent.updateSummary(summary);
    for (const file of figures) {
      await this.parent.addArtifact({
        name: path.basename(file),
        kind: 'figure',
        mediaType: 'image/svg+xml',
        path: path.resolve(file),
        content: fs.readFileSync(file, 'utf8'),
      });
    }
  }
}
