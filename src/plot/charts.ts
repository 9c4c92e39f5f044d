/**
 * Charts as SVG text, drawn by tensile itself (no browser, no plotting service): line charts with
 * linear or log axes and optional error bars, grouped bar charts, and heat-map grids with numbers
 * (for pooling examples). `writeFigure` (./figure.ts) writes each as SVG and PNG.
 *
 * Every margin, legend box and label position is computed from the measured width of its text in
 * the font the PNG is drawn with (./font-metrics.ts), so no text runs off the canvas or under the
 * plot: titles and labels that do not fit are wrapped, and only then set smaller. Numbers print
 * exactly (12,544, never 12540); axes that count things (epochs, trials) get whole-number ticks; and
 * series that coincide stay visible (distinct marker shapes, a marker under another drawn larger, a
 * line over another dashed).
 *
 * Elements carry classes a reader or test can find: `plot-area` (the data region's frame), `legend`
 * and `legend-box`, `series` groups with `data-series`, and `marker`s with `data-shape`.
 */
import { axisDomain, toPixels, withTicks, type AxisDomain, type Scale } from './axis.js';
import {
  ascent,
  descent,
  fitText,
  formatExact,
  lineHeight,
  measure,
  textElement,
  textLines,
  type FittedText,
} from './text.js';

export { formatTick, linearTicks, logTicks, type Scale } from './axis.js';
export { escapeXml, formatExact } from './text.js';

export interface Series {
  name: string;
  x: readonly number[];
  y: readonly number[];
  /** Symmetric error bars (e.g. one standard deviation), same length as y. */
  error?: readonly number[];
}

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
  /**
   * Whole-number x ticks only (epochs, trials, steps). Default: when every x value is a whole
   * number on a linear axis, so a chart of epochs 1, 2, 3 never shows a tick at 1.5.
   */
  xIntegerTicks?: boolean;
  /** Whole-number y ticks only (counts). Default false. */
  yIntegerTicks?: boolean;
  /** Total size in pixels; the height grows when a legend below the plot needs room. */
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

/** Marker shapes, one per series in turn, so series stay apart without colour too. */
export const markerShapes = [
  'circle',
  'square',
  'triangle',
  'diamond',
  'triangle-down',
  'plus',
  'cross',
  'star',
] as const;
export type MarkerShape = (typeof markerShapes)[number];

/** Dash patterns for lines drawn over an earlier series' line, so the one below shows through. */
const dashPatterns = ['7 4', '2 3', '10 3 2 3', '4 2 1 2'];

/** Blank space kept between any text and the canvas edge. */
const edge = 8;
const titleStyle = { size: 16, weight: 'bold' } as const;
const axisLabelSize = 13;
const tickSize = 11;
const legendSize = 12;
/** The largest share of the width a legend to the right of the plot may take before it moves below. */
const rightLegendShare = 0.3;
/** The smallest plot height; the canvas grows rather than squeeze the data region under it. */
const minimumPlotHeight = 160;

const fmt = (value: number) => value.toFixed(2);

/** An SVG marker of a shape, centred on (x, y), about 2r across. */
function marker(shape: MarkerShape, x: number, y: number, r: number, color: string): string {
  const common = `class="marker" data-shape="${shape}"`;
  const filled = `fill="${color}" stroke="white" stroke-width="0.75"`;
  const polygon = (points: [number, number][]) =>
    `<polygon ${common} points="${points.map(([px, py]) => `${fmt(x + px * r)},${fmt(y + py * r)}`).join(' ')}" ${filled}/>`;
  switch (shape) {
    case 'circle':
      return `<circle ${common} cx="${fmt(x)}" cy="${fmt(y)}" r="${fmt(r)}" ${filled}/>`;
    case 'square':
      return polygon([
        [-0.85, -0.85],
        [0.85, -0.85],
        [0.85, 0.85],
        [-0.85, 0.85],
      ]);
    case 'triangle':
      return polygon([
        [0, -1.15],
        [1, 0.6],
        [-1, 0.6],
      ]);
    case 'triangle-down':
      return polygon([
        [0, 1.15],
        [1, -0.6],
        [-1, -0.6],
      ]);
    case 'diamond':
      return polygon([
        [0, -1.2],
        [1, 0],
        [0, 1.2],
        [-1, 0],
      ]);
    case 'star': {
      const points: [number, number][] = [];
      for (let k = 0; k < 10; k++) {
        const angle = -Math.PI / 2 + (k * Math.PI) / 5;
        const radius = k % 2 === 0 ? 1.25 : 0.5;
        points.push([radius * Math.cos(angle), radius * Math.sin(angle)]);
      }
      return polygon(points);
    }
    case 'plus':
    case 'cross': {
      const d =
        shape === 'plus'
          ? `M${fmt(x - r)},${fmt(y)}H${fmt(x + r)}M${fmt(x)},${fmt(y - r)}V${fmt(y + r)}`
          : `M${fmt(x - r * 0.8)},${fmt(y - r * 0.8)}L${fmt(x + r * 0.8)},${fmt(y + r * 0.8)}M${fmt(x - r * 0.8)},${fmt(y + r * 0.8)}L${fmt(x + r * 0.8)},${fmt(y - r * 0.8)}`;
      return `<path ${common} d="${d}" stroke="${color}" stroke-width="2.25" fill="none"/>`;
    }
  }
}

/** How one series is drawn: its colour, marker and (when it runs over another) dash pattern. */
interface SeriesStyle {
  color: string;
  shape: MarkerShape;
  dash?: string;
}

/** A legend entry: what it shows and its label laid out. */
interface LegendEntry {
  style: SeriesStyle;
  kind: 'line' | 'box';
  label: FittedText;
}

/** Width of the sample (line with marker, or box) drawn before a legend label. */
const legendSample = { line: 30, box: 14, gap: 6 };
const legendPad = 8;
const legendRowGap = 4;

