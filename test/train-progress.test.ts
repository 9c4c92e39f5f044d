/**
 * The progress bar shows every metric a fit was given next to the loss, in the plain-line mode and
 * on a terminal, under short names that keep their meaning; the values printed are the epoch's own
 * (read back from the fit's history, not typed in here).
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import {
  Accuracy,
  Adam,
  Dense,
  F1Score,
  fit,
  formatEpochMetrics,
  manualSeed,
  MeanAbsoluteError,
  mseLoss,
  Precision,
  ProgressBar,
  R2Score,
  Random,
  RootMeanSquaredError,
  Sequential,
  shortMetricName,
  Tensor,
  tensorDataset,
  TopKAccuracy,
} from '../src/index.js';

function capture() {
  let text = '';
  const stream = new Writable({
    write(chunk, _encoding, done) {
      text += String(chunk);
      done();
    },
  });
  return { stream, text: () => text };
}

/** Rows of 4 features; class 1 when the first two sum above the last two (three classes for top-k). */
function classRows(count: number, seed: number) {
  const random = new Random(seed);
  const inputs = new Float32Array(count * 4);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    for (let f = 0; f < 4; f++) inputs[i * 4 + f] = random.normal();
    const margin = inputs[i * 4]! + inputs[i * 4 + 1]! - inputs[i * 4 + 2]! - inputs[i * 4 + 3]!;
    labels[i] = margin > 0.5 ? 2 : margin > -0.5 ? 1 : 0;
  }
  return tensorDataset(new Tensor(inputs, [count, 4]), labels);
}

/** y = 2·x₁ − x₂ + 0.5 with a little noise. */
function regressionRows(count: number, seed: number) {
  const random = new Random(seed);
  const inputs = new Float32Array(count * 2);
  const targets = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    inputs[i * 2] = random.normal();
    inputs[i * 2 + 1] = random.normal();
    targets[i] = 2 * inputs[i * 2]! - inputs[i * 2 + 1]! + 0.5 + 0.05 * random.normal();
  }
  return tensorDataset(new Tensor(inputs, [count, 2]), new Tensor(targets, [count, 1]));
}

