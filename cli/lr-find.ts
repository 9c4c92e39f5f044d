/**
 * tensile lr-find: the learning-rate finder on the seed CNN and the data `tensile train` uses. Sweeps
 * the rate exponentially over a few hundred batches of the training split, prints the suggested
 * rates and writes the loss-against-rate figure (SVG). The model is thrown away afterwards; pass the
 * suggestion to `tensile train --lr`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { numberOption, parseArgs, UsageError } from './arguments.js';
import {
  AdamW,
  assertWritableTarget,
  backendByName,
  findLearningRate,
  getBackend,
  learningRateFinderChart,
  loadFashionMnist,
  loadMnist,
  manualSeed,
  Random,
  randomShift,
  seedCnn,
  setBackend,
  splitDataset,
} from '../src/index.js';

export const lrFindHelp = `usage: tensile lr-find [options]

Sweeps the learning rate from --start-lr to --end-lr over --iterations training batches of the seed
CNN (AdamW, the data and split of tensile train), prints the suggested rate (the middle of the
longest fall of the smoothed loss, fastai's 'valley') and the steepest-descent rate, and writes the
figure. The loss is smoothed by a debiased moving average (0.98); the sweep stops early when it
exceeds 4× its minimum.

options:
  --dataset mnist|fashion-mnist   data (default mnist)
  --iterations N                  batches in the sweep (default 200)
  --start-lr X                    first rate (default 1e-7)
  --end-lr X                      last rate (default 10)
  --batch-size N                  batch size (default 64)
  --weight-decay X                AdamW weight decay (default 1e-4)
  --channels A,B                  channels of the two conv blocks (default 32,64)
  --test-fraction X               held-out share left out of the sweep, as in tensile train (default 0.2)
  --seed N                        seed for initialisation, split and order (default 1)
  --backend NAME                  reference, wasm or native (default: fastest available)
  --out FILE                      the figure (default lr-find.svg)`;

export function lrFindCommand(args: string[]): number {
  const { values } = parseArgs({
    args,
    options: {
      dataset: { type: 'string', default: 'mnist' },
      iterations: { type: 'string', default: '200' },
      'start-lr': { type: 'string', default: '1e-7' },
      'end-lr': { type: 'string', default: '10' },
      'batch-size': { type: 'string', default: '64' },
      'weight-decay': { type: 'string', default: '1e-4' },
      channels: { type: 'string', default: '32,64' },
      'test-fraction': { type: 'string', default: '0.2' },
      seed: { type: 'string', default: '1' },
      backend: { type: 'string' },
      out: { type: 'string', default: 'lr-find.svg' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(lrFindHelp);
    return 0;
  }
  const iterations = numberOption(values.iterations, 'iterations', { integer: true, minimum: 2 })!;
  const startLr = numberOption(values['start-lr'], 'start-lr', { above: 0 })!;
  const endLr = numberOption(values['end-lr'], 'end-lr', { above: 0 })!;
  if (!(endLr > startLr))
    throw new UsageError(`tensile lr-find: --end-lr (${endLr}) must be above --start-lr (${startLr})`);
  const batchSize = numberOption(values['batch-size'], 'batch-size', { integer: true, minimum: 1 })!;
  const weightDecay = numberOption(values['weight-decay'], 'weight-decay', { minimum: 0 })!;
  const testFraction = numberOption(values['test-fraction'], 'test-fraction', { above: 0, below: 1 })!;
  const seed = numberOption(values.seed, 'seed', { integer: true, minimum: 0 })!;
  const channels = values.channels!.split(',').map(Number) as [number, number];
  if (channels.length !== 2 || channels.some((c) => !Number.isInteger(c) || c < 1))
    throw new UsageError(
      `tensile lr-find: --channels must be two positive integers like 32,64, got '${values.channels}'`,
    );
  if (values.dataset !== 'mnist' && values.dataset !== 'fashion-mnist')
    throw new UsageError(
      `tensile lr-find: --dataset must be mnist or fashion-mnist, got '${values.dataset}'`,
    );
  if (values.backend !== undefined) setBackend(backendByName(values.backend));
  assertWritableTarget(values.out!);

  const started = performance.now();
  const data = values.dataset === 'fashion-mnist' ? loadFashionMnist() : loadMnist();
  const { train } = splitDataset(data, testFraction, new Random(seed));
  manualSeed(seed);
  const model = seedCnn({ inChannels: data.channels, channels, classes: data.classes });
  const optimizer = new AdamW(model.parameters(), { lr: startLr, weightDecay });
  console.log(
    `tensile: learning-rate finder, seed CNN on ${values.dataset} (${train.count} training images), ` +
      `${iterations} batches of ${batchSize} from ${startLr} to ${endLr}, backend ${getBackend().name}`,
  );
  const sweep = findLearningRate(model, train, {
    optimizer,
    iterations,
    startLr,
    endLr,
    batchSize,
    seed,
    transforms: [randomShift(2)],
  });
  const ended =
    sweep.stoppedBy === 'iterations'
      ? `all ${sweep.losses.length} batches`
      : `stopped after ${sweep.losses.length} batches: ${sweep.stoppedBy}`;
  fs.mkdirSync(path.dirname(path.resolve(values.out!)), { recursive: true });
  fs.writeFileSync(
    values.out!,
    learningRateFinderChart(sweep, `Learning-rate finder: seed CNN on ${values.dataset}`),
  );
  const seconds = (performance.now() - started) / 1000;
  console.log(`sweep: ${ended}, ${seconds.toFixed(0)} s`);
  console.log(
    `suggested learning rate (valley): ${sweep.valley.learningRate.toExponential(2)} (smoothed loss ${sweep.valley.loss.toFixed(4)})`,
  );
  console.log(
    `steepest descent: ${sweep.steepest.learningRate.toExponential(2)} (smoothed loss ${sweep.steepest.loss.toFixed(4)})`,
  );
  console.log(`figure written to ${values.out}`);
  return 0;
}
