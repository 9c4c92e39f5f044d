// @ts-check
/* global location */
/**
 * The studies tab: every study in the storage, and for one study the plots optuna-dashboard users
 * know: optimization history (complete trials, and pruned ones greyed at their last reported value),
 * intermediate values (one curve per trial over its reported steps, pruned ones greyed and crossed
 * where they stopped), parameter importance (with the number of trials behind it), learning rate
 * against the objective, parallel coordinates and one slice plot per parameter, with the best trials
 * in a table.
 */
import { barChart, lineChart, palette, parallelCoordinates, rampColor, scatterChart } from './charts.js';
import { formatDuration, formatNumber, formatTime, h } from './format.js';

/** @typedef {import('./source.js').DataSource} DataSource */
/** @typedef {import('./format.js').StudyPlotData} StudyPlotData */
/** @typedef {import('./format.js').StudySummaryView} StudySummaryView */

/** Trial states in the history plot. */
const stateColors = /** @type {Record<string, string>} */ ({
  complete: palette[0] ?? '#1f77b4',
  pruned: '#bbbbbb',
  failed: palette[1] ?? '#d62728',
  running: palette[3] ?? '#ff7f0e',
  waiting: '#dddddd',
});

/**
 * What the study plots drew, for the browser tests (window.tensileDashboard.studyPlots()): per trial
 * its number and state, where the history put it, and the intermediate curve with its end mark.
 * @typedef {{
 *   history: { number: number, state: string, value: number }[],
 *   historyUnplotted: { number: number, state: string }[],
 *   intermediate: { number: number, state: string, steps: number, last: number | null, endMarker: string | null, color: string }[],
 *   importance: { name: string, importance: number }[],
 *   importanceTrials: number,
 *   importanceWarning: boolean,
 * }} StudyPlots
 */

/** Parameter names that mean "learning rate". */
const learningRatePattern = /^(lr|learning[-_ ]?rate|.*[-_.]lr|lr[-_.].*)$/i;

/**
 * @param {StudyPlotData} view
 */
function objectiveName(view) {
  const metric = view.study.userAttributes.metric ?? view.study.userAttributes.objective;
  return typeof metric === 'string' ? metric : 'objective';
}

/**
 * Best value so far after each trial (a step line), in trial order.
 * @param {StudyPlotData} view
 */
function bestSoFar(view) {
  /** @type {(number | null)[]} */
  const y = [];
  let best = null;
  for (const v of view.trials.value) {
    if (v !== null && (best === null || (view.study.direction === 'minimize' ? v < best : v > best)))
      best = v;
    y.push(best);
  }
  return y;
}

/**
 * @param {DataSource} source
 * @param {HTMLElement} main
 */
