/**
 * Samplers with a pruner on learning curves: pruned and failed trials are history the samplers learn
 * from (no configuration proposed twice, startup trials counted in every state), and each trial
 * records which phase of its sampler proposed it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  GpSampler,
  MedianPruner,
  RandomSampler,
  Study,
  TpeSampler,
  TrialPruned,
  systemAttributeKeys,
  type FrozenTrial,
  type Sampler,
  type Trial,
} from '../src/tune/index.js';

const epochs = 8;

/**
 * Validation accuracy after `epoch` epochs (deterministic): a saturating curve towards a final
 * accuracy that peaks at a learning rate growing with the batch size and at dropout 0.15; small
 * learning rates learn slowly and sit near chance (0.1) after the first epochs.
 */
function accuracy(lr: number, batchSize: number, dropout: number, epoch: number): number {
  const x = Math.log10(lr);
  const optimum = -2.4 + 0.3 * Math.log2(batchSize / 32);
  const peak = 0.95 - 0.03 * Math.log2(batchSize / 32);
  const final =
    0.1 + (peak - 0.1) * Math.exp(-(((x - optimum) / 0.5) ** 2)) * (1 - 2 * (dropout - 0.15) ** 2);
  const rate = 0.15 + 1.2 / (1 + Math.exp(-2.5 * (x + 2.5)));
  return 0.1 + (final - 0.1) * (1 - Math.exp(-rate * epoch));
}

/** Trains "epoch by epoch", reporting each epoch and asking the pruner before every epoch but the last. */
function curveObjective(trial: Trial): number {
  const lr = trial.suggestFloat('lr', 1e-4, 1, { log: true });
  const batchSize = trial.suggestCategorical('batchSize', [32, 64, 128]);
  const dropout = trial.suggestFloat('dropout', 0, 0.5);
  let value = 0;
  for (let epoch = 1; epoch <= epochs; epoch++) {
    value = accuracy(lr, batchSize, dropout, epoch);
    trial.report(value, epoch);
    if (epoch < epochs && trial.shouldPrune()) throw new TrialPruned();
  }
  return value;
}

/** Same configuration within 1e-4 of each continuous range (log range for lr), the same batch size. */
function sameConfiguration(a: FrozenTrial, b: FrozenTrial): boolean {
  const lr = Math.abs(Math.log((a.params.lr as number) / (b.params.lr as number))) / Math.log(1e4);
  const dropout = Math.abs((a.params.dropout as number) - (b.params.dropout as number)) / 0.5;
  return a.params.batchSize === b.params.batchSize && lr <= 1e-4 && dropout <= 1e-4;
}

function repeats(trials: readonly FrozenTrial[]): string[] {
  const found: string[] = [];
  for (let i = 0; i < trials.length; i++)
    for (let j = 0; j < i; j++)
      if (sameConfiguration(trials[i]!, trials[j]!))
        found.push(`trial ${trials[i]!.number} repeats trial ${trials[j]!.number}`);
  return found;
}

async function runCurves(sampler: Sampler, trials = 30): Promise<{ best: number; trials: FrozenTrial[] }> {
  const study = await Study.create({
    direction: 'maximize',
    sampler,
    pruner: new MedianPruner({ startupTrials: 3, warmupSteps: 1 }),
  });
  await study.optimize(curveObjective, { nTrials: trials });
  return { best: await study.bestValue(), trials: await study.trials() };
}

/**
 * Over seeds 0–9: no repeated configuration in 30 trials, and how often the sampler's best beats random
 * search's best (the same seed: both draw the same first trials, so a tie means the model found
 * nothing better than its random start).
 */
async function winsOverRandom(make: (seed: number) => Sampler): Promise<{ wins: number; text: string[] }> {
  let wins = 0;
  const text: string[] = [];
  for (let seed = 0; seed < 10; seed++) {
    const random = await runCurves(new RandomSampler({ seed }));
    const model = await runCurves(make(seed));
    assert.deepEqual(repeats(model.trials), [], `seed ${seed}`);
    const pruned = model.trials.filter((t) => t.state === 'pruned').length;
    assert.ok(pruned >= 3, `seed ${seed}: the pruner should be busy (pruned ${pruned})`);
    if (model.best > random.best) wins++;
    text.push(`seed ${seed}: ${model.best.toFixed(4)} vs random ${random.best.toFixed(4)}`);
  }
  return { wins, text };
}

