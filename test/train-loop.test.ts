/**
 * The training loop for any task: its stages and cancels (tested by the event trace), the guaranteed
 * fitEnd, fitAsync, the data protocol (map-style, iterable, loaders, prefetch), regression and
 * multi-label training, gradient clipping and the non-finite guard in the new loop.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import {
  Adam,
  binaryCrossEntropyWithLogits,
  type Callback,
  clipGradientNorm,
  clipGradientValue,
  collateExamples,
  DataLoader,
  Dense,
  EventRecorder,
  evaluate,
  type Example,
  fit,
  fitAsync,
  Flatten,
  type IterableDataset,
  manualSeed,
  MeanAbsoluteError,
  MemoryRunStore,
  type Metric,
  type MetricValues,
  ModelCheckpoint,
  mseLoss,
  NonFiniteError,
  Parameter,
  predict,
  PruningCallback,
  Random,
  RandomSampler,
  RunTracker,
  Sequential,
  SGD,
  ShapeError,
  Study,
  Tensor,
  tensor,
  tensorDataset,
  TrainingCheckpoint,
  type TrainingEvent,
  TrialPruned,
  type Batch,
  WorkerPrefetcher,
} from '../src/index.js';
import { prefetchRows } from './helpers/prefetch-rows.js';
import { toyDataset } from './helpers/toy-data.js';

function toyModel(seed: number) {
  manualSeed(seed);
  return new Sequential(new Flatten(), new Dense(16, 8, { activation: 'relu' }), new Dense(8, 2));
}

/** Tensors of the toy images: inputs [N, 16] and class indices [N]. */
function toyRows(count: number, seed: number): { inputs: Tensor; labels: Int32Array } {
  const data = toyDataset(count, seed);
  return { inputs: new Tensor(data.images, [count, 16]), labels: data.labels };
}

const types = (recorder: EventRecorder) => recorder.events.map((event) => event.type);
const temporary = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-train-loop-'));

/** A callback that runs `act` on the first event matching `when`. */
function once(when: (event: TrainingEvent) => boolean, act: Callback['handle']): Callback {
  let done = false;
  return {
    handle(event, control) {
      if (!done && when(event)) {
        done = true;
        act(event, control);
      }
    },
  };
}

function weights(model: Sequential): number[] {
  return model.parameters().flatMap((parameter) => Array.from(parameter.data));
}

