/**
 * What the dashboard and the HTML report show, computed from the run store and the study storage:
 * run listings, a study as columns ready to plot (with parameter importance), the explain topics
 * with their figures, and long metric series thinned for a report.
 *
 * The page (dashboard/) reads exactly these shapes, as JSON, from the server or from the report's
 * embedded data.
 */
import {
  parameterImportance,
  roughBelowTrials,
  type ArtifactInfo,
  type Distribution,
  type FrozenTrial,
  type ImportanceResult,
  type JsonObject,
  type MetricSeries,
  type ParameterImportance,
  type ParamValue,
  type RunMetrics,
  type RunRecord,
  type RunStore,
  type Storage,
  type StudySummary,
  type TrialState,
} from '../../src/index.js';

export interface Overview {
  runs: RunRecord[];
  studies: StudySummaryView[];
  /** Most runs listed; older ones are left out. */
  runLimit: number;
}

export interface StudySummaryView {
  id: number;
  name: string;
  direction: 'minimize' | 'maximize';
  createdAt: number;
  trialCounts: Record<TrialState, number>;
  bestValue: number | null;
  userAttributes: JsonObject;
}

/** One parameter of a study, with its value in every trial (null where the trial lacks it). */
export interface ParameterColumn {
  name: string;
  kind: 'float' | 'int' | 'categorical';
  log: boolean;
  low: number | null;
  high: number | null;
  /** Categorical: the choices as text; values hold choice indices. */
  choices: string[] | null;
  values: (number | null)[];
}

export interface StudyPlotData {
  study: StudySummaryView;
  /** Trials as columns, in trial-number order. */
  trials: {
    number: number[];
    state: TrialState[];
    value: (number | null)[];
    /** Seconds (null while running or waiting). */
    duration: (number | null)[];
    /** The step of the last reported (intermediate) value: where a pruned trial stopped. */
    lastStep: (number | null)[];
    /**
     * A pruned trial's last reported value (where the pruner stopped it), null for other trials:
     * the optimization history plots `value ?? prunedValue`. (Nulls elsewhere keep the JSON of a
     * 10,000-trial study small.)
     */
    prunedValue: (number | null)[];
  };
  /**
   * Each trial's reported values (trial.report) by step, in step order, index-aligned with trials;
   * null for a trial that reported none.
   * A study with more than `intermediatePointLimit` points has each curve thinned evenly (its last
   * point kept); `intermediateThinned` says so.
   */
  intermediate: ({ step: number[]; value: (number | null)[] } | null)[];
  intermediateThinned: boolean;
  parameters: ParameterColumn[];
  best: { number: number; value: number; params: Record<string, ParamValue> } | null;
  /** Parameter importance, largest first; `importance` sums to 1 when any parameter matters. */
  importance: ParameterImportance[];
  /** Complete trials the importance was estimated from. */
  importanceTrials: number;
  /** Below this many complete trials the page says the importance is a rough guide. */
  importanceRoughBelow: number;
  importanceMethod: string;
}

/** Most intermediate values a study view carries (about 2 MB of JSON); larger studies are thinned. */
export const intermediatePointLimit = 200_000;

/** Every k-th point of each curve (and its last), k chosen to keep the total under the limit. */
function intermediateCurves(trials: readonly FrozenTrial[]): {
  curves: StudyPlotData['intermediate'];
  thinned: boolean;
} {
  const sorted = trials.map((trial) => [...trial.intermediateValues].sort((a, b) => a[0] - b[0]));
  const total = sorted.reduce((sum, curve) => sum + curve.length, 0);
  const every = Math.max(1, Math.ceil(total / intermediatePointLimit));
  const curves = sorted.map((curve) => {
    if (curve.length === 0) return null;
    const kept = curve.filter((_, i) => i % every === 0 || i === curve.length - 1);
    return {
      step: kept.map(([step]) => step),
      value: kept.map(([, value]) => (Number.isFinite(value) ? value : null)),
    };
  });
  return { curves, thinned: every > 1 };
}

export interface FigureView {
  artifactId: number;
  name: string;
  mediaType: string;
  /** A data: URL (reports) or a server path. */
  source: string;
}

export interface ExplainTopicView {
  runId: number;
  topic: string;
  title: string;
  completedAt: number | null;
  summary: JsonObject;
  figures: FigureView[];
  /** A `--quick` run (a pipeline check, not a result): shown only while the topic has no full run. */
  quick: boolean;
}

export function summaryView(summary: StudySummary): StudySummaryView {
  return {
    id: summary.id,
    name: summary.name,
    direction: summary.direction,
    createdAt: summary.createdAt,
    trialCounts: { ...summary.trialCounts },
    bestValue: summary.bestValue,
    userAttributes: { ...summary.userAttributes } as JsonObject,
  };
}

