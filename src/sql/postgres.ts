/**
 * PostgreSQL (node-postgres) for the study storage and the run store: a pool of connections,
 * transactions that survive a database restart (./retry.ts), the migration runner, and tensile's
 * `?schema=NAME` URL parameter.
 *
 * - `?schema=NAME` keeps the tables in their own PostgreSQL schema (created when missing): handy for
 *   tests and for several independent setups in one database.
 * - Time: every timestamp is the database server's clock (serverNow), so machines whose clocks
 *   disagree still order and judge them alike.
 */
import type pg from 'pg';
import { requireOptional } from '../util/optional-dependency.js';
import {
  migrationPlan,
  selectVersionStatement,
  upsertVersionStatement,
  versionTableStatement,
  type VersionedSchema,
} from './migrations.js';
import { isConnectionError, RetryPolicy } from './retry.js';

/** The server's clock in milliseconds since 1970, as SQL. */
export const serverNow = `(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::double precision`;

export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Splits tensile's own `schema` parameter off a connection URL. */
export function parsePostgresUrl(url: string): { connectionString: string; schema: string | null } {
  const parsed = new URL(url);
  const schema = parsed.searchParams.get('schema');
  parsed.searchParams.delete('schema');
  return { connectionString: parsed.toString(), schema: schema === null || schema === '' ? null : schema };
}

/** A stable signed 32-bit key (FNV-1a) for an advisory lock named by `text`. */
function advisoryLockKey(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash | 0;
}

/**
 * Runs `action` in a transaction on one pooled connection, again from the start on a fresh
 * connection when the connection fails (see retry.ts), for up to the retry time.
 */
export async function retriedTransaction<T>(
  pool: pg.Pool,
  retry: RetryPolicy,
  action: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  return retry.run(async () => {
    // A checked-out client whose connection dies between queries emits 'error' with no pool
    // listener attached: unhandled, that would end the process (the failing query reports it).
    // The listener goes on in the pool's callback, in the same tick as the checkout: with
    // `await pool.connect()` an error arriving in the same network packet as the connection's
    // readiness (a server shutting down) would be emitted before the await resumed.
    let broken: Error | undefined;
    const onError = (error: Error) => {
      broken = error;
    };
    const client = await new Promise<pg.PoolClient>((resolve, reject) => {
      pool.connect((error, connected) => {
        if (error || connected === undefined) {
          reject(error ?? new Error('no connection'));
          return;
        }
        connected.on('error', onError);
        resolve(connected);
      });
    });
    try {
      await client.query('BEGIN');
      const result = await action(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      if (isConnectionError(error)) broken ??= error as Error;
      else await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.removeListener('error', onError);
      // A broken connection is discarded rather than handed to the next caller.
      client.release(broken);
    }
  });
}

export interface PostgresConnectOptions {
  /** What needs the driver, for the message when it is missing: 'a PostgreSQL run store'. */
  feature: string;
  /** What the store is, for the outage messages: 'PostgreSQL run store'. */
  what: string;
  /** The tables to create or upgrade on connecting. */
  schema: VersionedSchema;
  /** Apply migrations up to this version only (tests of upgrades); default: the latest. */
  migrateTo?: number;
  /** Connections in the pool. */
  maxConnections: number;
  /** Seconds an operation keeps retrying while the database is unreachable (default: see retry.ts). */
  retrySeconds?: number;
}

/** A pool of connections to one database (and PostgreSQL schema), with retried operations. */
export class PostgresDatabase {
  readonly pool: pg.Pool;
  /** The PostgreSQL schema from the URL's `?schema=`, or null for the connection's default. */
  readonly namespace: string | null;
  readonly retry: RetryPolicy;

  private constructor(pool: pg.Pool, namespace: string | null, retry: RetryPolicy) {
    this.pool = pool;
    this.namespace = namespace;
    this.retry = retry;
  }

  /**
   * Connects, creating the PostgreSQL schema (when the URL names one) and options.schema's tables,
   * or upgrading them. node-postgres is loaded here, so tensile works without it until then.
   */
  static async connect(url: string, options: PostgresConnectOptions): Promise<PostgresDatabase> {
    const { connectionString, schema: namespace } = parsePostgresUrl(url);
    const driver = requireOptional<typeof pg>('pg', options.feature);
    // The schema is set by the connection's startup options: a "SET search_path" query issued on
    // connect would overlap the pool's first query, which node-postgres deprecates (and warns about).
    const pool = new driver.Pool({
      connectionString,
      max: options.maxConnections,
      ...(namespace !== null
        ? { options: `-c search_path=${quoteIdentifier(namespace).replace(/ /g, '\\ ')}` }
        : {}),
    });
    // An idle connection dropped by the server must not crash the process; the next query reconnects.
    pool.on('error', () => undefined);
    const retry = new RetryPolicy({
      what: options.what,
      seconds: options.retrySeconds,
    });
    const database = new PostgresDatabase(pool, namespace, retry);
    try {
      await database.migrate(options.schema, options.migrateTo);
    } catch (error) {
      await pool.end();
      throw error;
    }
    return database;
  }

  /** `action` in a transaction, retried on a fresh connection (see retriedTransaction). */
  async transaction<T>(action: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return retriedTransaction(this.pool, this.retry, action);
  }

  /** A single statement outside a transaction, retried like a transaction. */
  async query<R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<pg.QueryResult<R>> {
    return this.retry.run(() => this.pool.query<R>(text, values));
  }

  /** Applies the missing migrations of `schema` (up to `target`) in one transaction; returns the version. */
  async migrate(schema: VersionedSchema, target?: number): Promise<number> {
    return this.transaction(async (client) => {
      // Processes starting together: one creates or upgrades, the others wait here and then find
      // nothing to do (CREATE ... IF NOT EXISTS alone is not safe against concurrent creators).
      await client.query('SELECT pg_advisory_xact_lock($1)', [
        advisoryLockKey(`${schema.lockName}:${this.namespace ?? ''}`),
      ]);
      if (this.namespace !== null) {
        // The study and run tables have locks of their own, but share the PostgreSQL schema: a study
        // storage and a run store creating it together would both pass IF NOT EXISTS, and the second
        // would fail on pg_namespace's unique index.
        await client.query('SELECT pg_advisory_xact_lock($1)', [
          advisoryLockKey(`tensile-namespace:${this.namespace}`),
        ]);
        await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(this.namespace)}`);
        await client.query(`SET LOCAL search_path TO ${quoteIdentifier(this.namespace)}`);
      }
      await client.query(versionTableStatement(schema));
      const row = (await client.query<{ version: number }>(selectVersionStatement(schema))).rows[0];
      const plan = migrationPlan(schema, row?.version ?? 0, target);
      for (const migration of plan.migrations)
        for (const statement of migration.postgres) await client.query(statement);
      await client.query(upsertVersionStatement(schema, '$1'), [plan.version]);
      return plan.version;
    });
  }

  /** The version recorded for `schema`. */
  async schemaVersion(schema: VersionedSchema): Promise<number> {
    return (await this.query<{ version: number }>(selectVersionStatement(schema))).rows[0]!.version;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
