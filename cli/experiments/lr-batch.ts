/**
 * `tensile experiment lr-batch`: the picture of the seed's DL0008 — validation accuracy against the
 * learning rate (log axis) for batch sizes 32 and 64.
 *
 * A grid study (GridSampler over learning rate × batch size) on a small seed CNN trained with SGD and
 * momentum 0.9 at a constant learning rate, on a fixed MNIST subset; every run starts from the same
 * initial weights and sees the data in the same order, so the curves differ only by the two
 * hyperparameters. Writes the figure (SVG, PNG), the trials as CSV and a summary.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from '../arguments.js';
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
  type ImageDataset,
  type Series,
} from '../../src/index.js';
import { configFromOptions, defaultStoreUrl } from '../../src/track/index.js';
import type { Experiment } from '../experiment.js';
import { recordExperiment, recordingHelp, recordingOptions, type ExperimentRecording } from './recording.js';

export const lrBatchHelp = `usage: tensile experiment lr-batch [options]

Trains the seed CNN over a log-spaced grid of learning rates for batch sizes 32 and 64 (SGD, momentum
0.9, constant learning rate) and plots validation accuracy against learning rate, one line per batch
size. About 4 minutes on two cores with the defaults.

options:
  --out DIR              output directory (default out/experiments/lr-batch)
  --dataset NAME         mnist or fashion-mnist (default mnist)
  --train N              training images (default 3000)
  --validation N         validation images (default 1000)
  --epochs N             epochs per run (default 3)
  --channels A,B         seed CNN channels (default 8,16: small enough for the whole grid)
  --lr-min X, --lr-max X learning-rate range (default 0.001 to 1)
  --points N             learning rates, log-spaced (default 10)
  --batch-sizes A,B      (default 32,64)
  --seed N               data split, initialisation and order (default 1)
  --backend NAME         reference, wasm or native (default: fastest available)
${recordingHelp(defaultStoreUrl)}`;

function numberOption(values: Record<string, unknown>, name: string): number {
  const value = Number(values[name]);
  if (!Number.isFinite(value)) throw new Error(`--${name} must be a number, got '${String(values[name])}'`);
  return value;
}

async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      out: { type: 'string', default: 'out/experiments/lr-batch' },
      dataset: { type: 'string', default: 'mnist' },
      train: { type: 'string', default: '3000' },
      validation: { type: 'string', default: '1000' },
      epochs: { type: 'string', default: '3' },
      channels: { type: 'string', default: '8,16' },
      'lr-min': { type: 'string', default: '0.001' },
      'lr-max': { type: 'string', default: '1' },
      points: { type: 'string', default: '10' },
      'batch-sizes': { type: 'string', default: '32,64' },
      seed: { type: 'string', default: '1' },
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
  const points = numberOption(values, 'points');
  const lrMin = numberOption(values, 'lr-min');
  const lrMax = numberOption(values, 'lr-max');
  const learningRates = Array.from({ length: points }, (_, i) =>
    Number((lrMin * (lrMax / lrMin) ** (points === 1 ? 0 : i / (points - 1))).toPrecision(3)),
  );
  const batchSizes = values['batch-sizes']!.split(',').map(Number);
  const channels = values.channels!.split(',').map(Number) as [number, number];
  const epochs = numberOption(values, 'epochs');
  const seed = numberOption(values, 'seed');
  const data = values.dataset === 'fashion-mnist' ? loadFashionMnist() : loadMnist();
  const { train, validation } = tuningSplit(data, {
    trainSamples: numberOption(values, 'train'),
    validationSamples: numberOption(values, 'validation'),
    seed,
  });
  const setting = `seed CNN ${channels.join('-')}, ${train.count} ${values.dataset} training images, ${validation.count} for validation, ${epochs} epochs, SGD momentum 0.9, constant lr, backend ${getBackend().name}`;
  console.log(
    `lr-batch: ${learningRates.length} learning rates × ${batchSizes.length} batch sizes; ${setting}`,
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
        { train, validation, channels, seed, epochs, learningRates, batchSizes },
        values,
        setting,
      ),
  );
}

interface GridTask {
  train: ImageDataset;
  validation: ImageDataset;
  channels: [number, number];
  seed: number;
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
  const { train, validation, channels, seed, epochs, learningRates, batchSizes } = task;
  const study = await Study.create({
    name: recording.studyName('lr-batch'),
    direction: 'maximize',
    storage: recording.studies,
    sampler: new GridSampler({ lr: learningRates, batchSize: batchSizes }, { seed }),
    pruner: new NopPruner(),
  });
  const started = performance.now();
  await study.optimize(
    async (trial) => {
      const lr = trial.suggestCategorical('lr', learningRates);
      const batchSize = trial.suggestCategorical('batchSize', batchSizes);
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
          name: `lr-batch lr ${lr} batch ${batchSize}`,
          study: study.name,
          trialNumber: trial.number,
          config: { ...hyperparameters, trainSamples: train.count },
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
            `  batch ${String(trial.params.batchSize).padStart(3)}  lr ${String(trial.params.lr).padEnd(7)} validation accuracy ${((trial.value ?? 0) * 100).toFixed(1).padStart(5)}%  ` +
              `(${trial.state}, ${trial.userAttributes.seconds ?? '?'} s)`,
          ),
      ],
    },
  );
  const trials = await study.trials(['complete']);
  const series: Series[] = batchSizes.map((batchSize) => {
    const rows = trials
      .filter((t) => t.params.batchSize === batchSize)
      .sort((a, b) => (a.params.lr as number) - (b.params.lr as number));
    return {
      name: `batch ${batchSize}`,
      x: rows.map((t) => t.params.lr as number),
      y: rows.map((t) => t.value! * 100),
    };
  });
  fs.mkdirSync(values.out!, { recursive: true });
  const figure = writeFigure(
    lineChart({
      title: `Validation accuracy against learning rate (${values.dataset}, ${epochs} epochs)`,
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
    '| batch size | best lr | validation accuracy |',
    '|---|---|---|',
  ];
  for (const s of series) {
    const best = s.y.indexOf(Math.max(...s.y));
    lines.push(`| ${s.name.replace('batch ', '')} | ${s.x[best]} | ${s.y[best]!.toFixed(1)}% |`);
  }
  const seconds = (performance.now() - started) / 1000;
  lines.push('', `${trials.length} runs in ${seconds.toFixed(0)} s. Figure: ${figure.png}`);
  fs.writeFileSync(path.join(values.out!, 'summary.md'), lines.join('\n') + '\n');
  await recording.results(
    {
      seconds: Number(seconds.toFixed(1)),
      best: Object.fromEntries(
        series.map((s) => {
          const best = s.y.indexOf(Math.max(...s.y));
          return [s.name, { lr: s.x[best] ?? null, validationAccuracy: (s.y[best] ?? 0) / 100 }];
        }),
      ),
    },
    [figure.svg],
  );
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
