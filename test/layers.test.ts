/**
 * A generic layer harness (shapes, parameter counts, state_dict names, a save/load round trip and one
 * training step), plus the seed's two parameter comparisons read from summary().
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import {
  Activation,
  Adam,
  AvgPool2d,
  BatchNorm,
  Conv2d,
  Dense,
  Dropout,
  Flatten,
  GlobalAvgPool2d,
  GlobalMaxPool2d,
  loadWeights,
  manualSeed,
  MaxPool2d,
  type Module,
  mseLoss,
  randn,
  Random,
  ReLU,
  Residual,
  resnet,
  saveWeights,
  seedCnn,
  Sequential,
  summary,
  Tensor,
  zeros,
} from '../src/index.js';

interface LayerCase {
  name: string;
  make: () => Module;
  input: number[];
  output: number[];
  parameters: number;
  names: string[];
}

const layerCases: LayerCase[] = [
  {
    name: 'Dense',
    make: () => new Dense(6, 4, { activation: 'relu' }),
    input: [3, 6],
    output: [3, 4],
    parameters: 28,
    names: ['weight', 'bias'],
  },
  {
    name: 'Dense without bias',
    make: () => new Dense(6, 4, { bias: false }),
    input: [3, 6],
    output: [3, 4],
    parameters: 24,
    names: ['weight'],
  },
  {
    name: 'Conv2d',
    make: () => new Conv2d(2, 5, 3, { padding: 1 }),
    input: [2, 2, 6, 6],
    output: [2, 5, 6, 6],
    parameters: 95,
    names: ['weight', 'bias'],
  },
  {
    name: 'Conv2d stride 2 valid',
    make: () => new Conv2d(2, 3, 3, { stride: 2, padding: 'valid', bias: false }),
    input: [1, 2, 7, 7],
    output: [1, 3, 3, 3],
    parameters: 54,
    names: ['weight'],
  },
  {
    name: 'Conv2d same dilation 2',
    make: () => new Conv2d(1, 2, 3, { padding: 'same', dilation: 2 }),
    input: [1, 1, 5, 6],
    output: [1, 2, 5, 6],
    parameters: 20,
    names: ['weight', 'bias'],
  },
  {
    name: 'MaxPool2d',
    make: () => new MaxPool2d(2),
    input: [2, 3, 6, 6],
    output: [2, 3, 3, 3],
    parameters: 0,
    names: [],
  },
  {
    name: 'AvgPool2d',
    make: () => new AvgPool2d(3, { stride: 2, padding: 1 }),
    input: [2, 3, 6, 6],
    output: [2, 3, 3, 3],
    parameters: 0,
    names: [],
  },
  {
    name: 'GlobalAvgPool2d',
    make: () => new GlobalAvgPool2d(),
    input: [2, 3, 4, 4],
    output: [2, 3],
    parameters: 0,
    names: [],
  },
  {
    name: 'GlobalMaxPool2d',
    make: () => new GlobalMaxPool2d(),
    input: [2, 3, 4, 4],
    output: [2, 3],
    parameters: 0,
    names: [],
  },
  {
    name: 'Flatten',
    make: () => new Flatten(),
    input: [2, 3, 2, 2],
    output: [2, 12],
    parameters: 0,
    names: [],
  },
  {
    name: 'BatchNorm 2-D',
    make: () => new BatchNorm(5),
    input: [4, 5],
    output: [4, 5],
    parameters: 10,
    names: ['weight', 'bias', 'running_mean', 'running_var'],
  },
  {
    name: 'BatchNorm 4-D',
    make: () => new BatchNorm(3),
    input: [2, 3, 4, 4],
    output: [2, 3, 4, 4],
    parameters: 6,
    names: ['weight', 'bias', 'running_mean', 'running_var'],
  },
  { name: 'Dropout', make: () => new Dropout(0.5), input: [4, 6], output: [4, 6], parameters: 0, names: [] },
  {
    name: 'Activation gelu',
    make: () => new Activation('gelu'),
    input: [2, 3],
    output: [2, 3],
    parameters: 0,
    names: [],
  },
];

const temporary = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-layers-'));

describe('layer harness', () => {
  for (const layerCase of layerCases) {
    it(layerCase.name, () => {
      manualSeed(11);
      const layer = layerCase.make();
      const x = randn(layerCase.input);
      const y = layer.call(x);
      assert.deepEqual(y.shape, layerCase.output, 'output shape');
      assert.equal(
        layer.parameters().reduce((n, p) => n + p.size, 0),
        layerCase.parameters,
        'parameter count',
      );
      assert.deepEqual([...layer.stateDict().keys()], layerCase.names, 'state_dict names');

      // Save, load into a fresh layer with other weights, and compare outputs in inference mode.
      const file = path.join(temporary, `${layerCase.name.replaceAll(' ', '_')}.safetensors`);
      saveWeights(layer, file);
      manualSeed(99);
      const copy = layerCase.make();
      loadWeights(copy, file);
      layer.eval();
      copy.eval();
      assert.deepEqual(Array.from(copy.call(x).data), Array.from(layer.call(x).data), 'round trip');

      // One training step reduces a regression loss when there is anything to train.
      if (layerCase.parameters > 0) {
        layer.train();
        const target = randn(layerCase.output, new Random(3));
        const optimizer = new Adam(layer.parameters(), { lr: 1e-2 });
        const before = mseLoss(layer.call(x), target);
        optimizer.zeroGrad();
        before.backward();
        for (const parameter of layer.parameters())
          assert.ok(parameter.grad !== null, 'every parameter gets a gradient');
        optimizer.step();
        const after = mseLoss(layer.call(x), target);
        assert.ok(after.item() < before.item(), `loss ${before.item()} → ${after.item()} should fall`);
      }
    });
  }
});

describe('BatchNorm modes', () => {
  it('uses batch statistics in training and running statistics in inference', () => {
    const bn = new BatchNorm(2);
    const x = new Tensor(new Float32Array([1, 10, 3, 20, 5, 30, 7, 40]), [4, 2]);
    const training = bn.call(x);
    // Batch-normalised columns have mean 0.
    for (const c of [0, 1]) {
      const mean = [0, 1, 2, 3].reduce((s, r) => s + training.data[r * 2 + c]!, 0) / 4;
      assert.ok(Math.abs(mean) < 1e-6);
    }
    // Running statistics moved 10% toward the batch mean (4, 25) and unbiased variance.
    assert.ok(Math.abs(bn.runningMean.data[0]! - 0.4) < 1e-6);
    assert.ok(Math.abs(bn.runningMean.data[1]! - 2.5) < 1e-6);
    assert.ok(Math.abs(bn.runningVar.data[0]! - (0.9 + 0.1 * (20 / 3))) < 1e-5);
    bn.eval();
    const before = bn.runningMean.data.slice();
    const inference = bn.call(x);
    assert.deepEqual(bn.runningMean.data, before, 'inference leaves the running statistics alone');
    const expected = (1 - 0.4) / Math.sqrt(bn.runningVar.data[0]! + 1e-5);
    assert.ok(Math.abs(inference.data[0]! - expected) < 1e-5);
  });
  it('a frozen batch norm runs in inference mode and keeps its statistics bit-identical', () => {
    const bn = new BatchNorm(3);
    bn.call(randn([5, 3, 2, 2]));
    bn.freeze();
    const mean = bn.runningMean.data.slice();
    const variance = bn.runningVar.data.slice();
    bn.train();
    bn.call(randn([5, 3, 2, 2]));
    assert.deepEqual(bn.runningMean.data, mean);
    assert.deepEqual(bn.runningVar.data, variance);
    bn.trainStatisticsWhenFrozen = true;
    bn.call(randn([5, 3, 2, 2]));
    assert.notDeepEqual(bn.runningMean.data, mean, 'the option keeps batch statistics in a frozen body');
  });
});

describe('Dropout', () => {
  it('zeroes about p of the elements in training, scales the rest, and is the identity in inference', () => {
    const dropout = new Dropout(0.25, new Random(1));
    const x = new Tensor(new Float32Array(4000).fill(1), [4000]);
    const y = dropout.call(x);
    const zeros = y.data.filter((v) => v === 0).length;
    assert.ok(zeros > 850 && zeros < 1150, `dropped ${zeros} of 4000`);
    assert.ok(y.data.every((v) => v === 0 || Math.abs(v - 1 / 0.75) < 1e-6));
    dropout.eval();
    assert.equal(dropout.call(x), x);
  });
});

describe('model structure', () => {
  it('Sequential state_dict names follow PyTorch', () => {
    const names = [
      ...seedCnn({ channels: [16, 32] })
        .stateDict()
        .keys(),
    ];
    assert.deepEqual(names.slice(0, 5), [
      '0.weight',
      '1.weight',
      '1.bias',
      '1.running_mean',
      '1.running_var',
    ]);
    assert.ok(names.includes('16.weight') && names.includes('16.bias'));
  });
  it('a residual block composes and names its branches', () => {
    const block = new Residual(new Sequential(new Conv2d(4, 4, 3, { padding: 1 }), new BatchNorm(4)), null);
    const y = block.call(randn([2, 4, 5, 5]));
    assert.deepEqual(y.shape, [2, 4, 5, 5]);
    assert.deepEqual([...block.stateDict().keys()].slice(0, 3), [
      'body.0.weight',
      'body.0.bias',
      'body.1.weight',
    ]);
    assert.equal(block.receptiveField({ size: 1, jump: 1 }).size, 3);
  });
});

describe('summary(): the seed comparisons', () => {
  it('Flatten+FC vs GAP+FC for 8 channels and 6 classes', () => {
    for (const size of [4, 7, 14]) {
      const flattenHead = new Sequential(new Flatten(), new Dense(8 * size * size, 6));
      const gapHead = new Sequential(new GlobalAvgPool2d(), new Dense(8, 6));
      assert.equal(summary(flattenHead, [8, size, size]).trainableParameters, 8 * size * size * 6 + 6);
      assert.equal(summary(gapHead, [8, size, size]).trainableParameters, 8 * 6 + 6);
    }
  });
  it('two stacked 3×3 convolutions vs one 5×5: 18·Cin·Cout vs 25·Cin·Cout, both a 5×5 receptive field', () => {
    const cin = 16;
    const cout = 16;
    const stacked = summary(
      new Sequential(
        new Conv2d(cin, cout, 3, { padding: 1, bias: false }),
        new Conv2d(cout, cout, 3, { padding: 1, bias: false }),
      ),
      [cin, 12, 12],
    );
    const single = summary(new Sequential(new Conv2d(cin, cout, 5, { padding: 2, bias: false })), [
      cin,
      12,
      12,
    ]);
    assert.equal(stacked.trainableParameters, 18 * cin * cout);
    assert.equal(single.trainableParameters, 25 * cin * cout);
    assert.equal(stacked.rows.at(-1)!.receptiveField, 5);
    assert.equal(single.rows.at(-1)!.receptiveField, 5);
    assert.match(stacked.text, /Receptive field/);
  });
  it('reports trainable and frozen parameters separately', () => {
    const model = seedCnn({ channels: [8, 16] });
    model.layers[0]!.freeze();
    const s = summary(model, [1, 28, 28]);
    assert.equal(s.frozenParameters, 8 * 9);
    assert.equal(s.rows[0]!.frozenParameters, 72);
    assert.equal(s.rows[0]!.trainableParameters, 0);
    assert.deepEqual(s.outputShape, [10]);
    assert.ok(model.training, 'summary restores the training mode');
    void zeros;
  });
});

describe('summary(): models that are not one Sequential', () => {
  it('lists the layers of a ResNet in call order with their shapes, and its totals', () => {
    const model = resnet({ layers: [1, 1], widths: [4, 8], classes: 3, stem: 'small' });
    const result = summary(model, [3, 16, 16]);
    const names = result.rows.map((row) => row.name);
    assert.deepEqual(names.slice(0, 3), ['conv1', 'bn1', 'layer1.0.conv1']);
    assert.equal(names.at(-1), 'fc');
    // The second stage's shortcut (1×1 conv, stride 2, and its batch norm) appears where it runs.
    assert.ok(names.includes('layer2.0.downsample.0') && names.includes('layer2.0.downsample.1'));
    const row = (name: string) => result.rows.find((r) => r.name === name)!;
    assert.deepEqual(row('layer2.0.conv1').outputShape, [8, 8, 8]);
    assert.deepEqual(row('fc').outputShape, [3]);
    // Every parameter is in exactly one row.
    const listed = result.rows.reduce((sum, r) => sum + r.trainableParameters, 0);
    assert.equal(listed, result.trainableParameters);
    assert.equal(
      result.trainableParameters,
      model.parameters().reduce((sum, p) => sum + p.size, 0),
    );
    assert.match(result.text, /layer1\.0\.conv2/);
    // The model's forward is its own again afterwards, and summary's hooks are gone.
    assert.ok(!Object.hasOwn(model.fc, 'forward'));
    assert.ok(!model.namedModules().some(([, module]) => module.hasForwardHooks()));
  });

  it('gives a residual block inside a Sequential its rows and the block its receptive field', () => {
    const block = new Residual(
      new Sequential(
        new Conv2d(2, 2, 3, { padding: 1 }),
        new BatchNorm(2),
        new ReLU(),
        new Conv2d(2, 2, 3, { padding: 1 }),
      ),
    );
    const result = summary(new Sequential(new Conv2d(1, 2, 3, { padding: 1 }), block), [1, 8, 8]);
    assert.deepEqual(
      result.rows.map((row) => row.name),
      ['0', '1.body.0', '1.body.1', '1.body.2', '1.body.3'],
    );
    assert.equal(result.rows[0]!.receptiveField, 3);
    assert.ok(Number.isNaN(result.rows[1]!.receptiveField));
    // 3×3, then two more 3×3 in the block's body: 7×7 after the block.
    assert.equal(result.rows.at(-1)!.receptiveField, 7);
  });
});
