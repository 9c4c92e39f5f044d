/**
 * DL0008 Hyperparameter tuning, with tensile's tuning library (src/tune):
 *
 * - the note's figure: validation accuracy against the learning rate (log scale) for batch sizes 32
 *   and 64, measured as a grid study of real trainings. The study is kept in the study storage (the
 *   same database as the runs), so the dashboard shows its plots, and each trial is a recorded run;
 * - the note's strategies (grid, random, Bayesian optimisation with TPE and a Gaussian process)
 *   compared on a budget of 16 trials. Thousands of real trainings would not fit in five minutes, so
 *   this part searches a synthetic objective shaped like the measured one: a clear optimum in the
 *   learning rate, a mild one in the batch size, and two parameters that barely matter. Its text says
 *   so.
 */
import { seedCnn } from '../../models/seed-cnn.js';
import { manualSeed } from '../../nn/init.js';
import { Adam } from '../../optim/adam.js';
import { lineChart } from '../../plot/charts.js';
import { RunTracker } from '../../track/tracker.js';
import { evaluate, fit } from '../../train/fit.js';
import type { Sampler } from '../../tune/samplers/sampler.js';
import { GpSampler } from '../../tune/samplers/gp.js';
import { GridSampler } from '../../tune/samplers/grid.js';
import { RandomSampler } from '../../tune/samplers/random.js';
import { TpeSampler } from '../../tune/samplers/tpe.js';
import { MemoryStorage } from '../../tune/storage/memory.js';
import { Study } from '../../tune/study.js';
import type { Trial } from '../../tune/trial.js';
import { mnistSplit, percent } from '../common.js';
import { describeResults, readExperimentResults, type ExperimentResults } from '../experiment-results.js';
import type { Topic } from '../types.js';

/**
 * A smooth stand-in for validation accuracy over four hyperparameters: best near lr = 3e-3 and
 * batch size 48, almost flat in momentum and weight decay. Its maximum is 0.99.
 */
export function syntheticAccuracy(
  lr: number,
  batchSize: number,
  momentum: number,
  weightDecay: number,
): number {
  return (
    0.99 -
    0.045 * (Math.log10(lr) + 2.5) ** 2 -
    0.006 * (Math.log2(batchSize) - Math.log2(48)) ** 2 -
    0.002 * (momentum - 0.9) ** 2 -
    (0.001 * (Math.log10(weightDecay) + 4) ** 2) / 4
  );
}

function syntheticObjective(trial: Trial): number {
  return syntheticAccuracy(
    trial.suggestFloat('lr', 1e-5, 1, { log: true }),
    trial.suggestInt('batchSize', 16, 256, { log: true }),
    trial.suggestFloat('momentum', 0, 0.99),
    trial.suggestFloat('weightDecay', 1e-6, 1e-2, { log: true }),
  );
}

/** Best value after each trial, averaged over seeds. */
async function searchCurve(
  makeSampler: (seed: number) => Sampler,
  seeds: number,
  trials: number,
): Promise<number[]> {
  const curves: number[][] = [];
  for (let seed = 0; seed < seeds; seed++) {
    const study = await Study.create({
      storage: new MemoryStorage(),
      direction: 'maximize',
      sampler: makeSampler(seed),
      heartbeat: null,
    });
    await study.optimize(syntheticObjective, { nTrials: trials });
    let best = -Infinity;
    curves.push((await study.trials()).map((t) => (best = Math.max(best, t.value ?? -Infinity))));
    await study.close();
  }
  return Array.from(
    { length: trials },
    (_, i) => curves.reduce((sum, c) => sum + (c[i] ?? c.at(-1)!), 0) / curves.length,
  );
}

