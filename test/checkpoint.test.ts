/**
 * Checkpoints: a run stopped after epoch k and resumed (with fresh objects, or in a fresh process)
 * ends bit-for-bit where an uninterrupted run ends; mismatches load nothing; writes are atomic.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  Adam,
  AdamW,
  BatchNorm,
  type Callback,
  CheckpointError,
  Conv2d,
  Dense,
  Dropout,
  fit,
  Flatten,
  getBackend,
  type ImageDataset,
  loadCheckpoint,
  manualSeed,
  MaxPool2d,
  type Module,
  oneCycleSchedule,
  Random,
  randomShift,
  readSafetensors,
  ReLU,
  saveCheckpoint,
  saveWeights,
  Sequential,
  SGD,
  TrainingCheckpoint,
  writeSafetensors,
  type TrainingControl,
  type TrainingEvent,
} from '../src/index.js';

/** Set in the child process of the fresh-process test, which imports this file for its recipe only. */
const isChild = process.env.TENSILE_CHECKPOINT_TEST_CHILD === '1';
const temporary = isChild ? '' : fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-checkpoint-'));
const distRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Three classes of 8×8 images: a bright row, column or diagonal, with noise. */
function dataset(count: number, seed: number): ImageDataset {
  const random = new Random(seed);
  const images = new Float32Array(count * 64);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    labels[i] = i % 3;
    const line = random.int(8);
    for (let y = 0; y < 8; y++) {
      for (let x = 0; x < 8; x++) {
        const on = labels[i] === 0 ? y === line : labels[i] === 1 ? x === line : x === y;
        images[i * 64 + y * 8 + x] = (on ? 1 : 0) + 0.2 * random.normal();
      }
    }
  }
  return {
    images,
    labels,
    count,
    channels: 1,
    height: 8,
    width: 8,
    classes: 3,
    classNames: ['row', 'column', 'diagonal'],
  };
}

/** Batch norm (running statistics), dropout (the global generator) and a dense head. */
function network(seed: number): Sequential {
  manualSeed(seed);
  return new Sequential(
    new Conv2d(1, 4, 3, { padding: 1, bias: false }),
    new BatchNorm(4),
    new ReLU(),
    new MaxPool2d(2),
    new Flatten(),
    new Dropout(0.25),
    new Dense(64, 3),
  );
}

const data = dataset(60, 1);
const epochs = 5;
const batchSize = 16;
const stepsPerEpoch = Math.ceil(data.count / batchSize);

/** The shared recipe: Adam, a per-batch schedule, augmentation from the loader's generator. */
function options(
  model: Module,
  extra: { callbacks?: Callback[]; initialEpoch?: number; random?: Random } = {},
) {
  const optimizer = new Adam(model.parameters(), { lr: 0.01 });
  return {
    optimizer,
    settings: {
      optimizer,
      epochs,
      batchSize,
      seed: 3,
      transforms: [randomShift(1)],
      schedule: oneCycleSchedule(epochs * stepsPerEpoch),
      progress: false as const,
      ...extra,
    },
  };
}

class StopAfter implements Callback {
  constructor(readonly epochs: number) {}
  handle(event: TrainingEvent, control: TrainingControl): void {
    if (event.type === 'epochEnd' && event.epoch + 1 === this.epochs)
      control.stop('interrupted for the test');
  }
}

/** Writes a child process's script to a file (node -e with --input-type would be inherited by worker threads). */
function childScript(name: string, source: string): string {
  const file = path.join(temporary, `${name}.mjs`);
  fs.writeFileSync(file, source);
  return file;
}

const bytes = (model: Module) =>
  new Map(
    [...model.stateDict()].map(([name, t]) => [
      name,
      Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('hex'),
    ]),
  );

function uninterrupted(): Map<string, string> {
  const model = network(1);
  fit(model, data, options(model).settings);
  return bytes(model);
}

