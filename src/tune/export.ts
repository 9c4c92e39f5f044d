/** Trials as a table, CSV and JSON (for `tensile study export` and study.toCsv / toJson). */
import { distributionToJson, type JsonValue, type ParamValue } from './distributions.js';
import {
  lastIntermediate,
  systemAttributeKeys,
  trialDuration,
  type FrozenTrial,
  type StudyRecord,
} from './frozen-trial.js';

export type Cell = string | number | boolean | null;

export interface TrialsTable {
  /** number, state, value, phase, duration_s, started_at, completed_at, params_NAME..., user_KEY..., retry_of, worker, error */
  columns: string[];
  rows: Cell[][];
}

function iso(time: number | null): string | null {
  return time === null ? null : new Date(time).toISOString();
}

function cell(value: JsonValue | ParamValue | undefined): Cell {
  if (value === undefined) return null;
  if (value !== null && typeof value === 'object') return JSON.stringify(value);
  return value;
}

/** One row per trial (ordered by number), one column per parameter and user attribute. */
export function trialsTable(trials: readonly FrozenTrial[]): TrialsTable {
  const paramNames = [...new Set(trials.flatMap((t) => Object.keys(t.params)))].sort();
  const userKeys = [...new Set(trials.flatMap((t) => Object.keys(t.userAttributes)))].sort();
  const columns = [
    'number',
    'state',
    'value',
    'phase',
    'duration_s',
    'started_at',
    'completed_at',
    ...paramNames.map((n) => `params_${n}`),
    ...userKeys.map((k) => `user_${k}`),
    'retry_of',
    'worker',
    'error',
  ];
  const rows = [...trials]
    .sort((a, b) => a.number - b.number)
    .map((t) => {
      const duration = trialDuration(t);
      return [
        t.number,
        t.state,
        t.value,
        cell(t.systemAttributes[systemAttributeKeys.samplerPhase]),
        duration === null ? null : Number((duration / 1000).toFixed(3)),
        iso(t.startedAt),
        iso(t.completedAt),
        ...paramNames.map((n) => cell(t.params[n])),
        ...userKeys.map((k) => cell(t.userAttributes[k])),
        t.retryOf,
        t.worker,
        t.error === null ? null : t.error.split('\n')[0]!,
      ];
    });
  return { columns, rows };
}

function csvField(value: Cell): string {
  if (value === null) return '';
  const text = String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** RFC 4180 CSV with a header row. */
export function trialsToCsv(trials: readonly FrozenTrial[]): string {
  const table = trialsTable(trials);
  return [table.columns, ...table.rows].map((row) => row.map(csvField).join(',')).join('\n') + '\n';
}

/** The whole study as one JSON document (parameters with their distributions, intermediate values, errors). */
export function trialsToJson(study: StudyRecord, trials: readonly FrozenTrial[]): string {
  const document = {
    study: {
      name: study.name,
      direction: study.direction,
      createdAt: iso(study.createdAt),
      userAttributes: study.userAttributes,
    },
    trials: trials.map((t) => ({
      number: t.number,
      state: t.state,
      value: t.value,
      params: t.params,
      distributions: Object.fromEntries(
        Object.entries(t.distributions).map(([name, d]) => [name, distributionToJson(d)]),
      ),
      intermediateValues: [...t.intermediateValues]
        .sort((a, b) => a[0] - b[0])
        .map(([step, value]) => ({ step, value })),
      lastIntermediate: lastIntermediate(t),
      userAttributes: t.userAttributes,
      systemAttributes: t.systemAttributes,
      startedAt: iso(t.startedAt),
      completedAt: iso(t.completedAt),
      retryOf: t.retryOf,
      worker: t.worker,
      error: t.error,
    })),
  };
  return JSON.stringify(document, null, 2) + '\n';
}

/** A fixed-width text table (for the terminal). */
export function formatTable(columns: readonly string[], rows: readonly Cell[][]): string {
  const text = rows.map((row) =>
    row.map((c) => (c === null ? '' : typeof c === 'number' ? formatNumber(c) : String(c))),
  );
  const widths = columns.map((c, i) => Math.max(c.length, ...text.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(columns), line(widths.map((w) => '-'.repeat(w))), ...text.map(line)].join('\n');
}

/** Numbers as people read them: integers as they are, others with 4–5 significant digits. */
export function formatNumber(value: number): string {
  if (Number.isInteger(value)) return String(value);
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude < 1e-3 || magnitude >= 1e6)) return value.toExponential(3);
  return String(Number(value.toPrecision(5)));
}
