/**
 * DL0011 Fully connected layer: Flatten + FC against GAP + FC. Parameter counts come from real tensile
 * heads (summary() of each), the accuracy from training both heads of the seed CNN the same way on
 * six MNIST digits over several seeds (compared by a paired t-test); a shifted test set checks the note's "spatial robustness" claim.
 */
import {
  Dense,
  evaluate,
  Flatten,
  GlobalAvgPool2d,
  lineChart,
  manualSeed,
  seedCnn,
  Sequential,
  summary,
} from '../../../src/index.js';
import {
  armVerdict,
  count,
  differenceVerdict,
  intervalCell,
  mnistSplit,
  recordedTraining,
  seedList,
  seedText,
  shiftImages,
  titledBarChart,
} from '../common.js';
import { mean, tInterval } from '../statistics.js';
import type { Topic } from '../types.js';

const channels = 8;
const classes = 6;
const sizes = [4, 7, 14];

/** Trainable parameters of each head for an input of `channels` maps of size×size. */
export function headParameters(size: number): { flatten: number; gap: number } {
  const flatten = new Sequential(new Flatten(), new Dense(channels * size * size, classes));
  const gap = new Sequential(new GlobalAvgPool2d(), new Flatten(), new Dense(channels, classes));
  return {
    flatten: summary(flatten, [channels, size, size]).trainableParameters,
    gap: summary(gap, [channels, size, size]).trainableParameters,
  };
}

