/**
 * The study storages: the contract (test/contract/study-store.ts) over every engine (memory,
 * SQLite, PostgreSQL when TENSILE_TEST_POSTGRES holds a connection URL, each test in a fresh schema
 * that is dropped afterwards), then the upgrades of older schema versions.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import {
  floatDistribution,
  PostgresStorage,
  SchemaTooNewError,
  schemaVersion,
  SqliteStorage,
} from '../src/tune/index.js';
import {
  dropFreshDatabases,
  engines,
  postgresSchemaUrl,
  postgresSkip,
  sqliteFilePath,
} from './contract/engines.js';
import { studyStoreContract } from './contract/study-store.js';

after(dropFreshDatabases);

for (const engine of engines) {
  describe(`storage conformance: ${engine.name}`, { skip: engine.skip }, () => studyStoreContract(engine));
}

describe('SQLite schema versions', () => {
  it('upgrades a version-1 database step by step, keeping its studies, and refuses newer ones', async () => {
    const file = sqliteFilePath('old');
    const old = new SqliteStorage(file, { migrateTo: 1 });
    assert.equal(old.schemaVersion, 1);
    const study = await old.createStudy('kept', 'maximize');
    const trial = (await old.createTrial(study.id))!;
    await old.setTrialParam(trial.id, 'lr', floatDistribution(1e-4, 1, { log: true }), 0.01);
    await old.finishTrial(trial.id, 'complete', 0.97);
    const index = "SELECT name FROM sqlite_master WHERE name = 'trial_params_by_name'";
    const runs = "SELECT name FROM sqlite_master WHERE name = 'runs'";
    assert.equal(old.database.prepare(index).get(), undefined);
    await old.close();
    // Version 2 added run tables that version 3 drops again.
    const second = new SqliteStorage(file, { migrateTo: 2 });
    assert.notEqual(second.database.prepare(runs).get(), undefined);
    await second.close();
    const upgraded = new SqliteStorage(file);
    assert.equal(upgraded.schemaVersion, schemaVersion);
    assert.notEqual(upgraded.database.prepare(index).get(), undefined);
    assert.equal(upgraded.database.prepare(runs).get(), undefined);
    const kept = (await upgraded.getAllTrials((await upgraded.getStudy('kept'))!.id))[0]!;
    assert.deepEqual([kept.state, kept.value, kept.params.lr], ['complete', 0.97, 0.01]);
    upgraded.database.prepare('UPDATE tensile_schema SET version = ?').run(schemaVersion + 1);
    await upgraded.close();
    assert.throws(() => new SqliteStorage(file), SchemaTooNewError);
  });
});

describe('PostgreSQL schema versions', { skip: postgresSkip }, () => {
  it('upgrades a version-1 schema in place, once, with workers connecting together', async () => {
    const url = postgresSchemaUrl();
    const old = await PostgresStorage.connect(url, { migrateTo: 1 });
    assert.equal(await old.schemaVersion(), 1);
    const study = await old.createStudy('kept', 'minimize');
    await old.finishTrial((await old.createTrial(study.id))!.id, 'complete', 1.5);
    await old.close();
    const workers = await Promise.all([1, 2, 3].map(() => PostgresStorage.connect(url)));
    assert.deepEqual(await Promise.all(workers.map((w) => w.schemaVersion())), [
      schemaVersion,
      schemaVersion,
      schemaVersion,
    ]);
    assert.equal((await workers[0]!.getAllTrials(study.id))[0]!.value, 1.5);
    for (const worker of workers) await worker.close();
  });
});
