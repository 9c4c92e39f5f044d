/**
 * Figures a reader can trust: every text element of every chart kind lies inside the canvas and
 * clear of the others, legends stay off the data, numbers print exactly, axes that count get
 * whole-number ticks, and a series under another still shows. Text extents are computed here from
 * the font's own advances (as resvg lays text out, see plot-font-metrics.test.ts) and each element's
 * anchor and rotation, independently of how the charts placed them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  barChart,
  confusionMatrixChart,
  formatExact,
  gridFigure,
  lineChart,
  sideBySideFigure,
  type Series,
} from '../src/plot/charts.js';
import { svgToPng, writeFigure } from '../src/plot/figure.js';
import { fontMetrics, textWidth } from '../src/plot/font-metrics.js';

interface Box {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

interface TextItem {
  content: string;
  box: Box;
  size: number;
  weight: 'normal' | 'bold';
  x: number;
  y: number;
  rotate: number;
}

function attribute(tag: string, name: string): string | undefined {
  return new RegExp(`\\s${name}="([^"]*)"`).exec(tag)?.[1];
}

function unescapeXml(text: string): string {
  return text.replace(
    /&(lt|gt|amp|quot|apos);/g,
    (_, entity: string) => ({ lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" })[entity]!,
  );
}

/**
 * The elements matching `pattern` (whose first group is the tag's attributes), each with the
 * offset of the nested <svg x y> documents it sits in (a side-by-side figure nests its panels).
 */
function elements(svg: string, pattern: string): { match: RegExpMatchArray; dx: number; dy: number }[] {
  const offsets: { dx: number; dy: number }[] = [];
  const found: { match: RegExpMatchArray; dx: number; dy: number }[] = [];
  for (const match of svg.matchAll(new RegExp(`<svg\\b([^>]*)>|</svg>|${pattern}`, 'g'))) {
    const outer = offsets.at(-1) ?? { dx: 0, dy: 0 };
    if (match[0].startsWith('<svg')) {
      offsets.push({
        dx: outer.dx + Number(attribute(match[1]!, 'x') ?? 0),
        dy: outer.dy + Number(attribute(match[1]!, 'y') ?? 0),
      });
    } else if (match[0] === '</svg>') {
      offsets.pop();
    } else {
      found.push({ match: [match[0], ...match.slice(2)] as unknown as RegExpMatchArray, ...outer });
    }
  }
  return found;
}

