/**
 * `tensile experiment search`: manual search, grid search, random search, TPE and Gaussian-process
 * Bayesian optimization on the same real training objective at the same trial budget.
 *
 * The objective: validation accuracy of a small seed CNN trained with SGD on a fixed MNIST subset, as
 * a function of learning rate (log scale), momentum, weight decay (log scale) and batch size. Every
 * run starts from the same initial weights and data order, so strategies differ only in which
 * hyperparameters they try. "Manual" is a scripted version of what a person does: start from textbook
 * defaults, sweep the learning rate by factors of ten and then three, then try the batch size, the
 * momentum and the weight decay one at a time, keeping whatever helped (it runs through ask and tell).
 * Writes the best-so-far curves (SVG, PNG), every trial as CSV and a summary table.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { numberOption, parseArgs } from '../arguments.js';
import {
  backendByName,
  getBackend,
  GpSampler,
  GridSampler,
  lineChart,
  loadFashionMnist,
  loadMnist,
  NopPruner,
  RandomSampler,
  setBackend,
  Study,
  TpeSampler,
  trainingHyperparameters,
  trainWithHyperparameters,
  tuningSplit,
  writeFigure,
  configFromOptions,
  defaultStoreUrl,
  type FrozenTrial,
  type ImageDataset,
  type ParamValue,
  type Sampler,
  type Series,
  type Trial,
} from '../../src/index.js';
import type { Experiment } from '../experiment.js';
import { recordExperiment, recordingHelp, recordingOptions, type ExperimentRecording } from './recording.js';
import { accuracyCell, intervalsSeparate, tInterval } from '../../app/explain/index.js';

export const searchHelp = `usage: tensile experiment search [options]

Compares manual, grid, random, TPE and GP search at an equal budget on a real training objective
(validation accuracy of a seed CNN against lr, momentum, weight decay and batch size) and plots the
best validation accuracy against the number of trials, each strategy repeated with 5 sampler seeds
(mean and 95% t interval of the best value; strategies are told apart only where intervals do not
overlap, since a sampler seed means something different to each strategy).

options:
  --out DIR          output directory (default out/experiments/search)
  --budget N         trials per strategy (default 16; the grid is 2×2×2×2)
  --repeats N        runs per strategy with different sampler seeds (default 5; at least 2 for intervals)
  --strategies LIST  comma-separated subset of manual,grid,random,tpe,gp
  --dataset NAME     mnist or fashion-mnist (default mnist)
  --train N          training images (default 1000)
  --validation N     validation images (default 1000)
  --epochs N         epochs per trial (default 2)
  --channels A,B     seed CNN channels (default 8,16)
  --seed N           data split; repeat r trains with seed N + r (default 1)
  --backend NAME     reference, wasm or native (default: fastest available)
${recordingHelp(defaultStoreUrl)}`;

const batchSizes = [32, 64, 128];

/** The search space, as every strategy sees it. */
function suggest(trial: Trial): Record<string, ParamValue> {
  return {
    lr: trial.suggestFloat('lr', 1e-3, 1, { log: true }),
    momentum: trial.suggestFloat('momentum', 0, 0.99),
    weightDecay: trial.suggestFloat('weightDecay', 1e-6, 1e-2, { log: true }),
    batchSize: trial.suggestCategorical('batchSize', batchSizes),
  };
}

interface Task {
  train: ImageDataset;
  validation: ImageDataset;
  channels: [number, number];
  seed: number;
  epochs: number;
}

function objective(
  task: Task,
  recording: ExperimentRecording,
  study: Study,
): (trial: Trial) => Promise<number> {
  return async (trial) => {
    const params = suggest(trial);
    const hyperparameters = trainingHyperparameters({
      ...params,
      epochs: task.epochs,
      optimizer: 'sgd',
      schedule: 'constant',
    });
    const outcome = await recording.training(
      {
        name: `search ${study.name} trial ${trial.number}`,
        study: study.name,
        trialNumber: trial.number,
        config: { ...hyperparameters, trainSamples: task.train.count },
      },
      (callbacks) => trainWithHyperparameters(task, hyperparameters, { callbacks }),
    );
    trial.setUserAttribute('seconds', Number(outcome.seconds.toFixed(2)));
    return outcome.value;
  };
}

