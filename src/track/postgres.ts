/**
 * Run store in PostgreSQL (node-postgres), in the same database (and `?schema=NAME`) as the studies
 * of `--storage postgres://...`.
 *
 * Writes are asynchronous here (synchronousWrites false): a training loop, which blocks its thread,
 * cannot wait for them. RunTracker therefore sends them through a writer thread with its own
 * connection (./background-writer.ts), so points still reach the database while the loop runs.
 *
 * Every timestamp is the database server's clock, as in the study storage. Connections, retried
 * transactions and migrations: src/sql/postgres.ts.
 */
import type pg from 'pg';
import { PostgresDatabase, serverNow as NOW } from '../sql/postgres.js';
import { workerName } from '../sql/worker.js';
import { artifactInfoFromRow, mergedJson, metricsFromRows, runFromRow } from './rows.js';
import { trackSchema, type ArtifactRow, type PointRow, type RunRow } from './schema.js';
import {
  artifactBytes,
  checkMetric,
  checkRunName,
  RunNotFoundError,
  storedValue,
  type Artifact,
  type ArtifactInfo,
  type JsonObject,
  type MetricInput,
  type MetricsQuery,
  type NewArtifact,
  type NewRun,
  type RunFilter,
  type RunMetrics,
  type RunRecord,
  type RunState,
  type RunStore,
} from './types.js';

const runColumns =
  'run_id, name, kind, state, parent_id, study, trial_number, config, summary, error, worker, started_at, updated_at, completed_at, point_count';
const artifactColumns = 'artifact_id, run_id, name, kind, media_type, path, size, created_at';
/** Bumps a run's revision and time stamp (see schema.ts). */
const touched = `updated_at = GREATEST(updated_at, ${NOW}), revision = revision + 1`;

export class PostgresRunStore implements RunStore {
  readonly url: string;
  readonly synchronousWrites = false;
  readonly schema: string | null;
  private readonly database: PostgresDatabase;

  private constructor(url: string, database: PostgresDatabase) {
    this.url = url;
    this.database = database;
    this.schema = database.namespace;
  }

  /**
   * Connects and creates or upgrades the run tables.
   * @example const store = await PostgresRunStore.connect('postgres://tensile@db.example/studies');
   */
  static async connect(
    url: string,
    options: {
      maxConnections?: number;
      /** Seconds to keep retrying while the database is unreachable (default 60; see src/sql/retry.ts). */
      retrySeconds?: number;
    } = {},
  ): Promise<PostgresRunStore> {
    const database = await PostgresDatabase.connect(url, {
      feature: 'a PostgreSQL run store',
      what: 'PostgreSQL run store',
      schema: trackSchema,
      maxConnections: options.maxConnections ?? 3,
      retrySeconds: options.retrySeconds,
    });
    return new PostgresRunStore(url, database);
  }

  /** `action` in a transaction, retried on a fresh connection (see src/sql/postgres.ts). */
  private async transaction<T>(action: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.database.transaction(action);
  }

  /** A single statement outside a transaction, retried like a transaction. */
  private async poolQuery<R extends pg.QueryResultRow>(
    text: string,
    values: unknown[] = [],
  ): Promise<pg.QueryResult<R>> {
    return this.database.query<R>(text, values);
  }

  private async runRow(runId: number, client: pg.PoolClient | null = null): Promise<RunRow> {
    const row = (
      client === null
        ? await this.poolQuery<RunRow>(`SELECT ${runColumns} FROM track_runs WHERE run_id = $1`, [runId])
        : await client.query<RunRow>(`SELECT ${runColumns} FROM track_runs WHERE run_id = $1`, [runId])
    ).rows[0];
    if (row === undefined) throw new RunNotFoundError(`run ${runId}`);
    return row;
  }

