/** Row ↔ record conversions shared by the SQL run stores, so SQLite and PostgreSQL cannot drift apart. */
import type { ArtifactRow, PointRow, RunRow } from './schema.js';
import {
  emptySeries,
  type ArtifactInfo,
  type JsonObject,
  type RunMetrics,
  type RunRecord,
  type RunState,
} from './types.js';

function parseObject(text: string): JsonObject {
  const value: unknown = JSON.parse(text);
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as JsonObject) : {};
}

export function runFromRow(row: RunRow): RunRecord {
  return {
    id: Number(row.run_id),
    name: row.name,
    kind: row.kind,
    state: row.state as RunState,
    parentId: row.parent_id === null ? null : Number(row.parent_id),
    study: row.study,
    trialNumber: row.trial_number,
    config: parseObject(row.config),
    summary: parseObject(row.summary),
    error: row.error,
    worker: row.worker,
    startedAt: Number(row.started_at),
    updatedAt: Number(row.updated_at),
    completedAt: row.completed_at === null ? null : Number(row.completed_at),
    pointCount: Number(row.point_count),
  };
}

export function artifactInfoFromRow(row: ArtifactRow): ArtifactInfo {
  return {
    id: Number(row.artifact_id),
    runId: Number(row.run_id),
    name: row.name,
    kind: row.kind,
    mediaType: row.media_type,
    path: row.path,
    size: Number(row.size),
    createdAt: Number(row.created_at),
  };
}

/** Points in id order → columns per metric. */
export function metricsFromRows(runId: number, afterPointId: number, rows: readonly PointRow[]): RunMetrics {
  const result: RunMetrics = { runId, lastPointId: afterPointId, series: {} };
  for (const row of rows) {
    const series = (result.series[row.name] ??= emptySeries());
    series.step.push(Number(row.step));
    series.x.push(Number(row.x));
    series.value.push(row.value === null ? null : Number(row.value));
    series.time.push(Number(row.time));
    result.lastPointId = Math.max(result.lastPointId, Number(row.point_id));
  }
  return result;
}

/** JSON text of a merged object. */
export function mergedJson(current: string, changes: JsonObject): string {
  return JSON.stringify({ ...parseObject(current), ...changes });
}
