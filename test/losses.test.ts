/**
 * Losses: the doc-comment examples, targets in each accepted form, and the errors. Values against
 * PyTorch are in the parity cases (test/fixtures/torch-parity), gradients in gradcheck.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  binaryCrossEntropyWithLogits,
  crossEntropy,
  huberLoss,
  l1Loss,
  mseLoss,
  smoothL1Loss,
  Tensor,
  tensor,
} from '../src/index.js';

const tolerance = 1e-6;
function assertClose(actual: number, expected: number, what: string): void {
  assert.ok(
    Math.abs(actual - expected) <= tolerance * (1 + Math.abs(expected)),
    `${what}: ${actual} vs ${expected}`,
  );
}

describe('loss examples from the doc comments', () => {
  it('each gives the documented value', () => {
    assertClose(
      crossEntropy(tensor([[2, 0, 0]]), [0]).item(),
      -Math.log(Math.exp(2) / (Math.exp(2) + 2)),
      'ce',
    );
    assertClose(binaryCrossEntropyWithLogits(tensor([0]), tensor([1])).item(), Math.log(2), 'bce');
    assertClose(l1Loss(tensor([1, 2]), tensor([0, 4])).item(), 1.5, 'l1');
    assertClose(mseLoss(tensor([1, 2]), tensor([0, 4])).item(), 2.5, 'mse');
    assertClose(huberLoss(tensor([0, 3]), tensor([0.5, 0])).item(), (0.125 + 2.5) / 2, 'huber');
    assertClose(smoothL1Loss(tensor([0, 3]), tensor([0.5, 0])).item(), (0.125 + 2.5) / 2, 'smooth l1');
  });
});

describe('cross-entropy targets and options', () => {
  const logits = tensor([
    [1, 2, 0.5],
    [0.3, -1, 2],
    [0, 0, 1],
  ]);
  it('class indices as Int32Array, number[] and a rank-1 tensor give the same loss', () => {
    const expected = crossEntropy(logits, new Int32Array([1, 2, 0])).item();
    assertClose(crossEntropy(logits, [1, 2, 0]).item(), expected, 'number[]');
    assertClose(crossEntropy(logits, tensor([1, 2, 0])).item(), expected, 'tensor');
  });
  it('one-hot probability targets equal class indices; ignoreIndex −100 is the default', () => {
    const oneHot = tensor([
      [0, 1, 0],
      [0, 0, 1],
      [1, 0, 0],
    ]);
    assertClose(
      crossEntropy(logits, oneHot, { labelSmoothing: 0.1 }).item(),
      crossEntropy(logits, [1, 2, 0], { labelSmoothing: 0.1 }).item(),
      'one-hot',
    );
    const twoRows = crossEntropy(
      tensor([
        [1, 2, 0.5],
        [0, 0, 1],
      ]),
      [1, 0],
    );
    assertClose(crossEntropy(logits, [1, -100, 0]).item(), twoRows.item(), 'ignored row');
  });
  it('the weighted mean divides by the summed weights of the targets; "none" keeps rows', () => {
    const classWeights = [1, 3, 0.5];
    const rows = crossEntropy(logits, [1, 2, 0], { reduction: 'none' }).data;
    const weighted = crossEntropy(logits, [1, 2, 0], { classWeights, reduction: 'none' });
    assert.deepEqual(weighted.shape, [3]);
    assertClose(weighted.data[0]!, 3 * rows[0]!, 'row 0');
    const expectedMean = (3 * rows[0]! + 0.5 * rows[1]! + 1 * rows[2]!) / (3 + 0.5 + 1);
    assertClose(crossEntropy(logits, [1, 2, 0], { classWeights }).item(), expectedMean, 'weighted mean');
    assertClose(
      crossEntropy(logits, [1, 2, 0], { classWeights, reduction: 'sum' }).item(),
      3 * rows[0]! + 0.5 * rows[1]! + rows[2]!,
      'weighted sum',
    );
  });
  it('a batch whose rows are all ignored gives NaN with "mean", as in PyTorch', () => {
    assert.ok(Number.isNaN(crossEntropy(logits, [-100, -100, -100]).item()));
    assert.equal(crossEntropy(logits, [-100, -100, -100], { reduction: 'sum' }).item(), 0);
  });
  it('errors name the loss and the shapes', () => {
    assert.throws(
      () => crossEntropy(logits, tensor([[1, 0, 0]])),
      /crossEntropy: output \[3, 3\] and target \[1, 3\] differ/,
    );
    assert.throws(() => crossEntropy(logits, [0, 1, 0.5]), /target 2 is 0.5/);
    assert.throws(
      () => crossEntropy(logits, [0, 1, 2], { classWeights: [1, 2] }),
      /classWeights has 2 values, expected 3/,
    );
    assert.throws(
      () => crossEntropy(logits, [0, 1, 7], { ignoreIndex: 7, reduction: 'avg' as 'mean' }),
      /reduction must be/,
    );
    assert.throws(() => crossEntropy(logits, [0, 1, 5], { ignoreIndex: 7 }), /\[0, 2\] or ignoreIndex 7/);
  });
});

describe('binary cross-entropy with logits', () => {
  it('is finite and exact for logits far out, and posWeight scales the positive term', () => {
    const loss = binaryCrossEntropyWithLogits(tensor([100, -100]), tensor([0, 1]), { reduction: 'none' });
    assertClose(loss.data[0]!, 100, 'x = 100, y = 0');
    assertClose(loss.data[1]!, 100, 'x = −100, y = 1');
    const positive = binaryCrossEntropyWithLogits(tensor([[0.3]]), tensor([[1]]), { posWeight: [4] }).item();
    assertClose(positive, 4 * Math.log1p(Math.exp(-0.3)), 'posWeight');
  });
  it('a shape mismatch names both shapes and the loss', () => {
    const output = new Tensor(new Float32Array(40), [8, 5]);
    const target = new Tensor(new Float32Array(32), [8, 4]);
    assert.throws(
      () => binaryCrossEntropyWithLogits(output, target),
      /binaryCrossEntropyWithLogits: output \[8, 5\] and target \[8, 4\] differ/,
    );
    assert.throws(() => l1Loss(output, target), /l1Loss: output \[8, 5\] and target \[8, 4\] differ/);
    assert.throws(() => huberLoss(output, target), /huberLoss: output/);
    assert.throws(() => smoothL1Loss(output, target), /smoothL1Loss: output/);
    assert.throws(() => mseLoss(output, target), /mseLoss: output \[8, 5\] and target \[8, 4\] differ/);
  });
});

describe('regression losses', () => {
  it('Huber equals δ·smooth L1 with β = δ; smooth L1 with β = 0 is L1', () => {
    const output = tensor([0.1, -2, 0.7, 3]);
    const target = tensor([0, 0, 0, 0]);
    const huber = huberLoss(output, target, { delta: 0.5, reduction: 'none' }).data;
    const smooth = smoothL1Loss(output, target, { beta: 0.5, reduction: 'none' }).data;
    huber.forEach((value, i) => assertClose(value, 0.5 * smooth[i]!, `element ${i}`));
    assertClose(smoothL1Loss(output, target, { beta: 0 }).item(), l1Loss(output, target).item(), 'β = 0');
    assert.throws(() => huberLoss(output, target, { delta: 0 }), /delta must be a positive number/);
  });
});