  async createRun(init: NewRun): Promise<RunRecord> {
    checkRunName(init.name);
    const row = (
      await this.poolQuery<RunRow>(
        `INSERT INTO track_runs (name, kind, state, parent_id, study, trial_number, config, summary, worker, started_at, updated_at)
         VALUES ($1, $2, 'running', $3, $4, $5, $6, '{}', $7, ${NOW}, ${NOW}) RETURNING ${runColumns}`,
        [
          init.name,
          init.kind,
          init.parentId ?? null,
          init.study ?? null,
          init.trialNumber ?? null,
          JSON.stringify(init.config ?? {}),
          init.worker ?? workerName(),
        ],
      )
    ).rows[0]!;
    return runFromRow(row);
  }

  private async merge(runId: number, column: 'config' | 'summary', changes: JsonObject): Promise<void> {
    await this.transaction(async (client) => {
      const row = (
        await client.query<RunRow>(`SELECT ${runColumns} FROM track_runs WHERE run_id = $1 FOR UPDATE`, [
          runId,
        ])
      ).rows[0];
      if (row === undefined) throw new RunNotFoundError(`run ${runId}`);
      await client.query(`UPDATE track_runs SET ${column} = $1, ${touched} WHERE run_id = $2`, [
        mergedJson(row[column], changes),
        runId,
      ]);
    });
  }

  async updateConfig(runId: number, config: JsonObject): Promise<void> {
    await this.merge(runId, 'config', config);
  }

  async updateSummary(runId: number, summary: JsonObject): Promise<void> {
    await this.merge(runId, 'summary', summary);
  }

  async logMetrics(runId: number, points: readonly MetricInput[]): Promise<void> {
    points.forEach(checkMetric);
    if (points.length === 0) {
      await this.runRow(runId);
      return;
    }
    await this.transaction(async (client) => {
      const updated = await client.query(
        `UPDATE track_runs SET point_count = point_count + $1, ${touched} WHERE run_id = $2`,
        [points.length, runId],
      );
      if (updated.rowCount === 0) throw new RunNotFoundError(`run ${runId}`);
      // One statement for all points: columns passed as arrays and unnested by the server.
      await client.query(
        `INSERT INTO track_metrics (run_id, name, step, x, value, time)
         SELECT $1, name, step, x, value, COALESCE(time, ${NOW})
         FROM unnest($2::text[], $3::integer[], $4::double precision[], $5::double precision[], $6::double precision[])
           AS p(name, step, x, value, time)`,
        [
          runId,
          points.map((p) => p.name),
          points.map((p) => p.step),
          points.map((p) => p.x),
          points.map((p) => storedValue(p.value)),
          points.map((p) => p.time ?? null),
        ],
      );
    });
  }

  async finishRun(
    runId: number,
    state: Exclude<RunState, 'running'>,
    error: string | null = null,
  ): Promise<boolean> {
    return this.transaction(async (client) => {
      await this.runRow(runId, client);
      const result = await client.query(
        `UPDATE track_runs SET state = $1, error = $2, completed_at = ${NOW}, ${touched}
         WHERE run_id = $3 AND state = 'running'`,
        [state, error, runId],
      );
      return result.rowCount === 1;
    });
  }

  async addArtifact(runId: number, artifact: NewArtifact): Promise<ArtifactInfo> {
    const content = artifactBytes(artifact.content);
    return this.transaction(async (client) => {
      await this.runRow(runId, client);
      await client.query('DELETE FROM track_artifacts WHERE run_id = $1 AND name = $2', [
        runId,
        artifact.name,
      ]);
      const row = (
        await client.query<ArtifactRow>(
          `INSERT INTO track_artifacts (run_id, name, kind, media_type, path, content, size, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, ${NOW}) RETURNING ${artifactColumns}`,
          [
            runId,
            artifact.name,
            artifact.kind,
            artifact.mediaType,
            artifact.path ?? null,
            content === null ? null : Buffer.from(content.buffer, content.byteOffset, content.byteLength),
            content?.length ?? 0,
          ],
        )
      ).rows[0]!;
      await client.query(`UPDATE track_runs SET ${touched} WHERE run_id = $1`, [runId]);
      return artifactInfoFromRow(row);
    });
  }

