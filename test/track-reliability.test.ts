/**
 * Tracking never fails training: a SQLite run store locked by another process during `tensile
 * train` neither stalls the loop nor changes the command's result line or exit code, and the run is
 * complete with every point once the lock goes. A script that opens and closes the stores exits by
 * itself.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SqliteRunStore, type RunMetrics } from '../src/track/index.js';

const cli = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const sqliteDriver = createRequire(import.meta.url).resolve('better-sqlite3');
const temporary = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-track-reliability-'));
const children = new Set<ChildProcess>();

after(() => {
  for (const child of children) child.kill('SIGKILL');
  fs.rmSync(temporary, { recursive: true, force: true });
});

const trainArguments = ['train', '--epochs', '1', '--channels', '4,4', '--test-fraction', '0.9'];

/** The result line without its duration (the only part that may differ between two runs). */
function resultLine(output: string): string {
  const line = output.split('\n').find((l) => l.startsWith('test accuracy:'));
  assert.ok(line !== undefined, `no result line in:\n${output}`);
  return line.replace(/, \d+ s$/, '');
}

/**
 * Each recorded series with its steps, leaving out batchLoss: its points are spaced by wall time
 * (one per batchInterval), so their number differs between two runs of the same training.
 */
function recordedSeries(metrics: RunMetrics): Record<string, number[]> {
  return Object.fromEntries(
    Object.entries(metrics.series)
      .filter(([name]) => name !== 'batchLoss')
      .map(([name, series]) => [name, series.step])
      .sort(([a], [b]) => String(a).localeCompare(String(b))),
  );
}

/**
 * A process that takes SQLite's write lock on `file` (BEGIN EXCLUSIVE) when a line arrives on its
 * stdin, says LOCKED, holds it `milliseconds`, then commits and says UNLOCKED.
 */
function lockHolder(file: string, milliseconds: number): { child: ChildProcess; locked: Promise<number> } {
  const source = `
    const Database = require(${JSON.stringify(sqliteDriver)});
    const db = new Database(${JSON.stringify(file)}, { timeout: 10000 });
    process.stdin.once('data', () => {
      db.exec('BEGIN EXCLUSIVE');
      console.log('LOCKED');
      setTimeout(() => { db.exec('COMMIT'); db.close(); console.log('UNLOCKED'); process.exit(0); }, ${milliseconds});
    });`;
  const child = spawn(process.execPath, ['-e', source], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.add(child);
  const locked = new Promise<number>((resolve) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('LOCKED')) resolve(performance.now());
    });
  });
  return { child, locked };
}

describe('tracking never fails training', () => {
  it('a SQLite lock held by another process during tensile train: same result line and exit code, no stall, nothing lost', async () => {
    const baselineDirectory = fs.mkdtempSync(path.join(temporary, 'baseline-'));
    const baseline = spawnSync(process.execPath, [cli, ...trainArguments, '--storage', 'sqlite:./runs.db'], {
      cwd: baselineDirectory,
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(baseline.status, 0, baseline.stderr);
    const baselineStore = new SqliteRunStore(path.join(baselineDirectory, 'runs.db'));
    const [baselineRun] = await baselineStore.listRuns();
    const baselineSeries = recordedSeries(await baselineStore.getMetrics(baselineRun!.id));
    await baselineStore.close();
    assert.ok(
      'batchLearningRate' in baselineSeries && 'loss' in baselineSeries,
      Object.keys(baselineSeries).join(),
    );

    const directory = fs.mkdtempSync(path.join(temporary, 'locked-'));
    const file = path.join(directory, 'runs.db');
    // The tables exist before the lock, as they do for anyone who has trained here before.
    new SqliteRunStore(file).close();
    const lockMilliseconds = 5000;
    const holder = lockHolder(file, lockMilliseconds);
    const train = spawn(process.execPath, [cli, ...trainArguments, '--storage', 'sqlite:./runs.db'], {
      cwd: directory,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(train);
    let stdout = '';
    let stderr = '';
    let epochLineAt: number | null = null;
    train.stdout!.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      // The run exists: lock the file before the training loop writes its first points.
      if (!stdout.includes('recording run') && (stdout + text).includes('recording run'))
        holder.child.stdin!.write('go\n');
      stdout += text;
    });
    // Progress lines go to stderr: the epoch's line is printed when the training loop has ended.
    train.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (epochLineAt === null && /epoch 1\/1/.test(stderr)) epochLineAt = performance.now();
    });
    const code = await new Promise<number | null>((resolve) => train.once('exit', (c) => resolve(c)));
    const lockedAt = await holder.locked;

    assert.equal(code, 0, stderr);
    assert.equal(resultLine(stdout), resultLine(baseline.stdout));
    // The lock was held while the loop ran (the warning says writes were delayed), yet the epoch
    // ended long before the lock was released: the loop did not wait for it.
    assert.match(stderr, /is locked by another connection; recording is delayed \(training goes on\)/);
    assert.ok(epochLineAt !== null, stderr);
    assert.ok(
      epochLineAt - lockedAt < lockMilliseconds / 2,
      `the epoch ended ${(epochLineAt - lockedAt).toFixed(0)} ms after the lock was taken`,
    );
    // Once the lock went, every deferred write landed: the same points as the run without a lock.
    const store = new SqliteRunStore(file);
    const [run] = await store.listRuns();
    assert.equal(run!.state, 'complete');
    assert.deepEqual(recordedSeries(await store.getMetrics(run!.id)), baselineSeries);
    assert.equal(typeof run!.summary.testAccuracy, 'number');
    await store.close();
  });

  it('a script that opens and closes the SQLite run store and study storage exits by itself', () => {
    const source = `
      const { SqliteStorage, Study } = await import(${JSON.stringify(new URL('../src/index.js', import.meta.url).href)});
      const { SqliteRunStore, RunTracker } = await import(${JSON.stringify(new URL('../src/track/index.js', import.meta.url).href)});
      const file = ${JSON.stringify(path.join(temporary, 'script.db'))};
      const storage = new SqliteStorage(file);
      const study = await Study.create({ name: 'exit', storage, direction: 'minimize', loadIfExists: true });
      const trial = await study.ask();
      await study.tell(trial, trial.suggestFloat('x', 0, 1));
      const runs = new SqliteRunStore(file);
      const tracker = await RunTracker.start(runs, { name: 'exit' });
      tracker.logMetrics([{ name: 'loss', step: 1, x: 1, value: 0.5 }]);
      await tracker.finish();
      await tracker.close();
      await runs.close();
      await storage.close();
      console.log('CLOSED');
    `;
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', source], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    // Before, the ask/tell study's heartbeat thread kept the process alive after storage.close().
    assert.equal(result.signal, null, `still running after 20 s (killed): ${result.stdout}${result.stderr}`);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /CLOSED/);
  });
});
