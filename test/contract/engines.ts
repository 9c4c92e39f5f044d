/**
 * The database engines the storage contracts run over (./study-store.ts, ./run-store.ts): memory,
 * SQLite, and PostgreSQL when TENSILE_TEST_POSTGRES holds a connection URL (CI starts a server:
 * .ci/run, and "PostgreSQL in CI" in docs/tuning.md). Each fresh database is a URL the stores' own
 * openers accept: a new SQLite file in a temporary directory, or a new PostgreSQL schema
 * (`?schema=`); dropFreshDatabases() removes them all.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pg from 'pg';

export const postgresUrl = process.env.TENSILE_TEST_POSTGRES;

/** Why the PostgreSQL tests do not run here, or false when they do. */
export const postgresSkip: string | false = postgresUrl
  ? false
  : 'PostgreSQL tests skipped: set TENSILE_TEST_POSTGRES=postgres://USER@HOST:PORT/DB (see docs/tuning.md, PostgreSQL in CI)';

export interface Engine {
  name: 'memory' | 'sqlite' | 'postgres';
  /** Why this engine's tests are skipped here, or false. */
  skip: string | false;
  /** Whether a second connection can open the same data (every engine but memory). */
  shared: boolean;
}

export const engines: readonly Engine[] = [
  { name: 'memory', skip: false, shared: false },
  { name: 'sqlite', skip: false, shared: true },
  { name: 'postgres', skip: postgresSkip, shared: true },
];

let temporary: string | null = null;
const schemas: string[] = [];
let files = 0;

/** A new, empty PostgreSQL schema's URL (the schema is created by the store that opens it). */
export function postgresSchemaUrl(): string {
  const schema = `tensile_test_${process.pid}_${schemas.length}_${Math.random().toString(36).slice(2, 8)}`;
  schemas.push(schema);
  const url = new URL(postgresUrl!);
  url.searchParams.set('schema', schema);
  return url.toString();
}

/** A new SQLite file's path (not created yet). */
export function sqliteFilePath(name = 'store'): string {
  temporary ??= fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-contract-'));
  return path.join(temporary, `${name}-${files++}.db`);
}

/** A URL naming a fresh, empty database of `engine` ('memory' names a new one each time it is opened). */
export function freshUrl(engine: Engine): string {
  switch (engine.name) {
    case 'memory':
      return 'memory';
    case 'sqlite':
      return `sqlite:${sqliteFilePath()}`;
    case 'postgres':
      return postgresSchemaUrl();
  }
}

/** Removes every SQLite file and PostgreSQL schema handed out so far (call it in an `after` hook). */
export async function dropFreshDatabases(): Promise<void> {
  if (temporary !== null) fs.rmSync(temporary, { recursive: true, force: true });
  temporary = null;
  if (postgresUrl && schemas.length > 0) {
    const client = new pg.Client({ connectionString: postgresUrl });
    await client.connect();
    for (const schema of schemas.splice(0)) await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await client.end();
  }
}
