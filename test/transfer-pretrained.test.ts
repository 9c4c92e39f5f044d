/**
 * The committed pretrained model (pretrained/seed-cnn-fashion-mnist.safetensors) and the finetune
 * command: on the bundled data, on an IDX file pair, and resumed from a checkpoint bit-for-bit.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  evaluate,
  loadFashionMnist,
  loadMnist,
  loadPretrained,
  Random,
  readSafetensors,
  splitDataset,
  subset,
  writeIdx,
} from '../src/index.js';

const distRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const repositoryRoot = path.resolve(distRoot, '..');
const pretrained = path.join(repositoryRoot, 'pretrained', 'seed-cnn-fashion-mnist.safetensors');
const cli = path.join(distRoot, 'cli', 'main.js');
const temporary = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-finetune-'));

function tensile(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
}

describe('the pretrained Fashion-MNIST model', () => {
  it('is small, records how it was made, and loads as a seed CNN', () => {
    assert.ok(fs.statSync(pretrained).size < 1024 * 1024, 'well under 1 MB');
    const { model, architecture, metadata } = loadPretrained(pretrained);
    assert.equal(architecture.family, 'seed-cnn');
    assert.deepEqual(architecture.options, { inChannels: 1, channels: [16, 32], classes: 10, head: 'gap' });
    assert.equal(metadata.dataset, 'fashion-mnist');
    assert.ok(Number(metadata.test_accuracy) > 0.88, `recorded test accuracy ${metadata.test_accuracy}`);
    assert.equal(
      model.parameters().length,
      14,
      '4 convolutions, 4 batch norms (γ, β), the dense weight and bias',
    );
    const readme = fs.readFileSync(path.join(repositoryRoot, 'pretrained', 'README.md'), 'utf8');
    assert.ok(
      readme.includes('npx tensile train --dataset fashion-mnist --channels 16,32'),
      'the README gives the command',
    );
    assert.ok(
      readme.includes(`${(Number(metadata.test_accuracy) * 100).toFixed(2)}%`),
      'the README gives the recorded accuracy',
    );
  });

  it('classifies held-out Fashion-MNIST images about as well as its metadata says', () => {
    const { model, metadata } = loadPretrained(pretrained);
    // The same seeded split as `tensile train` (test fraction 0.2, seed 1); its first 2,000 test images.
    const { test } = splitDataset(loadFashionMnist(), 0.2, new Random(1));
    const accuracy = evaluate(
      model,
      subset(
        test,
        Array.from({ length: 2000 }, (_, i) => i),
      ),
    ).accuracy;
    assert.ok(
      Math.abs(accuracy - Number(metadata.test_accuracy)) < 0.025,
      `accuracy ${accuracy} vs recorded ${metadata.test_accuracy}`,
    );
  });
});

describe('tensile finetune', () => {
  // 8 of each digit 5–9 as an IDX pair (uint8 images, labels 0–4), and 10 more of each as its test pair.
  const mnist = loadMnist();
  const ofDigit = (digit: number) =>
    Array.from({ length: mnist.count }, (_, i) => i).filter((i) => mnist.labels[i] === digit);
  const digits = [5, 6, 7, 8, 9].map(ofDigit);
  const writePair = (name: string, indices: number[]) => {
    const images = new Uint8Array(indices.length * 784);
    indices.forEach((index, n) => {
      for (let p = 0; p < 784; p++) images[n * 784 + p] = Math.round(mnist.images[index * 784 + p]! * 255);
    });
    const labels = Uint8Array.from(indices, (index) => mnist.labels[index]! - 5);
    writeIdx(path.join(temporary, `${name}-images.idx`), {
      dtype: 'uint8',
      shape: [indices.length, 28, 28],
      data: images,
    });
    writeIdx(path.join(temporary, `${name}-labels.idx`), {
      dtype: 'uint8',
      shape: [indices.length],
      data: labels,
    });
    return [
      '--images',
      path.join(temporary, `${name}-images.idx`),
      '--labels',
      path.join(temporary, `${name}-labels.idx`),
    ];
  };
  const train = writePair(
    'train',
    digits.flatMap((indices) => indices.slice(0, 8)),
  );
  const test = writePair(
    'test',
    digits.flatMap((indices) => indices.slice(8, 18)),
  ).map((arg) => (arg === '--images' ? '--test-images' : arg === '--labels' ? '--test-labels' : arg));

  it('prints its options', () => {
    const help = tensile('finetune', '--help');
    assert.equal(help.status, 0);
    assert.match(help.stdout, /--strategy NAME/);
    assert.match(help.stdout, /headOnly .* freezeEarly .* fullLowLr .* gradualUnfreeze .* fineTune/s);
  });

  it('fine-tunes on an IDX file pair, replacing the classifier, and saves the result', () => {
    const saved = path.join(temporary, 'finetuned.safetensors');
    const run = tensile(
      'finetune',
      '--from',
      pretrained,
      '--strategy',
      'headOnly',
      ...train,
      ...test,
      '--epochs',
      '2',
      '--quiet',
      '--save',
      saved,
    );
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /test accuracy: [\d.]+% \(\d+\/50\)/);
    const { tensors, metadata } = readSafetensors(saved);
    assert.deepEqual(tensors.get('16.weight')!.shape, [5, 32]);
    assert.equal(metadata.strategy, 'headOnly');
  });

  it('names a bad strategy', () => {
    const run = tensile('finetune', '--from', pretrained, '--strategy', 'everything');
    assert.notEqual(run.status, 0);
    assert.match(
      run.stderr,
      /--strategy must be one of headOnly, freezeEarly, fullLowLr, gradualUnfreeze, fineTune, scratch/,
    );
  });

  it('stopped with --stop-after and continued with --resume, ends with the weights of an uninterrupted run', () => {
    const common = [
      'finetune',
      '--from',
      pretrained,
      '--strategy',
      'gradualUnfreeze',
      ...train,
      ...test,
      '--epochs',
      '3',
      '--batch-size',
      '8',
      '--quiet',
    ];
    const whole = path.join(temporary, 'whole.safetensors');
    assert.equal(tensile(...common, '--save', whole).status, 0);
    const checkpoint = path.join(temporary, 'cli-checkpoint.safetensors');
    const first = tensile(...common, '--stop-after', '2', '--checkpoint', checkpoint);
    assert.equal(first.status, 0, first.stderr);
    const resumed = path.join(temporary, 'resumed.safetensors');
    const second = tensile(...common, '--resume', checkpoint, '--save', resumed);
    assert.equal(second.status, 0, second.stderr);
    const a = readSafetensors(whole).tensors;
    const b = readSafetensors(resumed).tensors;
    for (const [name, entry] of a) assert.deepEqual(b.get(name)!.data, entry.data, `${name} differs`);
  });
});
