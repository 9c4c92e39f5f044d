/**
 * The database schema of the SQLite and PostgreSQL study storages, as numbered migrations.
 *
 * `tensile_schema` holds one row with the version; opening a database applies the missing migrations
 * in one transaction (src/sql: under BEGIN IMMEDIATE in SQLite and an advisory lock in PostgreSQL,
 * so workers starting together upgrade it once). A database newer than this code is refused rather
 * than misread. A released migration is never edited; a change is a new one.
 *
 * Layout: one row per study and per trial; parameters, intermediate values and attributes in their
 * own tables keyed by trial, so every write is one small insert (no read-modify-write of JSON blobs).
 * Parameters keep the internal value (a float; the choice index for categorical ones) with the
 * distribution as JSON, as Optuna does. Times are milliseconds since 1970 as float64.
 *
 * Migration 2 added tables for run tracking (issue #6); run tracking then came with its own tables
 * and version row (src/track/schema.ts), and migration 3 drops the unused ones.
 */

import { latestVersion, type Migration, type VersionedSchema } from '../../sql/migrations.js';

const states = `('waiting', 'running', 'complete', 'pruned', 'failed')`;

export const migrations: readonly Migration[] = [
  {
    version: 1,
    description: 'studies and trials',
    sqlite: [
      `CREATE TABLE studies (
        study_id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        direction TEXT NOT NULL CHECK (direction IN ('minimize', 'maximize')),
        created_at REAL NOT NULL)`,
      `CREATE TABLE study_attributes (
        study_id INTEGER NOT NULL REFERENCES studies (study_id) ON DELETE CASCADE,
        kind TEXT NOT NULL CHECK (kind IN ('user', 'system')),
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (study_id, kind, key))`,
      `CREATE TABLE trials (
        trial_id INTEGER PRIMARY KEY AUTOINCREMENT,
        study_id INTEGER NOT NULL REFERENCES studies (study_id) ON DELETE CASCADE,
        number INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ${states}),
        value REAL,
        error TEXT,
        worker TEXT,
        retry_of INTEGER,
        started_at REAL,
        completed_at REAL,
        heartbeat_at REAL,
        UNIQUE (study_id, number))`,
      `CREATE INDEX trials_by_state ON trials (study_id, state)`,
      `CREATE TABLE trial_params (
        trial_id INTEGER NOT NULL REFERENCES trials (trial_id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        distribution TEXT NOT NULL,
        value REAL NOT NULL,
        PRIMARY KEY (trial_id, name))`,
      `CREATE TABLE trial_values (
        trial_id INTEGER NOT NULL REFERENCES trials (trial_id) ON DELETE CASCADE,
        step INTEGER NOT NULL,
        value REAL NOT NULL,
        PRIMARY KEY (trial_id, step))`,
      `CREATE TABLE trial_attributes (
        trial_id INTEGER NOT NULL REFERENCES trials (trial_id) ON DELETE CASCADE,
        kind TEXT NOT NULL CHECK (kind IN ('user', 'system')),
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (trial_id, kind, key))`,
    ],
    postgres: [
      `CREATE TABLE studies (
        study_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        direction TEXT NOT NULL CHECK (direction IN ('minimize', 'maximize')),
        created_at DOUBLE PRECISION NOT NULL)`,
      `CREATE TABLE study_attributes (
        study_id BIGINT NOT NULL REFERENCES studies (study_id) ON DELETE CASCADE,
        kind TEXT NOT NULL CHECK (kind IN ('user', 'system')),
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (study_id, kind, key))`,
      `CREATE TABLE trials (
        trial_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        study_id BIGINT NOT NULL REFERENCES studies (study_id) ON DELETE CASCADE,
        number INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ${states}),
        value DOUBLE PRECISION,
        error TEXT,
        worker TEXT,
        retry_of INTEGER,
        started_at DOUBLE PRECISION,
        completed_at DOUBLE PRECISION,
        heartbeat_at DOUBLE PRECISION,
        UNIQUE (study_id, number))`,
      `CREATE INDEX trials_by_state ON trials (study_id, state)`,
      `CREATE TABLE trial_params (
        trial_id BIGINT NOT NULL REFERENCES trials (trial_id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        distribution TEXT NOT NULL,
        value DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (trial_id, name))`,
      `CREATE TABLE trial_values (
        trial_id BIGINT NOT NULL REFERENCES trials (trial_id) ON DELETE CASCADE,
        step INTEGER NOT NULL,
        value DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (trial_id, step))`,
      `CREATE TABLE trial_attributes (
        trial_id BIGINT NOT NULL REFERENCES trials (trial_id) ON DELETE CASCADE,
        kind TEXT NOT NULL CHECK (kind IN ('user', 'system')),
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (trial_id, kind, key))`,
    ],
  },
  {
    version: 2,
    description: 'run tracking (issue #6): runs with per-epoch metrics, optionally tied to a trial',
    sqlite: [
      `CREATE TABLE runs (
        run_id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('running', 'complete', 'failed', 'stopped')),
        trial_id INTEGER REFERENCES trials (trial_id) ON DELETE SET NULL,
        config TEXT NOT NULL,
        started_at REAL NOT NULL,
        completed_at REAL)`,
      `CREATE TABLE run_epochs (
        run_id INTEGER NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
        epoch INTEGER NOT NULL,
        metrics TEXT NOT NULL,
        PRIMARY KEY (run_id, epoch))`,
    ],
    postgres: [
      `CREATE TABLE runs (
        run_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('running', 'complete', 'failed', 'stopped')),
        trial_id BIGINT REFERENCES trials (trial_id) ON DELETE SET NULL,
        config TEXT NOT NULL,
        started_at DOUBLE PRECISION NOT NULL,
        completed_at DOUBLE PRECISION)`,
      `CREATE TABLE run_epochs (
        run_id BIGINT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
        epoch INTEGER NOT NULL,
        metrics TEXT NOT NULL,
        PRIMARY KEY (run_id, epoch))`,
    ],
  },
  {
    version: 3,
    description: 'drop the unused run tables (run tracking has its own, src/track); index parameters by name',
    sqlite: [
      `DROP TABLE IF EXISTS run_epochs`,
      `DROP TABLE IF EXISTS runs`,
      // setTrialParam checks a new parameter against the study's other uses of the name.
      `CREATE INDEX trial_params_by_name ON trial_params (name)`,
    ],
    postgres: [
      `DROP TABLE IF EXISTS run_epochs`,
      `DROP TABLE IF EXISTS runs`,
      `CREATE INDEX trial_params_by_name ON trial_params (name)`,
    ],
  },
];

/** The study tables as src/sql migrates them. */
export const studySchema: VersionedSchema = {
  versionTable: 'tensile_schema',
  lockName: 'tensile-schema',
  migrations,
  tooNew: (found) => new SchemaTooNewError(found),
};

/** The schema version this code writes. */
export const schemaVersion = latestVersion(studySchema);

export class SchemaTooNewError extends Error {
  constructor(found: number) {
    super(
      `the study database has schema version ${found}, newer than this tensile understands (${schemaVersion}); upgrade tensile`,
    );
    this.name = 'SchemaTooNewError';
  }
}

/** Row types shared by the SQL storages. */
export interface TrialRow {
  trial_id: number | string;
  study_id: number | string;
  number: number;
  state: string;
  value: number | null;
  error: string | null;
  worker: string | null;
  retry_of: number | null;
  started_at: number | null;
  completed_at: number | null;
  heartbeat_at: number | null;
}
export interface ParamRow {
  trial_id: number | string;
  name: string;
  distribution: string;
  value: number;
}
export interface ValueRow {
  trial_id: number | string;
  step: number;
  value: number;
}
export interface AttributeRow {
  trial_id: number | string;
  kind: 'user' | 'system';
  key: string;
  value: string;
}
