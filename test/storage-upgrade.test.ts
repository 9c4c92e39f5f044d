/**
 * Existing databases open: files written by the storage code before the SQL layer (src/sql) existed
 * (test/fixtures/databases, made by generate.mjs there at commit 8a357b6) read back exactly what
 * that code read from them, every study, trial, run, metric point and artifact, and accept writes.
 * Study files of schema versions 1 and 2 upgrade on the way. The PostgreSQL fixture is a pg_dump of
 * a schema the same code wrote, restored into a fresh schema (when TENSILE_TEST_POSTGRES is set).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { PostgresRunStore, SqliteRunStore, trackSchemaVersion, type RunStore } from '../src/track/index.js';
import {
  floatDistribution,
  PostgresStorage,
  schemaVersion,
  SqliteStorage,
  type Storage,
} from '../src/tune/index.js';
import {
  dropFreshDatabases,
  postgresSchemaUrl,
  postgresSkip,
  postgresUrl,
  sqliteFilePath,
} from './contract/engines.js';

const fixtures = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'test',
  'fixtures',
  'databases',
);

after(dropFreshDatabases);

/** A writable copy of a fixture file. */
function copyFixture(name: string): string {
  const file = sqliteFilePath(name);
  fs.copyFileSync(path.join(fixtures, name), file);
  return file;
}

function expected(name: string): unknown {
  return JSON.parse(fs.readFileSync(path.join(fixtures, name), 'utf8'));
}

/** Everything the stores hold, as generate.mjs wrote it (maps as entry lists, bytes as base64). */
async function snapshot(storage: Storage | null, store: RunStore | null): Promise<unknown> {
  const studies = [];
  if (storage !== null) {
    for (const summary of await storage.listStudies()) {
      const trials = (await storage.getAllTrials(summary.id)).map((trial) => ({
        ...trial,
        intermediateValues: [...trial.intermediateValues].sort((a, b) => a[0] - b[0]),
      }));
      studies.push({ summary, trials });
    }
  }
  const runs = [];
  if (store !== null) {
    for (const run of await store.listRuns()) {
      const artifacts = [];
      for (const info of await store.listArtifacts(run.id)) {
        const artifact = await store.getArtifact(info.id);
        artifacts.push({
          ...artifact,
          content: artifact.content === null ? null : Buffer.from(artifact.content).toString('base64'),
        });
      }
      runs.push({ run, metrics: await store.getMetrics(run.id), artifacts });
    }
  }
  return JSON.parse(JSON.stringify({ studies, runs }));
}

/** New studies, trials and runs go in next to the old ones, numbered after them; the old data stays. */
async function checkWrites(storage: Storage, store: RunStore | null): Promise<void> {
  const before = await snapshot(storage, store);
  const search = (await storage.getStudy('search'))!;
  const oldTrials = await storage.getAllTrials(search.id);
  const trial = (await storage.createTrial(search.id, { worker: 'new:1' }))!;
  assert.equal(trial.number, oldTrials.length);
  assert.ok(trial.id > Math.max(...oldTrials.map((t) => t.id)));
  await storage.setTrialParam(trial.id, 'lr', floatDistribution(1e-5, 1e-1, { log: true }), 0.003);
  await storage.setTrialIntermediateValue(trial.id, 0, 0.5);
  assert.equal(await storage.finishTrial(trial.id, 'complete', 0.125), true);
  const read = await storage.getTrial(trial.id);
  assert.deepEqual(
    [read.state, read.value, read.params, [...read.intermediateValues]],
    ['complete', 0.125, { lr: 0.003 }, [[0, 0.5]]],
  );
  const fresh = await storage.createStudy('after the upgrade', 'minimize');
  assert.ok(fresh.id > search.id);
  assert.equal((await storage.listStudies()).find((s) => s.name === 'search')!.bestValue, 0.125);
  if (store !== null) {
    const oldRuns = await store.listRuns();
    const run = await store.createRun({ name: 'new', kind: 'fit', config: { lr: 0.003 } });
    assert.ok(run.id > Math.max(...oldRuns.map((r) => r.id)));
    const oldPoints = Math.max(
      ...(await Promise.all(oldRuns.map(async (r) => (await store.getMetrics(r.id)).lastPointId))),
    );
    await store.logMetrics(run.id, [{ name: 'loss', step: 0, x: 1, value: 0.75 }]);
    const metrics = await store.getMetrics(run.id);
    assert.deepEqual(metrics.series.loss!.value, [0.75]);
    assert.ok(metrics.lastPointId > oldPoints);
    await store.addArtifact(run.id, {
      name: 'figure',
      kind: 'figure',
      mediaType: 'image/svg+xml',
      content: '<svg/>',
    });
    assert.equal(await store.finishRun(run.id, 'complete'), true);
  }
  // The old rows read back as before.
  const after = (await snapshot(storage, store)) as {
    studies: { summary: { name: string } }[];
    runs: { run: { id: number } }[];
  };
  const old = before as typeof after;
  for (const study of old.studies) {
    const now = after.studies.find((s) => s.summary.name === study.summary.name)!;
    if (study.summary.name !== 'search') assert.deepEqual(now, study);
  }
  for (const run of old.runs)
    assert.deepEqual(
      after.runs.find((r) => r.run.id === run.run.id),
      run,
    );
}