describe('stages and cancels', () => {
  const options = (model: Sequential, callbacks: Callback[]) => ({
    optimizer: new SGD(model.parameters(), { lr: 0.1 }),
    epochs: 2,
    batchSize: 16,
    progress: false as const,
    callbacks,
  });

  it('skipBatch at batchStart trains nothing on that batch; at stepStart applies no step', () => {
    for (const stage of ['batchStart', 'stepStart'] as const) {
      const model = toyModel(1);
      const recorder = new EventRecorder();
      let before: number[] = [];
      const skipper = once(
        (event) => event.type === stage && event.epoch === 0 && event.batch === 1,
        (_event, control) => {
          before = weights(model);
          control.skipBatch('test');
        },
      );
      let after: number[] = [];
      const watcher = once(
        (event) => event.type === 'batchSkipped',
        () => (after = weights(model)),
      );
      const history = fit(model, toyDataset(32, 1), options(model, [skipper, recorder, watcher]));
      const trace = types(recorder);
      const expectedBatch1 =
        stage === 'batchStart' ? ['batchStart', 'batchSkipped'] : ['batchStart', 'stepStart', 'batchSkipped'];
      assert.deepEqual(
        trace.slice(0, 7),
        ['fitStart', 'epochStart', 'batchStart', 'stepStart', 'stepEnd', 'batchEnd', ...expectedBatch1].slice(
          0,
          7,
        ),
      );
      assert.deepEqual(trace.slice(6, 6 + expectedBatch1.length), expectedBatch1);
      assert.deepEqual(after, before, `${stage}: the skipped batch changed no weight`);
      assert.equal(history.epochs.length, 2);
      // The epoch's loss and metrics count only the batch that was trained on.
      const batchEnds = recorder.events.filter((event) => event.type === 'batchEnd' && event.epoch === 0);
      assert.equal(batchEnds.length, 1);
    }
  });

  it('skipEpoch ends the epoch early, still validates and ends it, and the next epoch runs whole', () => {
    const model = toyModel(2);
    const recorder = new EventRecorder();
    const skipper = once(
      (event) => event.type === 'batchEnd' && event.epoch === 0 && event.batch === 0,
      (_event, control) => control.skipEpoch('test'),
    );
    const history = fit(model, toyDataset(64, 2), {
      ...options(model, [skipper, recorder]),
      validationData: toyDataset(16, 3),
    });
    const epoch0 = recorder.events
      .filter((event) => 'epoch' in event && event.epoch === 0)
      .map((e) => e.type);
    assert.deepEqual(epoch0, [
      'epochStart',
      'batchStart',
      'stepStart',
      'stepEnd',
      'batchEnd',
      'validationStart',
      'validationEnd',
      'epochEnd',
    ]);
    assert.equal(history.epochs[0]!.partial, true);
    assert.equal(history.epochs[1]!.partial, undefined);
    assert.equal(recorder.events.filter((e) => e.type === 'batchEnd' && e.epoch === 1).length, 4);
  });

  it('stopAfterBatch ends the run at once: no epochEnd for the unfinished epoch, fitEnd says stopped', () => {
    const model = toyModel(3);
    const recorder = new EventRecorder();
    const stopper = once(
      (event) => event.type === 'batchEnd' && event.epoch === 1 && event.batch === 0,
      (_event, control) => control.stopAfterBatch('enough'),
    );
    const history = fit(model, toyDataset(32, 3), options(model, [stopper, recorder]));
    const trace = types(recorder);
    assert.deepEqual(trace.slice(-3), ['stepEnd', 'batchEnd', 'fitEnd']);
    assert.equal(history.epochs.length, 1);
    assert.equal(history.stoppedEarly, true);
    assert.equal(history.stopReason, 'enough');
    const end = recorder.events.at(-1)!;
    assert.ok(end.type === 'fitEnd' && end.outcome === 'stopped' && end.stopReason === 'enough');
  });

  it('stop ends the run after the current epoch', () => {
    const model = toyModel(4);
    const recorder = new EventRecorder();
    const stopper = once(
      (event) => event.type === 'batchStart' && event.epoch === 0,
      (_event, control) => control.stop('after this epoch'),
    );
    const history = fit(model, toyDataset(32, 4), { ...options(model, [stopper, recorder]), epochs: 5 });
    assert.equal(history.epochs.length, 1);
    assert.deepEqual(types(recorder).slice(-2), ['epochEnd', 'fitEnd']);
  });

  it('an aborted signal ends the run after the current batch', () => {
    const model = toyModel(5);
    const controller = new AbortController();
    const aborter = once(
      (event) => event.type === 'batchEnd' && event.batch === 1,
      () => controller.abort('user'),
    );
    const recorder = new EventRecorder();
    const history = fit(model, toyDataset(64, 5), {
      ...options(model, [aborter, recorder]),
      signal: controller.signal,
    });
    assert.equal(history.epochs.length, 0);
    assert.match(history.stopReason!, /aborted: user/);
    assert.equal(recorder.events.filter((event) => event.type === 'batchEnd').length, 2);
  });
});

