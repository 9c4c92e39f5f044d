// @ts-check
/* global document, window */
/**
 * The dashboard's charts: line charts, scatter plots, horizontal bars and parallel coordinates.
 *
 * Axes, labels and legends are always SVG (crisp text at any zoom). The data is SVG when there are
 * few points and a canvas when there are many (a tooltip follows the pointer on both): above
 * `canvasThreshold` points, thousands of SVG nodes would make the page slow to build and to redraw,
 * while a canvas redraw costs one pass over the data. Long line series are thinned per pixel column
 * (first, lowest, highest and last point of each column), which draws the same picture as every point
 * would, so a run of 100,000 points redraws in milliseconds.
 *
 * Every chart frame records what it drew in data attributes (data-chart, data-points, data-renderer),
 * which the browser tests read.
 */

const svgNamespace = 'http://www.w3.org/2000/svg';
/** More data points than this are drawn on a canvas. */
export const canvasThreshold = 2500;
export const palette = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#ff7f0e',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf',
];
const margin = { left: 64, right: 18, top: 30, bottom: 44 };

/**
 * @typedef {{
 *   type: 'linear' | 'log' | 'category',
 *   low: number,
 *   high: number,
 *   map: (value: number) => number,
 *   ticks: () => number[],
 *   format: (value: number) => string,
 * }} Scale
 */

/**
 * @param {string} tag
 * @param {Record<string, string | number>} [attributes]
 * @returns {SVGElement}
 */