/** Each <text> element's extent: advance width by anchor, font ascent and descent, rotation. */
function textItems(svg: string): TextItem[] {
  const { ascent, descent } = fontMetrics().vertical;
  return elements(svg, '<text\\b([^>]*)>([^<]*)</text>').map(({ match, dx, dy }) => {
    const tag = match[1]!;
    const content = unescapeXml(match[2]!);
    const x = Number(attribute(tag, 'x')) + dx;
    const y = Number(attribute(tag, 'y')) + dy;
    const size = Number(attribute(tag, 'font-size'));
    const weight = attribute(tag, 'font-weight') === 'bold' ? 'bold' : 'normal';
    const anchor = attribute(tag, 'text-anchor') ?? 'start';
    const width = textWidth(content, size, weight);
    const left = x - (anchor === 'middle' ? width / 2 : anchor === 'end' ? width : 0);
    let box: Box = { left, right: left + width, top: y - ascent * size, bottom: y + descent * size };
    const rotation = /rotate\(([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\)/.exec(attribute(tag, 'transform') ?? '');
    const rotate = rotation ? Number(rotation[1]) : 0;
    if (rotation) {
      assert.equal(rotate, -90, 'only quarter turns are laid out');
      const [cx, cy] = [Number(rotation[2]) + dx, Number(rotation[3]) + dy];
      // A -90° turn about (cx, cy) maps (dx, dy) to (dy, -dx).
      box = {
        left: cx + (box.top - cy),
        right: cx + (box.bottom - cy),
        top: cy - (box.right - cx),
        bottom: cy - (box.left - cx),
      };
    }
    return { content, box, size, weight, x, y, rotate };
  });
}

/** The outermost document's size. */
function viewBox(svg: string): { width: number; height: number } {
  const values = /viewBox="0 0 ([\d.]+) ([\d.]+)"/.exec(svg);
  assert.ok(values, 'the SVG has a viewBox');
  return { width: Number(values[1]), height: Number(values[2]) };
}

function rectangles(svg: string, className: string): Box[] {
  return [...svg.matchAll(new RegExp(`<rect class="${className}"([^>]*)/>`, 'g'))].map((match) => {
    const [x, y, width, height] = ['x', 'y', 'width', 'height'].map((name) =>
      Number(attribute(match[1]!, name)),
    );
    return { left: x!, top: y!, right: x! + width!, bottom: y! + height! };
  });
}

const overlap = (a: Box, b: Box, slack = 0.5) =>
  a.left < b.right - slack &&
  b.left < a.right - slack &&
  a.top < b.bottom - slack &&
  b.top < a.bottom - slack;

const describe = (item: TextItem) => `${JSON.stringify(item.content)} at (${item.x}, ${item.y})`;

/**
 * The checks every chart must pass: texts inside the canvas, no two texts overlapping, the legend
 * box clear of the plot area, and every text inside the legend box within it.
 */
function assertReadable(svg: string, name: string): TextItem[] {
  const { width, height } = viewBox(svg);
  const items = textItems(svg);
  assert.ok(items.length > 0, `${name}: has text`);
  for (const item of items) {
    const { box } = item;
    assert.ok(
      box.left >= -0.01 && box.top >= -0.01 && box.right <= width + 0.01 && box.bottom <= height + 0.01,
      `${name}: ${describe(item)} spans [${box.left.toFixed(1)}, ${box.right.toFixed(1)}] × [${box.top.toFixed(1)}, ${box.bottom.toFixed(1)}], outside ${width} × ${height}`,
    );
  }
  items.forEach((a, i) =>
    items
      .slice(i + 1)
      .forEach((b) => assert.ok(!overlap(a.box, b.box), `${name}: ${describe(a)} overlaps ${describe(b)}`)),
  );
  const plots = rectangles(svg, 'plot-area');
  const legends = rectangles(svg, 'legend-box');
  for (const legend of legends) {
    assert.ok(
      legend.left >= 0 && legend.right <= width && legend.top >= 0 && legend.bottom <= height,
      `${name}: legend inside`,
    );
    for (const plot of plots)
      assert.ok(!overlap(legend, plot, 0), `${name}: legend box overlaps the plot area`);
    legends.forEach((other) =>
      assert.ok(other === legend || !overlap(legend, other), `${name}: legends overlap`),
    );
  }
  return items;
}

const longTitle =
  'Validation accuracy of every freezing strategy against the number of training examples per class, averaged over five seeds, with one standard deviation';
const longEntries = [
  'fine-tuned from a network pretrained on digits 0–4 with discriminative learning rates',
  'trained from scratch',
  'Gaussian process (Bayesian) with an expected-improvement acquisition',
  'head only',
];

function curves(count: number, names: readonly string[], scale = 1): Series[] {
  return Array.from({ length: count }, (_, k) => ({
    name: names[k % names.length]! + (k >= names.length ? ` (${k})` : ''),
    x: [1, 2, 3, 4, 5, 6],
    y: [1, 2, 3, 4, 5, 6].map((e) => scale * (50 + 40 * (1 - Math.exp(-e / (1 + k))))),
  }));
}

const confusionCounts = [
  [12544, 31, 7],
  [120, 9876, 0],
  [3, 45, 1234],
];
const tenClasses = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck with a very long class name that must wrap',
];
/** A mostly diagonal 10-class matrix with counts that differ cell by cell. */
function tenClassCounts(): number[][] {
  return tenClasses.map((_, r) => tenClasses.map((_, c) => (r === c ? 900 + r * 11 : (r * 7 + c * 3) % 40)));
}

/** Every chart kind, at ordinary and awkward sizes and contents. */
function gallery(): { name: string; svg: string }[] {
  return [
    {
      name: 'line, epochs',
      svg: lineChart({
        title: 'Convergence with 10 examples per class',
        xLabel: 'epoch',
        yLabel: 'validation accuracy (%)',
        series: curves(2, ['fine-tuned', 'from scratch']),
        yRange: [0, 100],
      }),
    },
    {
      name: 'line, long title and legend entries',
      svg: lineChart({
        title: longTitle,
        xLabel: 'epoch',
        yLabel: 'validation accuracy (%)',
        series: curves(4, longEntries),
      }),
    },
    {
      name: 'line, many series, large numbers, narrow',
      svg: lineChart({
        width: 420,
        height: 300,
        title: longTitle,
        xLabel: 'training step',
        yLabel: 'parameters updated so far (a long axis label that needs more room than there is)',
        series: curves(12, longEntries, 123456),
      }),
    },
    {
      name: 'log-x line with error bars',
      svg: lineChart({
        width: 940,
        title: 'Validation accuracy against learning rate (Adam, 3 epochs, 2000 MNIST digits)',
        xLabel: 'learning rate',
        yLabel: 'validation accuracy (%)',
        xScale: 'log',
        series: [32, 64].map((batch, k) => ({
          name: `batch size ${batch}`,
          x: [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1],
          y: [40, 60, 80, 90, 85, 50, 10].map((v) => v + 3 * k),
          error: [2, 3, 2, 1, 2, 5, 4],
        })),
      }),
    },
    {
      name: 'log-y line',
      svg: lineChart({
        title: 'Training loss',
        xLabel: 'step',
        yLabel: 'loss',
        yScale: 'log',
        series: [{ name: 'loss', x: [0, 100, 200, 300], y: [2.3, 0.5, 0.05, 0.004] }],
      }),
    },
    {
      name: 'log axes over 24 decades, narrow, no title',
      svg: lineChart({
        width: 300,
        height: 260,
        title: '',
        xLabel: 'x',
        yLabel: 'y',
        xScale: 'log',
        yScale: 'log',
        series: [{ name: 'a', x: [1e-12, 1, 1e12], y: [1e-12, 1, 1e12] }],
      }),
    },
    {
      name: 'bar, kernels',
      svg: barChart({
        title: 'Parameters of one block, 16 → 16 channels (from tensile models)',
        yLabel: 'parameters',
        categories: ['receptive field 5×5', 'receptive field 7×7'],
        groups: [
          { name: 'stacked 3×3', values: [4608, 6912] },
          { name: 'one large kernel', values: [6400, 12544] },
        ],
      }),
    },
    {
      name: 'bar, one group, long category names, decimals',
      svg: barChart({
        title: 'Test accuracy by freezing strategy',
        yLabel: 'test accuracy (%)',
        categories: [
          'headOnly',
          'fineTune with a very long category label',
          'gradualUnfreezing',
          'discriminativeRates',
          'scratch',
        ],
        groups: [{ name: 'test accuracy after the last epoch', values: [71.4, 88.25, 90.1, 89.9, 62.5] }],
      }),
    },
    {
      name: 'grouped bar, many groups, huge numbers, narrow',
      svg: barChart({
        width: 480,
        title: longTitle,
        yLabel: 'operations per second (a long label)',
        categories: ['reference backend', 'wasm', 'native'],
        groups: longEntries.concat(['fifth group', 'sixth group with a name']).map((name, g) => ({
          name,
          values: [123456789 * (g + 1), 12544 + g, 987654321012],
        })),
      }),
    },
    {
      name: 'bar, negative values',
      svg: barChart({
        title: 'Change in test accuracy against training from scratch (points)',
        yLabel: 'change (points)',
        categories: ['headOnly', 'fineTune', 'gradual', 'scratch'],
        groups: [{ name: 'change', values: [-3.4, 12.5, 7.25, 0] }],
      }),
    },
    {
      name: 'bar, log scale',
      svg: barChart({
        title: 'Step time by backend',
        yLabel: 'milliseconds',
        yScale: 'log',
        categories: ['reference', 'wasm', 'native'],
        groups: [
          { name: 'forward', values: [1234.5, 45.6, 0.78] },
          { name: 'backward', values: [23456.5, 78.9, 1.23] },
        ],
      }),
    },
    {
      name: 'bar, with 95% intervals, some reaching past 100',
      svg: barChart({
        title: 'Test accuracy by strategy (mean and 95% interval over 5 seeds)',
        yLabel: 'test accuracy (%)',
        categories: ['10 per class', '30 per class', '100 per class'],
        groups: [
          { name: 'fine-tuned', values: [92.04, 96.2, 98.7] },
          { name: 'from scratch', values: [87.8, 94.7, 95.7] },
        ],
        errors: [
          [3.1, 1.2, 4.5],
          [6.25, 0.4, 0],
        ],
      }),
    },
    {
      name: 'heat-map grid',
      svg: gridFigure(
        'Max pooling and average pooling of a 4×4 input with a 2×2 window and stride 2, side by side',
        [
          {
            title: 'input, with a panel title longer than its panel',
            values: Array.from({ length: 16 }, (_, i) => i * 1000.25),
            rows: 4,
            columns: 4,
          },
          { title: 'max', values: [5001, 7003, 13009, 15011], rows: 2, columns: 2 },
          { title: 'average', values: [2500.5, 4500.5, 10500.5, 12500.5], rows: 2, columns: 2 },
        ],
        { decimals: 2 },
      ),
    },
    {
      name: 'heat-map grid, one small panel',
      svg: gridFigure('x̂ = (x − μ)/√(σ² + ε) for one 3×3 patch of the first image', [
        { title: '', values: [-1.234, 0.5, 2.25, -0.75, 0, 1, 12544, -3, 4], rows: 3, columns: 3 },
      ]),
    },
    {
      name: 'confusion matrix, counts in the thousands',
      svg: confusionMatrixChart({
        title: 'Test set, 3 classes',
        classNames: ['cat', 'dog', 'bird'],
        matrix: confusionCounts,
      }),
    },
    {
      name: 'confusion matrix, ten classes with a long name, normalized over true classes',
      svg: confusionMatrixChart({
        title: `CIFAR-10 test set: ${longTitle}`,
        classNames: tenClasses,
        matrix: tenClassCounts(),
        normalize: 'true',
      }),
    },
    {
      name: 'confusion matrix, narrow, long names, an empty class, normalized over predictions',
      svg: confusionMatrixChart({
        width: 360,
        title: 'Narrow',
        classNames: [...longEntries, 'never seen'],
        matrix: [
          [5, 0, 1, 0, 0],
          [2, 12544, 0, 3, 0],
          [0, 0, 0, 0, 0],
          [1, 1, 1, 987654, 0],
          [0, 0, 0, 0, 0],
        ],
        normalize: 'pred',
        xLabel: 'predicted class (the argmax of the model’s scores)',
        yLabel: 'true class (from the labels file)',
      }),
    },
    {
      name: 'side by side: grids and line charts under one long title',
      svg: sideBySideFigure(`Batch norm of one channel, step by step: ${longTitle}`, [
        gridFigure('x (conv output)', [{ title: '', values: [1, 2, 3, 4], rows: 2, columns: 2 }], {
          decimals: 2,
        }),
        gridFigure(
          'x̂ = (x − μ)/√(σ² + ε)',
          [{ title: '', values: [-1.34, -0.45, 0.45, 1.34], rows: 2, columns: 2 }],
          {
            decimals: 2,
          },
        ),
        lineChart({
          width: 360,
          title: 'a',
          xLabel: 'epoch',
          yLabel: 'loss',
          series: curves(3, longEntries),
        }),
      ]),
    },
  ];
}

test('charts: every text of every chart kind lies inside the canvas and clear of the others', () => {
  for (const { name, svg } of gallery()) assertReadable(svg, name);
});

test('charts: long titles wrap rather than run off; legends move below when too wide for the side', () => {
  const svg = lineChart({
    title: longTitle,
    xLabel: 'epoch',
    yLabel: 'accuracy',
    series: curves(4, longEntries),
  });
  const items = textItems(svg);
  const titleLines = items.filter((item) => item.weight === 'bold');
  assert.ok(titleLines.length >= 2, 'the title is on more than one line');
  assert.equal(
    titleLines.map((item) => item.content).join(' '),
    longTitle,
    'every word of the title is there, in order',
  );
  const [legend] = rectangles(svg, 'legend-box');
  const [plot] = rectangles(svg, 'plot-area');
  assert.ok(legend && plot && legend.top >= plot.bottom, 'the legend is below the plot');
  // Short entries fit beside the plot, right of it.
  const side = lineChart({ title: 't', xLabel: 'epoch', yLabel: 'accuracy', series: curves(2, ['a', 'b']) });
  const [sideLegend] = rectangles(side, 'legend-box');
  const [sidePlot] = rectangles(side, 'plot-area');
  assert.ok(sideLegend && sidePlot && sideLegend.left >= sidePlot.right);
});

test('charts: bar labels are exact, with thousands separators', () => {
  const svg = gallery().find((figure) => figure.name === 'bar, kernels')!.svg;
  const labels = textItems(svg).map((item) => item.content);
  for (const value of ['4,608', '6,400', '6,912', '12,544'])
    assert.ok(labels.includes(value), `${value} in ${labels}`);
  assert.ok(!labels.includes('12540'));
  const decimals = textItems(gallery().find((figure) => figure.name.startsWith('bar, one group'))!.svg).map(
    (item) => item.content,
  );
  for (const value of ['71.4', '88.25', '90.1', '62.5']) assert.ok(decimals.includes(value), value);
  const huge = textItems(gallery().find((figure) => figure.name.startsWith('grouped bar'))!.svg).map(
    (item) => item.content,
  );
  assert.ok(huge.includes('987,654,321,012') && huge.includes('12,549'), 'large and small values exact');
});

test('charts: bar intervals are drawn as capped whiskers, inside the frame, with the label beyond them', () => {
  const svg = gallery().find((figure) => figure.name.startsWith('bar, with 95% intervals'))!.svg;
  const whiskers = [...svg.matchAll(/<g class="error-bar"[^>]*>(.*?)<\/g>/g)].map((match) =>
    [...match[1]!.matchAll(/y1="([\d.]+)" y2="([\d.]+)"/g)].map((line) => [Number(line[1]), Number(line[2])]),
  );
  assert.equal(whiskers.length, 5, 'every bar with a non-zero interval, and no other');
  const frame = rectangles(svg, 'plot-area')[0]!;
  for (const [vertical] of whiskers) {
    assert.ok(Math.min(...vertical!) >= frame.top - 0.5, 'the whisker stays inside the plot');
  }
  // 98.7 ± 4.5 reaches past 100: its label sits above the whisker's top, not on the bar.
  const label = textItems(svg).find((item) => item.content === '98.7')!;
  const tallest = Math.min(...whiskers.map(([vertical]) => Math.min(...vertical!)));
  assert.ok(label.y < tallest, `label at ${label.y}, whisker top at ${tallest}`);
});

test('charts: an axis of whole numbers (epochs, trials) gets whole-number ticks only', () => {
  const tickLabels = (svg: string) => {
    const [plot] = rectangles(svg, 'plot-area');
    // x tick labels: the texts just under the plot area.
    return textItems(svg)
      .filter((item) => item.rotate === 0 && item.box.top > plot!.bottom && item.box.top < plot!.bottom + 12)
      .map((item) => item.content);
  };
  for (const epochs of [2, 3, 4, 7, 12, 30]) {
    const x = Array.from({ length: epochs }, (_, i) => i + 1);
    const svg = lineChart({
      title: `${epochs} epochs`,
      xLabel: 'epoch',
      yLabel: 'accuracy',
      series: [{ name: 'a', x, y: x.map((e) => 1 - 1 / (e + 1)) }],
    });
    const labels = tickLabels(svg);
    assert.ok(labels.length >= 2, `${epochs} epochs: ticks ${labels}`);
    for (const label of labels) assert.match(label, /^\d+$/, `${epochs} epochs: tick ${label}`);
  }
  // Continuous x values keep fractional ticks where they are the nice ones.
  const continuous = lineChart({
    title: 'fractions',
    xLabel: 'time (s)',
    yLabel: 'y',
    series: [{ name: 'a', x: [0.5, 1.25, 2.5], y: [1, 2, 3] }],
  });
  assert.ok(
    tickLabels(continuous).some((label) => label.includes('.')),
    `${tickLabels(continuous)}`,
  );
  // The option turns it off for an integer axis that is really continuous.
  const forced = lineChart({
    title: 'forced',
    xLabel: 'x',
    yLabel: 'y',
    xIntegerTicks: false,
    series: [{ name: 'a', x: [1, 2, 3], y: [1, 2, 3] }],
  });
  assert.ok(
    tickLabels(forced).some((label) => label.includes('.')),
    `${tickLabels(forced)}`,
  );
});

interface Mark {
  shape: string;
  x: number;
  y: number;
  size: number;
}

/** The markers of one series group, with their centres and sizes. */
function seriesMarks(svg: string, name: string): { marks: Mark[]; dash: string | undefined } {
  const group = new RegExp(`<g class="series" data-series="${name}">([\\s\\S]*?)</g>`).exec(svg);
  assert.ok(group, `series ${name} drawn`);
  const marks = [
    ...group[1]!.matchAll(/<(circle|polygon|path) class="marker" data-shape="([\w-]+)"([^>]*)\/>/g),
  ].map((match) => {
    const shape = match[2]!;
    const tag = match[3]!;
    if (match[1] === 'circle') {
      return {
        shape,
        x: Number(attribute(tag, 'cx')),
        y: Number(attribute(tag, 'cy')),
        size: Number(attribute(tag, 'r')),
      };
    }
    const numbers = (attribute(tag, match[1] === 'polygon' ? 'points' : 'd') ?? '')
      .match(/-?[\d.]+/g)!
      .map(Number);
    const xs = numbers.filter((_, i) => i % 2 === 0);
    const ys = numbers.filter((_, i) => i % 2 === 1);
    return {
      shape,
      x: (Math.min(...xs) + Math.max(...xs)) / 2,
      y: (Math.min(...ys) + Math.max(...ys)) / 2,
      size: (Math.max(...xs) - Math.min(...xs)) / 2,
    };
  });
  const dash = /<polyline[^>]*stroke-dasharray="([^"]+)"/.exec(group[1]!)?.[1];
  return { marks, dash };
}

