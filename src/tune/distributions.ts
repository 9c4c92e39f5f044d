/**
 * Parameter distributions: the domain of one hyperparameter (a float or integer range, linear or
 * logarithmic, optionally on a step grid, or a list of categorical choices).
 *
 * Every parameter has an external value (what the objective sees: a number, string, boolean or null)
 * and an internal value (a number: the value itself for numeric ranges, the index of the choice for
 * categorical ones). Storages keep internal values with the distribution as JSON, as Optuna does, so a
 * trial read back from a database has its exact values and domain.
 *
 * Samplers that work in the unit cube (Sobol, the Gaussian process) use `toUnit` / `fromUnit`, which
 * map a range to [0, 1] in log space when the range is logarithmic and put each grid point of a stepped
 * range at the centre of its own equal-width cell, so that fromUnit(toUnit(v)) = v.
 */

/** The value of a parameter as the objective sees it. */
export type ParamValue = number | string | boolean | null;

/** JSON-compatible values (attributes, exported tables). */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface FloatDistribution {
  readonly kind: 'float';
  readonly low: number;
  readonly high: number;
  /** Sample uniformly in log space (low must be positive). */
  readonly log: boolean;
  /** Values lie on low + k·step (null: continuous). Not allowed together with log. */
  readonly step: number | null;
}

export interface IntDistribution {
  readonly kind: 'int';
  readonly low: number;
  readonly high: number;
  /** Sample uniformly in log space (low must be at least 1, step must be 1). */
  readonly log: boolean;
  readonly step: number;
}

export interface CategoricalDistribution {
  readonly kind: 'categorical';
  readonly choices: readonly ParamValue[];
}

export type Distribution = FloatDistribution | IntDistribution | CategoricalDistribution;

/** Named distributions: the search space of a sampler (keys in a stable, sorted order). */
export type SearchSpace = Record<string, Distribution>;

function checkFinite(what: string, value: number): void {
  if (typeof value !== 'number' || !Number.isFinite(value))
    throw new RangeError(`${what} must be a finite number, got ${String(value)}`);
}

/** Number of grid cells of a stepped range minus one (so the grid is low + k·step, k = 0..count). */
function stepCount(low: number, high: number, step: number): number {
  // The 1e-9 guard keeps (0.3 - 0.1) / 0.1 = 1.9999999999999998 from losing a grid point.
  return Math.floor((high - low) / step + 1e-9);
}

/** Rounds away binary noise from low + k·step (0.1 + 2·0.1 = 0.30000000000000004). */
function cleanGridValue(value: number): number {
  return Number(value.toPrecision(14));
}

/**
 * A float range [low, high].
 * @example floatDistribution(1e-5, 1e-1, { log: true })
 */
export function floatDistribution(
  low: number,
  high: number,
  options: { log?: boolean; step?: number | null } = {},
): FloatDistribution {
  checkFinite('floatDistribution: low', low);
  checkFinite('floatDistribution: high', high);
  const log = options.log ?? false;
  const step = options.step ?? null;
  if (low > high) throw new RangeError(`floatDistribution: low (${low}) must not exceed high (${high})`);
  if (log && low <= 0) throw new RangeError(`floatDistribution: a log range needs low > 0, got ${low}`);
  if (step !== null) {
    checkFinite('floatDistribution: step', step);
    if (step <= 0) throw new RangeError(`floatDistribution: step must be positive, got ${step}`);
    if (log) throw new RangeError('floatDistribution: step and log cannot be used together');
    // As in Optuna, high is moved down onto the grid so that every value in range is reachable.
    high = cleanGridValue(low + stepCount(low, high, step) * step);
  }
  return { kind: 'float', low, high, log, step };
}

/**
 * An integer range [low, high] (both included).
 * @example intDistribution(16, 256, { log: true })
 */
export function intDistribution(
  low: number,
  high: number,
  options: { log?: boolean; step?: number } = {},
): IntDistribution {
  const log = options.log ?? false;
  const step = options.step ?? 1;
  for (const [name, value] of [
    ['low', low],
    ['high', high],
    ['step', step],
  ] as const) {
    if (!Number.isSafeInteger(value))
      throw new RangeError(`intDistribution: ${name} must be an integer, got ${value}`);
  }
  if (low > high) throw new RangeError(`intDistribution: low (${low}) must not exceed high (${high})`);
  if (step < 1) throw new RangeError(`intDistribution: step must be at least 1, got ${step}`);
  if (log && low < 1) throw new RangeError(`intDistribution: a log range needs low >= 1, got ${low}`);
  if (log && step !== 1) throw new RangeError('intDistribution: a log range needs step 1');
  return { kind: 'int', low, high: low + Math.floor((high - low) / step) * step, log, step };
}

