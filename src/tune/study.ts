/**
 * Studies: an optimization task (one objective, minimized or maximized) and its trials, kept in a
 * storage that one or many workers share. Use `optimize` to run an objective, or ask/tell to drive
 * trials yourself.
 *
 * @example
 * const study = await Study.create({ direction: 'minimize', sampler: new TpeSampler({ seed: 1 }) });
 * await study.optimize((trial) => {
 *   const x = trial.suggestFloat('x', -10, 10);
 *   return (x - 2) ** 2;
 * }, { nTrials: 50 });
 * const best = await study.bestTrial(); // best.params.x ≈ 2
 */
import type { JsonValue, ParamValue, SearchSpace } from './distributions.js';
import {
  isBetter,
  lastIntermediate,
  systemAttributeKeys,
  type FinishedTrialState,
  type FrozenTrial,
  type StudyDirection,
  type TrialState,
} from './frozen-trial.js';
import {
  checkHeartbeat,
  createHeartbeat,
  defaultHeartbeat,
  type Heartbeat,
  type HeartbeatSettings,
} from './heartbeat.js';
import { outageWithin, StorageUnavailableError } from '../sql/retry.js';
import { MedianPruner } from './pruners/median.js';
import { TrialPruned, type Pruner } from './pruners/pruner.js';
import type { Sampler, StudyView } from './samplers/sampler.js';
import { TpeSampler } from './samplers/tpe.js';
import { workerName } from '../sql/worker.js';
import { MemoryStorage } from './storage/memory.js';
import type { Storage } from './storage/storage.js';
import { Trial } from './trial.js';
import { trialsToCsv, trialsToJson, trialsTable, type TrialsTable } from './export.js';

export interface StudyOptions {
  /** Study name (default: a unique generated one). */
  name?: string;
  /** Default 'minimize'. */
  direction?: StudyDirection;
  /** Default: a new MemoryStorage. */
  storage?: Storage;
  /** Default: TpeSampler with default settings (as in Optuna). */
  sampler?: Sampler;
  /** Default: MedianPruner (as in Optuna). */
  pruner?: Pruner;
  /** Load the study when the name exists instead of failing (the direction must agree). */
  loadIfExists?: boolean;
  /**
   * Heartbeats of running trials (see heartbeat.ts). Default: on (every 5 s, dead after 20 s) for
   * storages that other processes can share, off for memory; null turns them off.
   */
  heartbeat?: HeartbeatSettings | null;
  /** How many times a trial whose worker died is repeated with the same parameters (default 0). */
  maxRetries?: number;
}

export interface OptimizeOptions {
  /** Trials this call runs (default: until timeout, totalTrials or an exhausted sampler). */
  nTrials?: number;
  /** Seconds after which no new trial starts. */
  timeout?: number;
  /**
   * Study-wide budget shared by all workers: no trial starts once the study holds this many (every
   * trial counts except failed ones a retry replaced). Checked atomically by the storage.
   */
  totalTrials?: number;
  /** Trials run at the same time in this process, for asynchronous objectives (default 1). */
  concurrency?: number;
  /** Called after each trial this call finishes, with the trial as stored. */
  callbacks?: ReadonlyArray<(study: Study, trial: FrozenTrial) => void | Promise<void>>;
}

export type Objective = (trial: Trial) => number | Promise<number>;

/** What tell records: a value (complete), or an explicit state. */
export type TellResult =
  number | { state: 'complete'; value: number } | { state: 'pruned' } | { state: 'failed'; error?: string };

