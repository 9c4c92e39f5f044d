/** Optimizers beyond the parity cases: groups, frozen parameters, state round trips, schedules. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  Adam,
  AdamW,
  cosineSchedule,
  Dense,
  oneCycleSchedule,
  Parameter,
  SGD,
  stepSchedule,
  Tensor,
} from '../src/index.js';

const close = (a: number, b: number, tolerance = 1e-9) =>
  assert.ok(Math.abs(a - b) <= tolerance, `${a} vs ${b}`);

function parameterWithGrad(values: number[], grad: number[]): Parameter {
  const p = new Parameter(new Tensor(Float32Array.from(values), [values.length]));
  p.grad = new Tensor(Float32Array.from(grad), [grad.length]);
  return p;
}

describe('optimizers', () => {
  it('parameter groups carry their own learning rates', () => {
    const a = parameterWithGrad([1], [1]);
    const b = parameterWithGrad([1], [1]);
    new SGD([
      { parameters: [a], lr: 0.1 },
      { parameters: [b], lr: 0.01 },
    ]).step();
    close(a.data[0]!, 0.9, 1e-7);
    close(b.data[0]!, 0.99, 1e-7);
  });
  it('frozen parameters get neither updates nor weight decay', () => {
    const frozen = parameterWithGrad([1, 2], [0.5, 0.5]);
    frozen.requiresGrad = false;
    const trained = parameterWithGrad([1, 2], [0.5, 0.5]);
    new AdamW([frozen, trained], { lr: 0.1, weightDecay: 0.5 }).step();
    assert.deepEqual(Array.from(frozen.data), [1, 2]);
    assert.notDeepEqual(Array.from(trained.data), [1, 2]);
  });
  it('state round-trips through stateDict so a resumed optimizer continues identically', () => {
    const run = (resume: boolean) => {
      const p = parameterWithGrad([0.5, -0.5, 1], [0.1, 0.2, -0.3]);
      let optimizer = new Adam([p], { lr: 0.01 });
      for (let step = 0; step < 3; step++) optimizer.step();
      if (resume) {
        const saved = optimizer.stateDict();
        optimizer = new Adam([p], { lr: 0.01 });
        optimizer.loadStateDict(saved);
      }
      for (let step = 0; step < 3; step++) optimizer.step();
      return Array.from(p.data);
    };
    assert.deepEqual(run(true), run(false));
  });
  it('scales group rates by schedule factors, keeping their ratio', () => {
    const layer = new Dense(2, 2);
    const optimizer = new SGD([
      { parameters: [layer.weight], lr: 1 },
      { parameters: [layer.bias!], lr: 0.1 },
    ]);
    optimizer.scaleLearningRates(0.5);
    assert.deepEqual(
      optimizer.groups.map((g) => g.settings.lr),
      [0.5, 0.05],
    );
  });
});

describe('learning-rate schedules', () => {
  it('step', () => {
    const s = stepSchedule(2, 0.1);
    assert.deepEqual(
      [0, 1, 2, 3, 4].map((e) => s.factor(e)).map((f) => Number(f.toPrecision(6))),
      [1, 1, 0.1, 0.1, 0.01],
    );
  });
  it('cosine goes from 1 to the minimum along a half cosine', () => {
    const s = cosineSchedule(10, 0.1);
    close(s.factor(0), 1);
    close(s.factor(5), 0.55);
    close(s.factor(10), 0.1);
  });
  it('one-cycle warms up to the peak, then anneals far below the start (PyTorch OneCycleLR)', () => {
    const total = 100;
    const s = oneCycleSchedule(total);
    close(s.factor(0), 1 / 25);
    const peakStep = Array.from({ length: total }, (_, i) => i).reduce(
      (best, i) => (s.factor(i) > s.factor(best) ? i : best),
      0,
    );
    assert.equal(peakStep, 29);
    close(s.factor(29), 1);
    close(s.factor(total - 1), 1 / 25 / 1e4);
    for (let i = 30; i < total; i++) assert.ok(s.factor(i) <= s.factor(i - 1));
  });
});
