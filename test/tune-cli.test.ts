/** `tensile tune`: a small study run through the command line records every trial's training as a run. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openRunStore } from '../src/track/index.js';
import { openStorage, Study } from '../src/tune/index.js';

const cli = fileURLToPath(new URL('../cli/main.js', import.meta.url));

const studyYaml = `study: tiny
metric: validationAccuracy
direction: maximize
trials: 3
sampler: { name: random, seed: 2 }
pruner: none
data: { dataset: mnist, trainSamples: 256, validationSamples: 128, seed: 1 }
model: { channels: [4, 8] }
search:
  lr: { float: [1.0e-3, 1.0e-1], log: true }
  batchSize: 64
  optimizer: adam
  epochs: { int: [1, 2] }
`;

function runTune(directory: string, extra: string[]): void {
  const file = path.join(directory, 'study.yaml');
  fs.writeFileSync(file, studyYaml);
  const result = spawnSync(process.execPath, [cli, 'tune', file, '--quiet', ...extra], {
    cwd: directory,
    encoding: 'utf8',
  });
  assert.equal(result.status, 0, result.stderr);
}

describe('tensile tune (command line)', () => {
  it('records each trial as a run in the study store, linked both ways', async () => {
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-tune-cli-'));
    try {
      runTune(directory, []);
      // No --storage and no storage in the file: the default store, ./tensile.db, holds both.
      const url = `sqlite:${path.join(directory, 'tensile.db')}`;
      const runs = await openRunStore(url);
      const storage = await openStorage(url);
      try {
        const trials = await (await Study.load('tiny', storage, { heartbeat: null })).trials();
        assert.equal(trials.length, 3);
        const recorded = await runs.listRuns({ study: 'tiny' });
        assert.equal(recorded.length, 3);
        for (const trial of trials) {
          const run = recorded.find((r) => r.trialNumber === trial.number);
          assert.ok(run, `trial ${trial.number} has a run`);
          assert.equal(run.kind, 'trial');
          assert.equal(run.name, `tiny trial ${trial.number}`);
          assert.equal(run.state, 'complete');
          assert.equal(trial.userAttributes.runId, run.id);
          assert.equal(run.config.lr, trial.params.lr);
          assert.equal(run.config.epochs, trial.params.epochs);
          // One validation accuracy point per epoch, the last one being the trial's value.
          const metrics = await runs.getMetrics(run.id);
          const accuracy = metrics.series.validationAccuracy!;
          assert.equal(accuracy.value.length, trial.params.epochs);
          assert.equal(accuracy.value.at(-1), trial.value);
        }
      } finally {
        await runs.close();
        await storage.close();
      }
    } finally {
      fs.rmSync(directory, { recursive: true, force: true });
    }
  });

  it('records nothing with --no-track', async () => {
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-tune-cli-'));
    try {
      runTune(directory, ['--no-track', '--trials', '1']);
      const runs = await openRunStore(`sqlite:${path.join(directory, 'tensile.db')}`);
      try {
        assert.equal((await runs.listRuns()).length, 0);
      } finally {
        await runs.close();
      }
    } finally {
      fs.rmSync(directory, { recursive: true, force: true });
    }
  });
});
