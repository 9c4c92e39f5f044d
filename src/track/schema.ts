/**
 * The run-tracking tables, as numbered migrations with their own version row.
 *
 * Runs live in the same database as studies (the SQLite file `./tensile.db` by default, or a
 * PostgreSQL database), but the two schemas are versioned apart: `tensile_track_schema` holds this
 * file's version and `tensile_schema` the study tables' version, so each part can be upgraded
 * without the other's code. Table names start with `track_` so they never collide with the study
 * tables. A database newer than this code is refused rather than misread; a released migration is
 * never edited, a change is a new migration.
 *
 * Layout:
 * - track_runs: one row per run; configuration and summary as JSON text (read whole, written rarely).
 * - track_metrics: one narrow row per metric point, numbered by an increasing point id, so a live
 *   reader asks for "points after id N" and an append is one small insert. Runs of 100,000 points
 *   stay cheap to append and to read incrementally.
 * - track_artifacts: files a run produced, by path, or their bytes when small (SVG figures), so a
 *   report or a dashboard on another machine still shows them.
 *
 * Every write to a run bumps its `revision`, so the sum of revisions and the largest point id tell a
 * poller exactly whether anything changed (timestamps alone can repeat within a millisecond).
 *
 * Study and trial are kept by name and number rather than a foreign key to the study tables, so a
 * run store works in a database that has never held a study, and deleting a study keeps its runs.
 */

import { latestVersion, type Migration, type VersionedSchema } from '../sql/migrations.js';

const states = `('running', 'complete', 'failed', 'stopped')`;

export const trackMigrations: readonly Migration[] = [
  {
    version: 1,
    description: 'runs, metric points and artifacts',
    sqlite: [
      `CREATE TABLE track_runs (
        run_id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ${states}),
        parent_id INTEGER REFERENCES track_runs (run_id) ON DELETE CASCADE,
        study TEXT,
        trial_number INTEGER,
        config TEXT NOT NULL,
        summary TEXT NOT NULL,
        error TEXT,
        worker TEXT,
        started_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        completed_at REAL,
        point_count INTEGER NOT NULL DEFAULT 0,
        revision INTEGER NOT NULL DEFAULT 0)`,
      `CREATE INDEX track_runs_by_kind ON track_runs (kind, name)`,
      `CREATE INDEX track_runs_by_parent ON track_runs (parent_id)`,
      `CREATE TABLE track_metrics (
        point_id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id INTEGER NOT NULL REFERENCES track_runs (run_id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        step INTEGER NOT NULL,
        x REAL NOT NULL,
        value REAL,
        time REAL NOT NULL)`,
      `CREATE INDEX track_metrics_by_run ON track_metrics (run_id, point_id)`,
      `CREATE TABLE track_artifacts (
        artifact_id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id INTEGER NOT NULL REFERENCES track_runs (run_id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        media_type TEXT NOT NULL,
        path TEXT,
        content BLOB,
        size INTEGER NOT NULL,
        created_at REAL NOT NULL,
        UNIQUE (run_id, name))`,
    ],
    postgres: [
      `CREATE TABLE track_runs (
        run_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ${states}),
        parent_id BIGINT REFERENCES track_runs (run_id) ON DELETE CASCADE,
        study TEXT,
        trial_number INTEGER,
        config TEXT NOT NULL,
        summary TEXT NOT NULL,
        error TEXT,
        worker TEXT,
        started_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        completed_at DOUBLE PRECISION,
        point_count INTEGER NOT NULL DEFAULT 0,
        revision INTEGER NOT NULL DEFAULT 0)`,
      `CREATE INDEX track_runs_by_kind ON track_runs (kind, name)`,
      `CREATE INDEX track_runs_by_parent ON track_runs (parent_id)`,
      `CREATE TABLE track_metrics (
        point_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        run_id BIGINT NOT NULL REFERENCES track_runs (run_id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        step INTEGER NOT NULL,
        x DOUBLE PRECISION NOT NULL,
        value DOUBLE PRECISION,
        time DOUBLE PRECISION NOT NULL)`,
      `CREATE INDEX track_metrics_by_run ON track_metrics (run_id, point_id)`,
      `CREATE TABLE track_artifacts (
        artifact_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        run_id BIGINT NOT NULL REFERENCES track_runs (run_id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        media_type TEXT NOT NULL,
        path TEXT,
        content BYTEA,
        size INTEGER NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        UNIQUE (run_id, name))`,
    ],
  },
];

/** The run tables as src/sql migrates them. */
export const trackSchema: VersionedSchema = {
  versionTable: 'tensile_track_schema',
  lockName: 'tensile-track-schema',
  migrations: trackMigrations,
  tooNew: (found) => new TrackSchemaTooNewError(found),
};

/** The run-tracking schema version this code writes. */
export const trackSchemaVersion = latestVersion(trackSchema);

export class TrackSchemaTooNewError extends Error {
  constructor(found: number) {
    super(
      `the database's run-tracking schema has version ${found}, newer than this tensile understands (${trackSchemaVersion}); upgrade tensile`,
    );
    this.name = 'TrackSchemaTooNewError';
  }
}

/** Row shapes shared by the SQL stores. */
export interface RunRow {
  run_id: number | string;
  name: string;
  kind: string;
  state: string;
  parent_id: number | string | null;
  study: string | null;
  trial_number: number | null;
  config: string;
  summary: string;
  error: string | null;
  worker: string | null;
  started_at: number;
  updated_at: number;
  completed_at: number | null;
  point_count: number;
}

export interface PointRow {
  point_id: number | string;
  name: string;
  step: number;
  x: number;
  value: number | null;
  time: number;
}

export interface ArtifactRow {
  artifact_id: number | string;
  run_id: number | string;
  name: string;
  kind: string;
  media_type: string;
  path: string | null;
  size: number;
  created_at: number;
  content?: Uint8Array | null;
}
