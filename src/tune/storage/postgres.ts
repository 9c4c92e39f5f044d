/**
 * Study storage in PostgreSQL (node-postgres): many workers on many machines share one study by
 * pointing at the same database.
 *
 * - Trial numbers: creating a trial locks the study's row (SELECT ... FOR UPDATE) for the rest of the
 *   transaction, so numbering and the trial budget are decided by one worker at a time per study.
 * - Claiming queued trials: one UPDATE ... WHERE trial_id = (SELECT ... FOR UPDATE SKIP LOCKED)
 *   RETURNING; concurrent claimers skip each other's rows instead of waiting or double-claiming.
 * - Finishing: UPDATE ... WHERE state IN ('running', 'waiting'): the first final state wins.
 * - Time: every timestamp, heartbeats included, is the database server's clock, so workers whose
 *   clocks disagree still judge heartbeats alike.
 * - `?schema=NAME` in the URL keeps the tables in their own schema (created when missing): handy for
 *   tests and for several independent setups in one database.
 * - Connections, retried transactions and migrations: src/sql/postgres.ts.
 */
import type pg from 'pg';
import { PostgresDatabase, serverNow as NOW } from '../../sql/postgres.js';
import {
  distributionFromJson,
  distributionToJson,
  toInternal,
  type Distribution,
  type JsonValue,
  type ParamValue,
} from '../distributions.js';
import {
  isFinished,
  trialStates,
  type FinishedTrialState,
  type FrozenTrial,
  type StudyDirection,
  type StudyRecord,
  type StudySummary,
  type TrialState,
} from '../frozen-trial.js';
import {
  assembleTrials,
  checkCompatible,
  checkFiniteValue,
  checkParamValue,
  checkStep,
  checkStudyName,
  retryDepth,
  retryTemplate,
  splitAttributes,
  staleTrialError,
} from './common.js';
import { studySchema, type AttributeRow, type ParamRow, type TrialRow, type ValueRow } from './schema.js';
import {
  DuplicateStudyError,
  NotFoundError,
  TrialFinishedError,
  type CreateTrialOptions,
  type StaleTrialOptions,
  type Storage,
  type TrialTemplate,
} from './storage.js';
import { closeStorageResources } from './resources.js';

/**
 * When the server started, on the same clock. No heartbeat could be stamped while it was down, so
 * until a grace period has passed since a restart no trial is judged dead: a live worker whose
 * stamps the restart interrupted must have the time to stamp again.
 */
const SERVER_STARTED = `(EXTRACT(EPOCH FROM pg_postmaster_start_time()) * 1000)::double precision`;

interface StudyRow {
  study_id: string;
  name: string;
  direction: StudyDirection;
  created_at: number;
}

export interface PostgresStorageOptions {
  /** Apply migrations up to this version only (tests of upgrades); default: the current version. */
  migrateTo?: number;
  /** Connections in the pool (default 4). */
  maxConnections?: number;
  /**
   * Seconds an operation keeps retrying while the database is unreachable (default 60, or
   * TENSILE_STORAGE_RETRY_SECONDS; see src/sql/retry.ts).
   */
  retrySeconds?: number;
}

export class PostgresStorage implements Storage {
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
   * Connects, creating the schema (when named) and tables or upgrading them.
   * @example await PostgresStorage.connect('postgres://tensile@db.example:5432/studies')
   */
  static async connect(url: string, options: PostgresStorageOptions = {}): Promise<PostgresStorage> {
    const database = await PostgresDatabase.connect(url, {
      feature: 'a PostgreSQL study storage',
      what: 'PostgreSQL study storage',
      schema: studySchema,
      maxConnections: options.maxConnections ?? 4,
      migrateTo: options.migrateTo,
      retrySeconds: options.retrySeconds,
    });
    return new PostgresStorage(url, database);
  }

  /** `action` in a transaction, retried on a fresh connection (see src/sql/postgres.ts). */
  private async transaction<T>(action: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.database.transaction(action);
  }

  /** The schema version of the database. */
  async schemaVersion(): Promise<number> {
    return this.database.schemaVersion(studySchema);
  }

