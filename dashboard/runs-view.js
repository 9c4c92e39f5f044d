// @ts-check
/**
 * The runs tab: every recorded training (fits, fine-tunes, trials, the trainings behind explain
 * topics) in a table; the selected runs' loss, accuracy and learning-rate curves on shared axes, which
 * grow while a run trains; and a comparison of their results and the settings in which they differ.
 */
import { canvasThreshold, extent, legend, lineChart, palette } from './charts.js';
import {
  flatten,
  formatDuration,
  formatNumber,
  formatPercent,
  formatTime,
  h,
  summaryNumber,
} from './format.js';

/** @typedef {import('./format.js').RunRecord} RunRecord */
/** @typedef {import('./source.js').DataSource} DataSource */

/**
 * What each stored metric is called on the page: the exact quantity, never a bare "accuracy" that
 * could mean either set.
 */
export const metricNames = /** @type {Record<string, string>} */ ({
  loss: 'training loss',
  batchLoss: 'training loss (per batch)',
  validationLoss: 'validation loss',
  accuracy: 'training accuracy',
  validationAccuracy: 'validation accuracy',
  learningRate: 'learning rate (per epoch)',
  batchLearningRate: 'learning rate (per batch)',
});

/** Series the loss, accuracy and learning-rate charts already draw. */
const drawnAbove = new Set(Object.keys(metricNames));

/** Series about speed rather than the model: charted after the metrics. */
const speedNames = /** @type {Record<string, { label: string, unit: string }>} */ ({
  samplesPerSecond: { label: 'training throughput (samples/s)', unit: 'samples/s' },
  epochSeconds: { label: 'time per epoch (s)', unit: 'seconds' },
});

const averagingWords = /** @type {Record<string, string>} */ ({
  macro: 'macro average',
  micro: 'micro average',
  weighted: 'support-weighted average',
});

/**
 * The quantity a metric's default name (src/train/metrics.ts) stands for, or null for a name of
 * someone's own, which the page then shows exactly as stored.
 * @param {string} name e.g. 'macroF1', 'top5Accuracy', 'meanAbsoluteError'
 * @returns {string | null}
 */
export function metricQuantity(name) {
  const known = /** @type {Record<string, string>} */ ({
    accuracy: 'accuracy',
    rocAuc: 'ROC AUC',
    meanAbsoluteError: 'mean absolute error',
    rootMeanSquaredError: 'root mean squared error',
    r2Score: 'R² (coefficient of determination)',
  })[name];
  if (known !== undefined) return known;
  const topK = /^top(\d+)Accuracy$/.exec(name);
  if (topK) return `top-${topK[1]} accuracy`;
  const score = /^(macro|micro|weighted)(Precision|Recall|F1)$/.exec(name);
  if (score) {
    const quantity = score[2] === 'F1' ? 'F1' : (score[2] ?? '').toLowerCase();
    return `${quantity} (${averagingWords[score[1] ?? '']})`;
  }
  return null;
}

/**
 * A metric's families: each training series with its validation twin (the loop stores a metric
 * 'macroF1' and its validation value 'validationMacroF1'), in the order the names first appear;
 * the speed series last. The series the charts above draw are left out.
 * @param {string[]} names every series name the selected runs have
 * @returns {{ id: string, title: string, yLabel: string, names: string[], labels: Record<string, string> }[]}
 */
export function metricFamilies(names) {
  const present = new Set(names);
  /** @type {Map<string, string[]>} */
  const families = new Map();
  for (const name of names) {
    if (drawnAbove.has(name)) continue;
    const match = /^validation([A-Z0-9])(.*)$/.exec(name);
    const base = match
      ? [`${(match[1] ?? '').toLowerCase()}${match[2]}`, `${match[1]}${match[2]}`].find((candidate) =>
          present.has(candidate),
        )
      : undefined;
    const key = base ?? name;
    const family = families.get(key) ?? [];
    // The training series first, whichever the store returned first.
    if (base === undefined) family.unshift(name);
    else family.push(name);
    families.set(key, family);
  }
  const result = [...families].map(([key, members]) => {
    const quantity = metricQuantity(key);
    const speed = speedNames[key];
    /** @type {Record<string, string>} */
    const labels = {};
    for (const name of members) {
      const validation = name !== key;
      labels[name] =
        speed !== undefined
          ? speed.label
          : quantity === null
            ? name
            : `${validation ? 'validation' : 'training'} ${quantity}`;
    }
    const hasValidation = members.length > 1;
    const title =
      speed !== undefined
        ? speed.label.charAt(0).toUpperCase() + speed.label.slice(1)
        : quantity === null
          ? members.join(' and ')
          : `${hasValidation ? 'Training and validation' : 'Training'} ${quantity}`;
    return {
      id: `metric-${key}`,
      title,
      yLabel: speed?.unit ?? quantity ?? key,
      names: members,
      labels,
    };
  });
  // Speed after the model's metrics.
  return [
    ...result.filter((family) => !(family.id.slice('metric-'.length) in speedNames)),
    ...result.filter((family) => family.id.slice('metric-'.length) in speedNames),
  ];
}

