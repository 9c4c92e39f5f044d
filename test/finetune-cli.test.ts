/** `tensile finetune` through the command line: its run holds the curves, the test result and the saved weights. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openRunStore } from '../src/track/index.js';

const cli = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const pretrained = fileURLToPath(
  new URL('../../pretrained/seed-cnn-fashion-mnist.safetensors', import.meta.url),
);

test('a fine-tune records its run with test accuracy and the weights file as an artifact', async () => {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-finetune-cli-'));
  try {
    const weights = path.join(directory, 'tuned.safetensors');
    const result = spawnSync(
      process.execPath,
      [
        cli,
        'finetune',
        '--from',
        pretrained,
        '--strategy',
        'headOnly',
        '--per-class',
        '5',
        '--epochs',
        '2',
        '--save',
        weights,
        '--quiet',
      ],
      { cwd: directory, encoding: 'utf8' },
    );
    assert.equal(result.status, 0, result.stderr);
    const printed = Number(/test accuracy: ([\d.]+)%/.exec(result.stdout)?.[1]);
    const runs = await openRunStore(`sqlite:${path.join(directory, 'tensile.db')}`);
    try {
      const [run] = await runs.listRuns({ kind: 'finetune' });
      assert.ok(run);
      assert.equal(run.state, 'complete');
      assert.equal(run.config.strategy, 'headOnly');
      assert.equal(Number(((run.summary.testAccuracy as number) * 100).toFixed(2)), printed);
      const metrics = await runs.getMetrics(run.id);
      assert.equal(metrics.series.loss?.value.length, 2);
      const artifacts = await runs.listArtifacts(run.id);
      assert.deepEqual(
        artifacts.map((a) => [a.name, a.path]),
        [['weights', weights]],
      );
      assert.ok(fs.existsSync(weights));
    } finally {
      await runs.close();
    }
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
  }
});
