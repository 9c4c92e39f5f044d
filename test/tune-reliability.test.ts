/**
 * Reliability of tuning (issue 13): study files checked before any trial; worker processes that end
 * with their parent and a parent that reports failed workers; heartbeat minimums; a diverging trial
 * fails instead of completing. The PostgreSQL restart tests are in tune-postgres-restart.test.ts.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { parseStudyConfig } from '../src/tune/config.js';
import { loadMnist } from '../src/index.js';
import {
  checkHeartbeat,
  MemoryStorage,
  RandomSampler,
  Study,
  trainingHyperparameters,
  trainWithHyperparameters,
  tuningSplit,
} from '../src/tune/index.js';

const cli = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const temporary = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-tune-reliability-'));
const children = new Set<ChildProcess>();

after(() => {
  for (const child of children) child.kill('SIGKILL');
  fs.rmSync(temporary, { recursive: true, force: true });
});

/** A small valid study file; `lines` replace or add top-level entries. */
function studyFile(directory: string, overrides: Record<string, string> = {}): string {
  const entries: Record<string, string> = {
    study: 'reliability',
    trials: '4',
    sampler: '{ name: random, seed: 3 }',
    pruner: 'none',
    heartbeat: '{ intervalSeconds: 0.2, graceSeconds: 3 }',
    data: '{ dataset: mnist, trainSamples: 128, validationSamples: 64, seed: 1 }',
    model: '{ channels: [4, 4] }',
    search: '{ lr: { float: [1.0e-3, 1.0e-2], log: true }, batchSize: 64, optimizer: adam, epochs: 1 }',
    ...overrides,
  };
  const file = path.join(directory, 'study.yaml');
  fs.writeFileSync(
    file,
    Object.entries(entries)
      .map(([key, value]) => `${key}: ${value}`)
      .join('\n') + '\n',
  );
  return file;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The ids of `parent`'s child processes (procps `ps`). */
function childProcesses(parent: number): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=', '--ppid', String(parent)], { encoding: 'utf8' })
      .split('\n')
      .map((line) => Number(line.trim()))
      .filter((pid) => pid > 0);
  } catch {
    return [];
  }
}