/**
 * Manual search as a procedure: each step proposes variations of the best configuration so far along
 * one hyperparameter, the way a person tunes by hand.
 */
function manualProposals(best: Record<string, number>, step: number): Record<string, number>[] {
  const clampLr = (lr: number) => Math.min(1, Math.max(1e-3, lr));
  switch (step) {
    case 0:
      return [{ lr: 0.01, momentum: 0.9, weightDecay: 1e-4, batchSize: 64 }];
    case 1:
      return [
        { ...best, lr: clampLr(best.lr! * 10) },
        { ...best, lr: clampLr(best.lr! / 10) },
      ];
    case 2:
      return [
        { ...best, lr: clampLr(best.lr! * 3) },
        { ...best, lr: clampLr(best.lr! / 3) },
      ];
    case 3:
      return [
        { ...best, batchSize: 32 },
        { ...best, batchSize: 128 },
      ];
    case 4:
      return [
        { ...best, momentum: 0.5 },
        { ...best, momentum: 0.95 },
      ];
    case 5:
      return [
        { ...best, weightDecay: 1e-5 },
        { ...best, weightDecay: 1e-3 },
      ];
    default: {
      // Ever finer learning-rate nudges around the best: ×1.5, ×1.25, ×1.17, ...
      const factor = 1 + 0.5 / (step - 5);
      return [
        { ...best, lr: clampLr(best.lr! * factor) },
        { ...best, lr: clampLr(best.lr! / factor) },
      ];
    }
  }
}

async function runManual(
  study: Study,
  task: Task,
  budget: number,
  report: (trial: FrozenTrial) => void,
  recording: ExperimentRecording,
): Promise<void> {
  const run = objective(task, recording, study);
  const tried = new Set<string>();
  for (let step = 0, done = 0; done < budget; step++) {
    const best = done === 0 ? {} : ((await study.bestTrial()).params as Record<string, number>);
    for (const params of manualProposals(best, step)) {
      const key = JSON.stringify(params);
      if (done >= budget || tried.has(key)) continue;
      tried.add(key);
      await study.enqueueTrial(params);
      const trial = await study.ask();
      let result: number | { state: 'failed'; error: string };
      try {
        result = await run(trial);
      } catch (error) {
        result = { state: 'failed', error: String(error) };
      }
      report(await study.tell(trial, result));
      done++;
    }
  }
}

function samplerFor(strategy: string, seed: number): Sampler {
  switch (strategy) {
    case 'grid':
      // Two values per parameter, each at the centre of its half of the range (in log space for log
      // ranges): no more prior knowledge than the other samplers get.
      return new GridSampler(
        { lr: [0.00562, 0.178], momentum: [0.2475, 0.7425], weightDecay: [1e-5, 1e-3], batchSize: [32, 128] },
        { seed },
      );
    case 'random':
      return new RandomSampler({ seed });
    case 'tpe':
      // Five random trials before modelling: the default ten would be most of a 16-trial budget.
      return new TpeSampler({ seed, startupTrials: 5 });
    case 'gp':
      return new GpSampler({ seed, startupTrials: 5 });
    default:
      throw new Error(`unknown strategy '${strategy}' (known: manual, grid, random, tpe, gp)`);
  }
}

function bestSoFar(trials: readonly FrozenTrial[]): number[] {
  let best = 0;
  return [...trials]
    .sort((a, b) => a.number - b.number)
    .map((t) => (best = Math.max(best, t.state === 'complete' ? t.value! : 0)));
}

