/**
 * The run stores: the contract (test/contract/run-store.ts) over every engine (memory, SQLite, and
 * PostgreSQL when TENSILE_TEST_POSTGRES names a database, for example
 * postgres://tensile@127.0.0.1:5432/tensile_test; each test in a schema of its own, dropped
 * afterwards), then what only SQLite does.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import {
  MemoryRunStore,
  openRunStore,
  PostgresRunStore,
  SqliteRunStore,
  TrackSchemaTooNewError,
  trackSchemaVersion,
} from '../src/track/index.js';
import { PostgresStorage, schemaVersion } from '../src/tune/index.js';
import { dropFreshDatabases, engines, postgresSchemaUrl, postgresSkip } from './contract/engines.js';
import { runStoreContract } from './contract/run-store.js';

after(dropFreshDatabases);

for (const engine of engines) {
  describe(`run store: ${engine.name}`, { skip: engine.skip }, () => runStoreContract(engine));
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

test(
  'PostgreSQL: study storages and run stores connecting together create one fresh schema and both sets of tables',
  { skip: postgresSkip },
  async () => {
    // Each kind of table has its own migration lock, but both create the PostgreSQL schema.
    for (let attempt = 0; attempt < 3; attempt++) {
      const url = postgresSchemaUrl();
      const [studies, runs, moreStudies, moreRuns] = await Promise.all([
        PostgresStorage.connect(url),
        PostgresRunStore.connect(url),
        PostgresStorage.connect(url),
        PostgresRunStore.connect(url),
      ]);
      assert.deepEqual(
        [await studies.schemaVersion(), await moreStudies.schemaVersion()],
        [schemaVersion, schemaVersion],
      );
      const run = await runs.createRun({ name: 'r', kind: 'fit' });
      assert.equal((await moreRuns.getRun(run.id)).name, 'r');
      for (const store of [studies, runs, moreStudies, moreRuns]) await store.close();
    }
  },
);
