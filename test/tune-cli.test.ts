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

  it('tunes on a folder of images given as data.path (2 trials)', async () => {
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-tune-cli-'));
    try {
      // Two classes told apart by which half of a 12×12 image is bright, 24 PNGs each.
      const sharp = (await import('sharp')).default;
      for (const [label, bright] of [
        ['top', 0],
        ['bottom', 1],
      ] as const) {
        fs.mkdirSync(path.join(directory, 'images', label), { recursive: true });
        for (let i = 0; i < 24; i++) {
          const pixels = Buffer.alloc(144, 20 + i);
          pixels.fill(200 + i, bright * 72, bright * 72 + 72);
          await sharp(pixels, { raw: { width: 12, height: 12, channels: 1 } })
            .png()
            .toFile(path.join(directory, 'images', label, `${i}.png`));
        }
      }
      const file = path.join(directory, 'study.yaml');
      fs.writeFileSync(
        file,
        studyYaml
          .replace('study: tiny', 'study: own')
          .replace('trials: 3', 'trials: 2')
          .replace(/^data: .*$/m, 'data: { path: images, imageSize: 8, grayscale: true, seed: 1 }'),
      );
      const result = spawnSync(process.execPath, [cli, 'tune', file], { cwd: directory, encoding: 'utf8' });
      assert.equal(result.status, 0, result.stderr);
      assert.match(result.stdout, /seed CNN 4-8 on images \(8×8 gray\)/);
      const url = `sqlite:${path.join(directory, 'tensile.db')}`;
      const storage = await openStorage(url);
      const runs = await openRunStore(url);
      try {
        const trials = await (await Study.load('own', storage, { heartbeat: null })).trials();
        assert.deepEqual(
          trials.map((t) => t.state),
          ['complete', 'complete'],
        );
        for (const trial of trials) assert.ok(trial.value! >= 0 && trial.value! <= 1, String(trial.value));
        const recorded = await runs.listRuns({ study: 'own' });
        assert.deepEqual(
          recorded.map((r) => r.config.dataset),
          ['images', 'images'],
        );
        // A fifth of the 48 images (10) is the validation set: accuracies are tenths.
        const metrics = await runs.getMetrics(recorded[0]!.id);
        const accuracies = metrics.series.validationAccuracy!.value;
        assert.ok(accuracies.length >= 1);
        for (const value of accuracies)
          assert.ok(value !== null && Math.abs(value * 10 - Math.round(value * 10)) < 1e-9, String(value));
      } finally {
        await runs.close();
        await storage.close();
      }
      // A wrong type stops the command before any trial, naming the field.
      fs.writeFileSync(file, studyYaml.replace(/^data: .*$/m, "data: { path: images, imageSize: 'big' }"));
      const wrong = spawnSync(process.execPath, [cli, 'tune', file], { cwd: directory, encoding: 'utf8' });
      assert.notEqual(wrong.status, 0);
      assert.match(wrong.stderr, /data\.imageSize: must be a positive integer, got the string "big"/);
    } finally {
      fs.rmSync(directory, { recursive: true, force: true });
    }
  });

  it('tunes a perceptron on a CSV table given as data.path and data.target (2 trials)', async () => {
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-tune-cli-'));
    try {
      // 60 rows: the class is whether x + y is above 1; a column of noise and a categorical one.
      const rows = ['x,y,colour,label'];
      for (let i = 0; i < 60; i++) {
        const x = ((i * 37) % 60) / 60;
        const y = ((i * 11) % 60) / 60;
        rows.push(`${x},${y},${['red', 'blue'][i % 2]},${x + y > 1 ? 'high' : 'low'}`);
      }
      fs.writeFileSync(path.join(directory, 'table.csv'), rows.join('\n'));
      const file = path.join(directory, 'study.yaml');
      fs.writeFileSync(
        file,
        studyYaml
          .replace('study: tiny', 'study: table')
          .replace('trials: 3', 'trials: 2')
          .replace(/^data: .*$/m, 'data: { path: table.csv, target: label, validationSamples: 20, seed: 1 }'),
      );
      const result = spawnSync(process.execPath, [cli, 'tune', file, '--no-track'], {
        cwd: directory,
        encoding: 'utf8',
      });
      assert.equal(result.status, 0, result.stderr);
      assert.match(result.stdout, /a perceptron \(64 hidden\) predicting 'label' of table\.csv/);
      const storage = await openStorage(`sqlite:${path.join(directory, 'tensile.db')}`);
      try {
        const trials = await (await Study.load('table', storage, { heartbeat: null })).trials();
        assert.deepEqual(
          trials.map((t) => t.state),
          ['complete', 'complete'],
        );
        // 20 validation rows: accuracies are twentieths.
        for (const trial of trials)
          assert.ok(Math.abs(trial.value! * 20 - Math.round(trial.value! * 20)) < 1e-9, String(trial.value));
      } finally {
        await storage.close();
      }
      // With an in-memory storage the summary reads the study before the storage closes.
      const inMemory = spawnSync(process.execPath, [cli, 'tune', file, '--no-track', '--storage', 'memory'], {
        cwd: directory,
        encoding: 'utf8',
      });
      assert.equal(inMemory.status, 0, inMemory.stderr);
      assert.match(inMemory.stdout, /^study 'table' in memory: 2 trials \(2 complete, /m);
      assert.match(inMemory.stdout, /^best: trial \d+, validationAccuracy /m);
      // A regression target cannot be judged by accuracy.
      fs.writeFileSync(file, studyYaml.replace(/^data: .*$/m, 'data: { path: table.csv, target: x }'));
      const wrong = spawnSync(process.execPath, [cli, 'tune', file, '--no-track'], {
        cwd: directory,
        encoding: 'utf8',
      });
      assert.notEqual(wrong.status, 0);
      assert.match(wrong.stderr, /'x' is a regression target: metric must be validationLoss or loss/);
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