function entryWidth(entry: LegendEntry): number {
  return legendSample[entry.kind] + legendSample.gap + entry.label.width;
}

function entryHeight(entry: LegendEntry): number {
  return Math.max(entry.label.height, 14);
}

/** A legend laid out: its size and how to draw it at a position. */
interface LegendLayout {
  width: number;
  height: number;
  draw(x: number, y: number): string[];
}

/**
 * Legend entries stacked in one column (`maxWidth` is the widest the column may be) or flowed into
 * rows (`columns: 'flow'`) within `maxWidth`; labels too long for the room wrap.
 */
function layoutLegend(
  items: readonly { name: string; style: SeriesStyle }[],
  kind: 'line' | 'box',
  arrangement: 'column' | 'flow',
  maxWidth: number,
): LegendLayout {
  const labelRoom = maxWidth - 2 * legendPad - legendSample[kind] - legendSample.gap;
  const entries: LegendEntry[] = items.map((item) => ({
    style: item.style,
    kind,
    label: fitText(item.name, { size: legendSize }, labelRoom, { maxLines: 3, minSize: 8 }),
  }));
  // Positions of each entry's top-left corner relative to the box's inner corner.
  const placed: { entry: LegendEntry; x: number; y: number }[] = [];
  let width = 0;
  let height = 0;
  if (arrangement === 'column') {
    for (const entry of entries) {
      placed.push({ entry, x: 0, y: height });
      height += entryHeight(entry) + legendRowGap;
      width = Math.max(width, entryWidth(entry));
    }
    height -= legendRowGap;
  } else {
    const room = maxWidth - 2 * legendPad;
    const columnGap = 18;
    let x = 0;
    let rowTop = 0;
    let rowHeight = 0;
    for (const entry of entries) {
      const w = entryWidth(entry);
      if (x > 0 && x + w > room) {
        rowTop += rowHeight + legendRowGap;
        x = 0;
        rowHeight = 0;
      }
      placed.push({ entry, x, y: rowTop });
      x += w + columnGap;
      width = Math.max(width, x - columnGap);
      rowHeight = Math.max(rowHeight, entryHeight(entry));
    }
    height = rowTop + rowHeight;
  }
  const boxWidth = width + 2 * legendPad;
  const boxHeight = height + 2 * legendPad;
  return {
    width: boxWidth,
    height: boxHeight,
    draw(left, top) {
      const parts = [
        `<g class="legend">`,
        `<rect class="legend-box" x="${fmt(left)}" y="${fmt(top)}" width="${fmt(boxWidth)}" height="${fmt(boxHeight)}" fill="white" stroke="#cccccc"/>`,
      ];
      for (const { entry, x, y } of placed) {
        const entryLeft = left + legendPad + x;
        const firstBaseline = top + legendPad + y + ascent(entry.label.size);
        // The sample sits on the middle of the label's first line.
        const middle = firstBaseline - ascent(entry.label.size) * 0.35;
        const { color, shape, dash } = entry.style;
        if (entry.kind === 'line') {
          parts.push(
            `<line x1="${fmt(entryLeft)}" x2="${fmt(entryLeft + legendSample.line)}" y1="${fmt(middle)}" y2="${fmt(middle)}" stroke="${color}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`,
            marker(shape, entryLeft + legendSample.line / 2, middle, 4, color),
          );
        } else {
          parts.push(
            `<rect x="${fmt(entryLeft)}" y="${fmt(middle - 7)}" width="14" height="14" fill="${color}"/>`,
          );
        }
        parts.push(
          ...textLines(entryLeft + legendSample[entry.kind] + legendSample.gap, firstBaseline, entry.label, {
            anchor: 'start',
          }),
        );
      }
      parts.push('</g>');
      return parts;
    },
  };
}

/** The title laid out across the canvas, and the height it takes from the top edge. */
function layoutTitle(title: string, width: number): { fitted: FittedText; bottom: number } {
  const fitted = fitText(title, titleStyle, width - 2 * edge, { maxLines: 3, minSize: 10 });
  return { fitted, bottom: title.trim() === '' ? edge : edge + fitted.height };
}

function drawTitle(title: { fitted: FittedText }, width: number): string[] {
  if (title.fitted.lines.join('') === '') return [];
  return textLines(width / 2, edge + ascent(title.fitted.size), title.fitted, { weight: 'bold' });
}

/** The value axis's grid lines across the plot and their tick labels to its left. */
function drawValueGrid(
  domain: AxisDomain,
  toY: (value: number) => number,
  left: number,
  right: number,
): string[] {
  return domain.ticks.flatMap((tick, i) => {
    const y = toY(tick);
    return [
      `<line x1="${fmt(left)}" x2="${fmt(right)}" y1="${fmt(y)}" y2="${fmt(y)}" stroke="#e5e5e5"/>`,
      textElement(left - 6, y + ascent(tickSize) * 0.35, domain.labels[i]!, {
        size: tickSize,
        anchor: 'end',
      }),
    ];
  });
}

/**
 * Fewer ticks until neighbouring labels along a horizontal axis leave a gap between them (at most
 * five tries; two ticks always fit a sensible width).
 */
function horizontalTicks(domain: AxisDomain, left: number, right: number, integer: boolean): AxisDomain {
  let current = domain;
  for (let count = 5; count >= 2; count--) {
    current = count === 5 ? domain : withTicks(domain.scale, domain.low, domain.high, count, integer);
    const toX = toPixels(current, left, right);
    const widths = current.labels.map((label) => measure(label, { size: tickSize }));
    const crowded = current.ticks.some(
      (tick, i) => i > 0 && toX(tick) - toX(current.ticks[i - 1]!) < (widths[i]! + widths[i - 1]!) / 2 + 8,
    );
    if (!crowded) return current;
  }
  return current;
}

