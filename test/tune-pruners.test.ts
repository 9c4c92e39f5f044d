/** Pruners judged on hand-made histories, and the pruning callback inside fit. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Dense, Flatten, Sequential, SGD, manualSeed, fit } from '../src/index.js';
import {
  HyperbandPruner,
  MedianPruner,
  PercentilePruner,
  PruningCallback,
  RandomSampler,
  Study,
  SuccessiveHalvingPruner,
  type FrozenTrial,
  type Pruner,
  type StudyView,
  type TrialState,
} from '../src/tune/index.js';
import { toyDataset } from './helpers/toy-data.js';

/** A trial that reported `values` at steps 1, 2, 3, ... */
function trial(number: number, state: TrialState, values: readonly number[]): FrozenTrial {
  return {
    id: number + 1,
    studyId: 1,
    number,
    state,
    value: state === 'complete' ? values[values.length - 1]! : null,
    params: {},
    distributions: {},
    intermediateValues: new Map(values.map((v, i) => [i + 1, v])),
    userAttributes: {},
    systemAttributes: {},
    error: null,
    worker: null,
    retryOf: null,
    startedAt: 0,
    completedAt: state === 'running' ? null : 1,
    heartbeatAt: 0,
  };
}

function view(trials: FrozenTrial[], direction: 'minimize' | 'maximize' = 'minimize'): StudyView {
  return { name: 'pruning', direction, trials };
}

describe('median and percentile pruning', () => {
  const complete = [
    trial(0, 'complete', [1.0, 0.8, 0.6]),
    trial(1, 'complete', [0.9, 0.7, 0.5]),
    trial(2, 'complete', [1.2, 1.0, 0.9]),
  ];

  it('prunes a trial whose best value is worse than the median of complete trials at the same step', () => {
    const pruner = new MedianPruner({ startupTrials: 3 });
    const bad = trial(3, 'running', [1.1, 0.95]);
    const good = trial(4, 'running', [0.95, 0.75]);
    assert.equal(pruner.prune(view([...complete, bad]), bad), true); // best 0.95 > median 0.8 at step 2
    assert.equal(pruner.prune(view([...complete, good]), good), false);
    // Its best so far counts, not its last value.
    const recovered = trial(5, 'running', [0.85, 0.9]);
    assert.equal(pruner.prune(view([...complete, recovered]), recovered), true);
    const lucky = trial(6, 'running', [0.7, 0.9]);
    assert.equal(pruner.prune(view([...complete, lucky]), lucky), false);
  });

  it('waits for startup trials and warm-up steps, and mirrors for maximization', () => {
    const bad = trial(3, 'running', [2, 2]);
    assert.equal(new MedianPruner({ startupTrials: 4 }).prune(view([...complete, bad]), bad), false);
    assert.equal(
      new MedianPruner({ startupTrials: 3, warmupSteps: 3 }).prune(view([...complete, bad]), bad),
      false,
    );
    // Judgements at steps 1, 3, 5, ...: step 2 is not one, step 1 is.
    assert.equal(
      new MedianPruner({ startupTrials: 3, intervalSteps: 2 }).prune(view([...complete, bad]), bad),
      false,
    );
    const badOnce = trial(3, 'running', [2]);
    assert.equal(
      new MedianPruner({ startupTrials: 3, intervalSteps: 2 }).prune(view([...complete, badOnce]), badOnce),
      true,
    );
    const accuracies = [
      trial(0, 'complete', [0.5, 0.7]),
      trial(1, 'complete', [0.6, 0.8]),
      trial(2, 'complete', [0.4, 0.6]),
    ];
    const weak = trial(3, 'running', [0.3, 0.65]);
    const strong = trial(4, 'running', [0.3, 0.75]);
    assert.equal(
      new MedianPruner({ startupTrials: 3 }).prune(view([...accuracies, weak], 'maximize'), weak),
      true,
    );
    assert.equal(
      new MedianPruner({ startupTrials: 3 }).prune(view([...accuracies, strong], 'maximize'), strong),
      false,
    );
    // Keeping the top quarter is stricter than keeping the top half.
    const middling = trial(5, 'running', [0.3, 0.72]);
    assert.equal(
      new PercentilePruner(25, { startupTrials: 3 }).prune(
        view([...accuracies, middling], 'maximize'),
        middling,
      ),
      true,
    );
  });
});