function svg(tag, attributes = {}) {
  const element = document.createElementNS(svgNamespace, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  return element;
}

/**
 * @param {number} x
 * @param {number} y
 * @param {string} content
 * @param {{ anchor?: string, size?: number, rotate?: boolean, weight?: string, fill?: string }} [options]
 */
function label(x, y, content, options = {}) {
  const text = svg('text', {
    x,
    y,
    'text-anchor': options.anchor ?? 'middle',
    'font-size': options.size ?? 11,
    fill: options.fill ?? '#333',
  });
  if (options.weight) text.setAttribute('font-weight', options.weight);
  if (options.rotate) text.setAttribute('transform', `rotate(-90 ${x} ${y})`);
  text.textContent = content;
  return text;
}

/** @param {number} value */
export function formatTick(value) {
  if (value === 0) return '0';
  const magnitude = Math.abs(value);
  if (magnitude >= 1e5 || magnitude < 1e-3) {
    const exponent = Math.floor(Math.log10(magnitude) + 1e-9);
    const mantissa = value / 10 ** exponent;
    return Math.abs(mantissa - 1) < 1e-9 ? `1e${exponent}` : `${Number(mantissa.toPrecision(2))}e${exponent}`;
  }
  return Number(value.toPrecision(4)).toString();
}

/**
 * "Nice" ticks covering [low, high].
 * @param {number} low
 * @param {number} high
 * @param {number} count
 */
function linearTicks(low, high, count) {
  if (!(high > low)) return [low];
  const raw = (high - low) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw;
  const ticks = [];
  for (let v = Math.ceil(low / step) * step; v <= high + step * 1e-9; v += step)
    ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

/**
 * @param {number} low
 * @param {number} high
 */
function logTicks(low, high) {
  const ticks = [];
  for (let e = Math.floor(Math.log10(low)); e <= Math.ceil(Math.log10(high)); e++) {
    for (const m of Math.log10(high / low) < 2.5 ? [1, 2, 5] : [1]) {
      const v = m * 10 ** e;
      if (v >= low * (1 - 1e-9) && v <= high * (1 + 1e-9)) ticks.push(Number(v.toPrecision(12)));
    }
  }
  return ticks;
}

/**
 * The range of the finite values (positive only for a log scale), padded a little.
 * @param {Iterable<number | null>} values
 * @param {'linear' | 'log'} type
 * @param {boolean} [pad]
 * @returns {[number, number]}
 */
export function extent(values, type, pad = true) {
  let low = Infinity;
  let high = -Infinity;
  for (const v of values) {
    if (v === null || !Number.isFinite(v) || (type === 'log' && v <= 0)) continue;
    if (v < low) low = v;
    if (v > high) high = v;
  }
  if (low === Infinity) return type === 'log' ? [1, 10] : [0, 1];
  if (type === 'log') {
    if (high / low < 1.01) return [low / 2, high * 2];
    return pad ? [low / (high / low) ** 0.03, high * (high / low) ** 0.03] : [low, high];
  }
  if (high - low < 1e-12 * Math.max(1, Math.abs(high))) {
    const delta = Math.abs(high) > 0 ? Math.abs(high) * 0.1 : 1;
    return [low - delta, high + delta];
  }
  const padding = pad ? (high - low) * 0.04 : 0;
  return [low - padding, high + padding];
}

/**
 * @param {'linear' | 'log'} type
 * @param {[number, number]} domain
 * @param {[number, number]} range pixels for domain[0] and domain[1]
 * @param {number} [tickCount]
 * @returns {Scale}
 */
export function numericScale(type, domain, range, tickCount = 5) {
  const [low, high] = domain;
  const [start, end] = range;
  if (type === 'log') {
    const a = Math.log10(low);
    const b = Math.log10(high);
    return {
      type,
      low,
      high,
      map: (v) => start + ((Math.log10(v) - a) / (b - a)) * (end - start),
      ticks: () => logTicks(low, high),
      format: formatTick,
    };
  }
  return {
    type,
    low,
    high,
    map: (v) => start + ((v - low) / (high - low)) * (end - start),
    ticks: () => linearTicks(low, high, tickCount),
    format: formatTick,
  };
}

/**
 * Choices 0..n-1 spread over the range, each in the middle of its band.
 * @param {string[]} choices
 * @param {[number, number]} range
 * @returns {Scale}
 */
export function categoryScale(choices, range) {
  const [start, end] = range;
  const band = (end - start) / Math.max(1, choices.length);
  return {
    type: 'category',
    low: 0,
    high: choices.length - 1,
    map: (v) => start + band * (v + 0.5),
    ticks: () => choices.map((_, i) => i),
    format: (v) => choices[Math.round(v)] ?? '',
  };
}

/**
 * A chart frame: a positioned box holding the SVG (and a canvas when needed), sized to its container.
 * @param {HTMLElement} container
 * @param {string} id
 * @param {number} height
 */
function frame(container, id, height) {
  container.replaceChildren();
  container.classList.add('chart');
  container.dataset.chart = id;
  const width = Math.max(240, container.clientWidth || 480);
  container.style.height = `${height}px`;
  const root = /** @type {SVGSVGElement} */ (
    svg('svg', { width, height, viewBox: `0 0 ${width} ${height}` })
  );
  root.classList.add('chart-svg');
  return { width, height, root };
}

/**
 * A canvas over the plot area (below the SVG's axes), scaled for the screen's pixel density.
 * @param {HTMLElement} container
 * @param {number} width
 * @param {number} height
 */
function overlayCanvas(container, width, height) {
  const canvas = document.createElement('canvas');
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  canvas.className = 'chart-canvas';
  container.prepend(canvas);
  const context = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'));
  context.scale(ratio, ratio);
  return context;
}

/**
 * Grid lines, tick labels and axis titles.
 * @param {SVGSVGElement} root
 * @param {Scale} x
 * @param {Scale} y
 * @param {{ width: number, height: number, xLabel: string, yLabel: string, title?: string, top?: number }} layout
 *   top: where the plot area starts (lower than margin.top when a key sits under the title).
 */
function drawAxes(root, x, y, layout) {
  const { width, height } = layout;
  const top = layout.top ?? margin.top;
  const bottom = height - margin.bottom;
  const grid = svg('g', { class: 'grid' });
  for (const tick of y.ticks()) {
    const py = y.map(tick);
    grid.append(
      svg('line', { x1: margin.left, x2: width - margin.right, y1: py, y2: py, stroke: '#e6e6e6' }),
    );
    grid.append(label(margin.left - 6, py + 4, y.format(tick), { anchor: 'end' }));
  }
  const xTicks = x.ticks();
  const every = Math.max(
    1,
    Math.ceil((xTicks.length * 48) / Math.max(1, width - margin.left - margin.right)),
  );
  xTicks.forEach((tick, i) => {
    const px = x.map(tick);
    grid.append(svg('line', { x1: px, x2: px, y1: top, y2: bottom, stroke: '#f0f0f0' }));
    if (i % every === 0) grid.append(label(px, bottom + 15, x.format(tick)));
  });
  root.append(grid);
  root.append(
    svg('rect', {
      x: margin.left,
      y: top,
      width: width - margin.left - margin.right,
      height: bottom - top,
      fill: 'none',
      stroke: '#999',
    }),
  );
  root.append(
    label(
      (margin.left + width - margin.right) / 2,
      height - 8,
      layout.xLabel + (x.type === 'log' ? ' (log)' : ''),
    ),
  );
  root.append(
    label(14, (top + bottom) / 2, layout.yLabel + (y.type === 'log' ? ' (log)' : ''), {
      rotate: true,
    }),
  );
  if (layout.title)
    root.append(label(margin.left, 18, layout.title, { anchor: 'start', size: 13, weight: 'bold' }));
}

/**
 * @typedef {{
 *   name: string,
 *   color: string,
 *   x: ArrayLike<number>,
 *   y: ArrayLike<number | null>,
 *   dash?: boolean,
 *   lineWidth?: number,
 *   opacity?: number,
 *   endMarker?: 'cross' | 'dot',
 * }} LineSeries
 */

/**
 * A line style named in a chart's key (drawn in grey: the key says what a style means, the legend
 * below says which colour is which run).
 * @typedef {{ name: string, dash?: boolean, lineWidth?: number, opacity?: number, color?: string, marker?: 'cross' | 'dot' }} KeyEntry
 */

/**
 * The chart's key in its top-right corner: one short line sample (or marker) and name per entry.
 * @param {SVGSVGElement} root
 * @param {number} width
 * @param {KeyEntry[]} entries
 */
function drawKey(root, width, entries) {
  const group = svg('g', { class: 'chart-key' });
  // The row under the title (lineChart moves the plot area down to make room).
  const keyRow = 34;
  let right = width - margin.right - 4;
  // Laid out from the right edge leftwards; each entry is put first, so the page reads them in order.
  for (const entry of [...entries].reverse()) {
    const item = svg('g');
    group.prepend(item);
    item.append(label(right, keyRow + 4, entry.name, { anchor: 'end', size: 11, fill: '#444' }));
    // The text's width is not known before layout: DejaVu Sans at 11 px averages about 6.2 px a character.
    const textWidth = entry.name.length * 6.2;
    const sampleEnd = right - textWidth - 4;
    const color = entry.color ?? '#555';
    if (entry.marker) {
      const mark = endMark(entry.marker, sampleEnd - 6, keyRow, color);
      mark.setAttribute('class', 'key-marker');
      item.append(mark);
    } else {
      const line = svg('line', {
        x1: sampleEnd - 18,
        x2: sampleEnd,
        y1: keyRow,
        y2: keyRow,
        stroke: color,
        'stroke-width': entry.lineWidth ?? 1.8,
        'stroke-opacity': entry.opacity ?? 1,
      });
      if (entry.dash) line.setAttribute('stroke-dasharray', '5 4');
      item.append(line);
    }
    right = sampleEnd - 30;
  }
  root.append(group);
}

/**
 * A mark at the end of a curve: a cross (a pruned trial stopped there) or a dot.
 * @param {'cross' | 'dot'} kind
 * @param {number} x
 * @param {number} y
 * @param {string} color
 */
function endMark(kind, x, y, color) {
  if (kind === 'dot') return svg('circle', { cx: x, cy: y, r: 3, fill: color, class: 'end-marker dot' });
  const r = 4;
  return svg('path', {
    d: `M${x - r} ${y - r}L${x + r} ${y + r}M${x - r} ${y + r}L${x + r} ${y - r}`,
    stroke: color,
    'stroke-width': 2,
    fill: 'none',
    class: 'end-marker cross',
  });
}

/**
 * The last finite point of a series, or null.
 * @param {LineSeries} series
 * @returns {[number, number] | null}
 */
function lastPoint(series) {
  for (let i = series.x.length - 1; i >= 0; i--) {
    const v = series.y[i];
    if (v !== null && v !== undefined && Number.isFinite(v)) return [series.x[i] ?? 0, v];
  }
  return null;
}

/**
 * Polyline path through a series, broken where a value is missing (a diverged loss).
 * @param {LineSeries} series
 * @param {Scale} x
 * @param {Scale} y
 */
function svgPath(series, x, y) {
  let d = '';
  let pen = false;
  for (let i = 0; i < series.x.length; i++) {
    const v = series.y[i];
    if (v === null || v === undefined || !Number.isFinite(v) || (y.type === 'log' && v <= 0)) {
      pen = false;
      continue;
    }
    d += `${pen ? 'L' : 'M'}${x.map(series.x[i] ?? 0).toFixed(1)} ${y.map(v).toFixed(1)}`;
    pen = true;
  }
  return d;
}

/**
 * Draws a long series on a canvas, thinned per pixel column: for each column the first, lowest,
 * highest and last point, in order — the same picture as every point, at a fraction of the cost.
 * @param {CanvasRenderingContext2D} context
 * @param {LineSeries} series
 * @param {Scale} x
 * @param {Scale} y
 */
function canvasLine(context, series, x, y) {
  context.beginPath();
  context.strokeStyle = series.color;
  context.globalAlpha = series.opacity ?? 1;
  context.lineWidth = series.lineWidth ?? 1.5;
  context.setLineDash(series.dash ? [5, 4] : []);
  let column = NaN;
  let pen = false;
  let minY = 0;
  let maxY = 0;
  let lastY = 0;
  const flush = () => {
    if (Number.isNaN(column)) return;
    context.lineTo(column, minY);
    context.lineTo(column, maxY);
    context.lineTo(column, lastY);
  };
  for (let i = 0; i < series.x.length; i++) {
    const v = series.y[i];
    if (v === null || v === undefined || !Number.isFinite(v) || (y.type === 'log' && v <= 0)) {
      flush();
      column = NaN;
      pen = false;
      continue;
    }
    const px = Math.round(x.map(series.x[i] ?? 0));
    const py = y.map(v);
    if (px === column) {
      if (py < minY) minY = py;
      if (py > maxY) maxY = py;
      lastY = py;
      continue;
    }
    flush();
    if (pen) context.lineTo(px, py);
    else context.moveTo(px, py);
    pen = true;
    column = px;
    minY = maxY = lastY = py;
  }
  flush();
  context.stroke();
  context.globalAlpha = 1;
  context.setLineDash([]);
}

/**
 * A tooltip that follows the pointer over a chart: `describe` gets the pointer's position in the
 * chart's pixels and returns the text for the nearest data (or null for none). Canvas-drawn data has
 * no elements to carry an SVG <title>, so every chart gets this instead; the listener sits on the
 * SVG, which a redraw replaces, so listeners never pile up on a live chart.
 * @param {HTMLElement} container
 * @param {SVGSVGElement} root
 * @param {(px: number, py: number) => string | null} describe
 */
function pointerTooltip(container, root, describe) {
  const tip = document.createElement('div');
  tip.className = 'chart-tooltip';
  tip.hidden = true;
  container.append(tip);
  root.addEventListener('mousemove', (event) => {
    const box = root.getBoundingClientRect();
    const px = event.clientX - box.left;
    const py = event.clientY - box.top;
    const text = describe(px, py);
    if (text === null) {
      tip.hidden = true;
      return;
    }
    tip.textContent = text;
    tip.hidden = false;
    // Keep the box inside the chart: flip to the pointer's left near the right edge.
    const flip = px > box.width * 0.6;
    tip.style.left = flip ? '' : `${px + 14}px`;
    tip.style.right = flip ? `${box.width - px + 14}px` : '';
    tip.style.top = `${Math.max(0, py - 10)}px`;
  });
  root.addEventListener('mouseleave', () => {
    tip.hidden = true;
  });
}

/**
 * Index of the point whose x is nearest to pixel `px` in a series sorted by x (per-epoch and
 * per-batch metrics are), by bisection on the mapped values; -1 for an empty series.
 * @param {ArrayLike<number | null>} values
 * @param {(value: number) => number} map
 * @param {number} px
 */
export function nearestSortedIndex(values, map, px) {
  let low = 0;
  let high = values.length - 1;
  if (high < 0) return -1;
  while (high - low > 1) {
    const middle = (low + high) >> 1;
    if (map(values[middle] ?? 0) < px) low = middle;
    else high = middle;
  }
  return Math.abs(map(values[low] ?? 0) - px) <= Math.abs(map(values[high] ?? 0) - px) ? low : high;
}

/**
 * A line chart of several series on a shared x axis.
 * @param {HTMLElement} container
 * @param {{
 *   id: string,
 *   title?: string,
 *   xLabel: string,
 *   yLabel: string,
 *   series: LineSeries[],
 *   xScale?: 'linear' | 'log',
 *   yScale?: 'linear' | 'log',
 *   height?: number,
 *   markers?: boolean,
 *   key?: KeyEntry[],
 *   tooltip?: 'all' | 'nearest',
 * }} spec
 *   key: line styles named in the top-right corner. tooltip: 'all' (default) lists every series'
 *   value at the pointer's x, as TensorBoard does; 'nearest' names the one curve nearest the pointer
 *   (for charts of hundreds of curves, such as a study's intermediate values).
 * @returns {{ points: number, renderer: string }}
 */
export function lineChart(container, spec) {
  const { width, height, root } = frame(container, spec.id, spec.height ?? 260);
  const xType = spec.xScale ?? 'linear';
  const yType = spec.yScale ?? 'linear';
  const points = spec.series.reduce((sum, s) => sum + s.x.length, 0);
  const allX = spec.series.flatMap((s) => Array.from(s.x));
  const allY = spec.series.flatMap((s) => Array.from(s.y));
  const x = numericScale(xType, extent(allX, xType, false), [margin.left, width - margin.right]);
  // A key takes a row of its own under the title.
  const top = margin.top + (spec.key && spec.key.length > 0 ? 16 : 0);
  const y = numericScale(yType, extent(allY, yType), [height - margin.bottom, top]);
  drawAxes(root, x, y, { width, height, xLabel: spec.xLabel, yLabel: spec.yLabel, title: spec.title, top });
  const renderer = points > canvasThreshold ? 'canvas' : 'svg';
  if (renderer === 'canvas') {
    const context = overlayCanvas(container, width, height);
    for (const series of spec.series) canvasLine(context, series, x, y);
  } else {
    const group = svg('g', { class: 'data' });
    for (const series of spec.series) {
      const path = svg('path', {
        d: svgPath(series, x, y),
        fill: 'none',
        stroke: series.color,
        'stroke-width': series.lineWidth ?? 1.8,
        'stroke-opacity': series.opacity ?? 1,
      });
      if (series.dash) path.setAttribute('stroke-dasharray', '5 4');
      group.append(path);
      // Dots mark per-epoch points; thin per-batch lines get none.
      if (spec.markers !== false && series.x.length <= 60 && (series.lineWidth ?? 1.8) > 1) {
        for (let i = 0; i < series.x.length; i++) {
          const v = series.y[i];
          if (v === null || v === undefined || !Number.isFinite(v) || (yType === 'log' && v <= 0)) continue;
          group.append(
            svg('circle', {
              cx: x.map(series.x[i] ?? 0),
              cy: y.map(v),
              r: 2.6,
              fill: series.color,
            }),
          );
        }
      }
    }
    root.append(group);
  }
  // End markers (a pruned trial's cross) are SVG on either renderer: few, and each is a test hook.
  const ends = svg('g', { class: 'end-markers' });
  let endMarkers = 0;
  for (const series of spec.series) {
    if (!series.endMarker) continue;
    const end = lastPoint(series);
    if (end === null || (yType === 'log' && end[1] <= 0)) continue;
    ends.append(endMark(series.endMarker, x.map(end[0]), y.map(end[1]), series.color));
    endMarkers++;
  }
  root.append(ends);
  if (spec.key) drawKey(root, width, spec.key);
  container.append(root);
  /** @param {LineSeries} series @param {number} px */
  const valueNear = (series, px) => {
    const i = nearestSortedIndex(series.x, x.map, px);
    const v = i < 0 ? null : series.y[i];
    if (v === null || v === undefined || !Number.isFinite(v)) return null;
    const at = series.x[i] ?? 0;
    return { at, v, text: `${series.name}: ${formatTick(Number(v.toPrecision(4)))} at ${formatTick(at)}` };
  };
  pointerTooltip(container, root, (px, py) => {
    if (px < margin.left || px > width - margin.right) return null;
    if (spec.tooltip === 'nearest') {
      // The one curve passing nearest the pointer (within 12 pixels).
      let best = null;
      let bestDistance = 12 * 12;
      for (const series of spec.series) {
        const near = valueNear(series, px);
        if (near === null) continue;
        const distance = (x.map(near.at) - px) ** 2 + (y.map(near.v) - py) ** 2;
        if (distance < bestDistance) {
          bestDistance = distance;
          best = near.text;
        }
      }
      return best;
    }
    // Every series' value at the x nearest the pointer, as TensorBoard shows them.
    const lines = spec.series.flatMap((series) => valueNear(series, px)?.text ?? []);
    return lines.length === 0 ? null : lines.join('\n');
  });
  container.dataset.points = String(points);
  container.dataset.renderer = renderer;
  container.dataset.endMarkers = String(endMarkers);
  return { points, renderer };
}

/**
 * Colour for t in [0, 1] on a dark-blue → teal → yellow ramp (viridis-like; readable on white).
 * @param {number} t
 */
export function rampColor(t) {
  const stops = [
    [68, 1, 84],
    [59, 82, 139],
    [33, 145, 140],
    [94, 201, 98],
    [253, 231, 37],
  ];
  const clamped = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0));
  const position = clamped * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(position));
  const f = position - i;
  const [a, b] = [stops[i] ?? [0, 0, 0], stops[i + 1] ?? [0, 0, 0]];
  const mix = (/** @type {number} */ k) => Math.round((a[k] ?? 0) + ((b[k] ?? 0) - (a[k] ?? 0)) * f);
  return `rgb(${mix(0)},${mix(1)},${mix(2)})`;
}

