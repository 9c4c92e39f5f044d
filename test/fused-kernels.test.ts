/**
 * Batch norm + ReLU as one op (Sequential's fusion, the fused Backend kernels) against the two ops
 * run separately, on every backend that loads; and the native kernels that replaced reference
 * fallbacks (reduceSum, scaleShift, channelSum of a [batch, channels] matrix) against the reference.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  availableBackends,
  backendByName,
  BatchNorm,
  Conv2d,
  crossEntropy,
  Dense,
  Flatten,
  GlobalAvgPool2d,
  LeakyReLU,
  manualSeed,
  randn,
  ReLU,
  Sequential,
  withBackend,
} from '../src/index.js';
import { loadNativeBackend } from '../src/backend/native/index.js';
import { referenceBackend } from '../src/backend/reference/index.js';
import type { Data } from '../src/backend/types.js';

/** float32 kernels against the reference's float64 accumulation. */
const tolerance = { absolute: 1e-4, relative: 1e-4 };

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, label: string): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  for (let i = 0; i < actual.length; i++) {
    const error = Math.abs(actual[i]! - expected[i]!);
    if (!(error <= tolerance.absolute + tolerance.relative * Math.abs(expected[i]!))) {
      assert.fail(`${label}: element ${i} is ${actual[i]}, expected ${expected[i]}`);
    }
  }
}

function assertSameBits(actual: ArrayLike<number>, expected: ArrayLike<number>, label: string): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  for (let i = 0; i < actual.length; i++) {
    if (!Object.is(actual[i], expected[i])) {
      assert.fail(`${label}: element ${i} is ${actual[i]}, unfused gives ${expected[i]}`);
    }
  }
}

/** A small seed-CNN-like model, with the same weights for every call. */
function model(): Sequential {
  manualSeed(3);
  return new Sequential(
    new Conv2d(2, 4, 3, { padding: 1, bias: false }),
    new BatchNorm(4),
    new ReLU(),
    new Conv2d(4, 4, 3, { padding: 1 }),
    new BatchNorm(4),
    new ReLU(),
    new GlobalAvgPool2d(),
    new Flatten(),
    new Dense(4, 3),
  );
}

/** Output and parameter gradients of one training step (or the output only, in eval mode). */
function run(fuse: boolean, training: boolean): Data[] {
  const network = model();
  network.fuseBatchNormRelu = fuse;
  if (!training) network.eval();
  manualSeed(7);
  const input = randn([5, 2, 6, 6]);
  const output = network.forward(input);
  if (!training) return [output.data];
  crossEntropy(output, [0, 1, 2, 1, 0]).backward();
  return [output.data, ...network.parameters().map((parameter) => parameter.grad!.data)];
}

test('BatchNorm + ReLU run fused give the unfused bits on every backend, training and inference', () => {
  for (const name of availableBackends()) {
    withBackend(backendByName(name), () => {
      for (const training of [true, false]) {
        const fused = run(true, training);
        const unfused = run(false, training);
        fused.forEach((values, i) =>
          assertSameBits(values, unfused[i]!, `${name}, ${training ? 'training' : 'inference'}, array ${i}`),
        );
      }
    });
  }
});

test('a Sequential fuses only a BatchNorm directly followed by a ReLU layer', () => {
  manualSeed(1);
  const x = randn([3, 2, 2, 2]);
  /** The op that produced the network's output, by its graph-node name. */
  const lastOp = (network: Sequential) => network.forward(x).gradFn?.name;
  assert.equal(lastOp(new Sequential(new BatchNorm(2), new ReLU())), 'BatchNorm+ReLU');
  assert.equal(lastOp(new Sequential(new BatchNorm(2), new LeakyReLU())), 'leaky_relu');
  assert.equal(lastOp(new Sequential(new ReLU(), new BatchNorm(2))), 'BatchNorm');
  const unfused = new Sequential(new BatchNorm(2), new ReLU());
  unfused.fuseBatchNormRelu = false;
  assert.equal(lastOp(unfused), 'relu');
});

