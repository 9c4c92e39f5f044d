/**
 * The study-storage contract: the same tests against every storage (memory, SQLite, PostgreSQL), as
 * Optuna runs its storage tests over STORAGE_MODES. test/tune-storage.test.ts runs it once per
 * engine (./engines.ts); each test opens a fresh database through openStorage, the URL opener the
 * CLI uses.
 */
import assert from 'node:assert/strict';
import { after, it } from 'node:test';
import {
  categoricalDistribution,
  DuplicateStudyError,
  floatDistribution,
  intDistribution,
  openStorage,
  systemAttributeKeys,
  TrialFinishedError,
  type Storage,
} from '../../src/tune/index.js';
import { freshUrl, type Engine } from './engines.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Registers the contract's tests (inside the caller's describe) for `engine`. */
export function studyStoreContract(engine: Engine): void {
  const opened: Storage[] = [];
  /** A fresh, empty storage plus a way to open a second connection to the same data (null: in-process only). */
  const open = async () => {
    const url = freshUrl(engine);
    const storage = await openStorage(url);
    opened.push(storage);
    return {
      storage,
      reopen: engine.shared
        ? async () => {
            const second = await openStorage(url);
            opened.push(second);
            return second;
          }
        : null,
    };
  };
  after(async () => {
    for (const storage of opened) await storage.close();
  });

  it('creates, finds, lists and deletes studies; names are unique', async () => {
    const { storage } = await open();
    const a = await storage.createStudy('alpha', 'minimize');
    const b = await storage.createStudy('beta', 'maximize');
    assert.equal(a.name, 'alpha');
    assert.equal(b.direction, 'maximize');
    await assert.rejects(storage.createStudy('alpha', 'minimize'), DuplicateStudyError);
    assert.equal((await storage.getStudy('beta'))?.id, b.id);
    assert.equal(await storage.getStudy('gamma'), null);
    assert.equal((await storage.getStudyById(a.id)).name, 'alpha');
    await storage.setStudyUserAttribute(a.id, 'dataset', 'mnist');
    await storage.setStudySystemAttribute(a.id, 'config', { trials: 3, nested: [1, 2] });
    const loaded = await storage.getStudyById(a.id);
    assert.deepEqual(loaded.userAttributes, { dataset: 'mnist' });
    assert.deepEqual(loaded.systemAttributes, { config: { trials: 3, nested: [1, 2] } });
    assert.ok(Math.abs(loaded.createdAt - Date.now()) < 60_000);
    const trial = (await storage.createTrial(a.id))!;
    await storage.finishTrial(trial.id, 'complete', 2.5);
    const listing = await storage.listStudies();
    assert.deepEqual(
      listing.map((s) => s.name),
      ['alpha', 'beta'],
    );
    assert.equal(listing[0]!.trialCounts.complete, 1);
    assert.equal(listing[0]!.bestValue, 2.5);
    assert.equal(listing[1]!.bestValue, null);
    await storage.deleteStudy(a.id);
    assert.equal(await storage.getStudy('alpha'), null);
    await assert.rejects(storage.getTrial(trial.id));
  });

  it('numbers trials 0, 1, 2, ... without gaps under concurrent creation, on one or two connections', async () => {
    const { storage, reopen } = await open();
    const study = await storage.createStudy('numbers', 'minimize');
    const second = reopen === null ? storage : await reopen();
    const created = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        (i % 2 ? second : storage).createTrial(study.id, { worker: `w${i}` }),
      ),
    );
    assert.deepEqual(
      created.map((t) => t!.number).sort((a, b) => a - b),
      Array.from({ length: 24 }, (_, i) => i),
    );
    const trials = await storage.getAllTrials(study.id);
    assert.deepEqual(
      trials.map((t) => t.number),
      Array.from({ length: 24 }, (_, i) => i),
    );
    assert.ok(trials.every((t) => t.state === 'running' && t.startedAt !== null && t.heartbeatAt !== null));
  });

  it('enforces a study-wide trial budget atomically', async () => {
    const { storage, reopen } = await open();
    const study = await storage.createStudy('budget', 'minimize');
    const second = reopen === null ? storage : await reopen();
    const created = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        (i % 2 ? second : storage).createTrial(study.id, {}, { maxTrials: 5 }),
      ),
    );
    assert.equal(created.filter((t) => t !== null).length, 5);
    assert.equal((await storage.getAllTrials(study.id)).length, 5);
  });

  it('stores templates: waiting trials, parameters, attributes, retry links', async () => {
    const { storage } = await open();
    const study = await storage.createStudy('templates', 'minimize');
    const trial = (await storage.createTrial(study.id, {
      state: 'waiting',
      params: { lr: { distribution: floatDistribution(1e-4, 1, { log: true }), value: 0.01 } },
      userAttributes: { note: 'from a paper' },
      systemAttributes: { [systemAttributeKeys.fixedParams]: { lr: 0.01 } },
      retryOf: 3,
    }))!;
    assert.equal(trial.state, 'waiting');
    assert.equal(trial.startedAt, null);
    assert.equal(trial.worker, null);
    assert.deepEqual(trial.params, { lr: 0.01 });
    assert.equal(trial.userAttributes.note, 'from a paper');
    assert.deepEqual(trial.systemAttributes[systemAttributeKeys.fixedParams], { lr: 0.01 });
    assert.equal(trial.retryOf, 3);
  });

  it('hands each waiting trial to exactly one claimer, lowest number first', async () => {
    const { storage, reopen } = await open();
    const study = await storage.createStudy('claims', 'minimize');
    await storage.createTrial(study.id, { state: 'waiting' });
    await storage.createTrial(study.id, { state: 'running' });
    await storage.createTrial(study.id, { state: 'waiting' });
    const second = reopen === null ? storage : await reopen();
    const claims = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        (i % 2 ? second : storage).claimWaitingTrial(study.id, `worker-${i}`),
      ),
    );
    const claimed = claims.filter((t) => t !== null);
    assert.deepEqual(claimed.map((t) => t!.number).sort(), [0, 2]);
    for (const trial of claimed) {
      assert.equal(trial!.state, 'running');
      assert.match(trial!.worker!, /^worker-\d$/);
      assert.notEqual(trial!.startedAt, null);
    }
    assert.equal(await storage.claimWaitingTrial(study.id, 'late'), null);
  });

  it('round-trips parameters of every kind, keeps the first value and checks domains and kinds', async () => {
    const { storage } = await open();
    const study = await storage.createStudy('params', 'minimize');
    const trial = (await storage.createTrial(study.id))!;
    const choices = categoricalDistribution(['sgd', true, null, 3]);
    await storage.setTrialParam(
      trial.id,
      'lr',
      floatDistribution(1e-5, 1e-1, { log: true }),
      0.0012345678901234,
    );
    await storage.setTrialParam(trial.id, 'dropout', floatDistribution(0, 0.5, { step: 0.1 }), 0.3);
    await storage.setTrialParam(trial.id, 'batch', intDistribution(16, 256, { log: true }), 64);
    await storage.setTrialParam(trial.id, 'layers', intDistribution(1, 9, { step: 2 }), 7);
    await storage.setTrialParam(trial.id, 'optimizer', choices, 'sgd');
    await storage.setTrialParam(trial.id, 'flag', choices, null);
    await storage.setTrialParam(trial.id, 'lr', floatDistribution(1e-5, 1e-1, { log: true }), 0.05);
    const read = await storage.getTrial(trial.id);
    assert.deepEqual(read.params, {
      lr: 0.0012345678901234,
      dropout: 0.3,
      batch: 64,
      layers: 7,
      optimizer: 'sgd',
      flag: null,
    });
    assert.deepEqual(read.distributions.optimizer, choices);
    assert.deepEqual(read.distributions.batch, intDistribution(16, 256, { log: true }));
    await assert.rejects(storage.setTrialParam(trial.id, 'x', floatDistribution(0, 1), 2), RangeError);
    await assert.rejects(storage.setTrialParam(trial.id, 'y', choices, 'adam'), RangeError);
    const other = (await storage.createTrial(study.id))!;
    await assert.rejects(
      storage.setTrialParam(other.id, 'lr', categoricalDistribution([0.1, 0.01]), 0.1),
      TypeError,
    );
    // Another range of the same kind is fine (ranges may change between trials).
    await storage.setTrialParam(other.id, 'lr', floatDistribution(1e-3, 1), 0.5);
  });

  it('records intermediate values (latest wins per step) and attributes', async () => {
    const { storage } = await open();
    const study = await storage.createStudy('reports', 'maximize');
    const trial = (await storage.createTrial(study.id))!;
    await storage.setTrialIntermediateValue(trial.id, 1, 0.5);
    await storage.setTrialIntermediateValue(trial.id, 2, 0.6);
    await storage.setTrialIntermediateValue(trial.id, 2, 0.65);
    await assert.rejects(storage.setTrialIntermediateValue(trial.id, 3, Number.NaN), RangeError);
    await storage.setTrialUserAttribute(trial.id, 'history', [0.5, 0.65]);
    await storage.setTrialUserAttribute(trial.id, 'history', [0.5, 0.66]);
    await storage.setTrialSystemAttribute(trial.id, 'grid_id', 4);
    const read = await storage.getTrial(trial.id);
    assert.deepEqual(
      [...read.intermediateValues].sort((a, b) => a[0] - b[0]),
      [
        [1, 0.5],
        [2, 0.65],
      ],
    );
    assert.deepEqual(read.userAttributes, { history: [0.5, 0.66] });
    assert.equal(read.systemAttributes.grid_id, 4);
  });

  it('finishes a trial once; finished trials never change', async () => {
    const { storage } = await open();
    const study = await storage.createStudy('finish', 'minimize');
    const trial = (await storage.createTrial(study.id))!;
    await assert.rejects(storage.finishTrial(trial.id, 'complete', Number.NaN), RangeError);
    assert.equal(await storage.finishTrial(trial.id, 'complete', 0.25), true);
    assert.equal(await storage.finishTrial(trial.id, 'failed', null, 'late'), false);
    const read = await storage.getTrial(trial.id);
    assert.equal(read.state, 'complete');
    assert.equal(read.value, 0.25);
    assert.equal(read.error, null);
    assert.ok(read.completedAt! >= read.startedAt!);
    await assert.rejects(
      storage.setTrialParam(trial.id, 'x', floatDistribution(0, 1), 0.5),
      TrialFinishedError,
    );
    await assert.rejects(storage.setTrialIntermediateValue(trial.id, 1, 1), TrialFinishedError);
    await assert.rejects(storage.setTrialUserAttribute(trial.id, 'k', 1), TrialFinishedError);
    const failed = (await storage.createTrial(study.id))!;
    assert.equal(await storage.finishTrial(failed.id, 'failed', null, 'Error: boom\n    at objective'), true);
    assert.equal((await storage.getTrial(failed.id)).error, 'Error: boom\n    at objective');
    const pruned = (await storage.createTrial(study.id))!;
    await storage.finishTrial(pruned.id, 'pruned', 0.9);
    assert.deepEqual(
      (await storage.getAllTrials(study.id, ['complete', 'pruned'])).map((t) => t.state),
      ['complete', 'pruned'],
    );
    assert.deepEqual(await storage.getAllTrials(study.id, []), []);
  });

  it('fails trials whose heartbeat lapsed, once, and enqueues one retry per failed trial up to maxRetries', async () => {
    const { storage, reopen } = await open();
    const study = await storage.createStudy('heartbeats', 'minimize');
    const stale = (await storage.createTrial(study.id, { worker: 'dead:1' }))!;
    await storage.setTrialParam(stale.id, 'x', floatDistribution(0, 1), 0.25);
    const alive = (await storage.createTrial(study.id, { worker: 'alive:2' }))!;
    await sleep(700);
    await storage.recordHeartbeat(alive.id);
    const second = reopen === null ? storage : await reopen();
    const results = await Promise.all(
      [storage, second, storage].map((s) =>
        s.failStaleTrials(study.id, { graceSeconds: 0.5, maxRetries: 1 }),
      ),
    );
    const failed = results.flat();
    assert.deepEqual(
      failed.map((t) => t.number),
      [0],
    );
    assert.equal(failed[0]!.state, 'failed');
    assert.match(failed[0]!.error!, /dead:1 stopped sending heartbeats/);
    let trials = await storage.getAllTrials(study.id);
    assert.deepEqual(
      trials.map((t) => t.state),
      ['failed', 'running', 'waiting'],
    );
    const retry = trials[2]!;
    assert.equal(retry.retryOf, 0);
    assert.deepEqual(retry.systemAttributes[systemAttributeKeys.fixedParams], { x: 0.25 });
    // The retry replaces the failed trial in the budget: 3 rows, 2 counted.
    assert.notEqual(await storage.createTrial(study.id, {}, { maxTrials: 3 }), null);
    assert.equal(await storage.createTrial(study.id, {}, { maxTrials: 3 }), null);
    // The retry dies too: with maxRetries 1 it is not repeated again.
    const claimed = (await storage.claimWaitingTrial(study.id, 'dead:3'))!;
    assert.equal(claimed.number, 2);
    await sleep(700);
    await storage.recordHeartbeat(alive.id);
    const again = await storage.failStaleTrials(study.id, { graceSeconds: 0.5, maxRetries: 1 });
    assert.deepEqual(again.map((t) => t.number).sort(), [2, 3]);
    trials = await storage.getAllTrials(study.id);
    assert.equal(trials.filter((t) => t.retryOf === 2).length, 0);
    assert.equal(trials.filter((t) => t.state === 'waiting').length, 1); // trial 3's own first retry
    assert.equal((await storage.getTrial(alive.id)).state, 'running');
  });

  it('returns snapshots that later writes do not change', async () => {
    const { storage } = await open();
    const study = await storage.createStudy('snapshots', 'minimize');
    const trial = (await storage.createTrial(study.id, { userAttributes: { list: [1] } }))!;
    (trial.userAttributes.list as number[]).push(2);
    await storage.setTrialIntermediateValue(trial.id, 0, 1);
    assert.equal(trial.intermediateValues.size, 0);
    assert.deepEqual((await storage.getTrial(trial.id)).userAttributes.list, [1]);
  });
}
