/**
 * Hyperparameter tuning: studies of trials (define-by-run, ask/tell), samplers (grid, random, Sobol,
 * TPE, Gaussian-process Bayesian optimization), pruners (median, successive halving, Hyperband) and
 * storages (memory, SQLite, PostgreSQL) that several workers share.
 */
export * from './distributions.js';
export * from './frozen-trial.js';
export { Study, type StudyOptions, type OptimizeOptions, type Objective, type TellResult } from './study.js';
export { Trial } from './trial.js';
export {
  trialsTable,
  trialsToCsv,
  trialsToJson,
  formatTable,
  formatNumber,
  type TrialsTable,
  type Cell,
} from './export.js';
export { checkHeartbeat, defaultHeartbeat, heartbeatMinimums, type HeartbeatSettings } from './heartbeat.js';
export type { Sampler, StudyView } from './samplers/sampler.js';
export { RandomSampler, type RandomSamplerOptions } from './samplers/random.js';
export { GridSampler } from './samplers/grid.js';
export { SobolSampler, SobolEngine, type SobolSamplerOptions } from './samplers/sobol.js';
export { TpeSampler, defaultGamma, defaultWeights, type TpeSamplerOptions } from './samplers/tpe.js';
export { GpSampler, type GpSamplerOptions } from './samplers/gp.js';
export { intersectionSearchSpace, unionSearchSpace } from './samplers/search-space.js';
export { type Pruner, TrialPruned, NopPruner } from './pruners/pruner.js';
export { MedianPruner, PercentilePruner, type PercentilePrunerOptions } from './pruners/median.js';
export { SuccessiveHalvingPruner, type SuccessiveHalvingOptions } from './pruners/successive-halving.js';
export { HyperbandPruner, type HyperbandOptions } from './pruners/hyperband.js';
export { PruningCallback, type PruningMetric } from './pruning-callback.js';
export type { Storage, TrialTemplate, CreateTrialOptions, StaleTrialOptions } from './storage/storage.js';
export { TrialFinishedError, DuplicateStudyError, NotFoundError } from './storage/storage.js';
export { MemoryStorage } from './storage/memory.js';
export { SqliteStorage, type SqliteStorageOptions } from './storage/sqlite.js';
export { PostgresStorage, type PostgresStorageOptions } from './storage/postgres.js';
export { openStorage, storageUrlHelp } from './storage/open.js';
export {
  currentOutage,
  defaultRetrySeconds,
  isConnectionError,
  StorageUnavailableError,
} from '../sql/retry.js';
export { schemaVersion, SchemaTooNewError } from './storage/schema.js';
export {
  parseStudyConfig,
  samplerFromConfig,
  prunerFromConfig,
  samplerFactories,
  prunerFactories,
  type StudyConfig,
} from './config.js';
export {
  parseSearchSpec,
  suggestFromSpec,
  gridFromSpec,
  type SearchSpec,
  type SearchEntry,
} from './search-spec.js';
export {
  trainWithHyperparameters,
  trainingHyperparameters,
  trainingDefaults,
  trainingHyperparameterNames,
  tuningSplit,
  tunableSeedCnn,
  PreciseBatchNorm,
  type TrainingHyperparameters,
  type TrainingTask,
  type TrainingOutcome,
} from './training-objective.js';
export {
  parameterImportance,
  roughBelowTrials,
  type ImportanceParameter,
  type ImportanceOptions,
  type ImportanceResult,
  type ParameterImportance,
} from './importance.js';
