// @ts-check
/* global document, window, location, performance */
/**
 * The dashboard page: a router over three tabs (runs, studies, explain figures), live updates from
 * the server's event stream, and a small handle for tests and benchmarks (window.tensileDashboard).
 */
import { createFiguresView } from './figures-view.js';
import { createRunsView } from './runs-view.js';
import { createSource, dashboardWindow } from './source.js';
import { createStudiesView } from './studies-view.js';

const source = createSource();
const main = /** @type {HTMLElement} */ (document.getElementById('main'));
const liveBadge = /** @type {HTMLElement} */ (document.getElementById('live'));
const views = {
  runs: createRunsView(source, main),
  studies: createStudiesView(source, main),
  figures: createFiguresView(source, main),
};
/** @type {keyof typeof views} */
let currentName = 'runs';
let refreshing = false;
let refreshAgain = false;

function route() {
  const parts = location.hash
    .replace(/^#\/?/, '')
    .split('/')
    .filter((part) => part.length > 0);
  const name = parts[0] === 'studies' || parts[0] === 'figures' ? parts[0] : 'runs';
  return { name: /** @type {keyof typeof views} */ (name), parts: parts.length > 0 ? parts : ['runs'] };
}

/**
 * Marks the page as drawn, with how long it took (read by the browser tests and the benchmark).
 * @param {string} view
 * @param {number} started
 */
function markReady(view, started) {
  document.body.dataset.view = view;
  document.body.dataset.renderMs = (performance.now() - started).toFixed(1);
  // Milliseconds since the page started loading: the page-load time of the first render.
  document.body.dataset.readyAt = performance.now().toFixed(1);
  document.body.dataset.ready = String(Number(document.body.dataset.ready ?? 0) + 1);
}

/** @param {unknown} error */
function showError(error) {
  main.prepend(
    Object.assign(document.createElement('p'), {
      className: 'error',
      textContent: `Could not load: ${error instanceof Error ? error.message : String(error)}`,
    }),
  );
}

async function navigate() {
  const started = performance.now();
  const { name, parts } = route();
  currentName = name;
  for (const link of document.querySelectorAll('nav a')) {
    link.classList.toggle('active', /** @type {HTMLElement} */ (link).dataset.tab === name);
  }
  try {
    await views[name].show(parts);
  } catch (error) {
    showError(error);
  }
  markReady(parts.join('/'), started);
}

/** Redraws after a change in the store; changes that arrive meanwhile trigger one more round. */
async function refresh() {
  if (refreshing) {
    refreshAgain = true;
    return;
  }
  refreshing = true;
  const started = performance.now();
  try {
    await views[currentName].refresh();
    markReady(route().parts.join('/'), started);
  } catch (error) {
    showError(error);
  } finally {
    refreshing = false;
    if (refreshAgain) {
      refreshAgain = false;
      void refresh();
    }
  }
}

if (source.title) {
  document.title = source.title;
  liveBadge.textContent = 'report';
  liveBadge.className = 'live report';
}
source.subscribe(
  () => void refresh(),
  (connected) => {
    liveBadge.textContent = connected ? 'live' : 'reconnecting…';
    liveBadge.className = connected ? 'live connected' : 'live';
  },
);
window.addEventListener('hashchange', () => void navigate());
let resizeTimer = 0;
window.addEventListener('resize', () => {
  window.clearTimeout(resizeTimer);
  resizeTimer = window.setTimeout(() => views[currentName].redraw(), 120);
});

dashboardWindow.tensileDashboard = {
  /** Redraws the current view from the data it holds; returns milliseconds taken. */
  redraw() {
    const started = performance.now();
    views[currentName].redraw();
    return performance.now() - started;
  },
  refresh,
  /** Metric points loaded for the selected runs. */
  runPointCount: () => views.runs.pointCount(),
  /** What the open study's plots drew: history points, intermediate curves and their end marks. */
  studyPlots: () => views.studies.plots(),
  /** What the runs tab's metric charts drew (beyond loss, accuracy and learning rate): titles and series names. */
  runMetricCharts: () => views.runs.metricCharts(),
};
void navigate();
