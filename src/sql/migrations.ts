/**
 * Versioned schemas: one list of numbered migrations per schema (the study tables in
 * src/tune/storage/schema.ts, the run tables in src/track/schema.ts), applied by one runner per
 * engine (migrateSqlite in ./sqlite.ts, migratePostgres in ./postgres.ts) that both follow the plan
 * made here.
 *
 * Each schema keeps its version in a table of its own holding one row (`id = 1`), so the schemas in
 * one database are upgraded apart, each by the code that knows it. Opening a database applies the
 * missing migrations in one transaction; a database newer than this code is refused rather than
 * misread. A released migration is never edited; a change is a new one.
 */

export interface Migration {
  version: number;
  description: string;
  /** Statements, in order, for each engine. */
  sqlite: readonly string[];
  postgres: readonly string[];
}

export interface VersionedSchema {
  /** The table holding the version row, e.g. 'tensile_schema'. */
  versionTable: string;
  /**
   * Names PostgreSQL's advisory lock for upgrades of this schema (with the PostgreSQL schema
   * appended), so that processes upgrading together do it one at a time.
   */
  lockName: string;
  /** Numbered 1, 2, 3, ... in order. */
  migrations: readonly Migration[];
  /** The error for a database whose version `found` is newer than this code's. */
  tooNew(found: number): Error;
}

/** The version the last migration of `schema` leads to. */
export function latestVersion(schema: VersionedSchema): number {
  return schema.migrations[schema.migrations.length - 1]!.version;
}

/** Creates the version table (the same statement works in SQLite and PostgreSQL). */
export function versionTableStatement(schema: VersionedSchema): string {
  return `CREATE TABLE IF NOT EXISTS ${schema.versionTable} (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)`;
}

export function selectVersionStatement(schema: VersionedSchema): string {
  return `SELECT version FROM ${schema.versionTable} WHERE id = 1`;
}

/** Writes the version; `placeholder` is the engine's parameter ('?' or '$1'). */
export function upsertVersionStatement(schema: VersionedSchema, placeholder: string): string {
  return `INSERT INTO ${schema.versionTable} (id, version) VALUES (1, ${placeholder}) ON CONFLICT (id) DO UPDATE SET version = excluded.version`;
}

/**
 * What an upgrade from `current` does: the migrations above it up to `target` (tests of upgrades
 * stop early; default the latest) and the version to record. Throws schema.tooNew for a database
 * newer than this code.
 */
export function migrationPlan(
  schema: VersionedSchema,
  current: number,
  target = latestVersion(schema),
): { migrations: Migration[]; version: number } {
  const latest = latestVersion(schema);
  if (current > latest) throw schema.tooNew(current);
  return {
    migrations: schema.migrations.filter(
      (migration) => migration.version > current && migration.version <= target,
    ),
    version: Math.max(current, Math.min(target, latest)),
  };
}