/**
 * @typedef {{
 *   x: ArrayLike<number | null>,
 *   y: ArrayLike<number | null>,
 *   color: string | ((index: number) => string),
 *   tooltip?: (index: number) => string,
 * }} ScatterData
 */

/**
 * A scatter plot (optionally with a step line, e.g. the best value so far).
 * @param {HTMLElement} container
 * @param {{
 *   id: string,
 *   title?: string,
 *   xLabel: string,
 *   yLabel: string,
 *   data: ScatterData,
 *   xScale?: 'linear' | 'log',
 *   yScale?: 'linear' | 'log',
 *   xCategories?: string[] | null,
 *   xDomain?: [number, number] | null,
 *   line?: LineSeries | null,
 *   height?: number,
 * }} spec
 * @returns {{ points: number, renderer: string }}
 */
export function scatterChart(container, spec) {
  const { width, height, root } = frame(container, spec.id, spec.height ?? 260);
  const xType = spec.xScale ?? 'linear';
  const yType = spec.yScale ?? 'linear';
  const { data } = spec;
  const range = /** @type {[number, number]} */ ([margin.left, width - margin.right]);
  const x = spec.xCategories
    ? categoryScale(spec.xCategories, range)
    : numericScale(xType, spec.xDomain ?? extent(Array.from(data.x), xType), range);
  const y = numericScale(yType, extent(Array.from(data.y), yType), [height - margin.bottom, margin.top]);
  drawAxes(root, x, y, { width, height, xLabel: spec.xLabel, yLabel: spec.yLabel, title: spec.title });
  const colorOf = typeof data.color === 'function' ? data.color : () => /** @type {string} */ (data.color);
  /**
   * Visible points as [index, px, py], jittered within a category's band so equal choices do not hide each other.
   * @type {[number, number, number][]}
   */
  const visible = [];
  const band = spec.xCategories
    ? (width - margin.left - margin.right) / Math.max(1, spec.xCategories.length)
    : 0;
  for (let i = 0; i < data.x.length; i++) {
    const xv = data.x[i];
    const yv = data.y[i];
    if (xv === null || xv === undefined || yv === null || yv === undefined || !Number.isFinite(yv)) continue;
    if ((xType === 'log' && !spec.xCategories && xv <= 0) || (yType === 'log' && yv <= 0)) continue;
    const jitter = band > 0 ? (((i * 2654435761) % 1000) / 1000 - 0.5) * band * 0.5 : 0;
    visible.push([i, x.map(xv) + jitter, y.map(yv)]);
  }
  const renderer = visible.length > canvasThreshold ? 'canvas' : 'svg';
  if (renderer === 'canvas') {
    const context = overlayCanvas(container, width, height);
    context.globalAlpha = 0.6;
    // One path per colour: thousands of points cost a few fills instead of one state change each.
    /** @type {Map<string, number[]>} */
    const byColor = new Map();
    for (const [i, px, py] of visible) {
      const color = colorOf(i ?? 0);
      const points = byColor.get(color);
      if (points === undefined) byColor.set(color, [px ?? 0, py ?? 0]);
      else points.push(px ?? 0, py ?? 0);
    }
    for (const [color, points] of byColor) {
      context.fillStyle = color;
      context.beginPath();
      for (let k = 0; k < points.length; k += 2)
        context.rect((points[k] ?? 0) - 1.5, (points[k + 1] ?? 0) - 1.5, 3, 3);
      context.fill();
    }
    context.globalAlpha = 1;
    if (spec.line) canvasLine(context, spec.line, x, y);
  } else {
    const group = svg('g', { class: 'data' });
    for (const [i, px, py] of visible) {
      group.append(
        svg('circle', {
          cx: (px ?? 0).toFixed(1),
          cy: (py ?? 0).toFixed(1),
          r: 3.2,
          fill: colorOf(i ?? 0),
          'fill-opacity': 0.75,
        }),
      );
    }
    if (spec.line) {
      group.append(
        svg('path', {
          d: svgPath(spec.line, x, y),
          fill: 'none',
          stroke: spec.line.color,
          'stroke-width': 2,
        }),
      );
    }
    root.append(group);
  }
  container.append(root);
  // The nearest point within a few pixels (a linear scan: 10,000 points take well under a millisecond).
  pointerTooltip(container, root, (px, py) => {
    let best = -1;
    let bestDistance = 10 * 10;
    for (const [i, vx, vy] of visible) {
      const distance = (vx - px) ** 2 + (vy - py) ** 2;
      if (distance < bestDistance) {
        bestDistance = distance;
        best = i;
      }
    }
    if (best < 0) return null;
    if (data.tooltip) return data.tooltip(best);
    return `${formatTick(Number(data.x[best] ?? 0))}, ${formatTick(Number(data.y[best] ?? 0))}`;
  });
  container.dataset.points = String(visible.length);
  container.dataset.renderer = renderer;
  return { points: visible.length, renderer };
}

