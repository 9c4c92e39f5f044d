/**
 * The native backend against the reference backend (the executable spec) on random data, for every
 * kernel it overrides, and against itself across thread counts and instruction-set variants.
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
} from '../src/backend/native/index.js';
import { referenceBackend } from '../src/backend/reference/index.js';
import type {
  ActivationKind,
  Backend,
  BinaryKind,
  Conv2dGeometry,
  Data,
  Pool2dGeometry,
} from '../src/backend/types.js';

/** float32 kernels against the reference's float64 accumulation. */
const kernelTolerance = { absolute: 1e-4, relative: 1e-4 };
/** Elementwise kernels round once, as the reference does. */
const elementwiseTolerance = { absolute: 1e-6, relative: 1e-6 };

const native = loadNativeBackend();

/** The native backend, or null after marking the test skipped when the addon is not built. */
function nativeOrSkip(t: TestContext): Backend | null {
  if (native === null) t.skip(`native addon not built: ${nativeUnavailableReason()}`);
  return native;
}

/** Deterministic uniform numbers in [-1, 1) (mulberry32). */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  };
}

function randomArray(length: number, seed: number): Float32Array {
  const next = random(seed);
  const values = new Float32Array(length);
  for (let i = 0; i < length; i++) values[i] = next();
  return values;
}

function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance: { absolute: number; relative: number },
  what: string,
): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    const limit = tolerance.absolute + tolerance.relative * Math.abs(e);
    if (!(Math.abs(a - e) <= limit)) assert.fail(`${what}: element ${i} is ${a}, expected ${e} (±${limit})`);
  }
}

/** The kernels promise the same bits for any thread count, not merely close values. */
function assertSameBits(actual: Float32Array, expected: Float32Array, what: string): void {
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  assert.equal(a.length, e.length, `${what}: length`);
  let differing = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== e[i]) differing++;
  assert.equal(differing, 0, `${what}: ${differing} of ${a.length} elements differ between thread counts`);
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

function convGeometry(spec: {
  batch: number;
  inChannels: number;
  inHeight: number;
  inWidth: number;
  outChannels: number;
  kernel: [number, number];
  stride?: [number, number];
  pad?: [number, number];
  dilation?: [number, number];
}): Conv2dGeometry {
  const [kernelHeight, kernelWidth] = spec.kernel;
  const [strideHeight, strideWidth] = spec.stride ?? [1, 1];
  const [padTop, padLeft] = spec.pad ?? [0, 0];
  const [dilationHeight, dilationWidth] = spec.dilation ?? [1, 1];
  const outHeight =
    Math.floor((spec.inHeight + 2 * padTop - dilationHeight * (kernelHeight - 1) - 1) / strideHeight) + 1;
  const outWidth =
    Math.floor((spec.inWidth + 2 * padLeft - dilationWidth * (kernelWidth - 1) - 1) / strideWidth) + 1;
  return {
    batch: spec.batch,
    inChannels: spec.inChannels,
    inHeight: spec.inHeight,
    inWidth: spec.inWidth,
    outChannels: spec.outChannels,
    kernelHeight,
    kernelWidth,
    strideHeight,
    strideWidth,
    padTop,
    padLeft,
    dilationHeight,
    dilationWidth,
    outHeight,
    outWidth,
  };
}

