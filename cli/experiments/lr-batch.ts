/**
 * `tensile experiment lr-batch`: the picture of the seed's DL0008 — validation accuracy against the
 * learning rate (log axis) for batch sizes 32 and 64.
 *
 * A grid study (GridSampler over learning rate × batch size × seed) on a small seed CNN trained with
 * SGD and momentum 0.9 at a constant learning rate, on a fixed MNIST subset. Each setting is trained
 * with several seeds (initial weights and data order), the same seeds for every setting, so points
 * are means with 95% t intervals and the best rate is compared with the runner-up seed by seed
 * (paired t-test). Writes the figure (SVG, PNG), the trials as CSV and a summary.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { numberOption, parseArgs } from '../arguments.js';
import {
  backendByName,
  getBackend,
  lineChart,
  loadFashionMnist,
  GridSampler,
  loadMnist,
  NopPruner,
  setBackend,
  Study,
  trainingHyperparameters,
  trainWithHyperparameters,
  tuningSplit,
  writeFigure,
  configFromOptions,
  defaultStoreUrl,
  type ImageDataset,
  type Series,
} from '../../src/index.js';
import type { Experiment } from '../experiment.js';
import { recordExperiment, recordingHelp, recordingOptions, type ExperimentRecording } from './recording.js';
import { accuracyCell, formatPValue, mean, pairedTTest, tInterval } from '../../app/explain/index.js';

export const lrBatchHelp = `usage: tensile experiment lr-batch [options]

Trains the seed CNN over a log-spaced grid of learning rates for batch sizes 32 and 64 (SGD, momentum
0.9, constant learning rate), each setting with 5 seeds, and plots validation accuracy (mean and 95%
t interval) against learning rate, one line per batch size.

options:
  --out DIR              output directory (default out/experiments/lr-batch)
  --dataset NAME         mnist or fashion-mnist (default mnist)
  --train N              training images (default 2000)
  --validation N         validation images (default 1000)
  --epochs N             epochs per run (default 3)
  --channels A,B         seed CNN channels (default 8,16: small enough for the whole grid)
  --lr-min X, --lr-max X learning-rate range (default 0.001 to 1)
  --points N             learning rates, log-spaced (default 8)
  --batch-sizes A,B      (default 32,64)
  --seed N               data split (default 1)
  --seeds N              training seeds per setting: initialisation and order (default 5)
  --backend NAME         reference, wasm or native (default: fastest available)
${recordingHelp(defaultStoreUrl)}`;

async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      out: { type: 'string', default: 'out/experiments/lr-batch' },
      dataset: { type: 'string', default: 'mnist' },
      train: { type: 'string', default: '2000' },
      validation: { type: 'string', default: '1000' },
      epochs: { type: 'string', default: '3' },
      channels: { type: 'string', default: '8,16' },
      'lr-min': { type: 'string', default: '0.001' },
      'lr-max': { type: 'string', default: '1' },
      points: { type: 'string', default: '8' },
      'batch-sizes': { type: 'string', default: '32,64' },
      seed: { type: 'string', default: '1' },
      seeds: { type: 'string', default: '5' },
      backend: { type: 'string' },
      help: { type: 'boolean', default: false },
      ...recordingOptions,
    },
  });
  if (values.help) {
    console.log(lrBatchHelp);
    return 0;
  }
  if (values.backend !== undefined) setBackend(backendByName(values.backend));
  const points = numberOption(values.points, 'points', { integer: true, minimum: 1 })!;
  const lrMin = numberOption(values['lr-min'], 'lr-min', { above: 0 })!;
  const lrMax = numberOption(values['lr-max'], 'lr-max', { above: 0 })!;
  const learningRates = Array.from({ length: points }, (_, i) =>
    Number((lrMin * (lrMax / lrMin) ** (points === 1 ? 0 : i / (points - 1))).toPrecision(3)),
  );
  const batchSizes = values['batch-sizes']!.split(',').map(Number);
  const channels = values.channels!.split(',').map(Number) as [number, number];
  const epochs = numberOption(values.epochs, 'epochs', { integer: true, minimum: 1 })!;
  const seed = numberOption(values.seed, 'seed', { integer: true, minimum: 0 })!;
  const seedCount = numberOption(values.seeds, 'seeds', { integer: true, minimum: 1 })!;
  const seeds = Array.from({ length: seedCount }, (_, i) => i + 1);
  const data = values.dataset === 'fashion-mnist' ? loadFashionMnist() : loadMnist();
  const { train, validation } = tuningSplit(data, {
    trainSamples: numberOption(values.train, 'train', { integer: true, minimum: 1 })!,
    validationSamples: numberOption(values.validation, 'validation', { integer: true, minimum: 1 })!,
    seed,
  });
  const setting = `seed CNN ${channels.join('-')}, ${train.count} ${values.dataset} training images, ${validation.count} for validation, ${epochs} epochs, SGD momentum 0.9, constant lr, ${seeds.length} training seed${seeds.length > 1 ? 's' : ''} per setting, backend ${getBackend().name}`;
  console.log(
    `lr-batch: ${learningRates.length} learning rates × ${batchSizes.length} batch sizes × ${seeds.length} seeds; ${setting}`,
  );

  return recordExperiment(
    {
      experiment: 'lr-batch',
      storage: values.storage ?? defaultStoreUrl,
      track: !values['no-track'],
      config: configFromOptions(values, ['help', 'no-track', 'storage']),
    },
    (recording) =>
      gridStudy(
        recording,
        { train, validation, channels, seeds, epochs, learningRates, batchSizes },
        values,
        setting,
      ),
  );
}

interface GridTask {
  train: ImageDataset;
  validation: ImageDataset;
  channels: [number, number];
  /** Training seeds (initialisation and data order), the same for every setting. */
  seeds: number[];
  epochs: number;
  learningRates: number[];
  batchSizes: number[];
}

