/**
 * Freezing: selectors, block groups, the batch-norm policies (frozen statistics stay bit-identical),
 * no updates or weight decay for frozen parameters, and no backward work for a frozen prefix.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  AdamW,
  type Backend,
  BatchNorm,
  blockGroups,
  crossEntropy,
  Dense,
  Flatten,
  freeze,
  freezeSummary,
  type ImageDataset,
  manualSeed,
  type Module,
  Random,
  ReLU,
  referenceBackend,
  resnet,
  seedCnn,
  Sequential,
  SGD,
  summary,
  Tensor,
  trainableParameterNames,
  unfreeze,
  withBackend,
  fit,
} from '../src/index.js';

/** Random 12×12 one-channel images with 3 classes (12 → 6 → 3 through the seed CNN's pools). */
function randomImages(count: number, seed: number, classes = 3): ImageDataset {
  const random = new Random(seed);
  const images = new Float32Array(count * 144);
  for (let i = 0; i < images.length; i++) images[i] = random.next();
  const labels = Int32Array.from({ length: count }, (_, i) => i % classes);
  return {
    images,
    labels,
    count,
    channels: 1,
    height: 12,
    width: 12,
    classes,
    classNames: ['a', 'b', 'c'].slice(0, classes),
  };
}

function smallCnn(seed = 1): Sequential {
  manualSeed(seed);
  return seedCnn({ channels: [4, 8], classes: 3 });
}

const snapshot = (model: Module) =>
  new Map([...model.stateDict()].map(([name, t]) => [name, Buffer.from(t.data.slice().buffer)]));

describe('block groups', () => {
  it('cuts the seed CNN into its two conv blocks and the head', () => {
    const groups = blockGroups(smallCnn());
    assert.deepEqual(
      groups.map((g) => [g.name, g.modules.map(([name]) => name)]),
      [
        ['block1', ['0', '1', '2', '3', '4', '5', '6']],
        ['block2', ['7', '8', '9', '10', '11', '12', '13']],
        ['head', ['14', '15', '16']],
      ],
    );
    const flattenHead = blockGroups(seedCnn({ channels: [4, 8], head: 'flatten' }));
    assert.deepEqual(
      flattenHead.at(-1)!.modules.map(([name]) => name),
      ['14', '15'],
    );
  });

  it('cuts a ResNet into stem, stages and head, and an MLP per dense layer', () => {
    const groups = blockGroups(resnet({ layers: [1, 1], widths: [4, 8], classes: 2, stem: 'small' }));
    assert.deepEqual(
      groups.map((g) => g.name),
      ['stem', 'layer1', 'layer2', 'head'],
    );
    assert.deepEqual(
      groups[0]!.modules.map(([name]) => name),
      ['conv1', 'bn1', 'relu'],
    );
    const mlp = new Sequential(new Flatten(), new Dense(4, 8), new ReLU(), new Dense(8, 2));
    assert.deepEqual(
      blockGroups(mlp).map((g) => [g.name, g.modules.map(([name]) => name)]),
      [
        ['block1', ['0', '1', '2']],
        ['head', ['3']],
      ],
    );
  });
});

