/**
 * Helpers the explain topics share: MNIST subsets, a recorded training with its test accuracy,
 * text tables and number formatting.
 */
import {
  Adam,
  barChart,
  BatchNorm,
  DataLoader,
  evaluate,
  filterClasses,
  fit,
  loadMnist,
  noGrad,
  Random,
  RunTracker,
  splitDataset,
  subset,
  takePerClass,
  Tensor,
  type BarChartOptions,
  type History,
  type ImageDataset,
  type JsonObject,
  type Module,
  type Optimizer,
} from '../../src/index.js';
import {
  accuracyCell,
  compareArms,
  formatDifference,
  mean,
  percentagePoints,
  tInterval,
  verdict,
  type Arm,
  type DifferenceUnit,
} from './statistics.js';
import type { ExplainContext, ExplainTable } from './types.js';

export interface MnistSplit {
  train: ImageDataset;
  test: ImageDataset;
}

/**
 * A seeded, stratified MNIST split of `trainCount` training and `testCount` test digits (optionally
 * only some classes, relabelled 0..k-1), disjoint from each other.
 */
export function mnistSplit(
  trainCount: number,
  testCount: number,
  options: { classes?: number[]; seed?: number } = {},
): MnistSplit {
  let data = loadMnist();
  if (options.classes !== undefined) data = filterClasses(data, options.classes, { relabel: true });
  const random = new Random(options.seed ?? 1);
  const { train, test } = splitDataset(data, testCount, random, { stratify: true });
  const perClass = Math.max(1, Math.floor(trainCount / data.classes));
  return { train: takePerClass(train, perClass, random), test };
}

/** `count` examples spread evenly through a dataset (mnistSplit's training sets are grouped by class). */
export function spreadSample(dataset: ImageDataset, count: number): ImageDataset {
  const step = dataset.count / Math.min(count, dataset.count);
  return subset(
    dataset,
    Array.from({ length: Math.min(count, dataset.count) }, (_, i) => Math.floor(i * step)),
  );
}

export interface TrainingResult {
  history: History;
  testAccuracy: number;
  testLoss: number;
  seconds: number;
  runId: number;
  /** Validation accuracy per epoch (when validation data was given). */
  curve: number[];
}

/**
 * Trains a model as a child run of the topic (so it appears in the dashboard beside the topic) and
 * measures its test accuracy.
 */
export async function recordedTraining(
  context: ExplainContext,
  options: {
    name: string;
    model: Module;
    train: ImageDataset;
    test: ImageDataset;
    epochs: number;
    optimizer?: Optimizer;
    lr?: number;
    batchSize?: number;
    seed?: number;
    config?: JsonObject;
    /** Record validation accuracy on the test split every epoch (default true). */
    validate?: boolean;
  },
): Promise<TrainingResult> {
  const started = performance.now();
  const tracker = await RunTracker.start(context.store, {
    name: options.name,
    kind: 'fit',
    parentId: context.runId,
    config: { ...(options.config ?? {}), trainSamples: options.train.count, testSamples: options.test.count },
  });
  const optimizer = options.optimizer ?? new Adam(options.model.parameters(), { lr: options.lr ?? 1e-3 });
  let history: History;
  try {
    history = fit(options.model, options.train, {
      optimizer,
      epochs: options.epochs,
      batchSize: options.batchSize ?? 64,
      seed: options.seed ?? 1,
      progress: false,
      callbacks: [tracker],
      ...(options.validate === false ? {} : { validationData: options.test }),
    });
  } catch (error) {
    await tracker.fail(error);
    await tracker.close();
    throw error;
  }
  recalibrateBatchNorm(options.model, options.train, options.seed ?? 1);
  const result = evaluate(options.model, options.test);
  tracker.updateSummary({
    testAccuracy: result.accuracy,
    testLoss: Number.isFinite(result.loss) ? result.loss : null,
  });
  await tracker.close();
  const seconds = (performance.now() - started) / 1000;
  context.log(`  ${options.name}: test accuracy ${percent(result.accuracy)} (${seconds.toFixed(0)} s)`);
  return {
    history,
    testAccuracy: result.accuracy,
    testLoss: result.loss,
    seconds,
    runId: tracker.runId,
    curve: history.epochs.map((logs) => logs.validationAccuracy ?? Number.NaN),
  };
}

/**
 * Re-estimates batch-norm running statistics from `batches` training batches (forward passes in
 * training mode, no gradients) before the model is evaluated. The running averages (momentum 0.1)
 * lag behind weights that Adam moves quickly, and test accuracy in inference mode then depends on
 * where the last few batches left them: measured on DL0009, one seed's test accuracy ranged from
 * 62% to 90% over five seeds without this. With it, what varies between seeds is the training.
 * Models without batch norm are left untouched.
 */
export function recalibrateBatchNorm(model: Module, train: ImageDataset, seed: number, batches = 30): void {
  if (!model.namedModules().some(([, module]) => module instanceof BatchNorm)) return;
  const wasTraining = model.training;
  model.train();
  const loader = new DataLoader(train, { batchSize: 64, shuffle: true, seed });
  let done = 0;
  noGrad(() => {
    for (const { images, shape } of loader) {
      if (done++ >= batches) break;
      model.forward(new Tensor(images, shape));
    }
  });
  model.train(wasTraining);
}

