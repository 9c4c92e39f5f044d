/**
 * Run store in this process's memory: for tests, for library users who want curves without a
 * database, and as the plainest statement of the RunStore contract (./types.ts).
 */
import { workerName } from '../sql/worker.js';
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
  type MetricsQuery,
  type MetricInput,
  type NewArtifact,
  type NewRun,
  type RunFilter,
  type RunMetrics,
  type RunRecord,
  type RunState,
  type RunStore,
} from './types.js';

interface StoredPoint {
  id: number;
  name: string;
  step: number;
  x: number;
  value: number | null;
  time: number;
}

interface StoredRun {
  record: Omit<RunRecord, 'pointCount'>;
  points: StoredPoint[];
}

function withoutContent(artifact: Artifact): ArtifactInfo {
  const { id, runId, name, kind, mediaType, path, size, createdAt } = artifact;
  return { id, runId, name, kind, mediaType, path, size, createdAt };
}

/** Deep copy through JSON: what a database would hand back. */
function copy<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

export class MemoryRunStore implements RunStore {
  readonly url = null;
  readonly synchronousWrites = true;
  private readonly runs = new Map<number, StoredRun>();
  private readonly artifacts = new Map<number, Artifact>();
  private nextRunId = 1;
  private nextPointId = 1;
  private nextArtifactId = 1;
  private version = 0;
  private closed = false;

  private run(runId: number): StoredRun {
    this.checkOpen();
    const run = this.runs.get(runId);
    if (run === undefined) throw new RunNotFoundError(`run ${runId}`);
    return run;
  }

  private checkOpen(): void {
    if (this.closed) throw new Error('this run store has been closed');
  }

  private touch(run: StoredRun, changes: Partial<Omit<RunRecord, 'pointCount'>> = {}): void {
    run.record = { ...run.record, ...changes, updatedAt: Math.max(Date.now(), run.record.updatedAt) };
    this.version++;
  }

  private snapshot(run: StoredRun): RunRecord {
    return copy({ ...run.record, pointCount: run.points.length });
  }

  async createRun(init: NewRun): Promise<RunRecord> {
    this.checkOpen();
    checkRunName(init.name);
    if (init.parentId !== undefined && init.parentId !== null) this.run(init.parentId);
    const now = Date.now();
    const record: Omit<RunRecord, 'pointCount'> = {
      id: this.nextRunId++,
      name: init.name,
      kind: init.kind,
      state: 'running',
      parentId: init.parentId ?? null,
      study: init.study ?? null,
      trialNumber: init.trialNumber ?? null,
      config: copy(init.config ?? {}),
      summary: {},
      error: null,
      worker: init.worker ?? workerName(),
      startedAt: now,
      updatedAt: now,
      completedAt: null,
    };
    const run = { record, points: [] };
    this.runs.set(record.id, run);
    this.version++;
    return this.snapshot(run);
  }

  async updateConfig(runId: number, config: JsonObject): Promise<void> {
    const run = this.run(runId);
    this.touch(run, { config: { ...run.record.config, ...copy(config) } });
  }

  async updateSummary(runId: number, summary: JsonObject): Promise<void> {
    const run = this.run(runId);
    this.touch(run, { summary: { ...run.record.summary, ...copy(summary) } });
  }

  async logMetrics(runId: number, points: readonly MetricInput[]): Promise<void> {
    const run = this.run(runId);
    points.forEach(checkMetric);
    const now = Date.now();
    for (const point of points) {
      run.points.push({
        id: this.nextPointId++,
        name: point.name,
        step: point.step,
        x: point.x,
        value: storedValue(point.value),
        time: point.time ?? now,
      });
    }
    this.touch(run);
  }

  async finishRun(
    runId: number,
    state: Exclude<RunState, 'running'>,
    error: string | null = null,
  ): Promise<boolean> {
    const run = this.run(runId);
    if (run.record.state !== 'running') return false;
    this.touch(run, { state, error, completedAt: Date.now() });
    return true;
  }

  async addArtifact(runId: number, artifact: NewArtifact): Promise<ArtifactInfo> {
    const run = this.run(runId);
    const content = artifactBytes(artifact.content);
    for (const [id, existing] of this.artifacts) {
      if (existing.runId === runId && existing.name === artifact.name) this.artifacts.delete(id);
    }
    const stored: Artifact = {
      id: this.nextArtifactId++,
      runId,
      name: artifact.name,
      kind: artifact.kind,
      mediaType: artifact.mediaType,
      path: artifact.path ?? null,
      size: content?.length ?? 0,
      createdAt: Date.now(),
      content: content === null ? null : content.slice(),
    };
    this.artifacts.set(stored.id, stored);
    this.touch(run);
    return withoutContent(stored);
  }

  async getRun(runId: number): Promise<RunRecord> {
    return this.snapshot(this.run(runId));
  }

  async listRuns(filter: RunFilter = {}): Promise<RunRecord[]> {
    this.checkOpen();
    const matches = [...this.runs.values()]
      .map((run) => run.record)
      .filter(
        (record) =>
          (filter.kind === undefined || record.kind === filter.kind) &&
          (filter.state === undefined || record.state === filter.state) &&
          (filter.name === undefined || record.name === filter.name) &&
          (filter.study === undefined || record.study === filter.study) &&
          (filter.parentId === undefined || record.parentId === filter.parentId),
      )
      .sort((a, b) => b.id - a.id)
      .slice(0, filter.limit ?? Number.POSITIVE_INFINITY);
    return matches.map((record) => this.snapshot(this.runs.get(record.id)!));
  }

  async getMetrics(runId: number, query: MetricsQuery = {}): Promise<RunMetrics> {
    const run = this.run(runId);
    const after = query.afterPointId ?? 0;
    const names = query.names === undefined ? null : new Set(query.names);
    const result: RunMetrics = { runId, lastPointId: after, series: {} };
    for (const point of run.points) {
      if (point.id <= after || (names !== null && !names.has(point.name))) continue;
      const series = (result.series[point.name] ??= emptySeries());
      series.step.push(point.step);
      series.x.push(point.x);
      series.value.push(point.value);
      series.time.push(point.time);
      result.lastPointId = Math.max(result.lastPointId, point.id);
    }
    return result;
  }

  async listArtifacts(runId: number): Promise<ArtifactInfo[]> {
    this.run(runId);
    return [...this.artifacts.values()]
      .filter((artifact) => artifact.runId === runId)
      .sort((a, b) => a.id - b.id)
      .map(withoutContent);
  }

  async getArtifact(artifactId: number): Promise<Artifact> {
    this.checkOpen();
    const artifact = this.artifacts.get(artifactId);
    if (artifact === undefined) throw new RunNotFoundError(`artifact ${artifactId}`);
    return { ...artifact, content: artifact.content === null ? null : artifact.content.slice() };
  }

  async deleteRun(runId: number): Promise<void> {
    this.run(runId);
    for (const child of [...this.runs.values()].filter((run) => run.record.parentId === runId)) {
      await this.deleteRun(child.record.id);
    }
    this.runs.delete(runId);
    for (const [id, artifact] of this.artifacts) if (artifact.runId === runId) this.artifacts.delete(id);
    this.version++;
  }

  async changeToken(): Promise<string> {
    this.checkOpen();
    return String(this.version);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
