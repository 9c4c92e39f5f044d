/**
 * SQLite (better-sqlite3) for the study storage and the run store, which by default share one file:
 * opening a file, the two kinds of transaction, and the migration runner.
 *
 * - WAL journal: readers never block the writer and the other way round, so a dashboard reads while a
 *   training writes and several tuning workers share one file.
 * - better-sqlite3 is synchronous: a write has happened when the call returns, and other processes see
 *   it at once.
 * - A write transaction is BEGIN IMMEDIATE: it takes the database's write lock at the start, so two
 *   processes can never both read "trial 7 is waiting" and both claim it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type Database from 'better-sqlite3';
import { requireOptional } from '../util/optional-dependency.js';
import {
  migrationPlan,
  selectVersionStatement,
  upsertVersionStatement,
  versionTableStatement,
  type VersionedSchema,
} from './migrations.js';

export type SqliteDatabase = Database.Database;

/** How long a statement waits for another connection's write lock before SQLITE_BUSY. */
export const sqliteBusyMilliseconds = 30_000;

export interface SqliteOpenOptions {
  /** What needs the driver, for the message when it is missing: 'a SQLite run store'. */
  feature: string;
  /**
   * FULL: a call that returned survives a power cut (studies: a trial's result took an hour).
   * NORMAL: it survives the process being killed, and only a power cut may lose the last commits
   * (runs: metric points are not worth an fsync each).
   */
  synchronous: 'FULL' | 'NORMAL';
  /** The tables to create or upgrade on opening. */
  schema: VersionedSchema;
  /** Apply migrations up to this version only (tests of upgrades); default: the latest. */
  migrateTo?: number;
}

/** An open file, its absolute path (or ':memory:') and the URL that names it. */
export interface SqliteFile {
  db: SqliteDatabase;
  file: string;
  url: string;
}

/**
 * Opens (creating it and its directory when needed) a SQLite file in WAL mode with foreign keys on,
 * and creates or upgrades options.schema's tables (closing the file again when that fails: a
 * database newer than this code). better-sqlite3, a native addon, is loaded here, so tensile works
 * without it until a SQLite file is opened.
 */
export function openSqlite(file: string, options: SqliteOpenOptions): SqliteFile {
  const resolved = file === ':memory:' ? file : path.resolve(file);
  if (resolved !== ':memory:') fs.mkdirSync(path.dirname(resolved), { recursive: true });
  const Driver = requireOptional<typeof Database>('better-sqlite3', options.feature);
  // Waits up to 30 s for another process's write lock (a tuning worker, a second training).
  const db = new Driver(resolved, { timeout: sqliteBusyMilliseconds });
  try {
    enableWriteAheadLog(db);
  } catch (error) {
    db.close();
    throw error;
  }
  db.pragma(`synchronous = ${options.synchronous}`);
  db.pragma('foreign_keys = ON');
  try {
    migrateSqlite(db, options.schema, options.migrateTo);
  } catch (error) {
    db.close();
    throw error;
  }
  return { db, file: resolved, url: `sqlite:${resolved}` };
}

/**
 * Switches the file to WAL (a no-op once it is). The switch takes the file's exclusive lock from a
 * shared one, and SQLite answers SQLITE_BUSY at once, without its busy handler, when another
 * connection is already waiting to write (waiting could deadlock the two): that happens when several
 * processes open a new file together (tuning workers started at once). So retry here, every 20 ms,
 * for as long as the busy timeout would have waited.
 */
export function enableWriteAheadLog(db: Pick<SqliteDatabase, 'pragma'>): void {
  const deadline = Date.now() + sqliteBusyMilliseconds;
  for (;;) {
    try {
      db.pragma('journal_mode = WAL');
      return;
    } catch (error) {
      if (!isSqliteBusy(error) || Date.now() > deadline) throw error;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
}

/** Runs `action` in a BEGIN IMMEDIATE transaction: for anything that reads and then writes. */
export function writeTransaction<T>(db: SqliteDatabase, action: () => T): T {
  return db.transaction(action).immediate();
}

/** Runs `action` in a deferred transaction: several reads from one snapshot. */
export function readTransaction<T>(db: SqliteDatabase, action: () => T): T {
  return db.transaction(action).deferred();
}

/** Whether `error` is SQLite's "the database is locked" (by another connection's transaction). */
export function isSqliteBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

/**
 * Applies the missing migrations of `schema` (up to `target`, default the latest) in one immediate
 * transaction, so processes opening a fresh file together create the tables once; returns the
 * version now recorded.
 */
export function migrateSqlite(db: SqliteDatabase, schema: VersionedSchema, target?: number): number {
  return writeTransaction(db, () => {
    db.exec(versionTableStatement(schema));
    const row = db.prepare(selectVersionStatement(schema)).get() as { version: number } | undefined;
    const plan = migrationPlan(schema, row?.version ?? 0, target);
    for (const migration of plan.migrations) for (const statement of migration.sqlite) db.exec(statement);
    db.prepare(upsertVersionStatement(schema, '?')).run(plan.version);
    return plan.version;
  });
}

/** The version recorded for `schema` (after migrateSqlite). */
export function sqliteSchemaVersion(db: SqliteDatabase, schema: VersionedSchema): number {
  return (db.prepare(selectVersionStatement(schema)).get() as { version: number }).version;
}