const convCases: { name: string; geometry: Conv2dGeometry }[] = [
  {
    name: '3x3 pad 1 (seed CNN layer shape)',
    geometry: convGeometry({
      batch: 2,
      inChannels: 3,
      inHeight: 9,
      inWidth: 9,
      outChannels: 5,
      kernel: [3, 3],
      pad: [1, 1],
    }),
  },
  {
    name: 'stride 2, pad 1',
    geometry: convGeometry({
      batch: 3,
      inChannels: 4,
      inHeight: 7,
      inWidth: 8,
      outChannels: 6,
      kernel: [3, 3],
      stride: [2, 2],
      pad: [1, 1],
    }),
  },
  {
    name: 'dilation 2, pad 2',
    geometry: convGeometry({
      batch: 2,
      inChannels: 3,
      inHeight: 10,
      inWidth: 9,
      outChannels: 4,
      kernel: [3, 3],
      pad: [2, 2],
      dilation: [2, 2],
    }),
  },
  {
    name: '5x5 pad 2',
    geometry: convGeometry({
      batch: 2,
      inChannels: 2,
      inHeight: 11,
      inWidth: 12,
      outChannels: 7,
      kernel: [5, 5],
      pad: [2, 2],
    }),
  },
  {
    name: '1x1',
    geometry: convGeometry({
      batch: 3,
      inChannels: 17,
      inHeight: 5,
      inWidth: 6,
      outChannels: 33,
      kernel: [1, 1],
    }),
  },
  {
    name: 'non-square kernel, stride and padding',
    geometry: convGeometry({
      batch: 2,
      inChannels: 3,
      inHeight: 9,
      inWidth: 7,
      outChannels: 5,
      kernel: [3, 2],
      stride: [2, 1],
      pad: [1, 0],
    }),
  },
  {
    name: 'single channel, batch 1, odd sizes',
    geometry: convGeometry({
      batch: 1,
      inChannels: 1,
      inHeight: 17,
      inWidth: 3,
      outChannels: 1,
      kernel: [3, 3],
      pad: [1, 1],
    }),
  },
  {
    name: 'wide channels (17 to 33), batch 17',
    geometry: convGeometry({
      batch: 17,
      inChannels: 17,
      inHeight: 6,
      inWidth: 6,
      outChannels: 33,
      kernel: [3, 3],
      pad: [1, 1],
    }),
  },
  {
    // 16 and 32 channels fill whole 16-wide panels: the GEMM takes positions as its rows then.
    name: 'channels filling whole panels (16 to 32)',
    geometry: convGeometry({
      batch: 3,
      inChannels: 16,
      inHeight: 7,
      inWidth: 9,
      outChannels: 32,
      kernel: [3, 3],
      pad: [1, 1],
    }),
  },
  {
    name: 'padding larger than the kernel reach',
    geometry: convGeometry({
      batch: 1,
      inChannels: 2,
      inHeight: 4,
      inWidth: 5,
      outChannels: 3,
      kernel: [2, 2],
      pad: [3, 2],
    }),
  },
];

function convTensors(g: Conv2dGeometry, seed: number) {
  return {
    x: randomArray(g.batch * g.inChannels * g.inHeight * g.inWidth, seed),
    weight: randomArray(g.outChannels * g.inChannels * g.kernelHeight * g.kernelWidth, seed + 1),
    gradOut: randomArray(g.batch * g.outChannels * g.outHeight * g.outWidth, seed + 2),
  };
}

/** Forward, input gradient and weight gradient of one convolution on one backend. */
function runConv(backend: Backend, g: Conv2dGeometry, seed: number) {
  const { x, weight, gradOut } = convTensors(g, seed);
  // Outputs start as garbage: the kernels must overwrite, not accumulate.
  const out = randomArray(gradOut.length, 99);
  const gradX = randomArray(x.length, 98);
  const gradWeight = randomArray(weight.length, 97);
  backend.conv2dForward(x, weight, out, g);
  backend.conv2dBackwardInput(gradOut, weight, gradX, g);
  backend.conv2dBackwardWeight(x, gradOut, gradWeight, g);
  return { out, gradX, gradWeight };
}