async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      out: { type: 'string', default: 'out/experiments/search' },
      budget: { type: 'string', default: '16' },
      repeats: { type: 'string', default: '5' },
      strategies: { type: 'string', default: 'manual,grid,random,tpe,gp' },
      dataset: { type: 'string', default: 'mnist' },
      train: { type: 'string', default: '1000' },
      validation: { type: 'string', default: '1000' },
      epochs: { type: 'string', default: '2' },
      channels: { type: 'string', default: '8,16' },
      seed: { type: 'string', default: '1' },
      backend: { type: 'string' },
      help: { type: 'boolean', default: false },
      ...recordingOptions,
    },
  });
  if (values.help) {
    console.log(searchHelp);
    return 0;
  }
  if (values.backend !== undefined) setBackend(backendByName(values.backend));
  const budget = numberOption(values.budget, 'budget', { integer: true, minimum: 1 })!;
  const repeats = numberOption(values.repeats, 'repeats', { integer: true, minimum: 1 })!;
  const seed = numberOption(values.seed, 'seed', { integer: true, minimum: 0 })!;
  const strategies = values.strategies!.split(',');
  for (const s of strategies) if (s !== 'manual') samplerFor(s, 0);
  const data = values.dataset === 'fashion-mnist' ? loadFashionMnist() : loadMnist();
  const { train, validation } = tuningSplit(data, {
    trainSamples: numberOption(values.train, 'train', { integer: true, minimum: 1 })!,
    validationSamples: numberOption(values.validation, 'validation', { integer: true, minimum: 1 })!,
    seed,
  });
  const task: Task = {
    train,
    validation,
    channels: values.channels!.split(',').map(Number) as [number, number],
    seed,
    epochs: numberOption(values.epochs, 'epochs', { integer: true, minimum: 1 })!,
  };
  const setting = `seed CNN ${task.channels.join('-')}, ${train.count} ${values.dataset} training images, ${validation.count} for validation, ${task.epochs} epochs of SGD per trial, backend ${getBackend().name}`;
  console.log(`search: ${strategies.join(', ')} × ${budget} trials × ${repeats} repeat(s); ${setting}`);
  return recordExperiment(
    {
      experiment: 'search',
      storage: values.storage ?? defaultStoreUrl,
      track: !values['no-track'],
      config: configFromOptions(values, ['help', 'no-track', 'storage']),
    },
    async (recording) => {
      fs.mkdirSync(values.out!, { recursive: true });
      const started = performance.now();
      const curves = new Map<string, number[][]>();
      const csv: string[] = [];
      for (const strategy of strategies) {
        for (let repeat = 0; repeat < repeats; repeat++) {
          const strategyStarted = performance.now();
          const study = await Study.create({
            name: recording.studyName(`search ${strategy}-${repeat}`),
            direction: 'maximize',
            storage: recording.studies,
            sampler:
              strategy === 'manual' ? new RandomSampler({ seed }) : samplerFor(strategy, seed + repeat),
            pruner: new NopPruner(),
          });
          const report = (trial: FrozenTrial) =>
            console.log(
              `  ${strategy.padEnd(6)} #${String(trial.number + 1).padStart(2)} ${trial.state === 'complete' ? `${(trial.value! * 100).toFixed(1)}%` : trial.state}  ` +
                Object.entries(trial.params)
                  .map(([k, v]) => `${k}=${typeof v === 'number' ? Number(v.toPrecision(3)) : v}`)
                  .join(' '),
            );
          // Repeat r trains with seed + r (initial weights and data order) for every strategy, so
          // the repeats measure training noise as well as the sampler's own randomness; without it
          // the scripted manual search and the full grid would repeat the same numbers exactly.
          const repeatTask: Task = { ...task, seed: seed + repeat };
          if (strategy === 'manual') await runManual(study, repeatTask, budget, report, recording);
          else
            await study.optimize(objective(repeatTask, recording, study), {
              nTrials: budget,
              callbacks: [(_s, trial) => report(trial)],
            });
          const trials = await study.trials();
          curves.set(strategy, [...(curves.get(strategy) ?? []), bestSoFar(trials)]);
          const table = await study.toCsv();
          const [header, ...rows] = table.trim().split('\n');
          if (csv.length === 0) csv.push(`strategy,repeat,${header}`);
          for (const row of rows) csv.push(`${strategy},${repeat},${row}`);
          console.log(
            `  ${strategy}: best ${(Math.max(...bestSoFar(trials)) * 100).toFixed(1)}% in ${((performance.now() - strategyStarted) / 1000).toFixed(0)} s`,
          );
        }
      }
      const series: Series[] = [...curves].map(([strategy, runs]) => ({
        name: strategy === 'gp' ? 'GP (EI)' : strategy === 'tpe' ? 'TPE' : strategy,
        x: Array.from({ length: budget }, (_, i) => i + 1),
        y: Array.from(
          { length: budget },
          (_, i) => (100 * runs.reduce((a, r) => a + (r[i] ?? r[r.length - 1]!), 0)) / runs.length,
        ),
      }));
      const low = Math.min(...series.flatMap((s) => s.y));
      const figure = writeFigure(
        lineChart({
          title: `Best validation accuracy against trials (${values.dataset}, equal budget)`,
          xLabel: 'trials',
          yLabel: `best validation accuracy (%)${repeats > 1 ? `, mean of ${repeats} seeds` : ''}`,
          yRange: [Math.max(0, Math.floor(low / 5) * 5), 100],
          series,
        }),
        path.join(values.out!, 'search'),
      );
      fs.writeFileSync(path.join(values.out!, 'trials.csv'), csv.join('\n') + '\n');
      const finals = [...curves].map(([strategy, runs]) => ({
        name: strategy === 'gp' ? 'GP (EI)' : strategy === 'tpe' ? 'TPE' : strategy,
        halfway: tInterval(runs.map((r) => r[Math.ceil(budget / 2) - 1] ?? r.at(-1)!)),
        final: tInterval(runs.map((r) => r[budget - 1] ?? r.at(-1)!)),
      }));
      const ranked = [...finals].sort((a, b) => b.final.mean - a.final.mean);
      const leader = ranked[0]!;
      const separated = ranked.slice(1).filter((f) => intervalsSeparate(leader.final, f.final));
      const verdict =
        repeats < 2
          ? 'One repeat per strategy: no interval, so no strategy is ranked.'
          : separated.length === ranked.length - 1
            ? `${leader.name} ended best, its 95% interval above every other strategy's.`
            : `${leader.name} had the highest mean, but its interval overlaps ${ranked
                .slice(1)
                .filter((f) => !intervalsSeparate(leader.final, f.final))
                .map((f) => f.name)
                .join(
                  ', ',
                )}: no single best strategy at this budget${separated.length > 0 ? ` (it is above ${separated.map((f) => f.name).join(', ')})` : ''}.`;
      const lines = [
        '# search',
        '',
        setting + '.',
        '',
        `Best validation accuracy so far, mean ± half-width of the 95% Student t interval over ${repeats} repeat${repeats > 1 ? 's' : ''} (each with its own sampler seed and training seed). ${verdict}`,
        '',
        `| strategy | best after ${Math.ceil(budget / 2)} trials | best after ${budget} trials |`,
        '|---|---|---|',
      ];
      for (const f of finals)
        lines.push(`| ${f.name} | ${accuracyCell(f.halfway)}% | ${accuracyCell(f.final)}% |`);
      lines.push(
        '',
        `${strategies.length * budget * repeats} trainings in ${((performance.now() - started) / 1000).toFixed(0)} s. Figure: ${figure.png}`,
      );
      fs.writeFileSync(path.join(values.out!, 'summary.md'), lines.join('\n') + '\n');
      console.log(
        `\n${lines.slice(4).join('\n')}\nwrote ${figure.svg}, ${figure.png}, ${path.join(values.out!, 'trials.csv')}`,
      );
      await recording.results(
        {
          seconds: Number(((performance.now() - started) / 1000).toFixed(1)),
          bestValidationAccuracy: Object.fromEntries(
            series.map((s) => [s.name, (s.y[budget - 1] ?? 0) / 100]),
          ),
        },
        [figure.svg],
      );
      return 0;
    },
  );
}

export const searchExperiment: Experiment = {
  name: 'search',
  summary: 'manual, grid, random, TPE and GP search at an equal budget on a real training objective',
  run,
};
