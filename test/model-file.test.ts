/**
 * Whole-model files: every layer and container survives saveModel → loadModel with the same outputs
 * bit for bit and the same state dict; a registered module of one's own takes part; unknown types,
 * newer versions, weights-only files and hand-edited descriptions are refused by name; loadWeights
 * still reads a model file; `tensile predict` prints the top classes of image files, folders and IDX images.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  Activation,
  AvgPool2d,
  BatchNorm,
  BatchNorm1d,
  BatchNorm2d,
  Conv2d,
  decodeImage,
  Dense,
  Dropout,
  ELU,
  Flatten,
  GELU,
  GraphModule,
  importOnnx,
  Clip,
  ConstantArithmetic,
  Permute,
  Reshape,
  ZeroPad2d,
  GlobalAvgPool2d,
  GlobalMaxPool2d,
  LeakyReLU,
  loadModel,
  loadWeights,
  LogSoftmax,
  manualSeed,
  MaxPool2d,
  Module,
  ModelFileError,
  mulScalar,
  noGrad,
  readSafetensors,
  registerModule,
  ReLU,
  replaceHead,
  Residual,
  resnet,
  saveModel,
  saveWeights,
  seedCnn,
  Sequential,
  Sigmoid,
  Softmax,
  Tanh,
  Tensor,
  writeIdx,
  writeSafetensors,
} from '../src/index.js';

const temporary = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-model-file-'));
const cli = fileURLToPath(new URL('../cli/main.js', import.meta.url));
let fileCount = 0;
const nextFile = () => path.join(temporary, `model-${fileCount++}.safetensors`);

/** Deterministic, irregular values (not a pattern any layer could pass by accident). */
function values(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = Math.sin(seed * 12.9898 + i * 78.233) * 1.7;
  return out;
}

/** Gives batch norms trained-looking running statistics, so buffers matter to the outputs. */
function perturbBuffers(model: Module): void {
  let seed = 1;
  for (const [name, buffer] of model.namedBuffers()) {
    const fresh = values(buffer.size, seed++);
    for (let i = 0; i < buffer.size; i++)
      buffer.data[i] = name.endsWith('running_var') ? 0.5 + Math.abs(fresh[i]!) : fresh[i]!;
  }
}