test('charts: a series lying under another still shows, and the legend shows its marker', () => {
  const x = [1, 2, 3, 4, 5];
  const svg = lineChart({
    title: 'Two runs that diverged identically',
    xLabel: 'epoch',
    yLabel: 'validation accuracy (%)',
    series: [
      { name: 'no BN, lr 0.1', x, y: [10, 10, 10, 10, 10] },
      { name: 'no BN, lr 0.3', x, y: [10, 10, 10, 10, 10] },
      { name: 'BN, lr 0.1', x, y: [80, 90, 93, 95, 96] },
    ],
    yRange: [0, 100],
  });
  assertReadable(svg, 'coincident');
  const lower = seriesMarks(svg, 'no BN, lr 0.1');
  const upper = seriesMarks(svg, 'no BN, lr 0.3');
  const apart = seriesMarks(svg, 'BN, lr 0.1');
  assert.equal(lower.marks.length, 5);
  assert.equal(upper.marks.length, 5);
  assert.notEqual(lower.marks[0]!.shape, upper.marks[0]!.shape, 'distinct marker shapes');
  lower.marks.forEach((mark, i) => {
    const over = upper.marks[i]!;
    assert.ok(Math.abs(mark.x - over.x) < 1 && Math.abs(mark.y - over.y) < 1, 'the points coincide');
    assert.ok(
      mark.size > over.size + 1,
      `the covered marker is larger (${mark.size} against ${over.size}), so it rings the one on top`,
    );
  });
  assert.ok(upper.dash !== undefined, 'the line on top is dashed, so the one below shows through');
  assert.equal(lower.dash, undefined);
  assert.equal(apart.dash, undefined, 'a series that covers nothing stays solid');
  assert.ok(
    apart.marks.every((mark) => mark.size === apart.marks[0]!.size),
    'markers that cover nothing and lie under nothing keep one size',
  );
  // The legend repeats each series' marker shape and dash.
  const legend = /<g class="legend">([\s\S]*?)<\/g>/.exec(svg)![1]!;
  const legendShapes = [...legend.matchAll(/data-shape="([\w-]+)"/g)].map((match) => match[1]);
  assert.deepEqual(legendShapes, [lower.marks[0]!.shape, upper.marks[0]!.shape, apart.marks[0]!.shape]);
  assert.ok(legend.includes(`stroke-dasharray="${upper.dash}"`));
});