if (!isChild)
  describe('checkpoints', () => {
    const expected = uninterrupted();

    it('a run stopped after epoch 2 and resumed with fresh objects ends with bit-identical weights', () => {
      const file = path.join(temporary, 'resume.safetensors');
      const first = network(1);
      const run = options(first, { callbacks: [new StopAfter(2), new TrainingCheckpoint({ path: file })] });
      const history = fit(first, data, run.settings);
      assert.equal(history.epochs.length, 2);

      manualSeed(12345); // a different initialisation and global generator: the checkpoint must restore both
      const model = network(99);
      const resumedOptions = options(model);
      const resumed = loadCheckpoint(file, model, resumedOptions.optimizer);
      assert.equal(resumed.epoch, 2);
      assert.equal(resumed.scheduleStep, 2 * stepsPerEpoch);
      assert.equal(resumed.history.length, 2);
      fit(model, data, { ...resumedOptions.settings, initialEpoch: resumed.epoch, random: resumed.random });
      assert.deepEqual(bytes(model), expected);
    });

    it('resumes bit-for-bit in a fresh process', () => {
      const file = path.join(temporary, 'process.safetensors');
      const first = network(1);
      fit(
        first,
        data,
        options(first, { callbacks: [new StopAfter(3), new TrainingCheckpoint({ path: file })] }).settings,
      );
      const output = path.join(temporary, 'process-final.safetensors');
      // The child rebuilds everything from this test file's own helpers, exported below.
      const script = `
      import { backendByName, loadCheckpoint, fit, saveWeights, setBackend } from ${JSON.stringify(path.join(distRoot, 'src', 'index.js'))};
      import { resumeParts } from ${JSON.stringify(fileURLToPath(import.meta.url))};
      // Bit-for-bit needs the same kernels as the parent.
      setBackend(backendByName(process.env.TENSILE_CHECKPOINT_TEST_BACKEND));
      const { model, optimizer, settings } = resumeParts();
      const resumed = loadCheckpoint(${JSON.stringify(file)}, model, optimizer);
      fit(model, settings.data, { ...settings.options, initialEpoch: resumed.epoch, random: resumed.random });
      saveWeights(model, ${JSON.stringify(output)});
    `;
      const child = spawnSync(process.execPath, [childScript('resume', script)], {
        encoding: 'utf8',
        env: {
          ...process.env,
          TENSILE_CHECKPOINT_TEST_CHILD: '1',
          TENSILE_CHECKPOINT_TEST_BACKEND: getBackend().name,
        },
      });
      assert.equal(child.status, 0, child.stderr);
      const final = readSafetensors(output).tensors;
      for (const [name, hex] of expected) {
        const entry = final.get(name)!;
        assert.equal(
          Buffer.from(entry.data.buffer, entry.data.byteOffset, entry.data.byteLength).toString('hex'),
          hex,
          `${name} differs`,
        );
      }
    });

    it('restores optimizer state, settings and frozen flags exactly', () => {
      const model = network(2);
      model.parameters()[0]!.requiresGrad = false;
      const optimizer = new SGD(
        [
          { parameters: model.parameters().slice(0, 3), lr: 0.1 },
          { parameters: model.parameters().slice(3), lr: 0.2 },
        ],
        { momentum: 0.9 },
      );
      fit(model, data, { optimizer, epochs: 1, batchSize, progress: false });
      const file = path.join(temporary, 'groups.safetensors');
      saveCheckpoint(file, model, optimizer, { epoch: 1 });
      const copy = network(3);
      const copyOptimizer = new SGD(
        [
          { parameters: copy.parameters().slice(0, 3), lr: 0.5 },
          { parameters: copy.parameters().slice(3), lr: 0.5 },
        ],
        { momentum: 0.9 },
      );
      loadCheckpoint(file, copy, copyOptimizer);
      assert.deepEqual(bytes(copy), bytes(model));
      assert.deepEqual(
        copyOptimizer.groups.map((g) => [g.settings.lr, g.initialLr]),
        [
          [0.1, 0.1],
          [0.2, 0.2],
        ],
      );
      assert.equal(copy.parameters()[0]!.requiresGrad, false);
      const saved = optimizer.stateDict();
      const restored = copyOptimizer.stateDict();
      assert.equal(restored.stepCount, saved.stepCount);
      assert.deepEqual([...restored.tensors.keys()], [...saved.tensors.keys()]);
      for (const [key, value] of saved.tensors)
        assert.deepEqual([...restored.tensors.get(key)!], [...value], key);
    });

    it('loads nothing when the optimizer or the model does not fit, and says why', () => {
      const model = network(4);
      const file = path.join(temporary, 'mismatch.safetensors');
      saveCheckpoint(file, model, new Adam(model.parameters()), { epoch: 1 });
      const other = network(5);
      const before = bytes(other);
      assert.throws(
        () => loadCheckpoint(file, other, new AdamW(other.parameters())),
        (error: Error) => {
          assert.ok(error instanceof CheckpointError);
          assert.match(error.message, /optimizer type: saved Adam, given AdamW/);
          return true;
        },
      );
      assert.throws(
        () => loadCheckpoint(file, other, new Adam([{ parameters: other.parameters().slice(1) }])),
        /optimizer group 0: saved parameters \[0\.weight, 1\.weight/,
      );
      const wider = new Sequential(
        new Conv2d(1, 8, 3, { padding: 1, bias: false }),
        new BatchNorm(8),
        new ReLU(),
        new MaxPool2d(2),
        new Flatten(),
        new Dense(128, 3),
      );
      assert.throws(
        () => loadCheckpoint(file, wider, null),
        /shape mismatch: '0\.weight' expected \[8, 1, 3, 3\], got \[4, 1, 3, 3\][\s\S]*'1\.running_var'[\s\S]*'5\.weight'/,
      );
      assert.deepEqual(bytes(other), before, 'nothing was loaded');
    });

    it('rejects weight files and newer versions by name', () => {
      const model = network(6);
      const weights = path.join(temporary, 'weights.safetensors');
      saveWeights(model, weights);
      assert.throws(
        () => loadCheckpoint(weights, model, null),
        /not a tensile checkpoint; metadata format is 'tensile-weights' \(it holds weights only: use loadWeights\)/,
      );
      const file = path.join(temporary, 'future.safetensors');
      saveCheckpoint(file, model, null, { epoch: 0 });
      const { tensors, metadata } = readSafetensors(file);
      writeSafetensors(file, tensors, { ...metadata, version: '2' });
      assert.throws(
        () => loadCheckpoint(file, model, null),
        /checkpoint version '2' is not one this tensile reads \(1 to 1\)/,
      );
    });

    it('a process killed while writing never leaves a torn checkpoint', async () => {
      const file = path.join(temporary, 'atomic.safetensors');
      const model = network(7);
      saveCheckpoint(file, model, null, { epoch: 1 });
      // The child writes a large checkpoint (about 64 MB) over the same path; it is killed as soon as
      // its temporary file appears, i.e. mid-write.
      const script = `
      import { saveCheckpoint, Dense, Sequential } from ${JSON.stringify(path.join(distRoot, 'src', 'index.js'))};
      const big = new Sequential(new Dense(4096, 4096));
      for (;;) saveCheckpoint(${JSON.stringify(file)}, big, null, { epoch: 2 });
    `;
      const child = spawn(process.execPath, [childScript('writer', script)], { stdio: 'ignore' });
      const directory = path.dirname(file);
      const started = Date.now();
      await new Promise<void>((resolve) => {
        const poll = () => {
          const writing = fs
            .readdirSync(directory)
            .some((name) => name.startsWith('.atomic.safetensors.') && name.endsWith('.tmp'));
          if (writing || Date.now() - started > 20000) {
            child.kill('SIGKILL');
            resolve();
          } else setTimeout(poll, 1);
        };
        poll();
      });
      if (child.exitCode === null && child.signalCode === null)
        await new Promise((resolve) => child.once('exit', resolve));
      // Whatever moment the kill hit, the file is a complete checkpoint: the old one or the new one.
      const { metadata, tensors } = readSafetensors(file);
      assert.equal(metadata.format, 'tensile-checkpoint');
      assert.ok(
        metadata.epoch === '1' ||
          (metadata.epoch === '2' && tensors.get('model.0.weight')!.data.length === 4096 * 4096),
      );
    });
  });

/** For the fresh-process test: the same recipe, rebuilt from nothing in a child process. */
export function resumeParts() {
  const model = network(42);
  const { optimizer, settings } = options(model);
  return { model, optimizer, settings: { data, options: settings } };
}
