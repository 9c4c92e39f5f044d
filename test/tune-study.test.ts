/** Studies and trials: define-by-run suggestions, ask/tell, enqueued trials, failures, budgets, exports. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import {
  categoricalDistribution,
  contains,
  floatDistribution,
  fromUnit,
  GpSampler,
  GridSampler,
  intDistribution,
  MemoryStorage,
  NopPruner,
  RandomSampler,
  SqliteStorage,
  Study,
  toUnit,
  TpeSampler,
  TrialPruned,
  type Distribution,
  type FrozenTrial,
  type ParamValue,
} from '../src/tune/index.js';

const temporary = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-study-'));
after(() => fs.rmSync(temporary, { recursive: true, force: true }));

function quadratic(trial: { suggestFloat(name: string, low: number, high: number): number }): number {
  const x = trial.suggestFloat('x', -10, 10);
  const y = trial.suggestFloat('y', -10, 10);
  return (x - 2) ** 2 + (y + 1) ** 2;
}

describe('distributions', () => {
  it('validate their arguments and put values on their grids', () => {
    assert.throws(() => floatDistribution(1, 0), RangeError);
    assert.throws(() => floatDistribution(0, 1, { log: true }), /low > 0/);
    assert.throws(() => floatDistribution(1, 2, { log: true, step: 0.1 }), /together/);
    assert.throws(() => intDistribution(0, 10, { log: true }), /low >= 1/);
    assert.throws(() => categoricalDistribution([]), RangeError);
    assert.throws(() => categoricalDistribution(['a', 'a']), /distinct/);
    assert.equal(floatDistribution(0, 1, { step: 0.3 }).high, 0.9);
    assert.equal(intDistribution(1, 10, { step: 4 }).high, 9);
    assert.ok(contains(floatDistribution(0, 1, { step: 0.1 }), 0.30000000000000004));
    assert.ok(!contains(intDistribution(1, 9, { step: 2 }), 4));
  });

  it('map to the unit cube and back onto the same grid points, log ranges in log space', () => {
    const cases: [Distribution, number[]][] = [
      [floatDistribution(-5, 10), [-5, 0.3, 10]],
      [floatDistribution(1e-5, 1e-1, { log: true }), [1e-5, 1e-3, 0.1]],
      [floatDistribution(0, 1, { step: 0.25 }), [0, 0.25, 1]],
      [intDistribution(1, 9, { step: 2 }), [1, 5, 9]],
      [intDistribution(16, 512, { log: true }), [16, 64, 512]],
      [categoricalDistribution(['a', 'b', 'c']), [0, 1, 2]],
    ];
    for (const [distribution, values] of cases) {
      for (const value of values) {
        const u = toUnit(distribution, value);
        assert.ok(u >= 0 && u <= 1, `${value} → ${u}`);
        const back = fromUnit(distribution, u);
        assert.ok(
          Math.abs(back - value) <= 1e-9 * Math.max(1, Math.abs(value)),
          `${JSON.stringify(distribution)}: ${value} → ${u} → ${back}`,
        );
      }
    }
    assert.ok(Math.abs(toUnit(floatDistribution(1e-5, 1e-1, { log: true }), 1e-3) - 0.5) < 1e-12);
  });
});

describe('Study', () => {
  it('optimizes a define-by-run objective with conditional parameters of every kind', async () => {
    const study = await Study.create({
      sampler: new TpeSampler({ seed: 3, startupTrials: 5 }),
      pruner: new NopPruner(),
    });
    const seen = new Set<ParamValue>();
    await study.optimize(
      (trial) => {
        const kind = trial.suggestCategorical('kind', ['linear', 'log', 'int']);
        seen.add(kind);
        if (kind === 'linear') return Math.abs(trial.suggestFloat('a', -1, 1, { step: 0.05 }));
        if (kind === 'log') return Math.abs(Math.log10(trial.suggestFloat('b', 1e-4, 1, { log: true })) + 2);
        const n = trial.suggestInt('c', 1, 64, { log: true });
        return Math.abs(n - 8) / 8;
      },
      { nTrials: 40 },
    );
    const trials = await study.trials();
    assert.equal(trials.length, 40);
    assert.deepEqual([...seen].sort(), ['int', 'linear', 'log']);
    for (const trial of trials) {
      assert.equal(trial.state, 'complete');
      const expected = { linear: 'a', log: 'b', int: 'c' }[trial.params.kind as string]!;
      assert.deepEqual(Object.keys(trial.params).sort(), [expected, 'kind'].sort());
    }
    assert.ok((await study.bestValue()) < 0.1);
  });

  it('is reproducible with a seeded sampler', async () => {
    const run = async () => {
      const study = await Study.create({ sampler: new TpeSampler({ seed: 11 }) });
      await study.optimize(quadratic, { nTrials: 25 });
      return (await study.trials()).map((t) => [t.params.x, t.params.y]);
    };
    assert.deepEqual(await run(), await run());
  });

  it('returns the same value for a repeated suggest and rejects a conflicting kind', async () => {
    const study = await Study.create({ sampler: new RandomSampler({ seed: 1 }) });
    const trial = await study.ask();
    const x = trial.suggestFloat('x', 0, 1);
    assert.equal(trial.suggestFloat('x', 0, 1), x);
    assert.throws(() => trial.suggestCategorical('x', ['a']), TypeError);
    await study.tell(trial, x);
    const next = await study.ask();
    assert.throws(() => next.suggestInt('x', 0, 3), /is float/);
    await study.tell(next, { state: 'failed', error: 'gave up' });
    assert.throws(() => next.suggestFloat('y', 0, 1), /has finished/);
    await assert.rejects(study.tell(next, 1), /already been told/);
  });

  it('runs enqueued trials first with their fixed values, sampling the rest', async () => {
    const study = await Study.create({ direction: 'maximize', sampler: new RandomSampler({ seed: 2 }) });
    await study.enqueueTrial({ x: 0.5, y: 3 }, { userAttributes: { source: 'paper' } });
    await study.enqueueTrial({ x: 0.25 });
    const values: Record<string, ParamValue>[] = [];
    await study.optimize(
      (trial) => {
        const params = { x: trial.suggestFloat('x', 0, 1), y: trial.suggestInt('y', 0, 10) };
        values.push(params);
        return params.x;
      },
      { nTrials: 3 },
    );
    assert.deepEqual(values[0], { x: 0.5, y: 3 });
    assert.equal(values[1]!.x, 0.25);
    assert.ok(Number.isInteger(values[1]!.y));
    const trials = await study.trials();
    assert.equal(trials[0]!.userAttributes.source, 'paper');
    assert.equal((await study.bestTrial()).number, 0);
    const bad = await Study.create({ sampler: new RandomSampler({ seed: 2 }) });
    await bad.enqueueTrial({ x: 5 });
    await bad.optimize((trial) => trial.suggestFloat('x', 0, 1), { nTrials: 1 });
    const failed = (await bad.trials())[0]!;
    assert.equal(failed.state, 'failed');
    assert.match(failed.error!, /enqueued value 5 of 'x' is not in float \[0, 1\]/);
  });

  it('records failing, non-finite and pruned objectives and goes on', async () => {
    const study = await Study.create({ sampler: new RandomSampler({ seed: 4 }), pruner: new NopPruner() });
    await study.optimize(
      (trial) => {
        const x = trial.suggestFloat('x', 0, 1);
        if (trial.number === 1) throw new Error('out of memory (pretend)');
        if (trial.number === 2) return Number.NaN;
        if (trial.number === 3) {
          trial.report(0.7, 1);
          trial.report(0.6, 2);
          throw new TrialPruned();
        }
        return x;
      },
      { nTrials: 5 },
    );
    const trials = await study.trials();
    assert.deepEqual(
      trials.map((t) => t.state),
      ['complete', 'failed', 'failed', 'pruned', 'complete'],
    );
    assert.match(trials[1]!.error!, /out of memory \(pretend\)/);
    assert.match(trials[1]!.error!, /at /); // the stack is kept
    assert.match(trials[2]!.error!, /returned NaN/);
    assert.equal(trials[3]!.value, 0.6);
    assert.deepEqual(
      [...trials[3]!.intermediateValues],
      [
        [1, 0.7],
        [2, 0.6],
      ],
    );
  });

  it('supports ask and tell with explicit states', async () => {
    const study = await Study.create({ direction: 'maximize' });
    for (let i = 0; i < 4; i++) {
      const trial = await study.ask();
      const x = trial.suggestFloat('x', -1, 1);
      await study.tell(trial, i === 2 ? { state: 'pruned' } : -(x * x));
    }
    const states = (await study.trials()).map((t) => t.state);
    assert.deepEqual(states, ['complete', 'complete', 'pruned', 'complete']);
    const best = await study.bestTrial();
    for (const trial of await study.trials(['complete'])) assert.ok(best.value! >= trial.value!);
  });

  it('stops at a timeout, at a study-wide budget and when a grid is covered', async () => {
    const timed = await Study.create({ sampler: new RandomSampler({ seed: 5 }) });
    const started = performance.now();
    await timed.optimize(
      async (trial) => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        return trial.suggestFloat('x', 0, 1);
      },
      { timeout: 0.15 },
    );
    assert.ok(performance.now() - started < 1000);
    const count = (await timed.trials()).length;
    assert.ok(count >= 2 && count <= 10, `${count} trials`);

    const storage = new MemoryStorage();
    const shared = await Study.create({ name: 'budget', storage, sampler: new RandomSampler({ seed: 6 }) });
    const again = await Study.create({
      name: 'budget',
      storage,
      loadIfExists: true,
      sampler: new RandomSampler({ seed: 7 }),
    });
    await Promise.all([
      shared.optimize(quadratic, { totalTrials: 7 }),
      again.optimize(quadratic, { totalTrials: 7 }),
    ]);
    assert.equal((await shared.trials()).length, 7);

    const grid = await Study.create({
      sampler: new GridSampler({ x: [0, 1, 2], y: ['a', 'b'] }, { seed: 1 }),
    });
    await grid.optimize(
      (trial) => trial.suggestInt('x', 0, 2) + (trial.suggestCategorical('y', ['a', 'b']) === 'a' ? 0 : 10),
    );
    const points = (await grid.trials()).map((t) => `${t.params.x}${t.params.y}`).sort();
    assert.deepEqual(points, ['0a', '0b', '1a', '1b', '2a', '2b']);
  });

  it('fails the trial, and stops, when the sampler itself throws', async () => {
    const broken = new RandomSampler({ seed: 1 });
    broken.inferRelativeSearchSpace = () => ({ x: floatDistribution(0, 1) });
    broken.sampleRelative = () => {
      throw new Error('sampler bug');
    };
    const study = await Study.create({ sampler: broken });
    await assert.rejects(
      study.optimize((trial) => trial.suggestFloat('x', 0, 1), { nTrials: 3 }),
      /sampler bug/,
    );
    const [trial] = await study.trials();
    assert.equal(trial!.state, 'failed');
    assert.match(trial!.error!, /the sampler failed: Error: sampler bug/);
  });

  it('refuses a direction that disagrees with an existing study', async () => {
    const storage = new MemoryStorage();
    await Study.create({ name: 's', storage, direction: 'maximize' });
    await assert.rejects(
      Study.create({ name: 's', storage, direction: 'minimize', loadIfExists: true }),
      /direction maximize/,
    );
    await assert.rejects(Study.create({ name: 's', storage }), /already exists/);
    assert.equal((await Study.load('s', storage)).direction, 'maximize');
  });

  it('does not propose the same point twice to trials running at the same time (constant liar)', async () => {
    for (const sampler of [new TpeSampler({ seed: 8, constantLiar: true }), new GpSampler({ seed: 8 })]) {
      const study = await Study.create({ sampler });
      const objective = (x: number) => Math.abs(x - 20);
      await study.optimize((trial) => objective(trial.suggestInt('x', 0, 40)), { nTrials: 12 });
      // Four workers ask before any of them tells: each sees the others' planned points as pending.
      const running = [];
      for (let i = 0; i < 4; i++) running.push(await study.ask());
      const points = running.map((trial) => trial.suggestInt('x', 0, 40));
      assert.equal(new Set(points).size, 4, `${sampler.constructor.name} proposed ${JSON.stringify(points)}`);
      for (const trial of running) await study.tell(trial, objective(trial.parameters.x as number));
    }
  });

  it('runs asynchronous objectives concurrently in one process', async () => {
    const study = await Study.create({ sampler: new RandomSampler({ seed: 12 }) });
    let active = 0;
    let peak = 0;
    await study.optimize(
      async (trial) => {
        active++;
        peak = Math.max(peak, active);
        await new Promise((resolve) => setTimeout(resolve, 10));
        active--;
        return trial.suggestFloat('x', 0, 1);
      },
      { nTrials: 12, concurrency: 3 },
    );
    assert.equal(peak, 3);
    assert.deepEqual(
      (await study.trials()).map((t) => t.number),
      Array.from({ length: 12 }, (_, i) => i),
    );
  });

  it('exports trials as a table, CSV and JSON and persists them in SQLite', async () => {
    const storage = new SqliteStorage(path.join(temporary, 'export.db'));
    const study = await Study.create({
      name: 'export',
      storage,
      direction: 'maximize',
      sampler: new RandomSampler({ seed: 9 }),
      heartbeat: null,
    });
    await study.optimize(
      (trial) => {
        const optimizer = trial.suggestCategorical('optimizer', ['sgd', 'adam']);
        const lr = trial.suggestFloat('lr', 1e-4, 1, { log: true });
        trial.setUserAttribute('note', `${optimizer}, "quoted"`);
        if (trial.number === 2) throw new Error('diverged');
        return -Math.abs(Math.log10(lr) + 2);
      },
      { nTrials: 4 },
    );
    const table = await study.table();
    assert.deepEqual(table.columns.slice(0, 3), ['number', 'state', 'value']);
    assert.ok(
      table.columns.includes('params_lr') &&
        table.columns.includes('params_optimizer') &&
        table.columns.includes('user_note'),
    );
    assert.equal(table.rows.length, 4);
    const csv = await study.toCsv();
    const lines = csv.trim().split('\n');
    assert.equal(lines.length, 5);
    assert.match(lines[1]!, /^0,complete,/);
    assert.match(csv, /"sgd, ""quoted"""|"adam, ""quoted"""/);
    assert.match(lines[3]!, /,failed,.*Error: diverged$/);
    const bestNumber = (await study.bestTrial()).number;
    const json = JSON.parse(await study.toJson()) as {
      study: { name: string; direction: string };
      trials: FrozenTrial[];
    };
    assert.equal(json.study.name, 'export');
    assert.equal(json.trials.length, 4);
    assert.deepEqual(Object.keys(json.trials[0]!.distributions).sort(), ['lr', 'optimizer']);
    await storage.close();
    const reopened = new SqliteStorage(path.join(temporary, 'export.db'));
    const loaded = await Study.load('export', reopened, { heartbeat: null });
    assert.equal((await loaded.trials()).length, 4);
    assert.equal((await loaded.bestTrial()).number, bestNumber);
    await reopened.close();
  });
});
