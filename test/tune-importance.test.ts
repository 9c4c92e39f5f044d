/**
 * Parameter importance (src/tune/importance.ts): on functions whose answer is known, from as few as
 * 8 to 10 trials, the parameter that drives the objective ranks first; an interaction counts; log
 * and categorical parameters are measured in their own terms; the numbers are reproducible.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Random } from '../src/index.js';
import { parameterImportance, type ImportanceParameter } from '../src/tune/importance.js';

function uniform(name: string, values: number[], low = 0, high = 1): ImportanceParameter {
  return { name, kind: 'float', log: false, low, high, choices: null, values };
}

/** `count` random points in [0, 1) per parameter, from a seed. */
function draws(seed: number, count: number, parameters: number): number[][] {
  const random = new Random(seed);
  return Array.from({ length: parameters }, () => Array.from({ length: count }, () => random.next()));
}

test('one dominant parameter ranks first from 8 trials, on many different draws', () => {
  // y = 10·a + b + noise-free nothing from c: a explains ~99% of the variance.
  let first = 0;
  const seeds = 40;
  for (let seed = 1; seed <= seeds; seed++) {
    const [a, b, c] = draws(seed, 8, 3) as [number[], number[], number[]];
    const y = a.map((v, i) => 10 * v + b[i]!);
    const result = parameterImportance([uniform('a', a), uniform('b', b), uniform('c', c)], y);
    if (result.parameters[0]!.name === 'a') first++;
    assert.equal(result.trials, 8);
    const sum = result.parameters.reduce((s, p) => s + p.importance, 0);
    assert.ok(Math.abs(sum - 1) < 1e-9, `importances sum to ${sum}`);
  }
  // Random draws of 8 points can hide a: allow one in twenty.
  assert.ok(first >= seeds - 2, `a ranked first in ${first} of ${seeds} draws`);
});

test('with 10 trials the dominant parameter takes most of the variance and the idle one little', () => {
  const [a, b, c] = draws(11, 10, 3) as [number[], number[], number[]];
  const y = a.map((v, i) => Math.sin(3 * v) * 5 + 0.3 * b[i]!);
  const { parameters } = parameterImportance([uniform('c', c), uniform('b', b), uniform('a', a)], y);
  assert.equal(parameters[0]!.name, 'a');
  assert.ok(parameters[0]!.importance > 0.6, JSON.stringify(parameters));
  const idle = parameters.find((p) => p.name === 'c')!;
  assert.ok(idle.importance < 0.2, JSON.stringify(parameters));
});

test('an interaction counts: a parameter that matters only through another one ranks above an idle one', () => {
  // y = (a − ½)·sign(b − ½): a alone averages to zero over b, and so does b over a, so neither has a
  // main effect; both have a total effect and c has none.
  let ranked = 0;
  const seeds = 20;
  for (let seed = 1; seed <= seeds; seed++) {
    const [a, b, c] = draws(100 + seed, 60, 3) as [number[], number[], number[]];
    const y = a.map((v, i) => (v - 0.5) * (b[i]! > 0.5 ? 1 : -1));
    const { parameters } = parameterImportance([uniform('a', a), uniform('b', b), uniform('c', c)], y);
    if (parameters[2]!.name === 'c') ranked++;
    const byName = Object.fromEntries(parameters.map((p) => [p.name, p]));
    assert.ok(byName.a!.totalEffect > byName.a!.mainEffect, JSON.stringify(parameters));
  }
  assert.ok(ranked >= seeds - 2, `the idle parameter ranked last in ${ranked} of ${seeds} draws`);
});

test('a dominant parameter with an interaction on top ranks first from 10 trials', () => {
  let first = 0;
  const seeds = 30;
  for (let seed = 1; seed <= seeds; seed++) {
    const [a, b, c] = draws(200 + seed, 10, 3) as [number[], number[], number[]];
    // a drives y, and how strongly depends on b.
    const y = a.map((v, i) => v * (4 + 3 * b[i]!) + 0.2 * c[i]!);
    const { parameters } = parameterImportance([uniform('a', a), uniform('b', b), uniform('c', c)], y);
    if (parameters[0]!.name === 'a') first++;
  }
  assert.ok(first >= seeds - 1, `a ranked first in ${first} of ${seeds} draws`);
});

