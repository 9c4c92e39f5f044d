/**
 * RunTracker: a training callback that records a run in a run store: the configuration (the
 * caller's, plus what fit knows: epochs, samples, optimizer settings, parameter counts, backend),
 * per-epoch metrics, the training loss per batch (throttled, as a mean over the batches since the
 * last point), the learning rate per batch (at every optimizer step, or every k-th in a long fit, so a
 * one-cycle or warm-up schedule keeps its shape), a summary of the latest epoch, and artifacts.
 *
 * Write volume: per-batch points are buffered and written together, at most once per batchInterval
 * (and at each epoch's end with the epoch's metrics): a fit of 100,000 steps costs the store a few
 * thousand rows, not a write per step.
 *
 * The CLI commands that train record by default (`--no-track` turns it off); library users opt in:
 *
 * @example
 * const store = await openRunStore('sqlite:./tensile.db');
 * const tracker = await RunTracker.start(store, { name: 'mnist-baseline', config: { lr: 1e-3 } });
 * fit(model, train, { optimizer, epochs: 5, callbacks: [tracker] });   // finishes the run at fitEnd
 * await tracker.close();
 *
 * or, with failures recorded and the store closed for you:
 *
 * const history = await trackRun('sqlite:./tensile.db', { name: 'mnist' }, (tracker) =>
 *   fit(model, train, { optimizer, epochs: 5, callbacks: [tracker] }));
 *
 * Recording never stops a training: a failed write is reported once on stderr and kept for
 * `flush()`, which rejects with it.
 */
import { getBackend } from '../backend/index.js';
import { TrialPruned } from '../tune/pruners/pruner.js';
import type { Callback, TrainingControl } from '../train/callbacks.js';
import type { EpochLogs, TrainingEvent } from '../train/events.js';
import { BackgroundWriter, type WriteRequest } from './background-writer.js';
import { openRunStore } from './open.js';
import type {
  ArtifactInfo,
  JsonObject,
  JsonValue,
  MetricInput,
  NewArtifact,
  RunKind,
  RunRecord,
  RunState,
  RunStore,
} from './types.js';

export interface RunTrackerOptions {
  /** Shown in listings (default: the kind and the start time). */
  name?: string;
  /** Default 'fit'. */
  kind?: RunKind;
  /** The caller's settings (command-line options, hyperparameters). */
  config?: JsonObject;
  parentId?: number | null;
  /** For tuning trials: the study's name and the trial's number. */
  study?: string | null;
  trialNumber?: number | null;
  /**
   * Milliseconds between per-batch loss points (default 500; 0 records every batch; null none).
   * Each point is the mean loss of the batches since the previous one.
   */
  batchInterval?: number | null;
  /**
   * Most per-batch learning-rate points per fit (default 1000; null none): every optimizer step is
   * recorded when the fit has no more steps than this, else every k-th step (and each epoch's last).
   * Recorded as the metric 'batchLearningRate', at x = epoch + batch / batchesPerEpoch.
   */
  learningRatePoints?: number | null;
  /**
   * Finish the run (complete) when fit ends (default true). Pass false when one run spans several
   * fits, as a fine-tune's stages do, and call finish() after the last.
   */
  finishOnFitEnd?: boolean;
}

/** Metrics of an epoch as points, at x = epochs completed. */
function epochPoints(logs: EpochLogs, step: number): MetricInput[] {
  const time = Date.now();
  const points: MetricInput[] = [];
  const add = (name: string, value: number | undefined) => {
    if (value !== undefined) points.push({ name, step, x: step + 1, value, time });
  };
  add('loss', logs.loss);
  add('accuracy', logs.accuracy);
  add('validationLoss', logs.validationLoss);
  add('validationAccuracy', logs.validationAccuracy);
  add('learningRate', logs.learningRate);
  add('samplesPerSecond', logs.samplesPerSecond);
  add('epochSeconds', logs.seconds);
  return points;
}

/** A JSON-safe number: non-finite values become null. */
function jsonNumber(value: number): number | null {
  return Number.isFinite(value) ? value : null;
}

