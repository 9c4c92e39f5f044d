/**
 * For the ONNX tests: running a file in onnxruntime-node (the real consumer of exported files),
 * onnx.checker through PyTorch's Python when it is installed, and a relative comparison of outputs.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as ort from 'onnxruntime-node';

/** onnx (Debian python3-onnx) under /usr/bin/python3; where absent, checker tests skip. */
export const onnxCheckerAvailable =
  spawnSync('/usr/bin/python3', ['-c', 'import onnx'], { stdio: 'ignore' }).status === 0;
/** PyTorch (Debian python3-torch) under /usr/bin/python3. */
export const torchAvailable =
  spawnSync('/usr/bin/python3', ['-c', 'import torch, onnx'], { stdio: 'ignore' }).status === 0;

/** The highest opset the installed onnx package's checker knows (0 without it). */
export const checkerOpset = onnxCheckerAvailable
  ? Number(
      spawnSync('/usr/bin/python3', ['-c', 'import onnx.defs; print(onnx.defs.onnx_opset_version())'], {
        encoding: 'utf8',
      }).stdout.trim(),
    )
  : 0;

/** Runs an ONNX model (file path or bytes) on one float32 input; returns the first output. */
export async function runOnnx(
  model: string | Uint8Array,
  input: { data: ArrayLike<number>; shape: readonly number[] },
  inputName = 'input',
): Promise<{ data: Float32Array; shape: number[] }> {
  const session =
    typeof model === 'string'
      ? await ort.InferenceSession.create(model)
      : await ort.InferenceSession.create(model);
  try {
    const feeds = { [inputName]: new ort.Tensor('float32', Float32Array.from(input.data), [...input.shape]) };
    const results = await session.run(feeds);
    const output = results[session.outputNames[0]!]!;
    return { data: output.data as Float32Array, shape: output.dims.map(Number) };
  } finally {
    await session.release();
  }
}

/**
 * Asserts actual ≈ expected elementwise within `relative` of the expected output's scale (its
 * largest magnitude, at least 1): near-zero entries of a large output are judged on that scale.
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  relative: number,
  what: string,
): void {
  assert.equal(
    actual.length,
    expected.length,
    `${what}: ${actual.length} values, expected ${expected.length}`,
  );
  let scale = 1;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]!));
  let worst = 0;
  let at = -1;
  for (let i = 0; i < expected.length; i++) {
    const difference = Math.abs(actual[i]! - expected[i]!);
    if (!(difference <= worst)) {
      worst = difference;
      at = i;
    }
  }
  assert.ok(
    worst <= relative * scale,
    `${what}: value ${at} differs by ${worst} (actual ${actual[at]}, expected ${expected[at]}; allowed ${relative * scale})`,
  );
}

/** onnx.checker.check_model(full_check=True) on each file; returns '' or the checker's message. */
export function checkOnnxFiles(files: readonly string[]): string {
  const script = [
    'import sys, onnx',
    'failed = []',
    'for path in sys.argv[1:]:',
    '    try:',
    '        onnx.checker.check_model(onnx.load(path), full_check=True)',
    '    except Exception as error:',
    "        failed.append(f'{path}: {error}')",
    "print('\\n'.join(failed))",
  ].join('\n');
  const run = spawnSync('/usr/bin/python3', ['-c', script, ...files], { encoding: 'utf8' });
  if (run.status !== 0) return run.stderr;
  return run.stdout.trim();
}
