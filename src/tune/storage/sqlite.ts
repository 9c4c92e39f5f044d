/**
 * Study storage in one SQLite file (better-sqlite3, opened through src/sql/sqlite.ts): the embedded
 * default. Several processes on one machine may share the file (`tensile tune --workers N`).
 *
 * - Atomicity across processes: every operation that reads and then writes runs in a write
 *   transaction (BEGIN IMMEDIATE), which takes the database's write lock at the start, so two
 *   workers can never both read "trial 7 is waiting" or both number a trial 12.
 * - Durability: WAL journal with synchronous=FULL, so a call that returned survives the process (and
 *   the machine) going down; a killed worker leaves at most its running trial, which heartbeats fail.
 * - better-sqlite3 is synchronous: each write has happened when the method returns
 *   (synchronousWrites), and readers in other processes see it at once.
 */
import {
  migrateSqlite as migrateSqliteSchema,
  openSqlite,
  readTransaction,
  sqliteSchemaVersion,
  writeTransaction,
  type SqliteDatabase,
} from '../../sql/sqlite.js';
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

interface StudyRow {
  study_id: number;
  name: string;
  direction: StudyDirection;
  created_at: number;
}

export interface SqliteStorageOptions {
  /** Apply migrations up to this version only (tests of upgrades); default: the current version. */
  migrateTo?: number;
}

/** Applies the missing study-table migrations (up to `target`) in one immediate transaction; returns the version. */
export function migrateSqlite(db: SqliteDatabase, target?: number): number {
  return migrateSqliteSchema(db, studySchema, target);
}

export class SqliteStorage implements Storage {
  readonly url: string;
  readonly synchronousWrites = true;
  readonly file: string;
  private readonly db: SqliteDatabase;

  /**
   * Opens (creating when needed) the database file and brings its schema up to date.
   * @example new SqliteStorage('out/tune/study.db')
   */
  constructor(file: string, options: SqliteStorageOptions = {}) {
    const opened = openSqlite(file, {
      feature: 'a SQLite study storage',
      synchronous: 'FULL',
      schema: studySchema,
      migrateTo: options.migrateTo,
    });
    this.db = opened.db;
    this.file = opened.file;
    this.url = opened.url;
  }

  /** The schema version of the open database. */
  get schemaVersion(): number {
    return sqliteSchemaVersion(this.db, studySchema);
  }

  /** The underlying connection (for run tracking and tests; keep to the tables' contract). */
  get database(): SqliteDatabase {
    return this.db;
  }

  private studyRecord(row: StudyRow): StudyRecord {
    const attributes = splitAttributes(
      this.db
        .prepare('SELECT kind, key, value FROM study_attributes WHERE study_id = ?')
        .all(row.study_id) as AttributeRow[],
    );
    return {
      id: row.study_id,
      name: row.name,
      direction: row.direction,
      createdAt: row.created_at,
      userAttributes: attributes.user,
      systemAttributes: attributes.system,
    };
  }

  async createStudy(name: string, direction: StudyDirection): Promise<StudyRecord> {
    checkStudyName(name);
    return writeTransaction(this.db, () => {
      if (this.db.prepare('SELECT 1 FROM studies WHERE name = ?').get(name) !== undefined)
        throw new DuplicateStudyError(name);
      const result = this.db
        .prepare('INSERT INTO studies (name, direction, created_at) VALUES (?, ?, ?)')
        .run(name, direction, Date.now());
      return this.studyRecord(
        this.db.prepare('SELECT * FROM studies WHERE study_id = ?').get(result.lastInsertRowid) as StudyRow,
      );
    });
  }

  async getStudy(name: string): Promise<StudyRecord | null> {
    const row = this.db.prepare('SELECT * FROM studies WHERE name = ?').get(name) as StudyRow | undefined;
    return row === undefined ? null : this.studyRecord(row);
  }

  async getStudyById(studyId: number): Promise<StudyRecord> {
    const row = this.db.prepare('SELECT * FROM studies WHERE study_id = ?').get(studyId) as
      StudyRow | undefined;
    if (row === undefined) throw new NotFoundError(`study ${studyId}`);
    return this.studyRecord(row);
  }