describe('the guaranteed end', () => {
  it('fitEnd fires, with the error, when a callback throws mid-epoch; the error reaches the caller', () => {
    const model = toyModel(6);
    const recorder = new EventRecorder();
    const failure = new Error('boom');
    const thrower = once(
      (event) => event.type === 'batchEnd' && event.epoch === 1,
      () => {
        throw failure;
      },
    );
    const checkpoint = path.join(temporary, 'failed', 'checkpoint.safetensors');
    const trainingCheckpoint = new TrainingCheckpoint({ path: checkpoint, everyEpochs: 5 });
    assert.throws(
      () =>
        fit(model, toyDataset(32, 6), {
          optimizer: new SGD(model.parameters(), { lr: 0.1 }),
          epochs: 3,
          batchSize: 16,
          progress: false,
          callbacks: [recorder, thrower, trainingCheckpoint],
        }),
      (error) => error === failure,
    );
    const end = recorder.events.at(-1)!;
    assert.equal(end.type, 'fitEnd');
    assert.ok(end.type === 'fitEnd' && end.outcome === 'failed' && end.error === failure);
    assert.equal(end.type === 'fitEnd' && end.history.length, 1);
    // A failed fit writes no checkpoint at its end: the weights are mid-epoch.
    assert.equal(fs.existsSync(checkpoint), false);
  });

  it('a failure in one fitEnd handler does not keep fitEnd from the others', () => {
    const model = toyModel(7);
    const recorder = new EventRecorder();
    const failing: Callback = {
      handle(event) {
        if (event.type === 'fitEnd') throw new Error('fitEnd handler failed');
      },
    };
    assert.throws(
      () =>
        fit(model, toyDataset(16, 7), {
          optimizer: new SGD(model.parameters(), { lr: 0.1 }),
          epochs: 1,
          progress: false,
          callbacks: [failing, recorder],
        }),
      /fitEnd handler failed/,
    );
    assert.equal(recorder.events.at(-1)!.type, 'fitEnd');
  });

  it('a pruned trial ends fit with fitEnd (outcome failed, error TrialPruned); the tracker records it as stopped', async () => {
    const store = new MemoryRunStore();
    const tracker = await RunTracker.start(store, { name: 'pruned' });
    const recorder = new EventRecorder();
    const study = await Study.create({
      direction: 'maximize',
      sampler: new RandomSampler({ seed: 1 }),
      pruner: { prune: (_study, trial) => trial.intermediateValues.size >= 1 },
    });
    await study.optimize(
      (trial) => {
        const model = toyModel(8);
        fit(model, toyDataset(32, 8), {
          optimizer: new SGD(model.parameters(), { lr: 0.1 }),
          epochs: 4,
          batchSize: 16,
          validationData: toyDataset(16, 9),
          progress: false,
          callbacks: [recorder, tracker, new PruningCallback(trial)],
        });
        return 0;
      },
      { nTrials: 1 },
    );
    const [trial] = await study.trials();
    assert.equal(trial!.state, 'pruned');
    const end = recorder.events.at(-1)!;
    assert.ok(end.type === 'fitEnd' && end.outcome === 'failed' && end.error instanceof TrialPruned);
    await tracker.flush();
    const run = await store.getRun(tracker.runId);
    assert.equal(run.state, 'stopped');
    await tracker.close();
  });

  it('a run that fails records the tracker run as failed with the error', async () => {
    const store = new MemoryRunStore();
    const tracker = await RunTracker.start(store, { name: 'fails' });
    const model = toyModel(9);
    const thrower = once(
      (event) => event.type === 'batchEnd',
      () => {
        throw new Error('data source went away');
      },
    );
    assert.throws(() =>
      fit(model, toyDataset(32, 9), {
        optimizer: new SGD(model.parameters(), { lr: 0.1 }),
        epochs: 2,
        progress: false,
        callbacks: [tracker, thrower],
      }),
    );
    await tracker.flush();
    const run = await store.getRun(tracker.runId);
    assert.equal(run.state, 'failed');
    assert.match(run.error ?? '', /data source went away/);
    await tracker.close();
  });
});

describe('fitAsync', () => {
  it('lets a timer tick while it trains, and gives the same bits as fit', async () => {
    const run = (model: Sequential) => ({
      optimizer: new Adam(model.parameters(), { lr: 0.01 }),
      epochs: 3,
      batchSize: 8,
      seed: 3,
      validationData: toyDataset(32, 11),
      progress: false as const,
    });
    const syncModel = toyModel(10);
    const syncHistory = fit(syncModel, toyDataset(256, 10), run(syncModel));

    const asyncModel = toyModel(10);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    let ticksAtEnd = -1;
    const asyncHistory = await fitAsync(asyncModel, toyDataset(256, 10), {
      ...run(asyncModel),
      callbacks: [{ handle: (event) => void (event.type === 'fitEnd' && (ticksAtEnd = ticks)) }],
    });
    clearInterval(timer);
    assert.ok(ticksAtEnd >= 3, `the interval ticked ${ticksAtEnd} times during fitAsync`);
    assert.deepEqual(weights(asyncModel), weights(syncModel));
    assert.deepEqual(
      asyncHistory.epochs.map((e) => [e.loss, e.accuracy, e.validationLoss]),
      syncHistory.epochs.map((e) => [e.loss, e.accuracy, e.validationLoss]),
    );
  });

  it('a synchronous fit lets no timer tick (which is why fitAsync exists)', () => {
    const model = toyModel(10);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    fit(model, toyDataset(256, 10), {
      optimizer: new Adam(model.parameters(), { lr: 0.01 }),
      epochs: 3,
      batchSize: 8,
      progress: false,
    });
    clearInterval(timer);
    assert.equal(ticks, 0);
  });

  it('fitEnd fires and the error rejects the promise when a callback throws', async () => {
    const model = toyModel(12);
    const recorder = new EventRecorder();
    await assert.rejects(
      fitAsync(model, toyDataset(32, 12), {
        optimizer: new SGD(model.parameters(), { lr: 0.1 }),
        epochs: 2,
        progress: false,
        callbacks: [
          recorder,
          once(
            (event) => event.type === 'batchEnd',
            () => {
              throw new Error('async boom');
            },
          ),
        ],
      }),
      /async boom/,
    );
    assert.equal(recorder.events.at(-1)!.type, 'fitEnd');
  });
});

