/**
 * ResNets with torchvision's structure and names: parameter counts, names and shapes, the
 * PyTorch import cases (model_forward), weights out to PyTorch and back, building a model from a
 * weight file, and load errors that list every offending tensor.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  architectureOf,
  availableBackends,
  backendByName,
  crossEntropy,
  loadPretrained,
  loadWeights,
  manualSeed,
  noGrad,
  randn,
  resnet,
  resnet18,
  resnet50,
  saveWeights,
  seedCnn,
  StateDictError,
  summary,
  Tensor,
  withBackend,
  writeSafetensors,
  checkArchitectureShapes,
} from '../src/index.js';
import { formatCaseLine, runParityCase } from '../app/parity/index.js';

const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const importCases = path.resolve(repositoryRoot, 'test', 'fixtures', 'torch-import');
const generators = path.resolve(repositoryRoot, 'test', 'fixtures', 'generators');
const temporary = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-resnet-'));
const count = (model: { parameters(): { size: number }[] }) =>
  model.parameters().reduce((sum, p) => sum + p.size, 0);

/** PyTorch 1.13 is installed on the development machines; elsewhere the round trip is skipped. */
const torchAvailable =
  spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;

describe('ResNet builders', () => {
  it('have torchvision parameter counts and state_dict names', () => {
    // Built once each: initialising 11.7M and 25.6M parameters is the slow part of this file.
    const r18 = resnet18();
    assert.equal(count(r18), 11_689_512);
    const names = [...r18.stateDict().keys()];
    assert.equal(names.length, 102, 'torchvision resnet18 has 122 entries, 20 of them num_batches_tracked');
    assert.deepEqual(names.slice(0, 6), [
      'conv1.weight',
      'bn1.weight',
      'bn1.bias',
      'bn1.running_mean',
      'bn1.running_var',
      'layer1.0.conv1.weight',
    ]);
    assert.deepEqual(names.slice(-2), ['fc.weight', 'fc.bias']);
    const shapes = new Map([...r18.stateDict()].map(([name, t]) => [name, t.shape]));
    assert.deepEqual(shapes.get('layer2.0.downsample.0.weight'), [128, 64, 1, 1]);
    assert.deepEqual(shapes.get('layer4.1.bn2.running_var'), [512]);
    assert.equal(shapes.has('layer1.0.downsample.0.weight'), false, 'layer1 keeps its shape: no downsample');
    const r50 = resnet50({ classes: 4 });
    assert.equal(
      count(r50) - (2048 * 4 + 4) + (2048 * 1000 + 1000),
      25_557_032,
      'resnet50 with 1000 classes',
    );
    const shapes50 = new Map([...r50.stateDict()].map(([name, t]) => [name, t.shape]));
    assert.deepEqual(shapes50.get('layer1.0.downsample.0.weight'), [256, 64, 1, 1]);
    assert.deepEqual(architectureOf(shapes50).options, {
      block: 'bottleneck',
      layers: [3, 4, 6, 3],
      widths: [64, 128, 256, 512],
      classes: 4,
      inChannels: 3,
      stem: 'imagenet',
    });
  });

  it('map [N, C, H, W] to [N, classes] and train end to end', () => {
    manualSeed(1);
    const net = resnet({ layers: [1, 1], widths: [4, 8], classes: 3, inChannels: 1, stem: 'small' });
    const x = randn([2, 1, 12, 12]);
    const loss = crossEntropy(net.call(x), new Int32Array([0, 2]));
    loss.backward();
    for (const [name, parameter] of net.namedParameters())
      assert.ok(parameter.grad !== null, `${name} got no gradient`);
    assert.deepEqual(
      noGrad(() =>
        resnet18({ classes: 7, widths: [4, 8, 8, 16] })
          .eval()
          .call(randn([1, 3, 64, 64])),
      ).shape,
      [1, 7],
    );
    assert.match(summary(net, [1, 12, 12]).text, /Parameters: [\d,]+ \(trainable [\d,]+, frozen 0\)/);
  });

  it('zeroInitResidual starts every block at the identity', () => {
    const net = resnet({ layers: [1, 1], widths: [4, 8], classes: 2, zeroInitResidual: true });
    for (const [name, tensor] of net.stateDict())
      if (/layer\d\.\d\.bn2\.weight/.test(name))
        assert.ok(
          tensor.data.every((v) => v === 0),
          name,
        );
  });
});

