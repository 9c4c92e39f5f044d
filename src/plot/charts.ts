/**
 * Charts as SVG text, drawn by tensile itself (no browser, no plotting service): line charts with
 * linear or log axes and optional error bars, grouped bar charts, and heat-map grids with numbers
 * (for pooling examples). `writeFigure` (./figure.ts) writes each as SVG and PNG.
 */

export interface Series {
  name: string;
  x: readonly number[];
  y: readonly number[];
  /** Symmetric error bars (e.g. one standard deviation), same length as y. */
  error?: readonly number[];
}

export type Scale = 'linear' | 'log';

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  xScale?: Scale;
  yScale?: Scale;
  /** Fixed axis ranges; computed from the data when absent. */
  yRange?: readonly [number, number];
  xRange?: readonly [number, number];
  width?: number;
  height?: number;
}

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

const font = 'DejaVu Sans, Arial, Helvetica, sans-serif';

export function escapeXml(text: string): string {
  return text.replace(
    /[<>&"']/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!,
  );
}

function text(
  x: number,
  y: number,
  content: string,
  options: {
    size?: number;
    anchor?: 'start' | 'middle' | 'end';
    rotate?: number;
    weight?: string;
    fill?: string;
  } = {},
): string {
  const transform = options.rotate ? ` transform="rotate(${options.rotate} ${x} ${y})"` : '';
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" font-family="${font}" font-size="${options.size ?? 12}" text-anchor="${options.anchor ?? 'middle'}"${options.weight ? ` font-weight="${options.weight}"` : ''} fill="${options.fill ?? '#222'}"${transform}>${escapeXml(content)}</text>`;
}

/** "Nice" tick values covering [low, high] (about `count` of them). */
export function linearTicks(low: number, high: number, count = 5): number[] {
  if (!(high > low)) return [low];
  const raw = (high - low) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [];
  for (let v = Math.ceil(low / step) * step; v <= high + step * 1e-9; v += step)
    ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

/** Powers of ten covering [low, high] (plus 2× and 5× when the range is narrow). */
export function logTicks(low: number, high: number): number[] {
  const ticks: number[] = [];
  const first = Math.floor(Math.log10(low));
  const last = Math.ceil(Math.log10(high));
  for (let e = first; e <= last; e++) {
    for (const m of last - first <= 2 ? [1, 2, 5] : [1]) {
      const v = m * 10 ** e;
      if (v >= low * (1 - 1e-9) && v <= high * (1 + 1e-9)) ticks.push(v);
    }
  }
  return ticks;
}

export function formatTick(value: number): string {
  if (value === 0) return '0';
  const magnitude = Math.abs(value);
  if (magnitude >= 1e5 || magnitude < 1e-3) return value.toExponential(0).replace('e+', 'e');
  return Number(value.toPrecision(4)).toString();
}

interface Axis {
  scale: Scale;
  low: number;
  high: number;
  toPixel(value: number): number;
  ticks: number[];
}

function makeAxis(
  values: number[],
  scale: Scale,
  range: readonly [number, number] | undefined,
  pixelLow: number,
  pixelHigh: number,
  pad: boolean,
): Axis {
  const finite = values.filter((v) => Number.isFinite(v) && (scale === 'linear' || v > 0));
  let low = range?.[0] ?? (finite.length ? Math.min(...finite) : 0);
  let high = range?.[1] ?? (finite.length ? Math.max(...finite) : 1);
  if (low === high) {
    low = scale === 'log' ? low / 2 : low - 1;
    high = scale === 'log' ? high * 2 : high + 1;
  }
  if (pad && range === undefined && scale === 'linear') {
    const margin = (high - low) * 0.05;
    low -= margin;
    high += margin;
  }
  const transform = (v: number) => (scale === 'log' ? Math.log10(v) : v);
  const toPixel = (v: number) =>
    pixelLow +
    ((transform(v) - transform(low)) / (transform(high) - transform(low))) * (pixelHigh - pixelLow);
  const ticks = scale === 'log' ? logTicks(low, high) : linearTicks(low, high);
  return { scale, low, high, toPixel, ticks };
}

/** A line chart with markers, legend, grid and optional error bars, as an SVG document. */
export function lineChart(options: LineChartOptions): string {
  const width = options.width ?? 720;
  const height = options.height ?? 440;
  const margin = { left: 72, right: 24 + (options.series.length > 1 ? 150 : 0), top: 48, bottom: 56 };
  const xs = options.series.flatMap((s) => [...s.x]);
  const ys = options.series.flatMap((s) =>
    s.y.flatMap((y, i) => [y - (s.error?.[i] ?? 0), y + (s.error?.[i] ?? 0)]),
  );
  const xAxis = makeAxis(
    xs,
    options.xScale ?? 'linear',
    options.xRange,
    margin.left,
    width - margin.right,
    false,
  );
  const yAxis = makeAxis(
    ys,
    options.yScale ?? 'linear',
    options.yRange,
    height - margin.bottom,
    margin.top,
    true,
  );
  const parts: string[] = [];
  parts.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  parts.push(text(width / 2, 28, options.title, { size: 16, weight: 'bold' }));
  for (const tick of yAxis.ticks) {
    const y = yAxis.toPixel(tick);
    parts.push(
      `<line x1="${margin.left}" x2="${width - margin.right}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="#e5e5e5"/>`,
    );
    parts.push(text(margin.left - 8, y + 4, formatTick(tick), { anchor: 'end', size: 11 }));
  }
  for (const tick of xAxis.ticks) {
    const x = xAxis.toPixel(tick);
    parts.push(
      `<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${margin.top}" y2="${height - margin.bottom}" stroke="#eeeeee"/>`,
    );
    parts.push(text(x, height - margin.bottom + 18, formatTick(tick), { size: 11 }));
  }
  parts.push(
    `<rect x="${margin.left}" y="${margin.top}" width="${width - margin.left - margin.right}" height="${height - margin.top - margin.bottom}" fill="none" stroke="#444"/>`,
  );
  parts.push(
    text(
      (margin.left + width - margin.right) / 2,
      height - 14,
      options.xLabel + (xAxis.scale === 'log' ? ' (log scale)' : ''),
      { size: 13 },
    ),
  );
  parts.push(
    text(
      18,
      (margin.top + height - margin.bottom) / 2,
      options.yLabel + (yAxis.scale === 'log' ? ' (log scale)' : ''),
      { size: 13, rotate: -90 },
    ),
  );
  options.series.forEach((series, index) => {
    const color = palette[index % palette.length]!;
    const points = series.x
      .map((x, i) => [xAxis.toPixel(x), yAxis.toPixel(series.y[i]!)] as const)
      .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (points.length > 1) {
      parts.push(
        `<polyline fill="none" stroke="${color}" stroke-width="2" points="${points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ')}"/>`,
      );
    }
    series.x.forEach((x, i) => {
      const px = xAxis.toPixel(x);
      const py = yAxis.toPixel(series.y[i]!);
      if (!Number.isFinite(px) || !Number.isFinite(py)) return;
      const error = series.error?.[i];
      if (error !== undefined && error > 0) {
        const top = yAxis.toPixel(series.y[i]! + error);
        const bottom = yAxis.toPixel(series.y[i]! - error);
        parts.push(
          `<line x1="${px.toFixed(1)}" x2="${px.toFixed(1)}" y1="${top.toFixed(1)}" y2="${bottom.toFixed(1)}" stroke="${color}" stroke-width="1.5"/>`,
        );
      }
      parts.push(`<circle cx="${px.toFixed(1)}" cy="${py.toFixed(1)}" r="3.5" fill="${color}"/>`);
    });
  });
  if (options.series.length > 1) {
    options.series.forEach((series, index) => {
      const y = margin.top + 12 + index * 20;
      const x = width - margin.right + 16;
      parts.push(
        `<line x1="${x}" x2="${x + 22}" y1="${y}" y2="${y}" stroke="${palette[index % palette.length]}" stroke-width="3"/>`,
      );
      parts.push(text(x + 28, y + 4, series.name, { anchor: 'start', size: 12 }));
    });
  }
  return svgDocument(width, height, parts);
}

export interface BarChartOptions {
  title: string;
  yLabel: string;
  /** Labels along the x axis. */
  categories: readonly string[];
  /** One bar per group within each category. */
  groups: readonly { name: string; values: readonly number[] }[];
  yScale?: Scale;
  /** Print each bar's value above it (default true). */
  labels?: boolean;
  width?: number;
  height?: number;
}

/** Grouped bars with value labels, as an SVG document. */
export function barChart(options: BarChartOptions): string {
  const width = options.width ?? 720;
  const height = options.height ?? 440;
  const margin = { left: 80, right: 24, top: 64, bottom: 64 };
  const values = options.groups.flatMap((g) => [...g.values]);
  const scale = options.yScale ?? 'linear';
  // On a log axis the base sits below the smallest bar, so every bar keeps a visible height.
  const positive = values.filter((v) => v > 0);
  const logRange = [Math.min(...positive) / 3, Math.max(...positive) * 1.5] as const;
  const yAxis = makeAxis(
    scale === 'linear' ? [0, ...values] : values,
    scale,
    scale === 'log' ? logRange : undefined,
    height - margin.bottom,
    margin.top,
    scale === 'linear',
  );
  const parts: string[] = [
    `<rect width="${width}" height="${height}" fill="white"/>`,
    text(width / 2, 28, options.title, { size: 16, weight: 'bold' }),
  ];
  for (const tick of yAxis.ticks) {
    const y = yAxis.toPixel(tick);
    parts.push(
      `<line x1="${margin.left}" x2="${width - margin.right}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="#e5e5e5"/>`,
    );
    parts.push(text(margin.left - 8, y + 4, formatTick(tick), { anchor: 'end', size: 11 }));
  }
  const slot = (width - margin.left - margin.right) / options.categories.length;
  const barWidth = (slot * 0.8) / options.groups.length;
  const base = yAxis.toPixel(scale === 'log' ? yAxis.low : Math.max(0, yAxis.low));
  options.categories.forEach((category, c) => {
    parts.push(text(margin.left + slot * (c + 0.5), height - margin.bottom + 20, category, { size: 12 }));
    options.groups.forEach((group, g) => {
      const value = group.values[c]!;
      const x = margin.left + slot * c + slot * 0.1 + barWidth * g;
      const top = yAxis.toPixel(value);
      parts.push(
        `<rect x="${x.toFixed(1)}" y="${Math.min(top, base).toFixed(1)}" width="${(barWidth * 0.92).toFixed(1)}" height="${Math.abs(base - top).toFixed(1)}" fill="${palette[g % palette.length]}"/>`,
      );
      if (options.labels ?? true)
        parts.push(text(x + barWidth * 0.46, top - 5, formatTick(value), { size: 11 }));
    });
  });
  parts.push(
    `<line x1="${margin.left}" x2="${width - margin.right}" y1="${base.toFixed(1)}" y2="${base.toFixed(1)}" stroke="#444"/>`,
  );
  parts.push(
    text(
      18,
      (margin.top + height - margin.bottom) / 2,
      options.yLabel + (scale === 'log' ? ' (log scale)' : ''),
      { size: 13, rotate: -90 },
    ),
  );
  options.groups.forEach((group, g) => {
    const x = margin.left + 10 + g * 180;
    parts.push(
      `<rect x="${x}" y="${height - 26}" width="14" height="14" fill="${palette[g % palette.length]}"/>`,
    );
    parts.push(text(x + 20, height - 14, group.name, { anchor: 'start', size: 12 }));
  });
  return svgDocument(width, height, parts);
}

export interface GridPanel {
  title: string;
  /** Row-major values, rows × columns. */
  values: readonly number[];
  rows: number;
  columns: number;
}

/** Side-by-side grids of numbers shaded by value (e.g. an input and its pooled outputs). */
export function gridFigure(
  title: string,
  panels: readonly GridPanel[],
  options: { cell?: number; showNumbers?: boolean; decimals?: number } = {},
): string {
  const cell = options.cell ?? 48;
  const gap = 40;
  const top = 64;
  const panelWidths = panels.map((p) => p.columns * cell);
  const width = panelWidths.reduce((a, b) => a + b + gap, gap);
  const height = top + Math.max(...panels.map((p) => p.rows * cell)) + 32;
  const all = panels.flatMap((p) => [...p.values]);
  const low = Math.min(...all);
  const high = Math.max(...all);
  const parts: string[] = [
    `<rect width="${width}" height="${height}" fill="white"/>`,
    text(width / 2, 26, title, { size: 16, weight: 'bold' }),
  ];
  let x0 = gap;
  panels.forEach((panel, p) => {
    parts.push(text(x0 + panelWidths[p]! / 2, top - 10, panel.title, { size: 13 }));
    for (let r = 0; r < panel.rows; r++) {
      for (let c = 0; c < panel.columns; c++) {
        const value = panel.values[r * panel.columns + c]!;
        const shade = high > low ? (value - low) / (high - low) : 0.5;
        const level = Math.round(245 - shade * 200);
        const fill = `rgb(${level},${Math.round(level * 0.97)},255)`;
        parts.push(
          `<rect x="${x0 + c * cell}" y="${top + r * cell}" width="${cell}" height="${cell}" fill="${fill}" stroke="#666" stroke-width="0.5"/>`,
        );
        if (options.showNumbers ?? true) {
          parts.push(
            text(
              x0 + c * cell + cell / 2,
              top + r * cell + cell / 2 + 4,
              Number(value.toFixed(options.decimals ?? 1)).toString(),
              { size: Math.min(14, cell / 3), fill: shade > 0.6 ? 'white' : '#222' },
            ),
          );
        }
      }
    }
    x0 += panelWidths[p]! + gap;
  });
  return svgDocument(width, height, parts);
}

function svgDocument(width: number, height: number, parts: string[]): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">\n${parts.join('\n')}\n</svg>\n`;
}