  private async query<R extends pg.QueryResultRow>(
    text: string,
    values: unknown[] = [],
    on: pg.PoolClient | null = null,
  ): Promise<R[]> {
    return (on === null ? await this.database.query<R>(text, values) : await on.query<R>(text, values)).rows;
  }

  private async studyRecord(row: StudyRow, on: pg.PoolClient): Promise<StudyRecord> {
    const attributes = splitAttributes(
      await this.query<AttributeRow>(
        'SELECT kind, key, value FROM study_attributes WHERE study_id = $1',
        [row.study_id],
        on,
      ),
    );
    return {
      id: Number(row.study_id),
      name: row.name,
      direction: row.direction,
      createdAt: Number(row.created_at),
      userAttributes: attributes.user,
      systemAttributes: attributes.system,
    };
  }

  async createStudy(name: string, direction: StudyDirection): Promise<StudyRecord> {
    checkStudyName(name);
    return this.transaction(async (client) => {
      const rows = await this.query<StudyRow>(
        `INSERT INTO studies (name, direction, created_at) VALUES ($1, $2, ${NOW}) ON CONFLICT (name) DO NOTHING RETURNING *`,
        [name, direction],
        client,
      );
      if (rows.length === 0) throw new DuplicateStudyError(name);
      return this.studyRecord(rows[0]!, client);
    });
  }

  async getStudy(name: string): Promise<StudyRecord | null> {
    return this.transaction(async (client) => {
      const row = (await this.query<StudyRow>('SELECT * FROM studies WHERE name = $1', [name], client))[0];
      return row === undefined ? null : this.studyRecord(row, client);
    });
  }

  async getStudyById(studyId: number): Promise<StudyRecord> {
    return this.transaction(async (client) => {
      const row = (
        await this.query<StudyRow>('SELECT * FROM studies WHERE study_id = $1', [studyId], client)
      )[0];
      if (row === undefined) throw new NotFoundError(`study ${studyId}`);
      return this.studyRecord(row, client);
    });
  }

  async listStudies(): Promise<StudySummary[]> {
    return this.transaction(async (client) => {
      const rows = await this.query<StudyRow>('SELECT * FROM studies ORDER BY study_id', [], client);
      const counts = await this.query<{ study_id: string; state: TrialState; count: string }>(
        'SELECT study_id, state, COUNT(*) AS count FROM trials GROUP BY study_id, state',
        [],
        client,
      );
      const best = await this.query<{ study_id: string; best: number | null }>(
        `SELECT s.study_id, CASE WHEN s.direction = 'minimize' THEN MIN(t.value) ELSE MAX(t.value) END AS best
         FROM studies s JOIN trials t ON t.study_id = s.study_id AND t.state = 'complete' GROUP BY s.study_id, s.direction`,
        [],
        client,
      );
      const result: StudySummary[] = [];
      for (const row of rows) {
        const trialCounts = Object.fromEntries(trialStates.map((s) => [s, 0])) as Record<TrialState, number>;
        for (const c of counts) if (c.study_id === row.study_id) trialCounts[c.state] = Number(c.count);
        const bestValue = best.find((b) => b.study_id === row.study_id)?.best ?? null;
        result.push({ ...(await this.studyRecord(row, client)), trialCounts, bestValue });
      }
      return result;
    });
  }

  async deleteStudy(studyId: number): Promise<void> {
    const rows = await this.query('DELETE FROM studies WHERE study_id = $1 RETURNING study_id', [studyId]);
    if (rows.length === 0) throw new NotFoundError(`study ${studyId}`);
  }

  async setStudyUserAttribute(studyId: number, key: string, value: JsonValue): Promise<void> {
    await this.setStudyAttribute(studyId, 'user', key, value);
  }

  async setStudySystemAttribute(studyId: number, key: string, value: JsonValue): Promise<void> {
    await this.setStudyAttribute(studyId, 'system', key, value);
  }

