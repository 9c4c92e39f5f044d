/** RunTracker: what a fit records, how a failure is recorded, and live writes to PostgreSQL. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pg from 'pg';
import {
  Adam,
  Dense,
  fit,
  Flatten,
  manualSeed,
  oneCycleSchedule,
  Sequential,
  type ImageDataset,
} from '../src/index.js';
import {
  MemoryRunStore,
  PostgresRunStore,
  RunTracker,
  SqliteRunStore,
  trackRun,
  configFromOptions,
  failLostRuns,
  type MetricInput,
  type RunRecord,
  type RunStore,
} from '../src/track/index.js';
import { TrialPruned } from '../src/tune/index.js';
import { toyDataset as sharedToyDataset } from './helpers/toy-data.js';

const toyDataset = (count: number): ImageDataset => sharedToyDataset(count, 3);

function toyModel() {
  manualSeed(1);
  return new Sequential(new Flatten(), new Dense(16, 8, { activation: 'relu' }), new Dense(8, 2));
}

async function trackedFit(store: RunStore, options: { batchInterval?: number | null; epochs?: number } = {}) {
  const model = toyModel();
  const tracker = await RunTracker.start(store, {
    name: 'toy',
    config: { lr: 0.01 },
    batchInterval: options.batchInterval ?? 0,
  });
  fit(model, toyDataset(64), {
    optimizer: new Adam(model.parameters(), { lr: 0.01 }),
    epochs: options.epochs ?? 3,
    batchSize: 16,
    validationSplit: 0.25,
    progress: false,
    callbacks: [tracker],
  });
  await tracker.close();
  return tracker;
}

test('a tracked fit records configuration, per-epoch metrics, batch losses and a summary, then completes', async () => {
  const store = new MemoryRunStore();
  const tracker = await trackedFit(store);
  const run = await store.getRun(tracker.runId);
  assert.equal(run.state, 'complete');
  assert.equal(run.kind, 'fit');
  assert.equal(run.config.lr, 0.01);
  const fitConfig = run.config.fit as Record<string, number>;
  assert.equal(fitConfig.epochs, 3);
  assert.equal(fitConfig.trainSamples, 48);
  assert.equal(fitConfig.batchesPerEpoch, 3);
  const optimizer = run.config.optimizer as { name: string; groups: { lr: number; parameters: number }[] };
  assert.equal(optimizer.name, 'Adam');
  assert.equal(optimizer.groups[0]!.lr, 0.01);
  assert.equal(optimizer.groups[0]!.parameters, 16 * 8 + 8 + 8 * 2 + 2);
  assert.equal((run.config.model as { trainableParameters: number }).trainableParameters, 154);

  const metrics = await store.getMetrics(run.id);
  for (const name of ['loss', 'accuracy', 'validationLoss', 'validationAccuracy', 'learningRate']) {
    assert.deepEqual(metrics.series[name]!.x, [1, 2, 3], name);
    assert.deepEqual(metrics.series[name]!.step, [0, 1, 2], name);
  }
  // batchInterval 0: one point per batch, at fractional epochs.
  assert.deepEqual(
    metrics.series.batchLoss!.x.map((x) => Number(x.toFixed(3))),
    [0.333, 0.667, 1, 1.333, 1.667, 2, 2.333, 2.667, 3],
  );
  assert.equal(run.summary.epochs, 3);
  assert.equal(run.summary.loss, metrics.series.loss!.value[2]);
  assert.equal(run.summary.validationAccuracy, metrics.series.validationAccuracy!.value[2]);
  assert.equal(run.summary.stoppedEarly, false);
});

test('batch losses are throttled: a long interval records none within a short fit', async () => {
  const store = new MemoryRunStore();
  const tracker = await trackedFit(store, { batchInterval: 60_000 });
  const metrics = await store.getMetrics(tracker.runId);
  assert.equal(metrics.series.batchLoss, undefined);
  assert.equal(metrics.series.loss!.value.length, 3);
});

/** A memory store that counts its metric writes (the tracker's write volume). */
class CountingStore extends MemoryRunStore {
  metricWrites = 0;
  override async logMetrics(runId: number, points: readonly MetricInput[]): Promise<void> {
    this.metricWrites++;
    return super.logMetrics(runId, points);
  }
}

/** 6 epochs of 3 batches (48 training samples, batches of 16) under a one-cycle schedule. */
async function oneCycleFit(
  store: RunStore,
  options: { learningRatePoints?: number | null; batchInterval?: number | null },
) {
  const model = toyModel();
  const steps = 6 * 3;
  const tracker = await RunTracker.start(store, { name: 'one-cycle', ...options });
  fit(model, toyDataset(64), {
    optimizer: new Adam(model.parameters(), { lr: 0.01 }),
    epochs: 6,
    batchSize: 16,
    validationSplit: 0.25,
    progress: false,
    schedule: oneCycleSchedule(steps),
    callbacks: [tracker],
  });
  await tracker.close();
  return { tracker, steps, schedule: oneCycleSchedule(steps) };
}

