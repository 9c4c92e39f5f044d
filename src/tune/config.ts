/**
 * study.yaml: a tuning run described as data. This file is the one place where names in a config
 * (sampler: tpe, pruner: hyperband) become classes; an unknown name is an error that lists the known
 * ones.
 *
 * @example
 * const config = parseStudyConfig(YAML.parse(fs.readFileSync('examples/study.yaml', 'utf8')));
 */
import type { JsonValue, ParamValue } from './distributions.js';
import type { StudyDirection } from './frozen-trial.js';
import type { HeartbeatSettings } from './heartbeat.js';
import { HyperbandPruner } from './pruners/hyperband.js';
import { MedianPruner, PercentilePruner } from './pruners/median.js';
import { NopPruner, type Pruner } from './pruners/pruner.js';
import { SuccessiveHalvingPruner } from './pruners/successive-halving.js';
import { GpSampler } from './samplers/gp.js';
import { GridSampler } from './samplers/grid.js';
import { RandomSampler } from './samplers/random.js';
import type { Sampler } from './samplers/sampler.js';
import { SobolSampler } from './samplers/sobol.js';
import { TpeSampler } from './samplers/tpe.js';
import { gridFromSpec, parseSearchSpec, type SearchSpec } from './search-spec.js';
import type { PruningMetric } from './pruning-callback.js';

type Options = Record<string, JsonValue>;

/** Sampler names and their constructors, from config options (search spec needed by grid). */
export const samplerFactories: Record<string, (options: Options, search: SearchSpec) => Sampler> = {
  random: (o) => new RandomSampler(pick(o, 'random', { seed: 'number' })),
  grid: (o, search) => {
    const { seed, grid } = pick(o, 'grid', { seed: 'number', grid: 'object' });
    return new GridSampler(
      (grid as Record<string, ParamValue[]> | undefined) ?? gridFromSpec(search),
      seed === undefined ? {} : { seed },
    );
  },
  sobol: (o) => new SobolSampler(pick(o, 'sobol', { seed: 'number', scramble: 'boolean' })),
  tpe: (o) =>
    new TpeSampler(
      pick(o, 'tpe', {
        seed: 'number',
        startupTrials: 'number',
        eiCandidates: 'number',
        multivariate: 'boolean',
        constantLiar: 'boolean',
        priorWeight: 'number',
        considerMagicClip: 'boolean',
        considerEndpoints: 'boolean',
        equalHeightKernels: 'boolean',
      }),
    ),
  gp: (o) =>
    new GpSampler(
      pick(o, 'gp', {
        seed: 'number',
        startupTrials: 'number',
        candidates: 'number',
        localCandidates: 'number',
        refinements: 'number',
        hyperparameterRestarts: 'number',
        deterministicObjective: 'boolean',
        warpOutputs: 'boolean',
        minimumImprovement: 'number',
        stallTrials: 'number',
      }),
    ),
};

/** Pruner names and their constructors. */
export const prunerFactories: Record<string, (options: Options) => Pruner> = {
  none: () => new NopPruner(),
  median: (o) =>
    new MedianPruner(
      pick(o, 'median', {
        startupTrials: 'number',
        warmupSteps: 'number',
        intervalSteps: 'number',
        minTrials: 'number',
      }),
    ),
  percentile: (o) => {
    const { percentile, ...rest } = pick(o, 'percentile', {
      percentile: 'number',
      startupTrials: 'number',
      warmupSteps: 'number',
      intervalSteps: 'number',
      minTrials: 'number',
    });
    if (percentile === undefined) throw new Error("pruner 'percentile' needs percentile: 0-100");
    return new PercentilePruner(percentile, rest);
  },
  'successive-halving': (o) => {
    const options = pick(o, 'successive-halving', {
      minResource: 'any',
      reductionFactor: 'number',
      minEarlyStoppingRate: 'number',
      bootstrapCount: 'number',
    });
    return new SuccessiveHalvingPruner(options as ConstructorParameters<typeof SuccessiveHalvingPruner>[0]);
  },
  hyperband: (o) => {
    const options = pick(o, 'hyperband', {
      minResource: 'number',
      maxResource: 'any',
      reductionFactor: 'number',
      bootstrapCount: 'number',
    });
    return new HyperbandPruner(options as ConstructorParameters<typeof HyperbandPruner>[0]);
  },
};

type FieldType = 'number' | 'boolean' | 'string' | 'object' | 'any';
type Picked<T extends Record<string, FieldType>> = {
  [K in keyof T]?: T[K] extends 'number'
    ? number
    : T[K] extends 'boolean'
      ? boolean
      : T[K] extends 'string'
        ? string
        : JsonValue;
};

/** Checks a config section's keys and types against what a constructor accepts. */
function pick<T extends Record<string, FieldType>>(options: Options, what: string, fields: T): Picked<T> {
  const result: Record<string, JsonValue> = {};
  for (const [key, value] of Object.entries(options)) {
    if (key === 'name') continue;
    const type = fields[key];
    if (type === undefined)
      throw new Error(
        `${what}: unknown option '${key}' (known: ${Object.keys(fields).join(', ') || 'none'})`,
      );
    if (type !== 'any' && typeof value !== type)
      throw new Error(`${what}: option '${key}' must be a ${type}, got ${JSON.stringify(value)}`);
    result[key] = value;
  }
  return result as Picked<T>;
}

/** `name` or `{ name, ...options }` → name and options. */
function named(section: unknown, what: string, fallback: string): { name: string; options: Options } {
  if (section === undefined || section === null) return { name: fallback, options: {} };
  if (typeof section === 'string') return { name: section, options: {} };
  if (
    typeof section === 'object' &&
    !Array.isArray(section) &&
    typeof (section as Options).name === 'string'
  ) {
    return { name: (section as Options).name as string, options: section as Options };
  }
  throw new Error(`${what}: expected a name or a mapping with a name, got ${JSON.stringify(section)}`);
}

