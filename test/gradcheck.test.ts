/** Finite-difference gradient checks (float64, reference backend) for every op, layer and loss. */
import { describe, it } from 'node:test';
import * as tensile from '../src/index.js';
import { Random, Tensor } from '../src/index.js';
import { gradcheck, randomInput } from './helpers/gradcheck.js';

const random = new Random(2024);
const input = (shape: number[], scale = 1) => randomInput(shape, random, scale);

/** Moves values away from kinks (|x| < margin), where finite differences straddle the corner. */
function awayFromZero(t: Tensor, margin = 0.05): Tensor {
  for (let i = 0; i < t.size; i++)
    if (Math.abs(t.data[i]!) < margin) t.data[i] = margin * (t.data[i]! < 0 ? -2 : 2);
  return t;
}

describe('gradient checks: elementwise and shape ops', () => {
  it('add, sub, mul, div with broadcasting', () => {
    gradcheck('add', ([a, b]) => tensile.add(a!, b!), [input([3, 4]), input([4])]);
    gradcheck('sub', ([a, b]) => tensile.sub(a!, b!), [input([2, 1, 3]), input([4, 1])]);
    gradcheck('mul', ([a, b]) => tensile.mul(a!, b!), [input([3, 4]), input([3, 1])]);
    const denominator = input([1, 4]);
    for (let i = 0; i < denominator.size; i++) denominator.data[i] = 1 + Math.abs(denominator.data[i]!);
    gradcheck('div', ([a, b]) => tensile.div(a!, b!), [input([3, 4]), denominator]);
  });
  it('maximum and minimum (no ties)', () => {
    gradcheck('maximum', ([a, b]) => tensile.maximum(a!, b!), [input([3, 4]), input([3, 4])]);
    gradcheck('minimum', ([a, b]) => tensile.minimum(a!, b!), [input([3, 4]), input([4])]);
  });
  it('scalar ops and pow', () => {
    gradcheck('scaleShift', ([a]) => tensile.scaleShift(a!, -1.5, 0.3), [input([5])]);
    const positive = input([6]);
    for (let i = 0; i < positive.size; i++) positive.data[i] = 0.5 + Math.abs(positive.data[i]!);
    gradcheck('pow', ([a]) => tensile.pow(a!, 2.5), [positive]);
  });
  for (const kind of [
    'relu',
    'leaky_relu',
    'elu',
    'gelu',
    'sigmoid',
    'tanh',
    'exp',
    'abs',
    'neg',
    'square',
  ] as const) {
    it(`activation ${kind}`, () => {
      gradcheck(kind, ([a]) => tensile.activation(kind, a!), [awayFromZero(input([4, 5]))]);
    });
  }
  it('log and sqrt on positive inputs', () => {
    const positive = input([7]);
    for (let i = 0; i < positive.size; i++) positive.data[i] = 0.3 + Math.abs(positive.data[i]!);
    gradcheck('log', ([a]) => tensile.log(a!), [positive]);
    gradcheck('sqrt', ([a]) => tensile.sqrt(a!), [positive]);
  });
  it('softmax and log-softmax', () => {
    gradcheck('softmax', ([a]) => tensile.softmax(a!), [input([3, 5])]);
    gradcheck('logSoftmax', ([a]) => tensile.logSoftmax(a!), [input([3, 5])]);
  });
  it('reshape, flatten, permute, transpose, concat', () => {
    gradcheck('reshape', ([a]) => tensile.reshape(a!, [6, -1]), [input([2, 3, 4])]);
    gradcheck('flatten', ([a]) => tensile.flatten(a!), [input([2, 3, 2, 2])]);
    gradcheck('permute', ([a]) => tensile.permute(a!, [2, 0, 1]), [input([2, 3, 4])]);
    gradcheck('transpose', ([a]) => tensile.transpose(a!), [input([3, 5])]);
    gradcheck('concat', ([a, b]) => tensile.concat([a!, b!], 1), [input([2, 3]), input([2, 4])]);
  });
  it('sum, mean, max over axes', () => {
    gradcheck('sum', ([a]) => tensile.sum(a!, { axes: [0, 2] }), [input([2, 3, 4])]);
    gradcheck('sum all', ([a]) => tensile.sum(a!), [input([2, 3])]);
    gradcheck('mean', ([a]) => tensile.mean(a!, { axes: -1, keepDims: true }), [input([3, 4])]);
    gradcheck('max', ([a]) => tensile.max(a!, { axes: 1 }), [input([3, 4])]);
  });
  it('matmul and linear', () => {
    gradcheck('matmul', ([a, b]) => tensile.matmul(a!, b!), [input([3, 4]), input([4, 5])]);
    gradcheck('linear', ([x, w, b]) => tensile.linear(x!, w!, b!), [
      input([3, 4]),
      input([5, 4]),
      input([5]),
    ]);
    gradcheck('linear without bias', ([x, w]) => tensile.linear(x!, w!, null), [
      input([2, 3]),
      input([4, 3]),
    ]);
  });
});

