/**
 * DL0007 Batch normalization: the formula evaluated step by step on a real batch (and checked against
 * tensile's BatchNorm layer), then the seed CNN trained with and without batch norm at three learning
 * rates over several seeds, to see whether batch norm is what allows the higher rate (a paired t-test
 * at each rate).
 */
import {
  Adam,
  BatchNorm,
  Conv2d,
  Dense,
  Flatten,
  GlobalAvgPool2d,
  gridFigure,
  lineChart,
  manualSeed,
  MaxPool2d,
  noGrad,
  ReLU,
  Sequential,
  Tensor,
} from '../../../src/index.js';
import {
  armVerdict,
  intervalCell,
  mnistSplit,
  percent,
  recordedTraining,
  seedList,
  seedText,
  sideBySide,
  spreadSample,
} from '../common.js';
import { compareArms, formatPValue, mean } from '../statistics.js';
import type { Topic } from '../types.js';

const gamma = 1.5;
const beta = 0.25;
const epsilon = 1e-5;

/** The seed CNN's layout, with or without batch norm (without it, the convolutions get biases). */
export function seedLayout(withBatchNorm: boolean, channels: readonly [number, number]): Sequential {
  const layers = [];
  let inChannels = 1;
  for (const width of channels) {
    for (let repeat = 0; repeat < 2; repeat++) {
      layers.push(new Conv2d(inChannels, width, 3, { padding: 1, bias: !withBatchNorm }));
      if (withBatchNorm) layers.push(new BatchNorm(width));
      layers.push(new ReLU());
      inChannels = width;
    }
    layers.push(new MaxPool2d(2));
  }
  layers.push(new GlobalAvgPool2d(), new Flatten(), new Dense(channels[1], 10));
  return new Sequential(...layers);
}

/**
 * Batch norm of channel 0 of a convolution's output on a batch, step by step, beside tensile's
 * BatchNorm layer on the same input.
 */
export function batchNormSteps(images: Float32Array, count: number) {
  manualSeed(7);
  const conv = new Conv2d(1, 8, 3, { padding: 1, bias: false });
  const layer = new BatchNorm(8, { eps: epsilon });
  layer.weight!.data[0] = gamma;
  layer.bias!.data[0] = beta;
  return noGrad(() => {
    const features = conv.forward(new Tensor(images.slice(0, count * 784), [count, 1, 28, 28]));
    const normalised = layer.train().forward(features);
    const plane = 28 * 28;
    const x: number[] = [];
    const fromLayer: number[] = [];
    for (let n = 0; n < count; n++) {
      const offset = n * 8 * plane;
      for (let i = 0; i < plane; i++) {
        x.push(features.data[offset + i]!);
        fromLayer.push(normalised.data[offset + i]!);
      }
    }
    const mu = x.reduce((a, b) => a + b, 0) / x.length;
    const variance = x.reduce((sum, v) => sum + (v - mu) ** 2, 0) / x.length;
    const xHat = x.map((v) => (v - mu) / Math.sqrt(variance + epsilon));
    const y = xHat.map((v) => gamma * v + beta);
    const maxDifference = Math.max(...y.map((v, i) => Math.abs(v - fromLayer[i]!)));
    const meanOf = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
    const varianceOf = (values: number[]) => {
      const m = meanOf(values);
      return values.reduce((sum, v) => sum + (v - m) ** 2, 0) / values.length;
    };
    return {
      x,
      xHat,
      y,
      mu,
      variance,
      values: x.length,
      maxDifference,
      xHatMean: meanOf(xHat),
      xHatVariance: varianceOf(xHat),
      yMean: meanOf(y),
      yStandardDeviation: Math.sqrt(varianceOf(y)),
      runningMean: layer.runningMean.data[0]!,
      runningVar: layer.runningVar.data[0]!,
    };
  });
}

function patch(values: readonly number[], top: number, left: number, size: number): number[] {
  const out: number[] = [];
  for (let y = top; y < top + size; y++)
    for (let x = left; x < left + size; x++) out.push(values[y * 28 + x]!);
  return out;
}