export function createStudiesView(source, main) {
  /** @type {StudyPlotData | null} */
  let current = null;
  /** @type {number | null} */
  let studyId = null;
  /** @type {StudySummaryView[]} */
  let studies = [];
  /** @type {StudyPlots | null} */
  let plots = null;
  let lastLoad = 0;
  const root = h('section', { class: 'studies-view' });

  function renderList() {
    const rows = studies.map((study) =>
      h(
        'tr',
        {
          class: 'clickable',
          onclick: () => (location.hash = `#/studies/${study.id}`),
          dataset: { studyId: String(study.id) },
        },
        h('td', {}, h('a', { href: `#/studies/${study.id}` }, study.name)),
        h('td', {}, study.direction),
        h('td', { class: 'number' }, String(study.trialCounts.complete)),
        h('td', { class: 'number' }, String(study.trialCounts.pruned)),
        h('td', { class: 'number' }, String(study.trialCounts.failed)),
        h('td', { class: 'number' }, String(study.trialCounts.running + study.trialCounts.waiting)),
        h('td', { class: 'number' }, formatNumber(study.bestValue)),
        h('td', { class: 'time' }, formatTime(study.createdAt)),
      ),
    );
    root.replaceChildren(
      h(
        'div',
        { class: 'panel' },
        h('h2', {}, 'Studies'),
        studies.length === 0
          ? h(
              'p',
              { class: 'note' },
              'No studies yet. Run `npx tensile tune` (or a Study with SQLite/PostgreSQL storage) against the same --storage.',
            )
          : h(
              'table',
              { class: 'studies' },
              h(
                'thead',
                {},
                h(
                  'tr',
                  {},
                  ...['study', 'direction', 'complete', 'pruned', 'failed', 'running', 'best', 'created'].map(
                    (name) => h('th', {}, name),
                  ),
                ),
              ),
              h('tbody', {}, ...rows),
            ),
      ),
    );
  }

  function renderStudy() {
    const view = current;
    if (view === null) return;
    const objective = objectiveName(view);
    const { trials } = view;
    const counts = view.study.trialCounts;
    const best = view.best;
    const header = h(
      'div',
      { class: 'panel study-header' },
      h('h2', {}, h('a', { href: '#/studies' }, 'Studies'), ' / ', view.study.name),
      h(
        'p',
        {},
        `${view.study.direction} ${objective} · ${counts.complete} complete, ${counts.pruned} pruned, ${counts.failed} failed, ${counts.running} running, ${counts.waiting} waiting`,
      ),
      best === null
        ? h('p', { class: 'note' }, 'No complete trial yet.')
        : h(
            'p',
            { class: 'best' },
            `Best: trial ${best.number}, ${objective} ${formatNumber(best.value)} with `,
            Object.entries(best.params)
              .map(
                ([name, value]) =>
                  `${name} = ${typeof value === 'number' ? formatNumber(value) : String(value)}`,
              )
              .join(', '),
          ),
    );
    const history = h('div', { id: 'chart-history' });
    const intermediate = h('div', { id: 'chart-intermediate' });
    const importance = h('div', { id: 'chart-importance' });
    const rate = h('div', { id: 'chart-lr' });
    const parallel = h('div', { id: 'chart-parallel' });
    const slices = h('div', { class: 'slices' });
    // What the history plots: a complete trial's value, a pruned one's last report.
    const historyValues = trials.value.map((value, i) => value ?? trials.prunedValue[i] ?? null);
    const unplotted = trials.number.flatMap((number, i) =>
      historyValues[i] === null ? [{ number, state: trials.state[i] ?? 'failed' }] : [],
    );
    const failedNumbers = unplotted.filter((trial) => trial.state === 'failed').map((trial) => trial.number);
    const reporting = view.intermediate.filter((curve) => curve !== null).length;
    const rough = view.importanceTrials < view.importanceRoughBelow;
    const unrated = view.importance.filter((item) => !item.rated).map((item) => item.name);
    const grid = h(
      'div',
      { class: 'study-grid' },
      h(
        'div',
        { class: 'panel' },
        history,
        h(
          'p',
          { class: 'note' },
          `Blue: complete trials. Grey: pruned trials, at the last value they reported. Red line: best so far.`,
        ),
        failedNumbers.length > 0
          ? h(
              'p',
              { class: 'note failed-trials' },
              `Not plotted (failed, no value): trial${failedNumbers.length > 1 ? 's' : ''} ${failedNumbers.slice(0, 30).join(', ')}${failedNumbers.length > 30 ? ', …' : ''}.`,
            )
          : null,
      ),
      h(
        'div',
        { class: 'panel' },
        reporting > 0
          ? intermediate
          : h(
              'p',
              { class: 'note' },
              'Intermediate values: no trial reported any (trial.report(value, step), as the training objective does each epoch).',
            ),
        reporting > 0
          ? h(
              'p',
              { class: 'note' },
              `Each curve is one trial's reported ${objective}, by step; complete trials coloured by their final value (dark is best), pruned trials grey and dashed, with a cross where the pruner stopped them.${view.intermediateThinned ? ' Long curves are thinned to keep the page light.' : ''}`,
            )
          : null,
      ),
      h(
        'div',
        { class: 'panel' },
        importance,
        h(
          'p',
          { class: rough ? 'warning importance-note' : 'note importance-note' },
          `Importance from ${view.importanceTrials} complete trial${view.importanceTrials === 1 ? '' : 's'}` +
            (rough ? `; below ${view.importanceRoughBelow} it is a rough guide.` : '.'),
        ),
        unrated.length > 0
          ? h('p', { class: 'note' }, `Not rated (absent from some trials): ${unrated.join(', ')}.`)
          : null,
        h('p', { class: 'note' }, `Method: ${view.importanceMethod}.`),
      ),
    );
    const parameterList = view.parameters;
    const lr = parameterList.find(
      (parameter) => learningRatePattern.test(parameter.name) && parameter.kind !== 'categorical',
    );
    if (lr) grid.append(h('div', { class: 'panel' }, rate));
    root.replaceChildren(
      header,
      grid,
      h('div', { class: 'panel' }, parallel),
      h('div', { class: 'panel' }, h('h3', {}, 'Slice plots'), slices),
      h(
        'div',
        { class: 'panel' },
        h('h3', {}, 'Trials: running, the best complete ones, then pruned and failed'),
        trialTable(view),
      ),
    );

    const values = trials.value;
    const states = trials.state;
    const history_ = scatterChart(history, {
      id: 'history',
      title: 'Optimization history',
      xLabel: 'trial',
      yLabel: objective,
      data: {
        x: trials.number,
        // Pruned trials show their last reported value, greyed: where the pruner stopped them.
        y: historyValues,
        color: (i) => stateColors[states[i] ?? 'complete'] ?? '#333',
        tooltip: (i) =>
          states[i] === 'pruned'
            ? `trial ${trials.number[i]}: pruned at step ${trials.lastStep[i]}, ${formatNumber(historyValues[i])}`
            : `trial ${trials.number[i]}: ${formatNumber(historyValues[i])}`,
      },
      line: { name: 'best so far', color: palette[1] ?? '#d62728', x: trials.number, y: bestSoFar(view) },
    });
    history.dataset.trials = String(history_.points);
    history.dataset.pruned = String(
      states.filter((state, i) => state === 'pruned' && historyValues[i] !== null).length,
    );
    history.dataset.unplotted = String(unplotted.length);

    barChart(importance, {
      id: 'importance',
      title: 'Parameter importance',
      xLabel: `share of the variance of ${objective} (interactions included), scaled to sum to 1`,
      items: view.importance.map((item) => ({
        name: item.name,
        value: item.importance,
        detail: item.rated
          ? `${item.name}: takes part in ${(item.totalEffect * 100).toFixed(1)}% of the variance, ${(item.mainEffect * 100).toFixed(1)}% on its own`
          : `${item.name}: absent from some trials, not rated`,
      })),
    });

    const [low, high] = minMax(values);
    // Colours by objective in 32 levels, computed once for all the plots (a canvas draws one path per colour).
    const palette32 = Array.from({ length: 32 }, (_, k) => rampColor((k + 0.5) / 32));
    const colors = values.map((v) => {
      if (v === null || v === undefined) return '#ccc';
      const t = high > low ? (v - low) / (high - low) : 0.5;
      const shade = view.study.direction === 'minimize' ? t : 1 - t;
      return palette32[Math.min(31, Math.floor(shade * 32))] ?? '#ccc';
    });
    /** @param {number} i */
    const valueColor = (i) => colors[i] ?? '#ccc';

    /** @type {StudyPlots['intermediate']} */
    const drawnCurves = [];
    if (reporting > 0) {
      /** @type {import('./charts.js').LineSeries[]} */
      const series = [];
      // Pruned curves first, so the complete ones are drawn over them.
      const order = trials.number
        .map((_, i) => i)
        .filter((i) => view.intermediate[i] !== null && view.intermediate[i] !== undefined)
        .sort((a, b) => Number(states[b] === 'pruned') - Number(states[a] === 'pruned'));
      for (const i of order) {
        const curve = /** @type {{ step: number[], value: (number | null)[] }} */ (view.intermediate[i]);
        const state = states[i] ?? 'complete';
        const color =
          state === 'complete' ? valueColor(i) : (stateColors[state] ?? stateColors.pruned ?? '#bbb');
        const endMarker = state === 'pruned' ? 'cross' : state === 'running' ? 'dot' : null;
        series.push({
          name: `trial ${trials.number[i]} (${state})`,
          color,
          x: curve.step,
          y: curve.value,
          lineWidth: state === 'pruned' ? 1.2 : 1.6,
          opacity: state === 'pruned' ? 0.8 : 0.9,
          // Dashed as well as grey: the ramp's palest colour is close to grey.
          dash: state === 'pruned',
          ...(endMarker ? { endMarker } : {}),
        });
        drawnCurves.push({
          number: trials.number[i] ?? i,
          state,
          steps: curve.step.length,
          last: curve.value[curve.value.length - 1] ?? null,
          endMarker,
          color,
        });
      }
      lineChart(intermediate, {
        id: 'intermediate',
        title: 'Intermediate values',
        xLabel: 'step',
        yLabel: objective,
        series,
        markers: false,
        tooltip: 'nearest',
        key: [
          { name: 'complete', color: rampColor(0.35) },
          { name: 'pruned', color: stateColors.pruned, dash: true },
          { name: 'stopped here', color: stateColors.pruned, marker: 'cross' },
        ],
      });
    }
    plots = {
      history: trials.number.flatMap((number, i) => {
        const value = historyValues[i];
        return value === null || value === undefined ? [] : [{ number, state: states[i] ?? '', value }];
      }),
      historyUnplotted: unplotted,
      intermediate: drawnCurves,
      importance: view.importance.map((item) => ({ name: item.name, importance: item.importance })),
      importanceTrials: view.importanceTrials,
      importanceWarning: rough,
    };
    if (lr) {
      scatterChart(rate, {
        id: 'lr',
        title: `Learning rate (${lr.name}) against ${objective}`,
        xLabel: lr.name,
        yLabel: objective,
        xScale:
          lr.log || (lr.low !== null && lr.high !== null && lr.low > 0 && lr.high / lr.low >= 100)
            ? 'log'
            : 'linear',
        data: {
          x: lr.values,
          y: values,
          color: valueColor,
          tooltip: (i) =>
            `trial ${trials.number[i]}: ${lr.name} ${formatNumber(lr.values[i])} → ${formatNumber(values[i])}`,
        },
      });
    }

    parallelCoordinates(parallel, {
      id: 'parallel',
      title: 'Parallel coordinates',
      axes: [
        ...parameterList.map((parameter) => ({
          name: parameter.name,
          values: parameter.values,
          log: parameter.log,
          choices: parameter.choices,
        })),
        { name: objective, values },
      ],
      color: values,
      best: view.study.direction === 'minimize' ? 'low' : 'high',
    });

    for (const parameter of parameterList) {
      const box = h('div', { class: 'slice', id: `chart-slice-${parameter.name}` });
      slices.append(box);
      scatterChart(box, {
        id: `slice-${parameter.name}`,
        title: parameter.name,
        xLabel: parameter.name,
        yLabel: objective,
        height: 220,
        xScale: parameter.log ? 'log' : 'linear',
        xCategories: parameter.choices,
        data: {
          x: parameter.values,
          y: values,
          color: valueColor,
          tooltip: (i) => `trial ${trials.number[i]}: ${formatNumber(values[i])}`,
        },
      });
    }
  }

  async function load() {
    if (studyId === null) {
      studies = (await source.overview()).studies;
      renderList();
      return;
    }
    current = await source.study(studyId);
    lastLoad = Date.now();
    renderStudy();
  }

  return {
    root,
    /** @param {string[]} route ['studies'] or ['studies', id] */
    async show(route) {
      main.replaceChildren(root);
      studyId = route[1] !== undefined ? Number(route[1]) : null;
      current = null;
      plots = null;
      await load();
    },
    async refresh() {
      // A study of thousands of trials is not refetched more than every two seconds.
      if (studyId !== null && Date.now() - lastLoad < 2000) return;
      await load();
    },
    redraw() {
      if (studyId === null) renderList();
      else renderStudy();
    },
    /** What the open study's plots drew (null on the list), for the browser tests. */
    plots: () => (studyId === null ? null : plots),
  };
}