test('the learning rate is recorded per batch: a one-cycle schedule keeps its rise and fall', async () => {
  const store = new CountingStore();
  const { tracker, steps, schedule } = await oneCycleFit(store, { batchInterval: 60_000 });
  const series = (await store.getMetrics(tracker.runId)).series.batchLearningRate!;
  // Every optimizer step, at the fraction of the epochs done when it started.
  assert.deepEqual(
    series.step,
    Array.from({ length: steps }, (_, i) => i),
  );
  assert.deepEqual(
    series.x.map((x) => Number(x.toFixed(3))),
    Array.from({ length: steps }, (_, i) => Number((i / 3).toFixed(3))),
  );
  const rates = series.value as number[];
  for (let i = 0; i < steps; i++) assert.ok(Math.abs(rates[i]! - 0.01 * schedule.factor(i)) < 1e-12);
  // Up, then down: the peak lies inside, the rate rises to it and falls after it.
  const peak = rates.indexOf(Math.max(...rates));
  assert.ok(peak > 1 && peak < steps - 2, `peak at step ${peak}`);
  for (let i = 1; i <= peak; i++) assert.ok(rates[i]! > rates[i - 1]!, `rising at ${i}`);
  for (let i = peak + 1; i < steps; i++) assert.ok(rates[i]! < rates[i - 1]!, `falling at ${i}`);
  assert.ok(rates[0]! < rates[peak]! / 10 && rates[steps - 1]! < rates[0]!);
  // The per-epoch rate (the end of each epoch) would be 6 points on the way down: no rise visible.
  // Write volume: the batch rates ride with each epoch's metrics, one write per epoch.
  assert.equal(store.metricWrites, 6);
});

test("a long fit records every k-th step's learning rate (and each epoch's last); none when turned off", async () => {
  const store = new MemoryRunStore();
  const { tracker, steps } = await oneCycleFit(store, { learningRatePoints: 5, batchInterval: null });
  const recorded = (await store.getMetrics(tracker.runId)).series.batchLearningRate!.step;
  // every ceil(18 / 5) = 4 steps, plus steps 2, 5, 8, ... that end an epoch
  assert.deepEqual(recorded, [0, 2, 4, 5, 8, 11, 12, 14, 16, 17]);
  assert.equal(recorded.at(-1), steps - 1);
  const off = await oneCycleFit(store, { learningRatePoints: null });
  assert.equal((await store.getMetrics(off.tracker.runId)).series.batchLearningRate, undefined);
});

test('a second fit in the same run continues the epoch axis (a fine-tune in stages)', async () => {
  const store = new MemoryRunStore();
  const model = toyModel();
  const data = toyDataset(32);
  await trackRun(store, { name: 'stages', kind: 'finetune', batchInterval: null }, (tracker) => {
    for (const epochs of [2, 3]) {
      fit(model, data, {
        optimizer: new Adam(model.parameters(), { lr: 0.01 }),
        epochs,
        batchSize: 16,
        progress: false,
        callbacks: [tracker],
      });
    }
  });
  const [run] = await store.listRuns();
  assert.equal(run!.state, 'complete');
  assert.deepEqual((await store.getMetrics(run!.id)).series.loss!.x, [1, 2, 3, 4, 5]);
});

test('trackRun records a thrown error as a failed run and rethrows it', async () => {
  const store = new MemoryRunStore();
  await assert.rejects(
    trackRun(store, { name: 'broken' }, () => {
      throw new Error('out of memory');
    }),
    /out of memory/,
  );
  const [run] = await store.listRuns();
  assert.equal(run!.state, 'failed');
  assert.match(run!.error!, /out of memory/);
});

test('trackRun records a pruned tuning trial as stopped, not failed', async () => {
  const store = new MemoryRunStore();
  await assert.rejects(
    trackRun(store, { name: 'trial 3', kind: 'trial', study: 'lr', trialNumber: 3 }, () => {
      throw new TrialPruned();
    }),
    TrialPruned,
  );
  const [run] = await store.listRuns({ study: 'lr' });
  assert.equal(run!.state, 'stopped');
  assert.equal(run!.error, 'pruned');
});