describe('study files are checked before any trial', () => {
  const cases: { name: string; overrides: Record<string, string>; message: RegExp }[] = [
    { name: 'data as a string', overrides: { data: 'mnist' }, message: /data: must be a mapping/ },
    {
      name: 'storage as a number',
      overrides: { storage: '5' },
      message: /storage: must be a storage URL \(a string/,
    },
    {
      name: 'trials as text',
      overrides: { trials: 'many' },
      message: /trials: must be a positive integer, got the string "many"/,
    },
    {
      name: 'an optimizer the trainer lacks',
      overrides: { search: '{ optimizer: { categorical: [adam, rmsprop] } }' },
      message: /search 'optimizer': optimizer must be sgd, adam or adamw, got "rmsprop"/,
    },
    {
      name: 'batchSize 0',
      overrides: { search: '{ batchSize: 0 }' },
      message: /search 'batchSize': batchSize must be a positive integer, got 0/,
    },
    {
      name: 'epochs 0',
      overrides: { search: '{ epochs: { int: [0, 2] } }' },
      message: /search 'epochs': epochs must be a positive integer, got 0/,
    },
    {
      name: 'lr 0',
      overrides: { search: '{ lr: { float: [0, 0.1] } }' },
      message: /search 'lr': lr must be positive, got 0/,
    },
    {
      name: 'an unknown hyperparameter',
      overrides: { search: '{ learningRate: 0.1 }' },
      message: /search 'learningRate': not a training hyperparameter/,
    },
    {
      name: 'a data field of the wrong type',
      overrides: { data: '{ trainSamples: "lots" }' },
      message: /data.trainSamples: must be a positive integer/,
    },
    {
      name: 'a heartbeat grace below the minimum',
      overrides: { heartbeat: '{ intervalSeconds: 0.2, graceSeconds: 0.011 }' },
      message: /heartbeat: graceSeconds must be at least 3 × intervalSeconds and at least 1 s/,
    },
    {
      name: 'a heartbeat interval below the minimum',
      overrides: { heartbeat: '{ intervalSeconds: 0.01, graceSeconds: 5 }' },
      message: /heartbeat: intervalSeconds must be at least 0.1/,
    },
  ];
  // Through the command line for a few (exit code, nothing stored); the parser for the rest.
  const throughCli = new Set(['data as a string', 'storage as a number', 'an optimizer the trainer lacks']);
  for (const { name, overrides, message } of cases.filter((c) => !throughCli.has(c.name))) {
    it(`${name}: refused naming the field`, () => {
      const file = studyFile(fs.mkdtempSync(path.join(temporary, 'config-')), overrides);
      assert.throws(
        () => parseStudyConfig(YAML.parse(fs.readFileSync(file, 'utf8')), { storage: 'memory' }),
        message,
      );
    });
  }
  for (const { name, overrides, message } of cases.filter((c) => throughCli.has(c.name))) {
    it(`${name}: exit 2 naming the field, nothing stored`, () => {
      const directory = fs.mkdtempSync(path.join(temporary, 'config-'));
      const file = studyFile(directory, overrides);
      const result = spawnSync(process.execPath, [cli, 'tune', file, '--storage', 'sqlite:./study.db'], {
        cwd: directory,
        encoding: 'utf8',
        timeout: 30_000,
      });
      assert.equal(result.status, 2, `${result.stdout}${result.stderr}`);
      assert.match(result.stderr, message);
      assert.doesNotMatch(result.stdout, /trial +\d/);
      // Refused before the study (or its storage) was opened.
      assert.equal(fs.existsSync(path.join(directory, 'study.db')), false);
    });
  }
});

describe('tune processes', () => {
  it('heartbeat settings below the minimums are refused with the minimum', async () => {
    assert.throws(
      () => checkHeartbeat({ intervalSeconds: 0.05, graceSeconds: 10 }),
      /intervalSeconds must be at least 0.1, got 0.05/,
    );
    assert.throws(
      () => checkHeartbeat({ intervalSeconds: 1, graceSeconds: 2 }),
      /graceSeconds must be at least 3 × intervalSeconds and at least 1 s \(3 here\), got 2/,
    );
    assert.throws(
      () => checkHeartbeat({ intervalSeconds: 0.1, graceSeconds: 0.5 }),
      /at least 1 s \(1 here\), got 0.5/,
    );
    checkHeartbeat({ intervalSeconds: 0.1, graceSeconds: 1 });
    await assert.rejects(
      Study.create({
        storage: new MemoryStorage(),
        heartbeat: { intervalSeconds: 0.011, graceSeconds: 0.011 },
      }),
      /heartbeat: intervalSeconds must be at least 0.1/,
    );
  });

  it('killing the parent of tune --workers 2 ends its workers within a few seconds', async () => {
    const directory = fs.mkdtempSync(path.join(temporary, 'orphans-'));
    const file = studyFile(directory, { trials: '200' });
    const parent = spawn(
      process.execPath,
      [cli, 'tune', file, '--workers', '2', '--storage', 'sqlite:./study.db', '--no-track'],
      {
        cwd: directory,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    children.add(parent);
    // Both workers are at work once trial lines appear.
    await new Promise<void>((resolve, reject) => {
      let output = '';
      const timer = setTimeout(() => reject(new Error(`no trial finished in 60 s:\n${output}`)), 60_000);
      parent.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (/\[worker \d\] trial/.test(output)) {
          clearTimeout(timer);
          resolve();
        }
      });
      parent.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    });
    const workers = childProcesses(parent.pid!);
    assert.equal(workers.length, 2, `worker processes of ${parent.pid}: ${workers.join(', ')}`);
    parent.kill('SIGKILL');
    const deadline = Date.now() + 5000;
    while (workers.some(processAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const left = workers.filter(processAlive);
    for (const pid of left) process.kill(pid, 'SIGKILL');
    assert.deepEqual(left, [], 'workers still running 5 s after their parent was killed');
  });

  it('a worker that fails makes tune --workers 2 exit non-zero, naming it', () => {
    const directory = fs.mkdtempSync(path.join(temporary, 'failing-'));
    // More images than MNIST holds: each worker fails when it loads the data.
    const file = studyFile(directory, {
      data: '{ dataset: mnist, trainSamples: 9500, validationSamples: 1000 }',
    });
    const result = spawnSync(
      process.execPath,
      [cli, 'tune', file, '--workers', '2', '--storage', 'sqlite:./study.db', '--no-track'],
      {
        cwd: directory,
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    assert.equal(result.status, 1, `${result.stdout}${result.stderr}`);
    assert.match(
      result.stderr,
      /tensile tune: 2 worker\(s\) failed: worker 1 \(exit 1\), worker 2 \(exit 1\)/,
    );
  });

  it('a trial whose training diverges ends failed with the reason, never complete', async () => {
    const { train, validation } = tuningSplit(loadMnist(), {
      trainSamples: 128,
      validationSamples: 64,
      seed: 1,
    });
    const study = await Study.create({ sampler: new RandomSampler({ seed: 1 }), heartbeat: null });
    await study.optimize(
      (trial) =>
        trainWithHyperparameters(
          { train, validation, channels: [4, 4], seed: 1 },
          trainingHyperparameters({ lr: 1e12, optimizer: 'sgd', momentum: 0.9, epochs: 1, batchSize: 32 }),
          { trial },
        ).value,
      { nTrials: 1 },
    );
    const [trial] = await study.trials();
    assert.equal(trial!.state, 'failed');
    assert.equal(trial!.value, null);
    assert.match(trial!.error!, /NonFiniteError/);
  });
});
