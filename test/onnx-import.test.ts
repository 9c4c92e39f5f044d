/**
 * ONNX import: the seed CNN, a ResNet-18 (reduced widths) and a model of exporter glue, exported by
 * PyTorch 1.13 (committed fixtures, generator kept beside them), imported and run with PyTorch's
 * logits; then fine-tuned a few steps with a freezing strategy. tensile's own exports come back as
 * the same network. Unsupported operators are errors naming operator, node and opset.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  BatchNorm,
  blockGroups,
  Clip,
  ConstantArithmetic,
  Conv2d,
  Dense,
  Flatten,
  freezeEarly,
  GELU,
  GlobalAvgPool2d,
  GraphModule,
  headOnly,
  type ImageDataset,
  importOnnx,
  importOnnxBytes,
  manualSeed,
  MaxPool2d,
  type Module,
  noGrad,
  onnxModelBytes,
  Permute,
  Random,
  randn,
  readSafetensors,
  ReLU,
  Reshape,
  resnet,
  seedCnn,
  Sequential,
  Tensor,
  UnsupportedOnnxOperatorError,
  ZeroPad2d,
} from '../src/index.js';
import { encodeModel, type OnnxAttributeMessage, type OnnxModelMessage } from '../src/io/onnx/schema.js';
import { assertClose, runOnnx, torchAvailable } from './helpers/onnx.js';

const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const fixtures = path.join(repositoryRoot, 'test', 'fixtures', 'onnx');
const temporary = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-onnx-import-'));
after(() => fs.rmSync(temporary, { recursive: true, force: true }));

/** The input x and PyTorch's output y saved beside a fixture. */
function reference(directory: string, name: string): { x: Tensor; y: Tensor } {
  const { tensors } = readSafetensors(path.join(directory, `${name}.safetensors`));
  const tensor = (key: string) => {
    const entry = tensors.get(key)!;
    return new Tensor(Float32Array.from(entry.data as Float32Array), entry.shape);
  };
  return { x: tensor('x'), y: tensor('y') };
}

/** Imports directory/name.onnx and checks its outputs against PyTorch's; returns the model. */
function importAndCompare(directory: string, name: string): Module {
  const { model } = importOnnx(path.join(directory, `${name}.onnx`));
  const { x, y } = reference(directory, name);
  const output = noGrad(() => model.forward(x));
  assert.deepEqual(output.shape, y.shape, `${name}: output shape`);
  assertClose(output.data, y.data, 1e-4, `${name} against PyTorch`);
  return model;
}

function randomImages(
  count: number,
  channels: number,
  side: number,
  classes: number,
  seed: number,
): ImageDataset {
  const random = new Random(seed);
  const images = new Float32Array(count * channels * side * side);
  for (let i = 0; i < images.length; i++) images[i] = random.next() - 0.5;
  return {
    images,
    labels: Int32Array.from({ length: count }, (_, i) => i % classes),
    count,
    channels,
    height: side,
    width: side,
    classes,
    classNames: Array.from({ length: classes }, (_, i) => `class ${i}`),
  };
}

/** Copies of every parameter's values, by state_dict name. */
function snapshot(model: Module): Map<string, Float32Array> {
  return new Map(model.namedParameters().map(([name, p]) => [name, Float32Array.from(p.data)]));
}
const changed = (before: Float32Array, after: ArrayLike<number>) =>
  before.some((value, i) => value !== after[i]);

