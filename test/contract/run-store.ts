/**
 * The run-store contract (src/track/types.ts): the same tests against every run store (memory,
 * SQLite, PostgreSQL). test/track-store.test.ts runs it once per engine (./engines.ts); each test
 * opens a fresh database through openRunStore, the URL opener the CLI uses, and closes it after.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openRunStore, RunNotFoundError, type RunStore } from '../../src/track/index.js';
import { freshUrl, type Engine } from './engines.js';

async function withStore(engine: Engine, body: (store: RunStore) => Promise<void>): Promise<void> {
  const store = await openRunStore(freshUrl(engine));
  try {
    await body(store);
  } finally {
    await store.close();
  }
}

/** Registers the contract's tests (inside the caller's describe) for `engine`. */
export function runStoreContract(engine: Engine): void {
  test('a run is created running, with its configuration', async () => {
    await withStore(engine, async (store) => {
      const run = await store.createRun({
        name: 'baseline',
        kind: 'fit',
        config: { lr: 0.001, channels: [8, 16] },
      });
      assert.equal(run.state, 'running');
      assert.equal(run.name, 'baseline');
      assert.deepEqual(run.config, { lr: 0.001, channels: [8, 16] });
      assert.deepEqual(run.summary, {});
      assert.equal(run.pointCount, 0);
      assert.equal(run.completedAt, null);
      assert.ok(run.startedAt > 0 && run.updatedAt >= run.startedAt);
      const again = await store.getRun(run.id);
      assert.deepEqual(again.config, run.config);
    });
  });

  test('config and summary merge keys', async () => {
    await withStore(engine, async (store) => {
      const run = await store.createRun({ name: 'r', kind: 'fit', config: { a: 1, b: 2 } });
      await store.updateConfig(run.id, { b: 3, c: { nested: true } });
      await store.updateSummary(run.id, { loss: 0.5 });
      await store.updateSummary(run.id, { accuracy: 0.9 });
      const stored = await store.getRun(run.id);
      assert.deepEqual(stored.config, { a: 1, b: 3, c: { nested: true } });
      assert.deepEqual(stored.summary, { loss: 0.5, accuracy: 0.9 });
    });
  });

  test('metrics come back per name in order, and incrementally after a point id', async () => {
    await withStore(engine, async (store) => {
      const run = await store.createRun({ name: 'r', kind: 'fit' });
      await store.logMetrics(run.id, [
        { name: 'loss', step: 0, x: 1, value: 2.5 },
        { name: 'accuracy', step: 0, x: 1, value: 0.4 },
      ]);
      const first = await store.getMetrics(run.id);
      assert.deepEqual(first.series.loss!.value, [2.5]);
      assert.deepEqual(first.series.accuracy!.step, [0]);
      await store.logMetrics(run.id, [
        { name: 'loss', step: 1, x: 2, value: 1.5 },
        { name: 'batchLoss', step: 17, x: 1.5, value: 1.9 },
      ]);
      const next = await store.getMetrics(run.id, { afterPointId: first.lastPointId });
      assert.deepEqual(Object.keys(next.series).sort(), ['batchLoss', 'loss']);
      assert.deepEqual(next.series.loss!.value, [1.5]);
      assert.deepEqual(next.series.batchLoss!.x, [1.5]);
      assert.ok(next.lastPointId > first.lastPointId);
      const none = await store.getMetrics(run.id, { afterPointId: next.lastPointId });
      assert.deepEqual(none.series, {});
      assert.equal(none.lastPointId, next.lastPointId);
      const onlyLoss = await store.getMetrics(run.id, { names: ['loss'] });
      assert.deepEqual(onlyLoss.series.loss!.value, [2.5, 1.5]);
      assert.equal(onlyLoss.series.accuracy, undefined);
      assert.equal((await store.getRun(run.id)).pointCount, 4);
    });
  });

  test('a diverging loss (NaN, Infinity) is stored as null', async () => {
    await withStore(engine, async (store) => {
      const run = await store.createRun({ name: 'r', kind: 'fit' });
      await store.logMetrics(run.id, [
        { name: 'loss', step: 0, x: 1, value: Number.NaN },
        { name: 'loss', step: 1, x: 2, value: Number.POSITIVE_INFINITY },
        { name: 'loss', step: 2, x: 3, value: 0.25 },
      ]);
      assert.deepEqual((await store.getMetrics(run.id)).series.loss!.value, [null, null, 0.25]);
    });
  });

  test('finishing is once: a finished run keeps its state', async () => {
    await withStore(engine, async (store) => {
      const run = await store.createRun({ name: 'r', kind: 'fit' });
      assert.equal(await store.finishRun(run.id, 'failed', 'boom'), true);
      assert.equal(await store.finishRun(run.id, 'complete'), false);
      const stored = await store.getRun(run.id);
      assert.equal(stored.state, 'failed');
      assert.equal(stored.error, 'boom');
      assert.ok(stored.completedAt !== null);
    });
  });

  test('artifacts keep content or a path; a name added again replaces the artifact', async () => {
    await withStore(engine, async (store) => {
      const run = await store.createRun({ name: 'r', kind: 'explain' });
      await store.addArtifact(run.id, {
        name: 'figure',
        kind: 'figure',
        mediaType: 'image/svg+xml',
        content: '<svg/>',
      });
      const weights = await store.addArtifact(run.id, {
        name: 'weights',
        kind: 'weights',
        mediaType: 'application/octet-stream',
        path: '/tmp/model.safetensors',
      });
      const replaced = await store.addArtifact(run.id, {
        name: 'figure',
        kind: 'figure',
        mediaType: 'image/svg+xml',
        content: '<svg>2</svg>',
      });
      const list = await store.listArtifacts(run.id);
      assert.deepEqual(
        list.map((a) => a.name),
        ['weights', 'figure'],
      );
      assert.equal(weights.size, 0);
      assert.equal(weights.path, '/tmp/model.safetensors');
      const figure = await store.getArtifact(replaced.id);
      assert.equal(new TextDecoder().decode(figure.content!), '<svg>2</svg>');
      assert.equal(figure.size, 12);
    });
  });

  test('listing filters by kind, state, name, parent and study, newest first', async () => {
    await withStore(engine, async (store) => {
      const parent = await store.createRun({ name: 'DL0007', kind: 'explain' });
      const child = await store.createRun({ name: 'bn lr 0.1', kind: 'fit', parentId: parent.id });
      const trial = await store.createRun({ name: 't', kind: 'trial', study: 'lr-batch', trialNumber: 3 });
      assert.deepEqual(
        (await store.listRuns()).map((r) => r.id),
        [trial.id, child.id, parent.id],
      );
      assert.deepEqual(
        (await store.listRuns({ parentId: null })).map((r) => r.id),
        [trial.id, parent.id],
      );
      assert.deepEqual(
        (await store.listRuns({ parentId: parent.id })).map((r) => r.id),
        [child.id],
      );
      assert.deepEqual(
        (await store.listRuns({ kind: 'explain', name: 'DL0007' })).map((r) => r.id),
        [parent.id],
      );
      const trials = await store.listRuns({ study: 'lr-batch' });
      assert.equal(trials[0]!.trialNumber, 3);
      assert.equal((await store.listRuns({ limit: 1 })).length, 1);
      await store.finishRun(child.id, 'complete');
      assert.deepEqual(
        (await store.listRuns({ state: 'running' })).map((r) => r.id),
        [trial.id, parent.id],
      );
      assert.deepEqual(
        (await store.listRuns({ state: 'complete' })).map((r) => r.id),
        [child.id],
      );
    });
  });

  test('deleting a run removes its children, points and artifacts', async () => {
    await withStore(engine, async (store) => {
      const parent = await store.createRun({ name: 'p', kind: 'explain' });
      const child = await store.createRun({ name: 'c', kind: 'fit', parentId: parent.id });
      await store.logMetrics(child.id, [{ name: 'loss', step: 0, x: 1, value: 1 }]);
      const artifact = await store.addArtifact(parent.id, {
        name: 'f',
        kind: 'figure',
        mediaType: 'image/svg+xml',
        content: 'x',
      });
      await store.deleteRun(parent.id);
      await assert.rejects(store.getRun(child.id), RunNotFoundError);
      await assert.rejects(store.getArtifact(artifact.id), RunNotFoundError);
      assert.deepEqual(await store.listRuns(), []);
    });
  });

  test('the change token changes with every write', async () => {
    await withStore(engine, async (store) => {
      const tokens = [await store.changeToken()];
      const run = await store.createRun({ name: 'r', kind: 'fit' });
      tokens.push(await store.changeToken());
      await store.logMetrics(run.id, [{ name: 'loss', step: 0, x: 1, value: 1 }]);
      tokens.push(await store.changeToken());
      await store.updateSummary(run.id, { loss: 1 });
      tokens.push(await store.changeToken());
      // Finishing right after another write (same millisecond) must still be seen.
      await store.finishRun(run.id, 'complete');
      tokens.push(await store.changeToken());
      assert.equal(new Set(tokens).size, tokens.length, tokens.join(' '));
      assert.equal(await store.changeToken(), tokens.at(-1));
    });
  });

  test('unknown ids and bad input are refused with clear errors', async () => {
    await withStore(engine, async (store) => {
      await assert.rejects(store.getRun(999), /run 999 not found/);
      await assert.rejects(
        store.logMetrics(999, [{ name: 'loss', step: 0, x: 1, value: 1 }]),
        RunNotFoundError,
      );
      await assert.rejects(store.createRun({ name: '', kind: 'fit' }), /run name/);
      const run = await store.createRun({ name: 'r', kind: 'fit' });
      await assert.rejects(
        store.logMetrics(run.id, [{ name: 'loss', step: 0.5, x: 1, value: 1 }]),
        /step must be an integer/,
      );
    });
  });
}