function bytes(
  data: ArrayLike<number> & { buffer: ArrayBufferLike; byteOffset: number; byteLength: number },
) {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** Saves, loads and checks outputs (bit for bit, in inference mode) and the state dict. */
function assertRoundTrip(model: Module, inputShape: number[], label: string): Module {
  perturbBuffers(model);
  model.eval();
  const input = new Tensor(
    values(
      inputShape.reduce((a, b) => a * b, 1),
      99,
    ),
    inputShape,
  );
  const before = noGrad(() => model.forward(input));
  const file = nextFile();
  saveModel(model, file, { inputShape: inputShape.slice(1) });
  const { model: loaded, extras } = loadModel(file);
  assert.deepEqual(extras.inputShape, inputShape.slice(1), `${label}: extras`);
  assert.equal(loaded.constructor, model.constructor, `${label}: class`);
  assert.equal(loaded.training, false, `${label}: loaded in inference mode`);
  const after = noGrad(() => loaded.forward(input));
  assert.deepEqual(after.shape, before.shape, `${label}: output shape`);
  assert.ok(
    bytes(after.data as Float32Array).equals(bytes(before.data as Float32Array)),
    `${label}: outputs differ`,
  );
  const original = [...model.stateDict()];
  const reloaded = [...loaded.stateDict()];
  assert.deepEqual(
    reloaded.map(([name]) => name),
    original.map(([name]) => name),
    `${label}: state_dict names`,
  );
  for (const [index, [name, tensor]] of original.entries()) {
    const other = reloaded[index]![1];
    assert.deepEqual(other.shape, tensor.shape, `${label}: ${name} shape`);
    assert.ok(
      bytes(other.data as Float32Array).equals(bytes(tensor.data as Float32Array)),
      `${label}: ${name}`,
    );
  }
  return loaded;
}

describe('saveModel / loadModel round trips', () => {
  it('Conv2d with every option', () => {
    assertRoundTrip(
      new Conv2d(2, 3, [3, 2], { stride: [2, 1], padding: [1, 0], dilation: [1, 2], bias: true }),
      [2, 2, 7, 8],
      'conv pairs',
    );
    assertRoundTrip(new Conv2d(2, 4, 3, { padding: 'same', dilation: 2, bias: false }), [1, 2, 6, 6], 'same');
    assertRoundTrip(new Conv2d(2, 4, 3, { padding: 'valid', stride: 2 }), [1, 2, 7, 7], 'valid');
  });

  it('Dense with and without bias and activations', () => {
    assertRoundTrip(new Dense(5, 4, { activation: 'leaky_relu', activationAlpha: 0.2 }), [3, 5], 'leaky');
    assertRoundTrip(new Dense(5, 4, { bias: false, activation: 'softmax' }), [3, 5], 'softmax');
    const loaded = assertRoundTrip(
      new Dense(5, 4, { activation: 'elu', activationAlpha: 0.7 }),
      [3, 5],
      'elu',
    );
    assert.equal((loaded as Dense).options.activationAlpha, 0.7);
  });

  it('batch norms (1d, 2d, plain, without affine, with their eps and momentum)', () => {
    assertRoundTrip(new BatchNorm1d(4, { eps: 1e-3, momentum: 0.3 }), [5, 4], 'bn1d');
    assertRoundTrip(new BatchNorm2d(3), [2, 3, 4, 4], 'bn2d');
    const loaded = assertRoundTrip(new BatchNorm(3, { affine: false, eps: 0.01 }), [2, 3, 4, 4], 'no affine');
    assert.equal((loaded as BatchNorm).weight, null);
    assert.equal((loaded as BatchNorm).eps, 0.01);
  });

  it('pooling, flatten, dropout and every activation layer', () => {
    assertRoundTrip(
      new MaxPool2d([3, 2], { stride: [2, 1], padding: 1, ceilMode: true }),
      [2, 3, 7, 6],
      'max',
    );
    assertRoundTrip(new AvgPool2d(3, { stride: 2, padding: 1, countIncludePad: false }), [2, 3, 7, 6], 'avg');
    for (const layer of [new GlobalAvgPool2d(), new GlobalMaxPool2d(), new Flatten()])
      assertRoundTrip(layer, [2, 3, 4, 5], layer.describe());
    const dropout = assertRoundTrip(new Dropout(0.3), [4, 6], 'dropout');
    assert.equal((dropout as Dropout).probability, 0.3);
    for (const layer of [
      new ReLU(),
      new LeakyReLU(0.3),
      new ELU(0.5),
      new GELU(),
      new Sigmoid(),
      new Tanh(),
      new Softmax(),
      new LogSoftmax(),
      new Activation('leaky_relu', 0.05),
    ])
      assertRoundTrip(layer, [3, 7], layer.describe());
  });

  it('Sequential and Residual (with and without shortcut, activated or not)', () => {
    const block = (channels: number) =>
      new Sequential(
        new Conv2d(channels, channels, 3, { padding: 1, bias: false }),
        new BatchNorm2d(channels),
        new ReLU(),
      );
    const model = new Sequential(
      new Conv2d(1, 4, 3, { padding: 1 }),
      new Residual(block(4)),
      new Residual(
        new Sequential(new Conv2d(4, 6, 3, { padding: 1, stride: 2 }), new BatchNorm(6)),
        new Sequential(new Conv2d(4, 6, 1, { stride: 2, bias: false }), new BatchNorm(6)),
        false,
      ),
      new GlobalAvgPool2d(),
      new Dropout(0.2),
      new Dense(6, 3, { activation: 'log_softmax' }),
    );
    const loaded = assertRoundTrip(model, [2, 1, 8, 8], 'residual net') as Sequential;
    assert.equal((loaded.layers[2] as Residual).activate, false);
    assert.equal((loaded.layers[1] as Residual).shortcut, null);
  });

  it('the seed CNN (both heads) and ResNets (basic, bottleneck, small stem, a replaced head)', () => {
    assertRoundTrip(seedCnn({ channels: [4, 8] }), [2, 1, 12, 12], 'seed CNN');
    assertRoundTrip(
      seedCnn({ channels: [3, 5], head: 'flatten', inputSize: 12, inChannels: 2 }),
      [1, 2, 12, 12],
      'flatten',
    );
    assertRoundTrip(
      resnet({ layers: [1, 1], widths: [4, 8], classes: 5, stem: 'small' }),
      [2, 3, 8, 8],
      'basic',
    );
    assertRoundTrip(
      resnet({ block: 'bottleneck', layers: [1, 2], widths: [2, 4], classes: 3, inChannels: 1 }),
      [1, 1, 16, 16],
      'bottleneck',
    );
    const headless = resnet({ layers: [1, 1], widths: [4, 8], classes: 10, stem: 'small' });
    replaceHead(headless, 4);
    const loaded = assertRoundTrip(headless, [2, 3, 8, 8], 'replaced head');
    assert.equal((loaded as unknown as { fc: Dense }).fc.outFeatures, 4);
  });

  it('the layers ONNX import adds and GraphModule (add, mul, concat), and an imported PyTorch ResNet', () => {
    manualSeed(11);
    const constant = new Tensor(values(3, 7), [1, 3, 1, 1]);
    const graph = new GraphModule(
      [
        { kind: 'module', module: new ZeroPad2d([1, 0, 2, 1]), input: 0 }, // 1: [2, 3, 9, 7]
        { kind: 'module', module: new Conv2d(3, 3, 3, { padding: 1 }), input: 1 }, // 2
        { kind: 'module', module: new ConstantArithmetic('mul', constant), input: 2 }, // 3
        { kind: 'add', inputs: [2, 3] }, // 4
        { kind: 'module', module: new Clip(0, 6), input: 4 }, // 5
        { kind: 'mul', inputs: [5, 4] }, // 6
        { kind: 'concat', inputs: [5, 6], axis: 1 }, // 7: [2, 6, 9, 7]
        { kind: 'module', module: new Permute([0, 1, 3, 2]), input: 7 }, // 8: [2, 6, 7, 9]
        { kind: 'module', module: new Reshape([6, 63]), input: 8 }, // 9
        { kind: 'module', module: new Clip(-1), input: 9 }, // 10: no upper bound
      ],
      10,
    );
    assertRoundTrip(graph, [2, 3, 6, 6], 'GraphModule with every ONNX glue layer');
    const fixture = path.resolve(path.dirname(cli), '..', '..', 'test', 'fixtures', 'onnx', 'resnet18.onnx');
    const { model: imported, inputShape } = importOnnx(fixture);
    assertRoundTrip(imported, [2, ...inputShape], 'PyTorch ResNet-18 imported from ONNX');
  });

  it('keeps extras and the caller metadata, and loadWeights reads the same file', () => {
    const model = seedCnn({ channels: [2, 3], classes: 3 });
    const file = nextFile();
    const extras = {
      inputShape: [1, 8, 8],
      classNames: ['cat', 'dog', 'eel'],
      normalization: { mean: [0.13], standardDeviation: [0.31] },
      note: { epochs: 3 },
    };
    saveModel(model, file, extras, { test_accuracy: '0.9000' });
    const loaded = loadModel(file);
    assert.deepEqual(loaded.extras, extras);
    assert.equal(loaded.metadata.test_accuracy, '0.9000');
    assert.equal(loaded.metadata.format, 'tensile-model');
    // The tensors are the state dict under its own names: weights-only loading still works.
    const plain = seedCnn({ channels: [2, 3], classes: 3 });
    loadWeights(plain, file);
    for (const [name, tensor] of model.stateDict())
      assert.ok(
        bytes(plain.stateDict().get(name)!.data as Float32Array).equals(bytes(tensor.data as Float32Array)),
        name,
      );
  });
});

/** A module of the user's own: y = factor · inner(x). */
class Scaled extends Module {
  readonly inner: Module;
  constructor(
    readonly factor: number,
    inner: Module,
  ) {
    super();
    this.inner = this.addModule('inner', inner);
  }
  forward(x: Tensor): Tensor {
    return mulScalar(this.inner.forward(x), this.factor);
  }
  config(): { factor: number } {
    return { factor: this.factor };
  }
}

/** Registered nowhere. */
class Unregistered extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
  config(): Record<string, never> {
    return {};
  }
}

