/**
 * DL0007 Batch normalization: the formula evaluated step by step on a real batch (and checked against
 * tensile's BatchNorm layer), then the seed CNN trained with and without batch norm at three learning
 * rates, to see whether batch norm is what allows the higher rate.
 */
import { manualSeed } from '../../nn/init.js';
import { ReLU } from '../../nn/layers/activation.js';
import { BatchNorm } from '../../nn/layers/batchnorm.js';
import { Sequential } from '../../nn/layers/containers.js';
import { Conv2d } from '../../nn/layers/conv.js';
import { Dense } from '../../nn/layers/dense.js';
import { Flatten, GlobalAvgPool2d, MaxPool2d } from '../../nn/layers/pooling.js';
import { Adam } from '../../optim/adam.js';
import { noGrad } from '../../autograd/graph.js';
import { gridFigure, lineChart } from '../../plot/charts.js';
import { Tensor } from '../../tensor/tensor.js';
import { mnistSplit, percent, recordedTraining, sideBySide, spreadSample } from '../common.js';
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
  version: 1,
  async run(context) {
    const trainCount = context.quick ? 300 : 4500;
    const testCount = context.quick ? 300 : 600;
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
    context.log(
      `DL0007: training the seed CNN with and without batch norm at learning rates ${rates.join(', ')} (Adam), ${epochs} epoch${epochs > 1 ? 's' : ''} on ${train.count} digits`,
    );
    const runs: {
      withBatchNorm: boolean;
      lr: number;
      accuracy: number;
      curve: number[];
      finalLoss: number;
      diverged: boolean;
    }[] = [];
    for (const withBatchNorm of [true, false]) {
      for (const lr of rates) {
        manualSeed(3);
        const model = seedLayout(withBatchNorm, channels);
        const result = await recordedTraining(context, {
          name: `${withBatchNorm ? 'with' : 'without'} batch norm, lr ${lr}`,
          model,
          train,
          test,
          epochs,
          optimizer: new Adam(model.parameters(), { lr }),
          config: { batchNorm: withBatchNorm, lr, optimizer: 'Adam' },
        });
        const finalLoss = result.history.epochs.at(-1)?.loss ?? Number.NaN;
        runs.push({
          withBatchNorm,
          lr,
          accuracy: result.testAccuracy,
          curve: result.curve,
          finalLoss,
          diverged: !Number.isFinite(finalLoss) || result.testAccuracy < 0.2,
        });
      }
    }
    const curveFigure = lineChart({
      title: 'With and without batch norm, three learning rates (Adam)',
      width: 860,
      xLabel: 'epoch',
      yLabel: 'validation accuracy (%)',
      series: runs.map((run) => ({
        name: `${run.withBatchNorm ? 'BN' : 'no BN'}, lr ${run.lr}`,
        x: run.curve.map((_, i) => i + 1),
        y: run.curve.map((a) => (Number.isFinite(a) ? a * 100 : 0)),
      })),
      yRange: [0, 100],
    });

    const highest = rates.at(-1)!;
    const atHighest = (withBatchNorm: boolean) =>
      runs.find((r) => r.withBatchNorm === withBatchNorm && r.lr === highest)!;
    const best = (withBatchNorm: boolean) =>
      runs
        .filter((r) => r.withBatchNorm === withBatchNorm)
        .reduce((a, b) => (b.accuracy > a.accuracy ? b : a));
    const bnHigh = atHighest(true);
    const plainHigh = atHighest(false);
    const answer =
      bnHigh.accuracy > plainHigh.accuracy + 0.05
        ? `Yes, here batch norm is what allows the highest rate: at lr ${highest} the network with batch norm reaches ${percent(bnHigh.accuracy)} while the one without ${plainHigh.diverged ? `fails (${percent(plainHigh.accuracy)}, ${Number.isFinite(plainHigh.finalLoss) ? 'stuck' : 'its loss became NaN'})` : `reaches only ${percent(plainHigh.accuracy)}`}.`
        : Math.abs(bnHigh.accuracy - plainHigh.accuracy) <= 0.05
          ? `Not clearly here: at lr ${highest} the two end close (${percent(bnHigh.accuracy)} with batch norm, ${percent(plainHigh.accuracy)} without).`
          : `No, not in this run: at lr ${highest} the network without batch norm did better (${percent(plainHigh.accuracy)} against ${percent(bnHigh.accuracy)}).`;
    const bestWith = best(true);
    const bestWithout = best(false);

    return {
      title: batchNormTopic.title,
      question: 'Why use batch normalization in deep learning training?',
      text: [
        `Batch norm standardises each channel over the batch, then lets the network rescale it: y = γ·(x − μ_B)/√(σ²_B + ε) + β. Evaluated by hand on a real batch (${batch} MNIST digits through a freshly initialised 3×3 convolution, channel 1: ${steps.values.toLocaleString('en-US')} values over batch, height and width): μ_B = ${steps.mu.toFixed(4)}, σ²_B = ${steps.variance.toFixed(4)} (divided by N, not N−1), so x̂ has mean ${steps.xHatMean.toExponential(1)} and variance ${steps.xHatVariance.toFixed(4)} (a little under 1: ε = ${epsilon} is added to a variance of only ${steps.variance.toFixed(4)}); with γ = ${gamma} and β = ${beta}, y has mean ${steps.yMean.toFixed(4)} = β and standard deviation ${steps.yStandardDeviation.toFixed(4)}, γ times that same factor's square root. The layer has set the channel's scale and offset to exactly what γ and β say, whatever they were before. tensile's BatchNorm layer gives the same y to within ${steps.maxDifference.toExponential(1)}.`,
        `In training the layer also moves its running statistics a tenth of the way toward the batch's (running mean 0 → ${steps.runningMean.toFixed(4)}, running variance 1 → ${steps.runningVar.toFixed(4)}, using the unbiased variance); in inference it normalises with those instead of the batch's, so a single image gets the same answer whatever batch it is in.`,
        `Does batch norm allow a higher learning rate? The seed CNN (${channels[0]} and ${channels[1]} channels) was trained with and without it (without it the convolutions get a bias instead of β) at learning rates ${rates.join(', ')} with Adam, ${epochs} epoch${epochs > 1 ? 's' : ''} on ${train.count} digits. ${answer} The best result with batch norm was ${percent(bestWith.accuracy)} at lr ${bestWith.lr}; without, ${percent(bestWithout.accuracy)} at lr ${bestWithout.lr}.${bestWith.lr < highest ? ` So batch norm makes the highest rate trainable, but even with it the best rate here was a lower one.` : ''}`,
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
          title: `Test accuracy after ${epochs} epoch${epochs > 1 ? 's' : ''} (Adam)`,
          columns: ['learning rate', 'with batch norm', 'without batch norm'],
          rows: rates.map((lr) => {
            const cell = (withBatchNorm: boolean) => {
              const run = runs.find((r) => r.withBatchNorm === withBatchNorm && r.lr === lr)!;
              return `${percent(run.accuracy)}${Number.isFinite(run.finalLoss) ? '' : ' (loss NaN)'}`;
            };
            return [String(lr), cell(true), cell(false)];
          }),
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
        trainings: runs.map((r) => ({
          batchNorm: r.withBatchNorm,
          lr: r.lr,
          testAccuracy: r.accuracy,
          finalLoss: Number.isFinite(r.finalLoss) ? r.finalLoss : null,
        })),
      },
    };
  },
};
