/**
 * Streaming metrics: each accumulates over batches with update(output, target) and reports with
 * compute(), so that an epoch's value is that of one pass over all its samples (torchmetrics'
 * Metric.update/compute, Keras's metrics). Definitions, tie rules and edge cases follow
 * scikit-learn 1.2, which the tests compare against (test/fixtures/metrics, written by
 * test/fixtures/generators/make_metric_fixtures.py).
 *
 * Undefined ratios (zero division): a precision with no predictions of the class, or a recall with
 * no samples of it, is 0 by default, as scikit-learn's default zero_division="warn" gives (without
 * its warning); `zeroDivision: 1` gives 1 instead. F1 is 2·P·R/(P + R) of those values, 0 when
 * P + R = 0. Averages over classes include classes absent from both targets and predictions, since
 * a streaming metric knows its classes up front (scikit-learn with labels=range(C)).
 */
import { formatShape, ShapeError } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';

/**
 * What a metric is fed: the model's output for a batch, then the batch's targets. For
 * classification an output is a score tensor [N, C] (logits or probabilities; the prediction is
 * the first highest score), or predicted class indices [N] (a rank-1 tensor or an array); targets
 * are class indices [N]. For regression both are tensors of one shape, [N] or [N, D].
 */
export type MetricValues = Tensor | Int32Array | readonly number[];

/** A metric accumulated over batches; compute() may be called at any time, and again after more updates. */
export interface Metric<Result = number> {
  /** The key under which the value is logged, e.g. 'accuracy', 'macroF1', 'top5Accuracy'. */
  readonly name: string;
  /** Adds one batch. Throws (changing nothing) on inputs of the wrong shape or range. */
  update(output: MetricValues, target: MetricValues): void;
  /** The value over every sample since the last reset. */
  compute(): Result;
  /** Forgets every sample (e.g. at the start of an epoch). */
  reset(): void;
}

/** How per-class values become one: as scikit-learn's `average` ('none' is its None). */
export type Averaging = 'macro' | 'micro' | 'weighted' | 'none';
/** A number for an average, one per class for 'none'. */
export type AveragedResult<A extends Averaging> = A extends 'none' ? number[] : number;

// ---------------------------------------------------------------------------------------------
// Input checks shared by the classification metrics

function valuesOf(input: MetricValues): ArrayLike<number> {
  return input instanceof Tensor ? input.data : input;
}

/** Class indices from a rank-1 input, each checked to be an integer in [0, classes). */
function classIndices(input: MetricValues, classes: number | null, what: string, role: string): Int32Array {
  if (input instanceof Tensor && input.rank !== 1)
    throw new ShapeError(
      `${what}: ${role} class indices must have shape [batch], got ${formatShape(input.shape)}`,
    );
  const values = valuesOf(input);
  const indices = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!;
    if (!Number.isInteger(value) || value < 0 || (classes !== null && value >= classes)) {
      const range = classes === null ? 'a non-negative integer' : `a class index in [0, ${classes - 1}]`;
      throw new RangeError(`${what}: ${role} ${i} is ${value}, expected ${range}`);
    }
    indices[i] = value;
  }
  return indices;
}

/** Predicted classes: argmax of a score tensor [N, C] (first maximum on ties), or given indices. */
function predictedClasses(output: MetricValues, classes: number | null, what: string): Int32Array {
  if (!(output instanceof Tensor) || output.rank === 1)
    return classIndices(output, classes, what, 'prediction');
  if (output.rank !== 2)
    throw new ShapeError(
      `${what}: expected scores [batch, classes] or class indices [batch], got ${formatShape(output.shape)}`,
    );
  const [rows, columns] = output.shape as [number, number];
  if (classes !== null && columns !== classes)
    throw new ShapeError(
      `${what}: output ${formatShape(output.shape)} has ${columns} classes, expected ${classes}`,
    );
  const predictions = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = -Infinity;
    for (let c = 0; c < columns; c++) {
      const score = output.data[r * columns + c]!;
      if (score > best) {
        best = score;
        predictions[r] = c;
      }
    }
  }
  return predictions;
}

function checkBatchSizes(predictions: number, targets: number, what: string): void {
  if (predictions !== targets) throw new ShapeError(`${what}: ${predictions} outputs but ${targets} targets`);
}