describe('freeze and unfreeze', () => {
  it('select by module, by name pattern, by RegExp, by first layers and by first groups', () => {
    const model = smallCnn();
    assert.deepEqual(freeze(model, { firstLayers: 7 }), [
      '0.weight',
      '1.weight',
      '1.bias',
      '3.weight',
      '4.weight',
      '4.bias',
    ]);
    assert.deepEqual(trainableParameterNames(model), [
      '7.weight',
      '8.weight',
      '8.bias',
      '10.weight',
      '11.weight',
      '11.bias',
      '16.weight',
      '16.bias',
    ]);
    unfreeze(model);
    assert.deepEqual(freeze(model, { firstGroups: 1 }), freeze(model, { firstLayers: 7 }));
    unfreeze(model);
    assert.deepEqual(freeze(model, model.layers[16]!), ['16.weight', '16.bias']);
    assert.deepEqual(unfreeze(model, '16'), ['16.weight', '16.bias']);
    assert.deepEqual(freeze(model, /\.bias$/), ['1.bias', '4.bias', '8.bias', '11.bias', '16.bias']);
    unfreeze(model);
    assert.deepEqual(freeze(model, { groups: ['head'] }), ['16.weight', '16.bias']);

    const net = resnet({ layers: [2, 1], widths: [4, 8], classes: 2, stem: 'small' });
    const stage1 = freeze(net, 'layer1');
    assert.ok(stage1.length > 0 && stage1.every((name) => name.startsWith('layer1.')));
    unfreeze(net);
    assert.deepEqual(freeze(net, 'layer*.0.bn1'), [
      'layer1.0.bn1.weight',
      'layer1.0.bn1.bias',
      'layer2.0.bn1.weight',
      'layer2.0.bn1.bias',
    ]);
    unfreeze(net);
    assert.equal(
      freeze(net, '**.downsample').length,
      3,
      'layer2.0.downsample: conv weight, bn weight and bias',
    );
  });

  it('names the problem when a selector matches nothing or a module is foreign', () => {
    const model = smallCnn();
    assert.throws(() => freeze(model, 'layer1'), /'layer1' matches no parameter; names look like '0.weight'/);
    assert.throws(() => freeze(model, new Dense(2, 2)), /is not part of the model/);
    assert.throws(() => freeze(model, { firstGroups: 4 }), /firstGroups must be an integer in \[0, 3\]/);
    assert.throws(
      () => freeze(model, { groups: ['stem'] }),
      /no block group 'stem'; the groups are block1, block2, head/,
    );
  });

  it('summary() and freezeSummary() show trainable and frozen parameters', () => {
    const model = smallCnn();
    freeze(model, { firstGroups: 2 });
    const report = summary(model, [1, 12, 12]);
    assert.equal(report.trainableParameters, 8 * 3 + 3);
    assert.equal(report.frozenParameters, 4 * 9 + 8 + 4 * 4 * 9 + 8 + 4 * 8 * 9 + 16 + 8 * 8 * 9 + 16);
    assert.match(report.text, /trainable 27, frozen/);
    const groups = freezeSummary(model);
    assert.deepEqual(
      groups.groups.map((g) => [g.name, g.trainableParameters, g.batchNorm[0] ?? '-']),
      [
        ['block1', 0, 'running statistics'],
        ['block2', 0, 'running statistics'],
        ['head', 27, '-'],
      ],
    );
    assert.match(groups.text, /block1\s+0\s+196\s+running statistics/);
  });
});

describe('frozen batch norm', () => {
  const trainFrozen = (policy: 'inference' | 'trainable' | 'batchStatistics') => {
    const model = smallCnn(3);
    freeze(model, { firstGroups: 2 }, { batchNorm: policy });
    const before = snapshot(model);
    fit(model, randomImages(24, 4), {
      optimizer: new AdamW(model.parameters(), { lr: 0.01, weightDecay: 0.5 }),
      epochs: 2,
      batchSize: 8,
      progress: false,
    });
    const after = snapshot(model);
    const changed = [...before.keys()].filter((name) => !before.get(name)!.equals(after.get(name)!));
    return changed;
  };

  it('by default runs in inference mode: weights, γ, β and running statistics stay bit-identical (Keras)', () => {
    assert.deepEqual(trainFrozen('inference'), ['16.weight', '16.bias']);
  });

  it("with batchNorm 'trainable' keeps γ, β and the statistics training in a frozen body (fastai's train_bn)", () => {
    const changed = trainFrozen('trainable');
    for (const layer of ['1', '4', '8', '11']) {
      for (const tensor of ['weight', 'bias', 'running_mean', 'running_var'])
        assert.ok(changed.includes(`${layer}.${tensor}`), `${layer}.${tensor} should change`);
    }
    for (const conv of ['0', '3', '7', '10'])
      assert.ok(!changed.includes(`${conv}.weight`), `conv ${conv} stays frozen`);
  });

  it("with batchNorm 'batchStatistics' keeps γ and β but lets the running statistics drift (PyTorch's requires_grad=False)", () => {
    const changed = trainFrozen('batchStatistics');
    assert.ok(changed.includes('1.running_mean') && changed.includes('11.running_var'));
    assert.ok(!changed.includes('1.weight') && !changed.includes('11.bias'));
  });

  it('a frozen batch norm normalises with its running statistics even in training mode', () => {
    const norm = new BatchNorm(2);
    norm.runningMean.data.set([1, -1]);
    norm.runningVar.data.set([4, 0.25]);
    freeze(new Sequential(norm));
    norm.train();
    const y = norm.forward(new Tensor(new Float32Array([3, 0, 5, -2]), [2, 2]));
    const eps = 1e-5;
    const expected = [
      (3 - 1) / Math.sqrt(4 + eps),
      (0 + 1) / Math.sqrt(0.25 + eps),
      (5 - 1) / Math.sqrt(4 + eps),
      (-2 + 1) / Math.sqrt(0.25 + eps),
    ];
    y.data.forEach((value, i) =>
      assert.ok(Math.abs(value - expected[i]!) < 1e-6, `${value} vs ${expected[i]}`),
    );
    assert.deepEqual([...norm.runningMean.data], [1, -1]);
  });
});