function generatedName(): string {
  return `study-${new Date()
    .toISOString()
    .replace(/[-:.TZ]/g, '')
    .slice(0, 14)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** The error for a trial whose result could not be stored because the database stayed unavailable. */
function unrecorded(
  trial: Trial,
  state: FinishedTrialState,
  value: number | null,
  cause: StorageUnavailableError,
): StorageUnavailableError {
  const result = state === 'complete' ? `complete with value ${String(value)}` : state;
  return new StorageUnavailableError(
    `trial ${trial.number} finished (${result}) but its result could not be stored: ${cause.message}`,
    { cause },
  );
}

function errorText(error: unknown): string {
  if (error instanceof Error) return error.stack ?? `${error.name}: ${error.message}`;
  return String(error);
}

export class Study {
  readonly id: number;
  readonly name: string;
  readonly direction: StudyDirection;
  readonly storage: Storage;
  readonly sampler: Sampler;
  readonly pruner: Pruner;
  readonly heartbeatSettings: HeartbeatSettings | null;
  readonly maxRetries: number;
  private heartbeat: Heartbeat | null = null;
  private readonly active = new Map<number, Trial>();
  private readonly worker = workerName();

  private constructor(
    id: number,
    name: string,
    direction: StudyDirection,
    storage: Storage,
    options: StudyOptions,
  ) {
    this.id = id;
    this.name = name;
    this.direction = direction;
    this.storage = storage;
    this.sampler = options.sampler ?? new TpeSampler();
    this.pruner = options.pruner ?? new MedianPruner();
    this.heartbeatSettings =
      options.heartbeat === undefined ? (storage.url !== null ? defaultHeartbeat : null) : options.heartbeat;
    if (this.heartbeatSettings !== null) checkHeartbeat(this.heartbeatSettings);
    this.maxRetries = options.maxRetries ?? 0;
    if (!Number.isSafeInteger(this.maxRetries) || this.maxRetries < 0)
      throw new RangeError(`maxRetries must be a non-negative integer, got ${this.maxRetries}`);
  }

  /** Creates a study (or loads it, with loadIfExists). */
  static async create(options: StudyOptions = {}): Promise<Study> {
    const storage = options.storage ?? new MemoryStorage();
    const name = options.name ?? generatedName();
    const direction = options.direction ?? 'minimize';
    if (direction !== 'minimize' && direction !== 'maximize')
      throw new RangeError(`direction must be 'minimize' or 'maximize', got '${String(direction)}'`);
    let record = options.loadIfExists ? await storage.getStudy(name) : null;
    if (record === null) {
      try {
        record = await storage.createStudy(name, direction);
      } catch (error) {
        // Another worker may have created it between our look-up and our insert.
        record = options.loadIfExists ? await storage.getStudy(name) : null;
        if (record === null) throw error;
      }
    }
    if (record.direction !== direction) {
      throw new Error(`study '${name}' exists with direction ${record.direction}, not ${direction}`);
    }
    return new Study(record.id, record.name, record.direction, storage, options);
  }

  /** Loads an existing study; its direction comes from storage. */
  static async load(
    name: string,
    storage: Storage,
    options: Omit<StudyOptions, 'name' | 'storage' | 'direction' | 'loadIfExists'> = {},
  ): Promise<Study> {
    const record = await storage.getStudy(name);
    if (record === null) throw new Error(`no study named '${name}' in this storage`);
    return new Study(record.id, record.name, record.direction, storage, options);
  }

  /** All trials (optionally only some states), ordered by number. */
  async trials(states?: readonly TrialState[]): Promise<FrozenTrial[]> {
    return this.storage.getAllTrials(this.id, states);
  }

  /** The snapshot samplers and pruners read. */
  async view(): Promise<StudyView> {
    return { name: this.name, direction: this.direction, trials: await this.trials() };
  }

  /** The best complete trial; throws when none is complete. */
  async bestTrial(): Promise<FrozenTrial> {
    let best: FrozenTrial | null = null;
    for (const trial of await this.trials(['complete'])) {
      if (best === null || isBetter(this.direction, trial.value!, best.value!)) best = trial;
    }
    if (best === null) throw new Error(`study '${this.name}' has no complete trial yet`);
    return best;
  }

  async bestValue(): Promise<number> {
    return (await this.bestTrial()).value!;
  }

  async bestParams(): Promise<Record<string, ParamValue>> {
    return { ...(await this.bestTrial()).params };
  }

  /**
   * Queues a trial with fixed parameter values (from prior work, a hunch, a paper); the next worker to
   * ask runs it. Parameters the objective asks for but `params` lacks come from the sampler.
   */
  async enqueueTrial(
    params: Record<string, ParamValue>,
    options: { userAttributes?: Record<string, JsonValue> } = {},
  ): Promise<void> {
    const template = {
      state: 'waiting' as const,
      systemAttributes: { [systemAttributeKeys.fixedParams]: { ...params } },
    };
    await this.storage.createTrial(
      this.id,
      options.userAttributes ? { ...template, userAttributes: options.userAttributes } : template,
    );
  }

  async setUserAttribute(key: string, value: JsonValue): Promise<void> {
    await this.storage.setStudyUserAttribute(this.id, key, value);
  }

  /** Starts a trial (a queued one first); the caller runs it and calls tell. Throws when the budget is spent. */
  async ask(options: { totalTrials?: number } = {}): Promise<Trial> {
    const trial = await this.askOrNull(options.totalTrials);
    if (trial === null)
      throw new Error(
        `study '${this.name}': no trial to start (the trial budget is spent or the sampler is exhausted)`,
      );
    return trial;
  }

  /**
   * Finishes a trial started by ask: a number completes it, or give a state. Returns the trial as
   * stored. A non-finite value fails the trial.
   */
  async tell(trial: Trial, result: TellResult): Promise<FrozenTrial> {
    if (trial.isFinished) throw new Error(`trial ${trial.number} has already been told`);
    let state: FinishedTrialState;
    let value: number | null = null;
    let error: string | null = null;
    if (typeof result === 'number') {
      state = 'complete';
      value = result;
    } else {
      state = result.state;
      if (result.state === 'complete') value = result.value;
      if (result.state === 'failed') error = result.error ?? null;
    }
    if (state === 'complete' && (typeof value !== 'number' || !Number.isFinite(value))) {
      state = 'failed';
      error = `the objective returned ${String(value)}, not a finite number`;
      value = null;
    }
    try {
      await trial.flush();
    } catch (writeError) {
      // The database stayed away for the whole retry time: the objective's result is not the
      // storage's to fail. Stop, naming the trial and its result, rather than record it as failed.
      if (writeError instanceof StorageUnavailableError) throw unrecorded(trial, state, value, writeError);
      state = 'failed';
      value = null;
      error = `a write to storage failed: ${errorText(writeError)}`;
    }
    if (state === 'pruned') value = lastIntermediate(trial.snapshot())?.value ?? null;
    trial.markFinished();
    this.heartbeat?.stop(trial.id);
    this.active.delete(trial.id);
    let recorded: boolean;
    let stored: FrozenTrial;
    try {
      recorded = await this.storage.finishTrial(trial.id, state, value, error);
      stored = await this.storage.getTrial(trial.id);
    } catch (finishError) {
      if (finishError instanceof StorageUnavailableError) throw unrecorded(trial, state, value, finishError);
      throw finishError;
    }
    if (!recorded) {
      console.warn(
        `tensile: trial ${trial.number} had already been marked ${stored.state} (its heartbeat lapsed); its ${state} result was not recorded`,
      );
    }
    if (this.sampler.afterTrial)
      this.sampler.afterTrial(await this.view(), stored, stored.state as FinishedTrialState, stored.value);
    return stored;
  }

  /**
   * Runs the objective on new trials until nTrials, timeout or totalTrials is reached (or the sampler
   * runs out). A trial whose objective throws is recorded as failed with the error and the study goes
   * on; throwing TrialPruned records it as pruned. Returns the trials this call ran.
   */
  async optimize(objective: Objective, options: OptimizeOptions = {}): Promise<FrozenTrial[]> {
    const { nTrials, timeout, totalTrials } = options;
    const concurrency = options.concurrency ?? 1;
    if (nTrials !== undefined && (!Number.isSafeInteger(nTrials) || nTrials < 0))
      throw new RangeError(`nTrials must be a non-negative integer, got ${nTrials}`);
    if (!Number.isSafeInteger(concurrency) || concurrency < 1)
      throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
    if (
      nTrials === undefined &&
      timeout === undefined &&
      totalTrials === undefined &&
      !this.sampler.isExhausted
    ) {
      throw new RangeError(
        'optimize needs nTrials, timeout or totalTrials (or a sampler that runs out, such as a grid)',
      );
    }
    const deadline = timeout === undefined ? Infinity : performance.now() + timeout * 1000;
    const finished: FrozenTrial[] = [];
    let started = 0;
    let stop = false;
    const lane = async () => {
      while (!stop) {
        if ((nTrials !== undefined && started >= nTrials) || performance.now() >= deadline) return;
        started++;
        const trial = await this.askOrNull(totalTrials);
        if (trial === null) {
          stop = true;
          return;
        }
        const stored = await this.runObjective(trial, objective);
        finished.push(stored);
        for (const callback of options.callbacks ?? []) await callback(this, stored);
      }
    };
    try {
      await Promise.all(Array.from({ length: concurrency }, lane));
    } finally {
      await this.closeHeartbeat();
    }
    return finished.sort((a, b) => a.number - b.number);
  }

  /** Fails trials of dead workers now (and enqueues their retries); returns them. Called by ask too. */
  async failStaleTrials(): Promise<FrozenTrial[]> {
    if (this.heartbeatSettings === null) return [];
    // After a database outage every running trial looks stale until its worker stamps it again.
    if (outageWithin(this.heartbeatSettings.graceSeconds)) return [];
    return this.storage.failStaleTrials(this.id, {
      graceSeconds: this.heartbeatSettings.graceSeconds,
      maxRetries: this.maxRetries,
    });
  }

  /** The trials as a table (one row per trial, one column per parameter). */
  async table(): Promise<TrialsTable> {
    return trialsTable(await this.trials());
  }

  async toCsv(): Promise<string> {
    return trialsToCsv(await this.trials());
  }

  async toJson(): Promise<string> {
    const record = await this.storage.getStudyById(this.id);
    return trialsToJson(record, await this.trials());
  }

  /** Stops the heartbeat thread (optimize does this itself; call it after ask/tell use). */
  async close(): Promise<void> {
    await this.closeHeartbeat();
  }

  private async closeHeartbeat(): Promise<void> {
    if (this.heartbeat !== null && this.active.size === 0) {
      const heartbeat = this.heartbeat;
      this.heartbeat = null;
      await heartbeat.close();
    }
  }

  private async askOrNull(totalTrials: number | undefined): Promise<Trial | null> {
    await this.failStaleTrials();
    let frozen = await this.storage.claimWaitingTrial(this.id, this.worker);
    if (frozen === null) {
      if (this.sampler.isExhausted?.(await this.view())) return null;
      frozen = await this.storage.createTrial(
        this.id,
        { state: 'running', worker: this.worker },
        totalTrials === undefined ? {} : { maxTrials: totalTrials },
      );
      if (frozen === null) return null;
    }
    let view = await this.view();
    let relativeSpace: SearchSpace;
    let relativeParams: Record<string, ParamValue>;
    try {
      const attributes = this.sampler.beforeTrial?.(view, frozen);
      if (attributes !== undefined && Object.keys(attributes).length > 0) {
        for (const [key, value] of Object.entries(attributes))
          await this.storage.setTrialSystemAttribute(frozen.id, key, value);
        frozen = await this.storage.getTrial(frozen.id);
        view = { ...view, trials: view.trials.map((t) => (t.id === frozen!.id ? frozen! : t)) };
      }
      relativeSpace = this.sampler.inferRelativeSearchSpace(view, frozen);
      relativeParams =
        Object.keys(relativeSpace).length > 0 ? this.sampler.sampleRelative(view, frozen, relativeSpace) : {};
      if (Object.keys(relativeParams).length > 0) {
        // Stored before the objective runs, so other workers' samplers see this point as pending.
        await this.storage.setTrialSystemAttribute(
          frozen.id,
          systemAttributeKeys.plannedParams,
          relativeParams,
        );
      }
      const phase =
        frozen.retryOf !== null
          ? 'retry'
          : systemAttributeKeys.fixedParams in frozen.systemAttributes
            ? 'enqueued'
            : this.sampler.phase?.(view, frozen, relativeSpace);
      if (phase !== undefined)
        await this.storage.setTrialSystemAttribute(frozen.id, systemAttributeKeys.samplerPhase, phase);
    } catch (error) {
      // A sampler failure must not leave a trial running forever.
      await this.storage.finishTrial(frozen.id, 'failed', null, `the sampler failed: ${errorText(error)}`);
      throw error;
    }
    if (this.heartbeatSettings !== null) {
      this.heartbeat ??= createHeartbeat(this.storage, this.heartbeatSettings);
      this.heartbeat.start(frozen.id);
    }
    const threadWriter = this.storage.synchronousWrites ? null : (this.heartbeat?.write ?? null);
    const trial = new Trial(frozen, {
      storage: this.storage,
      threadWriter,
      sampler: this.sampler,
      pruner: this.pruner,
      study: view,
      relativeSpace,
      relativeParams,
    });
    this.active.set(trial.id, trial);
    return trial;
  }

  private async runObjective(trial: Trial, objective: Objective): Promise<FrozenTrial> {
    let result: TellResult;
    try {
      result = await objective(trial);
    } catch (error) {
      result =
        error instanceof TrialPruned ? { state: 'pruned' } : { state: 'failed', error: errorText(error) };
    }
    return this.tell(trial, result);
  }
}