/**
 * Horizontal bars with their values (e.g. parameter importance).
 * @param {HTMLElement} container
 * @param {{ id: string, title?: string, items: { name: string, value: number, detail?: string }[], xLabel: string }} spec
 *   detail: shown when the pointer is on the bar (an SVG title).
 */
export function barChart(container, spec) {
  const rowHeight = 26;
  const height = margin.top + 16 + spec.items.length * rowHeight + 28;
  const { width, root } = frame(container, spec.id, height);
  const left = Math.min(180, 12 + 7 * Math.max(4, ...spec.items.map((item) => item.name.length)));
  const high = Math.max(1e-12, ...spec.items.map((item) => item.value));
  const scale = (/** @type {number} */ v) => left + (v / high) * (width - left - 70);
  if (spec.title)
    root.append(label(margin.left, 18, spec.title, { anchor: 'start', size: 13, weight: 'bold' }));
  spec.items.forEach((item, i) => {
    const y = margin.top + 8 + i * rowHeight;
    root.append(label(left - 8, y + 15, item.name, { anchor: 'end' }));
    const bar = svg('rect', {
      x: left,
      y: y + 3,
      width: Math.max(1, scale(item.value) - left),
      height: rowHeight - 8,
      fill: palette[0] ?? '#1f77b4',
    });
    if (item.detail) {
      const title = svg('title');
      title.textContent = item.detail;
      bar.append(title);
    }
    root.append(bar);
    root.append(
      label(scale(item.value) + 6, y + 15, formatTick(Number(item.value.toPrecision(3))), {
        anchor: 'start',
      }),
    );
  });
  root.append(label((left + width) / 2, height - 8, spec.xLabel));
  container.append(root);
  container.dataset.points = String(spec.items.length);
  container.dataset.renderer = 'svg';
}