/** Fewer ticks until labels up a vertical axis have a line of space between neighbours. */
function verticalTicks(domain: AxisDomain, bottom: number, top: number, integer: boolean): AxisDomain {
  let current = domain;
  for (let count = 5; count >= 2; count--) {
    current = count === 5 ? domain : withTicks(domain.scale, domain.low, domain.high, count, integer);
    const toY = toPixels(current, bottom, top);
    const crowded = current.ticks.some(
      (tick, i) => i > 0 && toY(current.ticks[i - 1]!) - toY(tick) < lineHeight(tickSize) + 4,
    );
    if (!crowded) return current;
  }
  return current;
}

/** Widest label of a domain at the tick size. */
function widestLabel(domain: AxisDomain): number {
  return Math.max(0, ...domain.labels.map((label) => measure(label, { size: tickSize })));
}

function svgDocument(width: number, height: number, parts: string[]): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${Math.ceil(width)}" height="${Math.ceil(height)}" viewBox="0 0 ${Math.ceil(width)} ${Math.ceil(height)}">\n${parts.join('\n')}\n</svg>\n`;
}

/**
 * Runs of consecutive drawable points (a NaN or a non-positive value on a log axis breaks the line
 * rather than joining across the gap).
 */
function runsOf(points: readonly ([number, number] | null)[]): [number, number][][] {
  const runs: [number, number][][] = [[]];
  for (const point of points) {
    if (point === null) runs.push([]);
    else runs.at(-1)!.push(point);
  }
  return runs.filter((run) => run.length > 0);
}

