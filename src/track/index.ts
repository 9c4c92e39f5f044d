/**
 * Run tracking: every fit, fine-tune and tuning trial recorded (configuration, metrics per epoch and
 * per batch, artifacts) in the same store as studies, for the dashboard and reports.
 */
export {
  runStates,
  RunNotFoundError,
  type JsonObject,
  type RunState,
  type RunKind,
  type NewRun,
  type RunRecord,
  type MetricInput,
  type MetricSeries,
  type MetricsQuery,
  type RunMetrics,
  type NewArtifact,
  type ArtifactInfo,
  type Artifact,
  type RunFilter,
  type RunStore,
} from './types.js';
export { MemoryRunStore } from './memory.js';
export { SqliteRunStore, migrateTrackSqlite } from './sqlite.js';
export { PostgresRunStore } from './postgres.js';
export { openRunStore, defaultStoreUrl, runStoreUrlHelp, sqliteFile } from './open.js';
export { trackSchemaVersion, TrackSchemaTooNewError } from './schema.js';
export { RunTracker, trackRun, configFromOptions, type RunTrackerOptions } from './tracker.js';
export { failLostRuns, processExists } from './lost-runs.js';
