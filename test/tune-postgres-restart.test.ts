/**
 * Nothing finished is lost when PostgreSQL restarts (issue 13): a cluster of the test's own, on a
 * free 127.0.0.1 port, restarted with `pg_ctl -m fast restart` in the middle of a two-worker
 * `tensile tune`, of a tracked run, and under a dashboard with a page listening. Skipped, with the
 * reason, where the PostgreSQL server binaries are not installed.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PostgresRunStore, RunTracker } from '../src/track/index.js';
import { startDashboard } from '../app/dashboard/index.js';
import { PostgresStorage, Study } from '../src/tune/index.js';
import { PostgresCluster, postgresClusterSkipReason } from './helpers/postgres-cluster.js';

const cli = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const skip = postgresClusterSkipReason();
const temporary = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-pg-restart-'));
const children = new Set<ChildProcess>();
let cluster: PostgresCluster | null = null;

before(async () => {
  if (skip === undefined) cluster = await PostgresCluster.start();
});

after(() => {
  for (const child of children) child.kill('SIGKILL');
  cluster?.stop();
  fs.rmSync(temporary, { recursive: true, force: true });
});

const sleep = (milliseconds: number) => new Promise((resolve) => setTimeout(resolve, milliseconds));

/** GET `url`: status and body (never throws for an HTTP status). */
function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.setTimeout(20_000, () => request.destroy(new Error(`no answer from ${url} in 20 s`)));
    request.on('error', reject);
  });
}

describe('PostgreSQL restarts lose nothing', { skip }, () => {
  it('a restart during tune --workers 2: every trial complete, none failed, exit 0', async () => {
    const directory = fs.mkdtempSync(path.join(temporary, 'tune-'));
    const file = path.join(directory, 'study.yaml');
    const trials = 8;
    fs.writeFileSync(
      file,
      [
        'study: restart',
        `trials: ${trials}`,
        'sampler: { name: random, seed: 4 }',
        'pruner: none',
        // Frequent heartbeats, so the workers are talking to the database when it goes; a grace
        // well beyond the restart, so that no trial is taken for dead meanwhile.
        'heartbeat: { intervalSeconds: 0.2, graceSeconds: 15 }',
        'data: { dataset: mnist, trainSamples: 256, validationSamples: 128, seed: 1 }',
        'model: { channels: [4, 4] }',
        'search: { lr: { float: [1.0e-3, 1.0e-2], log: true }, batchSize: 32, optimizer: adam, epochs: 2 }',
      ].join('\n'),
    );
    const url = cluster!.url('tune_restart');
    const tune = spawn(process.execPath, [cli, 'tune', file, '--workers', '2', '--storage', url], {
      cwd: directory,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(tune);
    let stdout = '';
    let stderr = '';
    tune.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => tune.once('exit', (code) => resolve(code)));
    // Restart once the first trial has finished: the others are training, heartbeating and reporting.
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no trial finished in 90 s:\n${stdout}${stderr}`)),
        90_000,
      );
      tune.stdout!.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        if (/\[worker \d\] trial +\d/.test(stdout)) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    cluster!.restart();
    const code = await exited;
    assert.equal(code, 0, `${stdout}\n${stderr}`);
    // The workers noticed the restart and rode it out.
    assert.match(stderr, /PostgreSQL (study storage|run store) unavailable/);
    assert.doesNotMatch(stderr, /Unhandled|Connection terminated unexpectedly\n\s+at /);

    const storage = await PostgresStorage.connect(url);
    const runs = await PostgresRunStore.connect(url);
    try {
      const stored = await (await Study.load('restart', storage, { heartbeat: null })).trials();
      const failed = stored.filter((t) => t.state !== 'complete');
      assert.deepEqual(
        failed.map((t) => `${t.number} ${t.state}: ${t.error}`),
        [],
        'every trial complete, none failed because of storage',
      );
      assert.equal(stored.length, trials);
      // Every trial's training recorded as a complete run, with its curves.
      const recorded = await runs.listRuns({ study: 'restart' });
      assert.equal(recorded.length, trials);
      for (const run of recorded) {
        assert.equal(run.state, 'complete', `run ${run.id}: ${run.error}`);
        const metrics = await runs.getMetrics(run.id, { names: ['validationAccuracy'] });
        assert.deepEqual(metrics.series.validationAccuracy?.x, [1, 2], `run ${run.id}`);
      }
      assert.match(stdout, new RegExp(`${trials} trials \\(${trials} complete, 0 pruned, 0 failed`));
    } finally {
      await storage.close();
      await runs.close();
    }
  });

  it('a restart during tracking: the run ends complete with every point, those logged while it was down too', async () => {
    const store = await PostgresRunStore.connect(cluster!.url('track_restart'));
    try {
      const tracker = await RunTracker.start(store, { name: 'restart', batchInterval: null });
      const points = 60;
      for (let step = 0; step < points; step++) {
        // Down for points 20 to 39 (a restart with time in it: the writes meet a closed port).
        if (step === 20) cluster!.stopServer();
        if (step === 40) cluster!.startServer();
        tracker.logMetrics([{ name: 'loss', step, x: step, value: 1 / (step + 1) }]);
        await sleep(25);
      }
      await tracker.finish();
      await tracker.close();
      const run = await store.getRun(tracker.runId);
      assert.equal(run.state, 'complete');
      const steps = (await store.getMetrics(run.id)).series.loss!.step;
      // Every step written, the ones during the restart included (a retried commit may repeat one).
      assert.deepEqual(
        [...new Set(steps)].sort((a, b) => a - b),
        Array.from({ length: points }, (_, i) => i),
      );
    } finally {
      await store.close();
    }
  });

  it('the dashboard keeps serving while the database is down: 503 "database unavailable", then recovers', async () => {
    const url = cluster!.url('dashboard_restart');
    const runs = await PostgresRunStore.connect(url);
    const studies = await PostgresStorage.connect(url);
    const server = await startDashboard({ runs, studies, port: 0, pollMilliseconds: 100 });
    const events = http.get(`${server.url}api/events`);
    events.on('error', () => undefined);
    try {
      assert.equal((await get(`${server.url}api/overview`)).status, 200);
      cluster!.stopServer();
      const started = performance.now();
      const down = await get(`${server.url}api/overview`);
      assert.equal(down.status, 503, down.body);
      assert.match(JSON.parse(down.body).error, /database unavailable/);
      assert.ok(performance.now() - started < 10_000, 'answered while the database is down');
      cluster!.startServer();
      let up = await get(`${server.url}api/overview`);
      for (let tries = 0; up.status !== 200 && tries < 20; tries++) {
        await sleep(500);
        up = await get(`${server.url}api/overview`);
      }
      assert.equal(up.status, 200, up.body);
    } finally {
      events.destroy();
      await server.close();
      await runs.close();
      await studies.close();
    }
  });
});