test('charts: figures render to PNG at twice their size', () => {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-plot-'));
  try {
    for (const { name, svg } of gallery().slice(0, 3)) {
      const files = writeFigure(svg, path.join(directory, name.replace(/[^\w]+/g, '-')));
      const png = fs.readFileSync(files.png);
      assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47], 'a PNG');
      // Width in the IHDR chunk: twice the SVG width (the scale figures are rendered at).
      assert.equal(png.readUInt32BE(16), 2 * viewBox(svg).width);
    }
    assert.ok(svgToPng(gallery()[0]!.svg, 1).length > 1000);
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
  }
});

/** A confusion matrix's cells (data-row = true class, data-column = predicted) and the texts inside each. */
function confusionCells(svg: string) {
  const items = textItems(svg);
  return [...svg.matchAll(/<rect class="cell"([^>]*)\/>/g)].map((match) => {
    const tag = match[1]!;
    const [x, y, size] = ['x', 'y', 'width'].map((name) => Number(attribute(tag, name)));
    const inside = items.filter(
      (item) =>
        item.box.left >= x! - 0.01 &&
        item.box.right <= x! + size! + 0.01 &&
        item.box.top >= y! - 0.01 &&
        item.box.bottom <= y! + size! + 0.01,
    );
    return {
      row: Number(attribute(tag, 'data-row')),
      column: Number(attribute(tag, 'data-column')),
      box: { left: x!, top: y!, right: x! + size!, bottom: y! + size! },
      texts: inside.sort((a, b) => a.y - b.y).map((item) => item.content),
    };
  });
}