describe('samplers with the median pruner on learning curves', () => {
  // Measured on seeds 0–39 with these settings: GP beat random search on 39, TPE on 30.
  it('GP proposes no configuration twice and beats random search on most seeds', async () => {
    const { wins, text } = await winsOverRandom(
      (seed) => new GpSampler({ seed, candidates: 256, localCandidates: 32, refinements: 2 }),
    );
    assert.ok(wins >= 6, text.join('\n'));
  });

  it('TPE proposes no configuration twice and beats random search on most seeds', async () => {
    const { wins, text } = await winsOverRandom((seed) => new TpeSampler({ seed }));
    assert.ok(wins >= 6, text.join('\n'));
  });

  it("reproduces issue 10's study without a repeated configuration", async () => {
    // The issue: GP (startupTrials 4, seed 7) with the median pruner (startupTrials 3, warmupSteps 1)
    // on lr × batch size, 14 trials. Before, trials 5–13 all proposed batchSize=128 lr=0.1 and were
    // pruned after the first epoch: the GP modelled complete trials only, so a pruned proposal never
    // changed the model and came back.
    const study = await Study.create({
      direction: 'maximize',
      sampler: new GpSampler({ startupTrials: 4, seed: 7 }),
      pruner: new MedianPruner({ startupTrials: 3, warmupSteps: 1 }),
    });
    await study.optimize(
      (trial) => {
        const lr = trial.suggestFloat('lr', 1e-4, 1e-1, { log: true });
        const batchSize = trial.suggestCategorical('batchSize', [32, 64, 128]);
        let value = 0;
        for (let epoch = 1; epoch <= 3; epoch++) {
          value = accuracy(lr, batchSize, 0.15, epoch);
          trial.report(value, epoch);
          if (epoch < 3 && trial.shouldPrune()) throw new TrialPruned();
        }
        return value;
      },
      { nTrials: 14 },
    );
    const trials = await study.trials();
    const keys = trials.map((t) => `${t.params.batchSize} ${(t.params.lr as number).toPrecision(4)}`);
    assert.equal(new Set(keys).size, 14, keys.join('\n'));
    assert.ok(trials.some((t) => t.state === 'pruned'));
    // Pruned at epoch 2 at the earliest: warmupSteps 1 leaves the first epoch alone.
    for (const t of trials.filter((t) => t.state === 'pruned'))
      assert.ok(Math.max(...t.intermediateValues.keys()) >= 2, `trial ${t.number}`);
    assert.ok((await study.bestValue()) > 0.85, `best ${await study.bestValue()}`);
  });
});