describe('importOnnx reads PyTorch 1.13 exports', () => {
  it('the seed CNN (batch norms folded by PyTorch) as a Sequential with PyTorch’s logits', () => {
    const model = importAndCompare(fixtures, 'seed_cnn');
    assert.ok(model instanceof Sequential);
    assert.deepEqual(
      model.layers.map((layer) => layer.constructor.name),
      ['Conv2d', 'ReLU', 'Conv2d', 'ReLU', 'MaxPool2d']
        .concat(['Conv2d', 'ReLU', 'Conv2d', 'ReLU', 'MaxPool2d'])
        .concat(['GlobalAvgPool2d', 'Dense']),
    );
    assert.deepEqual(
      blockGroups(model).map((group) => group.name),
      ['block1', 'block2', 'head'],
    );
  });

  it('a ResNet-18 with its batch norms as a graph of 20 batch norms and 8 residual adds', () => {
    const model = importAndCompare(fixtures, 'resnet18');
    assert.ok(model instanceof GraphModule);
    assert.equal(model.namedModules().filter(([, m]) => m instanceof BatchNorm).length, 20);
    assert.equal(model.steps.filter((step) => step.kind === 'add').length, 8);
    assert.equal(model.namedModules().filter(([, m]) => m instanceof Conv2d).length, 20);
  });

  it('exporter glue: shape arithmetic, ReLU6, uneven padding, constant arithmetic, transpose, concat, MatMul + Add', () => {
    const model = importAndCompare(fixtures, 'glue_cnn') as GraphModule;
    const kinds = model.steps.map((step) =>
      step.kind === 'module' ? step.module.constructor.name : step.kind,
    );
    for (const kind of ['ZeroPad2d', 'Clip', 'ConstantArithmetic', 'Permute', 'concat', 'Flatten', 'Softmax'])
      assert.ok(kinds.includes(kind), `${kind} in [${kinds.join(', ')}]`);
    // torch.matmul(x, W) + b became one dense layer with a bias.
    const dense = model.namedModules().filter(([, m]) => m instanceof Dense) as [string, Dense][];
    assert.equal(dense.length, 2);
    assert.ok(dense.every(([, layer]) => layer.bias !== null));
    assert.equal(
      model.namedModules().filter(([, m]) => m instanceof Reshape).length,
      0,
      'x.view(n, -1) is a Flatten',
    );
  });

  it('an imported PyTorch ResNet exported again by tensile runs in onnxruntime with PyTorch’s logits', async () => {
    const { model, inputShape } = importOnnx(path.join(fixtures, 'resnet18.onnx'));
    const { x, y } = reference(fixtures, 'resnet18');
    const output = await runOnnx(onnxModelBytes(model, { inputShape }), x);
    assertClose(output.data, y.data, 1e-4, 'PyTorch → tensile → onnxruntime');
  });

  it(
    'models the generator makes afresh (another seed) import with PyTorch’s logits',
    { skip: !torchAvailable && 'PyTorch and onnx (python3-torch, python3-onnx) are not installed' },
    () => {
      const directory = path.join(temporary, 'generated');
      const run = spawnSync(
        '/usr/bin/python3',
        [path.join(fixtures, 'make_onnx_models.py'), directory, '41'],
        {
          encoding: 'utf8',
        },
      );
      assert.equal(run.status, 0, run.stderr);
      for (const name of ['seed_cnn', 'resnet18', 'glue_cnn']) importAndCompare(directory, name);
    },
  );
});

describe('imported models fine-tune with the freezing strategies', () => {
  it('headOnly on the imported seed CNN trains the classifier and leaves the body as imported', () => {
    const { model } = importOnnx(path.join(fixtures, 'seed_cnn.onnx'));
    const before = snapshot(model);
    const history = headOnly(model, randomImages(12, 1, 16, 3, 1), {
      epochs: 2,
      batchSize: 4,
      progress: false,
      seed: 1,
    });
    assert.ok(history.epochs.every((epoch) => Number.isFinite(epoch.loss)));
    for (const [name, parameter] of model.namedParameters()) {
      const head = name.startsWith('11.');
      assert.equal(
        changed(before.get(name)!, parameter.data),
        head,
        `${name} ${head ? 'trained' : 'frozen'}`,
      );
    }
  });

  it('freezeEarly on the imported ResNet-18 graph trains the later layers only, batch norms frozen in the early ones', () => {
    const { model } = importOnnx(path.join(fixtures, 'resnet18.onnx'));
    const groups = blockGroups(model);
    const frozenGroups = Math.floor(groups.length / 2);
    const frozenNames = new Set(
      groups
        .slice(0, frozenGroups)
        .flatMap((group) =>
          group.modules.flatMap(([prefix, module]) =>
            [...module.stateDict().keys()].map((name) => `${prefix}.${name}`),
          ),
        ),
    );
    const state = new Map([...model.stateDict()].map(([name, t]) => [name, Float32Array.from(t.data)]));
    const history = freezeEarly(model, randomImages(8, 3, 32, 10, 2), {
      frozenGroups,
      epochs: 1,
      batchSize: 4,
      progress: false,
      seed: 2,
    });
    assert.ok(Number.isFinite(history.epochs[0]!.loss));
    let trained = 0;
    for (const [name, tensor] of model.stateDict()) {
      const moved = changed(state.get(name)!, tensor.data);
      if (frozenNames.has(name)) assert.equal(moved, false, `${name} is in a frozen group`);
      else if (moved) trained++;
    }
    assert.ok(trained > 10, `${trained} tensors of the unfrozen groups changed`);
  });
});

