/**
 * What is specific to the native backend: the addon's argument checks, its thread pool and its
 * instruction-set variants. Its kernels against the reference, on every variant and thread count, are
 * in test/conformance/.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test, type TestContext } from 'node:test';

import {
  availableNativeIsas,
  getNativeIsa,
  getNativeThreads,
  loadNativeBackend,
  nativeUnavailableReason,
  setNativeIsa,
  setNativeThreads,
  setNativeWinograd,
} from '../src/backend/native/index.js';
import { referenceBackend } from '../src/backend/reference/index.js';
import type { AdamStep, Backend } from '../src/backend/types.js';
import { convCases, convGeometry, randomArray } from './conformance/shapes.js';
import { assertClose, reassociated, type Tolerance } from './conformance/tolerance.js';

const native = loadNativeBackend();

/** The native backend, or null after marking the test skipped when the addon is not built. */
function nativeOrSkip(t: TestContext): Backend | null {
  if (native === null) t.skip(`native addon not built: ${nativeUnavailableReason()}`);
  return native;
}

/** Runs body with the Winograd path on or off, restoring the previous setting afterwards. */
function withWinograd<T>(enabled: boolean, body: () => T): T {
  const previous = setNativeWinograd(enabled);
  try {
    return body();
  } finally {
    setNativeWinograd(previous);
  }
}

/** Runs body with the given thread count, restoring the previous count afterwards. */
function withThreads<T>(count: number, body: () => T): T {
  const previous = getNativeThreads();
  setNativeThreads(count);
  try {
    return body();
  } finally {
    setNativeThreads(previous);
  }
}

test('the portable variant is always available, and every listed variant can be chosen', (t) => {
  const backend = nativeOrSkip(t);
  if (backend === null) return;
  const initial = getNativeIsa()!;
  const isas = availableNativeIsas();
  assert.ok(isas.includes('scalar'), 'the portable variant is always available');
  try {
    for (const isa of isas) {
      assert.equal(setNativeIsa(isa), true);
      assert.equal(getNativeIsa(), isa);
    }
  } finally {
    setNativeIsa(initial);
  }
  assert.equal(getNativeIsa(), initial);
});

test('wrong buffer sizes raise a RangeError instead of touching memory', (t) => {
  const backend = nativeOrSkip(t);
  if (backend === null) return;
  assert.throws(
    () =>
      backend.matmul(
        new Float32Array(6),
        new Float32Array(6),
        new Float32Array(3),
        2,
        2,
        3,
        false,
        false,
        false,
      ),
    RangeError,
  );
  const g = convCases[0]!.geometry;
  const x = randomArray('float32', g.batch * g.inChannels * g.inHeight * g.inWidth, 1);
  const weight = randomArray('float32', g.outChannels * g.inChannels * g.kernelHeight * g.kernelWidth, 2);
  assert.throws(() => backend.conv2dForward(x, weight, new Float32Array(1), g), RangeError);
  assert.throws(() => setNativeThreads(0), RangeError);
});

test('native optimizer kernels reject buffers shorter than the parameter', (t) => {
  const native = nativeOrSkip(t);
  if (native === null) return;
  const step: AdamStep = {
    lr: 0.1,
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    weightDecay: 0,
    decoupledWeightDecay: false,
    biasCorrection1: 0.1,
    biasCorrection2: 0.001,
  };
  assert.throws(
    () =>
      native.adamUpdate(
        new Float32Array(4),
        new Float32Array(4),
        new Float32Array(3),
        new Float32Array(4),
        step,
      ),
    RangeError,
  );
  assert.throws(
    () =>
      native.sgdUpdate(new Float32Array(4), new Float32Array(2), null, {
        lr: 0.1,
        momentum: 0,
        dampening: 0,
        nesterov: false,
        weightDecay: 0,
        firstStep: true,
      }),
    RangeError,
  );
});

test('changing the thread count between calls never loses a job', (t) => {
  const backend = nativeOrSkip(t);
  if (backend === null) return;
  // Regression: a worker started just before a job used to miss it and hang the caller inside the
  // addon, where no test timeout can interrupt it. So the rounds run in a child process with a time
  // limit: a hang comes back as a failure.
  const loader = new URL('../src/backend/native/index.js', import.meta.url).href;
  const script = `
    import { loadNativeBackend, setNativeThreads } from ${JSON.stringify(loader)};
    const backend = loadNativeBackend();
    const n = 100;
    const a = Float32Array.from({ length: n * n }, (_, i) => Math.sin(i));
    const b = Float32Array.from({ length: n * n }, (_, i) => Math.cos(i));
    const expected = new Float32Array(n * n);
    setNativeThreads(1);
    backend.matmul(a, b, expected, n, n, n, false, false, false);
    for (let round = 0; round < 100; round++) {
      const out = new Float32Array(n * n);
      setNativeThreads(1 + (round % 3));
      backend.matmul(a, b, out, n, n, n, false, false, false);
      if (!out.every((v, i) => Object.is(v, expected[i]))) throw new Error('round ' + round + ' differs');
    }
    console.log('ok');
  `;
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(result.signal, null, `the child hung and was killed (${result.signal})`);
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stdout.trim(), 'ok');
});