/** A line chart with markers, legend, grid and optional error bars, as an SVG document. */
export function lineChart(options: LineChartOptions): string {
  const width = options.width ?? 720;
  let height = options.height ?? 440;
  const xScale = options.xScale ?? 'linear';
  const yScale = options.yScale ?? 'linear';
  const series = options.series;
  const xs = series.flatMap((s) => [...s.x]);
  const ys = series.flatMap((s) => s.y.flatMap((y, i) => [y - (s.error?.[i] ?? 0), y + (s.error?.[i] ?? 0)]));
  const xInteger =
    options.xIntegerTicks ?? (xScale === 'linear' && xs.length > 0 && xs.every((x) => Number.isInteger(x)));
  const yInteger = options.yIntegerTicks ?? false;
  const xDomain = axisDomain(xs, { scale: xScale, range: options.xRange, integerTicks: xInteger });
  let yDomain = axisDomain(ys, { scale: yScale, range: options.yRange, pad: true, integerTicks: yInteger });

  const styles: SeriesStyle[] = series.map((_, index) => ({
    color: palette[index % palette.length]!,
    shape: markerShapes[index % markerShapes.length]!,
  }));

  const title = layoutTitle(options.title, width);
  const top = title.bottom + 14;
  const xLabel = fitText(
    options.xLabel + (xScale === 'log' ? ' (log scale)' : ''),
    { size: axisLabelSize },
    width - 2 * edge,
    {
      maxLines: 2,
    },
  );

  // The legend goes right of the plot when it is narrow enough, else below the x label.
  const legendItems = series.length > 1 ? series.map((s, i) => ({ name: s.name, style: styles[i]! })) : [];
  const rightLegend = layoutLegend(legendItems, 'line', 'column', width * rightLegendShare);
  const legendOnRight =
    legendItems.length > 0 &&
    legendItems.every(
      (item) =>
        measure(item.name, { size: legendSize }) <=
        width * rightLegendShare - 2 * legendPad - legendSample.line - legendSample.gap,
    ) &&
    rightLegend.height <= height - top - 100;
  const bottomLegend = layoutLegend(legendItems, 'line', 'flow', width - 2 * edge);
  const legendBelow = legendItems.length > 0 && !legendOnRight;

  // Bottom band: tick labels, then the x label, then the legend when it is below.
  const tickBand = 6 + lineHeight(tickSize);
  const xLabelBand = 6 + xLabel.height;
  const legendBand = legendBelow ? 10 + bottomLegend.height : 0;
  const bottomBand = tickBand + xLabelBand + legendBand + edge;
  height = Math.max(height, top + minimumPlotHeight + bottomBand);
  const plotBottom = height - bottomBand;
  const plotHeight = plotBottom - top;
  yDomain = verticalTicks(yDomain, plotBottom, top, yInteger);

  const yLabel = fitText(
    options.yLabel + (yScale === 'log' ? ' (log scale)' : ''),
    { size: axisLabelSize },
    plotHeight,
    {
      maxLines: 2,
    },
  );
  const firstXLabel = measure(xDomain.labels[0] ?? '', { size: tickSize });
  const lastXLabel = measure(xDomain.labels.at(-1) ?? '', { size: tickSize });
  const left = Math.max(edge + yLabel.height + 8 + widestLabel(yDomain) + 6, edge + firstXLabel / 2);
  const right =
    width - Math.max(edge + (legendOnRight ? rightLegend.width + 14 : 0), edge + lastXLabel / 2, 16);
  // Data starts a little inside the frame, so end markers and error-bar caps stay off its edge.
  const inset = 10;
  const x = horizontalTicks(xDomain, left + inset, right - inset, xInteger);
  const toX = toPixels(x, left + inset, right - inset);
  const toY = toPixels(yDomain, plotBottom, top);

  const parts: string[] = [
    `<rect width="${width}" height="${height}" fill="white"/>`,
    ...drawTitle(title, width),
  ];
  parts.push(...drawValueGrid(yDomain, toY, left, right));
  x.ticks.forEach((tick, i) => {
    const px = toX(tick);
    parts.push(
      `<line x1="${fmt(px)}" x2="${fmt(px)}" y1="${fmt(top)}" y2="${fmt(plotBottom)}" stroke="#eeeeee"/>`,
      textElement(px, plotBottom + 6 + ascent(tickSize), x.labels[i]!, { size: tickSize }),
    );
  });
  parts.push(
    `<rect class="plot-area" x="${fmt(left)}" y="${fmt(top)}" width="${fmt(right - left)}" height="${fmt(plotHeight)}" fill="none" stroke="#444"/>`,
  );
  // The x label centres under the plot, moved in where that would push it past the canvas edge.
  const xLabelCentre = Math.min(
    Math.max((left + right) / 2, edge + xLabel.width / 2),
    width - edge - xLabel.width / 2,
  );
  parts.push(...textLines(xLabelCentre, plotBottom + tickBand + 6 + ascent(xLabel.size), xLabel, {}));
  parts.push(...textLines(edge + ascent(yLabel.size), top + plotHeight / 2, yLabel, { rotate: -90 }));

  // Pixel positions of every point, null where it cannot be drawn.
  const pixels = series.map((s) =>
    s.x.map((xv, i): [number, number] | null => {
      const px = toX(xv);
      const py = toY(s.y[i]!);
      return Number.isFinite(px) && Number.isFinite(py) ? [px, py] : null;
    }),
  );
  // Points this close draw over each other: lines 2 px wide, markers 7 px across.
  const within =
    (distance: number) => (a: [number, number] | null | undefined, b: [number, number] | null | undefined) =>
      a != null && b != null && Math.abs(a[0] - b[0]) < distance && Math.abs(a[1] - b[1]) < distance;
  const near = within(2);
  const overlapping = within(4);
  // A line with a segment lying on an earlier series' segment is dashed, so the earlier one shows.
  let dashed = 0;
  pixels.forEach((points, s) => {
    const overlaps = points.some((p, i) =>
      pixels
        .slice(0, s)
        .some((earlier) =>
          earlier.some(
            (e, j) =>
              near(p, e) && (near(points[i + 1], earlier[j + 1]) || near(points[i + 1], earlier[j - 1])),
          ),
        ),
    );
    if (overlaps) styles[s]!.dash = dashPatterns[dashed++ % dashPatterns.length];
  });

  const withErrors = series.flatMap((s, index) => (s.error?.some((e) => e > 0) ? [index] : []));
  const errorOffset = (index: number) =>
    withErrors.length > 1 ? (withErrors.indexOf(index) - (withErrors.length - 1) / 2) * 5 : 0;
  series.forEach((s, index) => {
    const { color, shape, dash } = styles[index]!;
    parts.push(`<g class="series" data-series="${s.name.replace(/[<>&"]/g, '')}">`);
    for (const run of runsOf(pixels[index]!)) {
      if (run.length < 2) continue;
      parts.push(
        `<polyline fill="none" stroke="${color}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''} points="${run.map(([px, py]) => `${fmt(px)},${fmt(py)}`).join(' ')}"/>`,
      );
    }
    pixels[index]!.forEach((point, i) => {
      if (point === null) return;
      const error = s.error?.[i];
      if (error !== undefined && error > 0) {
        const high = toY(s.y[i]! + error);
        const low = toY(s.y[i]! - error);
        const bottom = Number.isFinite(low) ? low : plotBottom;
        // Series with error bars at the same x each get theirs a little to one side, so one series'
        // bar does not hide another's; capped, so each bar's ends can be read.
        const barX = point[0] + errorOffset(index);
        parts.push(
          `<path class="error-bar" d="M${fmt(barX)},${fmt(high)}V${fmt(bottom)}M${fmt(barX - 3)},${fmt(high)}H${fmt(barX + 3)}M${fmt(barX - 3)},${fmt(bottom)}H${fmt(barX + 3)}" stroke="${color}" stroke-width="1.5" fill="none"/>`,
        );
      }
      // A marker that later series will cover is drawn larger, so it shows as a ring around theirs.
      const coveredBy = pixels
        .slice(index + 1)
        .filter((later) => later.some((p) => overlapping(p, point))).length;
      parts.push(marker(shape, point[0], point[1], 3.5 + 1.5 * Math.min(coveredBy, 4), color));
    });
    parts.push('</g>');
  });

  if (legendOnRight) {
    parts.push(...rightLegend.draw(right + 14, top));
  } else if (legendBelow) {
    const legendLeft = Math.max(
      edge,
      Math.min((left + right) / 2 - bottomLegend.width / 2, width - edge - bottomLegend.width),
    );
    parts.push(...bottomLegend.draw(legendLeft, plotBottom + tickBand + xLabelBand + 10));
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
  /** Print each bar's value above it, exactly (default true). */
  labels?: boolean;
  /** Whole-number y ticks only. Default: when every value is a whole number. */
  yIntegerTicks?: boolean;
  /**
   * Interval half-widths drawn as capped whiskers, [group][category] like `groups[g].values` (e.g.
   * a 95% confidence interval's half-width); the value label goes beyond the whisker's end.
   */
  errors?: readonly (readonly number[])[];
  /** Total size in pixels; the height grows when labels below the plot need room. */
  width?: number;
  height?: number;
}

/** How bar value labels are set: one size for all, across the bar or rotated along it. */
interface BarLabelLayout {
  size: number;
  rotated: boolean;
  /** Room a label needs beyond its bar's end, in pixels. */
  room: number;
}

function barLabelLayout(labels: readonly string[], barWidth: number): BarLabelLayout {
  const widest = Math.max(1, ...labels.map((label) => measure(label, { size: tickSize })));
  const across = Math.min(tickSize, (tickSize * (barWidth - 2)) / widest);
  if (across >= 8) return { size: across, rotated: false, room: ascent(across) + descent(across) + 5 };
  // Too narrow to read across: along the bar, as large as the bar's width allows.
  const along = Math.max(4, Math.min(tickSize, (barWidth - 1) / (ascent(1) + descent(1))));
  return {
    size: along,
    rotated: true,
    room: Math.max(...labels.map((label) => measure(label, { size: along }))) + 6,
  };
}

/** Grouped bars with exact value labels and a legend below, as an SVG document. */
export function barChart(options: BarChartOptions): string {
  const width = options.width ?? 720;
  let height = options.height ?? 440;
  const scale = options.yScale ?? 'linear';
  const values = options.groups.flatMap((g) => [...g.values]).filter((v) => Number.isFinite(v));
  const errorOf = (g: number, c: number): number => {
    const error = options.errors?.[g]?.[c];
    return error !== undefined && Number.isFinite(error) ? Math.abs(error) : 0;
  };
  // Where each bar's drawing ends: its value, or the end of its whisker away from zero.
  const extents = options.groups.flatMap((group, g) =>
    group.values.flatMap((v, c) => (Number.isFinite(v) ? [v - errorOf(g, c), v + errorOf(g, c)] : [])),
  );
  const showLabels = options.labels ?? true;
  const integer = options.yIntegerTicks ?? (values.length > 0 && values.every((v) => Number.isInteger(v)));
  const styles: SeriesStyle[] = options.groups.map((_, g) => ({
    color: palette[g % palette.length]!,
    shape: markerShapes[g % markerShapes.length]!,
  }));

  const title = layoutTitle(options.title, width);
  const top = title.bottom + 14;
  const legend = layoutLegend(
    options.groups.map((group, g) => ({ name: group.name, style: styles[g]! })),
    'box',
    'flow',
    width - 2 * edge,
  );
  const showLegend = options.groups.length > 1 || (options.groups[0]?.name ?? '') !== '';
  const count = Math.max(1, options.categories.length);
  const groupCount = Math.max(1, options.groups.length);

  // The data range: bars start at zero (linear) or a third below the smallest (log), and the range
  // then grows until the value labels fit between the bar ends and the plot's frame.
  const positive = extents.filter((v) => v > 0);
  let low = scale === 'log' ? (positive.length > 0 ? Math.min(...positive) : 1) / 3 : Math.min(0, ...extents);
  let high = scale === 'log' ? (positive.length > 0 ? Math.max(...positive) : 1) : Math.max(0, ...extents);
  if (low === high) high = scale === 'log' ? low * 10 : low + 1;
  const dataLow = low;
  const dataHigh = high;
  const labelTexts = options.groups.flatMap((g) => g.values.map((v) => formatExact(v)));
  let layout!: ReturnType<typeof placeBars>;
  // Margins depend on the tick labels, which depend on the range, which depends on the room the
  // labels need: a few rounds settle it (each round only widens the range).
  const transform = (v: number) => (scale === 'log' ? Math.log10(v) : v);
  const inverse = (t: number) => (scale === 'log' ? 10 ** t : t);
  for (let round = 0; round < 5; round++) {
    layout = placeBars(withTicks(scale, low, high, 5, integer));
    if (!showLabels) break;
    const span = layout.plotBottom - layout.plotTop;
    const room = layout.labels.room;
    // Value units per pixel such that the largest bars end `room` pixels inside the frame.
    const ends = (dataHigh > 0 ? 1 : 0) + (scale === 'linear' && dataLow < 0 ? 1 : 0);
    if (span - ends * room <= span * 0.3) break;
    const perPixel =
      (transform(Math.max(dataHigh, scale === 'log' ? dataLow : 0)) -
        transform(Math.min(dataLow, scale === 'log' ? dataLow : 0))) /
      (span - ends * room);
    const needHigh = dataHigh > 0 ? inverse(transform(dataHigh) + room * perPixel) : high;
    const needLow = scale === 'linear' && dataLow < 0 ? dataLow - room * perPixel : low;
    const tolerance = 1e-9 * (transform(high) - transform(low));
    if (
      transform(needHigh) <= transform(high) + tolerance &&
      transform(needLow) >= transform(low) - tolerance
    )
      break;
    high = Math.max(high, needHigh);
    low = Math.min(low, needLow);
  }
  return layout.svg;

  function placeBars(fullDomain: AxisDomain) {
    let domain = fullDomain;
    const categoryLabels = options.categories.map((c) => c);
    // Category labels first need the slot width, which needs the left margin: measure at the widest it could be.
    const yLabelFit = (plotHeight: number) =>
      fitText(options.yLabel + (scale === 'log' ? ' (log scale)' : ''), { size: axisLabelSize }, plotHeight, {
        maxLines: 2,
      });
    const right = width - edge - 8;
    // Category labels are fitted to the narrowest the slots can be (a two-line y label), since the
    // y label's lines are known only once the height below the plot is.
    const narrowestLeft = edge + 2 * lineHeight(axisLabelSize) + 8 + widestLabel(domain) + 6;
    const categories = categoryLabels.map((c) =>
      fitText(c, { size: legendSize }, (right - narrowestLeft) / count - 6, { maxLines: 3, minSize: 8 }),
    );
    const categoryBand = 8 + Math.max(lineHeight(legendSize), ...categories.map((c) => c.height));
    const legendBand = showLegend ? 10 + legend.height : 0;
    const bottomBand = categoryBand + legendBand + edge;
    height = Math.max(height, top + minimumPlotHeight + bottomBand);
    const plotBottom = height - bottomBand;
    const plotTop = top;
    domain = verticalTicks(domain, plotBottom, plotTop, integer);
    const yLabel = yLabelFit(plotBottom - plotTop);
    const left = edge + yLabel.height + 8 + widestLabel(domain) + 6;
    const slot = (right - left) / count;
    const barSlot = (slot * 0.8) / groupCount;
    const labels = barLabelLayout(labelTexts, barSlot * 0.92);
    const toY = toPixels(domain, plotBottom, plotTop);
    const base = toY(scale === 'log' ? domain.low : Math.min(Math.max(0, domain.low), domain.high));

    const parts: string[] = [
      `<rect width="${width}" height="${height}" fill="white"/>`,
      ...drawTitle(title, width),
    ];
    parts.push(...drawValueGrid(domain, toY, left, right));
    parts.push(
      `<rect class="plot-area" x="${fmt(left)}" y="${fmt(plotTop)}" width="${fmt(right - left)}" height="${fmt(plotBottom - plotTop)}" fill="none" stroke="none"/>`,
    );
    options.categories.forEach((_, c) => {
      parts.push(
        ...textLines(
          left + slot * (c + 0.5),
          plotBottom + 8 + ascent(categories[c]!.size),
          categories[c]!,
          {},
        ),
      );
      options.groups.forEach((group, g) => {
        const value = group.values[c]!;
        if (!Number.isFinite(value) || (scale === 'log' && value <= 0)) return;
        const x = left + slot * c + slot * 0.1 + barSlot * g;
        const end = toY(value);
        const barWidth = barSlot * 0.92;
        parts.push(
          `<rect class="bar" x="${fmt(x)}" y="${fmt(Math.min(end, base))}" width="${fmt(barWidth)}" height="${fmt(Math.abs(base - end))}" fill="${styles[g]!.color}"/>`,
        );
        const centre = x + barWidth / 2;
        const below = end > base;
        const error = errorOf(g, c);
        // The label sits beyond whatever is drawn further from zero: the bar or its whisker.
        let tip = end;
        if (error > 0) {
          const near = scale === 'log' ? Math.max(value - error, domain.low) : value - error;
          const y1 = toY(near);
          const y2 = toY(value + error);
          const cap = Math.max(3, barWidth * 0.15);
          parts.push(
            `<g class="error-bar" stroke="#222" stroke-width="1.2"><line x1="${fmt(centre)}" x2="${fmt(centre)}" y1="${fmt(y1)}" y2="${fmt(y2)}"/>` +
              `<line x1="${fmt(centre - cap)}" x2="${fmt(centre + cap)}" y1="${fmt(y1)}" y2="${fmt(y1)}"/>` +
              `<line x1="${fmt(centre - cap)}" x2="${fmt(centre + cap)}" y1="${fmt(y2)}" y2="${fmt(y2)}"/></g>`,
          );
          tip = below ? Math.max(y1, y2) : Math.min(y1, y2);
        }
        if (!showLabels) return;
        const label = formatExact(value);
        if (labels.rotated) {
          // Reads bottom to top, starting just beyond the bar's end.
          const baseline = centre + (ascent(labels.size) - descent(labels.size)) / 2;
          parts.push(
            textElement(baseline, below ? tip + 4 : tip - 4, label, {
              size: labels.size,
              rotate: -90,
              anchor: below ? 'end' : 'start',
            }),
          );
        } else {
          const y = below ? tip + 4 + ascent(labels.size) : tip - 4 - descent(labels.size);
          parts.push(textElement(centre, y, label, { size: labels.size }));
        }
      });
    });
    parts.push(
      `<line x1="${fmt(left)}" x2="${fmt(right)}" y1="${fmt(base)}" y2="${fmt(base)}" stroke="#444"/>`,
    );
    parts.push(...textLines(edge + ascent(yLabel.size), (plotTop + plotBottom) / 2, yLabel, { rotate: -90 }));
    if (showLegend) {
      const legendLeft = Math.max(
        edge,
        Math.min((left + right) / 2 - legend.width / 2, width - edge - legend.width),
      );
      parts.push(...legend.draw(legendLeft, plotBottom + categoryBand + 10));
    }
    return { svg: svgDocument(width, height, parts), labels, plotTop, plotBottom };
  }
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
  const panelWidths = panels.map((p) => p.columns * cell);
  const width = panelWidths.reduce((a, b) => a + b + gap, gap);
  const titleLayout = layoutTitle(title, width);
  const panelTitles = panels.map((panel, p) =>
    fitText(panel.title, { size: axisLabelSize }, panelWidths[p]! + gap - 8, { maxLines: 3, minSize: 8 }),
  );
  const panelTitleBand = Math.max(
    0,
    ...panelTitles.filter((t) => t.lines.join('') !== '').map((t) => t.height + 8),
  );
  const top = titleLayout.bottom + 12 + panelTitleBand;
  const height = top + Math.max(...panels.map((p) => p.rows * cell)) + edge + 8;
  const all = panels.flatMap((p) => [...p.values]);
  const low = Math.min(...all);
  const high = Math.max(...all);
  const parts: string[] = [
    `<rect width="${width}" height="${height}" fill="white"/>`,
    ...drawTitle(titleLayout, width),
  ];
  let x0 = gap;
  panels.forEach((panel, p) => {
    const panelTitle = panelTitles[p]!;
    const titleTop = top - panelTitleBand;
    parts.push(...textLines(x0 + panelWidths[p]! / 2, titleTop + ascent(panelTitle.size), panelTitle, {}));
    const numbers = panel.values.map((value) => formatExact(Number(value.toFixed(options.decimals ?? 1))));
    // One size for the panel's numbers, the largest at which the widest fits its cell.
    const widest = Math.max(1, ...numbers.map((n) => measure(n, { size: 1 })));
    const size = Math.min(14, cell / 3, (cell - 4) / widest, (cell - 2) / (ascent(1) + descent(1)));
    for (let r = 0; r < panel.rows; r++) {
      for (let c = 0; c < panel.columns; c++) {
        const value = panel.values[r * panel.columns + c]!;
        const shade = high > low ? (value - low) / (high - low) : 0.5;
        const level = Math.round(245 - shade * 200);
        const fill = `rgb(${level},${Math.round(level * 0.97)},255)`;
        parts.push(
          `<rect x="${x0 + c * cell}" y="${fmt(top + r * cell)}" width="${cell}" height="${cell}" fill="${fill}" stroke="#666" stroke-width="0.5"/>`,
        );
        if (options.showNumbers ?? true) {
          parts.push(
            textElement(
              x0 + c * cell + cell / 2,
              top + r * cell + cell / 2 + (ascent(size) - descent(size)) / 2,
              numbers[r * panel.columns + c]!,
              { size: Number(size.toFixed(2)), fill: shade > 0.6 ? 'white' : '#222' },
            ),
          );
        }
      }
    }
    x0 += panelWidths[p]! + gap;
  });
  return svgDocument(width, height, parts);
}

/**
 * Figures placed side by side under one title, each keeping its own scale and layout (a gridFigure
 * shades all its panels on one scale, which hides small values next to large ones). The title is
 * fitted to the combined width like any chart's: wrapped, and only then set smaller.
 */
export function sideBySideFigure(title: string, figures: readonly string[], gap = 10): string {
  const sizes = figures.map((figure) => {
    const size = /<svg[^>]*\swidth="([\d.]+)"[^>]*\sheight="([\d.]+)"/.exec(figure);
    if (size === null) throw new Error('sideBySideFigure: a figure without width and height');
    return { width: Number(size[1]), height: Number(size[2]) };
  });
  const width = sizes.reduce((sum, size) => sum + size.width, 0) + gap * Math.max(0, figures.length - 1);
  const titleLayout = layoutTitle(title, width);
  const top = titleLayout.bottom + 6;
  const height = top + Math.max(0, ...sizes.map((size) => size.height));
  const parts = [
    `<rect width="${width}" height="${height}" fill="white"/>`,
    ...drawTitle(titleLayout, width),
  ];
  let x = 0;
  figures.forEach((figure, i) => {
    parts.push(figure.trim().replace(/^<svg /, `<svg x="${x}" y="${fmt(top)}" `));
    x += sizes[i]!.width + gap;
  });
  return svgDocument(width, height, parts);
}

export interface ConfusionMatrixChartOptions {
  title: string;
  /** The classes in index order: row r is true class r, column c is predicted class c. */
  classNames: readonly string[];
  /** Counts [true class][predicted class], as ConfusionMatrix.compute() returns them. */
  matrix: readonly (readonly number[])[];
  /**
   * Shade and annotate each cell by its share (with the count under it): of its true class's row
   * ('true': the diagonal is each class's recall), of its predicted column ('pred': precision), or
   * of all samples ('all'), as scikit-learn's ConfusionMatrixDisplay normalizes. Default: counts.
   */
  normalize?: 'true' | 'pred' | 'all';
  /** Axis titles (default 'predicted class' under the columns, 'true class' beside the rows). */
  xLabel?: string;
  yLabel?: string;
  /** Total width in pixels; the cells shrink to fit it. Default: cells sized for their numbers. */
  width?: number;
}

/** White through blue (matplotlib's Blues, as scikit-learn draws confusion matrices) for t in [0, 1]. */
function blues(t: number): string {
  const stops = [
    [247, 251, 255],
    [198, 219, 239],
    [107, 174, 214],
    [33, 113, 181],
    [8, 48, 107],
  ];
  const position = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(position));
  const f = position - i;
  const [r, g, b] = stops[i]!.map((v, k) => Math.round(v + f * (stops[i + 1]![k]! - v)));
  return `rgb(${r},${g},${b})`;
}

