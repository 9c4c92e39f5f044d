/**
 * The backward pass reuses the memory of dead gradients and of inner activations (src/tensor/memory.ts).
 * Training must give the same bits with and without reuse, and no array that user code can still
 * reach may be overwritten.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  Adam,
  BatchNorm,
  Conv2d,
  crossEntropy,
  Dense,
  Dropout,
  Flatten,
  GlobalAvgPool2d,
  manualSeed,
  MaxPool2d,
  mean,
  Module,
  mul,
  noGrad,
  randn,
  ReLU,
  Residual,
  resnet,
  seedCnn,
  Sequential,
  SGD,
  Tensor,
} from '../src/index.js';
import { memoryCounters, setRecycledByteFloor, setRecycling } from '../src/tensor/memory.js';

/** A user layer that keeps its input, as a feature probe would: its tensor must survive backward. */
class Probe extends Module {
  kept: Tensor | null = null;
  forward(x: Tensor): Tensor {
    this.kept = x;
    return x;
  }
}

function residualModel(probe: Probe): Sequential {
  return new Sequential(
    new Conv2d(2, 4, 3, { padding: 1 }),
    new BatchNorm(4),
    new ReLU(),
    new Residual(new Sequential(new Conv2d(4, 4, 3, { padding: 1 }), new BatchNorm(4), new ReLU())),
    probe,
    new MaxPool2d(2),
    new Dropout(0.25),
    new GlobalAvgPool2d(),
    new Flatten(),
    new Dense(4, 3),
  );
}

/** Losses, outputs and final parameters of a few Adam steps, as plain arrays. */
function train(build: () => Module, inputShape: number[], classes: number, recycling: boolean) {
  setRecycling(recycling);
  try {
    manualSeed(7);
    const model = build();
    const input = randn(inputShape);
    const labels = new Int32Array(inputShape[0]!).map((_, i) => i % classes);
    const optimizer = new Adam(model.parameters(), { lr: 1e-2 });
    model.train();
    const losses: number[] = [];
    const outputs: Float32Array[] = [];
    for (let step = 0; step < 3; step++) {
      const output = model.call(input);
      const loss = crossEntropy(output, labels);
      optimizer.zeroGrad();
      loss.backward();
      optimizer.step();
      losses.push(loss.item());
      outputs.push(Float32Array.from(output.data));
    }
    return { losses, outputs, parameters: model.parameters().map((p) => Float32Array.from(p.data)) };
  } finally {
    setRecycling(true);
  }
}

test('training gives the same bits with and without memory reuse', () => {
  const cases: [() => Module, number[], number][] = [
    [() => seedCnn({ channels: [4, 8] }), [6, 1, 28, 28], 10],
    [() => residualModel(new Probe()), [5, 2, 16, 16], 3],
    // Blocks in a stage pass their outputs along a chain (ResNet blocks declare keepsNoTensors).
    [() => resnet({ layers: [2, 2], widths: [8, 16], classes: 4, stem: 'small' }), [4, 3, 16, 16], 4],
    // Blocks, stem and head also mark their own inner activations (markInner).
    [
      () => resnet({ block: 'bottleneck', layers: [1, 1], widths: [4, 8], classes: 4, stem: 'imagenet' }),
      [2, 3, 64, 64],
      4,
    ],
  ];
  for (const [build, shape, classes] of cases) {
    const reused = train(build, shape, classes, true);
    const plain = train(build, shape, classes, false);
    assert.deepEqual(reused.losses, plain.losses);
    assert.deepEqual(reused.outputs, plain.outputs);
    assert.deepEqual(reused.parameters, plain.parameters);
  }
});

/** Bytes a third training step of a small ResNet took fresh from malloc and reused from the free lists. */
function thirdStepBytes(): { fresh: number; reused: number } {
  manualSeed(11);
  const model = resnet({ layers: [2, 2], widths: [8, 16], classes: 4, stem: 'small' });
  const input = randn([4, 3, 16, 16]);
  const labels = new Int32Array([0, 1, 2, 3]);
  const optimizer = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
  model.train();
  const step = () => {
    const loss = crossEntropy(model.call(input), labels);
    optimizer.zeroGrad();
    loss.backward();
    optimizer.step();
  };
  step();
  step();
  const before = memoryCounters();
  step();
  const after = memoryCounters();
  return { fresh: after.freshBytes - before.freshBytes, reused: after.reusedBytes - before.reusedBytes };
}

test('a ResNet training step takes nearly all its large buffers from the previous step', () => {
  // Inside a residual block (convolutions, batch norms, the shortcut's sum) the activations are
  // not a chain; unless the block marks them, each step leaves them all to the collector.
  const { fresh, reused } = thirdStepBytes();
  assert.ok(reused > 0, 'the step reused no buffer');
  // The weight gradients too: zeroGrad hands back the ones nobody outside the library has read.
  assert.ok(fresh < 0.01 * (fresh + reused), `fresh ${fresh} bytes, reused ${reused} bytes`);
});