export function percent(value: number, digits = 1): string {
  return Number.isFinite(value) ? `${(value * 100).toFixed(digits)}%` : 'n/a';
}

/** Thousands separated by commas. */
export function count(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

/** A table as aligned text (the terminal's view of it). */
export function tableText(table: ExplainTable): string {
  const widths = table.columns.map((column, c) =>
    Math.max(column.length, ...table.rows.map((row) => (row[c] ?? '').length)),
  );
  const line = (cells: string[]) =>
    cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
  return [
    table.title,
    line(table.columns),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...table.rows.map(line),
  ].join('\n');
}

/** The dataset with every image moved right and down by `pixels` (zeros shifted in). */
export function shiftImages(dataset: ImageDataset, pixels: number): ImageDataset {
  const { height, width, channels: planes } = dataset;
  const images = new Float32Array(dataset.images.length);
  const plane = height * width;
  for (let p = 0; p < dataset.count * planes; p++) {
    for (let y = pixels; y < height; y++) {
      for (let x = pixels; x < width; x++) {
        images[p * plane + y * width + x] = dataset.images[p * plane + (y - pixels) * width + (x - pixels)]!;
      }
    }
  }
  return { ...dataset, images };
}

/**
 * SVG figures placed side by side under one title, each keeping its own scale (gridFigure shades all
 * its panels on one scale, which hides small values next to large ones).
 */
export function sideBySide(title: string, figures: readonly string[]): string {
  const gap = 10;
  const top = 36;
  let x = 0;
  let height = 0;
  const parts: string[] = [];
  for (const figure of figures) {
    const size = /<svg[^>]*\swidth="([\d.]+)"[^>]*\sheight="([\d.]+)"/.exec(figure);
    if (size === null) throw new Error('sideBySide: a figure without width and height');
    const [width, figureHeight] = [Number(size[1]), Number(size[2])];
    parts.push(figure.replace(/^\s*<svg /, `<svg x="${x}" y="${top}" `));
    x += width + gap;
    height = Math.max(height, figureHeight);
  }
  const width = x - gap;
  const escaped = title.replace(/[<>&]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;' })[c]!);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height + top}" viewBox="0 0 ${width} ${height + top}">
<rect width="${width}" height="${height + top}" fill="white"/>
<text x="${width / 2}" y="24" font-family="DejaVu Sans, Arial, Helvetica, sans-serif" font-size="16" font-weight="bold" text-anchor="middle" fill="#222">${escaped}</text>
${parts.join('\n')}
</svg>
`;
}

/** A chart width that fits its title on one line (16 px bold DejaVu Sans is about 10 px a character). */
export function figureWidth(title: string, minimum = 720): number {
  return Math.max(minimum, Math.ceil(title.length * 10.5 + 60));
}

/** A bar chart as wide as its title needs. */
export function titledBarChart(options: BarChartOptions): string {
  return barChart({ width: figureWidth(options.title), ...options });
}

/**
 * The seeds every arm of a topic's comparison is trained with: five in the default mode (the fewest
 * that give a usable t interval: t₀.₉₇₅ with 4 degrees of freedom is 2.78), two in quick mode (just
 * enough for the statistics to run). Each seed sets the initial weights and the data order, the same
 * for every arm, so the arms can be compared seed by seed (paired).
 */
export function seedList(context: ExplainContext): number[] {
  return context.quick ? [1, 2] : [1, 2, 3, 4, 5];
}

/** "5 seeds (1–5)" */
export function seedText(seeds: readonly number[]): string {
  return `${seeds.length} seed${seeds.length > 1 ? 's' : ''} (${seeds.length > 1 ? `${seeds[0]}–${seeds.at(-1)}` : seeds[0]})`;
}

/**
 * The verdict on two arms of accuracies over the same seeds (paired t-test, chance checked first), or
 * for a quick run the statement that it draws none.
 */
export function armVerdict(context: ExplainContext, first: Arm, second: Arm, classes: number): string {
  if (context.quick)
    return `${quickVerdict} (${first.name} ${percent(mean(first.values))}, ${second.name} ${percent(mean(second.values))})`;
  return verdict(compareArms(first, second), classes);
}

/** What a quick run says where a full one gives its verdict. */
export const quickVerdict = 'this quick run draws no conclusion from its numbers';

/**
 * The verdict on a difference that is not an accuracy (e.g. points lost to a shift), per seed, paired:
 * "A lost more than B" only when the paired t-test finds it.
 */
export function differenceVerdict(
  context: ExplainContext,
  first: Arm,
  second: Arm,
  describe: { firstHigher: string; secondHigher: string; none: string },
  unit: DifferenceUnit = percentagePoints,
): string {
  if (context.quick) return quickVerdict;
  const comparison = compareArms(first, second);
  const sentence =
    comparison.winner === null
      ? describe.none
      : comparison.winner === first
        ? describe.firstHigher
        : describe.secondHigher;
  return `${sentence} (${first.name} − ${second.name} = ${formatDifference(comparison, unit)})`;
}

/** An accuracy over seeds as a table cell: "91.2 ± 1.1" (mean ± half-width of the 95% t interval, in %). */
export function intervalCell(values: readonly number[]): string {
  return accuracyCell(tInterval(values));
}