test('a log-scale learning rate is judged in its logarithm; a categorical choice by its groups', () => {
  // 9 trials: lr uniform in log10 over 1e-5..1, the objective a bowl in log10(lr) around 1e-3;
  // batch size a categorical of four choices with a small effect; dropout idle.
  const random = new Random(5);
  const count = 9;
  const lr = Array.from({ length: count }, () => 10 ** (-5 + 5 * random.next()));
  const batch = Array.from({ length: count }, () => Math.floor(random.next() * 4));
  const dropout = Array.from({ length: count }, () => random.next() * 0.5);
  const y = lr.map((v, i) => (Math.log10(v) + 3) ** 2 + 0.2 * (batch[i] === 3 ? 1 : 0));
  const parameters: ImportanceParameter[] = [
    { name: 'lr', kind: 'float', log: true, low: 1e-5, high: 1, choices: null, values: lr },
    {
      name: 'batchSize',
      kind: 'categorical',
      log: false,
      low: null,
      high: null,
      choices: ['16', '32', '64', '128'],
      values: batch,
    },
    uniform('dropout', dropout, 0, 0.5),
  ];
  const result = parameterImportance(parameters, y);
  assert.equal(result.parameters[0]!.name, 'lr', JSON.stringify(result.parameters));
  assert.ok(result.parameters[0]!.importance > 0.5, JSON.stringify(result.parameters));
  // A categorical that alone decides the objective gets all of it.
  // (12 trials, each choice three times)
  const evenly = Array.from({ length: 12 }, (_, i) => i % 4);
  const choiceOnly = parameterImportance(
    [
      { ...parameters[0]!, values: evenly.map(() => 10 ** (-5 + 5 * random.next())) },
      { ...parameters[1]!, values: evenly },
      { ...parameters[2]!, values: evenly.map(() => random.next() * 0.5) },
    ],
    evenly.map((b) => [3, 1, 4, 1][b]!),
  );
  assert.equal(choiceOnly.parameters[0]!.name, 'batchSize');
  assert.ok(choiceOnly.parameters[0]!.importance > 0.85, JSON.stringify(choiceOnly.parameters));
});

test('the same trials give the same numbers; pruned, failed and conditional trials are handled', () => {
  const [a, b] = draws(3, 12, 2) as [number[], number[]];
  const y: (number | null)[] = a.map((v, i) => 3 * v + b[i]!);
  y[4] = null; // a pruned or failed trial: no objective value
  const parameters = [uniform('a', a), uniform('b', b)];
  const once = parameterImportance(parameters, y);
  assert.deepEqual(parameterImportance(parameters, y), once);
  assert.equal(once.trials, 11);
  // A parameter some trials lack (a conditional space) is listed, not rated.
  const momentum_ = uniform('momentum', []);
  const partial = { ...momentum_, values: a.map((v, i) => (i % 2 === 0 ? v : null)) };
  const withPartial = parameterImportance([...parameters, partial], y);
  const momentum = withPartial.parameters.find((p) => p.name === 'momentum')!;
  assert.equal(momentum.rated, false);
  assert.equal(momentum.importance, 0);
  // Nothing explains a constant objective, and one trial explains nothing.
  const flat = parameterImportance(
    parameters,
    a.map(() => 0.5),
  );
  assert.ok(flat.parameters.every((p) => p.importance === 0));
  assert.ok(parameterImportance(parameters, [1]).parameters.every((p) => p.importance === 0));
});

test('a large study is fitted too (trees see at most 256 trials and grow at most 32 leaves)', () => {
  const [a, b, c, d] = draws(9, 10_000, 4) as [number[], number[], number[], number[]];
  const y = a.map((v, i) => Math.sin(6 * v) + 0.2 * b[i]!);
  const result = parameterImportance([uniform('a', a), uniform('b', b), uniform('c', c), uniform('d', d)], y);
  assert.equal(result.parameters[0]!.name, 'a');
  assert.equal(result.parameters[1]!.name, 'b');
});