describe('gradient checks: convolution, pooling, normalization, losses', () => {
  const convolutions: [string, tensile.Conv2dOptions, number[]][] = [
    ['3×3 pad 1', { padding: 1 }, [4, 3, 3, 3]],
    ['3×3 stride 2', { stride: 2, padding: 1 }, [3, 3, 3, 3]],
    ['5×5 same', { padding: 'same' }, [2, 3, 5, 5]],
    ['dilation 2', { dilation: 2, padding: 2 }, [2, 3, 3, 3]],
    ['2×3 non-square stride [2,1]', { stride: [2, 1], padding: [1, 0] }, [2, 3, 2, 3]],
    ['1×1', {}, [4, 3, 1, 1]],
    ['even kernel same', { padding: 'same' }, [2, 3, 2, 2]],
  ];
  for (const [name, options, weightShape] of convolutions) {
    it(`conv2d ${name}`, () => {
      gradcheck(`conv2d ${name}`, ([x, w, b]) => tensile.conv2d(x!, w!, b!, options), [
        input([2, 3, 6, 7]),
        input(weightShape, 0.5),
        input([weightShape[0]!], 0.1),
      ]);
    });
  }
  it('max pooling (distinct values) and average pooling with and without count_include_pad', () => {
    const x = input([2, 2, 5, 6]);
    gradcheck('maxPool2d', ([a]) => tensile.maxPool2d(a!, { kernelSize: 2 }), [x]);
    gradcheck('maxPool2d 3 s2 p1', ([a]) => tensile.maxPool2d(a!, { kernelSize: 3, stride: 2, padding: 1 }), [
      x,
    ]);
    gradcheck('avgPool2d', ([a]) => tensile.avgPool2d(a!, { kernelSize: 3, stride: 2, padding: 1 }), [x]);
    gradcheck(
      'avgPool2d exclude pad',
      ([a]) => tensile.avgPool2d(a!, { kernelSize: 3, stride: 1, padding: 1, countIncludePad: false }),
      [x],
    );
    gradcheck('avgPool2d ceil', ([a]) => tensile.avgPool2d(a!, { kernelSize: 2, ceilMode: true }), [x]);
    gradcheck('globalAvgPool2d', ([a]) => tensile.globalAvgPool2d(a!), [x]);
    gradcheck('globalMaxPool2d', ([a]) => tensile.globalMaxPool2d(a!), [x]);
  });
  it('batch norm in training and inference, 2-D and 4-D', () => {
    for (const shape of [
      [6, 3],
      [3, 3, 4, 2],
    ]) {
      const stats = () =>
        [
          new Tensor(new Float64Array([0.1, -0.2, 0.3]), [3]),
          new Tensor(new Float64Array([0.8, 1.2, 0.5]), [3]),
        ] as const;
      for (const training of [true, false]) {
        gradcheck(
          `batchNorm ${shape.length}-D training=${training}`,
          ([x, gamma, beta]) => {
            const [mean, variance] = stats();
            return tensile.batchNorm(x!, mean, variance, gamma!, beta!, { training });
          },
          [input(shape, 2), input([3]), input([3])],
        );
      }
    }
  });
  it('cross-entropy with and without label smoothing, and MSE', () => {
    const targets = new Int32Array([0, 3, 1, 2]);
    gradcheck('crossEntropy', ([a]) => tensile.crossEntropy(a!, targets), [input([4, 5], 2)]);
    gradcheck('crossEntropy ls 0.1', ([a]) => tensile.crossEntropy(a!, targets, { labelSmoothing: 0.1 }), [
      input([4, 5], 2),
    ]);
    gradcheck('mseLoss', ([a, b]) => tensile.mseLoss(a!, b!), [input([3, 4]), input([3, 4])]);
  });
  it('cross-entropy with class weights, label smoothing, ignoreIndex and probability targets', () => {
    const targets = new Int32Array([0, 3, -100, 2, 4, 3]);
    const classWeights = [0.5, 2, 1, 0.25, 1.5];
    for (const reduction of ['mean', 'sum', 'none'] as const) {
      gradcheck(
        `crossEntropy weighted ls 0.2 ignore ${reduction}`,
        ([a]) => tensile.crossEntropy(a!, targets, { classWeights, labelSmoothing: 0.2, reduction }),
        [input([6, 5], 2)],
      );
    }
    const probabilities = tensile.softmax(randomInput([4, 5], random, 1, false));
    gradcheck(
      'crossEntropy probability targets',
      ([a]) => tensile.crossEntropy(a!, probabilities, { classWeights: classWeights, labelSmoothing: 0.1 }),
      [input([4, 5], 2)],
    );
  });
  it('binary cross-entropy with logits, with and without posWeight', () => {
    const target = new Tensor(
      Float64Array.from({ length: 12 }, (_, i) => (i % 3 === 0 ? 1 : 0)),
      [3, 4],
    );
    const posWeight = new Tensor(new Float64Array([0.5, 1, 2, 4]), [4]);
    for (const reduction of ['mean', 'sum', 'none'] as const) {
      gradcheck(
        `binaryCrossEntropyWithLogits ${reduction}`,
        ([a]) => tensile.binaryCrossEntropyWithLogits(a!, target, { reduction }),
        [input([3, 4], 3)],
      );
      gradcheck(
        `binaryCrossEntropyWithLogits posWeight ${reduction}`,
        ([a]) => tensile.binaryCrossEntropyWithLogits(a!, target, { posWeight, reduction }),
        [input([3, 4], 3)],
      );
    }
  });
  it('L1, Huber and smooth L1 (differences away from their kinks), and MSE without reduction', () => {
    const target = randomInput([3, 4], random, 1, false);
    /** An output whose differences from target keep 0.05 away from 0 and from each kink. */
    const outputNear = (kinks: number[]): Tensor => {
      const output = input([3, 4], 1.5);
      for (let i = 0; i < output.size; i++) {
        for (const kink of [0, ...kinks]) {
          const difference = output.data[i]! - target.data[i]!;
          if (Math.abs(Math.abs(difference) - kink) < 0.05) output.data[i] = target.data[i]! + kink + 0.1;
        }
      }
      return output;
    };
    for (const reduction of ['mean', 'sum', 'none'] as const) {
      gradcheck(`l1Loss ${reduction}`, ([a, b]) => tensile.l1Loss(a!, b!, { reduction }), [
        outputNear([]),
        input([3, 4]),
      ]);
      gradcheck(
        `huberLoss δ 0.7 ${reduction}`,
        ([a]) => tensile.huberLoss(a!, target, { delta: 0.7, reduction }),
        [outputNear([0.7])],
      );
      gradcheck(
        `smoothL1Loss β 0.4 ${reduction}`,
        ([a]) => tensile.smoothL1Loss(a!, target, { beta: 0.4, reduction }),
        [outputNear([0.4])],
      );
      gradcheck(`mseLoss ${reduction}`, ([a, b]) => tensile.mseLoss(a!, b!, { reduction }), [
        input([3, 4]),
        input([3, 4]),
      ]);
    }
    gradcheck('smoothL1Loss β 0', ([a]) => tensile.smoothL1Loss(a!, target, { beta: 0 }), [outputNear([])]);
  });
  it('dropout with a fixed mask', () => {
    gradcheck('dropout', ([a]) => tensile.dropout(a!, 0.3, true, new Random(5)), [input([4, 6])]);
  });
});

