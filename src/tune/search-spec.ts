/**
 * Declarative search spaces (the `search:` section of study.yaml): each entry is a fixed value or a
 * distribution, optionally conditional on other entries.
 *
 *   lr:        { float: [1.0e-4, 1.0e-1], log: true }
 *   epochs:    { int: [2, 8] }
 *   dropout:   { float: [0, 0.5], step: 0.05 }
 *   optimizer: { categorical: [sgd, adam, adamw] }
 *   momentum:  { float: [0.5, 0.99], when: { optimizer: sgd } }
 *   batchSize: 64
 *
 * `when` maps earlier entries to a required value or list of values; an entry whose condition fails
 * is not suggested at all (define-by-run: the trial simply never asks for it).
 */
import {
  categoricalDistribution,
  describeDistribution,
  floatDistribution,
  intDistribution,
  type Distribution,
  type ParamValue,
} from './distributions.js';
import type { Trial } from './trial.js';

export interface SearchEntry {
  name: string;
  /** A distribution to suggest from, or a fixed value. */
  distribution: Distribution | null;
  value: ParamValue;
  /** Entry name → accepted values. */
  when: Record<string, ParamValue[]>;
}

export type SearchSpec = SearchEntry[];

function isScalar(value: unknown): value is ParamValue {
  return value === null || ['string', 'number', 'boolean'].includes(typeof value);
}

function bounds(name: string, kind: string, value: unknown): [number, number] {
  if (!Array.isArray(value) || value.length !== 2 || !value.every((v) => typeof v === 'number')) {
    throw new Error(`search '${name}': ${kind} needs [low, high], got ${JSON.stringify(value)}`);
  }
  return [value[0] as number, value[1] as number];
}

/** Parses and validates the `search:` mapping. Entries keep their order; conditions may only refer to earlier entries. */
export function parseSearchSpec(input: unknown): SearchSpec {
  if (input === null || typeof input !== 'object' || Array.isArray(input))
    throw new Error('search: expected a mapping of parameter names to values or distributions');
  const spec: SearchSpec = [];
  for (const [name, raw] of Object.entries(input as Record<string, unknown>)) {
    if (isScalar(raw)) {
      spec.push({ name, distribution: null, value: raw, when: {} });
      continue;
    }
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
      throw new Error(`search '${name}': expected a value or a mapping like { float: [low, high] }`);
    const entry = raw as Record<string, unknown>;
    const known = ['float', 'int', 'categorical', 'log', 'step', 'when'];
    for (const key of Object.keys(entry))
      if (!known.includes(key))
        throw new Error(`search '${name}': unknown key '${key}' (known: ${known.join(', ')})`);
    const kinds = ['float', 'int', 'categorical'].filter((k) => k in entry);
    if (kinds.length !== 1)
      throw new Error(`search '${name}': give exactly one of float, int or categorical`);
    const log = entry.log === true;
    const step = typeof entry.step === 'number' ? entry.step : undefined;
    let distribution: Distribution;
    try {
      if (kinds[0] === 'float')
        distribution = floatDistribution(...bounds(name, 'float', entry.float), { log, step: step ?? null });
      else if (kinds[0] === 'int')
        distribution = intDistribution(
          ...bounds(name, 'int', entry.int),
          step === undefined ? { log } : { log, step },
        );
      else distribution = categoricalDistribution(entry.categorical as ParamValue[]);
    } catch (error) {
      throw new Error(`search '${name}': ${error instanceof Error ? error.message : String(error)}`);
    }
    const when: Record<string, ParamValue[]> = {};
    if (entry.when !== undefined) {
      if (entry.when === null || typeof entry.when !== 'object' || Array.isArray(entry.when))
        throw new Error(`search '${name}': when must map parameter names to values`);
      for (const [other, accepted] of Object.entries(entry.when as Record<string, unknown>)) {
        if (!spec.some((e) => e.name === other))
          throw new Error(
            `search '${name}': its condition refers to '${other}', which must be listed before it`,
          );
        const values = Array.isArray(accepted) ? accepted : [accepted];
        if (!values.every(isScalar))
          throw new Error(`search '${name}': condition values must be plain values`);
        when[other] = values as ParamValue[];
      }
    }
    spec.push({ name, distribution, value: null, when });
  }
  return spec;
}

/** Suggests (or fixes) every entry whose condition holds, in order; returns the values by name. */
export function suggestFromSpec(trial: Trial, spec: SearchSpec): Record<string, ParamValue> {
  const values: Record<string, ParamValue> = {};
  for (const entry of spec) {
    const active = Object.entries(entry.when).every(
      ([other, accepted]) => other in values && accepted.includes(values[other]!),
    );
    if (!active) continue;
    values[entry.name] =
      entry.distribution === null ? entry.value : trial.suggest(entry.name, entry.distribution);
  }
  return values;
}

/** The values a grid search tries for each distribution in the spec (every grid point of stepped and integer ranges, every choice). */
export function gridFromSpec(spec: SearchSpec, maxPointsPerParameter = 64): Record<string, ParamValue[]> {
  const grid: Record<string, ParamValue[]> = {};
  for (const { name, distribution } of spec) {
    if (distribution === null) continue;
    if (distribution.kind === 'categorical') {
      grid[name] = [...distribution.choices];
      continue;
    }
    const step = distribution.kind === 'int' ? distribution.step : distribution.step;
    if (step === null || distribution.log) {
      throw new Error(
        `grid search needs a finite list for '${name}' (${describeDistribution(distribution)}): give it a step, make it categorical, or list values under sampler.grid`,
      );
    }
    const values: number[] = [];
    for (let k = 0; distribution.low + k * step <= distribution.high + 1e-9 * step; k++)
      values.push(Number((distribution.low + k * step).toPrecision(14)));
    if (values.length > maxPointsPerParameter)
      throw new Error(
        `grid search: '${name}' has ${values.length} grid values; list fewer under sampler.grid`,
      );
    grid[name] = values;
  }
  return grid;
}