describe('the data protocol', () => {
  it('a map-style dataset and an iterable dataset both train the toy task', () => {
    const { inputs, labels } = toyRows(128, 13);
    const mapStyle = tensorDataset(inputs, labels);
    const stream: IterableDataset<Example> = {
      length: 128,
      *[Symbol.iterator]() {
        for (let i = 0; i < mapStyle.length; i++) yield mapStyle.get(i);
      },
    };
    const validation = tensorDataset(toyRows(64, 14).inputs, toyRows(64, 14).labels);
    for (const data of [mapStyle, stream]) {
      manualSeed(13);
      const model = new Sequential(new Dense(16, 8, { activation: 'relu' }), new Dense(8, 2));
      const history = fit(model, data, {
        optimizer: new Adam(model.parameters(), { lr: 0.05 }),
        epochs: 4,
        batchSize: 16,
        validationData: validation,
        progress: false,
      });
      const last = history.epochs.at(-1)!;
      assert.ok(last.validationAccuracy! >= 0.9, `validation accuracy ${last.validationAccuracy}`);
      assert.equal(evaluate(model, validation).accuracy, last.validationAccuracy);
      assert.deepEqual(predict(model, validation).shape, [64, 2]);
    }
  });

  it('a stream without a length trains with 0 batches per epoch announced; shuffling it is refused', () => {
    const { inputs, labels } = toyRows(40, 15);
    const rows = tensorDataset(inputs, labels);
    const stream: IterableDataset<Example> = {
      *[Symbol.iterator]() {
        for (let i = 0; i < rows.length; i++) yield rows.get(i);
      },
    };
    const model = new Sequential(new Dense(16, 2));
    const recorder = new EventRecorder();
    const history = fit(model, stream, {
      optimizer: new SGD(model.parameters(), { lr: 0.1 }),
      epochs: 1,
      batchSize: 16,
      progress: false,
      callbacks: [recorder],
    });
    const start = recorder.events[0]!;
    assert.ok(start.type === 'fitStart' && start.batchesPerEpoch === 0);
    assert.equal(recorder.events.filter((event) => event.type === 'batchEnd').length, 3);
    assert.equal(typeof history.epochs[0]!.accuracy, 'number');
    assert.throws(() => new DataLoader(stream, { batchSize: 4, shuffle: true }), /cannot be shuffled/);
  });

  it('a loader with a collate function of its own, and prefetching, give the same batches', async () => {
    const { inputs, labels } = toyRows(50, 16);
    const rows = tensorDataset(inputs, labels);
    const collate = (samples: Example[]) => collateExamples(samples);
    const plain = new DataLoader(rows, { batchSize: 8, shuffle: true, seed: 4, collate });
    const prefetching = new DataLoader(rows, { batchSize: 8, shuffle: true, seed: 4, collate, prefetch: 3 });
    const plainBatches = [...plain].map((batch) => Array.from(batch.input.data));
    const prefetched: number[][] = [];
    for await (const batch of prefetching) prefetched.push(Array.from(batch.input.data));
    assert.equal(plainBatches.length, 7);
    assert.deepEqual(prefetched, plainBatches);
    // fitAsync over a prefetching loader: the same bits as fit over a plain one.
    const train = async (loader: DataLoader<ReturnType<typeof collate>>, asynchronous: boolean) => {
      manualSeed(16);
      const model = new Sequential(new Dense(16, 2));
      const settings = { optimizer: new SGD(model.parameters(), { lr: 0.1 }), epochs: 2, progress: false };
      if (asynchronous) await fitAsync(model, loader, settings);
      else fit(model, loader, settings);
      return weights(model);
    };
    assert.deepEqual(
      await train(new DataLoader(rows, { batchSize: 8, shuffle: true, seed: 5, prefetch: 2 }), true),
      await train(new DataLoader(rows, { batchSize: 8, shuffle: true, seed: 5 }), false),
    );
  });

  it('a one-shot iterator as the data fails at its second epoch, saying why', () => {
    const { inputs, labels } = toyRows(16, 18);
    const rows = tensorDataset(inputs, labels);
    const oneShot = (function* () {
      for (let i = 0; i < rows.length; i++) yield rows.get(i);
    })();
    const model = new Sequential(new Dense(16, 2));
    const recorder = new EventRecorder();
    assert.throws(
      () =>
        fit(model, oneShot, {
          optimizer: new SGD(model.parameters(), { lr: 0.1 }),
          epochs: 2,
          progress: false,
          callbacks: [recorder],
        }),
      /epoch 2 had no batches: the data is empty, or a stream that cannot be read twice/,
    );
    assert.equal(recorder.events.at(-1)!.type, 'fitEnd');
  });

  it('evaluate on float targets reports the loss and the metrics given, and no accuracy', () => {
    const data = tensorDataset(
      new Tensor(new Float32Array([0, 1, 2, 3]), [4, 1]),
      new Tensor(new Float32Array([1, 3, 5, 7]), [4, 1]),
    );
    const model = new Sequential(new Dense(1, 1));
    model.parameters()[0]!.data[0] = 2;
    model.parameters()[1]!.data[0] = 1;
    assert.deepEqual(evaluate(model, data, { loss: mseLoss }), { loss: 0, metrics: {}, samples: 4 });
    const withError = evaluate(model, data, { loss: mseLoss, metrics: [new MeanAbsoluteError()] });
    assert.deepEqual(withError.metrics, { meanAbsoluteError: 0 });
  });

  it('validationSplit splits a map-style dataset by seed', () => {
    const { inputs, labels } = toyRows(40, 17);
    const model = new Sequential(new Dense(16, 2));
    const recorder = new EventRecorder();
    fit(model, tensorDataset(inputs, labels), {
      optimizer: new SGD(model.parameters(), { lr: 0.1 }),
      epochs: 1,
      validationSplit: 0.25,
      progress: false,
      callbacks: [recorder],
    });
    const start = recorder.events[0]!;
    assert.ok(start.type === 'fitStart' && start.trainSamples === 30 && start.validationSamples === 10);
  });
});

