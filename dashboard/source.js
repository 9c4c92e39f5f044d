// @ts-check
/* global document, window, fetch, EventSource, location, history, URLSearchParams */
/**
 * Where the page's data comes from: the dashboard server (JSON over HTTP, with Server-Sent Events
 * for live updates) or, in a report written by `tensile report`, the data embedded in the page.
 * The views ask this one object and do not know which.
 */

/** @typedef {import('./format.js').Overview} Overview */
/** @typedef {import('./format.js').CompactMetrics} CompactMetrics */
/** @typedef {import('./format.js').StudyPlotData} StudyPlotData */
/** @typedef {import('./format.js').ExplainTopicView} ExplainTopicView */
/** @typedef {import('./format.js').RunRecord} RunRecord */
/** @typedef {import('./format.js').ArtifactInfo} ArtifactInfo */

/**
 * @typedef {{
 *   overview: Overview,
 *   metrics: Record<string, CompactMetrics>,
 *   studies: Record<string, StudyPlotData>,
 *   figures: ExplainTopicView[],
 *   title: string,
 *   createdAt: number,
 * }} ReportData
 */

/**
 * @typedef {{
 *   live: boolean,
 *   title: string | null,
 *   overview(): Promise<Overview>,
 *   metrics(runId: number, afterPointId: number): Promise<CompactMetrics>,
 *   study(studyId: number): Promise<StudyPlotData>,
 *   figures(): Promise<ExplainTopicView[]>,
 *   subscribe(onChange: (tokens: { runs: string, studies: string }) => void, onStatus: (connected: boolean) => void): void,
 * }} DataSource
 */

/**
 * @param {string} path
 * @returns {Promise<any>}
 */
async function getJson(path) {
  const response = await fetch(path, { cache: 'no-store' });
  if (!response.ok) {
    // The API's errors are JSON ({ error }); the server's refusals (no token, a foreign Host) one line of text.
    const text = await response.text();
    let message = text.trim();
    try {
      message = JSON.parse(text).error ?? message;
    } catch {
      // plain text
    }
    throw new Error(message || `${path}: HTTP ${response.status}`);
  }
  return response.json();
}

/** @returns {DataSource} */
function serverSource() {
  return {
    live: true,
    title: null,
    overview: () => getJson('/api/overview'),
    // The first read of a run is thinned to about 4,000 points a series (a chart is under 2,000 pixels
    // wide; each bucket keeps its lowest and highest value); later reads bring every new point.
    metrics: (runId, after) =>
      getJson(`/api/runs/${runId}/metrics?after=${after}&compact=1${after === 0 ? '&maxPoints=4000' : ''}`),
    study: (studyId) => getJson(`/api/studies/${studyId}`),
    figures: () => getJson('/api/figures'),
    subscribe(onChange, onStatus) {
      const events = new EventSource('/api/events');
      events.onopen = () => onStatus(true);
      events.onerror = () => onStatus(false);
      events.onmessage = (message) => onChange(JSON.parse(message.data));
    },
  };
}

/**
 * @param {ReportData} data
 * @returns {DataSource}
 */
function reportSource(data) {
  return {
    live: false,
    title: data.title,
    overview: async () => data.overview,
    metrics: async (runId, after) => {
      const metrics = data.metrics[String(runId)];
      // A report holds every point it will ever have: nothing comes after the first read.
      if (metrics === undefined || after > 0) return { runId, lastPointId: after, series: {} };
      return metrics;
    },
    study: async (studyId) => {
      const study = data.studies[String(studyId)];
      if (study === undefined) throw new Error(`study ${studyId} is not in this report`);
      return study;
    },
    figures: async () => data.figures,
    subscribe() {},
  };
}

/** The report's embedded data, when this page is a report. */
export function createSource() {
  const embedded = document.getElementById('tensile-report-data');
  if (embedded !== null && embedded.textContent) {
    return reportSource(/** @type {ReportData} */ (JSON.parse(embedded.textContent)));
  }
  // Opened as .../?token=...: the server has set its cookie; take the token out of the address bar
  // (and so out of the history and of any bookmark).
  if (new URLSearchParams(location.search).has('token')) {
    history.replaceState(null, '', location.pathname + location.hash);
  }
  return serverSource();
}

/** @type {typeof window & { tensileDashboard?: unknown }} */
export const dashboardWindow = window;