/**
 * Optuna's tests/pruners_tests/test_median.py and test_percentile.py, through ask/report/shouldPrune/tell.
 * Optuna's step numbers there are epoch indices (from 0) wherever warm-up or intervals matter; tensile
 * counts epochs done (from 1), so those cases report at Optuna's step + 1 and expect judgements at
 * Optuna's step + 1: the same epochs.
 */
describe("median pruner: Optuna's test cases", () => {
  const study = (pruner: Pruner, direction: 'minimize' | 'maximize' = 'minimize') =>
    Study.create({ direction, pruner, sampler: new RandomSampler({ seed: 0 }) });

  it('is not activated at a first trial', async () => {
    const s = await study(new MedianPruner({ startupTrials: 0, warmupSteps: 0 }));
    const t = await s.ask();
    t.report(1, 1);
    assert.equal(t.shouldPrune(), false);
  });

  for (const [direction, value] of [
    ['minimize', 2],
    ['maximize', 0.5],
  ] as const) {
    it(`prunes on intermediate values (${direction})`, async () => {
      const s = await study(new MedianPruner({ startupTrials: 0, warmupSteps: 0 }), direction);
      const first = await s.ask();
      first.report(1, 1);
      await s.tell(first, 1);
      const t = await s.ask();
      assert.equal(t.shouldPrune(), false); // nothing reported yet
      t.report(value, 1);
      assert.equal(t.shouldPrune(), true);
    });
  }

  it('prunes a trial whose values are all NaN and ignores NaN otherwise', () => {
    // tensile's report refuses non-finite values; the rule still holds for values read from storage.
    const complete = [trial(0, 'complete', [1])];
    const nan = trial(1, 'running', [NaN]);
    const pruner = new MedianPruner({ startupTrials: 0 });
    assert.equal(pruner.prune(view([...complete, nan]), nan), true);
    const partly = trial(2, 'running', [0.5, NaN]);
    assert.equal(pruner.prune(view([trial(0, 'complete', [1, 1]), partly]), partly), false);
  });

  it('waits for startup trials', async () => {
    const s = await study(new MedianPruner({ startupTrials: 2, warmupSteps: 0 }));
    let t = await s.ask();
    t.report(1, 1);
    await s.tell(t, 1);
    t = await s.ask();
    t.report(2, 1);
    assert.equal(t.shouldPrune(), false); // during the startup trials
    await s.tell(t, 2);
    t = await s.ask();
    t.report(3, 1);
    assert.equal(t.shouldPrune(), true);
  });

  it('leaves the first warmupSteps epochs alone', async () => {
    // Optuna: MedianPruner(0, 1), reports at steps 0 and 1, judged from step 1 (its second epoch).
    const s = await study(new MedianPruner({ startupTrials: 0, warmupSteps: 1 }));
    let t = await s.ask();
    t.report(1, 1);
    t.report(1, 2);
    await s.tell(t, 1);
    t = await s.ask();
    t.report(2, 1);
    assert.equal(t.shouldPrune(), false); // the first epoch is warm-up
    t.report(2, 2);
    assert.equal(t.shouldPrune(), true); // judged from the second epoch on
  });

  // [warmupSteps, intervalSteps, report every, epochs (0-based indices) judged] from Optuna's table.
  const intervalCases: [number, number, number, number[]][] = [
    [0, 1, 1, [0, 1, 2, 3, 4, 5]],
    [1, 1, 1, [1, 2, 3, 4, 5]],
    [1, 2, 1, [1, 3, 5]],
    [0, 3, 10, Array.from({ length: 29 }, (_, i) => i)],
    [2, 3, 10, Array.from({ length: 19 }, (_, i) => i + 10)],
    [0, 10, 3, [0, 1, 2, 12, 13, 14, 21, 22, 23]],
    [2, 10, 3, [3, 4, 5, 12, 13, 14, 24, 25, 26]],
  ];
  for (const [warmupSteps, intervalSteps, every, expected] of intervalCases) {
    it(`judges at the interval steps (warm-up ${warmupSteps}, interval ${intervalSteps}, a report every ${every})`, async () => {
      const s = await study(new MedianPruner({ startupTrials: 0, warmupSteps, intervalSteps }));
      const epochs = Math.max(...expected) + 1;
      let t = await s.ask();
      for (let i = 0; i < epochs; i++) t.report(0, i + 1);
      await s.tell(t, 0);
      t = await s.ask();
      const pruned: number[] = [];
      for (let i = 0; i < epochs; i++) {
        if (i % every === 0) t.report(2, i + 1);
        if (t.shouldPrune()) pruned.push(i + 1);
      }
      assert.deepEqual(
        pruned,
        expected.map((i) => i + 1),
      );
    });
  }

  it('needs minTrials complete trials at the step', async () => {
    const s = await study(
      new MedianPruner({ startupTrials: 2, warmupSteps: 0, intervalSteps: 1, minTrials: 2 }),
    );
    let t = await s.ask();
    t.report(4, 1);
    t.report(2, 2);
    await s.tell(t, 2);
    t = await s.ask();
    t.report(3, 1);
    await s.tell(t, 3);
    t = await s.ask();
    t.report(4, 1);
    t.report(3, 2);
    assert.equal(t.shouldPrune(), false); // one complete trial reported step 2
    await s.tell(t, 3);
    t = await s.ask();
    t.report(4, 1);
    t.report(3, 2);
    assert.equal(t.shouldPrune(), true);
  });

  for (const [direction, latest] of [
    ['minimize', 2.1],
    ['maximize', 3.9],
  ] as const) {
    it(`keeps the top quarter with PercentilePruner(25) (${direction})`, async () => {
      const s = await study(new PercentilePruner(25, { startupTrials: 0, warmupSteps: 0 }), direction);
      for (const v of [1, 2, 3, 4, 5]) {
        const t = await s.ask();
        t.report(v, 1);
        await s.tell(t, v);
      }
      const t = await s.ask();
      assert.equal(t.shouldPrune(), false);
      t.report(latest, 1);
      assert.equal(t.shouldPrune(), true);
    });
  }

  it('checks its settings as Optuna does', () => {
    for (const p of [0, 25, 100]) new PercentilePruner(p);
    for (const p of [-0.1, 100.1]) assert.throws(() => new PercentilePruner(p), RangeError);
    assert.throws(() => new MedianPruner({ startupTrials: -1 }), RangeError);
    assert.throws(() => new MedianPruner({ warmupSteps: -1 }), RangeError);
    assert.throws(() => new MedianPruner({ intervalSteps: 0 }), RangeError);
    assert.throws(() => new MedianPruner({ minTrials: 0 }), RangeError);
  });
});