describe('PyTorch import (model_forward cases)', () => {
  const cases = fs.existsSync(importCases)
    ? fs
        .readdirSync(importCases)
        .filter((name) => name.endsWith('.safetensors'))
        .sort()
    : [];
  it('finds the cases kept in the repository', () =>
    assert.ok(cases.length >= 1, `expected model_forward cases in ${importCases}`));
  for (const name of cases) {
    for (const backendName of availableBackends()) {
      it(`${name} on ${backendName}`, () => {
        const result = withBackend(backendByName(backendName), () =>
          runParityCase(path.join(importCases, name)),
        );
        assert.ok(result.passed, formatCaseLine(result));
      });
    }
  }

  it(
    'a wider and deeper case made by the generator kept in test/fixtures passes too',
    { skip: !torchAvailable && 'PyTorch is not installed' },
    () => {
      const file = path.join(temporary, 'resnet_generated.safetensors');
      const made = spawnSync(
        '/usr/bin/python3',
        [path.join(generators, 'make_resnet_case.py'), file, '21', '8,12,16,24', '2,1,2,1', '45', '6'],
        { encoding: 'utf8' },
      );
      assert.equal(made.status, 0, made.stderr);
      const result = runParityCase(file);
      assert.ok(result.passed, formatCaseLine(result));
    },
  );
});