/** A running run that has written nothing for this long has probably died (killed process). */
const staleMilliseconds = 10 * 60 * 1000;
/** Rows shown at most; filter to find the others. */
const rowLimit = 400;

/**
 * @typedef {{ x: number[], y: (number | null)[] }} Curve
 * @typedef {{ lastPointId: number, count: number, updatedAt: number, curves: Map<string, Curve> }} CachedMetrics
 */

/**
 * @param {RunRecord} run
 */
function runDuration(run) {
  const end = run.completedAt ?? (run.state === 'running' ? Date.now() : run.updatedAt);
  return (end - run.startedAt) / 1000;
}

/**
 * @param {RunRecord} run
 */
function stateBadge(run) {
  const stale = run.state === 'running' && Date.now() - run.updatedAt > staleMilliseconds;
  return h(
    'span',
    {
      class: `state state-${stale ? 'stale' : run.state}`,
      title: stale ? 'no update for over 10 minutes: the process may have died' : run.state,
    },
    stale ? 'stalled?' : run.state,
  );
}

/**
 * @param {DataSource} source
 * @param {HTMLElement} main
 */
export function createRunsView(source, main) {
  /** @type {RunRecord[]} */
  let runs = [];
  /** @type {Set<number>} */
  const selected = new Set();
  /** @type {Set<number>} */
  const expanded = new Set();
  /** @type {Map<number, CachedMetrics>} */
  const cache = new Map();
  let filter = '';
  let logLoss = false;
  let initialised = false;
  let smooth = true;

  const listBox = h('div', { class: 'run-list' });
  const chartsBox = h('div', { class: 'run-charts' });
  const lossChart = h('div', { id: 'chart-loss' });
  const accuracyChart = h('div', { id: 'chart-accuracy' });
  const rateChart = h('div', { id: 'chart-learning-rate' });
  // One chart per other metric the selected runs recorded (F1, mean absolute error, …), below.
  const metricsBox = h('div', { class: 'metric-charts' });
  /** @type {Map<string, HTMLElement>} */
  const metricCharts = new Map();
  /** @type {{ id: string, title: string, series: string[], key: string[] }[]} */
  let drawnMetricCharts = [];
  const legendBox = h('div');
  const compareBox = h('div', { class: 'compare' });
  const emptyNote = h(
    'p',
    { class: 'note' },
    'No runs yet. Train with `npx tensile train` (recorded into ./tensile.db), or add a RunTracker to fit’s callbacks.',
  );
  const search = /** @type {HTMLInputElement} */ (
    h('input', {
      type: 'search',
      placeholder: 'filter by name, kind or study',
      oninput: () => {
        filter = search.value.trim().toLowerCase();
        renderList();
      },
    })
  );
  const logToggle = /** @type {HTMLInputElement} */ (
    h('input', {
      type: 'checkbox',
      onchange: () => {
        logLoss = logToggle.checked;
        drawCharts();
      },
    })
  );
  const smoothToggle = /** @type {HTMLInputElement} */ (
    h('input', {
      type: 'checkbox',
      checked: true,
      onchange: () => {
        smooth = smoothToggle.checked;
        drawCharts();
      },
    })
  );
  const root = h(
    'section',
    { class: 'runs-view' },
    h('div', { class: 'panel list-panel' }, h('h2', {}, 'Runs'), search, listBox),
    h(
      'div',
      { class: 'panel charts-panel' },
      h(
        'div',
        { class: 'toolbar' },
        h('label', {}, logToggle, ' log-scale loss'),
        h('label', { title: 'per-batch loss as a running mean' }, smoothToggle, ' smooth batch loss'),
      ),
      chartsBox,
    ),
  );
  chartsBox.append(emptyNote, lossChart, accuracyChart, rateChart, metricsBox, legendBox, compareBox);

  /** @param {RunRecord} run */
  function matches(run) {
    if (filter === '') return true;
    return [run.name, run.kind, run.study ?? '', String(run.id)].some((text) =>
      text.toLowerCase().includes(filter),
    );
  }

  function renderList() {
    /** @type {Map<number, RunRecord[]>} */
    const children = new Map();
    for (const run of runs) {
      if (run.parentId === null) continue;
      const siblings = children.get(run.parentId);
      if (siblings === undefined) children.set(run.parentId, [run]);
      else siblings.push(run);
    }
    const known = new Set(runs.map((run) => run.id));
    const top = runs.filter((run) => run.parentId === null || !known.has(run.parentId));
    /** @type {HTMLElement[]} */
    const rows = [];
    let shown = 0;
    /**
     * @param {RunRecord} run
     * @param {number} depth
     */
    const addRow = (run, depth) => {
      if (shown >= rowLimit) return;
      shown++;
      // Trainings in the order they ran (the list itself is newest first).
      const kids = [...(children.get(run.id) ?? [])].reverse();
      const color = selected.has(run.id)
        ? palette[[...selected].indexOf(run.id) % palette.length]
        : 'transparent';
      const checkbox = h('input', {
        type: 'checkbox',
        checked: selected.has(run.id),
        'aria-label': `show ${run.name}`,
        onchange: () => toggle(run.id),
      });
      rows.push(
        h(
          'tr',
          { class: selected.has(run.id) ? 'selected' : '', dataset: { runId: String(run.id) } },
          h('td', { class: 'pick', style: `border-left: 4px solid ${color}` }, checkbox),
          h(
            'td',
            { class: 'name', style: `padding-left: ${6 + depth * 16}px` },
            kids.length > 0
              ? h(
                  'button',
                  {
                    class: 'expand',
                    title: 'show the trainings of this run',
                    onclick: () => {
                      if (expanded.has(run.id)) expanded.delete(run.id);
                      else expanded.add(run.id);
                      renderList();
                    },
                  },
                  expanded.has(run.id) ? '▾' : '▸',
                )
              : null,
            h('span', { class: 'run-name' }, run.name),
            h(
              'div',
              { class: 'run-meta' },
              stateBadge(run),
              ' ',
              h(
                'span',
                { class: 'kind' },
                run.study !== null ? `trial ${run.trialNumber ?? ''} · ${run.study}` : run.kind,
              ),
              kids.length > 0 ? h('span', { class: 'kind' }, ` · ${kids.length} trainings`) : null,
            ),
          ),
          h('td', { class: 'number' }, formatNumber(summaryNumber(run, 'epochs'))),
          h('td', { class: 'number' }, formatNumber(summaryNumber(run, 'loss'))),
          h('td', { class: 'number' }, formatPercent(summaryNumber(run, 'accuracy'))),
          h('td', { class: 'number' }, formatPercent(summaryNumber(run, 'validationAccuracy'))),
          h(
            'td',
            { class: 'time' },
            formatTime(run.startedAt),
            h('div', { class: 'kind', title: 'training time' }, formatDuration(runDuration(run))),
          ),
        ),
      );
      if (expanded.has(run.id) || filter !== '')
        for (const kid of kids) if (matches(kid) || matches(run)) addRow(kid, depth + 1);
    };
    for (const run of top) if (matches(run) || (children.get(run.id) ?? []).some(matches)) addRow(run, 0);
    const table = h(
      'table',
      { class: 'runs' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', { class: 'pick' }),
          h('th', {}, 'run'),
          h('th', { class: 'number' }, 'epochs'),
          // The last epoch's values, each named for the data it was measured on.
          h('th', { class: 'number', title: 'mean training loss of the last epoch' }, metricNames.loss),
          h('th', { class: 'number', title: 'training accuracy of the last epoch' }, metricNames.accuracy),
          h(
            'th',
            {
              class: 'number',
              title: 'validation accuracy after the last epoch (– without validation data)',
            },
            metricNames.validationAccuracy,
          ),
          h('th', { class: 'time' }, 'started · time'),
        ),
      ),
      h('tbody', {}, ...rows),
    );
    listBox.replaceChildren(table);
    if (shown >= rowLimit)
      listBox.append(
        h('p', { class: 'note' }, `Showing the newest ${rowLimit} runs; filter to find others.`),
      );
  }

  /** @param {number} runId */
  function toggle(runId) {
    if (selected.has(runId)) selected.delete(runId);
    else selected.add(runId);
    renderList();
    void loadMetrics().then(drawCharts);
  }

  /** Fetches the points each selected run has gained since the last look. */
  async function loadMetrics() {
    const byId = new Map(runs.map((run) => [run.id, run]));
    await Promise.all(
      [...selected].map(async (runId) => {
        const run = byId.get(runId);
        const cached = cache.get(runId) ?? { lastPointId: 0, count: 0, updatedAt: -1, curves: new Map() };
        // Nothing written to the run since the last read: nothing to fetch.
        if (run !== undefined && cached.updatedAt === run.updatedAt) return;
        const metrics = await source.metrics(runId, cached.lastPointId);
        for (const [name, series] of Object.entries(metrics.series)) {
          const curve = cached.curves.get(name) ?? { x: [], y: [] };
          for (let i = 0; i < series.x.length; i++) {
            curve.x.push(series.x[i] ?? 0);
            curve.y.push(series.value[i] ?? null);
          }
          cached.count += series.x.length;
          cached.curves.set(name, curve);
        }
        cached.lastPointId = metrics.lastPointId;
        if (run !== undefined) cached.updatedAt = run.updatedAt;
        cache.set(runId, cached);
      }),
    );
  }

  /**
   * A running mean over a window of points (for noisy per-batch losses).
   * @param {Curve} curve
   * @returns {Curve}
   */
  function smoothed(curve) {
    const window = Math.max(1, Math.min(50, Math.floor(curve.y.length / 40)));
    if (window <= 1) return curve;
    const y = [];
    let sum = 0;
    let count = 0;
    /** @type {(number | null)[]} */
    const queue = [];
    for (const v of curve.y) {
      queue.push(v);
      if (v !== null) {
        sum += v;
        count++;
      }
      if (queue.length > window) {
        const old = queue.shift();
        if (old !== null && old !== undefined) {
          sum -= old;
          count--;
        }
      }
      y.push(v === null || count === 0 ? null : sum / count);
    }
    return { x: curve.x, y };
  }

  function drawCharts() {
    const chosen = [...selected]
      .map((id) => runs.find((run) => run.id === id))
      .filter((run) => run !== undefined);
    emptyNote.hidden = runs.length > 0;
    const visible = chosen.length > 0;
    const families = metricFamilies(seriesNames(chosen));
    /** @type {Record<string, string>} */
    const otherLabels = Object.assign({}, ...families.map((family) => family.labels));
    for (const box of [lossChart, accuracyChart, rateChart, metricsBox, legendBox, compareBox])
      box.hidden = !visible;
    if (!visible) {
      drawnMetricCharts = [];
      return;
    }
    /**
     * @param {string[]} names
     * @param {(name: string) => { dash?: boolean, lineWidth?: number, opacity?: number }} style
     */
    const seriesFor = (names, style) =>
      chosen.flatMap((run, index) => {
        const curves = cache.get(run.id)?.curves ?? new Map();
        const color = palette[index % palette.length] ?? '#333';
        return names
          .filter((name) => curves.has(name))
          .map((name) => {
            const raw = /** @type {Curve} */ (curves.get(name));
            const curve = name === 'batchLoss' && smooth ? smoothed(raw) : raw;
            const label = metricNames[name] ?? otherLabels[name] ?? name;
            return { name: `${run.name} ${label}`, color, x: curve.x, y: curve.y, ...style(name) };
          });
      });
    /** @param {string} name */
    const lossStyle = (name) =>
      name === 'batchLoss' ? { lineWidth: 1, opacity: 0.45 } : { dash: name === 'validationLoss' };
    const lossNames = ['batchLoss', 'loss', 'validationLoss'];
    const lossSeries = seriesFor(lossNames, lossStyle);
    lineChart(lossChart, {
      id: 'loss',
      title: 'Training and validation loss',
      xLabel: 'epoch',
      yLabel: 'loss',
      yScale: logLoss ? 'log' : 'linear',
      series: lossSeries,
      key: keyFor(lossNames, lossStyle),
    });
    /** @param {string} name */
    const accuracyStyle = (name) => ({ dash: name === 'validationAccuracy' });
    const accuracyNames = ['accuracy', 'validationAccuracy'];
    lineChart(accuracyChart, {
      id: 'accuracy',
      title: 'Training and validation accuracy',
      xLabel: 'epoch',
      yLabel: 'accuracy',
      series: seriesFor(accuracyNames, accuracyStyle),
      key: keyFor(accuracyNames, accuracyStyle),
    });
    // The rate at every optimizer step where the run recorded it (a one-cycle schedule keeps its
    // shape); runs recorded before per-batch rates draw their per-epoch value.
    const perBatch = chosen.some((run) => cache.get(run.id)?.curves.has('batchLearningRate'));
    const rateName = perBatch ? 'batchLearningRate' : 'learningRate';
    const rateSeries = seriesFor([rateName], () => ({}));
    const [rateLow, rateHigh] = extent(
      rateSeries.flatMap((series) => series.y),
      'log',
      false,
    );
    lineChart(rateChart, {
      id: 'learning-rate',
      title: perBatch ? 'Learning rate at each step' : 'Learning rate (end of each epoch)',
      xLabel: 'epoch',
      yLabel: 'learning rate',
      // A rate that spans decades (step decay, one-cycle's long tail) reads better on a log axis.
      yScale: rateHigh / rateLow > 100 ? 'log' : 'linear',
      height: 190,
      // Dots would crowd a per-step curve; per-epoch values keep theirs.
      markers: !perBatch,
      series: rateSeries,
      key: keyFor([rateName], () => ({})),
    });
    lossChart.dataset.series = lossSeries.map((series) => series.name).join('\n');
    drawMetricCharts(families, seriesFor, otherLabels);
    legendBox.replaceChildren(
      legend(
        chosen.map((run, index) => ({
          name: `${run.name} (#${run.id})`,
          color: palette[index % palette.length] ?? '#333',
        })),
      ),
      h(
        'p',
        { class: 'note' },
        'Colour: the run. Line: the metric, as each chart’s key names it (solid training, dashed validation, thin per batch).',
      ),
    );
    renderComparison(chosen, families, otherLabels);
  }

  /**
   * Every series name the chosen runs have, in the order first seen.
   * @param {RunRecord[]} chosen
   */
  function seriesNames(chosen) {
    return [...new Set(chosen.flatMap((run) => [...(cache.get(run.id)?.curves.keys() ?? [])]))];
  }

  /**
   * One chart per metric family, training solid and validation dashed, in a box of its own kept
   * across redraws (a chart sizes itself to its box, which must be on the page first).
   * @param {ReturnType<typeof metricFamilies>} families
   * @param {(names: string[], style: (name: string) => { dash?: boolean }) => import('./charts.js').LineSeries[]} seriesFor
   * @param {Record<string, string>} labels
   */
  function drawMetricCharts(families, seriesFor, labels) {
    const boxes = families.map((family) => {
      const box = metricCharts.get(family.id) ?? h('div', { id: `chart-${family.id}` });
      metricCharts.set(family.id, box);
      return box;
    });
    metricsBox.replaceChildren(...boxes);
    drawnMetricCharts = families.map((family, index) => {
      const box = /** @type {HTMLElement} */ (boxes[index]);
      /** @param {string} name */
      const style = (name) => ({ dash: name !== family.names[0] });
      const series = seriesFor(family.names, style);
      const key = family.names.map((name) => ({ name: labels[name] ?? name, ...style(name) }));
      lineChart(box, {
        id: family.id,
        title: family.title,
        xLabel: 'epoch',
        yLabel: family.yLabel,
        height: 220,
        series,
        key,
      });
      box.dataset.series = series.map((line) => line.name).join('\n');
      return {
        id: family.id,
        title: family.title,
        series: series.map((line) => line.name),
        key: key.map((entry) => entry.name),
      };
    });
  }

  /**
   * The chart's key: each metric the selected runs have, with its line style.
   * @param {string[]} names
   * @param {(name: string) => { dash?: boolean, lineWidth?: number, opacity?: number }} style
   */
  function keyFor(names, style) {
    const present = names.filter((name) =>
      [...selected].some((id) => cache.get(id)?.curves.has(name) ?? false),
    );
    return present.map((name) => ({ name: metricNames[name] ?? name, ...style(name) }));
  }

  /**
   * @param {RunRecord[]} chosen
   * @param {ReturnType<typeof metricFamilies>} families
   * @param {Record<string, string>} labels
   */
  function renderComparison(chosen, families, labels) {
    /**
     * The last recorded value of a run's series (its final epoch), or null.
     * @param {RunRecord} run
     * @param {string} name
     */
    const finalValue = (run, name) => {
      const values = cache.get(run.id)?.curves.get(name)?.y ?? [];
      for (let i = values.length - 1; i >= 0; i--) {
        const value = values[i];
        if (value !== null && value !== undefined) return value;
      }
      return null;
    };
    /** @type {[string, (run: RunRecord) => string][]} */
    const metricRows = families
      .filter((family) => !(family.id.slice('metric-'.length) in speedNames))
      .flatMap((family) => family.names)
      .map((name) => [`final ${labels[name] ?? name}`, (run) => formatNumber(finalValue(run, name))]);
    /** @type {[string, (run: RunRecord) => string][]} */
    const resultRows = [
      ['state', (run) => run.state],
      ['kind', (run) => run.kind],
      ['epochs', (run) => formatNumber(summaryNumber(run, 'epochs'))],
      ['training loss', (run) => formatNumber(summaryNumber(run, 'loss'))],
      ['validation loss', (run) => formatNumber(summaryNumber(run, 'validationLoss'))],
      ['training accuracy', (run) => formatPercent(summaryNumber(run, 'accuracy'))],
      ['validation accuracy', (run) => formatPercent(summaryNumber(run, 'validationAccuracy'))],
      ['best validation accuracy', (run) => formatPercent(summaryNumber(run, 'bestValidationAccuracy'))],
      ['test accuracy', (run) => formatPercent(summaryNumber(run, 'testAccuracy'))],
      ...metricRows,
      ['samples/s', (run) => formatNumber(summaryNumber(run, 'samplesPerSecond'))],
      ['time', (run) => formatDuration(runDuration(run))],
    ];
    const configs = chosen.map((run) => {
      const { model, ...rest } = run.config;
      const flat = flatten(rest);
      if (model !== null && typeof model === 'object' && !Array.isArray(model)) {
        for (const key of ['trainableParameters', 'frozenParameters']) {
          const value = model[key];
          if (typeof value === 'number') flat[`model.${key}`] = formatNumber(value);
        }
      }
      return flat;
    });
    const keys = [...new Set(configs.flatMap((config) => Object.keys(config)))].sort();
    const differing =
      chosen.length < 2
        ? keys
        : keys.filter((key) => new Set(configs.map((config) => config[key] ?? '–')).size > 1);
    const header = h(
      'tr',
      {},
      h('th'),
      ...chosen.map((run, index) =>
        h('th', { style: `color: ${palette[index % palette.length]}` }, `${run.name} #${run.id}`),
      ),
    );
    const rows = [
      ...resultRows
        .filter(([, cell]) => chosen.some((run) => !['–', ''].includes(cell(run))))
        .map(([name, cell]) =>
          h('tr', {}, h('th', {}, name), ...chosen.map((run) => h('td', {}, cell(run)))),
        ),
      h(
        'tr',
        { class: 'divider' },
        h(
          'th',
          { colspan: chosen.length + 1 },
          chosen.length < 2 ? 'configuration' : 'configuration (where the runs differ)',
        ),
      ),
      ...differing.map((key) =>
        h('tr', {}, h('th', {}, key), ...configs.map((config) => h('td', {}, config[key] ?? '–'))),
      ),
    ];
    compareBox.replaceChildren(
      h('h3', {}, chosen.length < 2 ? 'Run' : 'Comparison'),
      h('table', { class: 'compare-table' }, h('thead', {}, header), h('tbody', {}, ...rows)),
    );
  }

  async function refresh() {
    const data = await source.overview();
    runs = data.runs;
    if (!initialised && selected.size === 0) {
      // Start with what is training now, else the newest run with curves. Until some run has a
      // point, keep looking: a run that has just started has none yet, and selecting nothing
      // for good would leave its curves off the page.
      const running = runs.filter((run) => run.state === 'running' && run.pointCount > 0).slice(0, 3);
      const newest = runs.find((run) => run.pointCount > 0);
      for (const run of running.length > 0 ? running : newest ? [newest] : []) selected.add(run.id);
      initialised = selected.size > 0;
    }
    for (const id of [...selected]) if (!runs.some((run) => run.id === id)) selected.delete(id);
    renderList();
    await loadMetrics();
    drawCharts();
  }

  return {
    root,
    /** @param {string[]} route e.g. ['runs', '3,5'] */
    async show(route) {
      main.replaceChildren(root);
      if (route[1]) {
        selected.clear();
        for (const id of route[1].split(',').map(Number)) if (Number.isInteger(id)) selected.add(id);
        initialised = true;
      }
      await refresh();
    },
    refresh,
    redraw: drawCharts,
    /** The metric charts below loss, accuracy and learning rate: ids, titles, series and key names drawn. */
    metricCharts: () => drawnMetricCharts,
    /** Points drawn, for the browser tests. */
    pointCount: () => [...selected].reduce((sum, id) => sum + (cache.get(id)?.count ?? 0), 0),
    canvasThreshold,
  };
}