function optimizerConfig(control: TrainingControl): JsonObject {
  const groups = control.optimizer.groups.map((group) => {
    const settings: JsonObject = {};
    for (const [key, value] of Object.entries(group.settings)) {
      if (typeof value === 'number') settings[key] = jsonNumber(value);
      else if (typeof value === 'boolean' || typeof value === 'string') settings[key] = value;
    }
    return {
      ...(group.name !== undefined ? { name: group.name } : {}),
      parameters: group.parameters.reduce((sum, parameter) => sum + parameter.size, 0),
      ...settings,
    };
  });
  return { name: control.optimizer.constructor.name, groups };
}

function modelConfig(control: TrainingControl): JsonObject {
  let trainable = 0;
  let frozen = 0;
  for (const parameter of control.model.parameters()) {
    if (parameter.requiresGrad) trainable += parameter.size;
    else frozen += parameter.size;
  }
  const layers = control.model
    .namedModules()
    .filter(([name, module]) => name !== '' && module.children().length === 0)
    .map(([name, module]) => `${name}: ${module.describe()}`);
  return {
    name: control.model.constructor.name,
    trainableParameters: trainable,
    frozenParameters: frozen,
    layers,
  };
}

export class RunTracker implements Callback {
  readonly store: RunStore;
  /** The run as created. */
  readonly run: RunRecord;
  readonly batchInterval: number | null;
  readonly learningRatePoints: number | null;
  readonly finishOnFitEnd: boolean;
  private readonly writer: BackgroundWriter | null;
  private readonly pending = new Set<Promise<void>>();
  private readonly errors: Error[] = [];
  private finished = false;
  /** Epochs recorded by earlier fits of this run: a second stage continues the x axis. */
  private epochOffset = 0;
  private epochsSeen = 0;
  private batchLossSum = 0;
  private batchCount = 0;
  private lastBatchPoint = 0;
  /** Per-batch points waiting for the next write. */
  private buffered: MetricInput[] = [];
  /** Record the learning rate every this many steps of the current fit. */
  private learningRateEvery = 1;
  private fitStartEpoch = 0;
  private bestValidationAccuracy: number | null = null;

  private constructor(store: RunStore, run: RunRecord, options: RunTrackerOptions) {
    this.store = store;
    this.run = run;
    this.batchInterval = options.batchInterval === undefined ? 500 : options.batchInterval;
    this.learningRatePoints = options.learningRatePoints === undefined ? 1000 : options.learningRatePoints;
    if (this.learningRatePoints !== null && !(this.learningRatePoints >= 1))
      throw new RangeError(`learningRatePoints must be at least 1 or null, got ${this.learningRatePoints}`);
    this.finishOnFitEnd = options.finishOnFitEnd ?? true;
    // A store that writes asynchronously gets a writer thread, or the loop's points would wait for the loop to end.
    this.writer = !store.synchronousWrites && store.url !== null ? new BackgroundWriter(store.url) : null;
  }

  /** Creates the run (state running) and returns its tracker. */
  static async start(store: RunStore, options: RunTrackerOptions = {}): Promise<RunTracker> {
    const kind = options.kind ?? 'fit';
    const run = await store.createRun({
      name: options.name ?? `${kind} ${new Date().toISOString().slice(0, 19).replace('T', ' ')}`,
      kind,
      config: options.config ?? {},
      parentId: options.parentId ?? null,
      study: options.study ?? null,
      trialNumber: options.trialNumber ?? null,
    });
    return new RunTracker(store, run, options);
  }

  get runId(): number {
    return this.run.id;
  }