/**
 * A confusion matrix as an annotated heat map, as an SVG document: one row per true class, one
 * column per predicted class, each cell shaded by its count (or share, with `normalize`) and
 * labelled with its exact count ("12,544"). Class names label the rows on the left and the columns
 * underneath (turned to read upwards when they are wider than a cell); long names wrap.
 *
 * @example
 * const matrix = new ConfusionMatrix({ numClasses: 3 }); // updated over a test set
 * writeFigure(confusionMatrixChart({ title: 'Test set', classNames: ['cat', 'dog', 'bird'], matrix: matrix.compute() }), 'confusion');
 */
export function confusionMatrixChart(options: ConfusionMatrixChartOptions): string {
  const { classNames, matrix } = options;
  const n = classNames.length;
  if (n === 0) throw new RangeError('confusionMatrixChart: no classes');
  if (matrix.length !== n || matrix.some((row) => row.length !== n))
    throw new RangeError(
      `confusionMatrixChart: expected a ${n} × ${n} matrix (one row and one column per class name), got ${matrix.length} × ${matrix.map((row) => row.length).join('/')}`,
    );
  if (matrix.some((row) => row.some((count) => !Number.isFinite(count) || count < 0)))
    throw new RangeError('confusionMatrixChart: counts must be finite and not negative');

  const rowSums = matrix.map((row) => row.reduce((sum, count) => sum + count, 0));
  const columnSums = classNames.map((_, c) => matrix.reduce((sum, row) => sum + row[c]!, 0));
  const total = rowSums.reduce((sum, count) => sum + count, 0);
  const maxCount = Math.max(0, ...matrix.flat());
  const share = (r: number, c: number): number | undefined => {
    const whole =
      options.normalize === 'true' ? rowSums[r]! : options.normalize === 'pred' ? columnSums[c]! : total;
    return whole > 0 ? matrix[r]![c]! / whole : undefined;
  };
  // Each cell's lines of text: its count, under its share when normalized.
  const cellLines = matrix.map((row, r) =>
    row.map((count, c) => {
      if (options.normalize === undefined) return [formatExact(count)];
      const part = share(r, c);
      return [part === undefined ? '–' : `${(part * 100).toFixed(1)}%`, formatExact(count)];
    }),
  );
  const linesPerCell = options.normalize === undefined ? 1 : 2;
  const widestNumber = Math.max(...cellLines.flat(2).map((line) => measure(line, { size: 1 })));

  const naturalCell = Math.min(96, Math.max(44, widestNumber * 13 + 12, linesPerCell * lineHeight(13) + 12));
  const labelSize = legendSize;
  const rowLabelRoom = Math.min(
    220,
    options.width === undefined ? 220 : options.width * 0.3,
    Math.max(...classNames.map((name) => measure(name, { size: labelSize }))),
  );
  const xTitleText = options.xLabel ?? 'predicted class';
  const yTitleText = options.yLabel ?? 'true class';

  // Class names are set at one size (the smallest any of them needs), so no name looks more important.
  const sameSize = (names: readonly string[], room: number, maxLines: number, minSize = 7): FittedText[] => {
    const fitted = names.map((name) => fitText(name, { size: labelSize }, room, { maxLines, minSize }));
    const size = Math.min(...fitted.map((label) => label.size));
    return names.map((name) => fitText(name, { size }, room, { maxLines, minSize: size }));
  };
  // The cell size depends on the room the row labels and the y title take, which (wrapped to the
  // matrix's height) depends on the cell size: two rounds settle it.
  let cell = naturalCell;
  let yTitle = fitText(yTitleText, { size: axisLabelSize }, n * cell, { maxLines: 2 });
  let rowLabels: FittedText[] = [];
  let left = 0;
  for (let round = 0; round < 2; round++) {
    const rowLines = Math.max(1, Math.floor((cell - 2) / lineHeight(labelSize)));
    rowLabels = sameSize(classNames, rowLabelRoom, Math.min(2, rowLines));
    left = edge + yTitle.height + 8 + Math.max(...rowLabels.map((label) => label.width)) + 6;
    if (options.width !== undefined) cell = Math.max(8, (options.width - left - edge) / n);
    yTitle = fitText(yTitleText, { size: axisLabelSize }, n * cell, { maxLines: 2 });
  }
  const matrixWidth = n * cell;
  const title = layoutTitle(options.title, options.width ?? Math.max(360, left + matrixWidth + edge));
  const xTitle = fitText(xTitleText, { size: axisLabelSize }, Math.max(matrixWidth, 120), { maxLines: 2 });
  // The matrix block (labels included) sits in the middle of a canvas wide enough for the title.
  const width = options.width ?? Math.ceil(Math.max(360, left + matrixWidth + edge, xTitle.width + 2 * edge));
  const shift = Math.max(0, (width - (left + matrixWidth + edge)) / 2);
  const matrixLeft = left + shift;
  const top = title.bottom + 14;
  const matrixBottom = top + matrixWidth;

  // Column labels: across when every name fits its cell, else turned to read upwards.
  const across = sameSize(classNames, cell - 4, 2, 9);
  const horizontal = across.every(
    (label) => label.size >= 9 && label.width <= cell - 4 && label.height <= 2 * lineHeight(labelSize),
  );
  const turnedLines = Math.max(1, Math.floor((cell - 2) / lineHeight(labelSize)));
  const columnLabels = horizontal ? across : sameSize(classNames, 180, Math.min(2, turnedLines));
  const columnBand = 6 + Math.max(...columnLabels.map((label) => (horizontal ? label.height : label.width)));
  const height = Math.ceil(matrixBottom + columnBand + 8 + xTitle.height + edge);

  const parts: string[] = [
    `<rect width="${width}" height="${height}" fill="white"/>`,
    ...drawTitle(title, width),
  ];
  // One size for every cell's numbers: the largest at which the widest line fits across its cell
  // and the lines fit down it.
  const a = ascent(1);
  const d = descent(1);
  const numberSize = Number(
    Math.min(
      13,
      (cell - 6) / Math.max(widestNumber, 1e-9),
      (cell - 4) / (linesPerCell * (a + d) + (linesPerCell - 1) * 0.2),
    ).toFixed(2),
  );
  const numberLines = (count: number) => (a + d) * numberSize + (count - 1) * lineHeight(numberSize);
  matrix.forEach((row, r) => {
    row.forEach((count, c) => {
      const x = matrixLeft + c * cell;
      const y = top + r * cell;
      const shade =
        options.normalize === undefined ? (maxCount > 0 ? count / maxCount : 0) : (share(r, c) ?? 0);
      parts.push(
        `<rect class="cell" data-row="${r}" data-column="${c}" data-count="${count}" x="${fmt(x)}" y="${fmt(y)}" width="${fmt(cell)}" height="${fmt(cell)}" fill="${blues(shade)}" stroke="white" stroke-width="1"/>`,
      );
      const lines = cellLines[r]![c]!;
      const firstBaseline = y + (cell - numberLines(lines.length)) / 2 + a * numberSize;
      lines.forEach((line, i) =>
        parts.push(
          textElement(x + cell / 2, firstBaseline + i * lineHeight(numberSize), line, {
            size: numberSize,
            fill: shade > 0.55 ? 'white' : '#222',
          }),
        ),
      );
    });
  });
  parts.push(
    `<rect class="plot-area" x="${fmt(matrixLeft)}" y="${fmt(top)}" width="${fmt(matrixWidth)}" height="${fmt(matrixWidth)}" fill="none" stroke="#444"/>`,
  );
  // Row labels, right-aligned against the matrix and centred on their row.
  rowLabels.forEach((label, r) => {
    const firstBaseline = top + r * cell + (cell - label.height) / 2 + ascent(label.size);
    parts.push(...textLines(matrixLeft - 6, firstBaseline, label, { anchor: 'end' }));
  });
  columnLabels.forEach((label, c) => {
    const centre = matrixLeft + (c + 0.5) * cell;
    if (horizontal) {
      parts.push(...textLines(centre, matrixBottom + 6 + ascent(label.size), label, {}));
    } else {
      // Turned lines stack to the right of the first: centre the block on the column.
      const step = lineHeight(label.size);
      const x = centre - (descent(label.size) - ascent(label.size) + (label.lines.length - 1) * step) / 2;
      parts.push(...textLines(x, matrixBottom + 6, label, { anchor: 'end', rotate: -90 }));
    }
  });
  const xTitleCentre = Math.min(
    Math.max(matrixLeft + matrixWidth / 2, edge + xTitle.width / 2),
    width - edge - xTitle.width / 2,
  );
  parts.push(...textLines(xTitleCentre, matrixBottom + columnBand + 8 + ascent(xTitle.size), xTitle, {}));
  parts.push(
    ...textLines(shift + edge + ascent(yTitle.size), top + matrixWidth / 2, yTitle, { rotate: -90 }),
  );
  return svgDocument(width, height, parts);
}
