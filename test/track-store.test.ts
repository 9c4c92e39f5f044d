/**
 * One suite, every run store: memory, SQLite, and PostgreSQL when TENSILE_TEST_POSTGRES names a
 * database (for example postgres://tensile@127.0.0.1:5432/tensile_test); each PostgreSQL test uses
 * a schema of its own and drops it afterwards.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import {
  MemoryRunStore,
  openRunStore,
  PostgresRunStore,
  RunNotFoundError,
  SqliteRunStore,
  TrackSchemaTooNewError,
  trackSchemaVersion,
  type RunStore,
} from '../src/track/index.js';

const postgresUrl = process.env.TENSILE_TEST_POSTGRES;

interface StoreMode {
  name: string;
  skip?: string;
  open(): Promise<{ store: RunStore; cleanup(): Promise<void> }>;
}

let schemaCounter = 0;
const modes: StoreMode[] = [
  {
    name: 'memory',
    async open() {
      const store = new MemoryRunStore();
      return { store, cleanup: () => store.close() };
    },
  },
  {
    name: 'sqlite',
    async open() {
      const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-track-'));
      const store = new SqliteRunStore(path.join(directory, 'runs.db'));
      return {
        store,
        async cleanup() {
          await store.close();
          fs.rmSync(directory, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: 'postgres',
    skip: postgresUrl === undefined ? 'set TENSILE_TEST_POSTGRES to a PostgreSQL URL to run' : undefined,
    async open() {
      const schema = `track_test_${process.pid}_${++schemaCounter}`;
      const url = new URL(postgresUrl!);
      url.searchParams.set('schema', schema);
      const store = await PostgresRunStore.connect(url.toString());
      return {
        store,
        async cleanup() {
          await store.close();
          const client = new pg.Client({ connectionString: postgresUrl });
          await client.connect();
          await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
          await client.end();
        },
      };
    },
  },
];

async function withStore(mode: StoreMode, body: (store: RunStore) => Promise<void>): Promise<void> {
  const { store, cleanup } = await mode.open();
  try {
    await body(store);
  } finally {
    await cleanup();
  }
}

for (const mode of modes) {
  describe(`run store: ${mode.name}`, { skip: mode.skip }, () => {
    test('a run is created running, with its configuration', async () => {
      await withStore(mode, async (store) => {
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
      await withStore(mode, async (store) => {
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
      await withStore(mode, async (store) => {
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
      await withStore(mode, async (store) => {
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
      await withStore(mode, async (store) => {
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
      await withStore(mode, async (store) => {
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
      await withStore(mode, async (store) => {
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
      await withStore(mode, async (store) => {
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
      await withStore(mode, async (store) => {
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
      await withStore(mode, async (store) => {
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
  });
}

test('SQLite: runs written by one connection are seen by another at once (the dashboard reads while training writes)', async () => {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-track-'));
  try {
    const file = path.join(directory, 'tensile.db');
    const writer = new SqliteRunStore(file);
    const reader = await openRunStore(`sqlite:${file}`);
    const run = await writer.createRun({ name: 'live', kind: 'fit' });
    const before = await reader.changeToken();
    await writer.logMetrics(run.id, [{ name: 'loss', step: 0, x: 1, value: 0.7 }]);
    assert.notEqual(await reader.changeToken(), before);
    assert.deepEqual((await reader.getMetrics(run.id)).series.loss!.value, [0.7]);
    await writer.close();
    await reader.close();
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
  }
});

test('SQLite: the run tables have their own schema version and a newer database is refused', async () => {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-track-'));
  try {
    const file = path.join(directory, 'tensile.db');
    await new SqliteRunStore(file).close();
    const db = new Database(file);
    assert.equal(
      (db.prepare('SELECT version FROM tensile_track_schema').get() as { version: number }).version,
      trackSchemaVersion,
    );
    db.prepare('UPDATE tensile_track_schema SET version = ?').run(trackSchemaVersion + 1);
    db.close();
    assert.throws(() => new SqliteRunStore(file), TrackSchemaTooNewError);
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
  }
});

test('openRunStore accepts the study storage URLs and refuses others', async () => {
  const memory = await openRunStore('memory');
  assert.ok(memory instanceof MemoryRunStore);
  await assert.rejects(openRunStore('mysql://x'), /unknown storage 'mysql:\/\/x'/);
  await assert.rejects(openRunStore('sqlite:'), /needs a file path/);
});
