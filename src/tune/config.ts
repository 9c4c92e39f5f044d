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
import { checkHeartbeat, type HeartbeatSettings } from './heartbeat.js';
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
import { trainingHyperparameterNames, trainingHyperparameters } from './training-objective.js';

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
  /**
   * MNIST or Fashion-MNIST, or the user's images at `path` (class folders, or a path,label listing
   * CSV) read at imageSize × imageSize; samples counts default then to all of it, a fifth held out.
   */
  data: {
    dataset: 'mnist' | 'fashion-mnist' | null;
    path: string | null;
    /** The column a table at `path` (a CSV with a header) predicts; null: `path` holds images. */
    target: string | null;
    imageSize: number;
    grayscale: boolean;
    trainSamples: number | null;
    validationSamples: number | null;
    seed: number;
  };
  model: { channels: [number, number] };
  search: SearchSpec;
}

const metrics: PruningMetric[] = ['validationAccuracy', 'validationLoss', 'accuracy', 'loss'];

/** A JSON-ish description of a value, for messages ("the string 'mnist'", "the number 5"). */
function described(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `the list ${JSON.stringify(value)}`;
  if (typeof value === 'object') return `a mapping`;
  return `the ${typeof value} ${JSON.stringify(value)}`;
}

/** The error for a field of the wrong type: names the field and what it must be. */
function wrongType(field: string, expected: string, value: unknown): Error {
  return new Error(`${field}: must be ${expected}, got ${described(value)}`);
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** A mapping section with only the known keys, or an error naming the field. */
function section(value: unknown, field: string, known: readonly string[]): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  if (!isMapping(value)) throw wrongType(field, `a mapping with keys ${known.join(', ')}`, value);
  for (const key of Object.keys(value))
    if (!known.includes(key)) throw new Error(`${field}: unknown key '${key}' (known: ${known.join(', ')})`);
  return value;
}

function integerField(value: unknown, field: string, least: number): number {
  const expected =
    least === 0 ? 'a non-negative integer' : least === 1 ? 'a positive integer' : `an integer >= ${least}`;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < least)
    throw wrongType(field, expected, value);
  return value;
}

/**
 * Every value the search can give a hyperparameter, checked by the trainer's own rules now, so that a
 * value training would refuse (optimizer: rmsprop, batchSize: 0, lr <= 0) stops the command before
 * the first trial instead of failing every trial. Ranges are checked at both ends.
 */
