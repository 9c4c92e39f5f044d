/**
 * Run tracking: what a run is, and the contract every run store (memory, SQLite, PostgreSQL)
 * implements. One conformance suite (test/contract/run-store.ts, run by test/track-store.test.ts)
 * runs the same tests against all three.
 *
 * A run is one training (a `fit`, a fine-tune, a tuning trial, or the trainings behind an explain
 * topic): its configuration, metric points, a summary and artifacts (weights files, figures).
 *
 * Contract:
 * - Run ids and point ids increase: a reader that remembers the last point id it saw asks for
 *   `afterPointId` and gets exactly the points written since, in order. The dashboard's live curves
 *   rest on this.
 * - Every method is atomic; writes by a store with `synchronousWrites` have taken effect when the
 *   call returns (the promise only carries the outcome), so a synchronous training loop's points are
 *   visible to other processes while the loop still runs.
 * - A finished run (complete, failed, stopped) keeps its state: finishing it again changes nothing and
 *   returns false. Metrics and artifacts may still be added (an explain topic attaches its figures
 *   after the trainings end).
 * - Metric values that are not finite (a diverging loss) are stored as null: SQLite has no NaN and
 *   JSON has neither NaN nor Infinity, so null is the one spelling every layer understands.
 * - Times are milliseconds since 1970 (the database server's clock for PostgreSQL).
 * - Returned objects are snapshots.
 */

import type { JsonValue } from '../tune/distributions.js';