test('matmul matches the reference for odd sizes, every transpose and accumulate', (t) => {
  const backend = nativeOrSkip(t);
  if (backend === null) return;
  const sizes: [number, number, number][] = [
    [1, 1, 1],
    [3, 17, 33],
    [17, 3, 65],
    [33, 65, 17],
    [65, 129, 3],
    [129, 33, 129],
    [1, 129, 65],
    [129, 1, 33],
  ];
  let seed = 1;
  for (const [m, n, k] of sizes) {
    for (const transposeA of [false, true]) {
      for (const transposeB of [false, true]) {
        for (const accumulate of [false, true]) {
          const a = randomArray(m * k, seed++);
          const b = randomArray(k * n, seed++);
          const initial = randomArray(m * n, seed++);
          const expected = Float32Array.from(initial);
          const actual = Float32Array.from(initial);
          referenceBackend.matmul(a, b, expected, m, n, k, transposeA, transposeB, accumulate);
          backend.matmul(a, b, actual, m, n, k, transposeA, transposeB, accumulate);
          const what = `matmul ${m}x${n}x${k} transposeA=${transposeA} transposeB=${transposeB} accumulate=${accumulate}`;
          assertClose(actual, expected, kernelTolerance, what);
        }
      }
    }
  }
});

test('matmul with k = 0 overwrites or keeps out', (t) => {
  const backend = nativeOrSkip(t);
  if (backend === null) return;
  const out = Float32Array.of(1, 2, 3, 4);
  backend.matmul(new Float32Array(0), new Float32Array(0), out, 2, 2, 0, false, false, true);
  assert.deepEqual(Array.from(out), [1, 2, 3, 4]);
  backend.matmul(new Float32Array(0), new Float32Array(0), out, 2, 2, 0, false, false, false);
  assert.deepEqual(Array.from(out), [0, 0, 0, 0]);
});

test('matmul gives the same bits on 1 and 2 threads', (t) => {
  const backend = nativeOrSkip(t);
  if (backend === null) return;
  const [m, n, k] = [203, 301, 517];
  const a = randomArray(m * k, 5);
  const b = randomArray(k * n, 6);
  for (const [transposeA, transposeB] of [
    [false, false],
    [true, true],
  ] as const) {
    const single = withThreads(1, () => {
      const out = new Float32Array(m * n);
      backend.matmul(a, b, out, m, n, k, transposeA, transposeB, false);
      return out;
    });
    const double = withThreads(2, () => {
      const out = new Float32Array(m * n);
      backend.matmul(a, b, out, m, n, k, transposeA, transposeB, false);
      return out;
    });
    assertSameBits(double, single, `matmul ${m}x${n}x${k} transposeA=${transposeA}`);
  }
});

test('float64 data goes to the reference kernels', (t) => {
  const backend = nativeOrSkip(t);
  if (backend === null) return;
  const a = Float64Array.of(1, 2, 3, 4);
  const b = Float64Array.of(0.1, 0.2, 0.3, 0.4);
  const out = new Float64Array(4);
  const expected = new Float64Array(4);
  backend.matmul(a, b, out, 2, 2, 2, false, false, false);
  referenceBackend.matmul(a, b, expected, 2, 2, 2, false, false, false);
  // float64 arithmetic throughout: far tighter than float32 could be.
  assertClose(out, expected, { absolute: 1e-15, relative: 1e-15 }, 'float64 matmul');
});

test('conv2d forward and backward match the reference', (t) => {
  const backend = nativeOrSkip(t);
  if (backend === null) return;
  let seed = 10;
  for (const { name, geometry } of convCases) {
    const actual = runConv(backend, geometry, seed);
    const expected = runConv(referenceBackend, geometry, seed);
    seed += 3;
    assertClose(actual.out, expected.out, kernelTolerance, `${name}: forward`);
    assertClose(actual.gradX, expected.gradX, kernelTolerance, `${name}: input gradient`);
    assertClose(actual.gradWeight, expected.gradWeight, kernelTolerance, `${name}: weight gradient`);
  }
});

