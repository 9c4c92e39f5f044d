/** Bad input gets a clear error naming the layer, tensor or field with expected vs actual values. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import {
  Adam,
  conv2d,
  Conv2d,
  crossEntropy,
  Dense,
  loadWeights,
  matmul,
  modelFromConfig,
  randn,
  saveWeights,
  seedCnn,
  SGD,
  ShapeError,
  StateDictError,
  Tensor,
  tensor,
  zeros,
  type LayerConfig,
} from '../src/index.js';

const temporary = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-errors-'));

describe('shape errors name the layer and expected vs actual', () => {
  it('a convolution fed the wrong number of channels', () => {
    const model = seedCnn({ channels: [8, 16] });
    assert.throws(
      () => model.forward(zeros([2, 3, 28, 28])),
      (error: Error) =>
        error instanceof ShapeError &&
        /layer 0 Conv2d\(1→8/.test(error.message) &&
        /expected 1 input channels/.test(error.message) &&
        /\[2, 3, 28, 28\]/.test(error.message),
    );
  });
  it('a dense layer fed the wrong number of features', () => {
    assert.throws(
      () => new Dense(10, 4).forward(zeros([3, 12])),
      /Dense: expected input \[batch, 10\].*got \[3, 12\]/,
    );
  });
  it('matmul with mismatched inner dimensions', () => {
    assert.throws(
      () => matmul(zeros([2, 3]), zeros([4, 5])),
      /matmul: expected \[M, K\] · \[K, N\], got \[2, 3\] · \[4, 5\]/,
    );
  });
  it('an input too small for the kernel', () => {
    assert.throws(() => conv2d(zeros([1, 1, 2, 2]), zeros([1, 1, 3, 3]), null), /too small for a 3×3 kernel/);
  });
  it('a tensor whose data does not fit its shape', () => {
    assert.throws(
      () => new Tensor(new Float32Array(5), [2, 3]),
      /shape \[2, 3\] needs 6 elements, the data has 5/,
    );
    assert.throws(() => tensor([[1, 2], [3]]), /ragged/);
  });
  it('cross-entropy targets out of range or of the wrong count', () => {
    assert.throws(
      () => crossEntropy(zeros([2, 3]), [0, 3]),
      /target 1 is 3, expected a class index in \[0, 2\]/,
    );
    assert.throws(() => crossEntropy(zeros([2, 3]), [0]), /2 rows of logits but 1 targets/);
  });
});

describe('configuration errors', () => {
  it('an unknown activation name', () => {
    assert.throws(
      () => new Dense(2, 2, { activation: 'relux' as never }),
      /Dense: unknown activation 'relux'; expected one of none, relu/,
    );
  });
  it('an unknown layer type in a config', () => {
    const layers = [
      { type: 'conv2d', filters: 4, kernel: 3 },
      { type: 'maxpool' },
    ] as unknown as LayerConfig[];
    assert.throws(
      () => modelFromConfig(layers, [1, 8, 8]),
      /layer 1 \(maxpool\): unknown layer type 'maxpool'/,
    );
  });
  it('a missing field in a config', () => {
    const layers = [{ type: 'conv2d', kernel: 3 }] as unknown as LayerConfig[];
    assert.throws(
      () => modelFromConfig(layers, [1, 8, 8]),
      /layer 0 \(conv2d\): field 'filters' must be a number/,
    );
  });
  it('bad optimizer settings are rejected in the constructor', () => {
    const parameters = new Dense(2, 2).parameters();
    assert.throws(() => new Adam(parameters, { lr: -1 }), /Adam: lr must be a finite number ≥ 0, got -1/);
    assert.throws(() => new Adam(parameters, { beta1: 1 }), /beta1 must be in \[0, 1\)/);
    assert.throws(() => new SGD(parameters, { nesterov: true }), /Nesterov momentum needs momentum > 0/);
  });
});

describe('weights that do not fit a model', () => {
  it('lists every offending tensor, expected vs got, and loads nothing', () => {
    const small = seedCnn({ channels: [8, 16], classes: 10 });
    const file = path.join(temporary, 'small.safetensors');
    saveWeights(small, file);
    const other = seedCnn({ channels: [8, 32], classes: 5 });
    const before = new Map([...other.stateDict()].map(([name, t]) => [name, t.data.slice()]));
    assert.throws(
      () => loadWeights(other, file),
      (error: Error) => {
        assert.ok(error instanceof StateDictError);
        assert.match(error.message, /nothing was loaded/);
        assert.match(
          error.message,
          /shape mismatch: '7.weight' expected \[32, 8, 3, 3\], got \[16, 8, 3, 3\]/,
        );
        assert.match(error.message, /shape mismatch: '16.weight' expected \[5, 32\], got \[10, 16\]/);
        assert.ok(error.problems.length >= 8, `every mismatch is listed (${error.problems.length})`);
        return true;
      },
    );
    for (const [name, t] of other.stateDict())
      assert.deepEqual(t.data, before.get(name), `${name} untouched`);
  });
  it('names missing and unexpected tensors', () => {
    const file = path.join(temporary, 'dense.safetensors');
    saveWeights(new Dense(3, 2), file);
    assert.throws(() => loadWeights(new Dense(3, 2, { bias: false }), file), /unexpected: 'bias'/);
    const withBias = new Dense(3, 2);
    saveWeights(new Dense(3, 2, { bias: false }), file);
    assert.throws(() => loadWeights(withBias, file), /missing: 'bias' \(expected shape \[2\]\)/);
  });
  it('a truncated file is reported as truncated, and the model keeps its weights', () => {
    const model = new Conv2d(2, 4, 3);
    const file = path.join(temporary, 'conv.safetensors');
    saveWeights(model, file);
    const bytes = fs.readFileSync(file);
    fs.writeFileSync(file, bytes.subarray(0, bytes.length - 10));
    const before = model.weight.data.slice();
    assert.throws(() => loadWeights(model, file), /truncated/);
    assert.deepEqual(model.weight.data, before);
  });
  it('a corrupt header is reported with the file name', () => {
    const file = path.join(temporary, 'corrupt.safetensors');
    const header = Buffer.from('{"weight": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]');
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(header.length));
    fs.writeFileSync(file, Buffer.concat([length, header, Buffer.alloc(8)]));
    assert.throws(
      () => loadWeights(new Dense(2, 1), file),
      (error: Error) => error.message.includes('corrupt.safetensors'),
    );
  });
  void randn;
});