test('SQLite: a tracked run is readable from a second connection while the fit still runs', async () => {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-tracker-'));
  try {
    const file = path.join(directory, 'tensile.db');
    const store = new SqliteRunStore(file);
    const reader = new SqliteRunStore(file);
    const tracker = await RunTracker.start(store, { name: 'live', batchInterval: null });
    const seenDuringFit: number[] = [];
    const model = toyModel();
    fit(model, toyDataset(32), {
      optimizer: new Adam(model.parameters(), { lr: 0.01 }),
      epochs: 3,
      batchSize: 16,
      progress: false,
      callbacks: [
        tracker,
        {
          // Runs after the tracker's epochEnd; the fit has not returned, yet the point is in the file.
          handle: (event) => {
            if (event.type !== 'epochEnd') return;
            void reader.getRun(tracker.runId).then((run) => seenDuringFit.push(run.pointCount));
          },
        },
      ],
    });
    await tracker.close();
    // better-sqlite3 answered each read synchronously inside the loop: per epoch, the 5 epoch metrics
    // a fit without validation has, and the learning rate of its 2 batches.
    assert.deepEqual(seenDuringFit, [7, 14, 21]);
    await store.close();
    await reader.close();
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
  }
});

const postgresUrl = process.env.TENSILE_TEST_POSTGRES;
test(
  'PostgreSQL: points reach the database during a synchronous fit (writer thread)',
  { skip: postgresUrl === undefined ? 'set TENSILE_TEST_POSTGRES to a PostgreSQL URL to run' : undefined },
  async () => {
    const schema = `track_tracker_${process.pid}`;
    const url = new URL(postgresUrl!);
    url.searchParams.set('schema', schema);
    const store = await PostgresRunStore.connect(url.toString());
    try {
      const tracker = await RunTracker.start(store, { name: 'live', batchInterval: null });
      const counts: number[] = [];
      const countPoints = () => {
        // A separate process reads the table: this thread is busy training and cannot await.
        const script = `import pg from 'pg'; const c = new pg.Client({ connectionString: process.argv[1] }); await c.connect();
          const r = await c.query('SELECT count(*) AS n FROM "${schema}".track_metrics'); console.log(r.rows[0].n); await c.end();`;
        return Number(
          execFileSync(process.execPath, ['--input-type=module', '-e', script, postgresUrl!], {
            cwd: process.cwd(),
            encoding: 'utf8',
          }).trim(),
        );
      };
      const model = toyModel();
      fit(model, toyDataset(32), {
        optimizer: new Adam(model.parameters(), { lr: 0.01 }),
        epochs: 2,
        batchSize: 16,
        progress: false,
        callbacks: [
          tracker,
          {
            handle: (event) => {
              if (event.type !== 'epochEnd') return;
              // Give the writer thread a moment, as a slow epoch would.
              Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
              counts.push(countPoints());
            },
          },
        ],
      });
      await tracker.close();
      assert.deepEqual(counts, [7, 14]); // per epoch: 5 epoch metrics and the learning rate of its 2 batches
      assert.equal((await store.getRun(tracker.runId)).state, 'complete');
    } finally {
      await store.close();
      const client = new pg.Client({ connectionString: postgresUrl });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await client.end();
    }
  },
);

test('command-line options become a run configuration: numbers as numbers, output options left out', () => {
  assert.deepEqual(
    configFromOptions(
      { epochs: '9', lr: '5e-3', channels: '32,64', quiet: true, save: undefined, dataset: 'mnist' },
      ['quiet'],
    ),
    { epochs: 9, lr: 0.005, channels: '32,64', dataset: 'mnist' },
  );
});

test('a run whose process was killed ends as failed; live runs and other hosts are left running', async () => {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-lost-'));
  const url = `sqlite:${path.join(directory, 'tensile.db')}`;
  const worker = new URL('./dashboard-training-worker.js', import.meta.url).pathname;
  // A training in another process, killed without a chance to finish its run.
  const child = spawn(process.execPath, [worker, url, 'killed', '1000', '1000'], { stdio: 'ignore' });
  const store = new SqliteRunStore(path.join(directory, 'tensile.db'));
  try {
    let killed: RunRecord | undefined;
    for (let i = 0; i < 200 && killed === undefined; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      killed = (await store.listRuns({ name: 'killed' }))[0];
    }
    assert.ok(killed, 'the child recorded its run');
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    const alive = await store.createRun({ name: 'alive', kind: 'fit' });
    const elsewhere = await store.createRun({ name: 'elsewhere', kind: 'fit', worker: 'another-host:1' });
    assert.equal((await store.getRun(killed.id)).state, 'running');

    assert.deepEqual(await failLostRuns(store), [killed.id]);
    const ended = await store.getRun(killed.id);
    assert.equal(ended.state, 'failed');
    assert.match(ended.error ?? '', /ended without finishing the run/);
    assert.equal((await store.getRun(alive.id)).state, 'running');
    assert.equal((await store.getRun(elsewhere.id)).state, 'running');
    assert.deepEqual(await failLostRuns(store), [], 'nothing left to end');
  } finally {
    child.kill('SIGKILL');
    await store.close();
    fs.rmSync(directory, { recursive: true, force: true });
  }
});