export const tuningTopic: Topic = {
  id: 'DL0008',
  aliases: ['tuning', 'hyperparameters', 'hpo'],
  title: 'Hyperparameter tuning: learning rate and batch size, and search strategies',
  version: 1,
  inputs() {
    const stamp = (results: ExperimentResults | null) =>
      results === null ? null : results.modified.getTime();
    return {
      lrBatch: stamp(readExperimentResults('lrBatch')),
      search: stamp(readExperimentResults('search')),
    };
  },
  async run(context) {
    const rates = context.quick ? [1e-3, 1e-2] : [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1];
    const batchSizes = [32, 64];
    const trainCount = context.quick ? 200 : 2500;
    const validationCount = context.quick ? 200 : 600;
    const epochs = context.quick ? 1 : 3;
    const { train, test: validation } = mnistSplit(trainCount, validationCount, { seed: 8 });
    const name = `DL0008 lr × batch ${new Date().toISOString().slice(0, 19).replace('T', ' ')}${context.quick ? ' (quick)' : ''}`;
    context.log(
      `DL0008: grid study '${name}': ${rates.length} learning rates × ${batchSizes.length} batch sizes, ${epochs} epochs on ${train.count} digits each`,
    );
    const study = await Study.create({
      storage: context.studies,
      name,
      direction: 'maximize',
      sampler: new GridSampler({ lr: rates, batchSize: batchSizes }, { seed: 8 }),
      heartbeat: null,
    });
    await study.setUserAttribute('metric', 'validation accuracy');
    await study.setUserAttribute('source', 'tensile explain DL0008');
    await study.optimize(
      async (trial) => {
        const lr = trial.suggestFloat('lr', rates[0]!, rates.at(-1)!, { log: true });
        const batchSize = trial.suggestCategorical('batchSize', batchSizes);
        manualSeed(8);
        const model = seedCnn({ channels: [8, 16] });
        const tracker = await RunTracker.start(context.store, {
          name: `lr ${lr}, batch ${batchSize}`,
          kind: 'trial',
          parentId: context.runId,
          study: study.name,
          trialNumber: trial.number,
          config: { lr, batchSize, channels: [8, 16], epochs },
        });
        fit(model, train, {
          optimizer: new Adam(model.parameters(), { lr }),
          epochs,
          batchSize,
          seed: 8,
          validationData: validation,
          progress: false,
          callbacks: [tracker],
        });
        const accuracy = evaluate(model, validation).accuracy;
        tracker.updateSummary({ validationAccuracy: accuracy });
        await tracker.close();
        context.log(`  lr ${lr}, batch ${batchSize}: validation accuracy ${percent(accuracy)}`);
        return accuracy;
      },
      { nTrials: rates.length * batchSizes.length },
    );
    const trials = (await study.trials()).filter((t) => t.state === 'complete');
    const accuracyOf = (lr: number, batchSize: number) =>
      trials.find((t) => t.params.lr === lr && t.params.batchSize === batchSize)?.value ?? Number.NaN;
    const gridFigure = lineChart({
      width: 940,
      title: `Validation accuracy against learning rate (Adam, ${epochs} epochs, ${train.count} MNIST digits)`,
      xLabel: 'learning rate',
      yLabel: 'validation accuracy (%)',
      xScale: 'log',
      series: batchSizes.map((b) => ({
        name: `batch size ${b}`,
        x: rates,
        y: rates.map((lr) => accuracyOf(lr, b) * 100),
      })),
    });
    const best = trials.reduce((a, b) => ((b.value ?? 0) > (a.value ?? 0) ? b : a));
    const bestFor = (b: number) => rates.reduce((a, lr) => (accuracyOf(lr, b) > accuracyOf(a, b) ? lr : a));
    const [best32, best64] = batchSizes.map(bestFor) as [number, number];
    const shapes = batchSizes.map((b) => {
      const curve = rates.map((lr) => accuracyOf(lr, b));
      const peak = curve.indexOf(Math.max(...curve));
      const margin = 0.02;
      if (peak === 0) return 'best at the smallest rate tried';
      if (peak === rates.length - 1) return 'still rising at the largest rate tried';
      return curve[0]! < curve[peak]! - margin && curve.at(-1)! < curve[peak]! - margin
        ? 'rising to a peak and falling after it'
        : 'nearly flat around its best';
    });
    const shapeText =
      shapes[0] === shapes[1]
        ? `For both batch sizes validation accuracy against the learning rate is ${shapes[0]}.`
        : batchSizes.map((b, i) => `With batch ${b} the curve is ${shapes[i]}.`).join(' ');
    const worst = trials.reduce((a, b) => ((b.value ?? 1) < (a.value ?? 1) ? b : a));

    const budget = 16;
    const seeds = context.quick ? 1 : 5;
    context.log(
      `DL0008: search strategies, ${budget} trials each on the synthetic objective, averaged over ${seeds} seed${seeds > 1 ? 's' : ''}`,
    );
    const strategies: { name: string; curve: number[] }[] = [
      {
        name: 'grid (2 values each)',
        curve: await searchCurve(
          (seed) =>
            new GridSampler(
              { lr: [1e-4, 1e-2], batchSize: [32, 128], momentum: [0.5, 0.95], weightDecay: [1e-5, 1e-3] },
              { seed },
            ),
          seeds,
          budget,
        ),
      },
      { name: 'random', curve: await searchCurve((seed) => new RandomSampler({ seed }), seeds, budget) },
      {
        name: 'TPE (Bayesian)',
        curve: await searchCurve((seed) => new TpeSampler({ seed, startupTrials: 5 }), seeds, budget),
      },
      {
        name: 'Gaussian process (Bayesian)',
        curve: await searchCurve((seed) => new GpSampler({ seed, startupTrials: 5 }), seeds, budget),
      },
    ];
    const searchFigure = lineChart({
      width: 940,
      title: `Best value found so far (synthetic objective, mean of ${seeds} seed${seeds > 1 ? 's' : ''}; optimum 0.99)`,
      xLabel: 'trial',
      yLabel: 'best objective so far',
      series: strategies.map((s) => ({ name: s.name, x: s.curve.map((_, i) => i + 1), y: s.curve })),
    });
    const finals = strategies
      .map((s) => ({ name: s.name, value: s.curve.at(-1)! }))
      .sort((a, b) => b.value - a.value);
    const gridFinal = strategies[0]!.curve.at(-1)!;
    const randomFinal = strategies[1]!.curve.at(-1)!;

    // The tuning experiments' own results (real trainings, more of them), when they have been run here.
    const experiments = [readExperimentResults('lrBatch'), readExperimentResults('search')].filter(
      (results): results is ExperimentResults => results !== null,
    );
    return {
      title: tuningTopic.title,
      question: 'What are the common strategies for hyperparameter tuning in deep learning?',
      text: [
        'Hyperparameters (learning rate, batch size, regularisation, architecture choices) are set before training and judged by validation performance. The strategies differ in how they pick the next setting to try: by hand from experience; every combination of a fixed grid; at random from ranges; or by Bayesian optimisation, which fits a model of "setting → score" to the trials so far and proposes where improvement is likely (tensile has TPE, a Gaussian process, grid, random and Sobol samplers, with pruners for stopping bad trials early).',
        `The note's figure, measured: a grid study (stored as '${study.name}', visible in the dashboard) of ${trials.length} real trainings of the seed CNN (8 and 16 channels, Adam, ${epochs} epochs on ${train.count} MNIST digits, accuracy on ${validation.count} others). ${shapeText} The best was ${percent(best.value ?? Number.NaN)} at lr ${String(best.params.lr)} with batch size ${String(best.params.batchSize)}, the worst ${percent(worst.value ?? Number.NaN)} at lr ${String(worst.params.lr)} with batch size ${String(worst.params.batchSize)}. The best learning rate was ${best32} for batch 32 and ${best64} for batch 64${best64 > best32 ? ', larger for the larger batch, as the usual advice to scale the rate with the batch says' : best64 === best32 ? ': the same for both batch sizes at this grid spacing' : ', smaller for the larger batch, against the usual advice to scale the rate with the batch'}.`,
        `Search strategies on a budget of ${budget} trials, on a synthetic objective shaped like that curve (one sharp optimum in the learning rate, a mild one in batch size, two parameters that barely matter), because ${seeds * 3 * budget + budget} real trainings would take far longer than this topic may: ${finals.map((f) => `${f.name} ${f.value.toFixed(4)}`).join(', ')} (mean best value; 0.99 is the optimum). ${gridFinal < randomFinal ? 'Grid search spends its budget on every combination of two values per parameter, including the ones that do not matter, so it tried only two learning rates and ended below random search, which tries a new learning rate every trial: the note\'s "scales poorly with dimensionality" in numbers.' : 'Grid search did not end below random search here.'} ${finals[0]!.name.includes('Bayesian') ? 'A Bayesian sampler ended best: once a few trials show where the good region is, it keeps sampling there.' : 'The Bayesian samplers did not end best in this small run.'}`,
        ...(experiments.length === 0
          ? [
              'The tuning experiments (tensile experiment lr-batch and tensile experiment search) measure the same with more and longer real trainings; run them and this topic shows their results too.',
            ]
          : experiments.map(describeResults)),
      ],
      tables: [
        ...experiments.flatMap((results) =>
          results.tables.map((table) => ({ ...table, title: `${results.command}: ${table.title}` })),
        ),
        {
          title: `Validation accuracy of the grid (Adam, ${epochs} epochs, ${train.count} digits)`,
          columns: ['learning rate', ...batchSizes.map((b) => `batch ${b}`)],
          rows: rates.map((lr) => [String(lr), ...batchSizes.map((b) => percent(accuracyOf(lr, b)))]),
        },
        {
          title: `Best value after ${budget} trials (synthetic objective, mean of ${seeds} seed${seeds > 1 ? 's' : ''})`,
          columns: ['sampler', 'after 5 trials', `after ${budget} trials`],
          rows: strategies.map((s) => [s.name, s.curve[4]!.toFixed(4), s.curve.at(-1)!.toFixed(4)]),
        },
      ],
      figures: [
        { name: 'tuning-lr-batch', svg: gridFigure },
        { name: 'tuning-strategies', svg: searchFigure },
        ...experiments.flatMap((results) => results.figures),
      ],
      numbers: {
        study: study.name,
        grid: trials.map((t) => ({
          lr: t.params.lr as number,
          batchSize: t.params.batchSize as number,
          accuracy: t.value,
        })),
        strategies: strategies.map((s) => ({
          sampler: s.name,
          bestAfter5: s.curve[4]!,
          bestAfterBudget: s.curve.at(-1)!,
        })),
      },
    };
  },
};
