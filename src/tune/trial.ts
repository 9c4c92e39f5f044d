/**
 * A running trial, as the objective sees it (define-by-run, as in Optuna): the objective asks for each
 * hyperparameter where it needs it, so conditional parameters are plain `if`s.
 *
 * Suggest, report and shouldPrune are synchronous, so they work inside tensile's synchronous training
 * loop; writes to storage are issued at once and awaited when the trial ends (study.tell), and a
 * failed write fails the trial.
 *
 * @example
 * const lr = trial.suggestFloat('lr', 1e-5, 1e-1, { log: true });
 * const optimizer = trial.suggestCategorical('optimizer', ['sgd', 'adam']);
 * const momentum = optimizer === 'sgd' ? trial.suggestFloat('momentum', 0.5, 0.99) : 0;
 */
import {
  categoricalDistribution,
  compatibleDistributions,
  containsValue,
  describeDistribution,
  floatDistribution,
  intDistribution,
  isSingleValue,
  sameDistribution,
  toExternal,
  type Distribution,
  type JsonValue,
  type ParamValue,
  type SearchSpace,
} from './distributions.js';
import { systemAttributeKeys, type FrozenTrial } from './frozen-trial.js';
import { applyTrialWrite, type TrialWrite } from './heartbeat.js';
import type { Pruner } from './pruners/pruner.js';
import type { Sampler, StudyView } from './samplers/sampler.js';
import type { Storage } from './storage/storage.js';

/** What a trial needs from its study (built by Study.ask). */
export interface TrialContext {
  storage: Storage;
  /** Performs writes off the main thread (the trial thread, for storages without synchronous writes). */
  threadWriter: ((write: TrialWrite) => Promise<void>) | null;
  sampler: Sampler;
  pruner: Pruner;
  /** The study snapshot at the trial's start. */
  study: StudyView;
  relativeSpace: SearchSpace;
  relativeParams: Record<string, ParamValue>;
}

export class Trial {
  readonly id: number;
  readonly number: number;
  private readonly start: FrozenTrial;
  private readonly context: TrialContext;
  private readonly params: Record<string, ParamValue>;
  private readonly distributions: Record<string, Distribution>;
  private readonly intermediateValues: Map<number, number>;
  private readonly userAttributes: Record<string, JsonValue>;
  private readonly fixedParams: Record<string, JsonValue>;
  private writes: Promise<void> = Promise.resolve();
  private writeError: unknown = null;
  private finished = false;

  /** Use study.ask() (or study.optimize) to get a trial. */
  constructor(start: FrozenTrial, context: TrialContext) {
    this.id = start.id;
    this.number = start.number;
    this.start = start;
    this.context = context;
    this.params = { ...start.params };
    this.distributions = { ...start.distributions };
    this.intermediateValues = new Map(start.intermediateValues);
    this.userAttributes = { ...start.userAttributes };
    const fixed = start.systemAttributes[systemAttributeKeys.fixedParams];
    this.fixedParams = fixed !== null && typeof fixed === 'object' && !Array.isArray(fixed) ? fixed : {};
  }

  /**
   * A float in [low, high]; `log` samples in log space (low > 0), `step` restricts values to
   * low + k·step.
   */
  suggestFloat(
    name: string,
    low: number,
    high: number,
    options: { log?: boolean; step?: number | null } = {},
  ): number {
    return this.suggest(name, floatDistribution(low, high, options)) as number;
  }

  /** An integer in [low, high] (both included), on low + k·step; `log` samples in log space. */
  suggestInt(
    name: string,
    low: number,
    high: number,
    options: { log?: boolean; step?: number } = {},
  ): number {
    return this.suggest(name, intDistribution(low, high, options)) as number;
  }

  /** One of `choices` (compared with ===). */
  suggestCategorical<T extends ParamValue>(name: string, choices: readonly T[]): T {
    return this.suggest(name, categoricalDistribution(choices)) as T;
  }