test('confusion matrix: row = true class, column = predicted, each cell its exact count inside it', () => {
  const svg = gallery().find((figure) => figure.name.startsWith('confusion matrix, counts'))!.svg;
  const cells = confusionCells(svg);
  assert.equal(cells.length, 9);
  for (const cell of cells)
    assert.deepEqual(
      cell.texts,
      [formatExact(confusionCounts[cell.row]![cell.column]!)],
      JSON.stringify(cell),
    );
  const texts = textItems(svg).map((item) => item.content);
  for (const count of ['12,544', '9,876', '1,234', '0']) assert.ok(texts.includes(count), count);
  assert.ok(!texts.includes('12544'));
  // Rows go down in class order, columns across; the class names sit beside the rows and under the columns.
  const cellAt = (row: number, column: number) => cells.find((c) => c.row === row && c.column === column)!;
  assert.ok(cellAt(1, 0).box.top > cellAt(0, 0).box.top && cellAt(0, 1).box.left > cellAt(0, 0).box.left);
  const items = textItems(svg);
  const [plot] = rectangles(svg, 'plot-area');
  ['cat', 'dog', 'bird'].forEach((name, k) => {
    const labels = items.filter((item) => item.content === name);
    const rowLabel = labels.find((item) => item.box.right <= plot!.left);
    const columnLabel = labels.find((item) => item.box.top >= plot!.bottom);
    assert.ok(rowLabel && columnLabel, `${name} labels a row and a column`);
    const row = cellAt(k, 0).box;
    const column = cellAt(0, k).box;
    assert.ok(rowLabel.box.top >= row.top && rowLabel.box.bottom <= row.bottom, `${name} beside row ${k}`);
    assert.ok(
      columnLabel.box.left >= column.left && columnLabel.box.right <= column.right,
      `${name} under column ${k}`,
    );
  });
  // Axis titles: the predicted one under the columns, the true one turned beside the rows.
  const predicted = items.find((item) => item.content === 'predicted class')!;
  const truth = items.find((item) => item.content === 'true class')!;
  assert.ok(predicted.box.top > plot!.bottom && predicted.rotate === 0);
  assert.ok(truth.box.right < plot!.left && truth.rotate === -90);
  // The largest count is shaded darkest, and its number is white on it.
  assert.match(svg, /data-row="0" data-column="0" data-count="12544"[^>]*fill="rgb\(8,48,107\)"/);
  assert.match(svg, /fill="white">12,544<\/text>/);
});