/** JSON-compatible values (the tuning code's type), for configurations and summaries. */
export type { JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export type RunState = 'running' | 'complete' | 'failed' | 'stopped';
export const runStates: readonly RunState[] = ['running', 'complete', 'failed', 'stopped'];

/** What kind of training a run is; free text, these are the ones tensile writes. */
export type RunKind = 'fit' | 'finetune' | 'trial' | 'explain' | (string & {});

export interface NewRun {
  name: string;
  kind: RunKind;
  config?: JsonObject;
  /** The run this one belongs to (an explain topic's trainings belong to the topic's run). */
  parentId?: number | null;
  /** Study name and trial number, for tuning trials. */
  study?: string | null;
  trialNumber?: number | null;
  /** Who runs it ("host:pid"); default this process. */
  worker?: string;
}

export interface RunRecord {
  readonly id: number;
  readonly name: string;
  readonly kind: RunKind;
  readonly state: RunState;
  readonly parentId: number | null;
  readonly study: string | null;
  readonly trialNumber: number | null;
  readonly config: JsonObject;
  /** Final numbers (last epoch's metrics, test accuracy, an explain topic's results, ...). */
  readonly summary: JsonObject;
  readonly error: string | null;
  readonly worker: string | null;
  readonly startedAt: number;
  /** Time of the latest write to the run or its metrics: a running run that stops updating has died. */
  readonly updatedAt: number;
  readonly completedAt: number | null;
  /** Number of metric points stored. */
  readonly pointCount: number;
}

/** One metric value to store. */
export interface MetricInput {
  /** Metric name, e.g. 'loss', 'validationAccuracy', 'batchLoss'. */
  name: string;
  /** Integer step (the epoch for per-epoch metrics, the global batch for per-batch ones). */
  step: number;
  /** Position on a common x axis measured in epochs (1 = end of the first epoch), so per-batch and per-epoch points share one chart. */
  x: number;
  value: number;
  /** Default: now. */
  time?: number;
}

/** The points of one metric, as columns (compact in JSON, direct to plot). */
export interface MetricSeries {
  step: number[];
  x: number[];
  /** null where the value was not finite. */
  value: (number | null)[];
  time: number[];
}

export interface MetricsQuery {
  /** Only points with a larger id (for incremental reads). */
  afterPointId?: number;
  /** Only these metrics. */
  names?: readonly string[];
}

export interface RunMetrics {
  runId: number;
  /** Largest point id returned (or afterPointId when nothing is new): pass it back as afterPointId. */
  lastPointId: number;
  series: Record<string, MetricSeries>;
}

export interface NewArtifact {
  /** Unique within the run; adding a name again replaces the artifact. */
  name: string;
  /** 'figure', 'weights', 'file', ... */
  kind: string;
  mediaType: string;
  /** A file the artifact lives in (weights files stay on disk). */
  path?: string | null;
  /** Content kept in the store itself (small things: an SVG figure). */
  content?: Uint8Array | string | null;
}

export interface ArtifactInfo {
  readonly id: number;
  readonly runId: number;
  readonly name: string;
  readonly kind: string;
  readonly mediaType: string;
  readonly path: string | null;
  /** Bytes of stored content (0 when only a path is kept). */
  readonly size: number;
  readonly createdAt: number;
}

export interface Artifact extends ArtifactInfo {
  readonly content: Uint8Array | null;
}

export interface RunFilter {
  kind?: string;
  state?: RunState;
  name?: string;
  /** Runs of this parent; null for top-level runs only. */
  parentId?: number | null;
  study?: string;
  /** Newest first, at most this many. */
  limit?: number;
}

/** Raised when a run or artifact id is unknown. */
export class RunNotFoundError extends Error {
  constructor(what: string) {
    super(`${what} not found in this run store`);
    this.name = 'RunNotFoundError';
  }
}

export interface RunStore {
  /** URL another process can open with openRunStore, or null for in-process stores. */
  readonly url: string | null;
  /** True when writes have taken effect when the call returns (memory, SQLite). */
  readonly synchronousWrites: boolean;

  createRun(run: NewRun): Promise<RunRecord>;
  /** Merges keys into the run's configuration. */
  updateConfig(runId: number, config: JsonObject): Promise<void>;
  /** Merges keys into the run's summary. */
  updateSummary(runId: number, summary: JsonObject): Promise<void>;
  logMetrics(runId: number, points: readonly MetricInput[]): Promise<void>;
  /** Ends a running run; false (changing nothing) when it had already finished. */
  finishRun(runId: number, state: Exclude<RunState, 'running'>, error?: string | null): Promise<boolean>;
  addArtifact(runId: number, artifact: NewArtifact): Promise<ArtifactInfo>;

  getRun(runId: number): Promise<RunRecord>;
  /** Runs, newest first. */
  listRuns(filter?: RunFilter): Promise<RunRecord[]>;
  getMetrics(runId: number, query?: MetricsQuery): Promise<RunMetrics>;
  listArtifacts(runId: number): Promise<ArtifactInfo[]>;
  getArtifact(artifactId: number): Promise<Artifact>;
  /** Deletes a run with its metrics, artifacts and child runs. */
  deleteRun(runId: number): Promise<void>;
  /**
   * A value that changes whenever anything in the store changes (cheap: polled by the dashboard's
   * live updates every half second).
   */
  changeToken(): Promise<string>;
  close(): Promise<void>;
}

/** Stored spelling of a metric value: finite numbers as they are, anything else null. */
export function storedValue(value: number): number | null {
  return Number.isFinite(value) ? value : null;
}

export function emptySeries(): MetricSeries {
  return { step: [], x: [], value: [], time: [] };
}

export function checkRunName(name: string): void {
  if (typeof name !== 'string' || name.length === 0 || name.length > 500) {
    throw new RangeError(`run name must be 1 to 500 characters, got ${JSON.stringify(name)}`);
  }
}

export function checkMetric(point: MetricInput): void {
  if (typeof point.name !== 'string' || point.name.length === 0) {
    throw new RangeError(`metric name must be a non-empty string, got ${JSON.stringify(point.name)}`);
  }
  if (!Number.isSafeInteger(point.step)) {
    throw new RangeError(`metric '${point.name}': step must be an integer, got ${point.step}`);
  }
  if (!Number.isFinite(point.x))
    throw new RangeError(`metric '${point.name}': x must be finite, got ${point.x}`);
  if (typeof point.value !== 'number') {
    throw new TypeError(`metric '${point.name}': value must be a number, got ${typeof point.value}`);
  }
}

export function artifactBytes(content: Uint8Array | string | null | undefined): Uint8Array | null {
  if (content === null || content === undefined) return null;
  return typeof content === 'string' ? new TextEncoder().encode(content) : content;
}
