/**
 * Batch norm + ReLU as one op (Sequential's fusion) against the two ops run separately, on every
 * backend that loads. The fused kernels themselves, against the reference and against their unfused
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
