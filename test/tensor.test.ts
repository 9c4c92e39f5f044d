/** Tensors and the autograd engine's bookkeeping. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  add,
  crossEntropy,
  isGradientEnabled,
  linear,
  mul,
  noGrad,
  relu,
  reshape,
  sum,
  tensor,
  Tensor,
  zeros,
} from '../src/index.js';

describe('Tensor', () => {
  it('builds from nested arrays and returns them', () => {
    const t = tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    assert.deepEqual(t.shape, [2, 3]);
    assert.equal(t.dtype, 'float32');
    assert.deepEqual(t.toArray(), [
      [1, 2, 3],
      [4, 5, 6],
    ]);
    assert.equal(tensor(7).item(), 7);
    assert.equal(tensor([1, 2], { dtype: 'float64' }).dtype, 'float64');
  });
  it('reshape shares the data and rejects sizes that do not fit', () => {
    const t = tensor([1, 2, 3, 4, 5, 6]);
    const r = reshape(t, [3, -1]);
    assert.deepEqual(r.shape, [3, 2]);
    assert.equal(r.data, t.data);
    assert.throws(() => reshape(t, [4, -1]), /cannot view a tensor of shape \[6\]/);
  });
  it('the README example: a dense map, ReLU and cross-entropy, differentiated', () => {
    const x = tensor([
      [1, 2],
      [3, 4],
    ]);
    const w = tensor(
      [
        [0.1, -0.2],
        [0.3, 0.4],
        [0.5, 0.6],
      ],
      { requiresGrad: true },
    );
    const loss = crossEntropy(relu(linear(x, w, null)), [2, 0]);
    loss.backward();
    assert.deepEqual(w.grad!.shape, [3, 2]);
    assert.ok(Number.isFinite(loss.item()));
  });
});

describe('autograd', () => {
  it('accumulates gradients across backward calls until cleared, as PyTorch does', () => {
    const a = tensor([1, 2, 3], { requiresGrad: true });
    sum(mul(a, a)).backward();
    assert.deepEqual(Array.from(a.grad!.data), [2, 4, 6]);
    sum(mul(a, a)).backward();
    assert.deepEqual(Array.from(a.grad!.data), [4, 8, 12]);
  });
  it('sums gradients of a tensor used several times', () => {
    const a = tensor([2], { requiresGrad: true });
    const b = add(mul(a, a), a); // d/da (a² + a) = 2a + 1
    b.backward();
    assert.deepEqual(Array.from(a.grad!.data), [5]);
  });
  it('records nothing under noGrad, and frees the graph after backward', () => {
    const a = tensor([1, 2], { requiresGrad: true });
    const b = noGrad(() => mul(a, a));
    assert.equal(b.requiresGrad, false);
    assert.equal(b.gradFn, null);
    assert.ok(isGradientEnabled());
    const c = sum(mul(a, a));
    assert.ok(c.gradFn !== null);
    c.backward();
    assert.equal(c.gradFn, null, 'the graph is released once used');
  });
  it('explains why backward cannot start', () => {
    assert.throws(() => zeros([2]).backward(), /does not require gradients/);
    const a = tensor([1, 2], { requiresGrad: true });
    assert.throws(
      () => mul(a, a).backward(new Tensor(new Float32Array(3), [3])),
      /gradient has 3 elements, the tensor has 2/,
    );
  });
});