describe('registered modules and refusals', () => {
  it('a registered module of ones own round-trips, with its children', () => {
    registerModule('Scaled', {
      moduleClass: Scaled,
      fromConfig: (options, children) => new Scaled(options.factor, children.build('inner')),
    });
    const model = new Sequential(
      new Scaled(2.5, new Dense(3, 4)),
      new ReLU(),
      new Scaled(-1, new Dense(4, 2)),
    );
    const loaded = assertRoundTrip(model, [5, 3], 'custom') as Sequential;
    assert.ok(loaded.layers[0] instanceof Scaled);
    assert.equal((loaded.layers[2] as Scaled).factor, -1);
    assert.throws(
      () => registerModule('Scaled', { moduleClass: Unregistered, fromConfig: () => new Unregistered() }),
      /'Scaled' is already registered for another class/,
    );
  });

  it('an unregistered module is refused on save, naming it and where it is', () => {
    const file = nextFile();
    assert.throws(
      () => saveModel(new Sequential(new Dense(2, 2), new Unregistered()), file),
      (error: Error) =>
        error instanceof ModelFileError &&
        error.message.includes("module '1' is a Unregistered") &&
        error.message.includes("registerModule('Unregistered'"),
    );
    assert.equal(fs.existsSync(file), false, 'nothing written');
  });

  /** Rewrites one metadata entry of a model file. */
  function editMetadata(file: string, edit: (metadata: Record<string, string>) => void): string {
    const { tensors, metadata } = readSafetensors(file);
    edit(metadata);
    const edited = nextFile();
    writeSafetensors(edited, tensors, metadata);
    return edited;
  }

  it('an unknown type in a file, a newer version and a weights-only file are refused by name', () => {
    const file = nextFile();
    saveModel(new Sequential(new Dense(2, 3), new ReLU()), file);
    const unknown = editMetadata(file, (metadata) => {
      metadata.architecture = metadata.architecture!.replace('"ReLU"', '"Swish"');
    });
    assert.throws(() => loadModel(unknown), /module '1' has type 'Swish', which is not registered/);
    const newer = editMetadata(file, (metadata) => {
      metadata.version = '2';
    });
    assert.throws(
      () => loadModel(newer),
      /model format version 2, newer than this tensile reads \(version 1\)/,
    );
    const weightsOnly = nextFile();
    saveWeights(new Dense(2, 3), weightsOnly);
    assert.throws(
      () => loadModel(weightsOnly),
      /holds weights without an architecture \(format 'tensile-weights'\)/,
    );
  });

  it('a hand-edited description is refused before building what the file does not hold', () => {
    const file = nextFile();
    saveModel(new Sequential(new Dense(2, 3)), file);
    const huge = editMetadata(file, (metadata) => {
      metadata.architecture = metadata.architecture!.replace('"inFeatures":2', '"inFeatures":100000');
    });
    assert.throws(() => loadModel(huge), /needs '0\.weight' of shape \[3, 100000\], the file has \[3, 2\]/);
    const network = nextFile();
    saveModel(resnet({ layers: [1, 1], widths: [4, 8], classes: 3, stem: 'small' }), network);
    const wide = editMetadata(network, (metadata) => {
      metadata.architecture = metadata.architecture!.replace('"widths":[4,8]', '"widths":[40000,8]');
    });
    assert.throws(
      () => loadModel(wide),
      /the model \(ResNet\) needs 'conv1\.weight' of shape \[40000, 3, 3, 3\]/,
    );
    const deep = editMetadata(network, (metadata) => {
      metadata.architecture = metadata.architecture!.replace('"layers":[1,1]', '"layers":[1,100000]');
    });
    assert.throws(
      () => loadModel(deep),
      /needs 'layer2\.1\.conv1\.weight' of shape \[8, 8, 3, 3\], the file has none/,
    );
    const twoLayers = nextFile();
    saveModel(new Sequential(new Dense(2, 3), new ReLU()), twoLayers);
    const renamed = editMetadata(twoLayers, (metadata) => {
      metadata.architecture = metadata.architecture!.replace('"1":{"type":"ReLU"', '"first":{"type":"ReLU"');
    });
    assert.throws(() => loadModel(renamed), /children are named 0, 1, \.\.\.; child 1 is named 'first'/);
    const badOption = editMetadata(file, (metadata) => {
      metadata.architecture = metadata.architecture!.replace('"activation":"none"', '"activation":"swoosh"');
    });
    assert.throws(
      () => loadModel(badOption),
      /module '0' \(Dense\) cannot be built from .*unknown activation 'swoosh'/,
    );
  });
});