  private async setStudyAttribute(
    studyId: number,
    kind: 'user' | 'system',
    key: string,
    value: JsonValue,
  ): Promise<void> {
    await this.transaction(async (client) => {
      if ((await this.query('SELECT 1 FROM studies WHERE study_id = $1', [studyId], client)).length === 0)
        throw new NotFoundError(`study ${studyId}`);
      await client.query(
        'INSERT INTO study_attributes (study_id, kind, key, value) VALUES ($1, $2, $3, $4) ON CONFLICT (study_id, kind, key) DO UPDATE SET value = excluded.value',
        [studyId, kind, key, JSON.stringify(value)],
      );
    });
  }

  async createTrial(
    studyId: number,
    template: TrialTemplate = {},
    options: CreateTrialOptions = {},
  ): Promise<FrozenTrial | null> {
    const id = await this.transaction((client) => this.insertTrial(client, studyId, template, options));
    return id === null ? null : this.getTrial(id);
  }

  /** Inside a transaction: locks the study, numbers and inserts a trial; null when the budget is spent. */
  private async insertTrial(
    client: pg.PoolClient,
    studyId: number,
    template: TrialTemplate,
    options: CreateTrialOptions,
  ): Promise<number | null> {
    if (
      (await this.query('SELECT study_id FROM studies WHERE study_id = $1 FOR UPDATE', [studyId], client))
        .length === 0
    )
      throw new NotFoundError(`study ${studyId}`);
    const counts = (
      await this.query<{ total: string; retries: string; next: number }>(
        'SELECT COUNT(*) AS total, COUNT(retry_of) AS retries, COALESCE(MAX(number), -1) + 1 AS next FROM trials WHERE study_id = $1',
        [studyId],
        client,
      )
    )[0]!;
    if (options.maxTrials !== undefined && Number(counts.total) - Number(counts.retries) >= options.maxTrials)
      return null;
    const state = template.state ?? 'running';
    const running = state === 'running';
    for (const [name, { distribution, value }] of Object.entries(template.params ?? {}))
      checkParamValue(name, distribution, value);
    const now = running ? NOW : 'NULL';
    const inserted = await this.query<{ trial_id: string }>(
      `INSERT INTO trials (study_id, number, state, worker, retry_of, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $5, ${now}, ${now}) RETURNING trial_id`,
      [
        studyId,
        Number(counts.next),
        state,
        running ? (template.worker ?? null) : null,
        template.retryOf ?? null,
      ],
      client,
    );
    const trialId = Number(inserted[0]!.trial_id);
    for (const [name, { distribution, value }] of Object.entries(template.params ?? {}))
      await this.insertParam(client, trialId, name, distribution, value);
    for (const [key, value] of Object.entries(template.userAttributes ?? {}))
      await this.insertAttribute(client, trialId, 'user', key, value);
    for (const [key, value] of Object.entries(template.systemAttributes ?? {}))
      await this.insertAttribute(client, trialId, 'system', key, value);
    return trialId;
  }

  private async insertParam(
    client: pg.PoolClient,
    trialId: number,
    name: string,
    distribution: Distribution,
    value: ParamValue,
  ): Promise<void> {
    await client.query(
      'INSERT INTO trial_params (trial_id, name, distribution, value) VALUES ($1, $2, $3, $4) ON CONFLICT (trial_id, name) DO NOTHING',
      [trialId, name, JSON.stringify(distributionToJson(distribution)), toInternal(distribution, value)],
    );
  }

  private async insertAttribute(
    client: pg.PoolClient,
    trialId: number,
    kind: 'user' | 'system',
    key: string,
    value: JsonValue,
  ): Promise<void> {
    await client.query(
      'INSERT INTO trial_attributes (trial_id, kind, key, value) VALUES ($1, $2, $3, $4) ON CONFLICT (trial_id, kind, key) DO UPDATE SET value = excluded.value',
      [trialId, kind, key, JSON.stringify(value)],
    );
  }

