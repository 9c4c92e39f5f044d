/**
 * DL0011 Fully connected layer: Flatten + FC against GAP + FC. Parameter counts come from real tensile
 * heads (summary() of each), the accuracy from training both heads of the seed CNN the same way on
 * six MNIST digits; a shifted test set checks the note's "spatial robustness" claim.
 */
import { manualSeed } from '../../nn/init.js';
import { Sequential } from '../../nn/layers/containers.js';
import { Dense } from '../../nn/layers/dense.js';
import { Flatten, GlobalAvgPool2d } from '../../nn/layers/pooling.js';
import { summary } from '../../nn/summary.js';
import { seedCnn } from '../../models/seed-cnn.js';
import { evaluate } from '../../train/fit.js';
import { count, mnistSplit, percent, recordedTraining, shiftImages, titledBarChart } from '../common.js';
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
  version: 1,
  async run(context) {
    const counts = sizes.map((size) => ({ size, ...headParameters(size) }));
    const [small, middle, large] = counts;

    const trainCount = context.quick ? 300 : 3600;
    const testCount = context.quick ? 300 : 1200;
    const epochs = context.quick ? 1 : 4;
    context.log(
      `DL0011: training the seed CNN (8+8 channels) with each head on ${trainCount} digits 0–5, ${epochs} epochs`,
    );
    const { train, test } = mnistSplit(trainCount, testCount, { classes: [0, 1, 2, 3, 4, 5] });
    const shifts = [0, 2, 4];
    const heads = [];
    for (const head of ['flatten', 'gap'] as const) {
      manualSeed(11);
      const model = seedCnn({ channels: [channels, channels], classes, head });
      const parameters = summary(model, [1, 28, 28]).trainableParameters;
      const training = await recordedTraining(context, {
        name: `${head === 'gap' ? 'GAP' : 'Flatten'} + FC head`,
        model,
        train,
        test,
        epochs,
        lr: 3e-3,
        config: { head, channels: [channels, channels], classes, lr: 3e-3 },
      });
      const shifted = shifts.map((pixels) =>
        pixels === 0 ? training.testAccuracy : evaluate(model, shiftImages(test, pixels)).accuracy,
      );
      heads.push({ head, parameters, accuracy: training.testAccuracy, shifted, seconds: training.seconds });
    }
    const [flat, gap] = heads as [(typeof heads)[0], (typeof heads)[0]];

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
    const accuracyFigure = titledBarChart({
      title: `MNIST digits 0–5: test accuracy of each head (${epochs} epoch${epochs > 1 ? 's' : ''}, ${train.count} images)`,
      yLabel: 'test accuracy (%)',
      categories: shifts.map((s) => (s === 0 ? 'test set as is' : `shifted ${s} px`)),
      groups: [
        { name: 'Flatten + FC', values: flat.shifted.map((a) => Number((a * 100).toFixed(1))) },
        { name: 'GAP + FC', values: gap.shifted.map((a) => Number((a * 100).toFixed(1))) },
      ],
    });

    const difference = (gap.accuracy - flat.accuracy) * 100;
    const verdict =
      Math.abs(difference) < 0.5
        ? `the two heads end within half a point of each other (${percent(flat.accuracy)} with Flatten + FC, ${percent(gap.accuracy)} with GAP + FC), so here the ${count(flat.parameters - gap.parameters)} extra parameters buy nothing`
        : difference > 0
          ? `GAP + FC is more accurate (${percent(gap.accuracy)} against ${percent(flat.accuracy)}) while using ${count(flat.parameters - gap.parameters)} fewer parameters`
          : `Flatten + FC is more accurate here (${percent(flat.accuracy)} against ${percent(gap.accuracy)}): with only ${channels} channels, averaging each map away also throws away where a stroke is, which the flatten head can still use. The parameter saving is real, but at this width it is not free`;
    const lastShift = shifts.length - 1;
    const flatDrop = (flat.shifted[0]! - flat.shifted[lastShift]!) * 100;
    const gapDrop = (gap.shifted[0]! - gap.shifted[lastShift]!) * 100;
    const robustness =
      gapDrop + 1 < flatDrop
        ? `This supports the note's claim of spatial robustness: GAP's answer does not depend on where in the map a feature fires, while each flatten weight is tied to one position.`
        : gapDrop > flatDrop + 1
          ? `This does not support the note's claim of spatial robustness here: the GAP head lost more. The convolutions and max-pools before the head are what decide how a shift moves the features, and with this little training neither head has learned to ignore position.`
          : `Both lost about the same, so this small test does not show GAP being more robust to position; the convolutions and pooling before the head shape that more than the head does.`;

    return {
      title: fcTopic.title,
      question: 'Can you explain what a fully connected layer is?',
      text: [
        'A fully connected (dense) layer multiplies its input vector by a weight matrix and adds a bias: every output sees every input, so a layer from n inputs to m outputs has n·m + m parameters. To put one on top of convolutional feature maps, the maps are either flattened (every value of every map becomes an input) or reduced first by global average pooling (GAP: each map becomes its mean, one number per channel, with no parameters of its own).',
        `Counted on real tensile heads for ${channels} channels and ${classes} classes: Flatten + FC needs ${count(small!.flatten)} parameters at 4×4, ${count(middle!.flatten)} at 7×7 and ${count(large!.flatten)} at 14×14, growing with the area of the map (${channels}·H·W·${classes} + ${classes}). GAP + FC needs ${count(small!.gap)} at every size (${channels}·${classes} + ${classes}): ${Math.round(small!.flatten / small!.gap)}× fewer at 4×4 and ${Math.round(large!.flatten / large!.gap)}× fewer at 14×14. This matches the note.`,
        `Trained the same way on MNIST digits 0–5 (the seed CNN with ${channels}+${channels} channels, whose last maps are 7×7, so its flatten head is exactly the 7×7 case: whole models of ${count(flat.parameters)} and ${count(gap.parameters)} parameters; Adam 3e-3, ${epochs} epoch${epochs > 1 ? 's' : ''} on ${train.count} images, ${test.count} test images), ${verdict}.`,
        `Shifting every test digit 4 pixels right and down costs Flatten + FC ${flatDrop.toFixed(1)} points and GAP + FC ${gapDrop.toFixed(1)} points. ${robustness}`,
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
          title: `Seed CNN (${channels}+${channels} channels) on MNIST digits 0–5: test accuracy`,
          columns: [
            'head',
            'parameters (whole model)',
            'test accuracy',
            'shifted 2 px',
            'shifted 4 px',
            'training time',
          ],
          rows: heads.map((h) => [
            h.head === 'gap' ? 'GAP + FC' : 'Flatten + FC',
            count(h.parameters),
            percent(h.accuracy),
            percent(h.shifted[1]!),
            percent(h.shifted[2]!),
            `${h.seconds.toFixed(0)} s`,
          ]),
        },
      ],
      figures: [
        { name: 'head-parameters', svg: parameterFigure },
        { name: 'head-accuracy', svg: accuracyFigure },
      ],
      numbers: {
        parameters: counts.map((c) => ({ size: c.size, flatten: c.flatten, gap: c.gap })),
        accuracy: { flatten: flat.accuracy, gap: gap.accuracy },
        shiftedAccuracy: { shifts, flatten: flat.shifted, gap: gap.shifted },
        modelParameters: { flatten: flat.parameters, gap: gap.parameters },
        trainImages: train.count,
        testImages: test.count,
        epochs,
      },
    };
  },
};