describe('tensile predict', () => {
  it('prints the top-k classes with probabilities for the images of an IDX file', () => {
    const model = seedCnn({ channels: [2, 3], classes: 3 });
    const file = nextFile();
    const classNames = ['circle', 'square', 'triangle'];
    saveModel(model, file, {
      inputShape: [1, 8, 8],
      classNames,
      normalization: { mean: [0.5], standardDeviation: [0.25] },
    });
    const pixels = new Uint8Array(2 * 8 * 8);
    for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 37) % 256;
    const images = path.join(temporary, 'images.idx');
    writeIdx(images, { dtype: 'uint8', shape: [2, 8, 8], data: pixels });
    const run = spawnSync(process.execPath, [cli, 'predict', '--model', file, '--top', '2', images], {
      encoding: 'utf8',
    });
    assert.equal(run.status, 0, run.stderr);
    // The expected probabilities, computed here the way predict must: scale, normalise, softmax.
    const input = new Tensor(
      Float32Array.from(pixels, (p) => (p / 255 - 0.5) / 0.25),
      [2, 1, 8, 8],
    );
    const logits = noGrad(() => model.eval().forward(input));
    const lines = run.stdout.trim().split('\n');
    assert.equal(lines.length, 2, run.stdout);
    for (let image = 0; image < 2; image++) {
      const row = Array.from(logits.data.slice(image * 3, image * 3 + 3) as Float32Array);
      const largest = Math.max(...row);
      const exps = row.map((v) => Math.exp(v - largest));
      const total = exps.reduce((a, b) => a + b, 0);
      const ranked = exps.map((e, k) => ({ k, p: e / total })).sort((a, b) => b.p - a.p);
      const expected = ranked
        .slice(0, 2)
        .map(({ k, p }) => `${classNames[k]} ${p.toFixed(4)}`)
        .join(', ');
      assert.equal(lines[image], `${images}[${image}]: ${expected}`);
    }
  });

  it("reads image files and folders at the model's input size, names a bad image, refuses a wrong IDX size", async () => {
    const file = nextFile();
    manualSeed(5);
    const model = seedCnn({ channels: [2, 3], classes: 3 });
    saveModel(model, file, { inputShape: [1, 8, 8], classNames: ['a', 'b', 'c'] });
    // Two 16×16 grey PNGs (resized to 8×8 by predict, as in training) in a folder with a non-image.
    const folder = path.join(temporary, 'photos');
    fs.mkdirSync(path.join(folder, 'more'), { recursive: true });
    const sharp = (await import('sharp')).default;
    const pngs = [path.join(folder, 'one.png'), path.join(folder, 'more', 'two.png')];
    for (const [index, png] of pngs.entries()) {
      const pixels = Buffer.from(Array.from({ length: 256 }, (_, i) => (i * (index + 3) * 7) % 256));
      await sharp(pixels, { raw: { width: 16, height: 16, channels: 1 } })
        .png()
        .toFile(png);
    }
    fs.writeFileSync(path.join(folder, 'notes.txt'), 'not an image');
    const expected: string[] = [];
    for (const png of pngs) {
      const image = await decodeImage(png, { size: [8, 8], color: 'grayscale' });
      const logits = noGrad(() => model.eval().forward(new Tensor(image.data, [1, 1, 8, 8])));
      const scores = Array.from(logits.data as Float32Array, Number);
      const largest = Math.max(...scores);
      const exponentials = scores.map((v) => Math.exp(v - largest));
      const total = exponentials.reduce((a, b) => a + b, 0);
      const best = exponentials.map((v, k) => ({ p: v / total, k })).sort((x, y) => y.p - x.p)[0]!;
      expected.push(`${png}: ${['a', 'b', 'c'][best.k]} ${best.p.toFixed(4)}`);
    }
    const single = spawnSync(process.execPath, [cli, 'predict', '--model', file, '--top', '1', pngs[0]!], {
      encoding: 'utf8',
    });
    assert.equal(single.status, 0, single.stderr);
    assert.equal(single.stdout.trim(), expected[0]);
    const all = spawnSync(process.execPath, [cli, 'predict', '--model', file, '--top', '1', folder], {
      encoding: 'utf8',
    });
    assert.equal(all.status, 0, all.stderr);
    assert.deepEqual(all.stdout.trim().split('\n').sort(), [...expected].sort());

    const broken = path.join(temporary, 'photo.png');
    fs.writeFileSync(broken, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0]));
    const run = spawnSync(process.execPath, [cli, 'predict', '--model', file, broken], { encoding: 'utf8' });
    assert.equal(run.status, 1);
    assert.match(run.stderr, /photo\.png/);
    const wrong = path.join(temporary, 'wrong.idx');
    writeIdx(wrong, { dtype: 'uint8', shape: [1, 5, 5], data: new Uint8Array(25) });
    const sized = spawnSync(process.execPath, [cli, 'predict', '--model', file, wrong], { encoding: 'utf8' });
    assert.equal(sized.status, 1);
    assert.match(sized.stderr, /wrong\.idx holds 5×5 images, the model takes \[1, 8, 8\]/);
    const usage = spawnSync(process.execPath, [cli, 'predict', wrong], { encoding: 'utf8' });
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /--model FILE is required/);
  });
});