/**
 * A choice among values (numbers, strings, booleans or null), compared with ===.
 * @example categoricalDistribution(['sgd', 'adam', 'adamw'])
 */
export function categoricalDistribution(choices: readonly ParamValue[]): CategoricalDistribution {
  if (!Array.isArray(choices) || choices.length === 0)
    throw new RangeError('categoricalDistribution: choices must be a non-empty array');
  for (const choice of choices) {
    const type = typeof choice;
    if (!(
      choice === null ||
      type === 'string' ||
      type === 'boolean' ||
      (type === 'number' && Number.isFinite(choice))
    )) {
      throw new TypeError(
        `categoricalDistribution: choices must be strings, finite numbers, booleans or null, got ${String(choice)}`,
      );
    }
  }
  if (new Set(choices).size !== choices.length)
    throw new RangeError(`categoricalDistribution: choices must be distinct, got ${JSON.stringify(choices)}`);
  return { kind: 'categorical', choices: [...choices] };
}

/** Whether the distribution admits only one value. */
export function isSingleValue(distribution: Distribution): boolean {
  if (distribution.kind === 'categorical') return distribution.choices.length === 1;
  return distribution.low === distribution.high;
}

/** The internal (numeric) representation of an external value; throws when it is not in the domain. */
export function toInternal(distribution: Distribution, value: ParamValue): number {
  if (distribution.kind === 'categorical') {
    const index = distribution.choices.indexOf(value);
    if (index < 0)
      throw new RangeError(
        `${JSON.stringify(value)} is not one of the choices ${JSON.stringify(distribution.choices)}`,
      );
    return index;
  }
  if (typeof value !== 'number' || !Number.isFinite(value))
    throw new TypeError(`expected a finite number, got ${JSON.stringify(value)}`);
  return value;
}

/** The external value of an internal one. */
export function toExternal(distribution: Distribution, internal: number): ParamValue {
  if (distribution.kind === 'categorical') {
    const choice = distribution.choices[internal];
    if (choice === undefined || !Number.isInteger(internal))
      throw new RangeError(
        `choice index ${internal} out of range for ${JSON.stringify(distribution.choices)}`,
      );
    return choice;
  }
  return internal;
}

/** Whether an internal value lies in the domain (on the grid, for stepped and integer ranges). */
export function contains(distribution: Distribution, internal: number): boolean {
  if (!Number.isFinite(internal)) return false;
  if (distribution.kind === 'categorical')
    return Number.isInteger(internal) && internal >= 0 && internal < distribution.choices.length;
  const tolerance = 1e-9 * Math.max(1, Math.abs(distribution.high - distribution.low));
  if (internal < distribution.low - tolerance || internal > distribution.high + tolerance) return false;
  if (distribution.kind === 'int')
    return Number.isInteger(internal) && (internal - distribution.low) % distribution.step === 0;
  if (distribution.step === null) return true;
  const k = (internal - distribution.low) / distribution.step;
  return Math.abs(k - Math.round(k)) < 1e-6;
}

/** Whether the external value belongs to the distribution. */
export function containsValue(distribution: Distribution, value: ParamValue): boolean {
  if (distribution.kind === 'categorical') return distribution.choices.includes(value);
  return typeof value === 'number' && contains(distribution, value);
}

/** Number of distinct values (Infinity for continuous ranges). */
export function cardinality(distribution: Distribution): number {
  if (distribution.kind === 'categorical') return distribution.choices.length;
  if (distribution.kind === 'int')
    return Math.floor((distribution.high - distribution.low) / distribution.step) + 1;
  if (distribution.step === null) return distribution.low === distribution.high ? 1 : Infinity;
  return stepCount(distribution.low, distribution.high, distribution.step) + 1;
}

/** Equal domains (same kind, bounds, scale, step and choices). */
export function sameDistribution(a: Distribution, b: Distribution): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'categorical' && b.kind === 'categorical') {
    return a.choices.length === b.choices.length && a.choices.every((choice, i) => choice === b.choices[i]);
  }
  const x = a as FloatDistribution | IntDistribution;
  const y = b as FloatDistribution | IntDistribution;
  return x.low === y.low && x.high === y.high && x.log === y.log && x.step === y.step;
}

