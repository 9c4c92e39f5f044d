/**
 * ONNX export, checked by its real consumer: every layer (each convolution setting, batch norm, every
 * activation, the poolings, flatten, dense, dropout, residual adds, softmax), the seed CNN and a
 * ResNet-18 written with exportOnnx and run in onnxruntime-node, whose outputs must equal tensile's
 * within 1e-4 of the output's scale, at a batch size other than the one exported with. The files pass
 * onnx.checker (full check) where the onnx Python package is installed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  AvgPool2d,
  BatchNorm,
  BatchNorm1d,
  Clip,
  ConstantArithmetic,
  Conv2d,
  Dense,
  Dropout,
  ELU,
  exportOnnx,
  Flatten,
  GELU,
  GlobalAvgPool2d,
  GlobalMaxPool2d,
  GraphModule,
  LeakyReLU,
  LogSoftmax,
  manualSeed,
  MaxPool2d,
  Module,
  noGrad,
  onnxModelBytes,
  Permute,
  randn,
  ReLU,
  Reshape,
  Residual,
  resnet,
  resnet18,
  saveModel,
  saveWeights,
  seedCnn,
  Sequential,
  Sigmoid,
  Softmax,
  Tanh,
  Tensor,
  ZeroPad2d,
} from '../src/index.js';
import { decodeModel, encodeModel } from '../src/io/onnx/schema.js';
import { assertClose, checkerOpset, checkOnnxFiles, onnxCheckerAvailable, runOnnx } from './helpers/onnx.js';

const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const main = path.join(repositoryRoot, 'dist', 'cli', 'main.js');
const temporary = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-onnx-export-'));
after(() => fs.rmSync(temporary, { recursive: true, force: true }));
/** Every file written here, for one onnx.checker run at the end (one Python start-up). */
const written: { file: string; opset: number }[] = [];

/** Trained networks have running statistics away from 0 and 1; exports must carry them. */
function giveStatistics(model: Module): void {
  for (const [name, tensor] of model.stateDict()) {
    if (name.endsWith('running_mean'))
      tensor.data.forEach((_, i) => (tensor.data[i] = 0.2 * Math.sin(3 * i + 1)));
    if (name.endsWith('running_var'))
      tensor.data.forEach((_, i) => (tensor.data[i] = 0.5 + 0.4 * Math.cos(i)));
    if (name.endsWith('bn1.weight') || name.endsWith('bn2.weight'))
      tensor.data.forEach((_, i) => (tensor.data[i] = 1 + 0.3 * Math.sin(i)));
  }
}

/**
 * Exports model for one example of inputShape, runs it in onnxruntime on a batch of 3 and compares
 * with tensile's inference output. Returns the file.
 */
async function roundTrip(
  name: string,
  model: Module,
  inputShape: readonly number[],
  opset = 17,
  relative = 1e-4,
): Promise<string> {
  const file = path.join(temporary, `${name}.onnx`);
  exportOnnx(model, file, { inputShape, opset });
  written.push({ file, opset });
  const x = randn([3, ...inputShape]);
  const expected = noGrad(() => model.eval().forward(x));
  const actual = await runOnnx(file, x);
  assert.deepEqual(actual.shape, expected.shape, `${name}: output shape`);
  assertClose(actual.data, expected.data, relative, name);
  return file;
}