describe('any task', () => {
  it('regression: MSE on float targets learns y = 2·x₁ − 3·x₂ + 1, with mean absolute error as a metric', () => {
    const random = new Random(20);
    const count = 256;
    const x = new Float32Array(count * 2);
    const y = new Float32Array(count);
    for (let i = 0; i < count; i++) {
      x[i * 2] = random.normal();
      x[i * 2 + 1] = random.normal();
      y[i] = 2 * x[i * 2]! - 3 * x[i * 2 + 1]! + 1 + 0.01 * random.normal();
    }
    const data = tensorDataset(new Tensor(x, [count, 2]), new Tensor(y, [count, 1]));
    manualSeed(20);
    const model = new Sequential(new Dense(2, 1));
    const history = fit(model, data, {
      optimizer: new Adam(model.parameters(), { lr: 0.05 }),
      epochs: 30,
      batchSize: 32,
      loss: mseLoss,
      metrics: [new MeanAbsoluteError()],
      progress: false,
    });
    const last = history.epochs.at(-1)!;
    assert.equal(last.accuracy, undefined, 'no accuracy for float targets');
    assert.ok(last.loss < 0.01, `final MSE ${last.loss}`);
    assert.ok(last.metrics.meanAbsoluteError! < 0.1, `final MAE ${last.metrics.meanAbsoluteError}`);
    const [weight, bias] = model.parameters();
    assert.ok(Math.abs(weight!.data[0]! - 2) < 0.05 && Math.abs(weight!.data[1]! + 3) < 0.05);
    assert.ok(Math.abs(bias!.data[0]! - 1) < 0.05);
  });

  it('multi-label: binary cross-entropy with logits on multi-hot targets, with a metric of the test own', () => {
    // Three labels per 4×4 image: top half bright, left half bright, centre bright.
    const random = new Random(21);
    const count = 384;
    const images = new Float32Array(count * 16);
    const targets = new Float32Array(count * 3);
    for (let i = 0; i < count; i++) {
      const top = random.next() < 0.5;
      const left = random.next() < 0.5;
      const centre = random.next() < 0.5;
      targets.set([Number(top), Number(left), Number(centre)], i * 3);
      for (let row = 0; row < 4; row++)
        for (let column = 0; column < 4; column++) {
          const inCentre = row >= 1 && row <= 2 && column >= 1 && column <= 2;
          const value =
            0.3 * Number(top === row < 2) +
            0.3 * Number(left === column < 2) +
            0.4 * Number(centre && inCentre) +
            0.05 * random.normal();
          images[i * 16 + row * 4 + column] = value;
        }
    }
    /** Fraction of labels predicted right (logit > 0 means present). */
    class LabelAccuracy implements Metric {
      readonly name = 'labelAccuracy';
      private right = 0;
      private total = 0;
      update(output: MetricValues, target: MetricValues): void {
        const scores = (output as Tensor).data;
        const truth = (target as Tensor).data;
        for (let i = 0; i < scores.length; i++) if (scores[i]! > 0 === truth[i]! > 0.5) this.right++;
        this.total += scores.length;
      }
      compute(): number {
        return this.right / this.total;
      }
      reset(): void {
        this.right = 0;
        this.total = 0;
      }
    }
    const data = tensorDataset(new Tensor(images, [count, 1, 4, 4]), new Tensor(targets, [count, 3]));
    manualSeed(21);
    const model = new Sequential(new Flatten(), new Dense(16, 16, { activation: 'relu' }), new Dense(16, 3));
    const history = fit(model, data, {
      optimizer: new Adam(model.parameters(), { lr: 0.02 }),
      epochs: 20,
      batchSize: 32,
      loss: (output, target) => binaryCrossEntropyWithLogits(output, target as Tensor),
      metrics: [new LabelAccuracy()],
      validationSplit: 0.25,
      progress: false,
    });
    const last = history.epochs.at(-1)!;
    assert.ok(
      last.metrics.validationLabelAccuracy! >= 0.95,
      `label accuracy ${last.metrics.validationLabelAccuracy}`,
    );
  });

  it('an output that does not fit the targets is refused naming both shapes and the loss', () => {
    const data = tensorDataset(
      new Tensor(new Float32Array(8 * 2), [8, 2]),
      new Tensor(new Float32Array(8), [8, 1]),
    );
    const model = new Sequential(new Dense(2, 3));
    assert.throws(
      () =>
        fit(model, data, {
          optimizer: new SGD(model.parameters(), { lr: 0.1 }),
          epochs: 1,
          loss: mseLoss,
          progress: false,
        }),
      (error: Error) =>
        error instanceof ShapeError &&
        /\[8, 3\]/.test(error.message) &&
        /\[8, 1\]/.test(error.message) &&
        /mseLoss/.test(error.message),
    );
    assert.throws(
      () =>
        fit(model, data, { optimizer: new SGD(model.parameters(), { lr: 0.1 }), epochs: 1, progress: false }),
      /float tensors, which have no default loss/,
    );
  });
});

