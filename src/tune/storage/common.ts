/** Rules shared by the storages, so that the three implementations cannot drift apart. */
import {
  compatibleDistributions,
  containsValue,
  describeDistribution,
  distributionFromJson,
  toExternal,
  type Distribution,
  type JsonValue,
  type ParamValue,
} from '../distributions.js';
import { systemAttributeKeys, type FrozenTrial, type TrialState } from '../frozen-trial.js';
import type { AttributeRow, ParamRow, TrialRow, ValueRow } from './schema.js';
import type { TrialTemplate } from './storage.js';

/** How many times the chain of retries leading to `trial` has already repeated the original. */
export function retryDepth(
  trial: { retryOf: number | null },
  byNumber: ReadonlyMap<number, { retryOf: number | null }>,
): number {
  let depth = 0;
  let current = trial;
  while (current.retryOf !== null) {
    depth++;
    const previous = byNumber.get(current.retryOf);
    if (previous === undefined) break;
    current = previous;
  }
  return depth;
}

/** The waiting trial that repeats a failed one: its parameters fixed, its number linked back. */
export function retryTemplate(failed: FrozenTrial): TrialTemplate {
  return {
    state: 'waiting',
    systemAttributes: { [systemAttributeKeys.fixedParams]: { ...failed.params } },
    userAttributes: { ...failed.userAttributes },
    retryOf: failed.number,
  };
}

/** Throws unless value belongs to distribution. */
export function checkParamValue(name: string, distribution: Distribution, value: ParamValue): void {
  if (!containsValue(distribution, value)) {
    throw new RangeError(
      `parameter '${name}': ${JSON.stringify(value)} is not in ${describeDistribution(distribution)}`,
    );
  }
}

/** Throws when the study already uses `name` with a distribution of another kind. */
export function checkCompatible(
  name: string,
  distribution: Distribution,
  existing: Distribution | undefined,
): void {
  if (existing !== undefined && !compatibleDistributions(existing, distribution)) {
    throw new TypeError(
      `parameter '${name}' is ${describeDistribution(existing)} elsewhere in this study and cannot become ${describeDistribution(distribution)}`,
    );
  }
}

/** Parses a JSON column, keeping objects only. */
export function parseObject(text: string | null | undefined): Record<string, JsonValue> {
  if (text === null || text === undefined || text === '') return {};
  const value = JSON.parse(text) as JsonValue;
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? value : {};
}

export function checkStudyName(name: string): void {
  if (typeof name !== 'string' || name.length === 0 || name.length > 512)
    throw new RangeError(`study name must be a non-empty string of at most 512 characters`);
}

export function checkFiniteValue(what: string, value: number): void {
  if (typeof value !== 'number' || !Number.isFinite(value))
    throw new RangeError(`${what} must be a finite number, got ${String(value)}`);
}

export function checkStep(step: number): void {
  if (!Number.isSafeInteger(step) || step < 0)
    throw new RangeError(`step must be a non-negative integer, got ${step}`);
}

/** Builds frozen trials from the rows of the SQL storages (rows of any order; result by number). */
export function assembleTrials(
  trials: readonly TrialRow[],
  params: readonly ParamRow[],
  values: readonly ValueRow[],
  attributes: readonly AttributeRow[],
): FrozenTrial[] {
  interface Parts {
    params: Record<string, ParamValue>;
    distributions: Record<string, Distribution>;
    intermediateValues: Map<number, number>;
    userAttributes: Record<string, JsonValue>;
    systemAttributes: Record<string, JsonValue>;
  }
  const parts = new Map<number, Parts>();
  for (const row of trials)
    parts.set(Number(row.trial_id), {
      params: {},
      distributions: {},
      intermediateValues: new Map(),
      userAttributes: {},
      systemAttributes: {},
    });
  for (const row of params) {
    const part = parts.get(Number(row.trial_id));
    if (part === undefined) continue;
    const distribution = distributionFromJson(JSON.parse(row.distribution));
    part.distributions[row.name] = distribution;
    part.params[row.name] = toExternal(distribution, Number(row.value));
  }
  for (const row of values)
    parts.get(Number(row.trial_id))?.intermediateValues.set(Number(row.step), Number(row.value));
  for (const row of attributes) {
    const part = parts.get(Number(row.trial_id));
    if (part === undefined) continue;
    (row.kind === 'user' ? part.userAttributes : part.systemAttributes)[row.key] = JSON.parse(
      row.value,
    ) as JsonValue;
  }
  const nullable = (value: number | string | null) => (value === null ? null : Number(value));
  return trials
    .map((row) => ({
      id: Number(row.trial_id),
      studyId: Number(row.study_id),
      number: Number(row.number),
      state: row.state as TrialState,
      value: nullable(row.value),
      error: row.error,
      worker: row.worker,
      retryOf: nullable(row.retry_of),
      startedAt: nullable(row.started_at),
      completedAt: nullable(row.completed_at),
      heartbeatAt: nullable(row.heartbeat_at),
      ...parts.get(Number(row.trial_id))!,
    }))
    .sort((a, b) => a.number - b.number);
}

/** Groups attribute rows (study or trial) into user and system records. */
export function splitAttributes(rows: readonly { kind: string; key: string; value: string }[]): {
  user: Record<string, JsonValue>;
  system: Record<string, JsonValue>;
} {
  const user: Record<string, JsonValue> = {};
  const system: Record<string, JsonValue> = {};
  for (const row of rows) (row.kind === 'user' ? user : system)[row.key] = JSON.parse(row.value) as JsonValue;
  return { user, system };
}

/** The message a failed stale trial carries. */
export function staleTrialError(worker: string | null, graceSeconds: number): string {
  return `worker ${worker ?? '?'} stopped sending heartbeats (none for ${graceSeconds} s)`;
}
