/**
 * Streaming metrics against scikit-learn: test/fixtures/metrics/sklearn-metrics.json holds fixed
 * inputs as batches and scikit-learn's values on all of them (written by
 * test/fixtures/generators/make_metric_fixtures.py). Each metric is fed the batches one by one, and
 * again as one batch after reset(), and must give scikit-learn's value both times.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  Accuracy,
  ClassificationReport,
  ConfusionMatrix,
  F1Score,
  formatClassificationReport,
  MeanAbsoluteError,
  type Metric,
  type MetricValues,
  Precision,
  R2Score,
  Recall,
  RocAuc,
  RootMeanSquaredError,
  Tensor,
  tensor,
  TopKAccuracy,
  binaryCrossEntropyWithLogits,
  crossEntropy,
  type Averaging,
} from '../src/index.js';

const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const fixture = JSON.parse(
  fs.readFileSync(path.join(repositoryRoot, 'test', 'fixtures', 'metrics', 'sklearn-metrics.json'), 'utf8'),
) as Fixture;

interface ReportRow {
  precision: number;
  recall: number;
  'f1-score': number;
  support: number;
}
interface ClassificationCase {
  name: string;
  num_classes: number;
  batches: { scores: number[][]; targets: number[] }[];
  expected: Record<string, unknown> & {
    accuracy: number;
    top_k: Record<string, number>;
    confusion_matrix: number[][];
    report: Record<string, ReportRow | number>;
    report_text: string;
    report_text_digits4: string;
  };
}
interface RocCase {
  name: string;
  num_classes: number;
  from_logits: boolean;
  batches: { scores: number[] | number[][]; targets: number[] }[];
  expected: number | null;
  per_class: (number | null)[];
}
interface RegressionCase {
  name: string;
  batches: { output: number[] | number[][]; target: number[] | number[][] }[];
  expected: { mae: number; rmse: number; r2: number };
}
interface Fixture {
  classification: ClassificationCase[];
  roc_auc: RocCase[];
  regression: RegressionCase[];
}

/** Both sides compute in float64, in different orders. */
const tolerance = 1e-10;
function assertClose(actual: number, expected: number | null, what: string): void {
  if (expected === null) {
    assert.ok(Number.isNaN(actual), `${what}: expected NaN (undefined), got ${actual}`);
    return;
  }
  assert.ok(
    Math.abs(actual - expected) <= tolerance * (1 + Math.abs(expected)),
    `${what}: ${actual}, scikit-learn ${expected}`,
  );
}

/** A float32 tensor from nested arrays of one or two levels (the fixture's scores are float32 values). */
function tensorOf(values: number[] | number[][], dtype: 'float32' | 'float64' = 'float32'): Tensor {
  const rows = values as (number | number[])[];
  const flat = rows.flat();
  const data = dtype === 'float32' ? Float32Array.from(flat) : Float64Array.from(flat);
  const shape = Array.isArray(rows[0]) ? [rows.length, (rows[0] as number[]).length] : [rows.length];
  return new Tensor(data, rows.length === 0 ? [0] : shape);
}

/**
 * Feeds the batches one by one, then (after reset) as one batch; both results must pass check, and
 * a result read before the last batch must not stop accumulation.
 */
function streamed<Result>(
  metric: Metric<Result>,
  batches: { output: MetricValues; target: MetricValues }[],
  join: () => { output: MetricValues; target: MetricValues },
  check: (result: Result, how: string) => void,
): void {
  metric.reset();
  batches.forEach((batch, index) => {
    metric.update(batch.output, batch.target);
    if (index === 0) metric.compute();
  });
  check(metric.compute(), `${metric.name} over ${batches.length} batches`);
  metric.reset();
  const whole = join();
  metric.update(whole.output, whole.target);
  check(metric.compute(), `${metric.name} in one batch`);
}

function classificationBatches(c: ClassificationCase) {
  const batches = c.batches.map((b) => ({ output: tensorOf(b.scores) as MetricValues, target: b.targets }));
  const join = () => ({
    output: tensorOf(c.batches.flatMap((b) => b.scores)) as MetricValues,
    target: c.batches.flatMap((b) => b.targets),
  });
  return { batches, join };
}

/** Predicted classes as indices: the first maximum of each row (what the metrics do with scores). */
function argmaxRows(scores: number[][]): Int32Array {
  return Int32Array.from(scores, (row) => row.indexOf(Math.max(...row)));
}