test('conv2d gives the same bits on 1 and 2 threads', (t) => {
  const backend = nativeOrSkip(t);
  if (backend === null) return;
  const geometries = [
    // Batch-parallel path, as in the seed CNN.
    convGeometry({
      batch: 6,
      inChannels: 8,
      inHeight: 14,
      inWidth: 14,
      outChannels: 16,
      kernel: [3, 3],
      pad: [1, 1],
    }),
    // Batch 1: work split over positions and channels instead.
    convGeometry({
      batch: 1,
      inChannels: 9,
      inHeight: 30,
      inWidth: 27,
      outChannels: 20,
      kernel: [3, 3],
      pad: [1, 1],
    }),
    convGeometry({
      batch: 3,
      inChannels: 5,
      inHeight: 23,
      inWidth: 19,
      outChannels: 7,
      kernel: [5, 3],
      stride: [2, 1],
      pad: [2, 1],
      dilation: [1, 2],
    }),
  ];
  for (const geometry of geometries) {
    const single = withThreads(1, () => runConv(backend, geometry, 7));
    const double = withThreads(2, () => runConv(backend, geometry, 7));
    const what = `conv batch ${geometry.batch}, ${geometry.inChannels}->${geometry.outChannels}`;
    assertSameBits(double.out, single.out, `${what}: forward`);
    assertSameBits(double.gradX, single.gradX, `${what}: input gradient`);
    assertSameBits(double.gradWeight, single.gradWeight, `${what}: weight gradient`);
  }
});

test('every instruction-set variant matches the reference and is thread-count invariant', (t) => {
  const backend = nativeOrSkip(t);
  if (backend === null) return;
  const initial = getNativeIsa()!;
  const isas = availableNativeIsas();
  assert.ok(isas.includes('scalar'), 'the portable variant is always available');
  try {
    for (const isa of isas) {
      assert.equal(setNativeIsa(isa), true);
      for (const [m, n, k, transposeA, transposeB] of [
        [33, 17, 65, false, true],
        [7, 129, 300, true, false],
      ] as const) {
        const a = randomArray(m * k, 1);
        const b = randomArray(k * n, 2);
        const actual = new Float32Array(m * n);
        const expected = new Float32Array(m * n);
        backend.matmul(a, b, actual, m, n, k, transposeA, transposeB, false);
        referenceBackend.matmul(a, b, expected, m, n, k, transposeA, transposeB, false);
        assertClose(actual, expected, kernelTolerance, `${isa} matmul ${m}x${n}x${k}`);
      }
      for (const { name, geometry } of convCases) {
        const nativeResult = runConv(backend, geometry, 3);
        const referenceResult = runConv(referenceBackend, geometry, 3);
        assertClose(nativeResult.out, referenceResult.out, kernelTolerance, `${isa} ${name}: forward`);
        assertClose(
          nativeResult.gradX,
          referenceResult.gradX,
          kernelTolerance,
          `${isa} ${name}: input gradient`,
        );
        assertClose(
          nativeResult.gradWeight,
          referenceResult.gradWeight,
          kernelTolerance,
          `${isa} ${name}: weight`,
        );
      }
      const geometry = convGeometry({
        batch: 5,
        inChannels: 16,
        inHeight: 12,
        inWidth: 12,
        outChannels: 32,
        kernel: [3, 3],
        pad: [1, 1],
      });
      const single = withThreads(1, () => runConv(backend, geometry, 4));
      const double = withThreads(2, () => runConv(backend, geometry, 4));
      assertSameBits(double.out, single.out, `${isa} conv forward`);
      assertSameBits(double.gradX, single.gradX, `${isa} conv input gradient`);
      assertSameBits(double.gradWeight, single.gradWeight, `${isa} conv weight gradient`);
    }
  } finally {
    setNativeIsa(initial);
  }
});