/** Deterministic values in [-1, 1). */
function values(length: number, seed: number): Float32Array {
  let state = seed >>> 0;
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state / 2147483648 - 1;
  }
  return out;
}

test('native fused batch norm + ReLU kernels match the reference', (t) => {
  const native = loadNativeBackend();
  if (native === null) {
    t.skip('native addon not built');
    return;
  }
  for (const g of [
    { batch: 3, channels: 5, spatial: 37 },
    { batch: 8, channels: 32, spatial: 196 },
    { batch: 9, channels: 4, spatial: 1 },
  ]) {
    const size = g.batch * g.channels * g.spatial;
    const x = values(size, 1);
    const gamma = values(g.channels, 2);
    const beta = values(g.channels, 3);
    const gradOut = values(size, 4);
    const results = [native, referenceBackend].map((backend) => {
      const out = new Float32Array(size);
      const mean = new Float32Array(g.channels);
      const invStd = new Float32Array(g.channels);
      backend.batchNormReluTrainForward(x, gamma, beta, out, mean, invStd, 1e-5, g);
      const gradX = new Float32Array(size);
      const gradGamma = new Float32Array(g.channels);
      const gradBeta = new Float32Array(g.channels);
      backend.batchNormReluTrainBackward(
        x,
        out,
        gradOut,
        gamma,
        beta,
        mean,
        invStd,
        gradX,
        gradGamma,
        gradBeta,
        g,
      );
      const affine = new Float32Array(size);
      backend.channelAffineRelu(x, gamma, beta, affine, g);
      return [out, mean, invStd, gradX, gradGamma, gradBeta, affine];
    });
    const names = ['out', 'mean', 'invStd', 'gradX', 'gradGamma', 'gradBeta', 'channelAffineRelu'];
    names.forEach((name, i) =>
      assertClose(results[0]![i]!, results[1]![i]!, `${name} for ${JSON.stringify(g)}`),
    );
  }
});

test('native reduceSum, scaleShift and channelSum match the reference', (t) => {
  const native = loadNativeBackend();
  if (native === null) {
    t.skip('native addon not built');
    return;
  }
  const x = values(4 * 6 * 5, 5);
  const cases: [readonly number[], readonly number[]][] = [
    [
      [4, 6, 5],
      [4, 6, 1],
    ], // trailing axis (global average pooling)
    [
      [4, 6, 5],
      [1, 6, 1],
    ], // middle block
    [
      [4, 6, 5],
      [1, 1, 5],
    ], // leading axes
    [
      [4, 6, 5],
      [1, 1, 1],
    ], // everything
    [
      [4, 6, 5],
      [4, 1, 5],
    ], // a reduced middle axis: the reference computes it
    [[120], [120]], // nothing reduced
  ];
  for (const [xShape, outShape] of cases) {
    const size = outShape.reduce((p, d) => p * d, 1);
    const actual = new Float32Array(size);
    const expected = new Float32Array(size);
    native.reduceSum(x, xShape, actual, outShape);
    referenceBackend.reduceSum(x, xShape, expected, outShape);
    assertClose(actual, expected, `reduceSum ${xShape} → ${outShape}`);
  }
  const large = values(70_001, 6);
  const scaled = new Float32Array(large.length);
  const expectedScaled = new Float32Array(large.length);
  native.scaleShift(large, 1 / 49, 0.25, scaled);
  referenceBackend.scaleShift(large, 1 / 49, 0.25, expectedScaled);
  assertSameBits(scaled, expectedScaled, 'scaleShift');
  for (const g of [
    { batch: 128, channels: 256, spatial: 1 },
    { batch: 3, channels: 1000, spatial: 1 },
  ]) {
    const matrix = values(g.batch * g.channels, 7);
    const sums = new Float32Array(g.channels);
    const expectedSums = new Float32Array(g.channels);
    native.channelSum(matrix, sums, g);
    referenceBackend.channelSum(matrix, expectedSums, g);
    // Both add each column in batch order in float64.
    assertSameBits(sums, expectedSums, `channelSum ${JSON.stringify(g)}`);
  }
});