test('confusion matrix: long class names wrap and turn to fit, every word kept; normalized cells show the share over the count', () => {
  const svg = gallery().find((figure) => figure.name.startsWith('confusion matrix, ten classes'))!.svg;
  const counts = tenClassCounts();
  const cells = confusionCells(svg);
  assert.equal(cells.length, 100);
  for (const cell of cells) {
    const count = counts[cell.row]![cell.column]!;
    const rowSum = counts[cell.row]!.reduce((sum, v) => sum + v, 0);
    assert.deepEqual(cell.texts, [`${((100 * count) / rowSum).toFixed(1)}%`, formatExact(count)]);
  }
  const items = textItems(svg);
  const [plot] = rectangles(svg, 'plot-area');
  const long = tenClasses.at(-1)!;
  const rowLines = items.filter(
    (item) => item.box.right <= plot!.left && item.rotate === 0 && long.includes(item.content),
  );
  const columnLines = items.filter(
    (item) => item.box.top >= plot!.bottom && item.rotate === -90 && long.includes(item.content),
  );
  assert.equal(
    rowLines.map((item) => item.content).join(' '),
    long,
    'the row label wraps, every word in order',
  );
  assert.equal(columnLines.map((item) => item.content).join(' '), long, 'the column label too, turned');
  assert.ok(rowLines.length >= 2 && columnLines.length >= 2);
  // Columns too narrow for the names: every column label is turned.
  for (const name of tenClasses.slice(0, -1)) {
    const column = items.find((item) => item.content === name && item.box.top >= plot!.bottom)!;
    assert.equal(column.rotate, -90, name);
  }
  // Normalized over predictions: an empty class's column has no share (–), its row keeps its counts.
  const narrow = gallery().find((figure) => figure.name.startsWith('confusion matrix, narrow'))!.svg;
  const narrowCells = confusionCells(narrow);
  const at = (row: number, column: number) => narrowCells.find((c) => c.row === row && c.column === column)!;
  assert.deepEqual(at(1, 1).texts, [`${((100 * 12544) / (12544 + 1)).toFixed(1)}%`, '12,544']);
  assert.deepEqual(at(3, 3).texts, [`${((100 * 987654) / (987654 + 3)).toFixed(1)}%`, '987,654']);
  assert.deepEqual(at(0, 4).texts, ['–', '0']);
  assert.deepEqual(at(2, 0).texts, ['0.0%', '0']);
  assert.equal(viewBox(narrow).width, 360);
});

test('confusion matrix: refuses a matrix that does not match its class names, and renders to PNG', () => {
  assert.throws(
    () => confusionMatrixChart({ title: 't', classNames: ['a', 'b'], matrix: [[1, 2]] }),
    /expected a 2 × 2 matrix/,
  );
  assert.throws(
    () => confusionMatrixChart({ title: 't', classNames: ['a'], matrix: [[-1]] }),
    /finite and not negative/,
  );
  assert.throws(() => confusionMatrixChart({ title: 't', classNames: [], matrix: [] }), /no classes/);
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-plot-'));
  try {
    const svg = gallery().find((figure) => figure.name.startsWith('confusion matrix, counts'))!.svg;
    const files = writeFigure(svg, path.join(directory, 'confusion'));
    const png = fs.readFileSync(files.png);
    assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47], 'a PNG');
    assert.equal(png.readUInt32BE(16), 2 * viewBox(svg).width);
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
  }
});
