/**
 * DL0008 Hyperparameter tuning, with tensile's tuning library (src/tune):
 *
 * - the note's figure: validation accuracy against the learning rate (log scale) for batch sizes 32
 *   and 64, measured as a grid study of real trainings, each setting over several seeds (the seed is
 *   a grid dimension), compared by paired t-tests. The study is kept in the study storage (the
 *   same database as the runs), so the dashboard shows its plots, and each trial is a recorded run;
 * - the note's strategies (grid, random, Bayesian optimisation with TPE and a Gaussian process)
 *   compared on a budget of 16 trials. Thousands of real trainings would not fit in five minutes, so
 *   this part searches a synthetic objective shaped like the measured one: a clear optimum in the
 *   learning rate, a mild one in the batch size, and two parameters that barely matter. Its text says
 *   so.
 */
import {
  Adam,
  evaluate,
  fit,
  GpSampler,
  GridSampler,
  lineChart,
  manualSeed,
  MemoryStorage,
  RandomSampler,
  RunTracker,
  seedCnn,
  Study,
  TpeSampler,
  type Sampler,
  type Trial,
} from '../../../src/index.js';
import {
  intervalCell,
  mnistSplit,
  percent,
  quickVerdict,
  recalibrateBatchNorm,
  seedList,
  seedText,
} from '../common.js';
import {
  aboveChance,
  compareArms,
  formatAccuracy,
  formatDifference,
  intervalsSeparate,
  mean,
  tInterval,
  type Interval,
} from '../statistics.js';
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

/** Best value after each trial, one curve per seed. */
async function searchCurves(
  makeSampler: (seed: number) => Sampler,
  seeds: number,
  trials: number,
): Promise<number[][]> {
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
    const curve = (await study.trials()).map((t) => (best = Math.max(best, t.value ?? -Infinity)));
    // A sampler that stops early (a finished grid) keeps its best value for the remaining trials.
    while (curve.length < trials) curve.push(curve.at(-1)!);
    curves.push(curve);
    await study.close();
  }
  return curves;
}