/**
 * @param {(number | null)[]} values
 * @returns {[number, number]}
 */
function minMax(values) {
  let low = Infinity;
  let high = -Infinity;
  for (const v of values) {
    if (v === null || !Number.isFinite(v)) continue;
    low = Math.min(low, v);
    high = Math.max(high, v);
  }
  return low === Infinity ? [0, 1] : [low, high];
}

/**
 * The best 50 complete trials (and any running ones) with their parameters.
 * @param {StudyPlotData} view
 */
function trialTable(view) {
  const { trials } = view;
  const order = trials.number.map((_, i) => i);
  const sign = view.study.direction === 'minimize' ? 1 : -1;
  const complete = order
    .filter((i) => trials.value[i] !== null)
    .sort((a, b) => sign * ((trials.value[a] ?? 0) - (trials.value[b] ?? 0)));
  const running = order.filter((i) => trials.state[i] === 'running');
  // Then the newest pruned and failed trials, so that every kind of outcome is listed.
  const unfinished = order
    .filter((i) => trials.state[i] === 'pruned' || trials.state[i] === 'failed')
    .reverse()
    .slice(0, 20);
  const shown = [...running, ...complete.slice(0, 50), ...unfinished];
  return h(
    'table',
    { class: 'trials' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', {}, 'trial'),
        h('th', {}, 'state'),
        h('th', {}, 'value'),
        h('th', {}, 'time'),
        ...view.parameters.map((p) => h('th', {}, p.name)),
      ),
    ),
    h(
      'tbody',
      {},
      ...shown.map((i) =>
        h(
          'tr',
          {},
          h('td', { class: 'number' }, String(trials.number[i])),
          h('td', {}, h('span', { class: `state state-${trials.state[i]}` }, trials.state[i] ?? '')),
          // A pruned trial's value is its last report (not a result), in brackets.
          h(
            'td',
            { class: 'number' },
            trials.state[i] === 'pruned'
              ? `(${formatNumber(trials.prunedValue[i])})`
              : formatNumber(trials.value[i]),
          ),
          h('td', { class: 'number' }, formatDuration(trials.duration[i] ?? null)),
          ...view.parameters.map((p) => {
            const v = p.values[i];
            return h(
              'td',
              { class: 'number' },
              v === null || v === undefined ? '–' : p.choices ? (p.choices[v] ?? '') : formatNumber(v),
            );
          }),
        ),
      ),
    ),
  );
}
