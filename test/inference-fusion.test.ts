/**
 * The inference rewrite (src/nn/inference.ts): Conv2d → BatchNorm (→ ReLU, → residual add + ReLU)
 * as one fused convolution in inference. It must give the bits of the layers run one by one on every
 * backend, run only where nothing can tell the difference (eval mode or frozen batch norm, no
 * gradient wanted, no hooks), and stay right in a training loop that evaluates after each epoch,
 * since nothing is cached from the parameters or running statistics.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  availableBackends,
  backendByName,
  BatchNorm,
  Conv2d,
  conv2dFused,
  crossEntropy,
  Dense,
  Dropout,
  Flatten,
  getBackend,
  GlobalAvgPool2d,
  manualSeed,
  maxPool2d,
  MaxPool2d,
  type Module,
  noGrad,
  randn,
  ReLU,
  resnet,
  Sequential,
  setInferenceFusion,
  seedCnn,
  setInferencePartBytes,
  SGD,
  ShapeError,
  Softmax,
  type Tensor,
  withBackend,
} from '../src/index.js';
import type { Backend } from '../src/backend/types.js';
import { assertSameBits } from './conformance/tolerance.js';

/** A seed-CNN-like Sequential: conv → BN → ReLU twice (the second without ReLU after its BN), pooling. */
function sequentialModel(): Sequential {
  manualSeed(3);
  return new Sequential(
    new Conv2d(2, 8, 3, { padding: 1, bias: false }),
    new BatchNorm(8),
    new ReLU(),
    new MaxPool2d(2),
    new Conv2d(8, 8, 3, { padding: 1, bias: false }),
    new BatchNorm(8),
    new GlobalAvgPool2d(),
    new Flatten(),
  );
}

/** Small ResNets of both block kinds, with a downsampling shortcut in every stage after the first. */
function resnets(): [string, Module][] {
  manualSeed(5);
  return [
    ['basic', resnet({ layers: [1, 1], widths: [8, 16], classes: 3, stem: 'small' })],
    ['bottleneck', resnet({ block: 'bottleneck', layers: [1, 1], widths: [4, 8], classes: 3 })],
  ];
}

/** Moves every batch norm's running statistics (and the weights) away from their initial values. */
function trainSteps(model: Module, input: Tensor, steps: number): void {
  model.train();
  const optimizer = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
  const labels = Array.from({ length: input.shape[0]! }, (_, i) => i % 3);
  for (let step = 0; step < steps; step++) {
    optimizer.zeroGrad();
    const output = model.call(input);
    crossEntropy(output, labels).backward();
    optimizer.step();
  }
  model.eval();
}

/** model(x) under noGrad with the rewrite on and off. */
function bothWays(model: Module, x: Tensor): [Tensor, Tensor] {
  try {
    setInferenceFusion(true);
    const fused = noGrad(() => model.call(x));
    setInferenceFusion(false);
    const unfused = noGrad(() => model.call(x));
    return [fused, unfused];
  } finally {
    setInferenceFusion(true);
  }
}

/** Runs fn on a backend that counts the fused convolutions run (pooled ones also on their own). */
function countingFused<T>(fn: () => T): { result: T; fusedCalls: number; pooledCalls: number } {
  const backend = getBackend();
  let fusedCalls = 0;
  let pooledCalls = 0;
  const counting: Backend = {
    ...backend,
    conv2dForwardFused(...args: Parameters<Backend['conv2dForwardFused']>) {
      fusedCalls++;
      backend.conv2dForwardFused(...args);
    },
    conv2dForwardFusedMaxPool(...args: Parameters<Backend['conv2dForwardFusedMaxPool']>) {
      fusedCalls++;
      pooledCalls++;
      backend.conv2dForwardFusedMaxPool(...args);
    },
  };
  const result = withBackend(counting, fn);
  return { result, fusedCalls, pooledCalls };
}

/**
 * conv → BN → ReLU → conv → BN → ReLU → 2×2 max pooling (with `poolOptions`) at 32 channels, where
 * the native backend pools inside its Winograd convolution, then GAP.
 */