function poolGeometry(spec: {
  batch: number;
  channels: number;
  inHeight: number;
  inWidth: number;
  kernel: [number, number];
  stride: [number, number];
  pad?: [number, number];
  ceil?: boolean;
}): Pool2dGeometry {
  const [padTop, padLeft] = spec.pad ?? [0, 0];
  const round = spec.ceil ? Math.ceil : Math.floor;
  const outputs = (size: number, kernel: number, stride: number, pad: number) => {
    let count = round((size + 2 * pad - kernel) / stride) + 1;
    // PyTorch drops a last ceil-mode window that would start inside the right padding.
    if (spec.ceil && (count - 1) * stride >= size + pad) count--;
    return count;
  };
  return {
    batch: spec.batch,
    channels: spec.channels,
    inHeight: spec.inHeight,
    inWidth: spec.inWidth,
    kernelHeight: spec.kernel[0],
    kernelWidth: spec.kernel[1],
    strideHeight: spec.stride[0],
    strideWidth: spec.stride[1],
    padTop,
    padLeft,
    outHeight: outputs(spec.inHeight, spec.kernel[0], spec.stride[0], padTop),
    outWidth: outputs(spec.inWidth, spec.kernel[1], spec.stride[1], padLeft),
  };
}

const poolCases: { name: string; geometry: Pool2dGeometry }[] = [
  {
    name: '2x2 stride 2',
    geometry: poolGeometry({
      batch: 2,
      channels: 3,
      inHeight: 8,
      inWidth: 8,
      kernel: [2, 2],
      stride: [2, 2],
    }),
  },
  {
    name: '3x3 stride 2 pad 1',
    geometry: poolGeometry({
      batch: 2,
      channels: 3,
      inHeight: 9,
      inWidth: 7,
      kernel: [3, 3],
      stride: [2, 2],
      pad: [1, 1],
    }),
  },
  {
    name: '3x2 stride (1, 2) pad (1, 0), ceil mode',
    geometry: poolGeometry({
      batch: 1,
      channels: 5,
      inHeight: 7,
      inWidth: 10,
      kernel: [3, 2],
      stride: [1, 2],
      pad: [1, 0],
      ceil: true,
    }),
  },
  {
    name: 'odd input, 2x2 stride 2 ceil mode',
    geometry: poolGeometry({
      batch: 3,
      channels: 17,
      inHeight: 5,
      inWidth: 5,
      kernel: [2, 2],
      stride: [2, 2],
      ceil: true,
    }),
  },
  {
    // Large enough for the work to be split across threads.
    name: 'seed CNN pool',
    geometry: poolGeometry({
      batch: 8,
      channels: 32,
      inHeight: 28,
      inWidth: 28,
      kernel: [2, 2],
      stride: [2, 2],
    }),
  },
];

test('max pooling matches the reference, ties and NaN included', (t) => {
  const backend = nativeOrSkip(t);
  if (backend === null) return;
  let seed = 40;
  for (const { name, geometry: g } of poolCases) {
    const inSize = g.batch * g.channels * g.inHeight * g.inWidth;
    const outSize = g.batch * g.channels * g.outHeight * g.outWidth;
    // Few distinct values make ties common, which tests the first-maximum rule.
    const x = randomArray(inSize, seed++).map((v) => Math.round(v * 2));
    x[3] = Number.NaN;
    const gradOut = randomArray(outSize, seed++);
    const actual = {
      out: new Float32Array(outSize),
      argmax: new Int32Array(outSize),
      gradX: new Float32Array(inSize),
    };
    const expected = {
      out: new Float32Array(outSize),
      argmax: new Int32Array(outSize),
      gradX: new Float32Array(inSize),
    };
    for (const [kernels, result] of [
      [backend, actual],
      [referenceBackend, expected],
    ] as const) {
      kernels.maxPool2dForward(x, result.out, result.argmax, g);
      result.gradX.fill(5);
      kernels.maxPool2dBackward(gradOut, result.argmax, result.gradX, g);
    }
    assert.deepEqual(Array.from(actual.argmax), Array.from(expected.argmax), `${name}: argmax`);
    assertClose(actual.out, expected.out, elementwiseTolerance, `${name}: forward`);
    assertClose(actual.gradX, expected.gradX, elementwiseTolerance, `${name}: backward`);
  }
});