describe('classification metrics against scikit-learn', () => {
  for (const c of fixture.classification) {
    describe(c.name, () => {
      const { batches, join } = classificationBatches(c);
      const numClasses = c.num_classes;
      it('accuracy, from scores and from predicted class indices', () => {
        streamed(new Accuracy(), batches, join, (value, how) => assertClose(value, c.expected.accuracy, how));
        const indexBatches = c.batches.map((b) => ({ output: argmaxRows(b.scores), target: b.targets }));
        streamed(
          new Accuracy(),
          indexBatches,
          () => ({ output: argmaxRows(c.batches.flatMap((b) => b.scores)), target: join().target }),
          (value, how) => assertClose(value, c.expected.accuracy, `${how} (indices)`),
        );
      });
      it('top-k accuracy (ties as scikit-learn ranks them)', () => {
        for (const [k, expected] of Object.entries(c.expected.top_k)) {
          streamed(new TopKAccuracy({ k: Number(k) }), batches, join, (value, how) =>
            assertClose(value, expected, how),
          );
        }
      });
      it('confusion matrix', () => {
        streamed(new ConfusionMatrix({ numClasses }), batches, join, (matrix, how) =>
          assert.deepEqual(matrix, c.expected.confusion_matrix, how),
        );
      });
      it('precision, recall and F1: per class, macro, micro, weighted; zero division 0 and 1', () => {
        const kinds = [
          ['precision', Precision],
          ['recall', Recall],
          ['f1', F1Score],
        ] as const;
        for (const [key, Kind] of kinds) {
          for (const average of ['macro', 'micro', 'weighted', 'none'] as Averaging[]) {
            for (const zeroDivision of [0, 1] as const) {
              const expected = c.expected[`${key}_${average}_zd${zeroDivision}`] as number | number[];
              const metric = new Kind({ numClasses, average, zeroDivision });
              streamed(metric, batches, join, (value, how) => {
                const what = `${how} average ${average} zeroDivision ${zeroDivision}`;
                if (Array.isArray(expected)) {
                  const values = value as number[];
                  assert.equal(values.length, expected.length, what);
                  expected.forEach((e, i) => assertClose(values[i]!, e, `${what} class ${i}`));
                } else {
                  assertClose(value as number, expected, what);
                }
              });
            }
          }
        }
      });
      it('classification report: data and text', () => {
        const report = new ClassificationReport({ numClasses });
        streamed(report, batches, join, (data, how) => {
          const expected = c.expected.report;
          const compareRow = (
            row: { precision: number; recall: number; f1Score: number; support: number },
            name: string,
          ) => {
            const reference = expected[name] as ReportRow;
            assert.ok(reference !== undefined, `${how}: scikit-learn has no row '${name}'`);
            assertClose(row.precision, reference.precision, `${how} ${name} precision`);
            assertClose(row.recall, reference.recall, `${how} ${name} recall`);
            assertClose(row.f1Score, reference['f1-score'], `${how} ${name} f1`);
            assert.equal(row.support, reference.support, `${how} ${name} support`);
          };
          data.classes.forEach((row) => compareRow(row, row.name));
          compareRow(data.macroAverage, 'macro avg');
          compareRow(data.weightedAverage, 'weighted avg');
          if (data.everyClassSeen) assertClose(data.accuracy, expected.accuracy as number, `${how} accuracy`);
          else compareRow(data.microAverage, 'micro avg');
          assert.equal(formatClassificationReport(data), c.expected.report_text, `${how}: text`);
          assert.equal(
            formatClassificationReport(data, 4),
            c.expected.report_text_digits4,
            `${how}: text, 4 digits`,
          );
        });
      });
    });
  }
});

describe('ROC AUC against scikit-learn (ties, one-class batches, one-vs-rest)', () => {
  for (const c of fixture.roc_auc) {
    it(c.name, () => {
      const metric = new RocAuc({ numClasses: c.num_classes, fromLogits: c.from_logits });
      const batches = c.batches.map((b) => ({
        output: tensorOf(b.scores) as MetricValues,
        target: b.targets,
      }));
      const join = () => ({
        output: tensorOf(
          c.batches.flatMap((b) => b.scores as (number | number[])[]) as number[][],
        ) as MetricValues,
        target: c.batches.flatMap((b) => b.targets),
      });
      streamed(metric, batches, join, (value, how) => {
        assertClose(value, c.expected, how);
        metric.perClass().forEach((auc, i) => assertClose(auc, c.per_class[i]!, `${how} class ${i}`));
      });
    });
  }
});