  async claimWaitingTrial(studyId: number, worker: string): Promise<FrozenTrial | null> {
    const rows = await this.query<{ trial_id: string }>(
      `UPDATE trials SET state = 'running', worker = $2, started_at = ${NOW}, heartbeat_at = ${NOW}
       WHERE trial_id = (SELECT trial_id FROM trials WHERE study_id = $1 AND state = 'waiting' ORDER BY number LIMIT 1 FOR UPDATE SKIP LOCKED)
       RETURNING trial_id`,
      [studyId, worker],
    );
    return rows.length === 0 ? null : this.getTrial(Number(rows[0]!.trial_id));
  }

  /** Inside a transaction: locks the trial's row and throws unless it exists and has not finished. */
  private async requireUnfinished(client: pg.PoolClient, trialId: number): Promise<{ study_id: string }> {
    const row = (
      await this.query<{ study_id: string; state: TrialState }>(
        'SELECT study_id, state FROM trials WHERE trial_id = $1 FOR SHARE',
        [trialId],
        client,
      )
    )[0];
    if (row === undefined) throw new NotFoundError(`trial ${trialId}`);
    if (isFinished(row.state)) throw new TrialFinishedError(trialId, row.state);
    return row;
  }

  async setTrialParam(
    trialId: number,
    name: string,
    distribution: Distribution,
    value: ParamValue,
  ): Promise<void> {
    checkParamValue(name, distribution, value);
    await this.transaction(async (client) => {
      const { study_id } = await this.requireUnfinished(client, trialId);
      const existing = (
        await this.query<{ distribution: string }>(
          'SELECT p.distribution FROM trial_params p JOIN trials t ON t.trial_id = p.trial_id WHERE t.study_id = $1 AND p.name = $2 LIMIT 1',
          [study_id, name],
          client,
        )
      )[0];
      checkCompatible(
        name,
        distribution,
        existing === undefined ? undefined : distributionFromJson(JSON.parse(existing.distribution)),
      );
      await this.insertParam(client, trialId, name, distribution, value);
    });
  }

  async setTrialIntermediateValue(trialId: number, step: number, value: number): Promise<void> {
    checkStep(step);
    checkFiniteValue('intermediate value', value);
    await this.transaction(async (client) => {
      await this.requireUnfinished(client, trialId);
      await client.query(
        'INSERT INTO trial_values (trial_id, step, value) VALUES ($1, $2, $3) ON CONFLICT (trial_id, step) DO UPDATE SET value = excluded.value',
        [trialId, step, value],
      );
    });
  }

  async setTrialUserAttribute(trialId: number, key: string, value: JsonValue): Promise<void> {
    await this.transaction(async (client) => {
      await this.requireUnfinished(client, trialId);
      await this.insertAttribute(client, trialId, 'user', key, value);
    });
  }

  async setTrialSystemAttribute(trialId: number, key: string, value: JsonValue): Promise<void> {
    await this.transaction(async (client) => {
      await this.requireUnfinished(client, trialId);
      await this.insertAttribute(client, trialId, 'system', key, value);
    });
  }

  async finishTrial(
    trialId: number,
    state: FinishedTrialState,
    value: number | null,
    error: string | null = null,
  ): Promise<boolean> {
    if (state === 'complete') checkFiniteValue('the value of a complete trial', value as number);
    if (value !== null && !Number.isFinite(value)) value = null;
    return this.transaction(async (client) => {
      if ((await this.query('SELECT 1 FROM trials WHERE trial_id = $1', [trialId], client)).length === 0)
        throw new NotFoundError(`trial ${trialId}`);
      const rows = await this.query(
        `UPDATE trials SET state = $2, value = $3, error = $4, completed_at = ${NOW} WHERE trial_id = $1 AND state IN ('running', 'waiting') RETURNING trial_id`,
        [trialId, state, value, error],
        client,
      );
      return rows.length === 1;
    });
  }

  async recordHeartbeat(trialId: number): Promise<void> {
    await this.query(`UPDATE trials SET heartbeat_at = ${NOW} WHERE trial_id = $1 AND state = 'running'`, [
      trialId,
    ]);
  }