describe('tensile → ONNX → tensile', () => {
  it('the seed CNN comes back as the same layers, names and outputs', () => {
    manualSeed(21);
    const original = seedCnn({ channels: [4, 8], classes: 5 });
    for (const [name, tensor] of original.stateDict())
      if (name.endsWith('running_var')) tensor.data.forEach((_, i) => (tensor.data[i] = 0.5 + 0.1 * i));
    const { model, inputShape, opset, producer } = importOnnxBytes(
      onnxModelBytes(original, { inputShape: [1, 12, 12] }),
    );
    assert.deepEqual(inputShape, [1, 12, 12]);
    assert.equal(opset, 17);
    assert.match(producer, /^tensile/);
    assert.ok(model instanceof Sequential);
    assert.deepEqual(
      model.layers.map((layer) => layer.constructor.name),
      original.layers.map((layer) => layer.constructor.name),
    );
    assert.deepEqual([...model.stateDict().keys()], [...original.stateDict().keys()]);
    const x = randn([3, 1, 12, 12]);
    assertClose(
      noGrad(() => model.forward(x)).data,
      noGrad(() => original.eval().forward(x)).data,
      1e-6,
      'round trip',
    );
  });

  it('a bottleneck ResNet, GELU at opset 20 and the import-side layers come back with the same outputs', () => {
    manualSeed(22);
    const cases: [Module, number[], number][] = [
      [
        resnet({ block: 'bottleneck', layers: [1, 1], widths: [4, 8], classes: 3, stem: 'small' }),
        [3, 10, 10],
        17,
      ],
      [new Sequential(new Dense(4, 6), new GELU(), new Dense(6, 2)), [4], 20],
      [
        new Sequential(
          new ZeroPad2d([0, 1, 2, 1]),
          new Conv2d(2, 3, 3, { padding: 'same' }),
          new Clip(-1, 1),
          new ConstantArithmetic('mul', randn([3, 1, 1])),
          new Permute([0, 2, 3, 1]),
          new Reshape([6, -1]),
          new Flatten(),
        ),
        [2, 5, 4],
        17,
      ],
      [
        new Sequential(
          new Conv2d(2, 3, 4, { padding: 'same', dilation: 2 }),
          new MaxPool2d(2),
          new GlobalAvgPool2d(),
        ),
        [2, 8, 8],
        13,
      ],
    ];
    for (const [original, inputShape, opset] of cases) {
      const { model } = importOnnxBytes(onnxModelBytes(original, { inputShape, opset }));
      const x = randn([2, ...inputShape]);
      assertClose(
        noGrad(() => model.forward(x)).data,
        noGrad(() => original.eval().forward(x)).data,
        1e-5,
        original.describe(),
      );
    }
  });
});

describe('importOnnx against onnxruntime on a hand-written graph', () => {
  it('auto_pad SAME_UPPER, Sub and Div by constants, Squeeze/Unsqueeze after a global pool, Gemm with alpha, beta and no transB', async () => {
    const random = new Random(31);
    const values = (count: number) => Array.from({ length: count }, () => random.next() - 0.5);
    const floats = (name: string, dims: number[]) => ({
      name,
      dims,
      dataType: 1,
      floatData: values(dims.reduce((a, b) => a * b, 1)),
    });
    const ints = (name: string, data: number[]) => ({
      name,
      dims: [data.length],
      dataType: 7,
      int64Data: data,
    });
    const node = (
      opType: string,
      input: string[],
      output: string,
      attribute: OnnxAttributeMessage[] = [],
    ) => ({
      opType,
      name: output,
      input,
      output: [output],
      attribute,
    });
    const bytes = encodeModel({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      graph: {
        input: [
          {
            name: 'x',
            type: {
              tensorType: {
                elemType: 1,
                shape: { dim: [{ dimParam: 'n' }, { dimValue: 2 }, { dimValue: 6 }, { dimValue: 5 }] },
              },
            },
          },
        ],
        output: [{ name: 'y' }],
        initializer: [
          floats('w', [3, 2, 4, 3]),
          floats('b', [3]),
          floats('centre', [1, 3, 1, 1]),
          { name: 'scale', dims: [], dataType: 1, floatData: [0.7] },
          ints('spatial', [2, 3]),
          ints('at2', [2]),
          floats('fc', [3, 4]),
          floats('fcBias', [4]),
        ],
        node: [
          node('Conv', ['x', 'w', 'b'], 'conv', [
            { name: 'auto_pad', type: 3, s: new TextEncoder().encode('SAME_UPPER') },
          ]),
          node('Sub', ['conv', 'centre'], 'centred'),
          node('Div', ['centred', 'scale'], 'scaled'),
          node('LeakyRelu', ['scaled'], 'leaky', [{ name: 'alpha', type: 1, f: 0.1 }]),
          node('AveragePool', ['leaky'], 'smooth', [
            { name: 'kernel_shape', type: 7, ints: [3, 3] },
            { name: 'pads', type: 7, ints: [1, 1, 1, 1] },
            { name: 'count_include_pad', type: 2, i: 1 },
          ]),
          node('GlobalMaxPool', ['smooth'], 'pooled'),
          node('Squeeze', ['pooled', 'spatial'], 'squeezed'),
          node('Unsqueeze', ['squeezed', 'at2'], 'unsqueezed'),
          node('Flatten', ['unsqueezed'], 'flat'),
          node('Gemm', ['flat', 'fc', 'fcBias'], 'gemm', [
            { name: 'alpha', type: 1, f: 0.5 },
            { name: 'beta', type: 1, f: 2 },
          ]),
          node('Elu', ['gemm'], 'y', [{ name: 'alpha', type: 1, f: 0.8 }]),
        ],
      },
    });
    const { model } = importOnnxBytes(bytes);
    const x = randn([3, 2, 6, 5]);
    const expected = await runOnnx(bytes, x, 'x');
    const actual = noGrad(() => model.forward(x));
    assert.deepEqual(actual.shape, expected.shape);
    assertClose(actual.data, expected.data, 1e-5, 'hand-written graph');
  });
});