test('the thread count defaults to the available cores and can be changed', (t) => {
  const backend = nativeOrSkip(t);
  if (backend === null) return;
  const initial = getNativeThreads();
  assert.ok(initial >= 1);
  withThreads(3, () => assert.equal(getNativeThreads(), 3));
  assert.equal(getNativeThreads(), initial);
});

test('3x3 convolutions of 32 to 256 channels take the Winograd path, which the switch turns off', (t) => {
  const backend = nativeOrSkip(t);
  if (backend === null) return;
  const g = convGeometry({
    batch: 2,
    inChannels: 64,
    inHeight: 10,
    inWidth: 9,
    outChannels: 48,
    kernel: [3, 3],
    pad: [1, 1],
  });
  const x = randomArray('float32', g.batch * g.inChannels * g.inHeight * g.inWidth, 1) as Float32Array;
  const weight = randomArray('float32', g.outChannels * g.inChannels * 9, 2) as Float32Array;
  const gradOut = randomArray(
    'float32',
    g.batch * g.outChannels * g.outHeight * g.outWidth,
    3,
  ) as Float32Array;
  const run = (winograd: boolean) =>
    withWinograd(winograd, () => {
      const out = new Float32Array(gradOut.length);
      const gradX = new Float32Array(x.length);
      backend.conv2dForward(x, weight, out, g);
      backend.conv2dBackwardInput(gradOut, weight, gradX, g);
      return { out, gradX };
    });
  const winograd = run(true);
  const direct = run(false);
  const expectedOut = new Float32Array(gradOut.length);
  const expectedGradX = new Float32Array(x.length);
  referenceBackend.conv2dForward(x, weight, expectedOut, g);
  referenceBackend.conv2dBackwardInput(gradOut, weight, expectedGradX, g);
  const tolerance = reassociated(g.inChannels * 9);
  for (const [name, result] of Object.entries({ winograd, direct })) {
    assertClose(result.out, expectedOut, tolerance, `${name} forward`);
    assertClose(result.gradX, expectedGradX, reassociated(g.outChannels * 9), `${name} input gradient`);
  }
  // The two paths round differently: equal bits would mean the switch changed nothing.
  assert.notDeepEqual(winograd.out, direct.out, 'forward took the same path with Winograd on and off');
  assert.notDeepEqual(
    winograd.gradX,
    direct.gradX,
    'input gradient took the same path with Winograd on and off',
  );
});

/**
 * A 3×3, pad-1 weight-gradient case of `shape`: random x and gradOut (seeds xSeed and gradSeed), the
 * reference's gradient, its tolerance, and the native gradient as `compute` gives it (to be called
 * under withWinograd or withThreads).
 */
function weightGradientCase(
  shape: { batch: number; inChannels: number; inHeight: number; inWidth: number; outChannels: number },
  xSeed: number,
  gradSeed: number,
): {
  expected: Float32Array;
  compute: (backend: Backend) => Float32Array;
  name: string;
  tolerance: Tolerance;
} {
  const g = convGeometry({ ...shape, kernel: [3, 3], pad: [1, 1] });
  const x = randomArray('float32', g.batch * g.inChannels * g.inHeight * g.inWidth, xSeed) as Float32Array;
  const gradOut = randomArray(
    'float32',
    g.batch * g.outChannels * g.outHeight * g.outWidth,
    gradSeed,
  ) as Float32Array;
  const expected = new Float32Array(g.outChannels * g.inChannels * 9);
  referenceBackend.conv2dBackwardWeight(x, gradOut, expected, g);
  const compute = (backend: Backend): Float32Array => {
    const gradWeight = new Float32Array(g.outChannels * g.inChannels * 9);
    backend.conv2dBackwardWeight(x, gradOut, gradWeight, g);
    return gradWeight;
  };
  const name = `batch ${g.batch}, ${g.inChannels}→${g.outChannels} at ${g.inHeight}×${g.inWidth}`;
  return { expected, compute, name, tolerance: reassociated(g.batch * g.outHeight * g.outWidth) };
}