describe('successive halving (asynchronous)', () => {
  const settings = { minResource: 1, reductionFactor: 2, minEarlyStoppingRate: 0 } as const;

  it('keeps the top 1/η at each rung it crosses, comparing with every trial that reached the rung', () => {
    const pruner = new SuccessiveHalvingPruner(settings);
    // Rungs at steps 1, 2, 4. Peers reached step 1 with 0.2, 0.4, 0.6 and step 2 with 0.1, 0.3.
    const peers = [
      trial(0, 'complete', [0.2, 0.1, 0.05, 0.04]),
      trial(1, 'pruned', [0.4, 0.3]),
      trial(2, 'pruned', [0.6]),
    ];
    const first = trial(3, 'running', [0.3]);
    // Step 1: competitors 0.2, 0.3, 0.4, 0.6 → keep the best 2 → 0.3 goes on.
    assert.equal(pruner.prune(view([...peers, first]), first), false);
    const second = trial(3, 'running', [0.3, 0.2]);
    // Step 2: competitors 0.1, 0.2, 0.3 → keep ⌊3/2⌋ = 1 → 0.2 is pruned.
    assert.equal(pruner.prune(view([...peers, second]), second), true);
    const third = trial(3, 'running', [0.3, 0.05]);
    assert.equal(pruner.prune(view([...peers, third]), third), false);
    // Step 3 crosses no rung, so nothing is judged even if later trials did better at rung 2.
    const between = trial(3, 'running', [0.3, 0.05, 0.5]);
    assert.equal(
      pruner.prune(view([...peers, between, trial(4, 'complete', [0.1, 0.01, 0.01])]), between),
      false,
    );
  });

  it("lets only the best through while fewer than η trials reached a rung, and waits for 'auto' resources", () => {
    const alone = trial(0, 'running', [0.5]);
    assert.equal(new SuccessiveHalvingPruner(settings).prune(view([alone]), alone), false);
    const worse = trial(1, 'running', [0.7]);
    assert.equal(new SuccessiveHalvingPruner(settings).prune(view([alone, worse]), worse), true);
    assert.equal(
      new SuccessiveHalvingPruner({ ...settings, bootstrapCount: 2 }).prune(view([alone, worse]), worse),
      false,
    );
    assert.equal(
      new SuccessiveHalvingPruner({ minResource: 'auto', reductionFactor: 2 }).prune(
        view([alone, worse]),
        worse,
      ),
      false,
    );
  });
});