async function gridStudy(
  recording: ExperimentRecording,
  task: GridTask,
  values: { out?: string; dataset?: string },
  setting: string,
): Promise<number> {
  const { train, validation, channels, seeds, epochs, learningRates, batchSizes } = task;
  const study = await Study.create({
    name: recording.studyName('lr-batch'),
    direction: 'maximize',
    storage: recording.studies,
    sampler: new GridSampler({ lr: learningRates, batchSize: batchSizes, seed: seeds }, { seed: 1 }),
    pruner: new NopPruner(),
  });
  const started = performance.now();
  await study.optimize(
    async (trial) => {
      const lr = trial.suggestCategorical('lr', learningRates);
      const batchSize = trial.suggestCategorical('batchSize', batchSizes);
      const seed = trial.suggestCategorical('seed', seeds);
      const hyperparameters = trainingHyperparameters({
        lr,
        batchSize,
        epochs,
        optimizer: 'sgd',
        momentum: 0.9,
        weightDecay: 0,
        schedule: 'constant',
      });
      const outcome = await recording.training(
        {
          name: `lr-batch lr ${lr} batch ${batchSize} seed ${seed}`,
          study: study.name,
          trialNumber: trial.number,
          config: { ...hyperparameters, seed, trainSamples: train.count },
        },
        (callbacks) =>
          trainWithHyperparameters({ train, validation, channels, seed }, hyperparameters, { callbacks }),
      );
      trial.setUserAttribute('seconds', Number(outcome.seconds.toFixed(2)));
      trial.setUserAttribute('final_train_loss', outcome.history.epochs.at(-1)!.loss);
      return outcome.value;
    },
    {
      callbacks: [
        (_study, trial) =>
          console.log(
            `  batch ${String(trial.params.batchSize).padStart(3)}  lr ${String(trial.params.lr).padEnd(7)} seed ${trial.params.seed} validation accuracy ${((trial.value ?? 0) * 100).toFixed(1).padStart(5)}%  ` +
              `(${trial.state}, ${trial.userAttributes.seconds ?? '?'} s)`,
          ),
      ],
    },
  );
  const trials = await study.trials(['complete']);
  /** Validation accuracy per seed (in the order of `seeds`) of one setting. */
  const accuracies = (lr: number, batchSize: number) =>
    seeds.map(
      (seed) =>
        trials.find((t) => t.params.lr === lr && t.params.batchSize === batchSize && t.params.seed === seed)
          ?.value ?? Number.NaN,
    );
  const series: Series[] = batchSizes.map((batchSize) => ({
    name: `batch ${batchSize}`,
    x: learningRates,
    y: learningRates.map((lr) => mean(accuracies(lr, batchSize)) * 100),
    // Half-width of the 95% t interval over the seeds (none with one seed).
    error: learningRates.map((lr) => {
      const halfWidth = tInterval(accuracies(lr, batchSize)).halfWidth * 100;
      return Number.isFinite(halfWidth) ? halfWidth : 0;
    }),
  }));
  fs.mkdirSync(values.out!, { recursive: true });
  const figure = writeFigure(
    lineChart({
      title: `Validation accuracy against learning rate (${values.dataset}, ${epochs} epochs; mean and 95% interval of ${seeds.length} seeds)`,
      xLabel: 'learning rate (SGD, momentum 0.9)',
      yLabel: 'validation accuracy (%)',
      xScale: 'log',
      yRange: [0, 100],
      series,
    }),
    path.join(values.out!, 'lr-batch'),
  );
  fs.writeFileSync(path.join(values.out!, 'trials.csv'), await study.toCsv());
  const lines = [
    `# lr-batch`,
    '',
    setting + '.',
    '',
    'Validation accuracy, mean ± half-width of the 95% Student t interval over the seeds; the best rate (highest mean) against the runner-up, paired t-test over the same seeds.',
    '',
    '| batch size | best lr | validation accuracy | runner-up lr | runner-up accuracy | paired t-test |',
    '|---|---|---|---|---|---|',
  ];
  const best: Record<
    string,
    { lr: number; validationAccuracy: number[]; runnerUp: number; pValue: number | null }
  > = {};
  for (const batchSize of batchSizes) {
    const ranked = [...learningRates].sort(
      (a, b) => mean(accuracies(b, batchSize)) - mean(accuracies(a, batchSize)),
    );
    const [first, second] = [ranked[0]!, ranked[1] ?? ranked[0]!];
    const test =
      seeds.length >= 2 && first !== second
        ? pairedTTest(accuracies(first, batchSize), accuracies(second, batchSize))
        : null;
    best[`batch ${batchSize}`] = {
      lr: first,
      validationAccuracy: accuracies(first, batchSize),
      runnerUp: second,
      pValue: test?.pValue ?? null,
    };
    const verdict =
      test === null
        ? 'n/a (one seed)'
        : `p ${formatPValue(test.pValue).replace(/^(?!<)/, '= ')}: ${test.pValue < 0.05 ? 'best rate ahead' : 'not separated'}`;
    lines.push(
      `| ${batchSize} | ${first} | ${accuracyCell(tInterval(accuracies(first, batchSize)))}% | ${second} | ${accuracyCell(tInterval(accuracies(second, batchSize)))}% | ${verdict} |`,
    );
  }
  const seconds = (performance.now() - started) / 1000;
  lines.push('', `${trials.length} runs in ${seconds.toFixed(0)} s. Figure: ${figure.png}`);
  fs.writeFileSync(path.join(values.out!, 'summary.md'), lines.join('\n') + '\n');
  await recording.results({ seconds: Number(seconds.toFixed(1)), seeds: seeds.length, best }, [figure.svg]);
  console.log(
    `\n${lines.slice(4).join('\n')}\nwrote ${figure.svg}, ${figure.png}, ${path.join(values.out!, 'trials.csv')}`,
  );
  return 0;
}

export const lrBatchExperiment: Experiment = {
  name: 'lr-batch',
  summary: 'validation accuracy against learning rate for batch sizes 32 and 64 (DL0008 figure)',
  run,
};