function pooledModel(poolOptions: { ceilMode?: boolean } = {}): Sequential {
  manualSeed(12);
  return new Sequential(
    new Conv2d(3, 32, 3, { padding: 1, bias: false }),
    new BatchNorm(32),
    new ReLU(),
    new Conv2d(32, 32, 3, { padding: 1, bias: false }),
    new BatchNorm(32),
    new ReLU(),
    new MaxPool2d(2, poolOptions),
    new Conv2d(32, 32, 3, { padding: 1, bias: false }),
    new BatchNorm(32),
    new MaxPool2d(2),
    new GlobalAvgPool2d(),
    new Flatten(),
  );
}

describe('the inference rewrite', () => {
  it('gives the bits of the layers one by one, on every backend, for a Sequential and both ResNet blocks', () => {
    for (const name of availableBackends()) {
      withBackend(backendByName(name), () => {
        const sequential = sequentialModel();
        manualSeed(9);
        const images = randn([4, 2, 8, 8]);
        trainSteps(sequential, images, 2);
        const [fused, unfused] = bothWays(sequential, images);
        assertSameBits(fused.data, unfused.data, `${name}, Sequential`);
        for (const [kind, model] of resnets()) {
          manualSeed(11);
          const x = randn([2, 3, 16, 16]);
          trainSteps(model, x, 2);
          const [a, b] = bothWays(model, x);
          assertSameBits(a.data, b.data, `${name}, ResNet ${kind}`);
        }
      });
    }
  });

  it('pools 2×2 inside the fused convolution with the bits of the layers, on every backend and size', () => {
    for (const name of availableBackends()) {
      withBackend(backendByName(name), () => {
        for (const ceilMode of [false, true]) {
          const model = pooledModel({ ceilMode });
          for (const size of [8, 9, 14]) {
            manualSeed(size);
            const images = randn([3, 3, size, size]);
            trainSteps(model, images, 1);
            const [fused, unfused] = bothWays(model, images);
            assertSameBits(fused.data, unfused.data, `${name}, ${size}×${size}, ceilMode ${ceilMode}`);
            // Both poolings join their convolution, except ceilMode's on an odd size (a last window
            // of one row or column).
            const pooled = ceilMode && size % 2 === 1 ? 1 : 2;
            const counted = countingFused(() => noGrad(() => model.call(images)));
            assert.equal(counted.fusedCalls, 3, `${name}, ${size}×${size}: fused convolutions`);
            assert.equal(
              counted.pooledCalls,
              pooled,
              `${name}, ${size}×${size}, ceilMode ${ceilMode}: pooled`,
            );
            assertSameBits(counted.result.data, fused.data, `${name}, ${size}×${size}: counted run`);
          }
        }
      });
    }
  });

  it('leaves the pooling out of the fused convolution when the pooling has hooks or is not 2×2 stride 2', () => {
    const model = pooledModel().eval();
    manualSeed(13);
    const x = randn([2, 3, 10, 10]);
    const pool = model.layers[6] as MaxPool2d;
    const seen: number[][] = [];
    const handle = pool.registerForwardHook((_module, input, output) => {
      seen.push([...input.shape], [...output.shape]);
    });
    const hooked = countingFused(() => noGrad(() => model.call(x)));
    handle.remove();
    assert.deepEqual(seen, [
      [2, 32, 10, 10],
      [2, 32, 5, 5],
    ]);
    assert.equal(hooked.fusedCalls, 3);
    assert.equal(hooked.pooledCalls, 1, 'only the last pooling, which has no hook');
    const [fused, unfused] = bothWays(model, x);
    assertSameBits(hooked.result.data, unfused.data, 'hooked pooling');
    assertSameBits(fused.data, unfused.data, 'after the hook is gone');
    for (const options of [{ stride: 1 }, { padding: 1 }]) {
      manualSeed(14);
      const other = new Sequential(
        new Conv2d(3, 32, 3, { padding: 1, bias: false }),
        new BatchNorm(32),
        new ReLU(),
        new MaxPool2d(2, options),
      ).eval();
      const counted = countingFused(() => noGrad(() => other.call(x)));
      assert.equal(counted.pooledCalls, 0, JSON.stringify(options));
      const [a, b] = bothWays(other, x);
      assertSameBits(a.data, b.data, JSON.stringify(options));
    }
  });

  it('runs every convolution of an eval-mode ResNet fused under noGrad, and none in training', () => {
    const [, model] = resnets()[0]!;
    manualSeed(2);
    const x = randn([2, 3, 16, 16]);
    model.eval();
    // stem, two per block, and the downsampling shortcut of the second stage
    assert.equal(countingFused(() => noGrad(() => model.call(x))).fusedCalls, 6);
    model.train();
    const training = countingFused(() => model.call(x));
    assert.equal(training.fusedCalls, 0);
    assert.ok(training.result.gradFn !== null, 'training records the graph');
  });

  it('stays right in a training loop that evaluates after every epoch', () => {
    const [, model] = resnets()[0]!;
    manualSeed(4);
    const x = randn([4, 3, 16, 16]);
    const seen: Float32Array[] = [];
    for (let epoch = 0; epoch < 3; epoch++) {
      trainSteps(model, x, 2);
      const [fused, unfused] = bothWays(model, x);
      assertSameBits(fused.data, unfused.data, `epoch ${epoch}`);
      seen.push(Float32Array.from(fused.data));
    }
    // The parameters and statistics moved, and the fused outputs moved with them.
    assert.notDeepEqual(seen[0], seen[1]);
    assert.notDeepEqual(seen[1], seen[2]);
  });

  it('is not applied when a gradient is wanted, when a layer has hooks, or when it is turned off', () => {
    const model = sequentialModel().eval();
    manualSeed(6);
    const x = randn([2, 2, 8, 8]);
    // Gradients enabled and the parameters require them: the layers run, the graph is recorded.
    const withGradient = countingFused(() => model.call(x));
    assert.equal(withGradient.fusedCalls, 0);
    crossEntropy(withGradient.result, [0, 1]).backward();
    assert.ok(model.parameters()[0]!.grad !== null);
    // Under noGrad both conv/BN runs are fused.
    assert.equal(countingFused(() => noGrad(() => model.call(x))).fusedCalls, 2);
    // A hook on the first batch norm sees its own input and output: that run is not fused.
    const batchNorm = model.layers[1] as BatchNorm;
    const seen: number[][] = [];
    const handle = batchNorm.registerForwardHook(
      (_module, _input, output) => void seen.push([...output.shape]),
    );
    assert.equal(countingFused(() => noGrad(() => model.call(x))).fusedCalls, 1);
    assert.deepEqual(seen, [[2, 8, 8, 8]]);
    handle.remove();
    setInferenceFusion(false);
    try {
      assert.equal(countingFused(() => noGrad(() => model.call(x))).fusedCalls, 0);
    } finally {
      setInferenceFusion(true);
    }
  });

  it('folds a frozen batch norm in training mode, which uses its running statistics', () => {
    const model = sequentialModel();
    for (const parameter of model.parameters()) parameter.requiresGrad = false;
    manualSeed(8);
    const x = randn([2, 2, 8, 8]);
    const { result, fusedCalls } = countingFused(() => model.call(x));
    assert.equal(fusedCalls, 2);
    const [fused, unfused] = bothWays(model, x);
    assertSameBits(fused.data, unfused.data, 'frozen');
    assertSameBits(result.data, fused.data, 'frozen, gradients enabled');
  });

  it('names the failing layer as the unfused layers do', () => {
    const model = sequentialModel().eval();
    assert.throws(
      () => noGrad(() => model.call(randn([2, 3, 8, 8]))),
      (error: Error) => error instanceof ShapeError && /^layer 0 Conv2d\(2→8/.test(error.message),
    );
    // A batch norm error in training keeps its own position (the second of the pair of entries).
    const single = new Sequential(new Conv2d(2, 4, 3, { bias: false }), new BatchNorm(4), new ReLU());
    assert.throws(
      () => single.call(randn([1, 2, 3, 3])),
      (error: Error) => /^layer 1 BatchNorm\(4\): /.test(error.message),
    );
  });
});

describe('inference batches in parts', () => {
  /** sequentialModel() with a dense head, in eval mode, its statistics trained. */
  function smallModel(): Sequential {
    const model = sequentialModel().append(new Dense(8, 3));
    manualSeed(22);
    trainSteps(model, randn([6, 2, 8, 8]), 1);
    return model;
  }

  /** Runs fn with parts of at most `bytes` of activation, restoring the setting after. */
  function withPartBytes<T>(bytes: number, fn: () => T): T {
    const previous = setInferencePartBytes(bytes);
    try {
      return fn();
    } finally {
      setInferencePartBytes(previous);
    }
  }

  it('runs a large batch in parts after the first, with the bits of the whole batch, on every backend', () => {
    for (const name of availableBackends()) {
      withBackend(backendByName(name), () => {
        const model = smallModel();
        manualSeed(23);
        const x = randn([40, 2, 8, 8]);
        // The largest activation the layers make is the pooled 8·4·4 floats (512 bytes) a sample
        // (the first convolution pools as it writes): parts of 32 samples at 16 KiB.
        withPartBytes(16 * 1024, () => {
          const first = countingFused(() => noGrad(() => model.call(x)));
          assert.equal(first.fusedCalls, 2, `${name}: the first batch runs whole`);
          const second = countingFused(() => noGrad(() => model.call(x)));
          assert.equal(second.fusedCalls, 4, `${name}: then in two parts (32 + 8)`);
          assert.deepEqual(second.result.shape, [40, 3]);
          assertSameBits(second.result.data, first.result.data, `${name}: parts against whole`);
          const [, unfused] = bothWays(model, x);
          assertSameBits(second.result.data, unfused.data, `${name}: parts against the layers one by one`);
          // Another sample shape is sized again (whole first).
          const other = randn([40, 2, 6, 6]);
          assert.equal(countingFused(() => noGrad(() => model.call(other))).fusedCalls, 2);
        });
      });
    }
  });

  it('runs whole where a part could tell: gradients, hooks, training, dropout, softmax', () => {
    const model = smallModel().eval();
    manualSeed(24);
    const x = randn([40, 2, 8, 8]);
    withPartBytes(16 * 1024, () => {
      noGrad(() => model.call(x)); // sizes the parts
      assert.equal(countingFused(() => noGrad(() => model.call(x))).fusedCalls, 4);
      // A gradient wanted: the layers run one by one, whole, and record the graph.
      const graded = countingFused(() => model.call(x));
      assert.equal(graded.fusedCalls, 0);
      assert.ok(graded.result.gradFn !== null);
      // A hook on a layer sees the whole batch.
      const seen: number[] = [];
      const handle = model.layers[3]!.registerForwardHook(
        (_module, input) => void seen.push(input.shape[0]!),
      );
      noGrad(() => model.call(x));
      handle.remove();
      assert.deepEqual(seen, [40]);
      // Batch statistics mix the samples.
      model.train();
      assert.equal(countingFused(() => noGrad(() => model.call(x))).fusedCalls, 0);
      model.eval();
      // Dropout in training mode, and softmax, are not per sample.
      for (const extra of [new Dropout(0.5), new Softmax()]) {
        const withExtra = smallModel();
        withExtra.append(extra);
        withExtra.eval();
        extra.train();
        noGrad(() => withExtra.call(x));
        assert.equal(countingFused(() => noGrad(() => withExtra.call(x))).fusedCalls, 2, extra.describe());
      }
    });
  });

  it('runs the seed CNN at batch 256 in parts with the bits of the whole batch (default part size)', () => {
    const model = seedCnn({ channels: [32, 64] }).eval();
    manualSeed(25);
    const x = randn([256, 1, 28, 28]);
    const first = noGrad(() => model.call(x));
    const counted = countingFused(() => noGrad(() => model.call(x)));
    assert.ok(counted.fusedCalls > 4, `the batch ran in parts (${counted.fusedCalls} fused convolutions)`);
    assertSameBits(counted.result.data, first.data, 'seed CNN, parts against whole');
  });
});

describe('conv2dFused and max pooling without argmax', () => {
  it('conv2dFused refuses to run where a gradient is wanted', () => {
    const weight = randn([4, 2, 3, 3]);
    weight.requiresGrad = true;
    const scale = new Float32Array(4).fill(1);
    assert.throws(
      () => conv2dFused(randn([1, 2, 5, 5]), weight, { scale, shift: new Float32Array(4) }),
      /no gradient; call it under noGrad/,
    );
  });

  it('max pooling under noGrad gives the values of the recorded op', () => {
    manualSeed(12);
    const x = randn([2, 3, 9, 11]);
    x.requiresGrad = true;
    const options = { kernelSize: 3, stride: 2, padding: 1 };
    const recorded = maxPool2d(x, options);
    const values = noGrad(() => maxPool2d(x, options));
    assert.ok(recorded.gradFn !== null && values.gradFn === null);
    assertSameBits(values.data, recorded.data, 'maxPool2d values');
  });
});