test('average pooling matches the reference with and without count_include_pad', (t) => {
  const backend = nativeOrSkip(t);
  if (backend === null) return;
  let seed = 60;
  for (const { name, geometry: g } of poolCases) {
    for (const countIncludePad of [false, true]) {
      const inSize = g.batch * g.channels * g.inHeight * g.inWidth;
      const outSize = g.batch * g.channels * g.outHeight * g.outWidth;
      const x = randomArray(inSize, seed++);
      const gradOut = randomArray(outSize, seed++);
      const what = `${name}, countIncludePad=${countIncludePad}`;
      const actualOut = new Float32Array(outSize);
      const expectedOut = new Float32Array(outSize);
      backend.avgPool2dForward(x, actualOut, g, countIncludePad);
      referenceBackend.avgPool2dForward(x, expectedOut, g, countIncludePad);
      assertClose(actualOut, expectedOut, elementwiseTolerance, `${what}: forward`);
      const actualGrad = new Float32Array(inSize).fill(5);
      const expectedGrad = new Float32Array(inSize);
      backend.avgPool2dBackward(gradOut, actualGrad, g, countIncludePad);
      referenceBackend.avgPool2dBackward(gradOut, expectedGrad, g, countIncludePad);
      assertClose(actualGrad, expectedGrad, elementwiseTolerance, `${what}: backward`);
    }
  }
});

const channelCases = [
  { batch: 4, channels: 3, spatial: 17 },
  { batch: 33, channels: 5, spatial: 1 },
  { batch: 16, channels: 32, spatial: 49 },
  { batch: 1, channels: 1, spatial: 129 },
];

test('batch norm forward and backward match the reference', (t) => {
  const backend = nativeOrSkip(t);
  if (backend === null) return;
  let seed = 80;
  for (const g of channelCases) {
    const size = g.batch * g.channels * g.spatial;
    // An offset mean checks that the variance is not computed as E[x²] - E[x]².
    const x = randomArray(size, seed++).map((v) => 3 + 2 * v);
    const gamma = randomArray(g.channels, seed++);
    const beta = randomArray(g.channels, seed++);
    const gradOut = randomArray(size, seed++);
    const results = [backend, referenceBackend].map((kernels) => {
      const out = new Float32Array(size);
      const mean = new Float32Array(g.channels);
      const invStd = new Float32Array(g.channels);
      kernels.batchNormTrainForward(x, gamma, beta, out, mean, invStd, 1e-5, g);
      const gradX = new Float32Array(size);
      const gradGamma = new Float32Array(g.channels);
      const gradBeta = new Float32Array(g.channels);
      kernels.batchNormTrainBackward(x, gradOut, gamma, mean, invStd, gradX, gradGamma, gradBeta, g);
      return { out, mean, invStd, gradX, gradGamma, gradBeta };
    });
    const [actual, expected] = results as [(typeof results)[0], (typeof results)[0]];
    const what = `batch norm ${g.batch}x${g.channels}x${g.spatial}`;
    assertClose(actual.mean, expected.mean, kernelTolerance, `${what}: mean`);
    assertClose(actual.invStd, expected.invStd, kernelTolerance, `${what}: invStd`);
    assertClose(actual.out, expected.out, kernelTolerance, `${what}: out`);
    assertClose(actual.gradX, expected.gradX, kernelTolerance, `${what}: gradX`);
    assertClose(actual.gradGamma, expected.gradGamma, kernelTolerance, `${what}: gradGamma`);
    assertClose(actual.gradBeta, expected.gradBeta, kernelTolerance, `${what}: gradBeta`);
  }
});

test('channel affine and channel sum match the reference', (t) => {
  const backend = nativeOrSkip(t);
  if (backend === null) return;
  let seed = 120;
  for (const g of [...channelCases, { batch: 64, channels: 32, spatial: 196 }]) {
    const size = g.batch * g.channels * g.spatial;
    const x = randomArray(size, seed++);
    const scale = randomArray(g.channels, seed++);
    const shift = randomArray(g.channels, seed++);
    const actual = new Float32Array(size);
    const expected = new Float32Array(size);
    backend.channelAffine(x, scale, shift, actual, g);
    referenceBackend.channelAffine(x, scale, shift, expected, g);
    assertClose(
      actual,
      expected,
      elementwiseTolerance,
      `channel affine ${g.batch}x${g.channels}x${g.spatial}`,
    );
    const actualSum = new Float32Array(g.channels);
    const expectedSum = new Float32Array(g.channels);
    backend.channelSum(x, actualSum, g);
    referenceBackend.channelSum(x, expectedSum, g);
    assertClose(actualSum, expectedSum, kernelTolerance, `channel sum ${g.batch}x${g.channels}x${g.spatial}`);
  }
});

