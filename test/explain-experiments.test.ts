/**
 * tensile explain shows the experiments' own results once they have been run where it runs: DL0008
 * after `tensile experiment lr-batch` and `search`, DL0005 and DL0006 after `tensile experiment
 * transfer`. The experiments run here at toy sizes, through the command line, as a user would.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openRunStore } from '../src/track/index.js';
import { openStorage } from '../src/tune/index.js';

const cli = fileURLToPath(new URL('../cli/main.js', import.meta.url));

function tensile(directory: string, args: string[]): string {
  const result = spawnSync(process.execPath, [cli, ...args], { cwd: directory, encoding: 'utf8' });
  assert.equal(result.status, 0, `tensile ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

test('explain picks up the tuning and transfer experiments run in the same folder; each is recorded as runs', async () => {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-explain-experiments-'));
  try {
    const before = tensile(directory, ['explain', 'DL0008', '--quick']);
    assert.match(before, /run them and this topic shows their results too/);

    const tiny = ['--train', '200', '--validation', '100', '--epochs', '1', '--channels', '4,8'];
    tensile(directory, ['experiment', 'lr-batch', ...tiny, '--points', '3', '--seeds', '2']);
    tensile(directory, [
      'experiment',
      'search',
      ...tiny,
      '--budget',
      '4',
      '--repeats',
      '1',
      '--strategies',
      'random,tpe',
    ]);
    // A new experiment result makes the cached topic stale: no --fresh needed.
    const tuning = tensile(directory, ['explain', 'DL0008', '--quick']);
    assert.match(
      tuning,
      /From tensile experiment lr-batch \(its results in out[/\\]experiments[/\\]lr-batch/,
    );
    assert.match(tuning, /From tensile experiment search/);
    // Its table: one row per strategy run.
    assert.match(tuning, /tensile experiment search: .*\n.*\n.*\nrandom +\d/);
    for (const figure of ['experiment-lr-batch.png', 'experiment-search.svg'])
      assert.ok(fs.existsSync(path.join(directory, 'out', 'explain', 'quick', 'DL0008', figure)), figure);

    const transferArgs = [
      'experiment',
      'transfer',
      '--sizes',
      '10',
      '--epochs',
      '1',
      '--pretrain-epochs',
      '1',
      '--methods',
      'scratch,fineTune',
      '--tasks',
      'digits',
      '--seeds',
      '2',
    ];
    // A quick run is written apart and labelled, and the topics do not take it for the result.
    tensile(directory, [...transferArgs, '--quick']);
    const quickTable = fs.readFileSync(path.join(directory, 'out', 'transfer', 'quick', 'table.md'), 'utf8');
    assert.match(quickTable, /QUICK RUN/);
    assert.ok(!fs.existsSync(path.join(directory, 'out', 'transfer', 'table.md')));
    assert.match(
      tensile(directory, ['explain', 'DL0005', '--quick']),
      /run it and this topic shows its results too/,
    );

    tensile(directory, transferArgs);
    const table = fs.readFileSync(path.join(directory, 'out', 'transfer', 'table.md'), 'utf8');
    assert.doesNotMatch(table, /QUICK/);
    // Mean ± t interval over the 2 seeds, and fineTune against scratch by a paired t-test.
    assert.match(table, /95% Student t interval over 2 seeds/);
    assert.match(table, /\| fineTune \| [−-]?\d+\.\d ± \d+\.\d \(p [=<] [\d.]+\)/);
    for (const topic of ['DL0005', 'DL0006']) {
      const text = tensile(directory, ['explain', topic, '--quick']);
      assert.match(text, /From tensile experiment transfer \(its results in out[/\\]transfer/, topic);
      assert.match(text, /tensile experiment transfer: digits 0–4 → digits 5–9/, topic);
    }

    // Each experiment is a run with its trainings as child runs, and its studies are in the store.
    const url = `sqlite:${path.join(directory, 'tensile.db')}`;
    const runs = await openRunStore(url);
    const storage = await openStorage(url);
    try {
      const experiments = await runs.listRuns({ kind: 'experiment' });
      const children = async (name: string) => {
        const parent = experiments.find((run) => run.name.startsWith(`experiment ${name} `));
        assert.ok(parent, name);
        assert.equal(parent.state, 'complete');
        assert.ok((await runs.listArtifacts(parent.id)).some((a) => a.mediaType === 'image/svg+xml'));
        return runs.listRuns({ parentId: parent.id });
      };
      const grid = await children('lr-batch');
      assert.equal(grid.length, 3 * 2 * 2, '3 rates × 2 batch sizes × 2 seeds');
      assert.ok(grid.every((run) => run.kind === 'trial' && run.state === 'complete' && run.pointCount > 0));
      assert.equal((await children('search')).length, 2 * 4);
      const transfer = (await runs.listRuns({ kind: 'experiment' })).filter((run) =>
        run.name.startsWith('experiment transfer '),
      );
      assert.equal(transfer.length, 2, 'the quick and the full run');
      for (const parent of transfer)
        assert.deepEqual((await runs.listRuns({ parentId: parent.id })).map((run) => run.name).sort(), [
          'transfer digits fineTune 10/class seed 1',
          'transfer digits fineTune 10/class seed 2',
          'transfer digits scratch 10/class seed 1',
          'transfer digits scratch 10/class seed 2',
          'transfer digits: pretraining',
        ]);
      const studies = (await storage.listStudies()).map((study) => study.name);
      assert.ok(studies.some((name) => name.startsWith('lr-batch ')));
      assert.ok(studies.some((name) => name.startsWith('search random-0 ')));
    } finally {
      await runs.close();
      await storage.close();
    }
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
  }
});