export const fcTopic: Topic = {
  id: 'DL0011',
  aliases: ['fc', 'dense', 'gap'],
  title: 'Fully connected layer: Flatten + FC against GAP + FC',
  version: 2,
  async run(context) {
    const counts = sizes.map((size) => ({ size, ...headParameters(size) }));
    const [small, middle, large] = counts;

    const trainCount = context.quick ? 200 : 3000;
    const testCount = context.quick ? 200 : 1200;
    const epochs = context.quick ? 1 : 3;
    const seeds = seedList(context);
    context.log(
      `DL0011: training the seed CNN (8+8 channels) with each head on ${trainCount} digits 0–5, ${epochs} epochs, ${seedText(seeds)}`,
    );
    const { train, test } = mnistSplit(trainCount, testCount, { classes: [0, 1, 2, 3, 4, 5] });
    const shifts = [0, 2, 4];
    const shiftedTests = shifts.map((pixels) => (pixels === 0 ? test : shiftImages(test, pixels)));
    const headNames = ['flatten', 'gap'] as const;
    const label = (head: (typeof headNames)[number]) => (head === 'gap' ? 'GAP + FC' : 'Flatten + FC');
    // shifted[head][shift][seed]; both heads see the same data, weight stream and order per seed.
    const shifted = { flatten: shifts.map(() => [] as number[]), gap: shifts.map(() => [] as number[]) };
    const parameters = { flatten: 0, gap: 0 };
    const seconds = { flatten: [] as number[], gap: [] as number[] };
    for (const seed of seeds) {
      for (const head of headNames) {
        manualSeed(seed);
        const model = seedCnn({ channels: [channels, channels], classes, head });
        parameters[head] = summary(model, [1, 28, 28]).trainableParameters;
        const training = await recordedTraining(context, {
          name: `${label(head)} head, seed ${seed}`,
          model,
          train,
          test,
          epochs,
          lr: 3e-3,
          seed,
          validate: false,
          config: { head, channels: [channels, channels], classes, lr: 3e-3, seed },
        });
        shifts.forEach((pixels, i) =>
          shifted[head][i]!.push(
            pixels === 0 ? training.testAccuracy : evaluate(model, shiftedTests[i]!).accuracy,
          ),
        );
        seconds[head].push(training.seconds);
      }
    }

    const parameterFigure = titledBarChart({
      title: `Head parameters: ${channels} channels, ${classes} classes`,
      yLabel: 'trainable parameters',
      categories: sizes.map((s) => `${s}×${s} feature maps`),
      groups: [
        { name: 'Flatten + FC', values: counts.map((c) => c.flatten) },
        { name: 'GAP + FC', values: counts.map((c) => c.gap) },
      ],
      yScale: 'log',
    });
    const accuracyFigure = lineChart({
      title: `MNIST digits 0–5, shifted test digits: accuracy of each head (mean and 95% interval, ${seeds.length} seeds)`,
      width: 940,
      xLabel: 'test digits shifted right and down by (pixels)',
      yLabel: 'test accuracy (%)',
      series: headNames.map((head) => ({
        name: label(head),
        x: shifts,
        y: shifted[head].map((values) => mean(values) * 100),
        error: shifted[head].map((values) => {
          const halfWidth = tInterval(values).halfWidth * 100;
          return Number.isFinite(halfWidth) ? halfWidth : 0;
        }),
      })),
    });

    const saved = count(parameters.flatten - parameters.gap);
    const verdict = armVerdict(
      context,
      { name: 'Flatten + FC', values: shifted.flatten[0]! },
      { name: 'GAP + FC', values: shifted.gap[0]! },
      classes,
    );
    const lastShift = shifts.length - 1;
    const drop = (head: (typeof headNames)[number]) =>
      shifted[head][0]!.map((a, i) => a - shifted[head][lastShift]![i]!);
    const flatDrop = mean(drop('flatten')) * 100;
    const gapDrop = mean(drop('gap')) * 100;
    const robustness = differenceVerdict(
      context,
      { name: 'Flatten + FC loss', values: drop('flatten') },
      { name: 'GAP + FC loss', values: drop('gap') },
      {
        firstHigher:
          "This supports the note's claim of spatial robustness: the flatten head lost more, as expected when each of its weights is tied to one position while GAP's answer does not depend on where in the map a feature fires",
        secondHigher:
          "This does not support the note's claim of spatial robustness here: the GAP head lost more. The convolutions and max-pools before the head decide how a shift moves the features",
        none: 'No difference in what the shift cost was found at this budget, so this test does not show GAP being more robust to position; the convolutions and pooling before the head shape that more than the head does',
      },
    );

    return {
      title: fcTopic.title,
      question: 'Can you explain what a fully connected layer is?',
      text: [
        'A fully connected (dense) layer multiplies its input vector by a weight matrix and adds a bias: every output sees every input, so a layer from n inputs to m outputs has n·m + m parameters. To put one on top of convolutional feature maps, the maps are either flattened (every value of every map becomes an input) or reduced first by global average pooling (GAP: each map becomes its mean, one number per channel, with no parameters of its own).',
        `Counted on real tensile heads for ${channels} channels and ${classes} classes: Flatten + FC needs ${count(small!.flatten)} parameters at 4×4, ${count(middle!.flatten)} at 7×7 and ${count(large!.flatten)} at 14×14, growing with the area of the map (${channels}·H·W·${classes} + ${classes}). GAP + FC needs ${count(small!.gap)} at every size (${channels}·${classes} + ${classes}): ${Math.round(small!.flatten / small!.gap)}× fewer at 4×4 and ${Math.round(large!.flatten / large!.gap)}× fewer at 14×14. This matches the note.`,
        `Trained the same way on MNIST digits 0–5 (the seed CNN with ${channels}+${channels} channels, whose last maps are 7×7, so its flatten head is exactly the 7×7 case: whole models of ${count(parameters.flatten)} and ${count(parameters.gap)} parameters; Adam 3e-3, ${epochs} epoch${epochs > 1 ? 's' : ''} on ${train.count} images, ${test.count} test images), each head with ${seedText(seeds)}, the same seeds for both: ${verdict}. GAP + FC has ${saved} fewer parameters.`,
        `Shifting every test digit 4 pixels right and down costs Flatten + FC ${flatDrop.toFixed(1)} points and GAP + FC ${gapDrop.toFixed(1)} points on average. ${robustness}.`,
      ],
      tables: [
        {
          title: `Trainable parameters of the head (${channels} channels, ${classes} classes)`,
          columns: ['feature maps', 'Flatten + FC', 'GAP + FC', 'ratio'],
          rows: counts.map((c) => [
            `${c.size}×${c.size}`,
            count(c.flatten),
            count(c.gap),
            `${(c.flatten / c.gap).toFixed(0)}×`,
          ]),
        },
        {
          title: `Seed CNN (${channels}+${channels} channels) on MNIST digits 0–5: test accuracy, % (mean ± 95% t interval over ${seedText(seeds)})`,
          columns: [
            'head',
            'parameters (whole model)',
            'test accuracy',
            'shifted 2 px',
            'shifted 4 px',
            'training time (mean)',
          ],
          rows: headNames.map((head) => [
            label(head),
            count(parameters[head]),
            ...shifted[head].map((values) => intervalCell(values)),
            `${mean(seconds[head]).toFixed(1)} s`,
          ]),
        },
      ],
      figures: [
        { name: 'head-parameters', svg: parameterFigure },
        { name: 'head-accuracy', svg: accuracyFigure },
      ],
      numbers: {
        parameters: counts.map((c) => ({ size: c.size, flatten: c.flatten, gap: c.gap })),
        seeds,
        accuracy: { flatten: shifted.flatten[0]!, gap: shifted.gap[0]! },
        shiftedAccuracy: { shifts, flatten: shifted.flatten, gap: shifted.gap },
        modelParameters: { flatten: parameters.flatten, gap: parameters.gap },
        trainImages: train.count,
        testImages: test.count,
        epochs,
      },
    };
  },
};