function checkClassCount(classes: number, what: string): void {
  if (!Number.isInteger(classes) || classes < 1)
    throw new RangeError(`${what}: numClasses must be a positive integer, got ${classes}`);
}

// ---------------------------------------------------------------------------------------------
// Accuracy and top-k accuracy

/** Fraction of samples whose predicted class is the target (NaN before any sample). */
export class Accuracy implements Metric {
  readonly name: string;
  private correct = 0;
  private total = 0;

  constructor(options: { name?: string } = {}) {
    this.name = options.name ?? 'accuracy';
  }

  update(output: MetricValues, target: MetricValues): void {
    const predictions = predictedClasses(output, null, 'Accuracy');
    const targets = classIndices(target, null, 'Accuracy', 'target');
    checkBatchSizes(predictions.length, targets.length, 'Accuracy');
    for (let i = 0; i < targets.length; i++) if (predictions[i] === targets[i]) this.correct++;
    this.total += targets.length;
  }

  compute(): number {
    return this.correct / this.total;
  }

  reset(): void {
    this.correct = 0;
    this.total = 0;
  }
}

export interface TopKAccuracyOptions {
  /** How many of the highest scores may hold the target (default 5). */
  k?: number;
  name?: string;
}

/**
 * Fraction of samples whose target is among the k highest of its scores [N, C]. Ties follow
 * scikit-learn's top_k_accuracy_score: among equal scores the higher class index ranks first, so the
 * target counts when fewer than k classes score higher or equal with a higher index.
 */
export class TopKAccuracy implements Metric {
  readonly name: string;
  readonly k: number;
  private correct = 0;
  private total = 0;

  constructor(options: TopKAccuracyOptions = {}) {
    this.k = options.k ?? 5;
    if (!Number.isInteger(this.k) || this.k < 1)
      throw new RangeError(`TopKAccuracy: k must be a positive integer, got ${this.k}`);
    this.name = options.name ?? `top${this.k}Accuracy`;
  }

  update(output: MetricValues, target: MetricValues): void {
    if (!(output instanceof Tensor) || output.rank !== 2)
      throw new ShapeError(
        `${this.name}: expected scores [batch, classes], got ${output instanceof Tensor ? formatShape(output.shape) : 'an array of class indices'}`,
      );
    const [rows, classes] = output.shape as [number, number];
    const targets = classIndices(target, classes, this.name, 'target');
    checkBatchSizes(rows, targets.length, this.name);
    for (let r = 0; r < rows; r++) {
      const t = targets[r]!;
      const targetScore = output.data[r * classes + t]!;
      let ahead = 0;
      for (let c = 0; c < classes; c++) {
        const score = output.data[r * classes + c]!;
        if (score > targetScore || (score === targetScore && c > t)) ahead++;
      }
      if (ahead < this.k) this.correct++;
    }
    this.total += rows;
  }

  compute(): number {
    return this.correct / this.total;
  }