  async getRun(runId: number): Promise<RunRecord> {
    return runFromRow(await this.runRow(runId));
  }

  async listRuns(filter: RunFilter = {}): Promise<RunRecord[]> {
    const conditions: string[] = [];
    const values: (string | number)[] = [];
    const add = (condition: string, value: string | number) => {
      values.push(value);
      conditions.push(condition.replace('?', `$${values.length}`));
    };
    if (filter.kind !== undefined) add('kind = ?', filter.kind);
    if (filter.state !== undefined) add('state = ?', filter.state);
    if (filter.name !== undefined) add('name = ?', filter.name);
    if (filter.study !== undefined) add('study = ?', filter.study);
    if (filter.parentId === null) conditions.push('parent_id IS NULL');
    else if (filter.parentId !== undefined) add('parent_id = ?', filter.parentId);
    const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
    const limit = filter.limit !== undefined ? `LIMIT ${Math.max(0, Math.floor(filter.limit))}` : '';
    const rows = (
      await this.poolQuery<RunRow>(
        `SELECT ${runColumns} FROM track_runs ${where} ORDER BY run_id DESC ${limit}`,
        values,
      )
    ).rows;
    return rows.map(runFromRow);
  }

  async getMetrics(runId: number, query: MetricsQuery = {}): Promise<RunMetrics> {
    await this.runRow(runId);
    const after = query.afterPointId ?? 0;
    const values: unknown[] = [runId, after];
    let nameCondition = '';
    if (query.names !== undefined) {
      values.push([...query.names]);
      nameCondition = 'AND name = ANY($3::text[])';
    }
    const rows = (
      await this.poolQuery<PointRow>(
        `SELECT point_id, name, step, x, value, time FROM track_metrics
         WHERE run_id = $1 AND point_id > $2 ${nameCondition} ORDER BY point_id`,
        values,
      )
    ).rows;
    return metricsFromRows(runId, after, rows);
  }

  async listArtifacts(runId: number): Promise<ArtifactInfo[]> {
    await this.runRow(runId);
    const rows = (
      await this.poolQuery<ArtifactRow>(
        `SELECT ${artifactColumns} FROM track_artifacts WHERE run_id = $1 ORDER BY artifact_id`,
        [runId],
      )
    ).rows;
    return rows.map(artifactInfoFromRow);
  }

  async getArtifact(artifactId: number): Promise<Artifact> {
    const row = (
      await this.poolQuery<ArtifactRow & { content: Buffer | null }>(
        `SELECT ${artifactColumns}, content FROM track_artifacts WHERE artifact_id = $1`,
        [artifactId],
      )
    ).rows[0];
    if (row === undefined) throw new RunNotFoundError(`artifact ${artifactId}`);
    return {
      ...artifactInfoFromRow(row),
      content: row.content === null ? null : new Uint8Array(row.content),
    };
  }

  async deleteRun(runId: number): Promise<void> {
    await this.runRow(runId);
    await this.poolQuery('DELETE FROM track_runs WHERE run_id = $1', [runId]);
  }

  async changeToken(): Promise<string> {
    const row = (
      await this.poolQuery<{
        updated: string | null;
        runs: string;
        newest: string | null;
        points: string | null;
        artifacts: string | null;
      }>(
        `SELECT (SELECT sum(revision) FROM track_runs) AS updated, (SELECT count(*) FROM track_runs) AS runs,
                (SELECT max(run_id) FROM track_runs) AS newest,
                (SELECT max(point_id) FROM track_metrics) AS points, (SELECT max(artifact_id) FROM track_artifacts) AS artifacts`,
      )
    ).rows[0]!;
    return `${row.updated ?? 0}:${row.runs}:${row.newest ?? 0}:${row.points ?? 0}:${row.artifacts ?? 0}`;
  }

  async close(): Promise<void> {
    await this.database.close();
  }
}
