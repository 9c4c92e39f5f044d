// @ts-check
/* global document */
/**
 * Small helpers shared by the dashboard's views: building elements, formatting numbers and times.
 * The page is plain JavaScript (ES modules, no dependencies, no build step), type-checked by
 * dashboard/tsconfig.json through these JSDoc types.
 */

/** The data shapes the server sends (defined once, in TypeScript, next to the code that builds them). */
/** @typedef {import('../src/track/types.js').RunRecord} RunRecord */
/** @typedef {import('../app/dashboard/data.js').CompactMetrics} CompactMetrics */
/** @typedef {import('../src/track/types.js').MetricSeries} MetricSeries */
/** @typedef {import('../src/track/types.js').ArtifactInfo} ArtifactInfo */
/** @typedef {import('../src/track/types.js').JsonValue} JsonValue */
/** @typedef {import('../app/dashboard/data.js').Overview} Overview */
/** @typedef {import('../app/dashboard/data.js').StudyPlotData} StudyPlotData */
/** @typedef {import('../app/dashboard/data.js').StudySummaryView} StudySummaryView */
/** @typedef {import('../app/dashboard/data.js').ExplainTopicView} ExplainTopicView */

/**
 * Creates an element: h('div', { class: 'x', onclick: f }, 'text', child).
 * @param {string} tag
 * @param {Record<string, unknown>} [attributes]
 * @param {...(Node | string | number | null | undefined | false)} children
 * @returns {HTMLElement}
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      element.addEventListener(name.slice(2), /** @type {EventListener} */ (value));
    } else if (name === 'style') {
      // Through the CSS object model: the server's Content-Security-Policy refuses style attributes.
      element.style.cssText = String(value);
    } else if (name === 'dataset' && typeof value === 'object') {
      for (const [key, data] of Object.entries(/** @type {Record<string, string>} */ (value)))
        element.dataset[key] = data;
    } else {
      element.setAttribute(name, value === true ? '' : String(value));
    }
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(typeof child === 'object' ? child : String(child));
  }
  return element;
}

/**
 * A number for a table cell: 4 significant digits, exponent notation for very small or large.
 * @param {number | null | undefined} value
 */
export function formatNumber(value) {
  if (value === null || value === undefined) return '–';
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value) && Math.abs(value) < 1e6) return String(value);
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude < 1e-3 || magnitude >= 1e6)) return value.toExponential(2);
  return Number(value.toPrecision(4)).toString();
}

/** @param {number | null | undefined} value a fraction in [0, 1] */
export function formatPercent(value) {
  return value === null || value === undefined || !Number.isFinite(value)
    ? '–'
    : `${(value * 100).toFixed(2)}%`;
}

/** @param {number | null} seconds */
export function formatDuration(seconds) {
  if (seconds === null || !Number.isFinite(seconds)) return '–';
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
}

/** @param {number} milliseconds since 1970 */
export function formatTime(milliseconds) {
  const date = new Date(milliseconds);
  const pad = (/** @type {number} */ n) => String(n).padStart(2, '0');
  const day = `${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}`;
  // The year only when it is not this one: the column stays narrow.
  return date.getFullYear() === new Date().getFullYear() ? day : `${date.getFullYear()}-${day}`;
}

/**
 * A run's summary number, or null.
 * @param {RunRecord} run
 * @param {string} key
 * @returns {number | null}
 */
export function summaryNumber(run, key) {
  const value = run.summary[key];
  return typeof value === 'number' ? value : null;
}

/**
 * A JSON object flattened to dotted keys (for comparing configurations).
 * @param {JsonValue} value
 * @param {string} [prefix]
 * @param {Record<string, string>} [into]
 * @returns {Record<string, string>}
 */
export function flatten(value, prefix = '', into = {}) {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [key, inner] of Object.entries(value))
      flatten(inner, prefix === '' ? key : `${prefix}.${key}`, into);
  } else if (Array.isArray(value) && value.some((item) => item !== null && typeof item === 'object')) {
    // Arrays of objects (an optimizer's parameter groups) by index, so each setting compares on its own.
    value.forEach((item, index) => flatten(item, `${prefix}.${index}`, into));
  } else {
    into[prefix] = typeof value === 'number' ? formatNumber(value) : JSON.stringify(value);
  }
  return into;
}