test('gradients user code has read or set survive zeroGrad and later steps; unread ones are reused', () => {
  manualSeed(5);
  // Weights of at least 1,024 floats, which the free lists take.
  const model = new Sequential(
    new Conv2d(1, 128, 3, { padding: 1 }),
    new ReLU(),
    new Flatten(),
    new Dense(128 * 100, 4),
  );
  const input = randn([4, 1, 10, 10]);
  const labels = new Int32Array([0, 1, 2, 3]);
  const optimizer = new SGD(model.parameters(), { lr: 0.1 });
  const [convWeight, , linearWeight] = model.parameters();
  const step = () => {
    optimizer.zeroGrad();
    crossEntropy(model.call(input), labels).backward();
    optimizer.step();
  };
  step();
  // Read by user code: lent for good.
  const read = linearWeight!.grad!;
  const readCopy = Float32Array.from(read.data);
  // Set by user code: never the library's to reuse.
  const own = new Tensor(new Float32Array(convWeight!.size).fill(0.5), convWeight!.shape);
  convWeight!.grad = own;
  const before = memoryCounters();
  step();
  step();
  const after = memoryCounters();
  assert.deepEqual(read.data, readCopy);
  assert.ok(own.data.every((value) => value === 0.5));
  // The second step needed new gradients for both weights (the first's were lent), the third
  // reused the second's, unread: at most one step's worth came fresh, not two.
  const fresh = after.freshBytes - before.freshBytes;
  assert.ok(fresh <= (128 * 100 * 4 + 128 * 9) * 4, `${fresh} bytes fresh`);
});

test('the free lists hold one step of buffers even above their floor', () => {
  // With no floor, the bound is what the previous step asked for: still no buffer is turned away.
  const floor = setRecycledByteFloor(0);
  try {
    const { fresh, reused } = thirdStepBytes();
    assert.ok(fresh < 0.1 * (fresh + reused), `fresh ${fresh} bytes, reused ${reused} bytes`);
  } finally {
    setRecycledByteFloor(floor);
  }
});

test('arrays user code holds keep their values through backward and later steps', () => {
  manualSeed(3);
  const probe = new Probe();
  // Flatten last: the returned output is a view of an inner activation's memory.
  const model = new Sequential(
    new Conv2d(1, 8, 3, { padding: 1 }),
    new ReLU(),
    probe,
    new Conv2d(8, 8, 3, { padding: 1 }),
    new ReLU(),
    new Flatten(),
  );
  const input = randn([4, 1, 20, 20]);
  const inputCopy = Float32Array.from(input.data);
  const output = model.call(input);
  const outputCopy = Float32Array.from(output.data);
  const kept = probe.kept!;
  const keptCopy = Float32Array.from(kept.data);
  mean(mul(output, output)).backward();
  // Another step allocates from whatever the first backward pass freed.
  const again = model.call(input);
  mean(mul(again, again)).backward();
  assert.deepEqual(input.data, inputCopy);
  assert.deepEqual(output.data, outputCopy);
  assert.deepEqual(kept.data, keptCopy);
});

test('inference under noGrad reuses inner activations without changing results or inputs', () => {
  manualSeed(5);
  // Dropout first passes the caller's input through in evaluation mode: it must not be reused.
  const model = new Sequential(new Dropout(0.5), ...seedCnn({ channels: [4, 8] }).layers).eval();
  const input = randn([3, 1, 28, 28]);
  const inputCopy = Float32Array.from(input.data);
  const outputs: Float32Array[] = [];
  for (const recycling of [false, true, true]) {
    setRecycling(recycling);
    try {
      const output = noGrad(() => model.call(input));
      outputs.push(Float32Array.from(output.data));
      // The next call must not overwrite what this one returned.
      const copy = Float32Array.from(output.data);
      noGrad(() => model.call(randn([3, 1, 28, 28])));
      assert.deepEqual(output.data, copy);
    } finally {
      setRecycling(true);
    }
  }
  assert.deepEqual(outputs[1], outputs[0]);
  assert.deepEqual(outputs[2], outputs[0]);
  assert.deepEqual(input.data, inputCopy);
});

test("ResNet inference under noGrad hands its blocks' and stages' activations back, with the same results", () => {
  manualSeed(12);
  for (const stem of ['small', 'imagenet'] as const) {
    const model = resnet({ layers: [2, 2], widths: [8, 16], classes: 4, stem }).eval();
    const input = randn([2, 3, 32, 32]);
    const inputCopy = Float32Array.from(input.data);
    const results: Float32Array[] = [];
    for (const recycling of [false, true]) {
      setRecycling(recycling);
      try {
        results.push(Float32Array.from(noGrad(() => model.call(input)).data));
      } finally {
        setRecycling(true);
      }
    }
    assert.deepEqual(results[1], results[0]);
    assert.deepEqual(input.data, inputCopy);
    // A returned output survives the next call.
    const output = noGrad(() => model.call(input));
    const copy = Float32Array.from(output.data);
    noGrad(() => model.call(randn([2, 3, 32, 32])));
    assert.deepEqual(output.data, copy);
    // Warmed up, a call takes nearly all its buffers from the one before.
    noGrad(() => model.call(input));
    const before = memoryCounters();
    noGrad(() => model.call(input));
    const after = memoryCounters();
    const fresh = after.freshBytes - before.freshBytes;
    const reused = after.reusedBytes - before.reusedBytes;
    assert.ok(fresh < 0.25 * (fresh + reused), `${stem} stem: fresh ${fresh} bytes, reused ${reused} bytes`);
  }
});
