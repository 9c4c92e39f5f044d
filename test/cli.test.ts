/**
 * The command line's conventions: help on every command and subcommand exits 0, --version, mistyped
 * options and commands suggest the nearest valid one and exit 2, file errors read as one line without
 * errno text or a stack (unless --verbose).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { describeFailure, editDistance, nearest, UsageError } from '../cli/arguments.js';
import { openRunStore } from '../src/track/index.js';

const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const main = path.join(repositoryRoot, 'dist', 'cli', 'main.js');
const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-cli-'));

function tensile(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [main, ...args], {
    cwd: directory,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const commands = [
  ['train'],
  ['finetune'],
  ['tune'],
  ['study'],
  ['explain'],
  ['dashboard'],
  ['report'],
  ['experiment'],
  ['experiment', 'transfer'],
  ['experiment', 'lr-batch'],
  ['experiment', 'search'],
  ['lr-find'],
  ['evaluate'],
  ['predict'],
  ['export'],
];

describe('command line conventions', () => {
  it('--help and -h on every command and subcommand print its usage and exit 0', () => {
    for (const words of [[], ...commands]) {
      for (const flag of ['--help', '-h']) {
        const { status, stdout, stderr } = tensile([...words, flag]);
        assert.equal(status, 0, `tensile ${[...words, flag].join(' ')}: ${stderr}`);
        assert.match(stdout, new RegExp(`^usage: tensile ${words.join(' ')}`), words.join(' '));
      }
    }
  });

  it('--version prints the package version', () => {
    const { version } = JSON.parse(fs.readFileSync(path.join(repositoryRoot, 'package.json'), 'utf8')) as {
      version: string;
    };
    const { status, stdout } = tensile(['--version']);
    assert.equal(status, 0);
    assert.equal(stdout.trim(), `tensile ${version}`);
  });

  it('no command is a usage error: usage on stderr, exit 2', () => {
    const { status, stdout, stderr } = tensile([]);
    assert.equal(status, 2);
    assert.equal(stdout, '');
    assert.match(stderr, /^usage: tensile <command>/);
    assert.match(stderr, /exit codes: 0 ok, 1 failure, 2 usage error/);
  });

  it('an unknown option names it, suggests the nearest and points at the command help (exit 2)', () => {
    const typo = tensile(['train', '--epoch', '3']);
    assert.equal(typo.status, 2);
    assert.equal(
      typo.stderr.trim(),
      "tensile train: unknown option '--epoch'; did you mean '--epochs'? see 'tensile train --help'",
    );
    const far = tensile(['tune', '--zzzzzz']);
    assert.equal(far.status, 2);
    assert.equal(far.stderr.trim(), "tensile tune: unknown option '--zzzzzz'; see 'tensile tune --help'");
    const missing = tensile(['train', '--epochs']);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /option '--epochs' needs a value; see 'tensile train --help'/);
    const experiment = tensile(['experiment', 'lr-batch', '--sed', '2']);
    assert.equal(experiment.status, 2);
    assert.match(
      experiment.stderr,
      /tensile experiment lr-batch: unknown option '--sed'; did you mean '--seed'\?/,
    );
  });

  it('an unknown command or experiment suggests the nearest (exit 2)', () => {
    const command = tensile(['trian']);
    assert.equal(command.status, 2);
    assert.equal(
      command.stderr.trim(),
      "tensile: unknown command 'trian'; did you mean 'train'? see 'tensile --help'",
    );
    const experiment = tensile(['experiment', 'tarnsfer']);
    assert.equal(experiment.status, 2);
    assert.match(experiment.stderr, /unknown experiment 'tarnsfer'; did you mean 'transfer'\?/);
    const option = tensile(['--verison']);
    assert.equal(option.status, 2);
    assert.match(option.stderr, /did you mean '--version'\?/);
  });

  it('a missing file reads as one line without errno text or stack; --verbose adds the stack', () => {
    const args = ['finetune', '--from', 'nope.safetensors', '--strategy', 'headOnly', '--no-track'];
    const plain = tensile(args);
    assert.equal(plain.status, 1);
    assert.equal(plain.stderr.trim(), "tensile: cannot read 'nope.safetensors': no such file");
    const verbose = tensile(['--verbose', ...args]);
    assert.equal(verbose.status, 1);
    assert.match(verbose.stderr, /^tensile: cannot read 'nope.safetensors': no such file\n/);
    assert.match(verbose.stderr, /\n\s+at /, 'the stack follows with --verbose');
  });
});

describe('tensile train checks before it works, and never saves a diverged model', () => {
  it('refuses bad numbers and splits before loading any data (exit 2)', () => {
    const cases: [string[], RegExp][] = [
      [['--test-fraction', '0'], /tensile train: --test-fraction must be a number > 0 and < 1, got '0'/],
      [['--test-fraction', '1'], /--test-fraction must be a number > 0 and < 1/],
      [['--test-fraction', '2'], /--test-fraction must be a number > 0 and < 1/],
      [['--epochs', '0'], /--epochs must be an integer ≥ 1, got '0'/],
      [['--epochs', '2.5'], /--epochs must be an integer ≥ 1, got '2.5'/],
      [['--batch-size', 'x'], /--batch-size must be a number, got 'x'/],
      [['--lr=-1'], /--lr must be a number > 0, got '-1'/],
      [['--lr', '-1'], /option '--lr' needs a value \(one that starts with '-' is written --lr=VALUE\)/],
      [['--dataset', 'cifar'], /--dataset must be mnist or fashion-mnist, got 'cifar'/],
    ];
    for (const [args, message] of cases) {
      const { status, stderr } = tensile(['train', '--no-track', '--quiet', ...args]);
      assert.equal(status, 2, args.join(' '));
      assert.match(stderr, message);
    }
  });

  it('tensile finetune refuses empty training sets and bad numbers before reading anything (exit 2)', () => {
    const pretrained = path.join(repositoryRoot, 'pretrained', 'seed-cnn-fashion-mnist.safetensors');
    const cases: [string[], RegExp][] = [
      [['--per-class', '0'], /tensile finetune: --per-class must be an integer ≥ 1, got '0'/],
      [['--test-fraction', '1'], /--test-fraction must be a number > 0 and < 1, got '1'/],
      [['--freeze-epochs', '-1'], /option '--freeze-epochs' needs a value/],
      [['--freeze-epochs=-1'], /--freeze-epochs must be an integer ≥ 0, got '-1'/],
      [['--classes', '1,x'], /--classes must be class numbers like 0,1,2, got '1,x'/],
    ];
    for (const [args, message] of cases) {
      const { status, stderr } = tensile([
        'finetune',
        '--from',
        pretrained,
        '--no-track',
        '--quiet',
        ...args,
      ]);
      assert.equal(status, 2, args.join(' '));
      assert.match(stderr, message);
    }
  });

  it('every command checks its numbers with the same rules before any work (exit 2)', () => {
    const cases: [string[], RegExp][] = [
      [
        ['experiment', 'search', '--budget', 'x'],
        /tensile experiment search: --budget must be a number, got 'x'/,
      ],
      [['experiment', 'lr-batch', '--points', '0'], /--points must be an integer ≥ 1, got '0'/],
      [['experiment', 'transfer', '--seeds', '0'], /--seeds must be an integer ≥ 1, got '0'/],
      [
        ['tune', 'examples/study.yaml', '--workers', '1.5'],
        /tensile tune: --workers must be an integer ≥ 1, got '1.5'/,
      ],
      [['dashboard', '--port', '70000'], /--port must be an integer ≥ 0 and < 65536, got '70000'/],
      [['report', '--max-points', '5'], /--max-points must be an integer ≥ 10, got '5'/],
    ];
    for (const [args, message] of cases) {
      const result = spawnSync(process.execPath, [main, ...args], {
        cwd: repositoryRoot,
        encoding: 'utf8',
        timeout: 60_000,
      });
      assert.equal(result.status, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message);
    }
  });

  it('checks the --save target before training: a directory or a device is refused naming it', () => {
    const { status, stderr } = tensile(['train', '--no-track', '--quiet', '--save', directory]);
    assert.equal(status, 1);
    assert.equal(stderr.trim(), `tensile: cannot write '${directory}': is a directory`);
    const device = tensile(['train', '--no-track', '--quiet', '--save', '/dev/null']);
    assert.equal(device.status, 1);
    assert.match(
      device.stderr,
      /cannot write '\/dev\/null': it is not a regular file \(a character device\)/,
    );
  });

  it('--lr 1e6 stops with the step and parameter, writes no file, records the run failed (exit 1)', async () => {
    const database = path.join(directory, 'runs.db');
    const weights = path.join(directory, 'diverged.safetensors');
    const args = ['train', '--quiet', '--lr', '1e6', '--epochs', '1', '--save', weights];
    const { status, stderr } = tensile([...args, '--storage', `sqlite:${database}`]);
    assert.equal(status, 1, stderr);
    assert.match(
      stderr,
      /^tensile: training diverged at step \d+ \(epoch 1, batch \d+ of \d+\): the loss is .*'0\.weight'/,
    );
    assert.equal(fs.existsSync(weights), false, 'no weights written');
    const store = await openRunStore(`sqlite:${database}`);
    try {
      const runs = await store.listRuns();
      assert.equal(runs.length, 1);
      assert.equal(runs[0]!.state, 'failed');
    } finally {
      await store.close();
    }
  });

  it('a disk that fills up during the save: the trained model goes to a fallback file whose path is printed', (context) => {
    // A 64 KiB tmpfs filled to the last byte; mounting needs root (CI and this machine run as root).
    const full = path.join(directory, 'full-disk');
    fs.mkdirSync(full);
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', full], {
      encoding: 'utf8',
    });
    if (mounted.status !== 0) {
      context.skip(`cannot mount a small tmpfs here: ${mounted.stderr.trim()}`);
      return;
    }
    try {
      spawnSync('dd', ['if=/dev/zero', `of=${path.join(full, 'fill')}`, 'bs=1k', 'count=64']);
      const target = path.join(full, 'w.safetensors');
      const args = [
        'train',
        '--no-track',
        '--quiet',
        '--epochs',
        '1',
        '--channels',
        '4,4',
        '--test-fraction',
        '0.9',
      ];
      const { status, stderr } = tensile([...args, '--save', target]);
      assert.equal(status, 1);
      const match =
        /^tensile: cannot write '(.*)': disk full; the trained model was written to '(.*)' instead$/m.exec(
          stderr,
        );
      assert.ok(match, stderr);
      assert.equal(match[1], target);
      assert.ok(fs.statSync(match[2]!).size > 0, 'the fallback file holds the model');
      assert.equal(fs.existsSync(target), false);
      assert.deepEqual(fs.readdirSync(full), ['fill'], 'no temporary file left on the full disk');
      // finetune saves through the same path.
      const pretrained = path.join(repositoryRoot, 'pretrained', 'seed-cnn-fashion-mnist.safetensors');
      const tuned = tensile([
        'finetune',
        '--from',
        pretrained,
        '--no-track',
        '--quiet',
        '--epochs',
        '1',
        '--per-class',
        '5',
        '--save',
        path.join(full, 'tuned.safetensors'),
      ]);
      assert.equal(tuned.status, 1, tuned.stderr);
      assert.match(
        tuned.stderr,
        /cannot write '.*tuned\.safetensors': disk full; the trained model was written to '.*tensile-unsaved-tuned-\d+\.safetensors' instead/,
      );
    } finally {
      spawnSync('umount', [full]);
    }
  });

  it('a symbolic link as --save target is written through to its target', () => {
    const target = path.join(directory, 'real.safetensors');
    const link = path.join(directory, 'link.safetensors');
    fs.symlinkSync(target, link);
    const { status, stderr } = tensile([
      'train',
      '--no-track',
      '--quiet',
      '--epochs',
      '1',
      '--test-fraction',
      '0.9',
      '--channels',
      '4,4',
      '--save',
      link,
    ]);
    assert.equal(status, 0, stderr);
    assert.ok(fs.lstatSync(link).isSymbolicLink(), 'the link stays a link');
    assert.ok(fs.statSync(target).size > 0, 'the weights are in its target');
  });
});

describe('argument helpers', () => {
  it('edit distance counts a transposition as one edit', () => {
    assert.equal(editDistance('train', 'train'), 0);
    assert.equal(editDistance('trian', 'train'), 1);
    assert.equal(editDistance('kitten', 'sitting'), 3);
    assert.equal(editDistance('', 'abc'), 3);
  });

  it('nearest suggests only likely typos', () => {
    assert.equal(nearest('--epoch', ['--epochs', '--lr']), '--epochs');
    assert.equal(nearest('--bacth-size', ['--batch-size', '--seed']), '--batch-size');
    assert.equal(nearest('--zzzz', ['--epochs', '--lr']), undefined);
    assert.equal(nearest('x', []), undefined);
  });

  it('describeFailure maps file errors, usage errors and other errors to a line and an exit code', () => {
    const enoent = Object.assign(new Error("ENOENT: no such file or directory, open 'a.db'"), {
      code: 'ENOENT',
      path: 'a.db',
      syscall: 'open',
    });
    assert.deepEqual(describeFailure(enoent, false), {
      line: "tensile: cannot read 'a.db': no such file",
      exitCode: 1,
    });
    const full = Object.assign(new Error('ENOSPC'), {
      code: 'ENOSPC',
      path: 'w.safetensors',
      syscall: 'write',
    });
    assert.equal(describeFailure(full, false).line, "tensile: cannot write 'w.safetensors': disk full");
    assert.deepEqual(describeFailure(new UsageError('tensile x: bad'), false), {
      line: 'tensile x: bad',
      exitCode: 2,
    });
    assert.deepEqual(describeFailure(new Error('the model diverged'), false), {
      line: 'tensile: the model diverged',
      exitCode: 1,
    });
  });
});
