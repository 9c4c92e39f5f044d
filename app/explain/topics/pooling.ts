/**
 * DL0009 Pooling: max against average pooling, on a 4×4 example drawn with its numbers, on a real
 * MNIST digit, and in the seed CNN trained both ways over several seeds (with a shifted test set for
 * the invariance that max pooling is credited with); verdicts come from paired t-tests over the seeds.
 */
import {
  avgPool2d,
  AvgPool2d,
  BatchNorm,
  Conv2d,
  Dense,
  evaluate,
  Flatten,
  GlobalAvgPool2d,
  gridFigure,
  lineChart,
  loadMnist,
  manualSeed,
  MaxPool2d,
  maxPool2d,
  ReLU,
  Sequential,
  Tensor,
} from '../../../src/index.js';
import {
  armVerdict,
  differenceVerdict,
  intervalCell,
  mnistSplit,
  percent,
  recordedTraining,
  seedList,
  seedText,
  shiftImages,
} from '../common.js';
import { mean, tInterval } from '../statistics.js';
import type { Topic } from '../types.js';

/** The note-style example: a 4×4 map whose windows each hold one large value among small ones. */
export const poolingExample = [1, 3, 2, 4, 5, 6, 1, 2, 7, 2, 3, 0, 1, 4, 9, 8];

/** 2×2, stride 2 max and average pooling of a rows×columns map. */
export function poolBothWays(
  values: readonly number[],
  rows: number,
  columns: number,
): { max: number[]; average: number[] } {
  const x = new Tensor(Float32Array.from(values), [1, 1, rows, columns]);
  return {
    max: Array.from(maxPool2d(x, { kernelSize: 2 }).data),
    average: Array.from(avgPool2d(x, { kernelSize: 2 }).data),
  };
}

/** Nearest-neighbour enlargement, so pooled maps are drawn at the input's size. */
function enlarge(values: readonly number[], size: number, factor: number): number[] {
  const out: number[] = [];
  for (let y = 0; y < size * factor; y++) {
    for (let x = 0; x < size * factor; x++)
      out.push(values[Math.floor(y / factor) * size + Math.floor(x / factor)]!);
  }
  return out;
}

/** The seed CNN's layout with the given pooling in both pooling positions. */
function cnnWithPooling(kind: 'max' | 'average', channels: readonly [number, number]): Sequential {
  const layers = [];
  let inChannels = 1;
  for (const width of channels) {
    for (let repeat = 0; repeat < 2; repeat++) {
      layers.push(
        new Conv2d(inChannels, width, 3, { padding: 1, bias: false }),
        new BatchNorm(width),
        new ReLU(),
      );
      inChannels = width;
    }
    layers.push(kind === 'max' ? new MaxPool2d(2) : new AvgPool2d(2));
  }
  layers.push(new GlobalAvgPool2d(), new Flatten(), new Dense(channels[1], 10));
  return new Sequential(...layers);
}