  handle(event: TrainingEvent, control: TrainingControl): void {
    switch (event.type) {
      case 'fitStart':
        if (event.startEpoch === 0) this.epochOffset = this.epochsSeen;
        this.batchLossSum = 0;
        this.batchCount = 0;
        this.lastBatchPoint = Date.now();
        this.fitStartEpoch = event.startEpoch;
        if (this.learningRatePoints !== null) {
          const steps = Math.max(1, (event.epochs - event.startEpoch) * event.batchesPerEpoch);
          this.learningRateEvery = Math.max(1, Math.ceil(steps / this.learningRatePoints));
        }
        this.updateConfig({
          backend: getBackend().name,
          fit: {
            epochs: event.epochs,
            startEpoch: event.startEpoch,
            batchesPerEpoch: event.batchesPerEpoch,
            trainSamples: event.trainSamples,
            validationSamples: event.validationSamples,
          },
          optimizer: optimizerConfig(control),
          model: modelConfig(control),
        });
        return;
      case 'batchEnd': {
        const epoch = this.epochOffset + event.epoch;
        const batchesPerEpoch = control.batchesPerEpoch;
        const step = epoch * batchesPerEpoch + event.batch;
        if (this.learningRatePoints !== null) {
          // The rate this step used: a per-batch schedule sets it at batchStart.
          const stepOfFit = (event.epoch - this.fitStartEpoch) * batchesPerEpoch + event.batch;
          const rate = control.optimizer.groups[0]?.settings.lr;
          const lastOfEpoch = event.batch === batchesPerEpoch - 1;
          if (rate !== undefined && (stepOfFit % this.learningRateEvery === 0 || lastOfEpoch)) {
            this.buffered.push({
              name: 'batchLearningRate',
              step,
              x: epoch + event.batch / batchesPerEpoch,
              value: rate,
            });
          }
        }
        if (this.batchInterval === null) {
          // No batch losses; the learning rates wait for the epoch's end, unless many pile up.
          if (this.buffered.length >= 1000) this.logMetrics(this.takeBuffered());
          return;
        }
        this.batchLossSum += event.loss;
        this.batchCount++;
        const now = Date.now();
        if (now - this.lastBatchPoint < this.batchInterval) return;
        this.buffered.push({
          name: 'batchLoss',
          step,
          x: epoch + (event.batch + 1) / batchesPerEpoch,
          value: this.batchLossSum / this.batchCount,
          time: now,
        });
        this.logMetrics(this.takeBuffered());
        this.batchLossSum = 0;
        this.batchCount = 0;
        this.lastBatchPoint = now;
        return;
      }
      case 'epochEnd': {
        const step = this.epochOffset + event.epoch;
        this.epochsSeen = step + 1;
        this.logMetrics([...this.takeBuffered(), ...epochPoints(event.logs, step)]);
        const logs = event.logs;
        if (logs.validationAccuracy !== undefined) {
          this.bestValidationAccuracy = Math.max(
            this.bestValidationAccuracy ?? -Infinity,
            logs.validationAccuracy,
          );
        }
        const summary: JsonObject = {
          epochs: this.epochsSeen,
          loss: jsonNumber(logs.loss),
          accuracy: jsonNumber(logs.accuracy),
          samplesPerSecond: jsonNumber(logs.samplesPerSecond),
        };
        if (logs.validationLoss !== undefined) summary.validationLoss = jsonNumber(logs.validationLoss);
        if (logs.validationAccuracy !== undefined)
          summary.validationAccuracy = jsonNumber(logs.validationAccuracy);
        if (this.bestValidationAccuracy !== null)
          summary.bestValidationAccuracy = this.bestValidationAccuracy;
        this.updateSummary(summary);
        return;
      }
      case 'fitEnd':
        this.logMetrics(this.takeBuffered());
        this.updateSummary({ stoppedEarly: event.stoppedEarly });
        if (this.finishOnFitEnd) this.finishNow('complete', null);
        return;
      default:
        return;
    }
  }

  /** The buffered per-batch points, emptying the buffer. */
  private takeBuffered(): MetricInput[] {
    const points = this.buffered;
    this.buffered = [];
    return points;
  }

  /** Records metric points of your own (test accuracy, a custom curve). */
  logMetrics(points: readonly MetricInput[]): void {
    if (points.length === 0) return;
    this.write({ method: 'logMetrics', runId: this.runId, points: [...points] }, () =>
      this.store.logMetrics(this.runId, points),
    );
  }

  /** Merges keys into the run's configuration. */
  updateConfig(values: JsonObject): void {
    this.write({ method: 'updateConfig', runId: this.runId, values }, () =>
      this.store.updateConfig(this.runId, values),
    );
  }

  /** Merges keys into the run's summary (e.g. { testAccuracy: 0.98 }). */
  updateSummary(values: JsonObject): void {
    this.write({ method: 'updateSummary', runId: this.runId, values }, () =>
      this.store.updateSummary(this.runId, values),
    );
  }

  /** Attaches a file or small content (a figure) to the run. */
  async addArtifact(artifact: NewArtifact): Promise<ArtifactInfo> {
    await this.flush();
    return this.store.addArtifact(this.runId, artifact);
  }

