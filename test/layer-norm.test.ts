/**
 * LayerNorm, the worked example of a composite layer (src/nn/layers/layernorm.ts): forward and
 * backward against PyTorch's nn.LayerNorm (cases in test/fixtures/torch-parity/layer-norm, written
 * by test/fixtures/generators/make_layer_norm_cases.py), on every backend, plus its names, shape
 * errors and its place in a Sequential.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  availableBackends,
  backendByName,
  Dense,
  LayerNorm,
  loadModel,
  manualSeed,
  mean,
  mul,
  randn,
  saveModel,
  readSafetensors,
  ReLU,
  Sequential,
  ShapeError,
  summary,
  Tensor,
  withBackend,
} from '../src/index.js';

const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const casesDirectory = path.resolve(repositoryRoot, 'test', 'fixtures', 'torch-parity', 'layer-norm');
const cases = fs
  .readdirSync(casesDirectory)
  .filter((name) => name.endsWith('.safetensors'))
  .sort();

interface LayerNormCase {
  normalized_shape: number[];
  eps: number;
  elementwise_affine: boolean;
  tolerance: { rtol: number; atol: number };
}

/** Fails naming the tensor and the worst element unless |ours − ref| ≤ atol + rtol·|ref| everywhere. */
function assertClose(
  name: string,
  ours: ArrayLike<number>,
  ref: ArrayLike<number>,
  tolerance: LayerNormCase['tolerance'],
) {
  assert.equal(ours.length, ref.length, `${name}: ${ours.length} values, the reference has ${ref.length}`);
  for (let i = 0; i < ref.length; i++) {
    const error = Math.abs(ours[i]! - ref[i]!);
    assert.ok(
      error <= tolerance.atol + tolerance.rtol * Math.abs(ref[i]!),
      `${name}[${i}]: ${ours[i]} vs PyTorch ${ref[i]} (error ${error})`,
    );
  }
}

describe('LayerNorm against PyTorch', () => {
  it('finds the cases', () => assert.equal(cases.length, 3));
  for (const backendName of availableBackends()) {
    for (const file of cases) {
      it(`${file} on ${backendName}`, () => {
        const { tensors, metadata } = readSafetensors(path.join(casesDirectory, file));
        const meta = JSON.parse(metadata.case!) as LayerNormCase;
        const get = (name: string) => {
          const entry = tensors.get(name)!;
          return new Tensor(Float32Array.from(entry.data as Float32Array), [...entry.shape]);
        };
        withBackend(backendByName(backendName), () => {
          const layer = new LayerNorm(meta.normalized_shape, {
            eps: meta.eps,
            elementwiseAffine: meta.elementwise_affine,
          });
          if (meta.elementwise_affine) {
            layer.weight!.data.set(get('weight').data);
            layer.bias!.data.set(get('bias').data);
          } else {
            assert.deepEqual(layer.parameters(), []);
          }
          const x = get('x');
          x.requiresGrad = true;
          const y = layer.call(x);
          assert.deepEqual(y.shape, get('y').shape);
          assertClose('y', y.data, get('y').data, meta.tolerance);
          y.backward(get('grad_y'));
          assertClose('grad_x', x.grad!.data, get('grad_x').data, meta.tolerance);
          if (meta.elementwise_affine) {
            assertClose('grad_weight', layer.weight!.grad!.data, get('grad_weight').data, meta.tolerance);
            assertClose('grad_bias', layer.bias!.grad!.data, get('grad_bias').data, meta.tolerance);
          }
        });
      });
    }
  }
});

describe('LayerNorm as a layer', () => {
  it("has PyTorch's parameter names and shapes, and a config", () => {
    const layer = new LayerNorm([4, 5]);
    assert.deepEqual(
      [...layer.stateDict()].map(([name, tensor]) => [name, tensor.shape]),
      [
        ['weight', [4, 5]],
        ['bias', [4, 5]],
      ],
    );
    assert.deepEqual(layer.config(), { normalizedShape: [4, 5], eps: 1e-5, elementwiseAffine: true });
    assert.equal(layer.describe(), 'LayerNorm([4, 5])');
  });

  it('refuses an input whose last axes are not normalizedShape, and a bad shape', () => {
    assert.throws(() => new LayerNorm(8).call(randn([2, 7])), ShapeError);
    assert.throws(() => new LayerNorm([3, 4]).call(randn([4])), ShapeError);
    assert.throws(() => new LayerNorm([]), RangeError);
    assert.throws(() => new LayerNorm(0), RangeError);
  });

  it('trains inside a Sequential and shows in summary()', () => {
    manualSeed(2);
    const model = new Sequential(new Dense(6, 8), new LayerNorm(8), new ReLU(), new Dense(8, 2));
    const x = randn([5, 6]);
    const loss = mean(mul(model.call(x), model.call(x)));
    loss.backward();
    for (const [name, parameter] of model.namedParameters())
      assert.ok(parameter.grad !== null && parameter.grad.data.some((value) => value !== 0), name);
    const rows = summary(model, [6]).rows;
    assert.deepEqual(
      rows.map((row) => [row.description, row.trainableParameters]),
      [
        ['Dense(6→8)', 56],
        ['LayerNorm([8])', 16],
        ['ReLU', 0],
        ['Dense(8→2)', 18],
      ],
    );
  });
});

describe('LayerNorm in a model file', () => {
  it('saves and loads by name, with its configuration and weights', () => {
    manualSeed(3);
    const model = new Sequential(new Dense(6, 8), new LayerNorm(8, { eps: 1e-3 }), new Dense(8, 2));
    const layer = model.children()[1] as LayerNorm;
    layer.weight!.data.set(randn([8]).data);
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-layernorm-'));
    const file = path.join(directory, 'model.safetensors');
    saveModel(model, file);
    const loaded = loadModel(file).model as Sequential;
    const again = loaded.children()[1] as LayerNorm;
    assert.ok(again instanceof LayerNorm);
    assert.deepEqual(again.config(), { normalizedShape: [8], eps: 1e-3, elementwiseAffine: true });
    const x = randn([3, 6]);
    assert.deepEqual([...loaded.call(x).data], [...model.call(x).data]);
    fs.rmSync(directory, { recursive: true, force: true });
  });
});
