/** Pruners judged on hand-made histories, and the pruning callback inside fit. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Dense, Flatten, Random, Sequential, SGD, manualSeed, fit, type ImageDataset } from '../src/index.js';
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
    assert.equal(
      new MedianPruner({ startupTrials: 3, intervalSteps: 2 }).prune(view([...complete, bad]), bad),
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
});

/** Two classes of 4×4 images: bright top half vs bright bottom half. */
function toyDataset(count: number, seed: number): ImageDataset {
  const random = new Random(seed);
  const images = new Float32Array(count * 16);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    labels[i] = i % 2;
    for (let p = 0; p < 16; p++)
      images[i * 16 + p] = (p < 8 === (labels[i] === 0) ? 0.8 : 0.2) + 0.1 * random.normal();
  }
  return {
    images,
    labels,
    count,
    channels: 1,
    height: 4,
    width: 4,
    classes: 2,
    classNames: ['top', 'bottom'],
  };
}

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
});