  /**
   * A value for `name` from `distribution`. Asking again for the same name returns the same value.
   * The value comes from, in order: parameters fixed by enqueueTrial (or a retry), the sampler's
   * relative plan, or the sampler's independent sampling.
   */
  suggest(name: string, distribution: Distribution): ParamValue {
    this.checkActive(`suggest '${name}'`);
    if (name in this.params) {
      const previous = this.distributions[name]!;
      if (!compatibleDistributions(previous, distribution)) {
        throw new TypeError(
          `trial ${this.number}: '${name}' was suggested as ${describeDistribution(previous)} and cannot be ${describeDistribution(distribution)}`,
        );
      }
      return this.params[name]!;
    }
    for (const other of this.context.study.trials) {
      const existing = other.distributions[name];
      if (existing !== undefined && !compatibleDistributions(existing, distribution)) {
        throw new TypeError(
          `parameter '${name}' is ${describeDistribution(existing)} in trial ${other.number} and cannot become ${describeDistribution(distribution)}`,
        );
      }
    }
    let value: ParamValue;
    if (name in this.fixedParams) {
      const fixed = this.fixedParams[name] as ParamValue;
      if (!containsValue(distribution, fixed)) {
        throw new RangeError(
          `trial ${this.number}: the enqueued value ${JSON.stringify(fixed)} of '${name}' is not in ${describeDistribution(distribution)}`,
        );
      }
      value = fixed;
    } else if (
      name in this.context.relativeParams &&
      sameDistribution(this.context.relativeSpace[name]!, distribution)
    ) {
      value = this.context.relativeParams[name]!;
    } else if (isSingleValue(distribution)) {
      value = toExternal(distribution, distribution.kind === 'categorical' ? 0 : distribution.low);
    } else {
      value = this.context.sampler.sampleIndependent(this.context.study, this.snapshot(), name, distribution);
    }
    this.params[name] = value;
    this.distributions[name] = distribution;
    this.write({ kind: 'param', trialId: this.id, name, distribution, value });
    return value;
  }

  /**
   * Reports an intermediate objective value (say, validation accuracy after an epoch) at `step`
   * (a non-negative integer, usually the epoch), for pruners and for the record.
   */
  report(value: number, step: number): void {
    this.checkActive('report');
    if (typeof value !== 'number' || !Number.isFinite(value))
      throw new RangeError(`trial ${this.number}: report needs a finite value, got ${String(value)}`);
    if (!Number.isSafeInteger(step) || step < 0)
      throw new RangeError(`trial ${this.number}: report needs a non-negative integer step, got ${step}`);
    this.intermediateValues.set(step, value);
    this.write({ kind: 'intermediate', trialId: this.id, step, value });
  }

  /** Whether the pruner judges this trial unpromising from its reports so far. */
  shouldPrune(): boolean {
    this.checkActive('shouldPrune');
    const current = this.snapshot();
    const trials = this.context.study.trials.map((t) => (t.id === this.id ? current : t));
    return this.context.pruner.prune({ ...this.context.study, trials }, current);
  }

  /** Stores a JSON value with the trial (shown by `tensile study show`, exported with the trials). */
  setUserAttribute(key: string, value: JsonValue): void {
    this.checkActive('setUserAttribute');
    this.userAttributes[key] = value;
    this.write({ kind: 'userAttribute', trialId: this.id, key, value });
  }

  /** The parameters chosen so far. */
  get parameters(): Readonly<Record<string, ParamValue>> {
    return { ...this.params };
  }

  /** The trial as it stands now (running), in the form samplers and pruners read. */
  snapshot(): FrozenTrial {
    return {
      ...this.start,
      state: 'running',
      params: { ...this.params },
      distributions: { ...this.distributions },
      intermediateValues: new Map(this.intermediateValues),
      userAttributes: { ...this.userAttributes },
    };
  }

  /** Waits for every write issued so far; throws the first failed write's error. Used by study.tell. */
  async flush(): Promise<void> {
    await this.writes;
    if (this.writeError !== null) throw this.writeError;
  }

  /** Called by the study once the trial is told; later suggest/report calls throw. */
  markFinished(): void {
    this.finished = true;
  }

  get isFinished(): boolean {
    return this.finished;
  }

  private checkActive(what: string): void {
    if (this.finished) throw new Error(`trial ${this.number} has finished; cannot ${what}`);
  }

  /**
   * Issues a write at once where that is possible: storages with synchronous writes (SQLite, memory)
   * take effect inside the call; network storages get it through the trial thread, which runs while
   * a synchronous training loop blocks this one. Without a thread, writes queue on the event loop and
   * reach the database when the objective yields or returns.
   */
  private write(write: TrialWrite): void {
    const record = (error: unknown) => {
      this.writeError ??= error;
    };
    const { storage, threadWriter } = this.context;
    if (storage.synchronousWrites || threadWriter !== null) {
      const outcome = (
        storage.synchronousWrites ? applyTrialWrite(storage, write) : threadWriter!(write)
      ).catch(record);
      this.writes = Promise.all([this.writes, outcome]).then(() => undefined);
    } else {
      this.writes = this.writes.then(() => applyTrialWrite(storage, write)).catch(record);
    }
  }
}
