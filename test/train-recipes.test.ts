/** Recipe tools: the learning-rate finder and ReduceLROnPlateau. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  Adam,
  BatchNorm1d,
  Dense,
  fit,
  findLearningRate,
  Flatten,
  learningRateFinderChart,
  manualSeed,
  defaultRandom,
  ReduceLROnPlateau,
  ReLU,
  Sequential,
  SGD,
  steepestPoint,
  valleyPoint,
} from '../src/index.js';
import { toyDataset } from './helpers/toy-data.js';

/** A model with parameters and buffers (batch-norm running statistics). */
function model(seed: number): Sequential {
  manualSeed(seed);
  return new Sequential(new Flatten(), new Dense(16, 8), new BatchNorm1d(8), new ReLU(), new Dense(8, 2));
}

/** Every bit of the model's state and the optimizer's state, as byte strings. */
function fingerprint(network: Sequential, optimizer: Adam): string[] {
  const bytes = (
    data: ArrayLike<number> & { buffer: ArrayBufferLike; byteOffset: number; byteLength: number },
  ) => Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('hex');
  const state = optimizer.stateDict();
  return [
    ...[...network.stateDict()].map(([name, tensor]) => `${name}:${bytes(tensor.data)}`),
    ...network
      .parameters()
      .map((parameter, i) => `grad ${i}:${parameter.grad === null ? 'null' : bytes(parameter.grad.data)}`),
    ...[...state.tensors].map(([key, value]) => `${key}:${bytes(value)}`),
    `steps:${state.stepCount}`,
    `groups:${JSON.stringify(state.groups)}`,
    `training:${network.training}`,
    `random:${JSON.stringify(defaultRandom().getState(), (_key, value: unknown) => (typeof value === 'bigint' ? String(value) : value))}`,
  ];
}

describe('learning-rate finder', () => {
  it('sweeps the rate exponentially, suggests one, and restores model and optimizer bit for bit', () => {
    const network = model(1);
    const data = toyDataset(256, 1);
    const optimizer = new Adam(network.parameters(), { lr: 1e-3 });
    // Some optimizer state first, so that restoring it is tested, not just creating it.
    fit(network, data, { optimizer, epochs: 1, batchSize: 32, progress: false });
    const before = fingerprint(network, optimizer);

    const sweep = findLearningRate(network, data, {
      optimizer,
      batchSize: 16,
      iterations: 60,
      startLr: 1e-5,
      endLr: 10,
    });
    assert.deepEqual(fingerprint(network, optimizer), before);

    assert.ok(sweep.learningRates.length >= 20 && sweep.learningRates.length <= 60);
    assert.ok(Math.abs(sweep.learningRates[0]! - 1e-5) < 1e-12);
    // Exponential: a constant ratio between neighbouring rates, (10 / 1e-5)^(1/59).
    const ratio = (10 / 1e-5) ** (1 / 59);
    for (let i = 1; i < sweep.learningRates.length; i++)
      assert.ok(Math.abs(sweep.learningRates[i]! / sweep.learningRates[i - 1]! - ratio) < 1e-9);
    assert.equal(sweep.suggestion, sweep.valley.learningRate);
    assert.ok(sweep.suggestion > 1e-5 && sweep.suggestion < 10);
    // Where the suggestion lies, the smoothed loss is below where the sweep started.
    assert.ok(sweep.valley.loss < sweep.losses[0]!, `valley loss ${sweep.valley.loss} vs ${sweep.losses[0]}`);
    const svg = learningRateFinderChart(sweep);
    assert.match(svg, /^<svg/);
    assert.match(svg, /log scale/);

    // Training after the finder gives the same bits as training without it.
    const trainAfter = (runFinder: boolean) => {
      const fresh = model(2);
      const freshOptimizer = new Adam(fresh.parameters(), { lr: 1e-2 });
      if (runFinder) findLearningRate(fresh, data, { optimizer: freshOptimizer, iterations: 30 });
      fit(fresh, data, { optimizer: freshOptimizer, epochs: 1, batchSize: 32, progress: false, seed: 4 });
      return fingerprint(fresh, freshOptimizer);
    };
    assert.deepEqual(trainAfter(true), trainAfter(false));
  });

  it('stops when the smoothed loss diverges and still restores everything', () => {
    const network = model(3);
    const optimizer = new Adam(network.parameters(), { lr: 1e-3 });
    const before = fingerprint(network, optimizer);
    const sweep = findLearningRate(network, toyDataset(128, 3), {
      optimizer,
      startLr: 1e-3,
      endLr: 1e12,
      iterations: 200,
      batchSize: 8,
    });
    assert.notEqual(sweep.stoppedBy, 'iterations');
    assert.ok(sweep.losses.length < 200);
    assert.deepEqual(fingerprint(network, optimizer), before);
  });

  it('the suggestions on a scripted curve: steepest fall per log rate, and midway down the longest fall', () => {
    const rates = [1e-4, 1e-3, 1e-2, 1e-1, 1, 10];
    const losses = [2.0, 1.9, 1.2, 0.9, 0.85, 3.0];
    // Slopes per unit of ln(rate): −0.1, −0.7, −0.3, −0.05, +2.15 (÷ ln 10); the steepest ends at 1e-2.
    assert.equal(steepestPoint(rates, losses), 2);
    // The longest strictly falling run is points 0–4; midway is point 2.
    assert.equal(valleyPoint(losses), 2);
    assert.equal(valleyPoint([5, 4, 6, 3, 2, 1, 7]), 2);
  });
});