test('activations match the reference, native and delegated kinds', (t) => {
  const backend = nativeOrSkip(t);
  if (backend === null) return;
  const kinds: ActivationKind[] = ['relu', 'leaky_relu', 'abs', 'neg', 'square', 'sigmoid', 'tanh'];
  // Large enough to be split across threads, with exact zeros at the kinks.
  const x = randomArray(100_003, 7);
  for (let i = 0; i < x.length; i += 97) x[i] = 0;
  const gradOut = randomArray(x.length, 8);
  for (const kind of kinds) {
    const results = [backend, referenceBackend].map((kernels) => {
      const y = new Float32Array(x.length);
      const gradX = new Float32Array(x.length);
      kernels.activationForward(kind, x, y, 0.01);
      kernels.activationBackward(kind, x, y, gradOut, gradX, 0.01);
      return { y, gradX };
    });
    assertClose(results[0]!.y, results[1]!.y, elementwiseTolerance, `${kind} forward`);
    assertClose(results[0]!.gradX, results[1]!.gradX, elementwiseTolerance, `${kind} backward`);
  }
});

test('binary operations match the reference for the shapes the addon handles and the rest', (t) => {
  const backend = nativeOrSkip(t);
  if (backend === null) return;
  const cases: { aShape: number[]; bShape: number[]; outShape: number[] }[] = [
    { aShape: [4, 3, 5, 7], bShape: [4, 3, 5, 7], outShape: [4, 3, 5, 7] },
    { aShape: [4, 3, 5, 7], bShape: [3, 1, 1], outShape: [4, 3, 5, 7] },
    { aShape: [1, 3, 1, 1], bShape: [4, 3, 5, 7], outShape: [4, 3, 5, 7] },
    { aShape: [65, 17], bShape: [17], outShape: [65, 17] },
    { aShape: [65, 17], bShape: [1], outShape: [65, 17] },
    { aShape: [], bShape: [65, 17], outShape: [65, 17] },
    { aShape: [4, 3, 5, 7], bShape: [3, 5, 1], outShape: [4, 3, 5, 7] },
    // Not handled natively (two different broadcast blocks): must still be right.
    { aShape: [4, 1, 5, 7], bShape: [1, 3, 1, 1], outShape: [4, 3, 5, 7] },
    { aShape: [200, 300], bShape: [200, 300], outShape: [200, 300] },
  ];
  const kinds: BinaryKind[] = ['add', 'sub', 'mul', 'div', 'maximum', 'minimum'];
  let seed = 200;
  for (const { aShape, bShape, outShape } of cases) {
    const size = (shape: number[]) => shape.reduce((p, d) => p * d, 1);
    const a = randomArray(size(aShape), seed++);
    const b = randomArray(size(bShape), seed++);
    for (const kind of kinds) {
      const actual = new Float32Array(size(outShape));
      const expected = new Float32Array(size(outShape));
      backend.binary(kind, a, aShape, b, bShape, actual, outShape);
      referenceBackend.binary(kind, a, aShape, b, bShape, expected, outShape);
      assertClose(actual, expected, elementwiseTolerance, `${kind} [${aShape}] with [${bShape}]`);
    }
  }
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
  const { x, weight } = convTensors(g, 1);
  assert.throws(() => backend.conv2dForward(x, weight, new Float32Array(1), g), RangeError);
  assert.throws(() => setNativeThreads(0), RangeError);
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

// Keep Data in the import list meaningful for readers: every kernel above takes Data arrays.
export type { Data };