/** Runs (newest first, at most runLimit) and studies. */
export async function overview(runs: RunStore, studies: Storage | null, runLimit = 5000): Promise<Overview> {
  const [runList, studyList] = await Promise.all([
    runs.listRuns({ limit: runLimit }),
    studies === null ? Promise.resolve([]) : studies.listStudies(),
  ]);
  return { runs: runList, studies: studyList.map(summaryView), runLimit };
}

function choiceText(value: ParamValue): string {
  return value === null ? 'null' : String(value);
}

function parameterColumns(trials: readonly FrozenTrial[]): ParameterColumn[] {
  const distributions = new Map<string, Distribution>();
  for (const trial of trials) {
    for (const [name, distribution] of Object.entries(trial.distributions)) {
      if (!distributions.has(name)) distributions.set(name, distribution);
    }
  }
  return [...distributions.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, distribution]) => {
      if (distribution.kind === 'categorical') {
        const choices = distribution.choices.map(choiceText);
        return {
          name,
          kind: 'categorical' as const,
          log: false,
          low: null,
          high: null,
          choices,
          values: trials.map((trial) => {
            if (!(name in trial.params)) return null;
            const index = choices.indexOf(choiceText(trial.params[name]!));
            return index < 0 ? null : index;
          }),
        };
      }
      return {
        name,
        kind: distribution.kind,
        log: distribution.log,
        low: distribution.low,
        high: distribution.high,
        choices: null,
        values: trials.map((trial) => {
          const value = trial.params[name];
          return typeof value === 'number' ? value : null;
        }),
      };
    });
}

/** The last importance computed per storage and study, with the trials it came from. */
const importanceCache = new WeakMap<Storage, Map<number, { key: string; result: ImportanceResult }>>();

/**
 * Importance changes only when complete trials do, and a live study page asks every few seconds:
 * the forest (0.1 to 0.2 s for 10,000 trials) is refitted only when the complete trials' values or
 * parameters differ from last time.
 */
function cachedImportance(
  storage: Storage,
  studyId: number,
  parameters: readonly ParameterColumn[],
  value: readonly (number | null)[],
): ImportanceResult {
  const complete = value.flatMap((v, i) => (v === null ? [] : [i]));
  const key = JSON.stringify([
    complete.map((i) => value[i]),
    parameters.map((parameter) => [parameter.name, complete.map((i) => parameter.values[i])]),
  ]);
  const studies =
    importanceCache.get(storage) ?? new Map<number, { key: string; result: ImportanceResult }>();
  importanceCache.set(storage, studies);
  const held = studies.get(studyId);
  if (held !== undefined && held.key === key) return held.result;
  const result = parameterImportance(parameters, value);
  studies.set(studyId, { key, result });
  return result;
}

/** A study as columns ready to plot. */
export async function studyView(storage: Storage, studyId: number): Promise<StudyPlotData> {
  const summaries = await storage.listStudies();
  const summary = summaries.find((s) => s.id === studyId);
  if (summary === undefined) throw new Error(`study ${studyId} not found`);
  const trials = await storage.getAllTrials(studyId);
  const parameters = parameterColumns(trials);
  const value = trials.map((trial) =>
    trial.state === 'complete' && trial.value !== null && Number.isFinite(trial.value) ? trial.value : null,
  );
  const lastStep = trials.map((trial) => {
    let last: number | null = null;
    for (const step of trial.intermediateValues.keys()) if (last === null || step > last) last = step;
    return last;
  });
  const curves = intermediateCurves(trials);
  const importance = cachedImportance(storage, studyId, parameters, value);
  let best: StudyPlotData['best'] = null;
  trials.forEach((trial, i) => {
    const v = value[i];
    if (v === null || v === undefined) return;
    if (best === null || (summary.direction === 'minimize' ? v < best.value : v > best.value)) {
      best = { number: trial.number, value: v, params: { ...trial.params } };
    }
  });
  return {
    study: summaryView(summary),
    trials: {
      number: trials.map((trial) => trial.number),
      state: trials.map((trial) => trial.state),
      value,
      duration: trials.map((trial) =>
        trial.startedAt !== null && trial.completedAt !== null
          ? (trial.completedAt - trial.startedAt) / 1000
          : null,
      ),
      lastStep,
      prunedValue: trials.map((trial, i) => {
        if (trial.state !== 'pruned') return null;
        const step = lastStep[i];
        const last = step === null || step === undefined ? undefined : trial.intermediateValues.get(step);
        const shown = trial.value ?? last ?? null;
        return shown !== null && Number.isFinite(shown) ? shown : null;
      }),
    },
    intermediate: curves.curves,
    intermediateThinned: curves.thinned,
    parameters,
    best,
    importance: importance.parameters,
    importanceTrials: importance.trials,
    importanceRoughBelow: roughBelowTrials,
    importanceMethod:
      'a random forest of 64 regression trees fitted to the complete trials, and the share of its variance each parameter takes part in, interactions included (the total effect of a functional ANOVA, as Optuna’s fANOVA evaluator computes main effects), scaled to sum to 1',
  };
}