describe('weights between tensile and PyTorch', () => {
  it(
    'a tensile ResNet saved as safetensors loads into PyTorch (torchvision names) and gives the same logits',
    { skip: !torchAvailable && 'PyTorch is not installed' },
    () => {
      manualSeed(3);
      const net = resnet({ layers: [1, 2, 1, 1], widths: [8, 8, 16, 16], classes: 5 });
      // Trained networks have non-trivial statistics; give the batch norms some.
      for (const [name, tensor] of net.stateDict()) {
        if (name.endsWith('running_mean'))
          tensor.data.forEach((_, i) => (tensor.data[i] = 0.1 * Math.sin(i + 1)));
        if (name.endsWith('running_var'))
          tensor.data.forEach((_, i) => (tensor.data[i] = 1 + 0.3 * Math.cos(i)));
      }
      const x = randn([2, 3, 40, 40]);
      const logits = noGrad(() => net.eval().call(x));
      const weights = path.join(temporary, 'to-torch.safetensors');
      saveWeights(net, weights);
      const inputs = path.join(temporary, 'to-torch-input.safetensors');
      writeSafetensors(inputs, { x: { shape: x.shape, data: x.data } });
      const script = `
import sys, json, struct, torch
sys.path.insert(0, ${JSON.stringify(generators)})
from make_resnet_case import ResNet
def read(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]; header = json.loads(f.read(n)); data = f.read()
    out = {}
    for name, e in header.items():
        if name == '__metadata__': continue
        b, end = e['data_offsets']
        out[name] = torch.frombuffer(bytearray(data[b:end]), dtype=torch.float32).reshape(e['shape'])
    return out
net = ResNet([8, 8, 16, 16], [1, 2, 1, 1], 5)
net.load_state_dict(read(${JSON.stringify(weights)}), strict=True)
net.eval()
with torch.no_grad(): y = net(read(${JSON.stringify(inputs)})['x'])
print(json.dumps(y.flatten().tolist()))
`;
      const run = spawnSync('/usr/bin/python3', ['-c', script], { encoding: 'utf8' });
      assert.equal(run.status, 0, run.stderr);
      const torchLogits = JSON.parse(run.stdout) as number[];
      torchLogits.forEach((value, i) =>
        assert.ok(
          Math.abs(value - logits.data[i]!) <= 1e-4 + 1e-3 * Math.abs(value),
          `logit ${i}: torch ${value}, tensile ${logits.data[i]}`,
        ),
      );
    },
  );

  it('a weight file alone rebuilds its architecture (seed CNN or ResNet) and loads', () => {
    manualSeed(5);
    const net = resnet({ layers: [1, 2], widths: [4, 8], classes: 3, inChannels: 1, stem: 'small' });
    const file = path.join(temporary, 'resnet.safetensors');
    saveWeights(net, file, { note: 'test' });
    const loaded = loadPretrained(file);
    assert.deepEqual(loaded.architecture, {
      family: 'resnet',
      options: { block: 'basic', layers: [1, 2], widths: [4, 8], classes: 3, inChannels: 1, stem: 'small' },
    });
    assert.equal(loaded.metadata.note, 'test');
    const x = randn([1, 1, 12, 12]);
    assert.deepEqual(
      [...noGrad(() => loaded.model.eval().call(x)).data],
      [...noGrad(() => net.eval().call(x)).data],
    );
    const shapesOf = (model: { stateDict(): Map<string, Tensor> }) =>
      new Map([...model.stateDict()].map(([name, t]) => [name, t.shape]));
    assert.deepEqual(architectureOf(shapesOf(seedCnn({ channels: [8, 16], classes: 5 }))), {
      family: 'seed-cnn',
      options: { inChannels: 1, channels: [8, 16], classes: 5, head: 'gap' },
    });
    assert.deepEqual(architectureOf(shapesOf(seedCnn({ channels: [8, 16], head: 'flatten' }))).options, {
      inChannels: 1,
      channels: [8, 16],
      classes: 10,
      head: 'flatten',
      inputSize: 28,
    });
    assert.throws(
      () => architectureOf(new Map([['weight', [2, 2]]])),
      /neither a seed CNN .* nor a torchvision-style ResNet/,
    );
  });

  it('a file whose deciding tensors do not have the shapes of its architecture is refused before building', () => {
    const shapesOf = (model: { stateDict(): Map<string, Tensor> }) =>
      new Map([...model.stateDict()].map(([name, t]) => [name, t.shape]));
    for (const model of [
      resnet18({ classes: 7 }),
      resnet({ block: 'bottleneck', layers: [2, 1], widths: [4, 8], classes: 3 }),
      resnet({ layers: [1, 2], widths: [4, 8], classes: 3, inChannels: 1, stem: 'small' }),
      seedCnn({ channels: [8, 16], classes: 5 }),
      seedCnn({ channels: [8, 16], head: 'flatten' }),
    ]) {
      const shapes = shapesOf(model);
      checkArchitectureShapes(shapes, architectureOf(shapes));
    }
    const wide = shapesOf(resnet18());
    wide.set('layer1.0.conv2.weight', [3000, 1, 1, 1]);
    assert.throws(
      () => checkArchitectureShapes(wide, architectureOf(wide)),
      /tensor 'conv1\.weight' has shape \[64, 3, 7, 7\]; a ResNet stem of width 3000 needs \[3000, 3, 7, 7\]/,
    );
    const manyBlocks = shapesOf(resnet18());
    for (let block = 2; block < 1000; block++) manyBlocks.set(`layer1.${block}.conv1.weight`, [1]);
    assert.throws(
      () => checkArchitectureShapes(manyBlocks, architectureOf(manyBlocks)),
      /layer1\.2\.conv1\.weight' has shape \[1\]/,
    );
    const seed = shapesOf(seedCnn({ channels: [8, 16] }));
    seed.set('16.weight', [1_000_000, 16]);
    seed.set('7.weight', [3000, 0, 3, 3]);
    assert.throws(
      () => checkArchitectureShapes(seed, architectureOf(seed)),
      /tensor '7\.weight' has shape \[3000, 0, 3, 3\]/,
    );

    // The issue's hostile file: 3,000-channel zero-element tensors, a few hundred bytes on disk.
    const file = path.join(temporary, 'hostile.safetensors');
    writeSafetensors(file, {
      '0.weight': { shape: [3000, 0, 3, 3], data: new Float32Array(0) },
      '7.weight': { shape: [3000, 0, 3, 3], data: new Float32Array(0) },
      '16.weight': { shape: [3000, 0], data: new Float32Array(0) },
    });
    assert.ok(fs.statSync(file).size < 400);
    const before = process.memoryUsage().rss;
    assert.throws(
      () => loadPretrained(file),
      /hostile\.safetensors: tensor '0\.weight' has shape \[3000, 0, 3, 3\]/,
    );
    assert.ok(process.memoryUsage().rss - before < 2 ** 26, 'no large model was built');
  });

  it('a mismatched file lists every offending tensor and loads nothing', () => {
    const file = path.join(temporary, 'ten-classes.safetensors');
    saveWeights(resnet({ layers: [1], widths: [4], classes: 10 }), file);
    const target = resnet({ layers: [1, 1], widths: [4, 8], classes: 2 });
    const before = [...target.stateDict()].map(([, t]) => t.data.slice());
    assert.throws(
      () => loadWeights(target, file),
      (error: Error) => {
        assert.ok(error instanceof StateDictError);
        assert.match(error.message, /nothing was loaded/);
        assert.ok(
          error.problems.includes("shape mismatch: 'fc.weight' expected [2, 8], got [10, 4]"),
          error.problems.join('\n'),
        );
        assert.ok(error.problems.includes("shape mismatch: 'fc.bias' expected [2], got [10]"));
        assert.ok(error.problems.some((problem) => problem.startsWith("missing: 'layer2.0.conv1.weight'")));
        assert.equal(
          error.problems.filter((problem) => problem.startsWith('missing:')).length,
          15,
          'every tensor of layer2 is listed',
        );
        return true;
      },
    );
    [...target.stateDict()].forEach(([name, t], i) => assert.deepEqual(t.data, before[i], `${name} changed`));
  });
});