describe('gradient checks: layers and a residual model', () => {
  it('a small residual CNN end to end', () => {
    tensile.manualSeed(3);
    const model = new tensile.Sequential(
      new tensile.Conv2d(2, 3, 3, { padding: 1 }),
      new tensile.BatchNorm(3),
      new tensile.Residual(
        new tensile.Sequential(new tensile.Conv2d(3, 3, 3, { padding: 1 }), new tensile.Tanh()),
      ),
      new tensile.AvgPool2d(2),
      new tensile.Flatten(),
      new tensile.Dense(12, 4, { activation: 'gelu' }),
    );
    // Parameters become float64 copies so the whole model runs in float64.
    for (const parameter of model.parameters()) {
      const wide = Float64Array.from(parameter.data);
      (parameter as { data: tensile.Data }).data = wide;
    }
    for (const [, buffer] of model.namedBuffers())
      (buffer as { data: tensile.Data }).data = Float64Array.from(buffer.data);
    const parameters = model.parameters();
    gradcheck('residual CNN', ([x]) => model.forward(x!), [input([3, 2, 4, 4]), ...parameters]);
  });
});

describe('the gradient checker itself', () => {
  it('rejects a wrong backward rule', async () => {
    const { record } = await import('../src/autograd/graph.js');
    const assert = (await import('node:assert/strict')).default;
    // y = x², with a deliberately wrong derivative x (instead of 2x).
    const wrongSquare = (x: Tensor) =>
      record(
        new Tensor(
          x.data.map((v) => v * v),
          x.shape,
        ),
        'wrongSquare',
        [x],
        (g) => [g.map((v, i) => v * x.data[i]!)],
      );
    assert.throws(() => gradcheck('wrongSquare', ([a]) => wrongSquare(a!), [input([4])]), /analytic/);
  });
});