  reset(): void {
    this.correct = 0;
    this.total = 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Confusion matrix, precision, recall, F1

/** Counts [numClasses][numClasses]: row = target class, column = predicted class (scikit-learn's). */
export class ConfusionMatrix implements Metric<number[][]> {
  readonly name: string;
  readonly numClasses: number;
  private readonly counts: Float64Array;

  constructor(options: { numClasses: number; name?: string }) {
    checkClassCount(options.numClasses, 'ConfusionMatrix');
    this.numClasses = options.numClasses;
    this.name = options.name ?? 'confusionMatrix';
    this.counts = new Float64Array(this.numClasses * this.numClasses);
  }

  update(output: MetricValues, target: MetricValues): void {
    const predictions = predictedClasses(output, this.numClasses, this.name);
    const targets = classIndices(target, this.numClasses, this.name, 'target');
    checkBatchSizes(predictions.length, targets.length, this.name);
    for (let i = 0; i < targets.length; i++) this.counts[targets[i]! * this.numClasses + predictions[i]!]!++;
  }

  compute(): number[][] {
    const classes = this.numClasses;
    return Array.from({ length: classes }, (_, row) =>
      Array.from(this.counts.subarray(row * classes, (row + 1) * classes)),
    );
  }

  reset(): void {
    this.counts.fill(0);
  }

  /** Per class: true positives, predicted count (column sum) and support (row sum). */
  classCounts(): { truePositives: number[]; predicted: number[]; support: number[] } {
    const classes = this.numClasses;
    const truePositives = new Array<number>(classes).fill(0);
    const predicted = new Array<number>(classes).fill(0);
    const support = new Array<number>(classes).fill(0);
    for (let row = 0; row < classes; row++) {
      for (let column = 0; column < classes; column++) {
        const count = this.counts[row * classes + column]!;
        support[row]! += count;
        predicted[column]! += count;
        if (row === column) truePositives[row] = count;
      }
    }
    return { truePositives, predicted, support };
  }
}

/** Precision, recall and F1 of one class or of pooled counts. */
export interface ClassScores {
  precision: number;
  recall: number;
  f1Score: number;
  /** Samples whose target is the class (all samples, for an average). */
  support: number;
}

/** Per-class scores and the three averages, from confusion counts; see the module comment. */
function scoresFromCounts(
  counts: { truePositives: number[]; predicted: number[]; support: number[] },
  zeroDivision: 0 | 1,
): { perClass: ClassScores[]; micro: ClassScores; macro: ClassScores; weighted: ClassScores } {
  const ratio = (numerator: number, denominator: number) =>
    denominator === 0 ? zeroDivision : numerator / denominator;
  const f1 = (precision: number, recall: number) =>
    precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
  const score = (truePositives: number, predicted: number, support: number): ClassScores => {
    const precision = ratio(truePositives, predicted);
    const recall = ratio(truePositives, support);
    return { precision, recall, f1Score: f1(precision, recall), support };
  };
  const perClass = counts.truePositives.map((tp, c) => score(tp, counts.predicted[c]!, counts.support[c]!));
  const total = (values: number[]) => values.reduce((a, b) => a + b, 0);
  const samples = total(counts.support);
  const micro = score(total(counts.truePositives), total(counts.predicted), samples);
  const averageOf = (weights: number[] | null): ClassScores => {
    const weightTotal = weights === null ? perClass.length : total(weights);
    const mean = (key: 'precision' | 'recall' | 'f1Score') =>
      perClass.reduce((sum, s, c) => sum + s[key] * (weights === null ? 1 : weights[c]!), 0) / weightTotal;
    return {
      precision: mean('precision'),
      recall: mean('recall'),
      f1Score: mean('f1Score'),
      support: samples,
    };
  };
  const macro = averageOf(null);
  // scikit-learn's weighted average of no samples: the zero-division value where nothing was
  // predicted either, else precision and F1 0 and recall the zero-division value.
  const weighted =
    samples === 0
      ? total(counts.predicted) === 0
        ? { precision: zeroDivision, recall: zeroDivision, f1Score: zeroDivision, support: 0 }
        : { precision: 0, recall: zeroDivision, f1Score: 0, support: 0 }
      : averageOf(counts.support);
  return { perClass, micro, macro, weighted };
}

export interface ClassScoreOptions<A extends Averaging> {
  numClasses: number;
  /** 'macro' (default): unweighted mean over classes; 'micro': from pooled counts (equals accuracy
   * for single-label data); 'weighted': mean weighted by support; 'none': one value per class. */
  average?: A;
  /** The value of an undefined precision or recall (default 0, scikit-learn's default). */
  zeroDivision?: 0 | 1;
  name?: string;
}

type ScoreKey = 'precision' | 'recall' | 'f1Score';

/** Shared by Precision, Recall and F1Score: a confusion matrix and one score read from it. */
abstract class ClassScoreMetric<A extends Averaging> implements Metric<AveragedResult<A>> {
  readonly name: string;
  readonly average: Averaging;
  readonly zeroDivision: 0 | 1;
  private readonly matrix: ConfusionMatrix;
  private readonly key: ScoreKey;

  protected constructor(options: ClassScoreOptions<A>, key: ScoreKey, title: string) {
    this.average = options.average ?? 'macro';
    if (!['macro', 'micro', 'weighted', 'none'].includes(this.average))
      throw new RangeError(
        `${title}: average must be 'macro', 'micro', 'weighted' or 'none', got '${this.average}'`,
      );
    this.zeroDivision = options.zeroDivision ?? 0;
    if (this.zeroDivision !== 0 && this.zeroDivision !== 1)
      throw new RangeError(`${title}: zeroDivision must be 0 or 1, got ${String(this.zeroDivision)}`);
    const label = key === 'f1Score' ? 'F1' : title;
    this.name =
      options.name ??
      (this.average === 'none' ? `${key === 'f1Score' ? 'f1' : key}PerClass` : `${this.average}${label}`);
    this.matrix = new ConfusionMatrix({ numClasses: options.numClasses, name: this.name });
    this.key = key;
  }

  update(output: MetricValues, target: MetricValues): void {
    this.matrix.update(output, target);
  }

  compute(): AveragedResult<A> {
    const scores = scoresFromCounts(this.matrix.classCounts(), this.zeroDivision);
    const result =
      this.average === 'none' ? scores.perClass.map((s) => s[this.key]) : scores[this.average][this.key];
    return result as AveragedResult<A>;
  }

  reset(): void {
    this.matrix.reset();
  }
}

/** Precision tp/(tp + fp) per class or averaged (default 'macro'); scikit-learn's precision_score. */
export class Precision<A extends Averaging = 'macro'> extends ClassScoreMetric<A> {
  constructor(options: ClassScoreOptions<A>) {
    super(options, 'precision', 'Precision');
  }
}

/** Recall tp/(tp + fn) per class or averaged (default 'macro'); scikit-learn's recall_score. */
export class Recall<A extends Averaging = 'macro'> extends ClassScoreMetric<A> {
  constructor(options: ClassScoreOptions<A>) {
    super(options, 'recall', 'Recall');
  }
}

/** F1 = 2·P·R/(P + R) per class or averaged (default 'macro'); scikit-learn's f1_score. */
export class F1Score<A extends Averaging = 'macro'> extends ClassScoreMetric<A> {
  constructor(options: ClassScoreOptions<A>) {
    super(options, 'f1Score', 'F1Score');
  }
}

// ---------------------------------------------------------------------------------------------
// Classification report

/** scikit-learn's classification_report as data; formatClassificationReport prints it. */
export interface ClassificationReportData {
  classes: (ClassScores & { name: string })[];
  /** Fraction correct (the micro average's F1, equal to its precision and recall). */
  accuracy: number;
  microAverage: ClassScores;
  macroAverage: ClassScores;
  weightedAverage: ClassScores;
  /** Whether every class occurs among the targets or predictions: then the micro row prints as
   * 'accuracy', as scikit-learn does when the labels are exactly the classes seen. */
  everyClassSeen: boolean;
}

export interface ClassificationReportOptions {
  numClasses: number;
  /** Row names (default '0', '1', ...). */
  classNames?: readonly string[];
  zeroDivision?: 0 | 1;
  name?: string;
}

/** Per-class precision, recall, F1 and support, with micro, macro and weighted averages. */
export class ClassificationReport implements Metric<ClassificationReportData> {
  readonly name: string;
  readonly classNames: readonly string[];
  readonly zeroDivision: 0 | 1;
  private readonly matrix: ConfusionMatrix;

  constructor(options: ClassificationReportOptions) {
    checkClassCount(options.numClasses, 'ClassificationReport');
    this.name = options.name ?? 'classificationReport';
    this.classNames = options.classNames ?? Array.from({ length: options.numClasses }, (_, c) => String(c));
    if (this.classNames.length !== options.numClasses)
      throw new RangeError(
        `ClassificationReport: ${this.classNames.length} class names for ${options.numClasses} classes`,
      );
    this.zeroDivision = options.zeroDivision ?? 0;
    this.matrix = new ConfusionMatrix({ numClasses: options.numClasses, name: this.name });
  }

  update(output: MetricValues, target: MetricValues): void {
    this.matrix.update(output, target);
  }

  compute(): ClassificationReportData {
    const counts = this.matrix.classCounts();
    const scores = scoresFromCounts(counts, this.zeroDivision);
    return {
      classes: scores.perClass.map((s, c) => ({ name: this.classNames[c]!, ...s })),
      accuracy: scores.micro.f1Score,
      microAverage: scores.micro,
      macroAverage: scores.macro,
      weightedAverage: scores.weighted,
      everyClassSeen: counts.support.every((support, c) => support + counts.predicted[c]! > 0),
    };
  }

  reset(): void {
    this.matrix.reset();
  }

  /** The report as scikit-learn's text table. */
  toText(digits = 2): string {
    return formatClassificationReport(this.compute(), digits);
  }
}

/**
 * x with `digits` decimals, ties (an exact binary …5) to even as Python's format does; toFixed
 * would round them up (0.125 → '0.13' where scikit-learn prints '0.12').
 */
function formatFixed(value: number, digits: number): string {
  if (!Number.isFinite(value)) return String(value);
  const rounded = value.toFixed(digits);
  const exact = Math.abs(value).toFixed(Math.min(digits + 30, 100));
  const rest = exact.slice(exact.indexOf('.') + 1 + digits);
  if (!/^50*$/.test(rest)) return rounded;
  const truncated = (Math.sign(value) * Math.trunc(Math.abs(value) * 10 ** digits)) / 10 ** digits;
  const lastDigit = Number(Math.abs(truncated).toFixed(digits).slice(-1));
  return lastDigit % 2 === 0 ? truncated.toFixed(digits) : rounded;
}

/**
 * The report as text, laid out as scikit-learn's classification_report: a header, one row per class,
 * then the accuracy (or micro average) row and the macro and weighted averages.
 */
export function formatClassificationReport(report: ClassificationReportData, digits = 2): string {
  const averageNames = ['micro avg', 'macro avg', 'weighted avg'];
  const width = Math.max(...report.classes.map((c) => c.name.length), 'weighted avg'.length, digits);
  const cell = (text: string) => ' ' + text.padStart(9);
  const number = (value: number) => cell(formatFixed(value, digits));
  const row = (name: string, s: ClassScores) =>
    name.padStart(width) +
    ' ' +
    number(s.precision) +
    number(s.recall) +
    number(s.f1Score) +
    cell(String(s.support)) +
    '\n';
  let text =
    ''.padStart(width) + ' ' + ['precision', 'recall', 'f1-score', 'support'].map(cell).join('') + '\n\n';
  for (const c of report.classes) text += row(c.name, c);
  text += '\n';
  if (report.everyClassSeen) {
    text +=
      'accuracy'.padStart(width) +
      ' ' +
      cell('') +
      cell('') +
      number(report.accuracy) +
      cell(String(report.microAverage.support)) +
      '\n';
  } else {
    text += row(averageNames[0]!, report.microAverage);
  }
  text += row(averageNames[1]!, report.macroAverage);
  text += row(averageNames[2]!, report.weightedAverage);
  return text;
}

// ---------------------------------------------------------------------------------------------
// ROC AUC

export interface RocAucOptions {
  /**
   * 2 (default): binary, the output is the positive class's score [N] (or scores [N, 2], of which
   * the second column is used) and targets are 0 or 1. More: one-vs-rest over scores [N, C].
   */
  numClasses?: number;
  /**
   * Turn logits into probabilities (softmax over a row) before ranking. The binary AUC is the same
   * either way, but one-vs-rest ranks each class's column across rows, which softmax changes;
   * scikit-learn expects probabilities.
   */
  fromLogits?: boolean;
  name?: string;
}

/**
 * Area under the ROC curve, exact (every score is kept until reset). Equal scores count half, as
 * the trapezoidal curve through tied thresholds gives (scikit-learn's roc_auc_score). Binary AUC is
 * NaN while the targets hold one class only (scikit-learn raises there). With C > 2 classes the
 * result is the macro mean of the one-vs-rest AUCs (multi_class='ovr', average='macro') over the
 * classes that have both positive and negative samples; perClass() gives each, NaN where undefined
 * (scikit-learn raises when a class is absent from the targets).
 */
export class RocAuc implements Metric {
  readonly name: string;
  readonly numClasses: number;
  readonly fromLogits: boolean;
  private scores: number[] = [];
  private targets: number[] = [];

  constructor(options: RocAucOptions = {}) {
    this.numClasses = options.numClasses ?? 2;
    checkClassCount(this.numClasses, 'RocAuc');
    if (this.numClasses < 2) throw new RangeError('RocAuc: numClasses must be at least 2');
    this.fromLogits = options.fromLogits ?? false;
    this.name = options.name ?? 'rocAuc';
  }

  update(output: MetricValues, target: MetricValues): void {
    if (!(output instanceof Tensor))
      throw new TypeError(`${this.name}: expected a tensor of scores, got class indices`);
    const targets = classIndices(target, this.numClasses, this.name, 'target');
    const binary = this.numClasses === 2;
    const columns = output.rank === 2 ? output.shape[1]! : 1;
    const shapeFits = binary
      ? output.rank === 1 || (output.rank === 2 && columns === 2)
      : output.rank === 2 && columns === this.numClasses;
    if (!shapeFits) {
      const expected = binary ? '[batch] or [batch, 2]' : `[batch, ${this.numClasses}]`;
      throw new ShapeError(`${this.name}: expected scores ${expected}, got ${formatShape(output.shape)}`);
    }
    checkBatchSizes(output.shape[0]!, targets.length, this.name);
    const rows = targets.length;
    for (let i = 0; i < output.size; i++)
      if (Number.isNaN(output.data[i]!)) throw new RangeError(`${this.name}: score ${i} is NaN`);
    const probabilities =
      this.fromLogits && columns > 1 ? softmaxRows(output.data, rows, columns) : output.data;
    for (let r = 0; r < rows; r++) {
      if (binary) this.scores.push(probabilities[r * columns + columns - 1]!);
      else for (let c = 0; c < columns; c++) this.scores.push(probabilities[r * columns + c]!);
      this.targets.push(targets[r]!);
    }
  }

  /** One-vs-rest AUC of each class (one value, the positive class's, when binary). */
  perClass(): number[] {
    if (this.numClasses === 2)
      return [
        binaryAuc(
          this.scores,
          this.targets.map((t) => t === 1),
        ),
      ];
    const columns = this.numClasses;
    return Array.from({ length: columns }, (_, c) =>
      binaryAuc(
        this.targets.map((_, r) => this.scores[r * columns + c]!),
        this.targets.map((t) => t === c),
      ),
    );
  }

  compute(): number {
    const defined = this.perClass().filter((auc) => !Number.isNaN(auc));
    return defined.length === 0 ? NaN : defined.reduce((a, b) => a + b, 0) / defined.length;
  }

  reset(): void {
    this.scores = [];
    this.targets = [];
  }
}

function softmaxRows(data: ArrayLike<number>, rows: number, columns: number): Float64Array {
  const out = new Float64Array(rows * columns);
  for (let r = 0; r < rows; r++) {
    let largest = -Infinity;
    for (let c = 0; c < columns; c++) largest = Math.max(largest, data[r * columns + c]!);
    let total = 0;
    for (let c = 0; c < columns; c++)
      total += out[r * columns + c] = Math.exp(data[r * columns + c]! - largest);
    for (let c = 0; c < columns; c++) out[r * columns + c]! /= total;
  }
  return out;
}

/**
 * The probability that a random positive outscores a random negative, ties counting half (the
 * Mann–Whitney statistic, equal to the trapezoidal area under the ROC curve). NaN without both.
 */
function binaryAuc(scores: readonly number[], positive: readonly boolean[]): number {
  const order = scores.map((_, i) => i).sort((a, b) => scores[b]! - scores[a]!);
  let positivesAbove = 0;
  let area = 0;
  for (let start = 0; start < order.length;) {
    // One group of equal scores: its negatives rank below the positives seen so far, level with its own.
    let end = start;
    let groupPositives = 0;
    let groupNegatives = 0;
    while (end < order.length && scores[order[end]!] === scores[order[start]!]) {
      if (positive[order[end]!]) groupPositives++;
      else groupNegatives++;
      end++;
    }
    area += groupNegatives * (positivesAbove + groupPositives / 2);
    positivesAbove += groupPositives;
    start = end;
  }
  const negatives = order.length - positivesAbove;
  if (positivesAbove === 0 || negatives === 0) return NaN;
  return area / (positivesAbove * negatives);
}

// ---------------------------------------------------------------------------------------------
// Regression: MAE, RMSE, R²

/** Per-output running sums of a regression metric, over outputs [N] or [N, D]. */
class RegressionSums {
  count = 0;
  absoluteErrors: Float64Array = new Float64Array(0);
  squaredErrors: Float64Array = new Float64Array(0);
  /** Mean of the target and Σ(y − mean)² per output, merged batch by batch (Chan et al.), which
   * stays accurate where Σy² − (Σy)²/n would cancel. */
  targetMean: Float64Array = new Float64Array(0);
  targetSquares: Float64Array = new Float64Array(0);

  add(output: MetricValues, target: MetricValues, what: string): void {
    if (!(output instanceof Tensor) || !(target instanceof Tensor))
      throw new TypeError(`${what}: expected output and target tensors`);
    if (output.rank < 1 || output.rank > 2 || output.shape.join() !== target.shape.join())
      throw new ShapeError(
        `${what}: output ${formatShape(output.shape)} and target ${formatShape(target.shape)} must be one shape, [batch] or [batch, outputs]`,
      );
    const outputs = output.rank === 2 ? output.shape[1]! : 1;
    if (this.count > 0 && outputs !== this.absoluteErrors.length)
      throw new ShapeError(`${what}: ${outputs} outputs, earlier batches had ${this.absoluteErrors.length}`);
    if (this.count === 0) {
      this.absoluteErrors = new Float64Array(outputs);
      this.squaredErrors = new Float64Array(outputs);
      this.targetMean = new Float64Array(outputs);
      this.targetSquares = new Float64Array(outputs);
    }
    const rows = output.shape[0]!;
    if (rows === 0) return;
    for (let d = 0; d < outputs; d++) {
      let batchMean = 0;
      for (let r = 0; r < rows; r++) {
        const y = target.data[r * outputs + d]!;
        const error = output.data[r * outputs + d]! - y;
        this.absoluteErrors[d]! += Math.abs(error);
        this.squaredErrors[d]! += error * error;
        batchMean += y;
      }
      batchMean /= rows;
      let batchSquares = 0;
      for (let r = 0; r < rows; r++) batchSquares += (target.data[r * outputs + d]! - batchMean) ** 2;
      const total = this.count + rows;
      const shift = batchMean - this.targetMean[d]!;
      this.targetSquares[d]! += batchSquares + (shift * shift * this.count * rows) / total;
      this.targetMean[d]! += (shift * rows) / total;
    }
    this.count += rows;
  }

  reset(): void {
    this.count = 0;
    this.absoluteErrors = new Float64Array(0);
  }

  /** The uniform mean over outputs of f(output d) (scikit-learn's multioutput='uniform_average'). */
  meanOverOutputs(f: (d: number) => number): number {
    if (this.count === 0) return NaN;
    let total = 0;
    for (let d = 0; d < this.absoluteErrors.length; d++) total += f(d);
    return total / this.absoluteErrors.length;
  }
}

/** Mean absolute error, averaged over outputs (scikit-learn's mean_absolute_error). NaN when empty. */
export class MeanAbsoluteError implements Metric {
  readonly name: string;
  private readonly sums = new RegressionSums();
  constructor(options: { name?: string } = {}) {
    this.name = options.name ?? 'meanAbsoluteError';
  }
  update(output: MetricValues, target: MetricValues): void {
    this.sums.add(output, target, this.name);
  }
  compute(): number {
    return this.sums.meanOverOutputs((d) => this.sums.absoluteErrors[d]! / this.sums.count);
  }
  reset(): void {
    this.sums.reset();
  }
}

/**
 * Root mean squared error of each output, averaged over outputs (scikit-learn's
 * mean_squared_error(squared=False)). NaN when empty.
 */
export class RootMeanSquaredError implements Metric {
  readonly name: string;
  private readonly sums = new RegressionSums();
  constructor(options: { name?: string } = {}) {
    this.name = options.name ?? 'rootMeanSquaredError';
  }
  update(output: MetricValues, target: MetricValues): void {
    this.sums.add(output, target, this.name);
  }
  compute(): number {
    return this.sums.meanOverOutputs((d) => Math.sqrt(this.sums.squaredErrors[d]! / this.sums.count));
  }
  reset(): void {
    this.sums.reset();
  }
}

/**
 * Coefficient of determination 1 − Σ(y − ŷ)²/Σ(y − ȳ)² of each output, averaged over outputs
 * (scikit-learn's r2_score). A constant target gives 1 when predicted exactly and 0 otherwise
 * (scikit-learn's force_finite). NaN when empty.
 */
export class R2Score implements Metric {
  readonly name: string;
  private readonly sums = new RegressionSums();
  constructor(options: { name?: string } = {}) {
    this.name = options.name ?? 'r2Score';
  }
  update(output: MetricValues, target: MetricValues): void {
    this.sums.add(output, target, this.name);
  }
  compute(): number {
    return this.sums.meanOverOutputs((d) => {
      const residual = this.sums.squaredErrors[d]!;
      const spread = this.sums.targetSquares[d]!;
      if (residual === 0) return 1;
      return spread === 0 ? 0 : 1 - residual / spread;
    });
  }
  reset(): void {
    this.sums.reset();
  }
}