describe('Hyperband', () => {
  it('has ⌊log_η(R/r)⌋ + 1 brackets, assigns trials by budget and compares only within a bracket', () => {
    const pruner = new HyperbandPruner({ minResource: 1, maxResource: 27, reductionFactor: 3 });
    assert.equal(pruner.bracketCount(27), 4);
    assert.equal(pruner.bracketCount(26), 3);
    const counts = [0, 0, 0, 0];
    for (let n = 0; n < 4000; n++) counts[pruner.bracketOf('study', n, 4)]!++;
    // Budgets ⌈4·3^s/(s+1)⌉ for s = 3, 2, 1, 0: 27, 12, 6, 4 of 49.
    const expected = [27, 12, 6, 4].map((b) => (b / 49) * 4000);
    counts.forEach((c, b) =>
      assert.ok(
        Math.abs(c - expected[b]!) < 0.15 * expected[b]! + 30,
        `bracket ${b}: ${c} vs ${expected[b]}`,
      ),
    );
    assert.equal(pruner.bracketOf('study', 7, 4), pruner.bracketOf('study', 7, 4));

    // Two trials of bracket 0 (first cut at step 1): the worse one is pruned there; a trial in another
    // bracket does not compete with them.
    const inBracket = (bracket: number) =>
      Array.from({ length: 200 }, (_, n) => n).filter((n) => pruner.bracketOf('pruning', n, 4) === bracket);
    const [a, b] = inBracket(0);
    const other = inBracket(1)[0]!;
    const leader = trial(a!, 'complete', [0.1, 0.1, 0.1]);
    const follower = trial(b!, 'running', [0.5]);
    const outsider = trial(other, 'complete', [0.01, 0.01, 0.01]);
    assert.equal(pruner.prune(view([leader, outsider, follower]), follower), true);
    const ahead = trial(b!, 'running', [0.05]);
    assert.equal(pruner.prune(view([leader, outsider, ahead]), ahead), false);
  });

  it('never judges a trial at maxResource steps: it has had its full budget', () => {
    // R = 3, η = 3: bracket 0 has rungs at steps 1 and 3, the last one on a full trial's last epoch.
    const pruner = new HyperbandPruner({ minResource: 1, maxResource: 3, reductionFactor: 3 });
    const [a, b] = Array.from({ length: 200 }, (_, n) => n).filter(
      (n) => pruner.bracketOf('pruning', n, 2) === 0,
    );
    const leader = trial(a!, 'complete', [0.5, 0.2, 0.1]);
    const atRung = trial(b!, 'running', [0.4, 0.3, 0.9]);
    assert.equal(pruner.prune(view([leader, atRung]), atRung), false);
    // The rung at step 1 is still judged.
    const first = trial(b!, 'running', [0.6]);
    assert.equal(pruner.prune(view([leader, first]), first), true);
    // 'auto': the first complete trial's last step (3 epochs) is the maximum.
    const auto = new HyperbandPruner({ minResource: 1, reductionFactor: 3 });
    assert.equal(auto.prune(view([leader, atRung]), atRung), false);
  });
});

