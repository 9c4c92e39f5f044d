/** The training loop, tested by its event trace, its reproducibility and its callbacks. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import {
  Adam,
  Dense,
  EarlyStopping,
  evaluate,
  EventRecorder,
  fit,
  Flatten,
  loadWeights,
  manualSeed,
  MetricsLogger,
  ModelCheckpoint,
  predict,
  ProgressBar,
  saveCheckpoint,
  saveWeights,
  Sequential,
  SGD,
  stepSchedule,
} from '../src/index.js';
import { toyDataset } from './helpers/toy-data.js';

function toyModel(seed: number) {
  manualSeed(seed);
  return new Sequential(new Flatten(), new Dense(16, 8, { activation: 'relu' }), new Dense(8, 2));
}

const temporary = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-train-'));

describe('fit', () => {
  it('emits fit ⊃ epoch ⊃ batch ⊃ step events in order and learns the toy task', () => {
    const model = toyModel(1);
    const recorder = new EventRecorder();
    const history = fit(model, toyDataset(96, 1), {
      optimizer: new Adam(model.parameters(), { lr: 0.05 }),
      epochs: 3,
      batchSize: 32,
      validationSplit: 0.25,
      callbacks: [recorder],
      progress: false,
    });
    const types = recorder.events.map((event) => event.type);
    const batch = ['batchStart', 'stepStart', 'stepEnd', 'batchEnd'];
    const epoch = [
      'epochStart',
      ...batch,
      ...batch,
      ...batch,
      'validationStart',
      'validationEnd',
      'epochEnd',
    ];
    assert.deepEqual(types, ['fitStart', ...epoch, ...epoch, ...epoch, 'fitEnd']);
    assert.equal(history.epochs.length, 3);
    assert.ok(
      history.epochs[2]!.validationAccuracy! >= 0.9,
      `validation accuracy ${history.epochs[2]!.validationAccuracy}`,
    );
    assert.ok(history.epochs[2]!.loss < history.epochs[0]!.loss);
  });

  it('one seed makes a run reproducible', () => {
    const run = () => {
      const model = toyModel(5);
      fit(model, toyDataset(64, 2), {
        optimizer: new SGD(model.parameters(), { lr: 0.1, momentum: 0.9 }),
        epochs: 2,
        batchSize: 16,
        seed: 9,
        progress: false,
      });
      return Array.from(model.parameters()[0]!.data);
    };
    assert.deepEqual(run(), run());
  });

  it('early stopping stops when the metric stalls and restores the best weights', () => {
    const model = toyModel(2);
    const stopper = new EarlyStopping({ monitor: 'validationLoss', patience: 1, minDelta: 10 });
    const history = fit(model, toyDataset(64, 3), {
      optimizer: new Adam(model.parameters(), { lr: 0.01 }),
      epochs: 10,
      validationSplit: 0.25,
      callbacks: [stopper],
      progress: false,
    });
    assert.equal(history.epochs.length, 2, 'a minDelta of 10 can never be met, so it stops after patience');
    assert.ok(history.stoppedEarly);
    assert.match(history.stopReason!, /early stopping/);
    assert.equal(stopper.bestEpoch, 0);
  });

  it('checkpoints the best model and logs metrics as JSON lines', () => {
    const model = toyModel(3);
    const checkpoint = path.join(temporary, 'best.safetensors');
    const log = path.join(temporary, 'metrics.jsonl');
    fit(model, toyDataset(64, 4), {
      optimizer: new Adam(model.parameters(), { lr: 0.05 }),
      epochs: 3,
      validationSplit: 0.25,
      callbacks: [
        new ModelCheckpoint({ path: checkpoint, monitor: 'validationAccuracy' }),
        new MetricsLogger(log),
      ],
      progress: false,
    });
    const restored = toyModel(99);
    const metadata = loadWeights(restored, checkpoint);
    assert.ok(Number(metadata.epoch) >= 1);
    const lines = fs
      .readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.deepEqual(
      lines.map((line) => line.event),
      ['fitStart', 'epoch', 'epoch', 'epoch', 'fitEnd'],
    );
    assert.equal(typeof lines[1]!.validationAccuracy, 'number');
  });

  it('a step schedule sets the learning rate per epoch', () => {
    const model = toyModel(4);
    const history = fit(model, toyDataset(32, 5), {
      optimizer: new SGD(model.parameters(), { lr: 0.1 }),
      epochs: 3,
      schedule: stepSchedule(1, 0.5),
      progress: false,
    });
    assert.deepEqual(
      history.epochs.map((e) => e.learningRate),
      [0.1, 0.05, 0.025],
    );
  });

  it('evaluate and predict run in inference mode and restore the mode', () => {
    const model = toyModel(6);
    const data = toyDataset(40, 6);
    const result = evaluate(model, data);
    assert.ok(result.accuracy >= 0 && result.accuracy <= 1 && Number.isFinite(result.loss));
    const logits = predict(model, data, { batchSize: 16 });
    assert.deepEqual(logits.shape, [40, 2]);
    assert.ok(model.training);
  });
});

describe('progress output', () => {
  const capture = () => {
    let text = '';
    const stream = new Writable({
      write(chunk, _encoding, done) {
        text += String(chunk);
        done();
      },
    });
    return { stream, text: () => text };
  };
  it('writes plain lines when the output is not a terminal', () => {
    const { stream, text } = capture();
    const model = toyModel(7);
    fit(model, toyDataset(64, 7), {
      optimizer: new Adam(model.parameters()),
      epochs: 2,
      batchSize: 16,
      callbacks: [new ProgressBar({ stream, live: false })],
      progress: false,
    });
    const lines = text().trim().split('\n');
    assert.equal(lines.length, 3);
    assert.match(lines[0]!, /Training on 64 samples for 2 epochs/);
    assert.match(lines[1]!, /^epoch 1\/2 - 0:0\d - loss \d\.\d{4} acc \d+\.\d{2}% - lr .* samples\/s$/);
    assert.ok(!text().includes('\r'));
  });
  it('redraws one line with a bar, samples/s and ETA on a terminal', () => {
    const { stream, text } = capture();
    const model = toyModel(8);
    fit(model, toyDataset(64, 8), {
      optimizer: new Adam(model.parameters()),
      epochs: 1,
      batchSize: 16,
      callbacks: [new ProgressBar({ stream, live: true, refreshMilliseconds: 0 })],
      progress: false,
    });
    assert.match(
      text(),
      /\repoch 1\/1 \[[=> ]+\] 2\/4 loss \d\.\d{4} acc [\d.]+% \d+ samples\/s ETA \d+:\d\d/,
    );
  });
});

describe('no silent NaN', () => {
  it('a diverging run stops naming the step, the batch and the parameter, before applying the bad step', () => {
    // Adam moves every weight by about lr a step: at 1e20 the second step's logits overflow float32.
    const model = toyModel(3);
    const data = toyDataset(64, 1);
    const snapshots: (Float32Array | Float64Array)[][] = [];
    assert.throws(
      () =>
        fit(model, data, {
          optimizer: new Adam(model.parameters(), { lr: 1e20 }),
          epochs: 3,
          batchSize: 16,
          progress: false,
          callbacks: [
            {
              handle(event) {
                if (event.type === 'batchEnd') snapshots.push(model.parameters().map((p) => p.data.slice()));
              },
            },
          ],
        }),
      (error: Error) => {
        assert.equal(error.name, 'NonFiniteError');
        assert.match(
          error.message,
          /^training diverged at step \d+ \(epoch \d, batch \d of 4\): the loss is (NaN|Infinity)(, and the first parameter with a non-finite gradient is '[\d.]+(weight|bias)')?/,
        );
        return true;
      },
    );
    assert.ok(snapshots.length >= 1, 'at least one step ran before divergence');
    const last = snapshots.at(-1)!;
    model.parameters().forEach((parameter, index) => {
      assert.deepEqual(parameter.data, last[index], 'the diverging step was not applied');
    });
  });

  it("nonFinite: 'skip' leaves the weights unchanged for a bad batch and counts it", () => {
    const model = toyModel(3);
    const data = toyDataset(32, 1);
    data.images[5] = Number.NaN; // sample 0: every batch holding it has a NaN loss
    const history = fit(model, data, {
      optimizer: new SGD(model.parameters(), { lr: 0.1 }),
      epochs: 2,
      batchSize: 8,
      progress: false,
      nonFinite: 'skip',
      allowNonFiniteInputs: true,
    });
    assert.equal(history.skippedSteps, 2, 'one batch an epoch holds the NaN sample');
    for (const parameter of model.parameters()) assert.ok(parameter.data.every(Number.isFinite));
  });

  it('NaN in the inputs is refused before training, naming the sample', () => {
    const model = toyModel(3);
    const data = toyDataset(32, 1);
    data.images[16 * 7 + 3] = Number.POSITIVE_INFINITY;
    assert.throws(
      () =>
        fit(model, data, { optimizer: new SGD(model.parameters(), { lr: 0.1 }), epochs: 1, progress: false }),
      /fit: the training images: sample 7 holds Infinity at value 3/,
    );
  });

  it('weights and checkpoints are never written from non-finite values; the previous file stays', () => {
    const model = toyModel(3);
    const file = path.join(temporary, 'finite.safetensors');
    saveWeights(model, file);
    const before = fs.readFileSync(file);
    model.parameters()[1]!.data[2] = Number.NaN;
    assert.throws(
      () => saveWeights(model, file),
      /refusing to write '.*finite\.safetensors': '1\.bias' has 1 of 8 values that are NaN or infinite/,
    );
    assert.deepEqual(fs.readFileSync(file), before);
    const checkpoint = path.join(temporary, 'diverged-checkpoint.safetensors');
    assert.throws(
      () => saveCheckpoint(checkpoint, model, null, { epoch: 1 }),
      /refusing to write the checkpoint/,
    );
    assert.equal(fs.existsSync(checkpoint), false);
  });
});
