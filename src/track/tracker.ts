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
 * `flush()`, which rejects with it; `finish()` and `close()` do not (the training's result is not the
 * run store's to change). A SQLite file locked by another process (a long transaction, a backup)
 * does not stall the loop either: a write waits at most a few milliseconds for the lock, is kept
 * (with its time) when the lock stays, and is retried with backoff, at the latest when the run
 * finishes, which waits up to `storeWaitSeconds` for the lock before dropping what is left with a
 * warning. A PostgreSQL store's writes go through a thread whose connection rides out restarts (see
 * ../sql/retry.ts).
 */
import { getBackend } from '../backend/index.js';
import { TrialPruned } from '../tune/pruners/pruner.js';
import type { Callback, TrainingControl } from '../train/callbacks.js';
import type { EpochLogs, TrainingEvent } from '../train/events.js';
import { BackgroundWriter, type WriteRequest } from './background-writer.js';
import { openRunStore } from './open.js';
import { SqliteRunStore, type QuickWrite } from './sqlite.js';
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
  /**
   * Seconds finish() and close() wait for a locked SQLite store to take the writes it refused during
   * training (default 30) before dropping them with a warning.
   */
  storeWaitSeconds?: number;
}

/** How long a write inside the training loop waits for a locked SQLite file before it is deferred. */
const loopWaitMilliseconds = 20;
/** The longest pause between retries of deferred writes. */
const maximumRetryDelayMilliseconds = 4000;

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
  // Metrics beyond accuracy (regression errors, F1, …) under their own names.
  for (const [name, value] of Object.entries((logs.metrics as Record<string, number> | undefined) ?? {}))
    if (name !== 'accuracy' && name !== 'validationAccuracy') add(name, value);
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
  /** A SQLite store, written through writeNow so that a lock defers writes instead of blocking. */
  private readonly quickStore: SqliteRunStore | null;
  /** Writes a locked SQLite store refused, oldest first. */
  private deferred: QuickWrite[] = [];
  private retryAt = 0;
  private retryDelay = 0;
  private warnedLocked = false;
  readonly storeWaitSeconds: number;

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
    this.quickStore = store instanceof SqliteRunStore ? store : null;
    this.storeWaitSeconds = options.storeWaitSeconds ?? 30;
    if (!(this.storeWaitSeconds >= 0))
      throw new RangeError(`storeWaitSeconds must be >= 0, got ${this.storeWaitSeconds}`);
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
          samplesPerSecond: jsonNumber(logs.samplesPerSecond),
        };
        if (logs.accuracy !== undefined) summary.accuracy = jsonNumber(logs.accuracy);
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
        if (!this.finishOnFitEnd) return;
        // fitEnd fires on failure too: a pruned trial is recorded as stopped, any other error as failed.
        if (event.outcome !== 'failed') this.finishNow('complete', null);
        else if (event.error instanceof TrialPruned) this.finishNow('stopped', 'pruned');
        else
          this.finishNow(
            'failed',
            event.error instanceof Error
              ? (event.error.stack ?? `${event.error.name}: ${event.error.message}`)
              : String(event.error),
          );
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
  /** Attaches a file or small content (a figure) to the run; null (with a warning) when the store refused it. */
  async addArtifact(artifact: NewArtifact): Promise<ArtifactInfo | null> {
    await this.flush().catch(() => undefined);
    try {
      return await this.store.addArtifact(this.runId, artifact);
    } catch (error) {
      console.warn(
        `tensile: run ${this.runId}: artifact '${artifact.name}' not recorded: ${error instanceof Error ? error.message : String(error)}`,
      );
      return null;
    }
  }

  /**
   * Ends the run (default complete) once everything recorded so far is written. Never rejects
   * because of the store: failed writes were reported, and flush() still returns them.
   */
  async finish(state: Exclude<RunState, 'running'> = 'complete', error: string | null = null): Promise<void> {
    this.finishNow(state, error);
    await this.flush().catch(() => undefined);
  }

  /** Ends the run as failed with the error's message and stack. */
  async fail(error: unknown): Promise<void> {
    const text = error instanceof Error ? (error.stack ?? `${error.name}: ${error.message}`) : String(error);
    await this.finish('failed', text);
  }

  /**
   * Waits for every write so far (deferred ones up to storeWaitSeconds); rejects with the first
   * write that failed or was dropped.
   */
  async flush(): Promise<void> {
    await this.drainPatiently();
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
    if (this.errors.length > 0) throw this.errors[0]!;
  }

  /** Flushes and stops the writer thread, if any (the store stays open: it is the caller's). Never rejects because of the store. */
  async close(): Promise<void> {
    try {
      await this.flush();
    } catch {
      // Reported on stderr when it happened; the training's outcome stands.
    } finally {
      await this.writer?.close().catch(() => undefined);
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
    if (this.quickStore !== null && isQuickWrite(message)) {
      this.quickWrite(message);
      return;
    }
    let promise: Promise<void>;
    try {
      promise = this.writer !== null ? this.writer.send(message) : direct();
    } catch (error) {
      promise = Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    const tracked = promise.catch((error: unknown) => this.recordError(error));
    this.pending.add(tracked);
    void tracked.finally(() => this.pending.delete(tracked));
  }

  private recordError(error: unknown): void {
    const failure = error instanceof Error ? error : new Error(String(error));
    if (this.errors.length === 0) {
      console.warn(`tensile: recording run ${this.runId} failed (training goes on): ${failure.message}`);
    }
    this.errors.push(failure);
  }

  /** A write to a SQLite store, in order behind any deferred ones, deferred itself while the file is locked. */
  private quickWrite(message: QuickWrite): void {
    // Points keep the time they were recorded, not the time a lock let them through.
    const now = Date.now();
    this.deferred.push(
      message.method === 'logMetrics'
        ? { ...message, points: message.points.map((p) => (p.time === undefined ? { ...p, time: now } : p)) }
        : message,
    );
    if (now >= this.retryAt) this.drain(loopWaitMilliseconds);
  }

  /** Writes deferred writes in order; false when the store is still locked (the rest stay deferred). */
  private drain(waitMilliseconds: number): boolean {
    const store = this.quickStore!;
    while (this.deferred.length > 0) {
      const next = this.deferred[0]!;
      let written: boolean;
      try {
        written = store.writeNow(next, waitMilliseconds);
      } catch (error) {
        this.deferred.shift();
        this.recordError(error);
        continue;
      }
      if (!written) {
        this.retryDelay = Math.min(Math.max(250, this.retryDelay * 2), maximumRetryDelayMilliseconds);
        this.retryAt = Date.now() + this.retryDelay;
        if (!this.warnedLocked) {
          this.warnedLocked = true;
          console.warn(
            `tensile: run ${this.runId}: the run store ${store.url} is locked by another connection; recording is delayed (training goes on)`,
          );
        }
        return false;
      }
      this.deferred.shift();
      this.retryDelay = 0;
    }
    return true;
  }

  /** Writes what a lock deferred, waiting up to storeWaitSeconds; then drops the rest with a warning. */
  private async drainPatiently(): Promise<void> {
    if (this.deferred.length === 0) return;
    const deadline = Date.now() + this.storeWaitSeconds * 1000;
    // Short synchronous waits between timer pauses: the process stays responsive while it waits.
    while (!this.drain(200)) {
      const left = deadline - Date.now();
      if (left <= 0) {
        const dropped = this.deferred.length;
        this.deferred = [];
        const message = `run ${this.runId}: ${dropped} tracking write(s) dropped: the run store stayed locked for ${this.storeWaitSeconds} s`;
        console.warn(`tensile: ${message}`);
        this.errors.push(new Error(message));
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(left, 250)));
    }
  }
}

function isQuickWrite(message: WriteRequest): message is QuickWrite {
  return (
    message.method === 'logMetrics' ||
    message.method === 'updateConfig' ||
    message.method === 'updateSummary' ||
    message.method === 'finishRun'
  );
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