describe('SQLite databases written before the SQL layer', () => {
  it('tensile.db (studies at version 3, runs at version 1) reads back intact and takes writes', async () => {
    const file = copyFixture('tensile.db');
    const storage = new SqliteStorage(file);
    const store = new SqliteRunStore(file);
    try {
      assert.equal(storage.schemaVersion, schemaVersion);
      assert.equal(
        (storage.database.prepare('SELECT version FROM tensile_track_schema').get() as { version: number })
          .version,
        trackSchemaVersion,
      );
      assert.deepEqual(await snapshot(storage, store), expected('tensile.expected.json'));
      await checkWrites(storage, store);
    } finally {
      await store.close();
      await storage.close();
    }
  });

  for (const version of [1, 2]) {
    it(`studies-v${version}.db upgrades to version ${schemaVersion}, reads back intact and takes writes`, async () => {
      const file = copyFixture(`studies-v${version}.db`);
      const storage = new SqliteStorage(file);
      try {
        assert.equal(storage.schemaVersion, schemaVersion);
        assert.equal(
          storage.database.prepare("SELECT name FROM sqlite_master WHERE name = 'runs'").get(),
          undefined,
        );
        assert.notEqual(
          storage.database
            .prepare("SELECT name FROM sqlite_master WHERE name = 'trial_params_by_name'")
            .get(),
          undefined,
        );
        assert.deepEqual(await snapshot(storage, null), expected(`studies-v${version}.expected.json`));
        // Run tracking then adds its own tables to the same file.
        const store = new SqliteRunStore(file);
        try {
          await checkWrites(storage, store);
        } finally {
          await store.close();
        }
      } finally {
        await storage.close();
      }
    });
  }
});

describe('a PostgreSQL schema written before the SQL layer', { skip: postgresSkip }, () => {
  it('restored from its pg_dump, reads back intact and takes writes', async () => {
    const url = postgresSchemaUrl();
    const schema = new URL(url).searchParams.get('schema')!;
    // The dump names its schema everywhere; the name is chosen to occur nowhere else.
    const dump = fs
      .readFileSync(path.join(fixtures, 'postgres.sql'), 'utf8')
      .replaceAll('tensile_fixture_schema', schema);
    const client = new pg.Client({ connectionString: postgresUrl });
    await client.connect();
    try {
      await client.query(dump);
    } finally {
      await client.end();
    }
    const storage = await PostgresStorage.connect(url);
    const store = await PostgresRunStore.connect(url);
    try {
      assert.equal(await storage.schemaVersion(), schemaVersion);
      assert.deepEqual(await snapshot(storage, store), expected('postgres.expected.json'));
      await checkWrites(storage, store);
    } finally {
      await store.close();
      await storage.close();
    }
  });
});