describe('gradient clipping', () => {
  function parameters(...gradients: number[][]): Parameter[] {
    return gradients.map((values) => {
      const parameter = new Parameter(new Tensor(new Float32Array(values.length), [values.length]));
      parameter.grad = tensor(values);
      return parameter;
    });
  }

  it('by norm: the total L2 norm over all parameters, scaled by maxNorm / (norm + 1e-6) when above', () => {
    const chosen = parameters([3, 4], [12]);
    // √(3² + 4² + 12²) = 13.
    assert.equal(clipGradientNorm(chosen, 6.5), 13);
    const scale = 6.5 / (13 + 1e-6);
    const clipped = chosen.flatMap((p) => Array.from(p.grad!.data));
    [3, 4, 12].forEach((value, i) => assert.ok(Math.abs(clipped[i]! - value * scale) < 1e-6));
    // Below the limit nothing changes, not even by a rounding.
    const small = parameters([0.3, 0.4]);
    assert.ok(Math.abs(clipGradientNorm(small, 1) - 0.5) < 1e-7);
    assert.deepEqual(Array.from(small[0]!.grad!.data), [Math.fround(0.3), Math.fround(0.4)]);
  });

  it('by norm with other p: the 1-norm sums |g|, the infinity norm takes the largest', () => {
    assert.equal(clipGradientNorm(parameters([1, -2], [3]), 100, 1), 6);
    const chosen = parameters([1, -2], [3]);
    assert.equal(clipGradientNorm(chosen, 1.5, Infinity), 3);
    assert.ok(Math.abs(chosen[1]!.grad!.data[0]! - 1.5) < 1e-5);
  });

  it('by value clamps each element; parameters without a gradient are left alone', () => {
    const chosen = parameters([0.2, -3, 5]);
    const frozen = new Parameter(new Tensor(new Float32Array(2), [2]));
    clipGradientValue([...chosen, frozen], 1);
    assert.deepEqual(Array.from(chosen[0]!.grad!.data), [Math.fround(0.2), -1, 1]);
    assert.equal(frozen.grad, null);
  });

  it('as fit options: stepStart reports the norm before clipping, and the step sees the clipped gradients', () => {
    const model = toyModel(22);
    const norms: { reported: number; after: number }[] = [];
    const probe: Callback = {
      handle(event, control) {
        if (event.type !== 'stepStart') return;
        let sum = 0;
        for (const parameter of control.model.parameters())
          for (const value of parameter.grad?.data ?? []) sum += value * value;
        norms.push({ reported: event.gradientNorm!, after: Math.sqrt(sum) });
      },
    };
    fit(model, toyDataset(32, 22), {
      optimizer: new SGD(model.parameters(), { lr: 0.1 }),
      epochs: 1,
      batchSize: 8,
      clipGradientNorm: 0.01,
      progress: false,
      callbacks: [probe],
    });
    assert.equal(norms.length, 4);
    for (const { reported, after } of norms) {
      assert.ok(reported > 0.01, `the toy gradients are larger than the limit (${reported})`);
      assert.ok(after <= 0.01 + 1e-6, `clipped norm ${after}`);
    }
  });
});