  async listStudies(): Promise<StudySummary[]> {
    return readTransaction(this.db, () => {
      const rows = this.db.prepare('SELECT * FROM studies ORDER BY study_id').all() as StudyRow[];
      const counts = this.db
        .prepare('SELECT study_id, state, COUNT(*) AS count FROM trials GROUP BY study_id, state')
        .all() as { study_id: number; state: TrialState; count: number }[];
      const best = this.db
        .prepare(
          `SELECT s.study_id, CASE WHEN s.direction = 'minimize' THEN MIN(t.value) ELSE MAX(t.value) END AS best
             FROM studies s JOIN trials t ON t.study_id = s.study_id AND t.state = 'complete' GROUP BY s.study_id`,
        )
        .all() as { study_id: number; best: number | null }[];
      return rows.map((row) => {
        const trialCounts = Object.fromEntries(trialStates.map((s) => [s, 0])) as Record<TrialState, number>;
        for (const c of counts) if (c.study_id === row.study_id) trialCounts[c.state] = c.count;
        return {
          ...this.studyRecord(row),
          trialCounts,
          bestValue: best.find((b) => b.study_id === row.study_id)?.best ?? null,
        };
      });
    });
  }

  async deleteStudy(studyId: number): Promise<void> {
    const result = this.db.prepare('DELETE FROM studies WHERE study_id = ?').run(studyId);
    if (result.changes === 0) throw new NotFoundError(`study ${studyId}`);
  }

  async setStudyUserAttribute(studyId: number, key: string, value: JsonValue): Promise<void> {
    this.setStudyAttribute(studyId, 'user', key, value);
  }

  async setStudySystemAttribute(studyId: number, key: string, value: JsonValue): Promise<void> {
    this.setStudyAttribute(studyId, 'system', key, value);
  }

  private setStudyAttribute(studyId: number, kind: 'user' | 'system', key: string, value: JsonValue): void {
    if (this.db.prepare('SELECT 1 FROM studies WHERE study_id = ?').get(studyId) === undefined)
      throw new NotFoundError(`study ${studyId}`);
    this.db
      .prepare(
        'INSERT INTO study_attributes (study_id, kind, key, value) VALUES (?, ?, ?, ?) ON CONFLICT (study_id, kind, key) DO UPDATE SET value = excluded.value',
      )
      .run(studyId, kind, key, JSON.stringify(value));
  }

  async createTrial(
    studyId: number,
    template: TrialTemplate = {},
    options: CreateTrialOptions = {},
  ): Promise<FrozenTrial | null> {
    const id = writeTransaction(this.db, () => this.insertTrial(studyId, template, options));
    return id === null ? null : this.getTrial(id);
  }