describe('exportOnnx runs in onnxruntime with tensile’s outputs', () => {
  it('convolutions with any stride, padding and dilation, with and without bias', async () => {
    manualSeed(1);
    const cases: [string, Conv2d][] = [
      ['conv-stride2-pad1', new Conv2d(3, 5, 3, { stride: 2, padding: 1 })],
      ['conv-same-even-dilated', new Conv2d(3, 4, 4, { padding: 'same', dilation: 2, bias: false })],
      ['conv-same-odd', new Conv2d(3, 4, [3, 5], { padding: 'same' })],
      ['conv-valid', new Conv2d(3, 2, 5, { padding: 'valid' })],
      ['conv-pairs', new Conv2d(3, 6, [3, 2], { stride: [1, 2], padding: [2, 1], dilation: [2, 1] })],
      ['conv-1x1-stride3', new Conv2d(3, 7, 1, { stride: 3, bias: false })],
    ];
    for (const [name, conv] of cases) await roundTrip(name, conv, [3, 11, 13]);
  });

  it('batch norm after a convolution and after a dense layer, affine or not', async () => {
    manualSeed(2);
    const conv = new Sequential(new Conv2d(2, 4, 3), new BatchNorm(4), new ReLU());
    giveStatistics(conv);
    (conv.layers[1] as BatchNorm).weight!.data.set([1.5, 0.5, -1, 2]);
    (conv.layers[1] as BatchNorm).bias!.data.set([0.1, -0.2, 0.3, 0]);
    await roundTrip('batchnorm2d', conv, [2, 8, 8]);
    const dense = new Sequential(new Dense(6, 5), new BatchNorm1d(5, { eps: 1e-3 }), new Tanh());
    giveStatistics(dense);
    await roundTrip('batchnorm1d', dense, [6]);
    const plain = new Sequential(new BatchNorm(3, { affine: false }));
    giveStatistics(plain);
    await roundTrip('batchnorm-not-affine', plain, [3, 4, 4]);
  });

  it('every activation layer, and each as a dense layer’s activation', async () => {
    manualSeed(3);
    const layers: [string, Module][] = [
      ['relu', new ReLU()],
      ['leaky-relu', new LeakyReLU(0.2)],
      ['elu', new ELU(0.7)],
      ['gelu', new GELU()],
      ['sigmoid', new Sigmoid()],
      ['tanh', new Tanh()],
      ['softmax-4d', new Softmax()],
      ['log-softmax-4d', new LogSoftmax()],
    ];
    for (const [name, layer] of layers) await roundTrip(name, layer, [2, 3, 5]);
    for (const activation of [
      'relu',
      'leaky_relu',
      'elu',
      'gelu',
      'sigmoid',
      'tanh',
      'softmax',
      'log_softmax',
    ] as const) {
      const dense = new Dense(7, 4, {
        activation,
        activationAlpha: activation === 'leaky_relu' ? 0.3 : undefined,
      });
      await roundTrip(`dense-${activation}`, dense, [7]);
    }
    await roundTrip('dense-no-bias', new Dense(7, 3, { bias: false }), [7]);
  });

  it('GELU as the Gelu operator from opset 20 on, and opsets 13 to 21', async () => {
    manualSeed(4);
    await roundTrip('gelu-opset20', new Sequential(new Dense(5, 6), new GELU()), [5], 20);
    const model = seedCnn({ channels: [3, 4], classes: 3 });
    giveStatistics(model);
    for (const opset of [13, 15, 18, 21])
      await roundTrip(`seed-cnn-opset${opset}`, model, [1, 12, 12], opset);
  });

  it('max, average and global pooling, flatten and dropout', async () => {
    manualSeed(5);
    const cases: [string, Module][] = [
      ['maxpool-2', new MaxPool2d(2)],
      ['maxpool-3-stride2-pad1', new MaxPool2d(3, { stride: 2, padding: 1 })],
      ['maxpool-ceil', new MaxPool2d(3, { stride: 2, ceilMode: true })],
      ['avgpool-pad-included', new AvgPool2d(3, { stride: 2, padding: 1 })],
      ['avgpool-pad-excluded', new AvgPool2d(3, { stride: 2, padding: 1, countIncludePad: false })],
      ['avgpool-ceil', new AvgPool2d(2, { stride: 2, ceilMode: true })],
      ['global-avg', new GlobalAvgPool2d()],
      ['global-max', new GlobalMaxPool2d()],
      ['flatten', new Flatten()],
      ['dropout-between', new Sequential(new Dropout(0.5), new Flatten(), new Dense(3 * 9 * 7, 4))],
      ['dropout-only', new Dropout(0.3)],
    ];
    for (const [name, module] of cases) await roundTrip(name, module, [3, 9, 7]);
  });

  it('residual blocks with an identity or a projection shortcut, and a general graph', async () => {
    manualSeed(6);
    const identity = new Residual(new Sequential(new Conv2d(4, 4, 3, { padding: 1 }), new BatchNorm(4)));
    giveStatistics(identity);
    await roundTrip('residual-identity', identity, [4, 6, 6]);
    const projected = new Residual(
      new Sequential(new Conv2d(4, 8, 3, { stride: 2, padding: 1 }), new ReLU()),
      new Conv2d(4, 8, 1, { stride: 2 }),
      false,
    );
    await roundTrip('residual-projection', projected, [4, 6, 6]);
    const graph = new GraphModule(
      [
        { kind: 'module', module: new Conv2d(2, 3, 3, { padding: 1 }), input: 0 },
        { kind: 'module', module: new Conv2d(2, 3, 1), input: 0 },
        { kind: 'add', inputs: [1, 2] },
        { kind: 'mul', inputs: [3, 1] },
        { kind: 'concat', inputs: [4, 0], axis: 1 },
        { kind: 'module', module: new GlobalAvgPool2d(), input: 5 },
      ],
      6,
    );
    await roundTrip('graph-module', graph, [2, 5, 5]);
  });

  it('the layers importOnnx makes: reshape, transpose, clip, zero padding, constant arithmetic', async () => {
    manualSeed(7);
    const model = new Sequential(
      new ZeroPad2d([1, 0, 2, 3]),
      new Clip(0, 6),
      new ConstantArithmetic('mul', randn([2, 1, 1])),
      new ConstantArithmetic('add', new Tensor(Float32Array.from([0.5]), [])),
      new Permute([0, 1, 3, 2]),
      new Reshape([2, -1]),
      new Clip(-Infinity, 0.25),
      new Flatten(),
    );
    await roundTrip('import-layers', model, [2, 4, 3]);
  });

  it('the seed CNN (both heads) and a bottleneck ResNet', async () => {
    manualSeed(8);
    const gap = seedCnn({ channels: [8, 16], classes: 10 });
    giveStatistics(gap);
    await roundTrip('seed-cnn', gap, [1, 28, 28]);
    const flat = seedCnn({ channels: [4, 8], classes: 5, head: 'flatten', inputSize: 16 });
    await roundTrip('seed-cnn-flatten', flat, [1, 16, 16]);
    const bottleneck = resnet({
      block: 'bottleneck',
      layers: [1, 1],
      widths: [4, 8],
      classes: 3,
      stem: 'small',
    });
    giveStatistics(bottleneck);
    await roundTrip('resnet-bottleneck', bottleneck, [3, 16, 16]);
  });

  it('a ResNet-18 on 32×32 images', async () => {
    manualSeed(9);
    const model = resnet18({ classes: 10 });
    giveStatistics(model);
    const file = await roundTrip('resnet18', model, [3, 32, 32]);
    // 11.2 million float32 parameters and the batch norms' statistics, each written once.
    const stored = [...model.stateDict().values()].reduce((sum, tensor) => sum + tensor.size, 0);
    assert.ok(stored > 11_000_000);
    const size = fs.statSync(file).size;
    assert.ok(size > stored * 4 && size < stored * 4 * 1.01, `${size} bytes for ${stored} numbers`);
  });

  it('keeps the model’s training mode, and names what it cannot export', () => {
    const model = seedCnn({ channels: [2, 2] });
    model.train();
    onnxModelBytes(model, { inputShape: [1, 8, 8] });
    assert.ok(
      model.namedModules().every(([, child]) => child.training),
      'training mode restored',
    );
    class Lonely extends Module {
      forward(x: Tensor): Tensor {
        return x;
      }
    }
    assert.throws(
      () => onnxModelBytes(new Sequential(new Dense(2, 2), new Lonely()), { inputShape: [2] }),
      /exportOnnx: no ONNX form for Lonely \(Lonely at '1'\)/,
    );
    assert.throws(
      () => onnxModelBytes(model, { inputShape: [1, 8, 8], opset: 12 }),
      /opset must be an integer from 13 to 21, got 12/,
    );
    assert.throws(() => onnxModelBytes(model, { inputShape: [] }), /inputShape must be one example's shape/);
  });
});

describe('tensile export', () => {
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [main, 'export', ...args], { encoding: 'utf8', cwd: temporary });

  it('writes a seed CNN weights file as ONNX that onnxruntime runs with tensile’s outputs', async () => {
    manualSeed(11);
    const model = seedCnn({ channels: [4, 6], classes: 4 });
    giveStatistics(model);
    const weights = path.join(temporary, 'cli-seed.safetensors');
    saveWeights(model, weights);
    const out = path.join(temporary, 'cli-seed.onnx');
    const run = cli('--model', weights, '--onnx', out, '--opset', '13');
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /wrote .*cli-seed\.onnx \(ONNX opset 13, input \[batch, 1, 28, 28\]\)/);
    written.push({ file: out, opset: 13 });
    const x = randn([2, 1, 28, 28]);
    assertClose(
      (await runOnnx(out, x)).data,
      noGrad(() => model.eval().forward(x)).data,
      1e-4,
      'cli seed CNN',
    );
  });

  it('takes the input shape a whole-model file records, or --input-shape', async () => {
    manualSeed(12);
    const model = new Sequential(new Conv2d(3, 4, 3), new ReLU(), new GlobalMaxPool2d(), new Dense(4, 2));
    const file = path.join(temporary, 'cli-whole.safetensors');
    saveModel(model, file, { inputShape: [3, 10, 10] });
    const out = path.join(temporary, 'cli-whole.onnx');
    let run = cli('--model', file, '--onnx', out);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /input \[batch, 3, 10, 10\]/);
    const x = randn([3, 3, 10, 10]);
    assertClose(
      (await runOnnx(out, x)).data,
      noGrad(() => model.eval().forward(x)).data,
      1e-4,
      'cli whole model',
    );
    run = cli('--model', file, '--onnx', out, '--input-shape', '3,7,9');
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /input \[batch, 3, 7, 9\]/);
  });

  it('refuses bad options with exit code 2, naming them', () => {
    let run = cli('--onnx', 'x.onnx');
    assert.equal(run.status, 2);
    assert.match(run.stderr, /--model FILE and --onnx OUT are required/);
    run = cli('--model', 'm.safetensors', '--onnx', 'x.onnx', '--opset', '9');
    assert.equal(run.status, 2);
    assert.match(run.stderr, /--opset must be an integer ≥ 13 and < 22, got '9'/);
    run = cli('--model', 'm.safetensors', '--onnx', 'x.onnx', '--input-shape', '1,0,3');
    assert.equal(run.status, 2);
    assert.match(run.stderr, /--input-shape must be positive integers/);
  });
});

describe('exported files', () => {
  it(
    'writes files that onnx.checker accepts (full check, opsets it knows)',
    { skip: !onnxCheckerAvailable && 'the onnx Python package (python3-onnx) is not installed' },
    () => {
      const files = written.filter(({ opset }) => opset <= checkerOpset).map(({ file }) => file);
      assert.ok(files.length >= 40, `only ${files.length} files to check`);
      assert.equal(checkOnnxFiles(files), '');
      // The check is not vacuous: an operator ONNX does not have is reported.
      const model = decodeModel(
        onnxModelBytes(new Sequential(new Dense(3, 2), new ReLU()), { inputShape: [3] }),
      );
      model.graph!.node![1]!.opType = 'Rectify';
      const tampered = path.join(temporary, 'tampered.onnx');
      fs.writeFileSync(tampered, encodeModel(model));
      assert.match(checkOnnxFiles([tampered]), /Rectify/);
    },
  );
});