export const batchNormTopic: Topic = {
  id: 'DL0007',
  aliases: ['batchnorm', 'bn', 'batch-norm'],
  title: 'Batch normalization',
  version: 2,
  async run(context) {
    const trainCount = context.quick ? 200 : 3000;
    const testCount = context.quick ? 200 : 600;
    const epochs = context.quick ? 1 : 3;
    const { train, test } = mnistSplit(trainCount, testCount, { seed: 7 });
    const batch = 8;
    const steps = batchNormSteps(spreadSample(train, batch).images, batch);
    // Four positions across the middle of the first image, where the digit's strokes are.
    const positions = [14 * 28 + 8, 14 * 28 + 12, 14 * 28 + 16, 10 * 28 + 14];
    const stepFigure = sideBySide(
      `Batch norm of one channel, step by step: a 6×6 patch of image 1 (μ = ${steps.mu.toFixed(3)}, σ² = ${steps.variance.toFixed(4)}, γ = ${gamma}, β = ${beta})`,
      [
        ['x (conv output)', patch(steps.x, 11, 11, 6)],
        ['x̂ = (x − μ)/√(σ² + ε)', patch(steps.xHat, 11, 11, 6)],
        ['y = γ·x̂ + β', patch(steps.y, 11, 11, 6)],
      ].map(([title, values]) =>
        gridFigure(title as string, [{ title: '', values: values as number[], rows: 6, columns: 6 }], {
          cell: 48,
          decimals: 2,
        }),
      ),
    );

    const rates = context.quick ? [1e-2, 1e-1] : [1e-3, 1e-2, 1e-1];
    const channels = [8, 16] as const;
    const seeds = seedList(context);
    context.log(
      `DL0007: training the seed CNN with and without batch norm at learning rates ${rates.join(', ')} (Adam), ${epochs} epoch${epochs > 1 ? 's' : ''} on ${train.count} digits, ${seedText(seeds)}`,
    );
    interface Setting {
      withBatchNorm: boolean;
      lr: number;
      /** Per seed. */
      accuracy: number[];
      curves: number[][];
      nanLosses: number;
    }
    const settings: Setting[] = [true, false].flatMap((withBatchNorm) =>
      rates.map((lr) => ({ withBatchNorm, lr, accuracy: [], curves: [], nanLosses: 0 })),
    );
    for (const seed of seeds) {
      for (const setting of settings) {
        manualSeed(seed);
        const model = seedLayout(setting.withBatchNorm, channels);
        const result = await recordedTraining(context, {
          name: `${setting.withBatchNorm ? 'with' : 'without'} batch norm, lr ${setting.lr}, seed ${seed}`,
          model,
          train,
          test,
          epochs,
          seed,
          optimizer: new Adam(model.parameters(), { lr: setting.lr }),
          config: { batchNorm: setting.withBatchNorm, lr: setting.lr, optimizer: 'Adam', seed },
        });
        const finalLoss = result.history.epochs.at(-1)?.loss ?? Number.NaN;
        if (!Number.isFinite(finalLoss)) setting.nanLosses++;
        setting.accuracy.push(result.testAccuracy);
        setting.curves.push(result.curve);
      }
    }
    const name = (setting: Setting) => `${setting.withBatchNorm ? 'BN' : 'no BN'}, lr ${setting.lr}`;
    const curveFigure = lineChart({
      title: `With and without batch norm, ${rates.length} learning rates (Adam; validation accuracy, mean of ${seeds.length} seeds)`,
      width: 940,
      xLabel: 'epoch',
      yLabel: 'validation accuracy (%)',
      series: settings.map((setting) => ({
        name: name(setting),
        x: setting.curves[0]!.map((_, i) => i + 1),
        y: setting.curves[0]!.map((_, epoch) =>
          mean(setting.curves.map((curve) => (Number.isFinite(curve[epoch]!) ? curve[epoch]! * 100 : 0))),
        ),
      })),
      yRange: [0, 100],
    });

    const find = (withBatchNorm: boolean, lr: number) =>
      settings.find((s) => s.withBatchNorm === withBatchNorm && s.lr === lr)!;
    const arm = (setting: Setting) => ({
      name: `${setting.withBatchNorm ? 'with' : 'without'} batch norm`,
      values: setting.accuracy,
    });
    const highest = rates.at(-1)!;
    const atRate = rates.map((lr) => ({
      lr,
      verdict: armVerdict(context, arm(find(true, lr)), arm(find(false, lr)), 10),
      comparison: context.quick ? null : compareArms(arm(find(true, lr)), arm(find(false, lr))),
    }));
    const highestComparison = atRate.at(-1)!;
    const answer = context.quick
      ? `At lr ${highest}: ${highestComparison.verdict}.`
      : highestComparison.comparison!.winner?.name === 'with batch norm'
        ? `Yes, here batch norm is what allows the highest rate. At lr ${highest}: ${highestComparison.verdict}.`
        : highestComparison.comparison!.winner === null
          ? `Not shown here: at lr ${highest}, ${highestComparison.verdict}.`
          : `No, not in these runs: at lr ${highest}, ${highestComparison.verdict}.`;
    const others = atRate
      .slice(0, -1)
      .map((r) => `At lr ${r.lr}: ${r.verdict}.`)
      .join(' ');
    const best = (withBatchNorm: boolean) =>
      settings
        .filter((s) => s.withBatchNorm === withBatchNorm)
        .reduce((a, b) => (mean(b.accuracy) > mean(a.accuracy) ? b : a));
    const aheadEverywhere =
      !context.quick && atRate.every((r) => r.comparison?.winner?.name === 'with batch norm');
    const bestWith = best(true);
    const bestWithout = best(false);
    const nanRuns = settings.filter((s) => s.nanLosses > 0);

    return {
      title: batchNormTopic.title,
      question: 'Why use batch normalization in deep learning training?',
      text: [
        `Batch norm standardises each channel over the batch, then lets the network rescale it: y = γ·(x − μ_B)/√(σ²_B + ε) + β. Evaluated by hand on a real batch (${batch} MNIST digits through a freshly initialised 3×3 convolution, channel 1: ${steps.values.toLocaleString('en-US')} values over batch, height and width): μ_B = ${steps.mu.toFixed(4)}, σ²_B = ${steps.variance.toFixed(4)} (divided by N, not N−1), so x̂ has mean ${steps.xHatMean.toExponential(1)} and variance ${steps.xHatVariance.toFixed(4)} (a little under 1: ε = ${epsilon} is added to a variance of only ${steps.variance.toFixed(4)}); with γ = ${gamma} and β = ${beta}, y has mean ${steps.yMean.toFixed(4)} = β and standard deviation ${steps.yStandardDeviation.toFixed(4)}, γ times that same factor's square root. The layer has set the channel's scale and offset to exactly what γ and β say, whatever they were before. tensile's BatchNorm layer gives the same y to within ${steps.maxDifference.toExponential(1)}.`,
        `In training the layer also moves its running statistics a tenth of the way toward the batch's (running mean 0 → ${steps.runningMean.toFixed(4)}, running variance 1 → ${steps.runningVar.toFixed(4)}, using the unbiased variance); in inference it normalises with those instead of the batch's, so a single image gets the same answer whatever batch it is in.`,
        `Does batch norm allow a higher learning rate? The seed CNN (${channels[0]} and ${channels[1]} channels) was trained with and without it (without it the convolutions get a bias instead of β) at learning rates ${rates.join(', ')} with Adam, ${epochs} epoch${epochs > 1 ? 's' : ''} on ${train.count} digits, ${test.count} test digits, each setting with ${seedText(seeds)} (the same seeds for every setting; batch-norm statistics re-estimated on 30 training batches before testing). ${answer} ${others}${aheadEverywhere ? ' Batch norm was ahead at every rate tried, so at this budget it helps whatever the rate, not only by making the highest one trainable.' : ''} The highest mean with batch norm was ${percent(mean(bestWith.accuracy))} at lr ${bestWith.lr}; without, ${percent(mean(bestWithout.accuracy))} at lr ${bestWithout.lr}.${nanRuns.length > 0 ? ` The loss became NaN in ${nanRuns.map((s) => `${s.nanLosses} of ${seeds.length} runs ${s.withBatchNorm ? 'with' : 'without'} batch norm at lr ${s.lr}`).join(', ')}.` : ''}`,
        'The note\'s other claims are about why this happens (less sensitivity to initialisation and scale, the noise of batch statistics acting as a regulariser); this experiment measures the outcome, not the mechanism. The "internal covariate shift" explanation in the note is the original paper\'s; later work attributes the benefit mostly to a smoother loss surface.',
      ],
      tables: [
        {
          title: `Four values of channel 1 (image 1) through each step (μ = ${steps.mu.toFixed(4)}, σ² = ${steps.variance.toFixed(4)}, ε = ${epsilon})`,
          columns: ['position (row, column)', 'x', 'x − μ', 'x̂', 'γ·x̂ + β'],
          rows: positions.map((p) => [
            `(${Math.floor(p / 28)}, ${p % 28})`,
            steps.x[p]!.toFixed(4),
            (steps.x[p]! - steps.mu).toFixed(4),
            steps.xHat[p]!.toFixed(4),
            steps.y[p]!.toFixed(4),
          ]),
        },
        {
          title: `Test accuracy after ${epochs} epoch${epochs > 1 ? 's' : ''} (Adam), % (mean ± 95% t interval over ${seedText(seeds)})`,
          columns: ['learning rate', 'with batch norm', 'without batch norm', 'paired t-test p'],
          rows: rates.map((lr, i) => [
            String(lr),
            intervalCell(find(true, lr).accuracy),
            intervalCell(find(false, lr).accuracy),
            atRate[i]!.comparison === null ? 'quick run' : formatPValue(atRate[i]!.comparison!.test.pValue),
          ]),
        },
      ],
      figures: [
        { name: 'batchnorm-steps', svg: stepFigure },
        { name: 'batchnorm-learning-rates', svg: curveFigure },
      ],
      numbers: {
        steps: {
          mean: steps.mu,
          variance: steps.variance,
          xHatMean: steps.xHatMean,
          xHatVariance: steps.xHatVariance,
          yMean: steps.yMean,
          yStandardDeviation: steps.yStandardDeviation,
          maxDifferenceToLayer: steps.maxDifference,
          gamma,
          beta,
        },
        seeds,
        trainings: settings.map((s) => ({
          batchNorm: s.withBatchNorm,
          lr: s.lr,
          testAccuracy: s.accuracy,
          nanLosses: s.nanLosses,
        })),
      },
    };
  },
};