describe('the non-finite guard in the new loop', () => {
  it('lr 1e6 with Adam on a tiny regression model stops naming step, batch and parameter, and writes no file', () => {
    // Adam moves every weight by about lr a step; through four linear layers the second step's
    // output, and its square in the MSE, overflow float32.
    const random = new Random(23);
    const inputs = new Float32Array(64 * 16).map(() => random.normal());
    const targets = new Float32Array(64).map(() => random.normal());
    const data = tensorDataset(new Tensor(inputs, [64, 16]), new Tensor(targets, [64, 1]));
    manualSeed(23);
    const model = new Sequential(new Dense(16, 8), new Dense(8, 8), new Dense(8, 8), new Dense(8, 1));
    const weightsFile = path.join(temporary, 'diverged.safetensors');
    const checkpointFile = path.join(temporary, 'diverged-checkpoint.safetensors');
    const recorder = new EventRecorder();
    assert.throws(
      () =>
        fit(model, data, {
          optimizer: new Adam(model.parameters(), { lr: 1e6 }),
          epochs: 20,
          batchSize: 16,
          loss: mseLoss,
          progress: false,
          callbacks: [
            recorder,
            new ModelCheckpoint({ path: weightsFile, monitor: 'loss' }),
            new TrainingCheckpoint({ path: checkpointFile }),
          ],
        }),
      (error: Error) =>
        error instanceof NonFiniteError &&
        /^training diverged at step \d+ \(epoch \d+, batch \d+ of 4\): the loss is (NaN|Infinity), and the first parameter with a non-finite gradient is '\d\.(weight|bias)'/.test(
          error.message,
        ),
    );
    assert.equal(fs.existsSync(weightsFile), false);
    assert.equal(fs.existsSync(checkpointFile), false);
    const end = recorder.events.at(-1)!;
    assert.ok(end.type === 'fitEnd' && end.outcome === 'failed' && end.error instanceof NonFiniteError);
    for (const parameter of model.parameters()) assert.ok(parameter.data.every(Number.isFinite));
  });

  it("nonFinite: 'skip' skips the bad batches with a batchSkipped event and counts them", () => {
    const model = toyModel(24);
    const recorder = new EventRecorder();
    const images = toyDataset(32, 24);
    images.images[5] = Number.NaN;
    const history = fit(model, images, {
      optimizer: new SGD(model.parameters(), { lr: 0.1 }),
      epochs: 1,
      batchSize: 8,
      nonFinite: 'skip',
      allowNonFiniteInputs: true,
      shuffle: false,
      progress: false,
      callbacks: [recorder],
    });
    assert.equal(history.skippedSteps, 1);
    const skipped = recorder.events.find((event) => event.type === 'batchSkipped');
    assert.ok(skipped?.type === 'batchSkipped' && skipped.batch === 0 && /non-finite/.test(skipped.reason));
  });

  it('NaN in a streamed batch is refused naming the batch and sample', () => {
    const { inputs, labels } = toyRows(16, 25);
    inputs.data[16 * 3 + 2] = Number.POSITIVE_INFINITY;
    const model = new Sequential(new Dense(16, 2));
    assert.throws(
      () =>
        fit(model, tensorDataset(inputs, labels), {
          optimizer: new SGD(model.parameters(), { lr: 0.1 }),
          epochs: 1,
          shuffle: false,
          progress: false,
        }),
      /fit: a training batch: sample 3 holds Infinity at value 2/,
    );
  });
});

