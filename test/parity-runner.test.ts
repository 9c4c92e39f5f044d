/** The parity runner fails what it should: wrong numbers, unknown ops, missing tensors; and the CLI's exit code. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readSafetensors, writeSafetensors } from '../src/index.js';
import { runParityCase } from '../app/parity/index.js';

const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const casesDirectory = path.resolve(repositoryRoot, 'test', 'fixtures', 'torch-parity');
const temporary = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-parity-'));

/** Copies a case, letting edit change its tensors or its case description. */
function variant(
  source: string,
  target: string,
  edit: (
    tensors: Map<string, { shape: readonly number[]; data: Float32Array | BigInt64Array }>,
    meta: Record<string, unknown>,
  ) => void,
): string {
  const { tensors, metadata } = readSafetensors(path.join(casesDirectory, source));
  const meta = JSON.parse(metadata.case!) as Record<string, unknown>;
  const editable = new Map(
    [...tensors].map(([name, entry]) => [
      name,
      { shape: entry.shape, data: entry.data as Float32Array | BigInt64Array },
    ]),
  );
  edit(editable, meta);
  const file = path.join(temporary, target);
  writeSafetensors(file, editable, { case: JSON.stringify(meta) });
  return file;
}

describe('parity runner', () => {
  it('fails a case whose reference is off by more than the tolerance, naming the tensor', () => {
    const file = variant('conv2d_0_k3s1p1d1.safetensors', 'wrong.safetensors', (tensors) => {
      const gradWeight = tensors.get('grad_weight')!;
      (gradWeight.data as Float32Array)[3]! += 0.01;
    });
    const result = runParityCase(file);
    assert.equal(result.passed, false);
    assert.equal(result.comparisons.find((c) => !c.passed)?.tensor, 'grad_weight');
  });
  it('fails a case with an unknown op or a missing tensor, with the reason', () => {
    const unknown = runParityCase(
      variant('mse.safetensors', 'unknown.safetensors', (_, meta) => (meta.op = 'fourier')),
    );
    assert.equal(unknown.passed, false);
    assert.match(unknown.error!, /unknown op 'fourier'/);
    const missing = runParityCase(
      variant('mse.safetensors', 'missing.safetensors', (tensors) => tensors.delete('pred')),
    );
    assert.match(missing.error!, /tensor 'pred' is missing/);
  });
  it('npm run parity prints one line per case, a closing count and exits non-zero on failure', () => {
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-parity-cli-'));
    fs.copyFileSync(path.join(casesDirectory, 'mse.safetensors'), path.join(directory, 'mse.safetensors'));
    const cli = path.join(repositoryRoot, 'dist', 'cli', 'parity.js');
    const good = spawnSync(process.execPath, [cli, directory], { encoding: 'utf8' });
    assert.equal(good.status, 0, good.stderr);
    assert.match(good.stdout, /PASS {2}mse .*max abs error/);
    assert.match(good.stdout, /^1 passed, 0 failed$/m);
    fs.copyFileSync(path.join(temporary, 'wrong.safetensors'), path.join(directory, 'wrong.safetensors'));
    const bad = spawnSync(process.execPath, [cli, directory], { encoding: 'utf8' });
    assert.equal(bad.status, 1);
    assert.match(bad.stdout, /^1 passed, 1 failed$/m);
  });
});
