/**
 * The storage contract every study storage implements (memory, SQLite, PostgreSQL). One conformance
 * suite (test/contract/study-store.ts, run by test/tune-storage.test.ts) runs the same tests against
 * all of them.
 *
 * Contract:
 * - Every method is atomic: a concurrent reader sees a call's effect completely or not at all, and a
 *   storage shared by several processes (SQLite file, PostgreSQL) keeps these guarantees across them.
 * - Trial numbers in a study are 0, 1, 2, ... without gaps or duplicates, however many workers create
 *   trials at once.
 * - `claimWaitingTrial` hands each waiting trial to exactly one caller.
 * - A finished trial (complete, pruned, failed) never changes: `finishTrial` on it returns false, and
 *   setting its parameters, intermediate values or attributes throws `TrialFinishedError`.
 *   Everything acknowledged (a resolved promise) is durable: it survives the process being killed.
 * - `failStaleTrials` turns running trials whose heartbeat is older than the grace period into failed
 *   ones, each exactly once, and (when asked) enqueues one waiting retry per failed trial, in the same
 *   atomic step, so two workers never retry the same trial twice.
 * - Times are milliseconds since 1970 on the storage's own clock (the database server's for
 *   PostgreSQL), so heartbeats from different machines are compared on one clock.
 * - Returned objects are snapshots: later changes in the storage do not alter them.
 */
import type { Distribution, JsonValue, ParamValue } from '../distributions.js';
import type {
  FinishedTrialState,
  FrozenTrial,
  StudyDirection,
  StudyRecord,
  StudySummary,
  TrialState,
} from '../frozen-trial.js';

/** What a new trial starts with. */
export interface TrialTemplate {
  /** 'running' (the caller runs it now; default) or 'waiting' (queued for any worker). */
  state?: 'running' | 'waiting';
  /** Parameters already chosen, by name (internal values with their distributions). */
  params?: Record<string, { distribution: Distribution; value: ParamValue }>;
  userAttributes?: Record<string, JsonValue>;
  systemAttributes?: Record<string, JsonValue>;
  /** For running trials: who runs it ("host:pid"). */
  worker?: string;
  /** Number of the failed trial this one repeats. */
  retryOf?: number;
}

export interface CreateTrialOptions {
  /**
   * Study-wide budget: create the trial only while the study holds fewer than this many trials,
   * counting every trial except failed ones that a retry replaced. Checked atomically with the
   * insertion; `createTrial` returns null when the budget is spent.
   */
  maxTrials?: number;
}

export interface StaleTrialOptions {
  /** Seconds since the last heartbeat after which a running trial counts as dead. */
  graceSeconds: number;
  /** Enqueue a waiting copy of each failed trial (same parameters) while it has been retried fewer than this many times (default 0). */
  maxRetries?: number;
}

/** Raised when a write targets a trial that has already finished. */
export class TrialFinishedError extends Error {
  constructor(trialId: number, state: TrialState) {
    super(`trial ${trialId} has already finished (${state}); finished trials never change`);
    this.name = 'TrialFinishedError';
  }
}

/** Raised by createStudy when the name is taken. */
export class DuplicateStudyError extends Error {
  constructor(name: string) {
    super(`a study named '${name}' already exists in this storage`);
    this.name = 'DuplicateStudyError';
  }
}

/** Raised when a study or trial id is unknown. */
export class NotFoundError extends Error {
  constructor(what: string) {
    super(`${what} not found in this storage`);
    this.name = 'NotFoundError';
  }
}

export interface Storage {
  /**
   * A URL another process or thread can open with `openStorage` to reach the same data
   * ("sqlite:/abs/path.db", "postgres://..."), or null for in-process storages.
   */
  readonly url: string | null;
  /**
   * True when every write has taken effect by the time the call returns (memory, SQLite: the promise
   * only carries the outcome). Trials then issue writes at once instead of chaining them, so values
   * reported from inside a synchronous training loop reach other workers while the loop still runs.
   */
  readonly synchronousWrites: boolean;

  /** Creates a study; throws DuplicateStudyError if the name is taken. */
  createStudy(name: string, direction: StudyDirection): Promise<StudyRecord>;
  /** The study with this name, or null. */
  getStudy(name: string): Promise<StudyRecord | null>;
  getStudyById(studyId: number): Promise<StudyRecord>;
  listStudies(): Promise<StudySummary[]>;
  /** Deletes a study and all its trials. */
  deleteStudy(studyId: number): Promise<void>;
  setStudyUserAttribute(studyId: number, key: string, value: JsonValue): Promise<void>;
  setStudySystemAttribute(studyId: number, key: string, value: JsonValue): Promise<void>;

  /** Creates a trial with the next number; null when options.maxTrials is reached. */
  createTrial(
    studyId: number,
    template?: TrialTemplate,
    options?: CreateTrialOptions,
  ): Promise<FrozenTrial | null>;
  /** Atomically moves the waiting trial with the lowest number to running and returns it (null when none waits). */
  claimWaitingTrial(studyId: number, worker: string): Promise<FrozenTrial | null>;
  /**
   * Records a parameter of a running trial (the external value; throws if it is not in the distribution).
   * Setting a name twice keeps the first value; a distribution of another kind than this name has
   * elsewhere in the study throws.
   */
  setTrialParam(trialId: number, name: string, distribution: Distribution, value: ParamValue): Promise<void>;
  /** Records a reported value; a step reported twice keeps the latest value. */
  setTrialIntermediateValue(trialId: number, step: number, value: number): Promise<void>;
  setTrialUserAttribute(trialId: number, key: string, value: JsonValue): Promise<void>;
  setTrialSystemAttribute(trialId: number, key: string, value: JsonValue): Promise<void>;
  /**
   * Finishes a running trial. Returns false (changing nothing) when the trial had already finished,
   * for example because a heartbeat check failed it while its worker was stalled.
   */
  finishTrial(
    trialId: number,
    state: FinishedTrialState,
    value: number | null,
    error?: string | null,
  ): Promise<boolean>;
  /** Marks a running trial as alive now. */
  recordHeartbeat(trialId: number): Promise<void>;
  /** See the contract above. Returns the trials it failed (in their failed state). */
  failStaleTrials(studyId: number, options: StaleTrialOptions): Promise<FrozenTrial[]>;

  getTrial(trialId: number): Promise<FrozenTrial>;
  /** Trials of the study ordered by number, optionally only those in the given states. */
  getAllTrials(studyId: number, states?: readonly TrialState[]): Promise<FrozenTrial[]>;

  /** Releases connections and file handles; the storage is unusable afterwards. */
  close(): Promise<void>;
}