  /** Inside a write transaction: numbers and inserts a trial; null when the budget is spent. */
  private insertTrial(studyId: number, template: TrialTemplate, options: CreateTrialOptions): number | null {
    if (this.db.prepare('SELECT 1 FROM studies WHERE study_id = ?').get(studyId) === undefined)
      throw new NotFoundError(`study ${studyId}`);
    const counts = this.db
      .prepare(
        'SELECT COUNT(*) AS total, COUNT(retry_of) AS retries, COALESCE(MAX(number), -1) + 1 AS next FROM trials WHERE study_id = ?',
      )
      .get(studyId) as {
      total: number;
      retries: number;
      next: number;
    };
    if (options.maxTrials !== undefined && counts.total - counts.retries >= options.maxTrials) return null;
    const state = template.state ?? 'running';
    const now = Date.now();
    const running = state === 'running';
    for (const [name, { distribution, value }] of Object.entries(template.params ?? {}))
      checkParamValue(name, distribution, value);
    const result = this.db
      .prepare(
        'INSERT INTO trials (study_id, number, state, worker, retry_of, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      )
      .run(
        studyId,
        counts.next,
        state,
        running ? (template.worker ?? null) : null,
        template.retryOf ?? null,
        running ? now : null,
        running ? now : null,
      );
    const trialId = Number(result.lastInsertRowid);
    for (const [name, { distribution, value }] of Object.entries(template.params ?? {}))
      this.insertParam(trialId, name, distribution, value);
    for (const [key, value] of Object.entries(template.userAttributes ?? {}))
      this.insertAttribute(trialId, 'user', key, value);
    for (const [key, value] of Object.entries(template.systemAttributes ?? {}))
      this.insertAttribute(trialId, 'system', key, value);
    return trialId;
  }

  private insertParam(trialId: number, name: string, distribution: Distribution, value: ParamValue): void {
    this.db
      .prepare(
        'INSERT INTO trial_params (trial_id, name, distribution, value) VALUES (?, ?, ?, ?) ON CONFLICT (trial_id, name) DO NOTHING',
      )
      .run(trialId, name, JSON.stringify(distributionToJson(distribution)), toInternal(distribution, value));
  }

  private insertAttribute(trialId: number, kind: 'user' | 'system', key: string, value: JsonValue): void {
    this.db
      .prepare(
        'INSERT INTO trial_attributes (trial_id, kind, key, value) VALUES (?, ?, ?, ?) ON CONFLICT (trial_id, kind, key) DO UPDATE SET value = excluded.value',
      )
      .run(trialId, kind, key, JSON.stringify(value));
  }

  async claimWaitingTrial(studyId: number, worker: string): Promise<FrozenTrial | null> {
    const id = writeTransaction(this.db, () => {
      const row = this.db
        .prepare(
          "SELECT trial_id FROM trials WHERE study_id = ? AND state = 'waiting' ORDER BY number LIMIT 1",
        )
        .get(studyId) as { trial_id: number } | undefined;
      if (row === undefined) return null;
      const now = Date.now();
      this.db
        .prepare(
          "UPDATE trials SET state = 'running', worker = ?, started_at = ?, heartbeat_at = ? WHERE trial_id = ?",
        )
        .run(worker, now, now, row.trial_id);
      return row.trial_id;
    });
    return id === null ? null : this.getTrial(id);
  }

  /** Inside a transaction: throws unless the trial exists and has not finished. */
  private requireUnfinished(trialId: number): { study_id: number } {
    const row = this.db.prepare('SELECT study_id, state FROM trials WHERE trial_id = ?').get(trialId) as
      { study_id: number; state: TrialState } | undefined;
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
    writeTransaction(this.db, () => {
      const { study_id } = this.requireUnfinished(trialId);
      const existing = this.db
        .prepare(
          'SELECT p.distribution FROM trial_params p JOIN trials t ON t.trial_id = p.trial_id WHERE t.study_id = ? AND p.name = ? LIMIT 1',
        )
        .get(study_id, name) as { distribution: string } | undefined;
      checkCompatible(
        name,
        distribution,
        existing === undefined ? undefined : distributionFromJson(JSON.parse(existing.distribution)),
      );
      this.insertParam(trialId, name, distribution, value);
    });
  }

  async setTrialIntermediateValue(trialId: number, step: number, value: number): Promise<void> {
    checkStep(step);
    checkFiniteValue('intermediate value', value);
    writeTransaction(this.db, () => {
      this.requireUnfinished(trialId);
      this.db
        .prepare(
          'INSERT INTO trial_values (trial_id, step, value) VALUES (?, ?, ?) ON CONFLICT (trial_id, step) DO UPDATE SET value = excluded.value',
        )
        .run(trialId, step, value);
    });
  }

  async setTrialUserAttribute(trialId: number, key: string, value: JsonValue): Promise<void> {
    writeTransaction(
      this.db,
      () => (this.requireUnfinished(trialId), this.insertAttribute(trialId, 'user', key, value)),
    );
  }

  async setTrialSystemAttribute(trialId: number, key: string, value: JsonValue): Promise<void> {
    writeTransaction(
      this.db,
      () => (this.requireUnfinished(trialId), this.insertAttribute(trialId, 'system', key, value)),
    );
  }

  async finishTrial(
    trialId: number,
    state: FinishedTrialState,
    value: number | null,
    error: string | null = null,
  ): Promise<boolean> {
    if (state === 'complete') checkFiniteValue('the value of a complete trial', value as number);
    if (value !== null && !Number.isFinite(value)) value = null;
    return writeTransaction(this.db, () => {
      if (this.db.prepare('SELECT 1 FROM trials WHERE trial_id = ?').get(trialId) === undefined)
        throw new NotFoundError(`trial ${trialId}`);
      const result = this.db
        .prepare(
          "UPDATE trials SET state = ?, value = ?, error = ?, completed_at = ? WHERE trial_id = ? AND state IN ('running', 'waiting')",
        )
        .run(state, value, error, Date.now(), trialId);
      return result.changes === 1;
    });
  }

  async recordHeartbeat(trialId: number): Promise<void> {
    this.db
      .prepare("UPDATE trials SET heartbeat_at = ? WHERE trial_id = ? AND state = 'running'")
      .run(Date.now(), trialId);
  }

  async failStaleTrials(studyId: number, options: StaleTrialOptions): Promise<FrozenTrial[]> {
    const failedIds = writeTransaction(this.db, () => {
      const now = Date.now();
      const stale = this.db
        .prepare(
          "SELECT trial_id, worker FROM trials WHERE study_id = ? AND state = 'running' AND heartbeat_at < ? ORDER BY number",
        )
        .all(studyId, now - options.graceSeconds * 1000) as { trial_id: number; worker: string | null }[];
      if (stale.length === 0) return [];
      const update = this.db.prepare(
        "UPDATE trials SET state = 'failed', error = ?, completed_at = ? WHERE trial_id = ?",
      );
      for (const row of stale)
        update.run(staleTrialError(row.worker, options.graceSeconds), now, row.trial_id);
      const lineage = this.db
        .prepare('SELECT number, retry_of FROM trials WHERE study_id = ?')
        .all(studyId) as { number: number; retry_of: number | null }[];
      const byNumber = new Map(lineage.map((r) => [r.number, { retryOf: r.retry_of }] as const));
      for (const row of stale) {
        const failed = this.readTrials('WHERE t.trial_id = ?', [row.trial_id])[0]!;
        if (retryDepth(failed, byNumber) < (options.maxRetries ?? 0))
          this.insertTrial(studyId, retryTemplate(failed), {});
      }
      return stale.map((r) => r.trial_id);
    });
    return failedIds.length === 0
      ? []
      : this.readTrials(`WHERE t.trial_id IN (${failedIds.map(() => '?').join(',')})`, failedIds);
  }

  async getTrial(trialId: number): Promise<FrozenTrial> {
    const trial = readTransaction(this.db, () => this.readTrials('WHERE t.trial_id = ?', [trialId])[0]);
    if (trial === undefined) throw new NotFoundError(`trial ${trialId}`);
    return trial;
  }

  async getAllTrials(studyId: number, states?: readonly TrialState[]): Promise<FrozenTrial[]> {
    return readTransaction(this.db, () => {
      if (this.db.prepare('SELECT 1 FROM studies WHERE study_id = ?').get(studyId) === undefined)
        throw new NotFoundError(`study ${studyId}`);
      if (states === undefined) return this.readTrials('WHERE t.study_id = ?', [studyId]);
      if (states.length === 0) return [];
      return this.readTrials(`WHERE t.study_id = ? AND t.state IN (${states.map(() => '?').join(',')})`, [
        studyId,
        ...states,
      ]);
    });
  }

  /** Reads trials matching a WHERE clause over `trials t`, with their parameters, values and attributes. */
  private readTrials(where: string, args: readonly unknown[]): FrozenTrial[] {
    const trials = this.db.prepare(`SELECT t.* FROM trials t ${where}`).all(...args) as TrialRow[];
    if (trials.length === 0) return [];
    const sub = `SELECT t.trial_id FROM trials t ${where}`;
    const params = this.db
      .prepare(`SELECT * FROM trial_params WHERE trial_id IN (${sub})`)
      .all(...args) as ParamRow[];
    const values = this.db
      .prepare(`SELECT * FROM trial_values WHERE trial_id IN (${sub})`)
      .all(...args) as ValueRow[];
    const attributes = this.db
      .prepare(`SELECT * FROM trial_attributes WHERE trial_id IN (${sub})`)
      .all(...args) as AttributeRow[];
    return assembleTrials(trials, params, values, attributes);
  }

  async close(): Promise<void> {
    // The heartbeat thread first: it holds a connection of its own and would keep the process alive.
    await closeStorageResources(this);
    if (this.db.open) this.db.close();
  }
}