export const poolingTopic: Topic = {
  id: 'DL0009',
  aliases: ['pooling', 'pool', 'maxpool'],
  title: 'Pooling: max against average',
  version: 2,
  async run(context) {
    const example = poolBothWays(poolingExample, 4, 4);
    const exampleFigure = gridFigure(
      '2×2 pooling, stride 2, of a 4×4 map (computed by tensile)',
      [
        { title: 'input 4×4', values: poolingExample, rows: 4, columns: 4 },
        { title: 'max pooling 2×2', values: example.max, rows: 2, columns: 2 },
        { title: 'average pooling 2×2', values: example.average, rows: 2, columns: 2 },
      ],
      { cell: 56, decimals: 2 },
    );

    const mnist = loadMnist();
    const index = Array.from(mnist.labels).indexOf(7);
    const digit = Array.from(mnist.images.subarray(index * 784, (index + 1) * 784));
    const once = poolBothWays(digit, 28, 28);
    const twiceMax = poolBothWays(once.max, 14, 14).max;
    const twiceAverage = poolBothWays(once.average, 14, 14).average;
    const digitFigure = gridFigure(
      'An MNIST 7 pooled 2×2 once (14×14) and twice (7×7), drawn at the input size',
      [
        { title: 'input 28×28', values: digit, rows: 28, columns: 28 },
        { title: 'max 14×14', values: enlarge(once.max, 14, 2), rows: 28, columns: 28 },
        { title: 'average 14×14', values: enlarge(once.average, 14, 2), rows: 28, columns: 28 },
        { title: 'max 7×7', values: enlarge(twiceMax, 7, 4), rows: 28, columns: 28 },
        { title: 'average 7×7', values: enlarge(twiceAverage, 7, 4), rows: 28, columns: 28 },
      ],
      { cell: 6, showNumbers: false },
    );
    const ink = (values: readonly number[]) => values.filter((v) => v > 0.5).length / values.length;
    const peak = (values: readonly number[]) => Math.max(...values);

    const trainCount = context.quick ? 200 : 6000;
    const testCount = context.quick ? 200 : 1000;
    const epochs = context.quick ? 1 : 4;
    const channels = [8, 16] as const;
    const seeds = seedList(context);
    context.log(
      `DL0009: training the seed CNN (8, 16 channels) with max and with average pooling on ${trainCount} digits, ${epochs} epochs, ${seedText(seeds)}`,
    );
    const { train, test } = mnistSplit(trainCount, testCount);
    const shifts = [0, 1, 2];
    const shiftedTests = shifts.map((pixels) => (pixels === 0 ? test : shiftImages(test, pixels)));
    // accuracy[kind][shift][seed]: both kinds see the same data, initial-weight stream and order per seed.
    const accuracy = { max: shifts.map(() => [] as number[]), average: shifts.map(() => [] as number[]) };
    for (const seed of seeds) {
      for (const kind of ['max', 'average'] as const) {
        manualSeed(seed);
        const model = cnnWithPooling(kind, channels);
        const result = await recordedTraining(context, {
          name: `${kind} pooling, seed ${seed}`,
          model,
          train,
          test,
          epochs,
          lr: 3e-3,
          seed,
          validate: false,
          config: { pooling: kind, channels: [...channels], lr: 3e-3, seed },
        });
        shifts.forEach((pixels, i) =>
          accuracy[kind][i]!.push(
            pixels === 0 ? result.testAccuracy : evaluate(model, shiftedTests[i]!).accuracy,
          ),
        );
      }
    }
    const kinds = ['max', 'average'] as const;
    const accuracyFigure = lineChart({
      title: `Seed CNN with max or average pooling: MNIST test accuracy on shifted digits (mean and 95% interval of ${seeds.length} seeds)`,
      width: 940,
      xLabel: 'test digits shifted right and down by (pixels)',
      yLabel: 'test accuracy (%)',
      series: kinds.map((kind) => ({
        name: `${kind} pooling`,
        x: shifts,
        y: accuracy[kind].map((values) => mean(values) * 100),
        error: accuracy[kind].map((values) => {
          const halfWidth = tInterval(values).halfWidth * 100;
          return Number.isFinite(halfWidth) ? halfWidth : 0;
        }),
      })),
    });

    const maxArm = { name: 'max pooling', values: accuracy.max[0]! };
    const averageArm = { name: 'average pooling', values: accuracy.average[0]! };
    const trainingVerdict = armVerdict(context, maxArm, averageArm, 10);
    const drop = (kind: 'max' | 'average') => accuracy[kind][0]!.map((a, i) => a - accuracy[kind][2]![i]!);
    const maxDrop = mean(drop('max')) * 100;
    const averageDrop = mean(drop('average')) * 100;
    const shiftVerdict = differenceVerdict(
      context,
      { name: 'max pooling loss', values: drop('max') },
      { name: 'average pooling loss', values: drop('average') },
      {
        firstHigher:
          'Max pooling lost more to the shift, so this test does not show the extra invariance often credited to it',
        secondHigher:
          'Max pooling lost less to the shift, consistent with the local translation invariance it is credited with',
        none: 'No difference in what the shift cost was found at this budget, so here neither pooling made the network measurably more tolerant of position',
      },
    );

    return {
      title: poolingTopic.title,
      question: 'Compare max pooling and average pooling, and when would you prefer one over the other?',
      text: [
        `Both slide a window over each feature map and replace it by one number: max pooling by the largest value, average pooling by the mean. With 2×2 windows and stride 2 the map shrinks to a quarter. On the 4×4 example, tensile's maxPool2d gives [${example.max.join(', ')}] and avgPool2d gives [${example.average.join(', ')}]: max keeps each window's peak (the 9 survives whole), average mixes the peak with its neighbours (the 9 becomes ${example.average[3]}).`,
        `On a real MNIST 7, max pooling keeps the stroke bright and thick: the brightest value stays ${peak(once.max).toFixed(2)} and ${percent(ink(once.max))} of the 14×14 map is ink (value above 0.5), against ${percent(ink(digit))} of the input. Average pooling keeps the overall brightness exactly (mean ${mean(once.average).toFixed(3)}, the input's ${mean(digit).toFixed(3)}) but blurs the edges: its peak falls to ${peak(once.average).toFixed(2)} and only ${percent(ink(once.average))} is ink. After a second pooling (7×7) the difference grows: ${percent(ink(twiceMax))} ink with max, ${percent(ink(twiceAverage))} with average.`,
        `Trained the same way (seed CNN with ${channels[0]} and ${channels[1]} channels, Adam 3e-3, ${epochs} epoch${epochs > 1 ? 's' : ''} on ${train.count} digits, ${test.count} test digits), each pooling with ${seedText(seeds)}, the same seeds for both (a seed fixes the initial-weight stream and the data order): ${trainingVerdict}.`,
        `Shifted by 2 pixels, the max-pooling network lost ${maxDrop.toFixed(1)} points on average and the average-pooling one ${averageDrop.toFixed(1)}. ${shiftVerdict}.`,
        'When to prefer which: max pooling inside a CNN, where the question is whether a feature (an edge, a stroke) is present somewhere in the window; average pooling when every part of the region should count, as in global average pooling before the classifier (DL0011), for textures, or when downsampling should smooth rather than pick.',
      ],
      tables: [
        {
          title: '2×2 pooling of the 4×4 example (windows in reading order)',
          columns: ['window', 'values', 'max', 'average'],
          rows: [0, 1, 2, 3].map((w) => {
            const top = Math.floor(w / 2) * 2;
            const left = (w % 2) * 2;
            const values = [0, 1, 4, 5].map((o) => poolingExample[top * 4 + left + o]!);
            return [`${w + 1}`, values.join(' '), String(example.max[w]), String(example.average[w])];
          }),
        },
        {
          title: `Seed CNN on MNIST: test accuracy by pooling, % (mean ± 95% t interval over ${seedText(seeds)})`,
          columns: ['pooling', 'test accuracy', 'shifted 1 px', 'shifted 2 px'],
          rows: kinds.map((kind) => [kind, ...accuracy[kind].map((values) => intervalCell(values))]),
        },
      ],
      figures: [
        { name: 'pooling-4x4', svg: exampleFigure },
        { name: 'pooling-digit', svg: digitFigure },
        { name: 'pooling-accuracy', svg: accuracyFigure },
      ],
      numbers: {
        example: { input: poolingExample, max: example.max, average: example.average },
        digit: {
          inputInk: ink(digit),
          maxInk: ink(once.max),
          averageInk: ink(once.average),
          inputMean: mean(digit),
          maxMean: mean(once.max),
          averageMean: mean(once.average),
        },
        seeds,
        trainImages: train.count,
        testImages: test.count,
        epochs,
        accuracy: { max: accuracy.max[0]!, average: accuracy.average[0]! },
        shiftedAccuracy: { shifts, max: accuracy.max, average: accuracy.average },
      },
    };
  },
};