export const tuningTopic: Topic = {
  id: 'DL0008',
  aliases: ['tuning', 'hyperparameters', 'hpo'],
  title: 'Hyperparameter tuning: learning rate and batch size, and search strategies',
  version: 2,
  inputs() {
    const stamp = (results: ExperimentResults | null) =>
      results === null ? null : results.modified.getTime();
    return {
      lrBatch: stamp(readExperimentResults('lrBatch')),
      search: stamp(readExperimentResults('search')),
    };
  },
  async run(context) {
    const rates = context.quick ? [1e-3, 1e-2] : [3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1];
    const batchSizes = [32, 64];
    const trainCount = context.quick ? 200 : 1200;
    const validationCount = context.quick ? 200 : 600;
    const epochs = context.quick ? 1 : 3;
    const seeds = seedList(context);
    const { train, test: validation } = mnistSplit(trainCount, validationCount, { seed: 8 });
    const name = `DL0008 lr × batch ${new Date().toISOString().slice(0, 19).replace('T', ' ')}${context.quick ? ' (quick)' : ''}`;
    context.log(
      `DL0008: grid study '${name}': ${rates.length} learning rates × ${batchSizes.length} batch sizes × ${seedText(seeds)}, ${epochs} epochs on ${train.count} digits each`,
    );
    const study = await Study.create({
      storage: context.studies,
      name,
      direction: 'maximize',
      sampler: new GridSampler({ lr: rates, batchSize: batchSizes, seed: seeds }, { seed: 8 }),
      heartbeat: null,
    });
    await study.setUserAttribute('metric', 'validation accuracy');
    await study.setUserAttribute('source', `tensile explain DL0008${context.quick ? ' --quick' : ''}`);
    await study.optimize(
      async (trial) => {
        const lr = trial.suggestFloat('lr', rates[0]!, rates.at(-1)!, { log: true });
        const batchSize = trial.suggestCategorical('batchSize', batchSizes);
        const seed = trial.suggestCategorical('seed', seeds);
        manualSeed(seed);
        const model = seedCnn({ channels: [8, 16] });
        const tracker = await RunTracker.start(context.store, {
          name: `lr ${lr}, batch ${batchSize}, seed ${seed}`,
          kind: 'trial',
          parentId: context.runId,
          study: study.name,
          trialNumber: trial.number,
          config: { lr, batchSize, seed, channels: [8, 16], epochs },
        });
        fit(model, train, {
          optimizer: new Adam(model.parameters(), { lr }),
          epochs,
          batchSize,
          seed,
          progress: false,
          callbacks: [tracker],
        });
        recalibrateBatchNorm(model, train, seed);
        const accuracy = evaluate(model, validation).accuracy;
        tracker.updateSummary({ validationAccuracy: accuracy });
        await tracker.close();
        context.log(`  lr ${lr}, batch ${batchSize}, seed ${seed}: validation accuracy ${percent(accuracy)}`);
        return accuracy;
      },
      { nTrials: rates.length * batchSizes.length * seeds.length },
    );
    const trials = (await study.trials()).filter((t) => t.state === 'complete');
    /** Validation accuracy per seed, in the order of `seeds`. */
    const accuracies = (lr: number, batchSize: number) =>
      seeds.map(
        (seed) =>
          trials.find((t) => t.params.lr === lr && t.params.batchSize === batchSize && t.params.seed === seed)
            ?.value ?? Number.NaN,
      );
    const gridFigure = lineChart({
      width: 940,
      title: `Validation accuracy against learning rate (Adam, ${epochs} epochs, ${train.count} MNIST digits; mean and 95% interval of ${seeds.length} seeds)`,
      xLabel: 'learning rate',
      yLabel: 'validation accuracy (%)',
      xScale: 'log',
      series: batchSizes.map((b) => ({
        name: `batch size ${b}`,
        x: rates,
        y: rates.map((lr) => mean(accuracies(lr, b)) * 100),
        error: rates.map((lr) => {
          const halfWidth = tInterval(accuracies(lr, b)).halfWidth * 100;
          return Number.isFinite(halfWidth) ? halfWidth : 0;
        }),
      })),
    });
    const ranking = (b: number) => [...rates].sort((x, y) => mean(accuracies(y, b)) - mean(accuracies(x, b)));
    const bestRates = batchSizes.map((b) => {
      const [best, runnerUp] = ranking(b) as [number, number];
      const comparison = context.quick
        ? null
        : compareArms(
            { name: `lr ${best}`, values: accuracies(best, b) },
            { name: `lr ${runnerUp}`, values: accuracies(runnerUp, b) },
          );
      return { batchSize: b, best, runnerUp, comparison };
    });
    const bestText = bestRates
      .map(
        ({ batchSize, best, runnerUp, comparison }) =>
          `with batch ${batchSize} the highest mean was at lr ${best}, ${formatAccuracy(tInterval(accuracies(best, batchSize)))}; ${
            comparison === null
              ? quickVerdict
              : comparison.winner === null
                ? `the runner-up, lr ${runnerUp}, was not found worse (lr ${best} − lr ${runnerUp} = ${formatDifference(comparison)}), so the best rate is pinned down only to that range`
                : `ahead of the runner-up, lr ${runnerUp} (${formatDifference(comparison)})`
          }`,
      )
      .join('; ');
    const pinned = bestRates.every((r) => r.comparison?.winner !== null && r.comparison !== null);
    const [best32, best64] = bestRates.map((r) => r.best) as [number, number];
    const scaling = context.quick
      ? ''
      : !pinned
        ? ' Whether the best rate grows with the batch size cannot be read from this grid at this budget: at least one best rate is not separated from its neighbour.'
        : best64 > best32
          ? ' The best rate was larger for the larger batch, as the usual advice to scale the rate with the batch says.'
          : best64 === best32
            ? ' Both batch sizes had the same best rate at this grid spacing.'
            : ' The best rate was smaller for the larger batch, against the usual advice to scale the rate with the batch.';
    const chance = batchSizes.flatMap((b) =>
      rates.filter((lr) => !aboveChance(accuracies(lr, b), 10).above).map((lr) => `lr ${lr} with batch ${b}`),
    );

    const budget = 16;
    const searchSeeds = context.quick ? 2 : 5;
    context.log(
      `DL0008: search strategies, ${budget} trials each on the synthetic objective, ${searchSeeds} sampler seeds each`,
    );
    const strategies: { name: string; curves: number[][] }[] = [
      {
        name: 'grid (2 values each)',
        curves: await searchCurves(
          (seed) =>
            new GridSampler(
              { lr: [1e-4, 1e-2], batchSize: [32, 128], momentum: [0.5, 0.95], weightDecay: [1e-5, 1e-3] },
              { seed },
            ),
          searchSeeds,
          budget,
        ),
      },
      {
        name: 'random',
        curves: await searchCurves((seed) => new RandomSampler({ seed }), searchSeeds, budget),
      },
      {
        name: 'TPE (Bayesian)',
        curves: await searchCurves((seed) => new TpeSampler({ seed, startupTrials: 5 }), searchSeeds, budget),
      },
      {
        name: 'Gaussian process (Bayesian)',
        curves: await searchCurves((seed) => new GpSampler({ seed, startupTrials: 5 }), searchSeeds, budget),
      },
    ];
    const meanCurve = (curves: number[][]) => curves[0]!.map((_, i) => mean(curves.map((c) => c[i]!)));
    const finalInterval = (curves: number[][]) => tInterval(curves.map((c) => c.at(-1)!));
    const searchFigure = lineChart({
      width: 940,
      title: `Best value found so far (synthetic objective, mean of ${searchSeeds} sampler seeds; optimum 0.99)`,
      xLabel: 'trial',
      yLabel: 'best objective so far',
      series: strategies.map((s) => {
        const curve = meanCurve(s.curves);
        return { name: s.name, x: curve.map((_, i) => i + 1), y: curve };
      }),
    });
    const finals = strategies
      .map((s) => ({ name: s.name, interval: finalInterval(s.curves) }))
      .sort((a, b) => b.interval.mean - a.interval.mean);
    const gridFinal = finalInterval(strategies[0]!.curves);
    const randomFinal = finalInterval(strategies[1]!.curves);
    const leader = finals[0]!;
    const leaderSeparate = finals.slice(1).every((f) => intervalsSeparate(leader.interval, f.interval));
    const searchVerdict = context.quick
      ? `This quick run draws no conclusion from these numbers.`
      : `${
          gridFinal.mean < randomFinal.mean && intervalsSeparate(gridFinal, randomFinal)
            ? `Grid search ended below random search, their intervals apart: the grid spends its budget on every combination of two values per parameter, including the ones that do not matter, so it tried only two learning rates, while random search tries a new one every trial (the note's "scales poorly with dimensionality" in numbers).`
            : 'Grid and random search were not separated at this budget (their intervals overlap).'
        } ${
          leaderSeparate
            ? `${leader.name} ended best, its interval above every other sampler's.`
            : `${leader.name} had the highest mean, but its interval overlaps another sampler's, so no single best sampler is claimed at this budget.`
        }`;

    // The tuning experiments' own results (real trainings, more of them), when they have been run here.
    const experiments = [readExperimentResults('lrBatch'), readExperimentResults('search')].filter(
      (results): results is ExperimentResults => results !== null,
    );
    return {
      title: tuningTopic.title,
      question: 'What are the common strategies for hyperparameter tuning in deep learning?',
      text: [
        'Hyperparameters (learning rate, batch size, regularisation, architecture choices) are set before training and judged by validation performance. The strategies differ in how they pick the next setting to try: by hand from experience; every combination of a fixed grid; at random from ranges; or by Bayesian optimisation, which fits a model of "setting → score" to the trials so far and proposes where improvement is likely (tensile has TPE, a Gaussian process, grid, random and Sobol samplers, with pruners for stopping bad trials early).',
        `The note's figure, measured: a grid study (stored as '${study.name}', visible in the dashboard) of ${trials.length} real trainings of the seed CNN (8 and 16 channels, Adam, ${epochs} epoch${epochs > 1 ? 's' : ''} on ${train.count} MNIST digits, accuracy on ${validation.count} others, batch-norm statistics re-estimated before validating): ${rates.length} learning rates × ${batchSizes.length} batch sizes, each with ${seedText(seeds)} (the same seeds for every setting, so settings are compared seed by seed with a paired t-test). ${context.quick ? `This ${quickVerdict.replace(/^this /, '')}.` : `${bestText[0]!.toUpperCase()}${bestText.slice(1)}.${scaling}`}${chance.length > 0 && !context.quick ? ` Not clearly above chance (10%): ${chance.join(', ')}.` : ''}`,
        `Search strategies on a budget of ${budget} trials, on a synthetic objective shaped like that curve (one sharp optimum in the learning rate, a mild one in batch size, two parameters that barely matter), because ${searchSeeds * 4 * budget} real trainings would take far longer than this topic may; each sampler ran with ${searchSeeds} seeds, and its best value after ${budget} trials is given as mean with 95% t interval (0.99 is the optimum): ${finals.map((f) => `${f.name} ${f.interval.mean.toFixed(4)} (${Number.isFinite(f.interval.halfWidth) ? `${f.interval.lower.toFixed(4)}–${f.interval.upper.toFixed(4)}` : 'no interval'})`).join(', ')}. The samplers' seeds are not paired (a seed means something different to each), so differences are claimed only where intervals do not overlap. ${searchVerdict}`,
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
          title: `Validation accuracy of the grid (Adam, ${epochs} epochs, ${train.count} digits), % (mean ± 95% t interval over ${seedText(seeds)})`,
          columns: ['learning rate', ...batchSizes.map((b) => `batch ${b}`)],
          rows: rates.map((lr) => [String(lr), ...batchSizes.map((b) => intervalCell(accuracies(lr, b)))]),
        },
        {
          title: `Best value after ${budget} trials (synthetic objective; mean ± 95% t interval over ${searchSeeds} sampler seeds)`,
          columns: ['sampler', 'after 5 trials', `after ${budget} trials`],
          rows: strategies.map((s) => {
            const cell = (interval: Interval) =>
              Number.isFinite(interval.halfWidth)
                ? `${interval.mean.toFixed(4)} ± ${interval.halfWidth.toFixed(4)}`
                : interval.mean.toFixed(4);
            return [s.name, cell(tInterval(s.curves.map((c) => c[4]!))), cell(finalInterval(s.curves))];
          }),
        },
      ],
      figures: [
        { name: 'tuning-lr-batch', svg: gridFigure },
        { name: 'tuning-strategies', svg: searchFigure },
        ...experiments.flatMap((results) => results.figures),
      ],
      numbers: {
        study: study.name,
        seeds,
        grid: trials.map((t) => ({
          lr: t.params.lr as number,
          batchSize: t.params.batchSize as number,
          seed: t.params.seed as number,
          accuracy: t.value,
        })),
        strategies: strategies.map((s) => ({
          sampler: s.name,
          seeds: searchSeeds,
          bestAfter5: s.curves.map((c) => c[4]!),
          bestAfterBudget: s.curves.map((c) => c.at(-1)!),
        })),
      },
    };
  },
};