describe('ReduceLROnPlateau', () => {
  /** Feeds `values` one per epoch and returns the rate after each. */
  function rates(values: readonly number[], options: ConstructorParameters<typeof ReduceLROnPlateau>[0]) {
    const network = new Sequential(new Dense(1, 1));
    const optimizer = new SGD(network.parameters(), { lr: 1 });
    const scheduler = new ReduceLROnPlateau(options);
    return values.map((value) => {
      scheduler.step(value, optimizer);
      return optimizer.groups[0]!.settings.lr;
    });
  }

  it('follows PyTorch on a scripted sequence: patience, relative threshold, cooldown and minLr', () => {
    // Checked against PyTorch 1.13's ReduceLROnPlateau (the same three sequences give the same rates,
    // bit for bit). By its rules (torch/optim/lr_scheduler.py, ReduceLROnPlateau.step): best 10 after
    // epoch 1; 9.5, 9.2, 9.1 are not below 10·(1 − 0.1) = 9, so the third bad epoch (> patience 2)
    // halves the rate at epoch 4 and starts a one-epoch cooldown. 8 at epoch 5 is a new best; then
    // 8 never beats 7.2: bad epochs at 6, 7, 8 → halve at 8; epoch 9 is cooldown (its bad epoch not
    // counted); 10, 11, 12 → halve at 12; 13 cooldown; 14, 15, 16 → 0.0625 clipped to minLr 0.1; and
    // at epoch 20 the reduction to 0.1 changes nothing.
    const values = [10, 9.5, 9.2, 9.1, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8];
    assert.deepEqual(
      rates(values, { mode: 'min', factor: 0.5, patience: 2, threshold: 0.1, cooldown: 1, minLr: 0.1 }),
      [
        1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.125, 0.125, 0.125, 0.125, 0.1, 0.1, 0.1, 0.1,
        0.1,
      ],
    );
  });

  it("mode 'max' with an absolute threshold, patience 0: the first epoch not better by 0.01 reduces", () => {
    assert.deepEqual(
      rates([0.5, 0.505, 0.52, 0.525, 0.6], {
        mode: 'max',
        thresholdMode: 'abs',
        threshold: 0.01,
        patience: 0,
      }),
      [1, 0.1, 0.1, 0.010000000000000002, 0.010000000000000002],
    );
  });

  it("defaults are PyTorch's: factor 0.1, patience 10, threshold 1e-4 relative", () => {
    const scheduler = new ReduceLROnPlateau();
    assert.deepEqual(
      [
        scheduler.factor,
        scheduler.patience,
        scheduler.threshold,
        scheduler.thresholdMode,
        scheduler.cooldown,
      ],
      [0.1, 10, 1e-4, 'rel', 0],
    );
    assert.throws(() => new ReduceLROnPlateau({ factor: 1 }), /factor must be in \[0, 1\)/);
    // A plateau of 11 equal values: the 11th bad epoch (> 10) reduces.
    const values = [1, ...new Array<number>(11).fill(1)];
    const result = rates(values, {});
    assert.equal(result[10], 1);
    assert.equal(result[11], 0.1);
  });

  it('as a fit callback it reads the monitored metric at each epoch end', () => {
    const network = model(4);
    const history = fit(network, toyDataset(64, 4), {
      optimizer: new SGD(network.parameters(), { lr: 0.5 }),
      epochs: 4,
      batchSize: 16,
      progress: false,
      // A threshold no epoch can beat: every epoch after the first is bad, patience 0 reduces each time.
      callbacks: [new ReduceLROnPlateau({ monitor: 'loss', patience: 0, threshold: 0.99, factor: 0.5 })],
    });
    // An epoch's logs hold the rate it trained with; the reduction at its end shows in the next.
    assert.deepEqual(
      history.epochs.map((epoch) => epoch.learningRate),
      [0.5, 0.5, 0.25, 0.125],
    );
    assert.throws(
      () =>
        fit(network, toyDataset(16, 5), {
          optimizer: new SGD(network.parameters(), { lr: 0.5 }),
          epochs: 1,
          progress: false,
          callbacks: [new ReduceLROnPlateau()],
        }),
      /monitors 'validationLoss', which this fit does not produce/,
    );
  });
});

describe('tensile lr-find', () => {
  const main = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'main.js');
  const run = (args: string[]) =>
    spawnSync(process.execPath, [main, 'lr-find', ...args], { encoding: 'utf8', timeout: 120_000 });

  it('prints the suggested and steepest rates and writes the figure', () => {
    const figure = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-lr-find-')), 'sweep.svg');
    const result = run(['--iterations', '12', '--channels', '4,4', '--batch-size', '16', '--out', figure]);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /sweep: (all 12 batches|stopped after \d+ batches)/);
    assert.match(result.stdout, /suggested learning rate \(valley\): \d\.\d\de[-+]\d+/);
    assert.match(result.stdout, /steepest descent: \d\.\d\de[-+]\d+/);
    assert.match(fs.readFileSync(figure, 'utf8'), /^<svg[^]*log scale/);
  });

  it('refuses a sweep that does not rise, as a usage error', () => {
    const result = run(['--start-lr', '1', '--end-lr', '0.5']);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /--end-lr \(0\.5\) must be above --start-lr \(1\)/);
    assert.equal(run(['--help']).status, 0);
  });
});
