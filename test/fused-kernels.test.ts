/**
 * Batch norm + ReLU (and + 2×2 max pooling, in training) as one op (Sequential's fusion) against the
 * ops run separately, on every backend that loads. The fused kernels themselves, against the reference and against their unfused
 * composition on each backend, are in test/conformance/.
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
  MaxPool2d,
  randn,
  ReLU,
  Sequential,
  withBackend,
} from '../src/index.js';
import type { Data } from '../src/backend/types.js';
import { assertSameBits } from './conformance/tolerance.js';

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

/**
 * The seed CNN's shape in small: conv → batch norm → ReLU → 2×2 max pooling twice (the first conv
 * without bias, as the seed CNN's, the second with one, so that both rewrites meet the pooling), on
 * odd sizes whose last row and column the pooling drops.
 */
function pooledModel(): Sequential {
  manualSeed(4);
  return new Sequential(
    new Conv2d(2, 4, 3, { padding: 1, bias: false }),
    new BatchNorm(4),
    new ReLU(),
    new MaxPool2d(2),
    new Conv2d(4, 5, 3, { padding: 1 }),
    new BatchNorm(5),
    new ReLU(),
    new MaxPool2d(2),
    new Flatten(),
    new Dense(5 * 2 * 2, 3),
  );
}

/**
 * Output, parameter gradients and running statistics after one training step (or the output only,
 * in eval mode).
 */
function run(fuse: boolean, training: boolean, build = model, shape = [5, 2, 6, 6]): Data[] {
  const network = build();
  network.fuseBatchNormRelu = fuse;
  if (!training) network.eval();
  manualSeed(7);
  const input = randn(shape);
  const output = network.forward(input);
  if (!training) return [output.data];
  crossEntropy(output, [0, 1, 2, 1, 0]).backward();
  const statistics = network
    .namedModules()
    .map(([, module]) => module)
    .filter((module): module is BatchNorm => module instanceof BatchNorm)
    .flatMap((batchNorm) => [batchNorm.runningMean.data, batchNorm.runningVar.data]);
  return [output.data, ...network.parameters().map((parameter) => parameter.grad!.data), ...statistics];
}

test('BatchNorm + ReLU run fused give the unfused bits on every backend, training and inference', () => {
  for (const name of availableBackends()) {
    withBackend(backendByName(name), () => {
      for (const training of [true, false]) {
        const fused = run(true, training);
        const unfused = run(false, training);
        fused.forEach((values, i) =>
          assertSameBits(
            values,
            unfused[i]!,
            `${name}, ${training ? 'training' : 'inference'}, array ${i}, fused against unfused`,
          ),
        );
      }
    });
  }
});

test('BatchNorm + ReLU + 2x2 MaxPool2d run fused give the unfused bits on every backend', () => {
  for (const name of availableBackends()) {
    withBackend(backendByName(name), () => {
      for (const training of [true, false]) {
        const fused = run(true, training, pooledModel, [5, 2, 9, 11]);
        const unfused = run(false, training, pooledModel, [5, 2, 9, 11]);
        fused.forEach((values, i) =>
          assertSameBits(
            values,
            unfused[i]!,
            `${name}, ${training ? 'training' : 'inference'}, array ${i}, pooled fused against unfused`,
          ),
        );
      }
    });
  }
});

test('training pools with the batch norm where the pooling is 2x2 with stride 2 and has no hooks', () => {
  manualSeed(2);
  const x = randn([3, 2, 4, 6]);
  const ops = (network: Sequential): string[] => {
    const names: string[] = [];
    for (let node = network.forward(x).gradFn; node !== null;) {
      names.push(node.name);
      node = node.inputs[0]?.gradFn ?? null;
    }
    return names;
  };
  assert.deepEqual(ops(new Sequential(new BatchNorm(2), new ReLU(), new MaxPool2d(2))), [
    'BatchNorm+ReLU+MaxPool2d',
  ]);
  assert.deepEqual(ops(new Sequential(new BatchNorm(2), new ReLU(), new MaxPool2d(3))), [
    'maxPool2d',
    'BatchNorm+ReLU',
  ]);
  assert.deepEqual(ops(new Sequential(new BatchNorm(2), new ReLU(), new MaxPool2d(2, { padding: 1 }))), [
    'maxPool2d',
    'BatchNorm+ReLU',
  ]);
  const hooked = new MaxPool2d(2);
  hooked.registerForwardHook(() => undefined);
  assert.deepEqual(ops(new Sequential(new BatchNorm(2), new ReLU(), hooked)), [
    'maxPool2d',
    'BatchNorm+ReLU',
  ]);
  // In eval mode the batch norm uses its running statistics: the pooling stays its own op.
  const evaluating = new Sequential(new BatchNorm(2), new ReLU(), new MaxPool2d(2));
  evaluating.eval();
  assert.deepEqual(ops(evaluating), ['maxPool2d', 'BatchNorm+ReLU']);
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