/**
 * Explain topics: the newest full explain run per topic with its figures; a topic with only `--quick`
 * runs shows its newest quick one, marked quick, so a quick result never stands in for a full one.
 */
export async function explainTopics(
  runs: RunStore,
  figureSource: (artifact: ArtifactInfo) => Promise<string> | string,
): Promise<ExplainTopicView[]> {
  const explainRuns = (await runs.listRuns({ kind: 'explain' })).filter((run) => run.state === 'complete');
  const isQuick = (run: RunRecord) => run.config.quick === true;
  const newest = new Map<string, RunRecord>();
  for (const run of explainRuns) {
    const held = newest.get(run.name);
    if (held === undefined || (isQuick(held) && !isQuick(run))) newest.set(run.name, run);
  }
  const topics: ExplainTopicView[] = [];
  for (const run of [...newest.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    const artifacts = (await runs.listArtifacts(run.id)).filter((a) => a.kind === 'figure' && a.size > 0);
    topics.push({
      runId: run.id,
      topic: run.name,
      title: typeof run.summary.title === 'string' ? run.summary.title : run.name,
      completedAt: run.completedAt,
      summary: run.summary,
      quick: isQuick(run),
      figures: await Promise.all(
        artifacts.map(async (artifact) => ({
          artifactId: artifact.id,
          name: artifact.name,
          mediaType: artifact.mediaType,
          source: await figureSource(artifact),
        })),
      ),
    });
  }
  return topics;
}

/**
 * At most about `maxPoints` points of a series, keeping each bucket's lowest and highest value (so
 * spikes survive), in order. Series that are short enough come back unchanged.
 */
export function decimateSeries(series: MetricSeries, maxPoints: number): MetricSeries {
  const count = series.x.length;
  if (count <= maxPoints) return series;
  const buckets = Math.max(1, Math.floor(maxPoints / 2));
  const keep: number[] = [];
  for (let b = 0; b < buckets; b++) {
    const start = Math.floor((b * count) / buckets);
    const end = Math.floor(((b + 1) * count) / buckets);
    let low = -1;
    let high = -1;
    for (let i = start; i < end; i++) {
      const v = series.value[i];
      if (v === null || v === undefined) {
        // A gap (a non-finite value) is kept: it marks where a curve diverged.
        if (low === -1) low = i;
        continue;
      }
      if (low === -1 || (series.value[low] !== null && v < series.value[low]!)) low = i;
      if (high === -1 || v > series.value[high]!) high = i;
    }
    for (const i of [...new Set([low, high])].filter((i) => i >= 0).sort((a, b) => a - b)) keep.push(i);
  }
  return {
    step: keep.map((i) => series.step[i]!),
    x: keep.map((i) => series.x[i]!),
    value: keep.map((i) => series.value[i]!),
    time: keep.map((i) => series.time[i]!),
  };
}

/** A series as the page draws it: positions and values only, to 7 significant digits. */
export interface CompactSeries {
  x: number[];
  value: (number | null)[];
}

export interface CompactMetrics {
  runId: number;
  lastPointId: number;
  series: Record<string, CompactSeries>;
}

/** Float32 precision is all a chart (or a loss) has: shorter JSON, a third the bytes of full doubles. */
function short(value: number): number {
  return Number(value.toPrecision(7));
}

/** Metrics without steps and times, rounded: what the page needs for curves (a 100,000-point run in half the bytes). */
export function compactMetrics(metrics: RunMetrics): CompactMetrics {
  const series: Record<string, CompactSeries> = {};
  for (const [name, values] of Object.entries(metrics.series)) {
    series[name] = { x: values.x.map(short), value: values.value.map((v) => (v === null ? null : short(v))) };
  }
  return { runId: metrics.runId, lastPointId: metrics.lastPointId, series };
}

export function decimateMetrics(metrics: RunMetrics, maxPoints: number): RunMetrics {
  const series: Record<string, MetricSeries> = {};
  for (const [name, values] of Object.entries(metrics.series))
    series[name] = decimateSeries(values, maxPoints);
  return { ...metrics, series };
}
