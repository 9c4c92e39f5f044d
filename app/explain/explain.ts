/**
 * Running an explain topic: results come from the store when an earlier run of the same topic
 * version (and size) completed there, otherwise the topic runs, recording itself as a run of kind
 * 'explain' (its trainings as child runs), its text, tables and numbers as the run's summary and its
 * figures as artifacts. Either way the figures are written as SVG and PNG.
 *
 * A `quick` run is kept apart from a full one: stored with quick in its config (never returned for a
 * full request, nor the other way round), its figures written under `<out>/quick/<id>/`, and its text
 * led by a notice that it is a pipeline check, not an answer.
 */
import * as path from 'node:path';
import {
  writeFigure,
  type JsonObject,
  type JsonValue,
  type RunRecord,
  type RunStore,
  type Storage,
} from '../../src/index.js';
import { quickNotice } from './statistics.js';
import type { ExplainTable, Topic, TopicResult } from './types.js';

export interface ExplainOptions {
  store: RunStore;
  studies: Storage;
  /** Figures go to `<outDirectory>/<topic id>/` (default out/explain), quick ones to `<outDirectory>/quick/<topic id>/`. */
  outDirectory?: string;
  /** Run again even when the store has a result (default false). */
  fresh?: boolean;
  /** The small version of each experiment, for tests (default false). */
  quick?: boolean;
  log?: (line: string) => void;
}

export interface ExplainOutcome {
  result: TopicResult;
  /** True when the result came from the store. */
  cached: boolean;
  runId: number;
  /** SVG and PNG files written. */
  files: string[];
  /** Seconds the topic took when it ran (for a cached result, the original run's time). */
  seconds: number;
  computedAt: number;
  /** A quick run (a pipeline check, not a result). */
  quick: boolean;
}

function topicConfig(topic: Topic, quick: boolean): JsonObject {
  return { topic: topic.id, version: topic.version, quick, inputs: topic.inputs?.() ?? {} };
}

function strings(value: JsonValue | undefined): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function tablesOf(value: JsonValue | undefined): ExplainTable[] {
  if (!Array.isArray(value)) return [];
  return value.flatMap((table) => {
    if (table === null || typeof table !== 'object' || Array.isArray(table)) return [];
    const rows = Array.isArray(table.rows) ? table.rows.map((row) => strings(row)) : [];
    return [
      { title: typeof table.title === 'string' ? table.title : '', columns: strings(table.columns), rows },
    ];
  });
}

/** The newest complete run of this topic version in the store, or null. */
export async function cachedRun(store: RunStore, topic: Topic, quick: boolean): Promise<RunRecord | null> {
  const runs = await store.listRuns({ kind: 'explain', name: topic.id });
  const inputs = JSON.stringify(topic.inputs?.() ?? {});
  return (
    runs.find(
      (run) =>
        run.state === 'complete' &&
        run.config.version === topic.version &&
        run.config.quick === quick &&
        JSON.stringify(run.config.inputs ?? {}) === inputs &&
        Array.isArray(run.summary.text),
    ) ?? null
  );
}

function writeFigures(result: TopicResult, directory: string): string[] {
  return result.figures.flatMap((figure) => {
    const files = writeFigure(figure.svg, path.join(directory, figure.name));
    return [files.svg, files.png];
  });
}

/** Runs a topic, or shows its stored result. */
export async function explain(topic: Topic, options: ExplainOptions): Promise<ExplainOutcome> {
  const quick = options.quick ?? false;
  const log = options.log ?? (() => undefined);
  // Quick results go to their own folder, so their figures never overwrite a full result's.
  const directory = path.join(
    options.outDirectory ?? path.join('out', 'explain'),
    ...(quick ? ['quick'] : []),
    topic.id,
  );
  if (!options.fresh) {
    const run = await cachedRun(options.store, topic, quick);
    if (run !== null) {
      const figures = [];
      for (const artifact of await options.store.listArtifacts(run.id)) {
        if (artifact.kind !== 'figure' || artifact.size === 0) continue;
        const stored = await options.store.getArtifact(artifact.id);
        figures.push({ name: artifact.name, svg: new TextDecoder().decode(stored.content!) });
      }
      const numbers = run.summary.numbers;
      const result: TopicResult = {
        title: typeof run.summary.title === 'string' ? run.summary.title : topic.title,
        question: typeof run.summary.question === 'string' ? run.summary.question : '',
        text: strings(run.summary.text),
        tables: tablesOf(run.summary.tables),
        figures,
        numbers: numbers !== null && typeof numbers === 'object' && !Array.isArray(numbers) ? numbers : {},
      };
      const seconds = typeof run.summary.seconds === 'number' ? run.summary.seconds : 0;
      return {
        result,
        cached: true,
        runId: run.id,
        files: writeFigures(result, directory),
        seconds,
        computedAt: run.completedAt ?? run.updatedAt,
        quick,
      };
    }
  }
  const run = await options.store.createRun({
    name: topic.id,
    kind: 'explain',
    config: topicConfig(topic, quick),
  });
  const started = performance.now();
  let result: TopicResult;
  try {
    result = await topic.run({
      store: options.store,
      studies: options.studies,
      runId: run.id,
      quick,
      cacheDirectory: path.join(options.outDirectory ?? path.join('out', 'explain'), 'cache'),
      log,
    });
  } catch (error) {
    await options.store.finishRun(
      run.id,
      'failed',
      error instanceof Error ? (error.stack ?? error.message) : String(error),
    );
    throw error;
  }
  const seconds = (performance.now() - started) / 1000;
  const paragraphs = result.text.filter((paragraph) => paragraph.trim().length > 0);
  // Every quick result says what it is, first, wherever it is shown (terminal, dashboard, report).
  result = { ...result, text: quick ? [quickNotice, ...paragraphs] : paragraphs };
  await options.store.updateSummary(run.id, {
    title: result.title,
    question: result.question,
    text: result.text,
    tables: result.tables.map((table) => ({ title: table.title, columns: table.columns, rows: table.rows })),
    numbers: result.numbers,
    seconds,
    quick,
  });
  const files = writeFigures(result, directory);
  for (const figure of result.figures) {
    await options.store.addArtifact(run.id, {
      name: figure.name,
      kind: 'figure',
      mediaType: 'image/svg+xml',
      content: figure.svg,
      path: path.resolve(directory, `${figure.name}.svg`),
    });
  }
  await options.store.finishRun(run.id, 'complete');
  return { result, cached: false, runId: run.id, files, seconds, computedAt: Date.now(), quick };
}