  /** Ends the run (default complete) once everything recorded so far is written. */
  async finish(state: Exclude<RunState, 'running'> = 'complete', error: string | null = null): Promise<void> {
    this.finishNow(state, error);
    await this.flush();
  }

  /** Ends the run as failed with the error's message and stack. */
  async fail(error: unknown): Promise<void> {
    const text = error instanceof Error ? (error.stack ?? `${error.name}: ${error.message}`) : String(error);
    await this.finish('failed', text);
  }

  /** Waits for every write so far; rejects with the first write that failed. */
  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
    if (this.errors.length > 0) throw this.errors[0]!;
  }

  /** Flushes and stops the writer thread, if any (the store stays open: it is the caller's). */
  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      await this.writer?.close();
    }
  }

  private finishNow(state: Exclude<RunState, 'running'>, error: string | null): void {
    if (this.finished) return;
    this.finished = true;
    // Per-batch points of an epoch that did not end (a failure, a pruned trial) are kept too.
    this.logMetrics(this.takeBuffered());
    this.write({ method: 'finishRun', runId: this.runId, state, error }, async () => {
      await this.store.finishRun(this.runId, state, error);
    });
  }

  private write(message: WriteRequest, direct: () => Promise<void>): void {
    let promise: Promise<void>;
    try {
      promise = this.writer !== null ? this.writer.send(message) : direct();
    } catch (error) {
      promise = Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    const tracked = promise.catch((error: unknown) => {
      const failure = error instanceof Error ? error : new Error(String(error));
      if (this.errors.length === 0) {
        console.warn(`tensile: recording run ${this.runId} failed (training goes on): ${failure.message}`);
      }
      this.errors.push(failure);
    });
    this.pending.add(tracked);
    void tracked.finally(() => this.pending.delete(tracked));
  }
}

/**
 * Runs `work` as one tracked run: opens the store (when given a URL), starts the run, passes the
 * tracker to `work` (add it to fit's callbacks), records a thrown error as a failed run and rethrows
 * it (a pruned tuning trial, TrialPruned, as stopped), finishes the run as complete otherwise, and
 * closes what it opened.
 *
 * @example
 * const history = await trackRun('sqlite:./tensile.db', { name: 'mnist', config }, (tracker) =>
 *   fit(model, train, { optimizer, epochs: 5, callbacks: [tracker] }));
 */
export async function trackRun<T>(
  store: RunStore | string,
  options: RunTrackerOptions,
  work: (tracker: RunTracker) => T | Promise<T>,
): Promise<T> {
  const opened = typeof store === 'string' ? await openRunStore(store) : null;
  const runStore = opened ?? (store as RunStore);
  try {
    const tracker = await RunTracker.start(runStore, {
      ...options,
      finishOnFitEnd: options.finishOnFitEnd ?? false,
    });
    try {
      let result: T;
      try {
        result = await work(tracker);
      } catch (error) {
        // A pruned trial stopped on purpose: recorded as stopped, not as failed.
        if (error instanceof TrialPruned) await tracker.finish('stopped', 'pruned').catch(() => undefined);
        else await tracker.fail(error).catch(() => undefined);
        throw error;
      }
      await tracker.finish('complete');
      return result;
    } finally {
      await tracker.close().catch(() => undefined);
    }
  } finally {
    await opened?.close();
  }
}

/**
 * Values for a run's config from parsed command-line options (strings, numbers, booleans; text that
 * is a number becomes one), leaving out the names in `exclude` (options about output rather than the
 * training).
 */
export function configFromOptions(
  values: Record<string, unknown>,
  exclude: readonly string[] = [],
): JsonObject {
  const config: JsonObject = {};
  for (const [key, value] of Object.entries(values)) {
    if (value === undefined || exclude.includes(key)) continue;
    if (typeof value === 'string') {
      // Command lines give numbers as text; stored as numbers they compare and sort as numbers.
      const number = Number(value);
      config[key] = value.trim() !== '' && Number.isFinite(number) ? number : value;
    } else if (typeof value === 'boolean' || typeof value === 'number' || value === null) {
      config[key] = value as JsonValue;
    }
  }
  return config;
}