function checkSearchAgainstTrainer(search: SearchSpec): void {
  for (const entry of search) {
    if (!(trainingHyperparameterNames as string[]).includes(entry.name))
      throw new Error(
        `search '${entry.name}': not a training hyperparameter (known: ${trainingHyperparameterNames.join(', ')})`,
      );
    const distribution = entry.distribution;
    const values: ParamValue[] =
      distribution === null
        ? [entry.value]
        : distribution.kind === 'categorical'
          ? [...distribution.choices]
          : [distribution.low, distribution.high];
    for (const value of values) {
      try {
        trainingHyperparameters({ [entry.name]: value });
      } catch (error) {
        throw new Error(`search '${entry.name}': ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }
}

const studyKeys = [
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
] as const;

/**
 * Validates a parsed study.yaml (see examples/study.yaml for every field): every field's type, and
 * every value the trainer would refuse, so that a mistake is reported before any trial runs. Errors
 * name the field and what it must be.
 */
export function parseStudyConfig(input: unknown, defaults: { storage: string }): StudyConfig {
  if (!isMapping(input)) throw new Error('the study file must be a YAML mapping');
  const raw = section(input, 'the study file', studyKeys);
  const study = raw.study ?? 'tensile-study';
  if (typeof study !== 'string' || study.length === 0)
    throw wrongType('study', 'a non-empty name (a string)', study);
  const storage = raw.storage ?? defaults.storage;
  if (typeof storage !== 'string' || storage.length === 0)
    throw wrongType('storage', "a storage URL (a string, e.g. 'sqlite:./tensile.db')", storage);
  const metric = raw.metric ?? 'validationAccuracy';
  if (typeof metric !== 'string' || !metrics.includes(metric as PruningMetric))
    throw wrongType('metric', `one of ${metrics.join(', ')}`, metric);
  const direction = raw.direction ?? (metric.toLowerCase().endsWith('accuracy') ? 'maximize' : 'minimize');
  if (direction !== 'minimize' && direction !== 'maximize')
    throw wrongType('direction', 'minimize or maximize', direction);
  const trials = integerField(raw.trials ?? 20, 'trials', 1);
  const timeout = raw.timeout ?? null;
  if (timeout !== null && !(typeof timeout === 'number' && Number.isFinite(timeout) && timeout > 0))
    throw wrongType('timeout', 'a positive number of seconds', timeout);
  const retries = integerField(raw.retries ?? 1, 'retries', 0);
  let heartbeat: HeartbeatSettings | null = null;
  if (raw.heartbeat !== undefined && raw.heartbeat !== null) {
    const h = section(raw.heartbeat, 'heartbeat', ['intervalSeconds', 'graceSeconds']);
    for (const key of ['intervalSeconds', 'graceSeconds'] as const)
      if (typeof h[key] !== 'number') throw wrongType(`heartbeat.${key}`, 'a number of seconds', h[key]);
    heartbeat = { intervalSeconds: h.intervalSeconds as number, graceSeconds: h.graceSeconds as number };
    checkHeartbeat(heartbeat);
  }
  const data = section(raw.data, 'data', [
    'dataset',
    'path',
    'target',
    'imageSize',
    'grayscale',
    'trainSamples',
    'validationSamples',
    'seed',
  ]);
  const dataPath = data.path ?? null;
  if (dataPath !== null && (typeof dataPath !== 'string' || dataPath.length === 0))
    throw wrongType(
      'data.path',
      'a folder of class subfolders or a path,label listing CSV (a string)',
      dataPath,
    );
  if (dataPath !== null && data.dataset !== undefined && data.dataset !== null)
    throw new Error('data: give dataset or path, not both');
  const dataset = dataPath === null ? (data.dataset ?? 'mnist') : null;
  if (dataset !== null && dataset !== 'mnist' && dataset !== 'fashion-mnist')
    throw wrongType('data.dataset', 'mnist or fashion-mnist', dataset);
  if (dataPath === null)
    for (const key of ['imageSize', 'grayscale', 'target'])
      if (data[key] !== undefined) throw new Error(`data.${key}: goes with data.path (your own data)`);
  const target = data.target ?? null;
  if (target !== null && (typeof target !== 'string' || target.length === 0))
    throw wrongType('data.target', 'the name of the table column to predict (a string)', target);
  if (target !== null)
    for (const key of ['imageSize', 'grayscale', 'trainSamples'])
      if (data[key] !== undefined)
        throw new Error(`data.${key}: not for a table (data.target); it trains on the rows not held out`);
  const imageSize = integerField(data.imageSize ?? 28, 'data.imageSize', 1);
  if (imageSize > 4096) throw wrongType('data.imageSize', 'an integer in [1, 4096]', imageSize);
  const grayscale = data.grayscale ?? false;
  if (typeof grayscale !== 'boolean') throw wrongType('data.grayscale', 'true or false', grayscale);
  const samples = (key: 'trainSamples' | 'validationSamples', fallback: number) =>
    data[key] === undefined && dataPath !== null
      ? null
      : integerField(data[key] ?? fallback, `data.${key}`, 1);
  const trainSamples = samples('trainSamples', 4000);
  const validationSamples = samples('validationSamples', 1000);
  const dataSeed = integerField(data.seed ?? 1, 'data.seed', 0);
  const model = section(raw.model, 'model', ['channels']);
  const channels = model.channels ?? [8, 16];
  if (
    !Array.isArray(channels) ||
    channels.length !== 2 ||
    !channels.every((c) => typeof c === 'number' && Number.isInteger(c) && c >= 1)
  )
    throw wrongType('model.channels', 'two positive integers like [8, 16]', channels);
  const search = parseSearchSpec(raw.search ?? {});
  checkSearchAgainstTrainer(search);
  // Fail now, not in the first trial, on a search space the sampler cannot handle.
  samplerFromConfig(raw.sampler, search);
  prunerFromConfig(raw.pruner);
  return {
    study,
    storage,
    direction,
    metric: metric as PruningMetric,
    trials,
    timeout,
    retries,
    heartbeat,
    sampler: raw.sampler,
    pruner: raw.pruner,
    data: {
      dataset,
      path: dataPath,
      target,
      imageSize,
      grayscale,
      trainSamples,
      validationSamples,
      seed: dataSeed,
    },
    model: { channels: channels as [number, number] },
    search,
  };
}