describe('PruningCallback', () => {
  it('reports each epoch to the trial and ends fit with a pruned trial when the pruner says so', async () => {
    const stopAfterTwo: Pruner = { prune: (_study, t) => t.intermediateValues.size >= 2 };
    const study = await Study.create({
      direction: 'maximize',
      sampler: new RandomSampler({ seed: 1 }),
      pruner: stopAfterTwo,
    });
    let epochsRun = 0;
    await study.optimize(
      (t) => {
        manualSeed(1);
        const model = new Sequential(new Flatten(), new Dense(16, 2));
        const lr = t.suggestFloat('lr', 0.01, 0.5, { log: true });
        const history = fit(model, toyDataset(64, 1), {
          optimizer: new SGD(model.parameters(), { lr }),
          epochs: 5,
          batchSize: 16,
          validationData: toyDataset(32, 2),
          progress: false,
          callbacks: [
            { handle: (event) => void (event.type === 'epochEnd' && epochsRun++) },
            new PruningCallback(t),
          ],
        });
        return history.epochs.at(-1)!.validationAccuracy!;
      },
      { nTrials: 1 },
    );
    const [pruned] = await study.trials();
    assert.equal(pruned!.state, 'pruned');
    assert.deepEqual([...pruned!.intermediateValues.keys()], [1, 2]);
    assert.equal(pruned!.value, pruned!.intermediateValues.get(2));
    assert.equal(epochsRun, 2);
  });

  /** Runs one trial of `epochs` epochs with the callback; returns the trial and the steps judged. */
  async function fitTrial(epochs: number, prune: (step: number) => boolean) {
    const judged: number[] = [];
    const study = await Study.create({
      direction: 'maximize',
      sampler: new RandomSampler({ seed: 1 }),
      pruner: {
        prune: (_study, t) => {
          const step = Math.max(...t.intermediateValues.keys());
          judged.push(step);
          return prune(step);
        },
      },
    });
    await study.optimize(
      (t) => {
        manualSeed(1);
        const model = new Sequential(new Flatten(), new Dense(16, 2));
        const history = fit(model, toyDataset(64, 1), {
          optimizer: new SGD(model.parameters(), { lr: 0.1 }),
          epochs,
          batchSize: 16,
          validationData: toyDataset(32, 2),
          progress: false,
          callbacks: [new PruningCallback(t)],
        });
        return history.epochs.at(-1)!.validationAccuracy!;
      },
      { nTrials: 1 },
    );
    return { trial: (await study.trials())[0]!, judged };
  }

  it('reports at step = epochs done and never judges the last epoch: a trial that got there completes', async () => {
    const { trial: done, judged } = await fitTrial(4, (step) => step >= 4);
    assert.deepEqual([...done.intermediateValues.keys()], [1, 2, 3, 4]);
    assert.deepEqual(judged, [1, 2, 3]);
    assert.equal(done.state, 'complete');
    assert.equal(done.value, done.intermediateValues.get(4));
  });

  it('with warmupSteps: 1 judges a trial from its second epoch on', async () => {
    // One complete trial did better at every epoch; a worse trial is pruned after epoch 2, not 1.
    const study = await Study.create({
      direction: 'maximize',
      sampler: new RandomSampler({ seed: 1 }),
      pruner: new MedianPruner({ startupTrials: 1, warmupSteps: 1 }),
    });
    const leader = await study.ask();
    for (const [step, value] of [
      [1, 0.9],
      [2, 0.95],
      [3, 0.97],
    ] as const)
      leader.report(value, step);
    await study.tell(leader, 0.97);
    await study.optimize(
      (t) => {
        manualSeed(1);
        const model = new Sequential(new Flatten(), new Dense(16, 2));
        fit(model, toyDataset(64, 1), {
          optimizer: new SGD(model.parameters(), { lr: 1e-6 }), // learns nothing: stays near chance
          epochs: 3,
          batchSize: 16,
          validationData: toyDataset(32, 2),
          progress: false,
          callbacks: [new PruningCallback(t)],
        });
        return 0;
      },
      { nTrials: 1 },
    );
    const pruned = (await study.trials())[1]!;
    assert.equal(pruned.state, 'pruned');
    assert.deepEqual([...pruned.intermediateValues.keys()], [1, 2]);
  });
});