export function samplerFromConfig(section: unknown, search: SearchSpec): Sampler {
  const { name, options } = named(section, 'sampler', 'tpe');
  const factory = samplerFactories[name];
  if (factory === undefined)
    throw new Error(`unknown sampler '${name}' (known: ${Object.keys(samplerFactories).join(', ')})`);
  return factory(options, search);
}

export function prunerFromConfig(section: unknown): Pruner {
  const { name, options } = named(section, 'pruner', 'median');
  const factory = prunerFactories[name];
  if (factory === undefined)
    throw new Error(`unknown pruner '${name}' (known: ${Object.keys(prunerFactories).join(', ')})`);
  return factory(options);
}

export interface StudyConfig {
  study: string;
  storage: string;
  direction: StudyDirection;
  metric: PruningMetric;
  /** Study-wide number of trials. */
  trials: number;
  /** Seconds after which a worker starts no new trial. */
  timeout: number | null;
  retries: number;
  heartbeat: HeartbeatSettings | null;
  sampler: unknown;
  pruner: unknown;
  data: { dataset: 'mnist' | 'fashion-mnist'; trainSamples: number; validationSamples: number; seed: number };
  model: { channels: [number, number] };
  search: SearchSpec;
}

const metrics: PruningMetric[] = ['validationAccuracy', 'validationLoss', 'accuracy', 'loss'];

/** Validates a parsed study.yaml (see examples/study.yaml for every field). */
export function parseStudyConfig(input: unknown, defaults: { storage: string }): StudyConfig {
  if (input === null || typeof input !== 'object' || Array.isArray(input))
    throw new Error('the study file must be a YAML mapping');
  const raw = input as Record<string, unknown>;
  const known = [
    'study',
    'storage',
    'direction',
    'metric',
    'trials',
    'timeout',
    'retries',
    'heartbeat',
    'sampler',
    'pruner',
    'data',
    'model',
    'search',
  ];
  for (const key of Object.keys(raw))
    if (!known.includes(key))
      throw new Error(`unknown key '${key}' in the study file (known: ${known.join(', ')})`);
  const need = (ok: boolean, message: string) => {
    if (!ok) throw new Error(message);
  };
  const study = raw.study ?? 'tensile-study';
  need(typeof study === 'string' && study.length > 0, 'study: must be a name');
  const metric = (raw.metric ?? 'validationAccuracy') as PruningMetric;
  need(metrics.includes(metric), `metric: must be one of ${metrics.join(', ')}`);
  const direction = (raw.direction ??
    (metric.toLowerCase().endsWith('accuracy') ? 'maximize' : 'minimize')) as StudyDirection;
  need(direction === 'minimize' || direction === 'maximize', 'direction: must be minimize or maximize');
  const trials = raw.trials ?? 20;
  need(
    typeof trials === 'number' && Number.isInteger(trials) && trials >= 1,
    'trials: must be a positive integer',
  );
  const timeout = raw.timeout ?? null;
  need(
    timeout === null || (typeof timeout === 'number' && timeout > 0),
    'timeout: must be a positive number of seconds',
  );
  const retries = raw.retries ?? 1;
  need(
    typeof retries === 'number' && Number.isInteger(retries) && retries >= 0,
    'retries: must be a non-negative integer',
  );
  let heartbeat: HeartbeatSettings | null = null;
  if (raw.heartbeat !== undefined && raw.heartbeat !== null) {
    const h = raw.heartbeat as Record<string, unknown>;
    need(
      typeof h.intervalSeconds === 'number' && typeof h.graceSeconds === 'number',
      'heartbeat: needs intervalSeconds and graceSeconds',
    );
    heartbeat = { intervalSeconds: h.intervalSeconds as number, graceSeconds: h.graceSeconds as number };
  }
  const data = (raw.data ?? {}) as Record<string, unknown>;
  const dataset = data.dataset ?? 'mnist';
  need(dataset === 'mnist' || dataset === 'fashion-mnist', 'data.dataset: must be mnist or fashion-mnist');
  const trainSamples = data.trainSamples ?? 4000;
  const validationSamples = data.validationSamples ?? 1000;
  const dataSeed = data.seed ?? 1;
  for (const [name, value] of [
    ['trainSamples', trainSamples],
    ['validationSamples', validationSamples],
    ['seed', dataSeed],
  ] as const) {
    need(
      typeof value === 'number' && Number.isInteger(value) && value >= (name === 'seed' ? 0 : 1),
      `data.${name}: must be a ${name === 'seed' ? 'non-negative' : 'positive'} integer`,
    );
  }
  const model = (raw.model ?? {}) as Record<string, unknown>;
  const channels = model.channels ?? [8, 16];
  need(
    Array.isArray(channels) && channels.length === 2 && channels.every((c) => Number.isInteger(c) && c >= 1),
    'model.channels: must be two positive integers like [8, 16]',
  );
  const search = parseSearchSpec(raw.search ?? {});
  // Fail now, not in the first trial, on a search space the sampler cannot handle.
  samplerFromConfig(raw.sampler, search);
  prunerFromConfig(raw.pruner);
  return {
    study,
    storage: typeof raw.storage === 'string' ? raw.storage : defaults.storage,
    direction,
    metric,
    trials,
    timeout: timeout as number | null,
    retries,
    heartbeat,
    sampler: raw.sampler,
    pruner: raw.pruner,
    data: {
      dataset,
      trainSamples: trainSamples as number,
      validationSamples: validationSamples as number,
      seed: dataSeed as number,
    },
    model: { channels: channels as [number, number] },
    search,
  } as StudyConfig;
}
