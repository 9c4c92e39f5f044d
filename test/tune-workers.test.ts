/**
 * Workers in separate processes sharing a study: atomic trial numbering and budgets across processes,
 * and a worker killed (SIGKILL) in the middle of a trial whose study still finishes, the dead trial
 * failed by heartbeat and retried with the same parameters by a fresh process. Runs on SQLite, and on
 * PostgreSQL when TENSILE_TEST_POSTGRES is set.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { openStorage, Study, type Storage } from '../src/tune/index.js';
import { dropFreshDatabases, engines, freshUrl } from './contract/engines.js';

const children = new Set<ChildProcess>();

after(async () => {
  for (const child of children) child.kill('SIGKILL');
  await dropFreshDatabases();
});

const tuneModule = new URL('../src/tune/index.js', import.meta.url).href;

/**
 * A worker process: joins study `name` in `url` and runs the objective until the study holds
 * `total` trials (each takes 40 ms, so workers interleave). In 'hang' mode every trial blocks its
 * thread (as a long synchronous training loop does) after printing RUNNING and its number.
 */
const workerSource = `
const { Study, SobolSampler, openStorage } = await import(${JSON.stringify(tuneModule)});
const [url, name, total, mode, seed] = process.argv.slice(1);
const storage = await openStorage(url);
const study = await Study.create({
  name, storage, loadIfExists: true,
  sampler: new SobolSampler({ seed: Number(seed) }),
  heartbeat: { intervalSeconds: 0.2, graceSeconds: 1 },
  maxRetries: 1,
});
await study.optimize(async (trial) => {
  const x = trial.suggestFloat('x', 0, 1);
  const y = trial.suggestInt('y', 0, 1000);
  if (mode === 'hang') {
    console.log('RUNNING ' + trial.number);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120000);
  }
  await new Promise((resolve) => setTimeout(resolve, 40));
  return x + y / 1000;
}, { totalTrials: Number(total) });
await storage.close();
console.log('DONE');
`;

function startWorker(
  url: string,
  name: string,
  total: number,
  mode: 'run' | 'hang',
  seed: number,
): { child: ChildProcess; running: Promise<number>; exited: Promise<number | null> } {
  const child = spawn(
    process.execPath,
    ['--input-type=module', '-e', workerSource, url, name, String(total), mode, String(seed)],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.add(child);
  let output = '';
  let errors = '';
  child.stderr!.on('data', (chunk: Buffer) => (errors += chunk.toString()));
  const running = new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /RUNNING (\d+)/.exec(output);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', () => reject(new Error(`worker exited before running a trial: ${errors}`)));
  });
  running.catch(() => undefined);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      children.delete(child);
      if (code !== 0 && code !== null) console.error(errors);
      resolve(code);
    }),
  );
  return { child, running, exited };
}

/** The engines whose data other processes can open (SQLite, PostgreSQL): a fresh database each. */
const modes = engines
  .filter((engine) => engine.shared)
  .map((engine) => ({ ...engine, url: () => freshUrl(engine) }));

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (const mode of modes) {
  describe(`workers in separate processes: ${mode.name}`, { skip: mode.skip }, () => {
    it('three processes share one budget: trials numbered once each, every point different', async () => {
      const url = mode.url();
      const workers = [1, 2, 3].map((seed) => startWorker(url, 'shared', 12, 'run', seed));
      assert.deepEqual(await Promise.all(workers.map((w) => w.exited)), [0, 0, 0]);
      const storage = await openStorage(url);
      const study = await Study.load('shared', storage, { heartbeat: null });
      const trials = await study.trials();
      await storage.close();
      assert.deepEqual(
        trials.map((t) => t.number),
        Array.from({ length: 12 }, (_, i) => i),
      );
      assert.ok(trials.every((t) => t.state === 'complete'));
      assert.equal(new Set(trials.map((t) => t.worker)).size, 3);
      assert.equal(new Set(trials.map((t) => `${t.params.x},${t.params.y}`)).size, 12);
    });

    it('a worker killed mid-trial: heartbeats stop, the trial fails, a new process retries it and finishes the study', async () => {
      const url = mode.url();
      const hanging = startWorker(url, 'killed', 4, 'hang', 3);
      const number = await hanging.running;
      const storage: Storage = await openStorage(url);
      const study = await Study.load('killed', storage, { heartbeat: null });
      // The worker's thread is blocked, yet its heartbeat thread keeps the trial alive.
      const before = (await study.trials())[number]!;
      await sleep(1300);
      const during = (await study.trials())[number]!;
      assert.equal(during.state, 'running');
      assert.ok(
        during.heartbeatAt! > before.heartbeatAt!,
        'heartbeats continue while the trial blocks its thread',
      );
      hanging.child.kill('SIGKILL');
      await hanging.exited;
      await sleep(1300);
      // Every process is gone; a new one resumes the study.
      const resumed = startWorker(url, 'killed', 4, 'run', 3);
      assert.equal(await resumed.exited, 0);
      const trials = await study.trials();
      await storage.close();
      const dead = trials[number]!;
      assert.equal(dead.state, 'failed');
      assert.match(dead.error!, /stopped sending heartbeats/);
      const retry = trials.find((t) => t.retryOf === number)!;
      assert.equal(retry.state, 'complete');
      assert.deepEqual(retry.params, dead.params);
      // 4 counted trials, all complete except the one the retry replaced.
      assert.equal(trials.length, 5);
      assert.equal(trials.filter((t) => t.state === 'complete').length, 4);
    });
  });
}