/**
 * @typedef {{
 *   name: string,
 *   values: ArrayLike<number | null>,
 *   log?: boolean,
 *   choices?: string[] | null,
 * }} ParallelAxis
 */

/**
 * Parallel coordinates: one vertical axis per parameter and one for the objective; each trial is a
 * line across them, coloured by its objective (dark = best). Always a canvas: a study of 10,000
 * trials is 10,000 polylines.
 * @param {HTMLElement} container
 * @param {{ id: string, title?: string, axes: ParallelAxis[], color: ArrayLike<number | null>, best: 'low' | 'high', height?: number }} spec
 */
export function parallelCoordinates(container, spec) {
  const { width, height, root } = frame(container, spec.id, spec.height ?? 300);
  const count = spec.axes.length;
  const left = 50;
  const right = 50;
  const top = margin.top + 10;
  const bottom = height - 34;
  const gap = count > 1 ? (width - left - right) / (count - 1) : 0;
  /** @type {Scale[]} */
  const scales = spec.axes.map((axis) => {
    if (axis.choices) return categoryScale(axis.choices, [bottom, top]);
    const type = axis.log ? 'log' : 'linear';
    return numericScale(type, extent(Array.from(axis.values), type, false), [bottom, top], 4);
  });
  if (spec.title)
    root.append(label(margin.left, 18, spec.title, { anchor: 'start', size: 13, weight: 'bold' }));
  const [low, high] = extent(Array.from(spec.color), 'linear', false);
  const context = overlayCanvas(container, width, height);
  const total = spec.color.length;
  context.lineWidth = 1;
  context.globalAlpha = total > 2000 ? 0.12 : total > 200 ? 0.3 : 0.7;
  let drawn = 0;
  // Worst first, so the best lines end up on top.
  const order = Array.from({ length: total }, (_, i) => i).filter((i) => {
    const c = spec.color[i];
    return c !== null && c !== undefined && Number.isFinite(c);
  });
  const goodness = (/** @type {number} */ i) => {
    const c = /** @type {number} */ (spec.color[i]);
    const t = high > low ? (c - low) / (high - low) : 0.5;
    return spec.best === 'low' ? 1 - t : t;
  };
  order.sort((a, b) => goodness(a) - goodness(b));
  // Lines are drawn in 32 colour levels, one path per level (worst level first): a stroke per
  // trial would cost 10,000 state changes for a large study.
  const levels = 32;
  let level = -1;
  const flush = () => {
    if (level >= 0) context.stroke();
  };
  for (const i of order) {
    const lineLevel = Math.min(levels - 1, Math.floor(goodness(i) * levels));
    if (lineLevel !== level) {
      flush();
      level = lineLevel;
      context.beginPath();
      context.strokeStyle = rampColor(1 - (level + 0.5) / levels);
    }
    let pen = false;
    spec.axes.forEach((axis, a) => {
      const v = axis.values[i];
      const scale = scales[a];
      if (v === null || v === undefined || scale === undefined || (scale.type === 'log' && v <= 0)) {
        pen = false;
        return;
      }
      const px = left + a * gap;
      const py = scale.map(v);
      if (pen) context.lineTo(px, py);
      else context.moveTo(px, py);
      pen = true;
    });
    drawn++;
  }
  flush();
  context.globalAlpha = 1;
  spec.axes.forEach((axis, a) => {
    const px = left + a * gap;
    const scale = scales[a];
    if (scale === undefined) return;
    root.append(svg('line', { x1: px, x2: px, y1: top, y2: bottom, stroke: '#555' }));
    const ticks = scale.ticks();
    const every = Math.max(1, Math.ceil(ticks.length / 8));
    ticks.forEach((tick, i) => {
      if (i % every !== 0) return;
      const py = scale.map(tick);
      root.append(svg('line', { x1: px - 3, x2: px + 3, y1: py, y2: py, stroke: '#555' }));
      root.append(label(px + 5, py + 4, scale.format(tick), { anchor: 'start', size: 10, fill: '#444' }));
    });
    // The outer axes' names are aligned inwards, so they stay inside the frame.
    const anchor = count > 1 && a === 0 ? 'start' : count > 1 && a === count - 1 ? 'end' : 'middle';
    root.append(
      label(
        px + (anchor === 'start' ? -4 : anchor === 'end' ? 4 : 0),
        bottom + 18,
        axis.name + (axis.log ? ' (log)' : ''),
        { size: 11, weight: 'bold', anchor },
      ),
    );
  });
  container.append(root);
  container.dataset.points = String(drawn);
  container.dataset.renderer = 'canvas';
}

/**
 * A legend: coloured swatches with names, dashed for dashed series.
 * @param {{ name: string, color: string, dash?: boolean }[]} entries
 */
export function legend(entries) {
  const box = document.createElement('div');
  box.className = 'legend';
  for (const entry of entries) {
    const item = document.createElement('span');
    item.className = 'legend-item';
    const swatch = document.createElement('span');
    swatch.className = entry.dash ? 'swatch dashed' : 'swatch';
    swatch.style.borderColor = entry.color;
    item.append(swatch, entry.name);
    box.append(item);
  }
  return box;
}