describe('pruned and failed trials as sampler history', () => {
  it('counts finished trials of every state as startup trials and records each phase', async () => {
    const phases = async (sampler: Sampler) => {
      const study = await Study.create({ sampler, pruner: new MedianPruner({ startupTrials: 0 }) });
      await study.optimize(
        (trial) => {
          const x = trial.suggestFloat('x', 0, 1);
          const y = trial.suggestFloat('y', 0, 1);
          if (trial.number === 1) throw new Error('out of memory');
          trial.report(x + y, 1);
          if (trial.number === 2) throw new TrialPruned();
          return (x - 0.3) ** 2 + (y - 0.6) ** 2;
        },
        { nTrials: 6 },
      );
      const trials = await study.trials();
      assert.deepEqual(
        trials.slice(0, 3).map((t) => t.state),
        ['complete', 'failed', 'pruned'],
      );
      return trials.map((t) => t.systemAttributes[systemAttributeKeys.samplerPhase]);
    };
    // Trial 0 has no search space yet (random); with trials 0–2 finished (complete, failed, pruned),
    // the model takes over at trial 3, not after 3 complete trials.
    assert.deepEqual(await phases(new GpSampler({ seed: 1, startupTrials: 3, candidates: 128 })), [
      'startup: random',
      'startup: sobol',
      'startup: sobol',
      'gp',
      'gp',
      'gp',
    ]);
    assert.deepEqual(await phases(new TpeSampler({ seed: 1, startupTrials: 3 })), [
      'startup: random',
      'startup: random',
      'startup: random',
      'tpe',
      'tpe',
      'tpe',
    ]);
    assert.deepEqual(await phases(new RandomSampler({ seed: 1 })), new Array(6).fill('random'));

    const study = await Study.create({ sampler: new GpSampler({ seed: 1 }) });
    await study.enqueueTrial({ x: 0.5 });
    await study.optimize((trial) => trial.suggestFloat('x', 0, 1), { nTrials: 2 });
    assert.deepEqual(
      (await study.trials()).map((t) => t.systemAttributes[systemAttributeKeys.samplerPhase]),
      ['enqueued', 'startup: sobol'],
    );
  });

  it('GP proposes neither failed nor pruned configurations again, and uses their values', async () => {
    // Six configurations; four of them fail or are pruned. After its startup the GP still visits
    // the six without a repeat, then has nothing new left and only then repeats.
    const study = await Study.create({
      sampler: new GpSampler({ seed: 3, startupTrials: 2, candidates: 64 }),
      pruner: { prune: (_study, trial) => trial.intermediateValues.size > 0 && trial.number % 2 === 1 },
    });
    await study.optimize(
      (trial) => {
        const a = trial.suggestInt('a', 1, 3);
        const b = trial.suggestCategorical('b', ['x', 'y']);
        if (a === 3 && b === 'y') throw new Error('diverged');
        trial.report(a, 1);
        if (trial.shouldPrune()) throw new TrialPruned();
        return a + (b === 'x' ? 0 : 0.5);
      },
      { nTrials: 6 },
    );
    const keys = (await study.trials()).map((t) => `${t.params.a}${t.params.b}`);
    assert.equal(new Set(keys).size, 6, keys.join(' '));
  });

  it('GP models a study in which every trial so far was pruned', async () => {
    const study = await Study.create({
      sampler: new GpSampler({ seed: 5, startupTrials: 3, candidates: 128 }),
      pruner: { prune: () => true },
    });
    await study.optimize(
      (trial) => {
        const x = trial.suggestFloat('x', -2, 2);
        const y = trial.suggestFloat('y', -2, 2);
        trial.report((x - 1) ** 2 + y ** 2, 1);
        if (trial.shouldPrune()) throw new TrialPruned();
        return 0;
      },
      { nTrials: 12 },
    );
    const trials = await study.trials();
    assert.deepEqual(new Set(trials.map((t) => t.state)), new Set(['pruned']));
    assert.equal(trials.filter((t) => t.systemAttributes.sampler_phase === 'gp').length, 9);
    // The last values reported guide it: the later proposals close in on (1, 0).
    const distance = (t: FrozenTrial) => Math.hypot((t.params.x as number) - 1, t.params.y as number);
    const best = Math.min(...trials.slice(3).map(distance));
    assert.ok(best < Math.min(...trials.slice(0, 3).map(distance)) && best < 0.5, `${best}`);
  });

  it('TPE ranks pruned trials after complete ones and failed ones last', async () => {
    // With one complete trial at x = 0.9 and many pruned/failed ones near 0.1, TPE's "below" group is
    // the complete trial, so it samples near 0.9.
    const study = await Study.create({
      sampler: new TpeSampler({ seed: 2, startupTrials: 4 }),
      pruner: { prune: (_study, trial) => trial.intermediateValues.size > 0 },
    });
    for (const [x, outcome] of [
      [0.9, 'complete'],
      [0.1, 'pruned'],
      [0.12, 'failed'],
      [0.08, 'pruned'],
      [0.11, 'failed'],
    ] as const) {
      await study.enqueueTrial({ x });
      const trial = await study.ask();
      trial.suggestFloat('x', 0, 1);
      if (outcome === 'complete') await study.tell(trial, 5);
      else if (outcome === 'failed') await study.tell(trial, { state: 'failed' });
      else {
        trial.report(1, 1); // a better intermediate value than the complete trial's final one
        await study.tell(trial, { state: 'pruned' });
      }
    }
    const proposals: number[] = [];
    for (let i = 0; i < 5; i++) {
      const trial = await study.ask();
      proposals.push(trial.suggestFloat('x', 0, 1));
      await study.tell(trial, { state: 'failed' });
    }
    const nearComplete = proposals.filter((x) => Math.abs(x - 0.9) < Math.abs(x - 0.1)).length;
    assert.ok(nearComplete >= 4, `${proposals}`);
  });
});