describe('importOnnx errors', () => {
  /** A one-node model around node, opset 17 unless given. */
  function modelWith(node: OnnxModelMessage['graph'], opset = 17): Uint8Array {
    return encodeModel({ irVersion: 8, opsetImport: [{ domain: '', version: opset }], graph: node });
  }
  const io = {
    input: [
      {
        name: 'x',
        type: {
          tensorType: {
            elemType: 1,
            shape: { dim: [{ dimParam: 'batch' }, { dimValue: 4 }, { dimValue: 6 }] },
          },
        },
      },
    ],
    output: [{ name: 'y' }],
  };

  it('names the operator, the node and the opset of an unsupported operator', () => {
    const bytes = modelWith(
      { ...io, node: [{ opType: 'LSTM', name: 'encoder/rnn', input: ['x'], output: ['y'] }] },
      15,
    );
    assert.throws(
      () => importOnnxBytes(bytes),
      (error: unknown) => {
        assert.ok(error instanceof UnsupportedOnnxOperatorError);
        assert.equal(error.operator, 'LSTM');
        assert.equal(error.node, 'encoder/rnn');
        assert.equal(error.opset, 15);
        assert.match(
          error.message,
          /^importOnnx: operator 'LSTM' \(node 'encoder\/rnn', opset 15\) is not supported; importOnnx reads Add, AveragePool/,
        );
        return true;
      },
    );
  });

  it('names operator, node and opset for unsupported settings and other domains too', () => {
    const weight = { name: 'w', dims: [4, 2, 1, 1], dataType: 1, floatData: new Array<number>(8).fill(0.5) };
    const grouped = modelWith({
      input: [
        {
          name: 'x',
          type: {
            tensorType: {
              elemType: 1,
              shape: { dim: [{ dimParam: 'n' }, { dimValue: 4 }, { dimValue: 3 }, { dimValue: 3 }] },
            },
          },
        },
      ],
      output: [{ name: 'y' }],
      initializer: [weight],
      node: [
        {
          opType: 'Conv',
          name: 'grouped',
          input: ['x', 'w'],
          output: ['y'],
          attribute: [{ name: 'group', type: 2, i: 2 }],
        },
      ],
    });
    assert.throws(
      () => importOnnxBytes(grouped),
      /operator 'Conv' \(node 'grouped', opset 17\) with group 2 is not supported/,
    );
    const custom = modelWith({
      ...io,
      node: [{ opType: 'FusedGemm', domain: 'com.microsoft', name: 'fused', input: ['x'], output: ['y'] }],
    });
    assert.throws(
      () => importOnnxBytes(custom),
      /operator 'com\.microsoft\.FusedGemm' \(node 'fused', opset 17\)/,
    );
    const fixed = modelWith({
      ...io,
      initializer: [{ name: 'shape', dims: [2], dataType: 7, int64Data: [2, 24] }],
      node: [{ opType: 'Reshape', name: 'fixed', input: ['x', 'shape'], output: ['y'] }],
    });
    assert.throws(
      () => importOnnxBytes(fixed),
      /operator 'Reshape' \(node 'fixed', opset 17\) fixes the batch size/,
    );
  });

  it('asks for the input shape when the file leaves it symbolic', () => {
    const bytes = modelWith({
      input: [
        {
          name: 'x',
          type: {
            tensorType: {
              elemType: 1,
              shape: { dim: [{ dimParam: 'n' }, { dimValue: 3 }, { dimParam: 'h' }] },
            },
          },
        },
      ],
      output: [{ name: 'y' }],
      node: [{ opType: 'Relu', name: 'relu', input: ['x'], output: ['y'] }],
    });
    assert.throws(() => importOnnxBytes(bytes), /input 'x' has shape \[n, 3, h\]; give options.inputShape/);
    const { model } = importOnnxBytes(bytes, { inputShape: [3, 5] });
    assert.ok(model instanceof Sequential && model.layers[0] instanceof ReLU);
  });
});