describe('regression metrics against scikit-learn (several outputs, constant targets)', () => {
  for (const c of fixture.regression) {
    it(c.name, () => {
      const batches = c.batches.map((b) => ({
        output: tensorOf(b.output, 'float64') as MetricValues,
        target: tensorOf(b.target, 'float64') as MetricValues,
      }));
      const join = () => ({
        output: tensorOf(
          c.batches.flatMap((b) => b.output as (number | number[])[]) as number[][],
          'float64',
        ),
        target: tensorOf(
          c.batches.flatMap((b) => b.target as (number | number[])[]) as number[][],
          'float64',
        ),
      });
      const cases: [Metric, number][] = [
        [new MeanAbsoluteError(), c.expected.mae],
        [new RootMeanSquaredError(), c.expected.rmse],
        [new R2Score(), c.expected.r2],
      ];
      for (const [metric, expected] of cases)
        streamed(metric, batches, join, (value, how) => assertClose(value, expected, how));
    });
  }
});

describe('metric inputs and names', () => {
  it('names follow the options', () => {
    assert.equal(new Accuracy().name, 'accuracy');
    assert.equal(new TopKAccuracy({ k: 3 }).name, 'top3Accuracy');
    assert.equal(new F1Score({ numClasses: 3 }).name, 'macroF1');
    assert.equal(new Precision({ numClasses: 3, average: 'weighted' }).name, 'weightedPrecision');
    assert.equal(new Recall({ numClasses: 3, average: 'none' }).name, 'recallPerClass');
    assert.equal(new R2Score().name, 'r2Score');
  });
  it('bad inputs throw naming the metric, and change nothing', () => {
    const metric = new ConfusionMatrix({ numClasses: 3 });
    metric.update([0, 1], [0, 2]);
    assert.throws(
      () => metric.update([0, 1], [0, 3]),
      /confusionMatrix: target 1 is 3, expected a class index in \[0, 2\]/,
    );
    assert.throws(() => metric.update([0, 1, 2], [0, 1]), /confusionMatrix: 3 outputs but 2 targets/);
    assert.throws(
      () => metric.update(new Tensor(new Float32Array(8), [2, 4]), [0, 1]),
      /output \[2, 4\] has 4 classes, expected 3/,
    );
    assert.deepEqual(metric.compute(), [
      [1, 0, 0],
      [0, 0, 0],
      [0, 1, 0],
    ]);
    assert.throws(
      () =>
        new R2Score().update(new Tensor(new Float64Array(4), [4]), new Tensor(new Float64Array(4), [2, 2])),
      /r2Score: output \[4\] and target \[2, 2\] must be one shape/,
    );
    assert.throws(() => new RocAuc().update([0.5], [1]), /expected a tensor of scores/);
    assert.throws(() => new TopKAccuracy({ k: 0 }), /k must be a positive integer/);
  });
  it('before any sample, ratios are NaN', () => {
    assert.ok(Number.isNaN(new Accuracy().compute()));
    assert.ok(Number.isNaN(new MeanAbsoluteError().compute()));
    assert.ok(Number.isNaN(new RocAuc().compute()));
  });
});

describe('the README example (Losses and metrics)', () => {
  it('runs and gives the stated macro F1', () => {
    const logits = tensor(
      [
        [2, 0.5, -1],
        [0.1, 0.3, 2],
        [1, 1.5, 0],
      ],
      { requiresGrad: true },
    );
    crossEntropy(logits, [0, 2, 2], { classWeights: [1, 1, 3], labelSmoothing: 0.1 }).backward();
    assert.deepEqual(logits.grad?.shape, [3, 3]);
    const multiHot = tensor([
      [1, 0, 0],
      [0, 1, 1],
      [1, 1, 0],
    ]);
    const multiLabel = binaryCrossEntropyWithLogits(logits, multiHot, { posWeight: [1, 2, 2] });
    assert.ok(Number.isFinite(multiLabel.item()));
    const f1 = new F1Score({ numClasses: 3, average: 'macro' });
    const report = new ClassificationReport({ numClasses: 3, classNames: ['cat', 'dog', 'bird'] });
    for (const metric of [f1, report]) metric.update(logits, [0, 2, 2]);
    // Predicted 0, 2, 1: F1 per class 1, 0 (dog predicted, never a target), 2/3.
    assertClose(f1.compute(), (1 + 0 + 2 / 3) / 3, 'macro F1');
    const text = report.toText();
    assert.match(text, /^ {9}cat {7}1\.00 {6}1\.00 {6}1\.00 {9}1$/m);
    assert.match(text, /^ {8}bird {7}1\.00 {6}0\.50 {6}0\.67 {9}2$/m);
  });
});
