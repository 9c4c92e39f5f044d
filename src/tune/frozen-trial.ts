/**
 * The records a study is made of: studies and frozen trials (a trial's complete state as read from
 * storage), with the states a trial passes through:
 *
 *   waiting ──claim──▶ running ──▶ complete | pruned | failed
 *                         ▲
 *   (created running) ────┘
 *
 * A finished trial (complete, pruned or failed) never changes again.
 */
import type { Distribution, JsonValue, ParamValue } from './distributions.js';

export type TrialState = 'waiting' | 'running' | 'complete' | 'pruned' | 'failed';
export type FinishedTrialState = 'complete' | 'pruned' | 'failed';
export type StudyDirection = 'minimize' | 'maximize';

export const trialStates: readonly TrialState[] = ['waiting', 'running', 'complete', 'pruned', 'failed'];

export function isFinished(state: TrialState): state is FinishedTrialState {
  return state === 'complete' || state === 'pruned' || state === 'failed';
}

export interface StudyRecord {
  /** Storage-wide identifier. */
  readonly id: number;
  readonly name: string;
  readonly direction: StudyDirection;
  readonly userAttributes: Readonly<Record<string, JsonValue>>;
  readonly systemAttributes: Readonly<Record<string, JsonValue>>;
  /** Milliseconds since 1970 (the storage's clock). */
  readonly createdAt: number;
}

/** A study with counts, for listings. */
export interface StudySummary extends StudyRecord {
  readonly trialCounts: Readonly<Record<TrialState, number>>;
  /** Best value among complete trials (null when none is complete). */
  readonly bestValue: number | null;
}

export interface FrozenTrial {
  /** Storage-wide identifier. */
  readonly id: number;
  readonly studyId: number;
  /** 0, 1, 2, ... within the study, in order of creation. */
  readonly number: number;
  readonly state: TrialState;
  /** The objective value (complete), the last reported value (pruned), or null. */
  readonly value: number | null;
  /** External parameter values by name. */
  readonly params: Readonly<Record<string, ParamValue>>;
  readonly distributions: Readonly<Record<string, Distribution>>;
  /** Values reported with trial.report(value, step), by step. */
  readonly intermediateValues: ReadonlyMap<number, number>;
  readonly userAttributes: Readonly<Record<string, JsonValue>>;
  readonly systemAttributes: Readonly<Record<string, JsonValue>>;
  /** The failing objective's error (message and stack) for failed trials, else null. */
  readonly error: string | null;
  /** Who ran it: "host:pid" (null for waiting trials). */
  readonly worker: string | null;
  /** The number of the failed trial this one repeats, or null. */
  readonly retryOf: number | null;
  /** Milliseconds since 1970 (the storage's clock); null until the trial runs / finishes. */
  readonly startedAt: number | null;
  readonly completedAt: number | null;
  readonly heartbeatAt: number | null;
}

/** System attribute names tensile itself uses (kept here so storages and samplers agree). */
export const systemAttributeKeys = {
  /** Parameter values fixed by enqueueTrial (or copied by a retry): Record<string, ParamValue>. */
  fixedParams: 'fixed_params',
  /** Values the sampler planned at the start of a running trial, for constant liars in other workers. */
  plannedParams: 'planned_params',
  /** Grid sampler: index of the grid point. */
  gridId: 'grid_id',
  /**
   * Where the trial's values came from: the sampler's phase ('startup: sobol', 'gp', 'startup: random',
   * 'tpe', 'random', ...; see Sampler.phase), 'enqueued' for enqueueTrial's values, 'retry' for a retry.
   */
  samplerPhase: 'sampler_phase',
} as const;

/** The last reported (step, value), or null. */
export function lastIntermediate(trial: FrozenTrial): { step: number; value: number } | null {
  let best: { step: number; value: number } | null = null;
  for (const [step, value] of trial.intermediateValues)
    if (best === null || step > best.step) best = { step, value };
  return best;
}

/** Milliseconds the trial ran (null while it runs). */
export function trialDuration(trial: FrozenTrial): number | null {
  return trial.startedAt !== null && trial.completedAt !== null ? trial.completedAt - trial.startedAt : null;
}

/** The planned (sampler) and chosen parameters of a running trial, as external values. */
export function pendingParams(trial: FrozenTrial): Record<string, ParamValue> {
  const planned = trial.systemAttributes[systemAttributeKeys.plannedParams];
  const result: Record<string, ParamValue> = {};
  if (planned !== null && typeof planned === 'object' && !Array.isArray(planned)) {
    for (const [name, value] of Object.entries(planned)) {
      if (value === null || typeof value !== 'object') result[name] = value;
    }
  }
  return { ...result, ...trial.params };
}

/** Whether `a` is a better objective value than `b` in this direction. */
export function isBetter(direction: StudyDirection, a: number, b: number): boolean {
  return direction === 'minimize' ? a < b : a > b;
}