  async failStaleTrials(studyId: number, options: StaleTrialOptions): Promise<FrozenTrial[]> {
    // Cheap check first: most calls find nothing and should not lock the study.
    const any = await this.query(
      `SELECT 1 FROM trials WHERE study_id = $1 AND state = 'running' AND heartbeat_at < ${NOW} - $2 AND ${SERVER_STARTED} < ${NOW} - $2 LIMIT 1`,
      [studyId, options.graceSeconds * 1000],
    );
    if (any.length === 0) return [];
    const failedIds = await this.transaction(async (client) => {
      await this.query('SELECT study_id FROM studies WHERE study_id = $1 FOR UPDATE', [studyId], client);
      const stale = await this.query<{ trial_id: string; worker: string | null }>(
        `UPDATE trials SET state = 'failed', completed_at = ${NOW}
         WHERE study_id = $1 AND state = 'running' AND heartbeat_at < ${NOW} - $2 AND ${SERVER_STARTED} < ${NOW} - $2 RETURNING trial_id, worker`,
        [studyId, options.graceSeconds * 1000],
        client,
      );
      for (const row of stale)
        await client.query('UPDATE trials SET error = $2 WHERE trial_id = $1', [
          row.trial_id,
          staleTrialError(row.worker, options.graceSeconds),
        ]);
      const lineage = await this.query<{ number: number; retry_of: number | null }>(
        'SELECT number, retry_of FROM trials WHERE study_id = $1',
        [studyId],
        client,
      );
      const byNumber = new Map(lineage.map((r) => [r.number, { retryOf: r.retry_of }] as const));
      for (const row of stale) {
        const failed = (await this.readTrials(client, 'WHERE t.trial_id = $1', [row.trial_id]))[0]!;
        if (retryDepth(failed, byNumber) < (options.maxRetries ?? 0))
          await this.insertTrial(client, studyId, retryTemplate(failed), {});
      }
      return stale.map((r) => Number(r.trial_id));
    });
    if (failedIds.length === 0) return [];
    return this.transaction((client) =>
      this.readTrials(client, 'WHERE t.trial_id = ANY($1::bigint[])', [failedIds]),
    );
  }

  async getTrial(trialId: number): Promise<FrozenTrial> {
    const trial = (
      await this.transaction((client) => this.readTrials(client, 'WHERE t.trial_id = $1', [trialId]))
    )[0];
    if (trial === undefined) throw new NotFoundError(`trial ${trialId}`);
    return trial;
  }

  async getAllTrials(studyId: number, states?: readonly TrialState[]): Promise<FrozenTrial[]> {
    return this.transaction(async (client) => {
      // One snapshot for the four reads.
      await client.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY');
      if ((await this.query('SELECT 1 FROM studies WHERE study_id = $1', [studyId], client)).length === 0)
        throw new NotFoundError(`study ${studyId}`);
      if (states === undefined) return this.readTrials(client, 'WHERE t.study_id = $1', [studyId]);
      return this.readTrials(client, 'WHERE t.study_id = $1 AND t.state = ANY($2::text[])', [
        studyId,
        [...states],
      ]);
    });
  }

  private async readTrials(client: pg.PoolClient, where: string, args: unknown[]): Promise<FrozenTrial[]> {
    const trials = await this.query<TrialRow>(`SELECT t.* FROM trials t ${where}`, args, client);
    if (trials.length === 0) return [];
    const sub = `SELECT t.trial_id FROM trials t ${where}`;
    const params = await this.query<ParamRow>(
      `SELECT * FROM trial_params WHERE trial_id IN (${sub})`,
      args,
      client,
    );
    const values = await this.query<ValueRow>(
      `SELECT * FROM trial_values WHERE trial_id IN (${sub})`,
      args,
      client,
    );
    const attributes = await this.query<AttributeRow>(
      `SELECT * FROM trial_attributes WHERE trial_id IN (${sub})`,
      args,
      client,
    );
    return assembleTrials(trials, params, values, attributes);
  }

  async close(): Promise<void> {
    // The heartbeat thread first: it may still be writing a trial's last values through its own connection.
    await closeStorageResources(this);
    await this.database.close();
  }
}