test('the Winograd weight gradient agrees with the direct one and the reference', (t) => {
  const backend = nativeOrSkip(t);
  if (backend === null) return;
  // From the fewest channels it takes (32 a side) to past the forward's limit, on odd sizes whose
  // last tiles overhang the image.
  const shapes = [
    { batch: 3, inChannels: 200, inHeight: 9, inWidth: 7, outChannels: 192 },
    { batch: 5, inChannels: 32, inHeight: 5, inWidth: 11, outChannels: 40 },
    { batch: 2, inChannels: 320, inHeight: 8, inWidth: 7, outChannels: 288 },
  ];
  for (const [index, shape] of shapes.entries()) {
    const { expected, compute, name, tolerance } = weightGradientCase(shape, 4 + index, 5 + index);
    const winograd = withWinograd(true, () => compute(backend));
    const direct = withWinograd(false, () => compute(backend));
    assertClose(winograd, expected, tolerance, `Winograd weight gradient ${name}`);
    assertClose(direct, expected, tolerance, `direct weight gradient ${name}`);
    assert.notDeepEqual(
      winograd,
      direct,
      `${name}: the weight gradient took the same path with Winograd on and off`,
    );
  }
});

test('small outputs of a small batch take the direct weight gradient, Winograd on or off', (t) => {
  const backend = nativeOrSkip(t);
  if (backend === null) return;
  // Up to 49 positions a sample and fewer than 392 over the batch: the Winograd sums would cost more
  // to write and transform back than the direct product. From 392 positions on, Winograd again.
  const cases = [
    { shape: { batch: 1, inChannels: 64, inHeight: 7, inWidth: 7, outChannels: 64 }, winograd: false },
    { shape: { batch: 7, inChannels: 48, inHeight: 7, inWidth: 7, outChannels: 40 }, winograd: false },
    { shape: { batch: 10, inChannels: 32, inHeight: 6, inWidth: 6, outChannels: 48 }, winograd: false },
    { shape: { batch: 8, inChannels: 48, inHeight: 7, inWidth: 7, outChannels: 40 }, winograd: true },
  ];
  for (const [index, { shape, winograd }] of cases.entries()) {
    const { expected, compute, name, tolerance } = weightGradientCase(shape, 60 + index, 70 + index);
    const on: Float32Array = withWinograd(true, () => compute(backend));
    const off = withWinograd(false, () => compute(backend));
    assertClose(on, expected, tolerance, name);
    const same = on.every((value, i) => Object.is(value, off[i]));
    assert.equal(same, !winograd, `${name}: ${winograd ? 'Winograd expected' : 'the direct path expected'}`);
  }
});

test('the Winograd weight gradient has the same bits on every thread count', (t) => {
  const backend = nativeOrSkip(t);
  if (backend === null) return;
  // Up to 64 × 64 channels, the blocks are cut into four chunks, each summed on one thread into a
  // partial of its own, the partials added in chunk order (the first five shapes: four blocks of
  // one sample; eight blocks of three samples or two, two a chunk; eleven blocks of twelve tile
  // rows, cut across samples, two or three a chunk; two chunks of one sample; four blocks of eleven
  // tile rows or three). Past that (the last three shapes), one, two and four threads each make
  // their own transform rows (all four, two, or one) and three and five share each block.
  const shapes = [
    { batch: 4, inChannels: 32, inHeight: 28, inWidth: 27, outChannels: 40 },
    { batch: 23, inChannels: 32, inHeight: 14, inWidth: 13, outChannels: 48 },
    { batch: 9, inChannels: 48, inHeight: 28, inWidth: 27, outChannels: 48 },
    { batch: 2, inChannels: 64, inHeight: 14, inWidth: 14, outChannels: 64 },
    { batch: 3, inChannels: 64, inHeight: 24, inWidth: 23, outChannels: 56 },
    { batch: 4, inChannels: 96, inHeight: 9, inWidth: 10, outChannels: 80 },
    { batch: 3, inChannels: 200, inHeight: 9, inWidth: 7, outChannels: 192 },
    { batch: 2, inChannels: 64, inHeight: 9, inWidth: 6, outChannels: 96 },
  ];
  for (const [index, shape] of shapes.entries()) {
    const { expected, compute, name, tolerance } = weightGradientCase(shape, 40 + index, 50 + index);
    const single = withThreads(1, () => compute(backend));
    assertClose(single, expected, tolerance, `${name}, 1 thread`);
    for (const threads of [2, 3, 4, 5]) {
      const result: Float32Array = withThreads(threads, () => compute(backend));
      const differs = result.findIndex((value, i) => !Object.is(value, single[i]));
      assert.equal(differs, -1, `${name}: ${threads} threads differ from 1 at ${differs}`);
    }
  }
});

test('the package exports the thread and Winograd switches', async (t) => {
  if (nativeOrSkip(t) === null) return;
  const tensile = await import('../src/index.js');
  const threads = tensile.getNativeThreads();
  tensile.setNativeThreads(1);
  try {
    assert.equal(getNativeThreads(), 1);
  } finally {
    tensile.setNativeThreads(threads);
  }
  const previous = tensile.setNativeWinograd(false);
  assert.equal(setNativeWinograd(previous), false, 'the exported switch is the backend switch');
  assert.equal(typeof tensile.memoryCounters().freshBytes, 'number');
});
