/**
 * Run store in a SQLite file (better-sqlite3), by default the same `./tensile.db` that holds studies.
 *
 * - better-sqlite3 is synchronous, so every write has happened when the method returns
 *   (synchronousWrites): a training loop, which runs synchronously, writes its points while it runs
 *   and a dashboard in another process sees them at once.
 * - WAL journal: readers (the dashboard) never block the writer (the training) and the other way round.
 *   synchronous=NORMAL: in WAL mode a committed write survives the process being killed, and only
 *   a power cut may lose the last commits; metric points are not worth an fsync each.
 * - The migration runs under BEGIN IMMEDIATE, so processes opening a fresh file together create the
 *   tables once (src/sql/sqlite.ts opens the file and runs migrations and transactions).
 */
import {
  isSqliteBusy,
  migrateSqlite,
  openSqlite,
  sqliteBusyMilliseconds,
  writeTransaction,
  type SqliteDatabase,
} from '../sql/sqlite.js';
import { workerName } from '../sql/worker.js';
import { artifactInfoFromRow, mergedJson, runFromRow } from './rows.js';
import { trackSchema, type ArtifactRow, type RunRow } from './schema.js';
import {
  artifactBytes,
  checkMetric,
  checkRunName,
  emptySeries,
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
import type { WriteRequest } from './background-writer.js';

/** Applies the missing run-tracking migrations in one immediate transaction; returns the version. */
export function migrateTrackSqlite(db: SqliteDatabase): number {
  return migrateSqlite(db, trackSchema);
}

const runColumns =
  'run_id, name, kind, state, parent_id, study, trial_number, config, summary, error, worker, started_at, updated_at, completed_at, point_count';
const artifactColumns = 'artifact_id, run_id, name, kind, media_type, path, size, created_at';

/** The writes a training loop makes, which writeNow performs without waiting long. */
export type QuickWrite = Extract<
  WriteRequest,
  { method: 'logMetrics' | 'updateConfig' | 'updateSummary' | 'finishRun' }
>;

export class SqliteRunStore implements RunStore {
  readonly url: string;
  readonly synchronousWrites = true;
  readonly file: string;
  private readonly db: SqliteDatabase;

  /**
   * Opens (creating when needed) the database file and brings the run tables up to date.
   * @example const store = new SqliteRunStore('tensile.db');
   */
  constructor(file: string) {
    const opened = openSqlite(file, {
      feature: 'a SQLite run store',
      synchronous: 'NORMAL',
      schema: trackSchema,
    });
    this.db = opened.db;
    this.file = opened.file;
    this.url = opened.url;
  }

  private runRow(runId: number): RunRow {
    const row = this.db.prepare(`SELECT ${runColumns} FROM track_runs WHERE run_id = ?`).get(runId) as
      RunRow | undefined;
    if (row === undefined) throw new RunNotFoundError(`run ${runId}`);
    return row;
  }

  async createRun(init: NewRun): Promise<RunRecord> {
    checkRunName(init.name);
    const now = Date.now();
    const result = this.db
      .prepare(
        `INSERT INTO track_runs (name, kind, state, parent_id, study, trial_number, config, summary, worker, started_at, updated_at)
         VALUES (?, ?, 'running', ?, ?, ?, ?, '{}', ?, ?, ?)`,
      )
      .run(
        init.name,
        init.kind,
        init.parentId ?? null,
        init.study ?? null,
        init.trialNumber ?? null,
        JSON.stringify(init.config ?? {}),
        init.worker ?? workerName(),
        now,
        now,
      );
    return runFromRow(this.runRow(Number(result.lastInsertRowid)));
  }

  private merge(runId: number, column: 'config' | 'summary', changes: JsonObject): void {
    writeTransaction(this.db, () => {
      const row = this.runRow(runId);
      this.db
        .prepare(
          `UPDATE track_runs SET ${column} = ?, updated_at = max(updated_at, ?), revision = revision + 1 WHERE run_id = ?`,
        )
        .run(mergedJson(row[column], changes), Date.now(), runId);
    });
  }

  async updateConfig(runId: number, config: JsonObject): Promise<void> {
    this.merge(runId, 'config', config);
  }

  async updateSummary(runId: number, summary: JsonObject): Promise<void> {
    this.merge(runId, 'summary', summary);
  }

  /**
   * One tracking write, now, waiting at most `waitMilliseconds` for another connection's write lock.
   * Returns false, having written nothing, when the database stayed locked; throws any other error.
   * Synchronous, for a training loop that must not stall on a lock (RunTracker defers and retries).
   */
  writeNow(write: QuickWrite, waitMilliseconds: number): boolean {
    this.db.pragma(`busy_timeout = ${Math.max(0, Math.round(waitMilliseconds))}`);
    try {
      switch (write.method) {
        case 'logMetrics':
          this.logMetricsNow(write.runId, write.points);
          break;
        case 'updateConfig':
          this.merge(write.runId, 'config', write.values);
          break;
        case 'updateSummary':
          this.merge(write.runId, 'summary', write.values);
          break;
        case 'finishRun':
          this.finishRunNow(write.runId, write.state, write.error);
          break;
      }
      return true;
    } catch (error) {
      if (isSqliteBusy(error)) return false;
      throw error;
    } finally {
      this.db.pragma(`busy_timeout = ${sqliteBusyMilliseconds}`);
    }
  }

  async logMetrics(runId: number, points: readonly MetricInput[]): Promise<void> {
    this.logMetricsNow(runId, points);
  }

  private logMetricsNow(runId: number, points: readonly MetricInput[]): void {
    points.forEach(checkMetric);
    const now = Date.now();
    const insert = this.db.prepare(
      'INSERT INTO track_metrics (run_id, name, step, x, value, time) VALUES (?, ?, ?, ?, ?, ?)',
    );
    writeTransaction(this.db, () => {
      const updated = this.db
        .prepare(
          'UPDATE track_runs SET point_count = point_count + ?, updated_at = max(updated_at, ?), revision = revision + 1 WHERE run_id = ?',
        )
        .run(points.length, now, runId);
      if (updated.changes === 0) throw new RunNotFoundError(`run ${runId}`);
      for (const point of points) {
        insert.run(runId, point.name, point.step, point.x, storedValue(point.value), point.time ?? now);
      }
    });
  }

  async finishRun(
    runId: number,
    state: Exclude<RunState, 'running'>,
    error: string | null = null,
  ): Promise<boolean> {
    return this.finishRunNow(runId, state, error);
  }

  private finishRunNow(runId: number, state: Exclude<RunState, 'running'>, error: string | null): boolean {
    const now = Date.now();
    return writeTransaction(this.db, () => {
      this.runRow(runId);
      const result = this.db
        .prepare(
          `UPDATE track_runs SET state = ?, error = ?, completed_at = ?, updated_at = max(updated_at, ?), revision = revision + 1
             WHERE run_id = ? AND state = 'running'`,
        )
        .run(state, error, now, now, runId);
      return result.changes === 1;
    });
  }

  async addArtifact(runId: number, artifact: NewArtifact): Promise<ArtifactInfo> {
    const content = artifactBytes(artifact.content);
    const now = Date.now();
    return writeTransaction(this.db, () => {
      this.runRow(runId);
      this.db.prepare('DELETE FROM track_artifacts WHERE run_id = ? AND name = ?').run(runId, artifact.name);
      const result = this.db
        .prepare(
          `INSERT INTO track_artifacts (run_id, name, kind, media_type, path, content, size, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          runId,
          artifact.name,
          artifact.kind,
          artifact.mediaType,
          artifact.path ?? null,
          content === null ? null : Buffer.from(content.buffer, content.byteOffset, content.byteLength),
          content?.length ?? 0,
          now,
        );
      this.db
        .prepare(
          'UPDATE track_runs SET updated_at = max(updated_at, ?), revision = revision + 1 WHERE run_id = ?',
        )
        .run(now, runId);
      const row = this.db
        .prepare(`SELECT ${artifactColumns} FROM track_artifacts WHERE artifact_id = ?`)
        .get(result.lastInsertRowid) as ArtifactRow;
      return artifactInfoFromRow(row);
    });
  }

  async getRun(runId: number): Promise<RunRecord> {
    return runFromRow(this.runRow(runId));
  }

  async listRuns(filter: RunFilter = {}): Promise<RunRecord[]> {
    const conditions: string[] = [];
    const values: (string | number)[] = [];
    if (filter.kind !== undefined) {
      conditions.push('kind = ?');
      values.push(filter.kind);
    }
    if (filter.state !== undefined) {
      conditions.push('state = ?');
      values.push(filter.state);
    }
    if (filter.name !== undefined) {
      conditions.push('name = ?');
      values.push(filter.name);
    }
    if (filter.study !== undefined) {
      conditions.push('study = ?');
      values.push(filter.study);
    }
    if (filter.parentId === null) conditions.push('parent_id IS NULL');
    else if (filter.parentId !== undefined) {
      conditions.push('parent_id = ?');
      values.push(filter.parentId);
    }
    const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
    const limit = filter.limit !== undefined ? `LIMIT ${Math.max(0, Math.floor(filter.limit))}` : '';
    const rows = this.db
      .prepare(`SELECT ${runColumns} FROM track_runs ${where} ORDER BY run_id DESC ${limit}`)
      .all(...values) as RunRow[];
    return rows.map(runFromRow);
  }

  async getMetrics(runId: number, query: MetricsQuery = {}): Promise<RunMetrics> {
    this.runRow(runId);
    const after = query.afterPointId ?? 0;
    const names = query.names;
    const nameCondition =
      names === undefined ? '' : `AND name IN (${names.map(() => '?').join(', ') || 'NULL'})`;
    // Rows as arrays rather than objects: a 100,000-point run reads in a fraction of the time.
    const rows = this.db
      .prepare(
        `SELECT point_id, name, step, x, value, time FROM track_metrics
         WHERE run_id = ? AND point_id > ? ${nameCondition} ORDER BY point_id`,
      )
      .raw(true)
      .all(runId, after, ...(names ?? [])) as [number, string, number, number, number | null, number][];
    const result: RunMetrics = { runId, lastPointId: after, series: {} };
    for (const [pointId, name, step, x, value, time] of rows) {
      const series = (result.series[name] ??= emptySeries());
      series.step.push(step);
      series.x.push(x);
      series.value.push(value);
      series.time.push(time);
      if (pointId > result.lastPointId) result.lastPointId = pointId;
    }
    return result;
  }

  async listArtifacts(runId: number): Promise<ArtifactInfo[]> {
    this.runRow(runId);
    const rows = this.db
      .prepare(`SELECT ${artifactColumns} FROM track_artifacts WHERE run_id = ? ORDER BY artifact_id`)
      .all(runId) as ArtifactRow[];
    return rows.map(artifactInfoFromRow);
  }

  async getArtifact(artifactId: number): Promise<Artifact> {
    const row = this.db
      .prepare(`SELECT ${artifactColumns}, content FROM track_artifacts WHERE artifact_id = ?`)
      .get(artifactId) as (ArtifactRow & { content: Buffer | null }) | undefined;
    if (row === undefined) throw new RunNotFoundError(`artifact ${artifactId}`);
    return {
      ...artifactInfoFromRow(row),
      content: row.content === null ? null : new Uint8Array(row.content),
    };
  }

  async deleteRun(runId: number): Promise<void> {
    this.runRow(runId);
    // Child runs, points and artifacts go with it (ON DELETE CASCADE).
    this.db.prepare('DELETE FROM track_runs WHERE run_id = ?').run(runId);
  }

  async changeToken(): Promise<string> {
    const row = this.db
      .prepare(
        `SELECT (SELECT total(revision) FROM track_runs) AS updated, (SELECT count(*) FROM track_runs) AS runs,
                (SELECT max(run_id) FROM track_runs) AS newest,
                (SELECT max(point_id) FROM track_metrics) AS points, (SELECT max(artifact_id) FROM track_artifacts) AS artifacts`,
      )
      .get() as {
      updated: number | null;
      runs: number;
      newest: number | null;
      points: number | null;
      artifacts: number | null;
    };
    return `${row.updated ?? 0}:${row.runs}:${row.newest ?? 0}:${row.points ?? 0}:${row.artifacts ?? 0}`;
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