describe("the README's examples", () => {
  it('regression, y = sin x: validation mean absolute error 0.0040 after 60 epochs', () => {
    const random = new Random(0);
    const x = Float32Array.from({ length: 1024 }, () => random.uniform(-3, 3));
    const data = tensorDataset(new Tensor(x, [1024, 1]), new Tensor(x.map(Math.sin), [1024, 1]));
    manualSeed(0);
    const model = new Sequential(new Dense(1, 32, { activation: 'tanh' }), new Dense(32, 1));
    const history = fit(model, data, {
      optimizer: new Adam(model.parameters(), { lr: 0.01 }),
      epochs: 60,
      batchSize: 32,
      loss: mseLoss,
      metrics: [new MeanAbsoluteError()],
      validationSplit: 0.2,
      progress: false,
    });
    const error = history.epochs.at(-1)!.metrics.validationMeanAbsoluteError!;
    assert.ok(Math.abs(error - 0.004) < 0.0005, `validation MAE ${error}`);
  });

  it('multi-label: 98.6% of the validation labels right after 20 epochs', () => {
    const random = new Random(0);
    const x = Float32Array.from({ length: 2048 * 8 }, () => random.normal());
    const y = Float32Array.from({ length: 2048 * 3 }, (_, i) => {
      const [n, k] = [Math.floor(i / 3), i % 3];
      return Number(x[n * 8 + k]! + x[n * 8 + k + 3]! > 0);
    });
    let right = 0;
    let total = 0;
    const labelAccuracy: Metric = {
      name: 'labelAccuracy',
      update(output, target) {
        const [scores, truth] = [(output as Tensor).data, (target as Tensor).data];
        scores.forEach((score, i) => void (right += Number(score > 0 === truth[i]! > 0.5)));
        total += scores.length;
      },
      compute: () => right / total,
      reset: () => void (right = total = 0),
    };
    manualSeed(0);
    const model = new Sequential(new Dense(8, 32, { activation: 'relu' }), new Dense(32, 3));
    const history = fit(model, tensorDataset(new Tensor(x, [2048, 8]), new Tensor(y, [2048, 3])), {
      optimizer: new Adam(model.parameters(), { lr: 0.01 }),
      epochs: 20,
      batchSize: 64,
      validationSplit: 0.2,
      loss: binaryCrossEntropyWithLogits,
      metrics: [labelAccuracy],
      progress: false,
    });
    const accuracy = history.epochs.at(-1)!.metrics.validationLabelAccuracy!;
    assert.ok(Math.abs(accuracy - 0.986) < 0.003, `validation label accuracy ${accuracy}`);
  });
});

describe('worker-thread prefetching', () => {
  const module = new URL('./helpers/prefetch-rows.js', import.meta.url);

  it('gives the batches plain iteration gives, and fitAsync the same bits as fit', async () => {
    const rows = prefetchRows();
    const prefetcher = new WorkerPrefetcher({ module, workers: 2 });
    try {
      const plain = [...new DataLoader(rows, { batchSize: 8, shuffle: true, seed: 6 })];
      const threaded: Batch[] = [];
      for await (const batch of new DataLoader(rows, {
        batchSize: 8,
        shuffle: true,
        seed: 6,
        prefetch: 3,
        prefetcher,
      }))
        threaded.push(batch);
      assert.equal(threaded.length, 7);
      assert.deepEqual(
        threaded.map((batch) => [Array.from(batch.input.data), Array.from(batch.target as Int32Array)]),
        plain.map((batch) => [Array.from(batch.input.data), Array.from(batch.target as Int32Array)]),
      );
      const train = async (loader: DataLoader<Batch>, asynchronous: boolean) => {
        manualSeed(30);
        const model = new Sequential(new Dense(16, 2));
        const settings = { optimizer: new SGD(model.parameters(), { lr: 0.1 }), epochs: 3, progress: false };
        if (asynchronous) await fitAsync(model, loader, settings);
        else fit(model, loader, settings);
        return weights(model);
      };
      assert.deepEqual(
        await train(
          new DataLoader(rows, { batchSize: 8, shuffle: true, seed: 7, prefetch: 2, prefetcher }),
          true,
        ),
        await train(new DataLoader(rows, { batchSize: 8, shuffle: true, seed: 7 }), false),
      );
    } finally {
      await prefetcher.close();
    }
  });

  it("a worker's failure reaches fitAsync, which still ends with fitEnd", async () => {
    const prefetcher = new WorkerPrefetcher({ module, exportName: 'failingDataset', workers: 1 });
    const recorder = new EventRecorder();
    const model = new Sequential(new Dense(16, 2));
    try {
      await assert.rejects(
        fitAsync(model, new DataLoader(prefetchRows(), { batchSize: 8, prefetch: 2, prefetcher }), {
          optimizer: new SGD(model.parameters(), { lr: 0.1 }),
          epochs: 1,
          progress: false,
          callbacks: [recorder],
        }),
        /WorkerPrefetcher: sample 0 cannot be read/,
      );
      assert.equal(recorder.events.at(-1)!.type, 'fitEnd');
    } finally {
      await prefetcher.close();
    }
  });
});