/**
 * Whether two distributions may be used for the same parameter name in one study: the same kind (and,
 * for categorical ones, the same choices). Ranges may change between trials, as in Optuna.
 */
export function compatibleDistributions(a: Distribution, b: Distribution): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'categorical') return sameDistribution(a, b);
  return true;
}

/** The transformed bounds of a numeric range: log space for log ranges, half a step wider for grids. */
function transformedBounds(distribution: FloatDistribution | IntDistribution): [number, number] {
  if (distribution.kind === 'int' && distribution.log)
    return [Math.log(distribution.low - 0.5), Math.log(distribution.high + 0.5)];
  if (distribution.log) return [Math.log(distribution.low), Math.log(distribution.high)];
  return [distribution.low, distribution.high];
}

/**
 * Maps an internal value to [0, 1]. Grid values (stepped floats, linear integers) map to the centre of
 * their cell; categorical indices to the centre of theirs.
 */
export function toUnit(distribution: Distribution, internal: number): number {
  const cells = cardinality(distribution);
  if (distribution.kind === 'categorical') return (internal + 0.5) / cells;
  if (cells === 1) return 0.5;
  if (Number.isFinite(cells) && !(distribution.kind === 'int' && distribution.log)) {
    const step = distribution.step ?? 1;
    return (Math.round((internal - distribution.low) / step) + 0.5) / cells;
  }
  const [low, high] = transformedBounds(distribution);
  const x = distribution.log ? Math.log(internal) : internal;
  return Math.min(1, Math.max(0, (x - low) / (high - low)));
}

/** Maps u in [0, 1] to an internal value in the domain (the inverse of toUnit on grid centres). */
export function fromUnit(distribution: Distribution, u: number): number {
  const clamped = Math.min(1, Math.max(0, u));
  const cells = cardinality(distribution);
  if (distribution.kind === 'categorical') return Math.min(cells - 1, Math.floor(clamped * cells));
  if (cells === 1) return distribution.low;
  if (Number.isFinite(cells) && !(distribution.kind === 'int' && distribution.log)) {
    const k = Math.min(cells - 1, Math.floor(clamped * cells));
    const step = distribution.step ?? 1;
    return distribution.kind === 'int'
      ? distribution.low + k * step
      : cleanGridValue(distribution.low + k * step);
  }
  const [low, high] = transformedBounds(distribution);
  const x = low + clamped * (high - low);
  const value = distribution.log ? Math.exp(x) : x;
  if (distribution.kind === 'int')
    return Math.min(distribution.high, Math.max(distribution.low, Math.round(value)));
  return Math.min(distribution.high, Math.max(distribution.low, value));
}

/** The distribution as plain JSON (for storages and exports). */
export function distributionToJson(distribution: Distribution): JsonValue {
  if (distribution.kind === 'categorical') return { kind: 'categorical', choices: [...distribution.choices] };
  return {
    kind: distribution.kind,
    low: distribution.low,
    high: distribution.high,
    log: distribution.log,
    step: distribution.step,
  };
}

/** Reads a distribution written by distributionToJson, validating it. */
export function distributionFromJson(json: unknown): Distribution {
  if (json === null || typeof json !== 'object')
    throw new TypeError(`not a distribution: ${JSON.stringify(json)}`);
  const record = json as Record<string, unknown>;
  switch (record.kind) {
    case 'float':
      return floatDistribution(Number(record.low), Number(record.high), {
        log: record.log === true,
        step: record.step === null || record.step === undefined ? null : Number(record.step),
      });
    case 'int':
      return intDistribution(Number(record.low), Number(record.high), {
        log: record.log === true,
        step: Number(record.step ?? 1),
      });
    case 'categorical':
      return categoricalDistribution(record.choices as ParamValue[]);
    default:
      throw new TypeError(`unknown distribution kind ${JSON.stringify(record.kind)}`);
  }
}

/** A short human-readable description, e.g. "float [1e-05, 0.1] log". */
export function describeDistribution(distribution: Distribution): string {
  if (distribution.kind === 'categorical') return `categorical ${JSON.stringify(distribution.choices)}`;
  const extras = [
    distribution.log ? 'log' : '',
    distribution.step !== null && distribution.step !== 1 ? `step ${distribution.step}` : '',
  ].filter(Boolean);
  return `${distribution.kind} [${distribution.low}, ${distribution.high}]${extras.length ? ' ' + extras.join(' ') : ''}`;
}