describe('frozen parameters in the optimizer', () => {
  it('get no update and no weight decay even when a gradient is present', () => {
    const model = smallCnn();
    freeze(model, { firstGroups: 1 });
    for (const Optimizer of [AdamW, SGD]) {
      const optimizer = new Optimizer(model.parameters(), { lr: 0.1, weightDecay: 0.9 });
      for (const parameter of model.parameters())
        parameter.grad = new Tensor(new Float32Array(parameter.size).fill(1), parameter.shape);
      const before = snapshot(model);
      optimizer.step();
      const after = snapshot(model);
      for (const name of ['0.weight', '1.weight', '1.bias', '3.weight'])
        assert.ok(before.get(name)!.equals(after.get(name)!), `${name} changed`);
      assert.ok(!before.get('7.weight')!.equals(after.get('7.weight')!));
    }
  });
});

/** Wraps a backend, counting calls per kernel. */
function countingBackend(base: Backend): { backend: Backend; counts: Map<string, number> } {
  const counts = new Map<string, number>();
  const backend = new Proxy(base, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        counts.set(String(property), (counts.get(String(property)) ?? 0) + 1);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { backend, counts };
}

describe('a frozen prefix', () => {
  const backwardKernels = [
    'conv2dBackwardInput',
    'conv2dBackwardWeight',
    'batchNormTrainBackward',
    'maxPool2dBackward',
    'activationBackward',
  ];
  const step = (frozenGroups: number) => {
    const model = smallCnn(2);
    freeze(model, { firstGroups: frozenGroups });
    const data = randomImages(4, 9);
    const { backend, counts } = countingBackend(referenceBackend);
    withBackend(backend, () => {
      const loss = crossEntropy(model.forward(new Tensor(data.images, [4, 1, 12, 12])), data.labels);
      counts.clear(); // count the backward pass only
      loss.backward();
    });
    // Sequential runs each BatchNorm + ReLU pair as one fused op, whose backward kernel stands for
    // the batch-norm and the ReLU backward, and where a 2×2 max pooling follows, one whose backward
    // kernel stands for the pooling's too.
    const fused = counts.get('batchNormReluTrainBackward') ?? 0;
    const pooled = counts.get('batchNormReluMaxPoolTrainBackward') ?? 0;
    const standsFor = (name: string): number =>
      ['batchNormTrainBackward', 'activationBackward'].includes(name)
        ? fused + pooled
        : name === 'maxPool2dBackward'
          ? pooled
          : 0;
    return {
      model,
      counts: Object.fromEntries(
        backwardKernels.map((name) => [name, (counts.get(name) ?? 0) + standsFor(name)]),
      ),
    };
  };

  it('runs no backward kernel and computes no gradient for the frozen layers', () => {
    const full = step(0);
    assert.deepEqual(full.counts, {
      conv2dBackwardInput: 3, // every conv but the first, whose input is the data
      conv2dBackwardWeight: 4,
      batchNormTrainBackward: 4,
      maxPool2dBackward: 2,
      activationBackward: 4,
    });
    const frozen = step(1);
    assert.deepEqual(frozen.counts, {
      conv2dBackwardInput: 1, // conv 10 only: conv 7's input comes from the frozen block
      conv2dBackwardWeight: 2,
      batchNormTrainBackward: 2,
      maxPool2dBackward: 1,
      activationBackward: 2,
    });
    for (const [name, parameter] of frozen.model.namedParameters()) {
      assert.equal(
        parameter.grad === null,
        Number(name.split('.')[0]) < 7,
        `${name}: gradient ${parameter.grad === null ? 'absent' : 'present'}`,
      );
    }
  });
});