/** The value a line shows after `name ` (the first such token). */
function valueAfter(line: string, name: string): string | undefined {
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(?:^| )${escaped} (\\S+)`).exec(line)?.[1];
}

describe('shortMetricName', () => {
  it('keeps the averaging and the quantity: scikit-learn scoring words, or the usual abbreviation', () => {
    const names: [string, string][] = [
      ['accuracy', 'acc'],
      ['top5Accuracy', 'top5_acc'],
      ['macroF1', 'f1_macro'],
      ['microF1', 'f1_micro'],
      ['weightedF1', 'f1_weighted'],
      ['macroPrecision', 'precision_macro'],
      ['weightedRecall', 'recall_weighted'],
      ['rocAuc', 'roc_auc'],
      ['meanAbsoluteError', 'mae'],
      ['rootMeanSquaredError', 'rmse'],
      ['r2Score', 'r2'],
      // Names of your own stay as they are.
      ['myScore', 'myScore'],
      ['macroSomething', 'macroSomething'],
    ];
    for (const [name, short] of names) assert.equal(shortMetricName(name), short, name);
    // The names the metrics give themselves map as listed above.
    assert.equal(shortMetricName(new F1Score({ numClasses: 3 }).name), 'f1_macro');
    assert.equal(shortMetricName(new Precision({ numClasses: 3, average: 'micro' }).name), 'precision_micro');
    assert.equal(shortMetricName(new TopKAccuracy({ k: 2 }).name), 'top2_acc');
    assert.equal(shortMetricName(new MeanAbsoluteError().name), 'mae');
    assert.equal(shortMetricName(new RootMeanSquaredError().name), 'rmse');
    assert.equal(shortMetricName(new R2Score().name), 'r2');
  });

  it('formats training then validation metrics, accuracies as percentages, and leaves out per-class lists', () => {
    const { training, validation } = formatEpochMetrics({
      accuracy: 0.5,
      macroF1: 0.91234,
      top2Accuracy: 0.987,
      meanAbsoluteError: 0.00001234,
      f1PerClass: [0.5, 0.75],
      validationAccuracy: 0.25,
      validationMacroF1: 0.5,
      validationTop2Accuracy: 1,
      validationMeanAbsoluteError: Number.NaN,
      // No training twin: a metric of its own that happens to start with "validation".
      validationScore: 3,
    });
    assert.equal(training, ' f1_macro 0.9123 top2_acc 98.70% mae 1.234e-5 validationScore 3.0000');
    assert.equal(validation, ' val f1_macro 0.5000 val top2_acc 100.00% val mae NaN');
  });
});

describe('ProgressBar with metrics', () => {
  it('plain lines show each classification metric and its validation twin next to the loss', () => {
    const { stream, text } = capture();
    manualSeed(3);
    const model = new Sequential(new Dense(4, 8, { activation: 'relu' }), new Dense(8, 3));
    const { epochs: history } = fit(model, classRows(120, 5), {
      optimizer: new Adam(model.parameters(), { lr: 0.03 }),
      epochs: 2,
      batchSize: 20,
      validationSplit: 0.25,
      metrics: [
        new Accuracy(),
        new F1Score({ numClasses: 3 }),
        new Precision({ numClasses: 3, average: 'weighted' }),
        new TopKAccuracy({ k: 2 }),
      ],
      callbacks: [new ProgressBar({ stream, live: false })],
      progress: false,
    });
    const lines = text().trim().split('\n');
    assert.equal(lines.length, 3);
    assert.ok(!text().includes('\r'));
    history.forEach((logs, epoch) => {
      const line = lines[epoch + 1]!;
      const [training, validation] = line.split(' - val ');
      assert.ok(training !== undefined && validation !== undefined, line);
      // Training metrics sit with the loss, before the validation part.
      assert.match(training, /loss \d\.\d{4} acc [\d.]+% f1_macro \S+ precision_weighted \S+ top2_acc \S+$/);
      assert.equal(valueAfter(training, 'f1_macro'), logs.metrics.macroF1!.toFixed(4));
      assert.equal(valueAfter(training, 'precision_weighted'), logs.metrics.weightedPrecision!.toFixed(4));
      assert.equal(valueAfter(training, 'top2_acc'), `${(logs.metrics.top2Accuracy! * 100).toFixed(2)}%`);
      assert.match(
        validation,
        /^loss \S+ val acc \S+ val f1_macro \S+ val precision_weighted \S+ val top2_acc \S+ - lr /,
      );
      assert.equal(valueAfter(validation, 'val f1_macro'), logs.metrics.validationMacroF1!.toFixed(4));
      assert.equal(
        valueAfter(validation, 'val precision_weighted'),
        logs.metrics.validationWeightedPrecision!.toFixed(4),
      );
      assert.equal(
        valueAfter(validation, 'val top2_acc'),
        `${(logs.metrics.validationTop2Accuracy! * 100).toFixed(2)}%`,
      );
    });
  });

  it('regression metrics (mae, rmse, r2) show on a terminal and in plain lines', () => {
    for (const live of [false, true]) {
      const { stream, text } = capture();
      manualSeed(4);
      const model = new Sequential(new Dense(2, 1));
      const { epochs: history } = fit(model, regressionRows(96, 6), {
        optimizer: new Adam(model.parameters(), { lr: 0.1 }),
        epochs: 3,
        batchSize: 16,
        loss: mseLoss,
        validationData: regressionRows(32, 7),
        metrics: [new MeanAbsoluteError(), new RootMeanSquaredError(), new R2Score()],
        callbacks: [new ProgressBar({ stream, live, refreshMilliseconds: 0 })],
        progress: false,
      });
      // On a terminal the epoch's final line overwrites the bar: what follows the last \r of each line.
      const lines = text()
        .trim()
        .split('\n')
        .slice(1)
        .map((line) => line.split('\r').at(-1)!.replace('\x1b[K', ''));
      assert.equal(lines.length, 3, `live ${live}`);
      history.forEach((logs, epoch) => {
        const line = lines[epoch]!;
        assert.match(
          line,
          /loss \S+ mae \S+ rmse \S+ r2 \S+ - val loss \S+ val mae \S+ val rmse \S+ val r2 \S+ - lr/,
        );
        assert.ok(!line.includes(' acc '), 'no accuracy for a regression');
        assert.equal(valueAfter(line, 'mae'), logs.metrics.meanAbsoluteError!.toFixed(4));
        assert.equal(valueAfter(line, 'rmse'), logs.metrics.rootMeanSquaredError!.toFixed(4));
        assert.equal(valueAfter(line, 'r2'), logs.metrics.r2Score!.toFixed(4));
        assert.equal(valueAfter(line, 'val mae'), logs.metrics.validationMeanAbsoluteError!.toFixed(4));
        assert.equal(valueAfter(line, 'val rmse'), logs.metrics.validationRootMeanSquaredError!.toFixed(4));
        assert.equal(valueAfter(line, 'val r2'), logs.metrics.validationR2Score!.toFixed(4));
      });
      // The model learns: the last epoch's R² on held-out rows is well above zero.
      assert.ok(history.at(-1)!.metrics.validationR2Score! > 0.5, JSON.stringify(history.at(-1)!.metrics));
    }
  });
});