describe('tensile train and finetune --save write whole models', () => {
  const repositoryRoot = path.resolve(path.dirname(cli), '..', '..');

  it('train --save: loadModel rebuilds it with its input shape and class names, loadWeights still reads it, predict runs it', () => {
    const file = path.join(temporary, 'trained.safetensors');
    const train = spawnSync(
      process.execPath,
      [
        cli,
        'train',
        '--no-track',
        '--quiet',
        '--epochs',
        '1',
        '--test-fraction',
        '0.9',
        '--channels',
        '4,4',
        '--save',
        file,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(train.status, 0, train.stderr);
    const { model, extras, metadata } = loadModel(file);
    assert.deepEqual(extras.inputShape, [1, 28, 28]);
    assert.deepEqual(extras.classNames, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    assert.match(metadata.test_accuracy!, /^0\.\d{4}$/);
    const plain = seedCnn({ channels: [4, 4] });
    loadWeights(plain, file);
    for (const [name, tensor] of model.stateDict())
      assert.ok(
        bytes(plain.stateDict().get(name)!.data as Float32Array).equals(bytes(tensor.data as Float32Array)),
        name,
      );
    const images = path.join(temporary, 'digits.idx');
    writeIdx(images, {
      dtype: 'uint8',
      shape: [3, 28, 28],
      data: new Uint8Array(3 * 28 * 28).map((_, i) => i % 251),
    });
    const predict = spawnSync(process.execPath, [cli, 'predict', '--model', file, '--top', '3', images], {
      encoding: 'utf8',
    });
    assert.equal(predict.status, 0, predict.stderr);
    const lines = predict.stdout.trim().split('\n');
    assert.equal(lines.length, 3);
    for (const [index, line] of lines.entries()) {
      const match = new RegExp(
        `^${images.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\[${index}\\]: (\\d) ([\\d.]+), (\\d) ([\\d.]+), (\\d) ([\\d.]+)$`,
      ).exec(line);
      assert.ok(match, line);
      const probabilities = [match[2], match[4], match[6]].map(Number);
      assert.ok(probabilities[0]! >= probabilities[1]! && probabilities[1]! >= probabilities[2]!, line);
    }
  });

  it('finetune --save: the model with its new head and the data’s class names', () => {
    const file = path.join(temporary, 'finetuned.safetensors');
    const run = spawnSync(
      process.execPath,
      [
        cli,
        'finetune',
        '--no-track',
        '--quiet',
        '--from',
        path.join(repositoryRoot, 'pretrained', 'seed-cnn-fashion-mnist.safetensors'),
        '--strategy',
        'headOnly',
        '--per-class',
        '3',
        '--epochs',
        '1',
        '--classes',
        '0,1,2',
        '--save',
        file,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(run.status, 0, run.stderr);
    const { model, extras, metadata } = loadModel(file);
    assert.deepEqual(extras, { inputShape: [1, 28, 28], classNames: ['0', '1', '2'] });
    assert.equal(metadata.strategy, 'headOnly');
    assert.deepEqual((model as Sequential).layers.at(-1)!.constructor, Dense);
    assert.equal(((model as Sequential).layers.at(-1) as Dense).outFeatures, 3);
  });
});
