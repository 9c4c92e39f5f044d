/**
 * The WebAssembly backend against the reference backend (the executable spec) on random data.
 *
 * Needs build/wasm/kernels.wasm and kernels-relaxed.wasm (`npm run build:wasm`). Shapes are chosen
 * to hit every edge of the GEMM blocking (sizes of 1, sizes that are not multiples of the 4×8 or 6×8
 * register tile, depth beyond one 256-deep block, rows beyond one 126- or 128-row block, columns
 * beyond one 4096-column panel) and every branch of im2col/col2im (padding, stride 2, dilation 2,
 * 5×5, 1×1 shortcut, non-square).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { referenceBackend } from '../src/backend/reference/index.js';
import type { BatchNormGeometry, BinaryKind, Conv2dGeometry, Pool2dGeometry } from '../src/backend/types.js';
import { wasmBackend, wasmKernelBuild } from '../src/backend/wasm/index.js';
import {
  instantiateKernels,
  wasmRuntime,
  type WasmMemory,
  type WasmModule,
} from '../src/backend/wasm/runtime.js';
import { usesWinograd, usesWinogradWeightGradient, winogradTuning } from '../src/backend/wasm/winograd.js';

/** Float32 agreement: |actual − expected| ≤ atol + rtol·|expected| elementwise. */
interface Tolerance {
  atol: number;
  rtol: number;
}

const FLOAT32: Tolerance = { atol: 1e-5, rtol: 1e-4 };

/** The part of the WebAssembly API the build test uses (tsconfig's lib has no DOM declarations). */
interface WasmEngine {
  Memory: new (descriptor: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
  Module: new (bytes: Uint8Array) => WasmModule;
}

/** Sums of `terms` float32 products round at about sqrt(terms) times the single-product error. */
function forSum(terms: number): Tolerance {
  return { atol: FLOAT32.atol * Math.sqrt(Math.max(terms, 1)), rtol: FLOAT32.rtol };
}

function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance: Tolerance,
  label: string,
): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  for (let i = 0; i < expected.length; i++) {
    const difference = Math.abs(actual[i]! - expected[i]!);
    // NaN fails both comparisons, so a NaN on either side is a mismatch.
    if (!(difference <= tolerance.atol + tolerance.rtol * Math.abs(expected[i]!))) {
      assert.fail(`${label}: element ${i} is ${actual[i]}, expected ${expected[i]} (|Δ| = ${difference})`);
    }
  }
}

/** Deterministic uniform [-1, 1) floats (mulberry32), so a failure reproduces. */
function randomFloats(count: number, seed: number, offset = 0): Float32Array {
  let state = seed >>> 0;
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    values[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1 + offset;
  }
  return values;
}

describe('wasm backend: matmul', () => {
  const shapes: [m: number, n: number, k: number][] = [
    [1, 1, 1],
    [3, 3, 3],
    [1, 17, 33],
    [17, 1, 3],
    [17, 33, 64],
    [33, 17, 1],
    [64, 64, 64],
    [5, 9, 600], // depth spans three 256-deep blocks
    [131, 13, 7], // rows span two 126- or 128-row blocks
    [3, 4103, 5], // columns span two 4096-column panels
  ];
  for (const [m, n, k] of shapes) {
    for (const transposeA of [false, true]) {
      for (const transposeB of [false, true]) {
        for (const accumulate of [false, true]) {
          const name = `M=${m} N=${n} K=${k} transposeA=${transposeA} transposeB=${transposeB} accumulate=${accumulate}`;
          it(name, () => {
            const a = randomFloats(m * k, m * 7 + k);
            const b = randomFloats(k * n, n * 13 + k);
            const start = randomFloats(m * n, m + n);
            const expected = Float32Array.from(start);
            const actual = Float32Array.from(start);
            referenceBackend.matmul(a, b, expected, m, n, k, transposeA, transposeB, accumulate);
            wasmBackend.matmul(a, b, actual, m, n, k, transposeA, transposeB, accumulate);
            assertClose(actual, expected, forSum(k), name);
          });
        }
      }
    }
  }

  /** Checks out = start (+) op(A)·op(B) at a spread of sampled entries, for products too big to loop over. */
  function assertSampledProduct(
    a: Float32Array,
    b: Float32Array,
    start: Float32Array,
    out: Float32Array,
    [m, n, k]: [number, number, number],
    transposeA: boolean,
    transposeB: boolean,
    accumulate: boolean,
  ): void {
    for (let sample = 0; sample < 300; sample++) {
      // The corners first (edge tiles), then entries spread by coprime strides.
      const i = sample < 2 ? sample * (m - 1) : (sample * 97) % m;
      const j = sample < 4 ? (sample % 2) * (n - 1) : (sample * 389) % n;
      let sum = accumulate ? start[i * n + j]! : 0;
      for (let p = 0; p < k; p++) {
        sum += a[transposeA ? p * m + i : i * k + p]! * b[transposeB ? j * k + p : p * n + j]!;
      }
      assertClose([out[i * n + j]!], [sum], forSum(k), `C[${i},${j}]`);
    }
  }

  it('512×512×512 agrees at sampled entries', () => {
    const shape: [number, number, number] = [512, 512, 512];
    const a = randomFloats(512 * 512, 1);
    const b = randomFloats(512 * 512, 2);
    const out = new Float32Array(512 * 512);
    wasmBackend.matmul(a, b, out, ...shape, false, false, false);
    assertSampledProduct(a, b, out, out, shape, false, false, false);
  });

  it('blocks in all three dimensions at once (133×4105×261), every transpose, accumulating', () => {
    const shape: [number, number, number] = [133, 4105, 261];
    const [m, n, k] = shape;
    const a = randomFloats(m * k, 3);
    const b = randomFloats(k * n, 4);
    const start = randomFloats(m * n, 5);
    for (const transposeA of [false, true]) {
      for (const transposeB of [false, true]) {
        const out = Float32Array.from(start);
        wasmBackend.matmul(a, b, out, m, n, k, transposeA, transposeB, true);
        assertSampledProduct(a, b, start, out, shape, transposeA, transposeB, true);
      }
    }
  });

  it('both kernel builds (plain SIMD 4×8, relaxed SIMD 6×8) agree with the reference', () => {
    // The backend loads one build per process; this instantiates each directly, so the build not in
    // use (the plain one wherever relaxed SIMD runs) is tested too.
    const engine = (globalThis as unknown as { WebAssembly: WasmEngine }).WebAssembly;
    const [m, n, k] = [133, 37, 300];
    const a = randomFloats(m * k, 11);
    const b = randomFloats(k * n, 12);
    const start = randomFloats(m * n, 13);
    const expected = Float32Array.from(start);
    referenceBackend.matmul(a, b, expected, m, n, k, false, true, true);
    const builds: [string, number][] = [['kernels.wasm', 4]];
    if (wasmKernelBuild() === 'relaxed-simd') builds.push(['kernels-relaxed.wasm', 6]);
    for (const [file, tileRows] of builds) {
      const bytes = readFileSync(fileURLToPath(new URL(`../../build/wasm/${file}`, import.meta.url)));
      const memory = new engine.Memory({ initial: 64, maximum: 65536, shared: true });
      const kernels = instantiateKernels(new engine.Module(bytes), memory);
      assert.equal(kernels.gemmTileRows(), tileRows, file);
      const floats = new Float32Array(memory.buffer);
      const base = Math.ceil(kernels.heapBase() / 64) * 64;
      const [aAt, bAt, cAt] = [base, base + m * k * 4, base + (m * k + k * n) * 4];
      const workAt = cAt + m * n * 4;
      floats.set(a, aAt / 4);
      floats.set(b, bAt / 4);
      floats.set(start, cAt / 4);
      // B is stored [N, K] (transposed), C accumulates.
      kernels.gemmStrided(m, n, k, aAt, k, false, bAt, k, true, cAt, n, true, workAt);
      assertClose(floats.subarray(cAt / 4, cAt / 4 + m * n), expected, forSum(k), file);
    }
  });

  it('K = 0 overwrites with zeros or leaves out alone', () => {
    const out = Float32Array.from([1, 2, 3, 4]);
    wasmBackend.matmul(new Float32Array(0), new Float32Array(0), out, 2, 2, 0, false, false, true);
    assert.deepEqual(Array.from(out), [1, 2, 3, 4]);
    wasmBackend.matmul(new Float32Array(0), new Float32Array(0), out, 2, 2, 0, false, false, false);
    assert.deepEqual(Array.from(out), [0, 0, 0, 0]);
  });

  it('runs the example from the module documentation', () => {
    const out = new Float32Array(4);
    wasmBackend.matmul(
      new Float32Array([1, 2, 3, 4]),
      new Float32Array([1, 0, 0, 1]),
      out,
      2,
      2,
      2,
      false,
      false,
      false,
    );
    assertClose(out, [1, 2, 3, 4], FLOAT32, 'example');
  });
});

function convGeometry(
  batch: number,
  inChannels: number,
  inHeight: number,
  inWidth: number,
  outChannels: number,
  kernel: [height: number, width: number],
  stride: [height: number, width: number],
  pad: [top: number, left: number],
  dilation: [height: number, width: number],
): Conv2dGeometry {
  const outSize = (size: number, k: number, s: number, p: number, d: number) =>
    Math.floor((size + 2 * p - d * (k - 1) - 1) / s) + 1;
  return {
    batch,
    inChannels,
    inHeight,
    inWidth,
    outChannels,
    kernelHeight: kernel[0],
    kernelWidth: kernel[1],
    strideHeight: stride[0],
    strideWidth: stride[1],
    padTop: pad[0],
    padLeft: pad[1],
    dilationHeight: dilation[0],
    dilationWidth: dilation[1],
    outHeight: outSize(inHeight, kernel[0], stride[0], pad[0], dilation[0]),
    outWidth: outSize(inWidth, kernel[1], stride[1], pad[1], dilation[1]),
  };
}

describe('wasm backend: Winograd F(2×2, 3×3) convolutions', () => {
  // 3×3, stride 1, pad 1: the forward, input-gradient and weight-gradient convolutions take
  // assembly/winograd.ts instead of im2col. The channel thresholds are lowered so that small channel
  // counts are covered too.
  const minChannels = winogradTuning.minChannels;
  const weightGradientMinChannels = winogradTuning.weightGradientMinChannels;
  before(() => {
    winogradTuning.minChannels = 1;
    winogradTuning.weightGradientMinChannels = 1;
  });
  after(() => {
    winogradTuning.minChannels = minChannels;
    winogradTuning.weightGradientMinChannels = weightGradientMinChannels;
  });
  const cases: [string, Conv2dGeometry][] = [
    ['8→8, 8×8, 2 images', convGeometry(2, 8, 8, 8, 8, [3, 3], [1, 1], [1, 1], [1, 1])],
    ['9→13, odd 7×5, 1 image', convGeometry(1, 9, 7, 5, 13, [3, 3], [1, 1], [1, 1], [1, 1])],
    ['17→10, 1×1 image', convGeometry(2, 17, 1, 1, 10, [3, 3], [1, 1], [1, 1], [1, 1])],
    ['8→11, 2×9 (one tile row)', convGeometry(1, 8, 2, 9, 11, [3, 3], [1, 1], [1, 1], [1, 1])],
    [
      '11→8, 17×19 (leftover tiles and cut tiles)',
      convGeometry(2, 11, 17, 19, 8, [3, 3], [1, 1], [1, 1], [1, 1]),
    ],
    [
      '12→12, 40×9 (one leftover tile per row)',
      convGeometry(1, 12, 40, 9, 12, [3, 3], [1, 1], [1, 1], [1, 1]),
    ],
    [
      '12→12, 19×13 (three leftover tiles per row)',
      convGeometry(2, 12, 19, 13, 12, [3, 3], [1, 1], [1, 1], [1, 1]),
    ],
    ['260→9: depth past one 256-deep block', convGeometry(1, 260, 5, 6, 9, [3, 3], [1, 1], [1, 1], [1, 1])],
    [
      '9→260: input gradient depth past one block',
      convGeometry(1, 9, 4, 3, 260, [3, 3], [1, 1], [1, 1], [1, 1]),
    ],
    ['seed layer 2: 32→32, 28×28', convGeometry(1, 32, 28, 28, 32, [3, 3], [1, 1], [1, 1], [1, 1])],
    ['seed layer 4: 64→64, 14×14', convGeometry(2, 64, 14, 14, 64, [3, 3], [1, 1], [1, 1], [1, 1])],
    [
      '10→14, 38×30, 3 images (285 tiles an image: weight-gradient depth chunks cut images mid-row)',
      convGeometry(3, 10, 38, 30, 14, [3, 3], [1, 1], [1, 1], [1, 1]),
    ],
    [
      '13→20, 7×7, 24 images (several images a weight-gradient depth chunk)',
      convGeometry(24, 13, 7, 7, 20, [3, 3], [1, 1], [1, 1], [1, 1]),
    ],
  ];
  for (const [name, g] of cases) {
    const xCount = g.batch * g.inChannels * g.inHeight * g.inWidth;
    const weightCount = g.outChannels * g.inChannels * 9;
    const outCount = g.batch * g.outChannels * g.outHeight * g.outWidth;
    const x = randomFloats(xCount, 31);
    const weight = randomFloats(weightCount, 32);
    const gradOut = randomFloats(outCount, 33);

    it(`takes the Winograd path, ${name}`, () => {
      assert.ok(usesWinograd(g));
      assert.ok(usesWinogradWeightGradient(g));
    });

    it(`forward, ${name}`, () => {
      const expected = new Float32Array(outCount);
      const actual = new Float32Array(outCount).fill(Number.NaN); // must be overwritten
      referenceBackend.conv2dForward(x, weight, expected, g);
      wasmBackend.conv2dForward(x, weight, actual, g);
      assertClose(actual, expected, forSum(g.inChannels * 9), name);
    });

    it(`backward input, ${name}`, () => {
      const expected = new Float32Array(xCount);
      const actual = new Float32Array(xCount).fill(Number.NaN);
      referenceBackend.conv2dBackwardInput(gradOut, weight, expected, g);
      wasmBackend.conv2dBackwardInput(gradOut, weight, actual, g);
      assertClose(actual, expected, forSum(g.outChannels * 9), name);
    });

    it(`backward weight, ${name}`, () => {
      const expected = new Float32Array(weightCount);
      const actual = new Float32Array(weightCount).fill(Number.NaN);
      referenceBackend.conv2dBackwardWeight(x, gradOut, expected, g);
      wasmBackend.conv2dBackwardWeight(x, gradOut, actual, g);
      assertClose(actual, expected, forSum(g.batch * g.outHeight * g.outWidth), name);
    });
  }

  it('keeps im2col for other geometries and for few channels', () => {
    winogradTuning.minChannels = minChannels;
    assert.ok(usesWinograd(convGeometry(2, 32, 28, 28, 32, [3, 3], [1, 1], [1, 1], [1, 1])));
    assert.ok(!usesWinograd(convGeometry(2, 1, 28, 28, 32, [3, 3], [1, 1], [1, 1], [1, 1])));
    assert.ok(!usesWinograd(convGeometry(2, 32, 28, 28, 1, [3, 3], [1, 1], [1, 1], [1, 1])));
    assert.ok(!usesWinograd(convGeometry(2, 16, 9, 9, 16, [3, 3], [2, 2], [1, 1], [1, 1])));
    assert.ok(!usesWinograd(convGeometry(2, 16, 9, 9, 16, [3, 3], [1, 1], [2, 2], [2, 2])));
    assert.ok(!usesWinograd(convGeometry(2, 16, 9, 9, 16, [3, 3], [1, 1], [0, 0], [1, 1])));
    assert.ok(!usesWinograd(convGeometry(2, 16, 9, 9, 16, [5, 5], [1, 1], [2, 2], [1, 1])));
    winogradTuning.weightGradientMinChannels = weightGradientMinChannels;
    assert.ok(usesWinogradWeightGradient(convGeometry(2, 32, 28, 28, 32, [3, 3], [1, 1], [1, 1], [1, 1])));
    assert.ok(!usesWinogradWeightGradient(convGeometry(2, 1, 28, 28, 32, [3, 3], [1, 1], [1, 1], [1, 1])));
    assert.ok(!usesWinogradWeightGradient(convGeometry(2, 16, 9, 9, 16, [3, 3], [2, 2], [1, 1], [1, 1])));
    // 16 sums of [2048, 1024] would take 128 MiB of scratch per thread.
    assert.ok(!usesWinogradWeightGradient(convGeometry(1, 1024, 4, 4, 2048, [3, 3], [1, 1], [1, 1], [1, 1])));
  });
});

describe('wasm backend: conv2d', () => {
  const cases: [string, Conv2dGeometry][] = [
    ['3×3 pad 1', convGeometry(2, 3, 8, 8, 5, [3, 3], [1, 1], [1, 1], [1, 1])],
    ['3×3 stride 2 pad 1', convGeometry(2, 3, 9, 9, 4, [3, 3], [2, 2], [1, 1], [1, 1])],
    ['3×3 dilation 2 pad 2', convGeometry(2, 2, 11, 10, 3, [3, 3], [1, 1], [2, 2], [2, 2])],
    ['5×5 pad 2', convGeometry(1, 3, 12, 12, 6, [5, 5], [1, 1], [2, 2], [1, 1])],
    ['1×1 (no im2col)', convGeometry(2, 7, 5, 6, 9, [1, 1], [1, 1], [0, 0], [1, 1])],
    ['1×1 stride 2', convGeometry(2, 4, 7, 7, 3, [1, 1], [2, 2], [0, 0], [1, 1])],
    ['1×1 pad 1', convGeometry(1, 3, 4, 5, 2, [1, 1], [1, 1], [1, 1], [1, 1])],
    [
      '3×2 kernel, 2×1 stride, non-square input',
      convGeometry(2, 3, 10, 7, 4, [3, 2], [2, 1], [1, 0], [1, 1]),
    ],
    [
      '2×4 kernel, 1×3 stride, mixed padding and dilation',
      convGeometry(1, 2, 9, 13, 3, [2, 4], [1, 3], [0, 2], [2, 1]),
    ],
    ['kernel larger than the padded reach', convGeometry(1, 1, 3, 3, 2, [3, 3], [1, 1], [2, 2], [1, 1])],
    [
      '5×5 pad 2 on a 3×2 input (taps entirely in padding)',
      convGeometry(2, 2, 3, 2, 3, [5, 5], [1, 1], [2, 2], [1, 1]),
    ],
    ['seed layer 1: 1→32, 28×28', convGeometry(2, 1, 28, 28, 32, [3, 3], [1, 1], [1, 1], [1, 1])],
    ['seed layer 3: 32→64, 14×14', convGeometry(1, 32, 14, 14, 64, [3, 3], [1, 1], [1, 1], [1, 1])],
  ];
  for (const [name, g] of cases) {
    const xCount = g.batch * g.inChannels * g.inHeight * g.inWidth;
    const weightCount = g.outChannels * g.inChannels * g.kernelHeight * g.kernelWidth;
    const outCount = g.batch * g.outChannels * g.outHeight * g.outWidth;
    const depth = g.inChannels * g.kernelHeight * g.kernelWidth;
    const x = randomFloats(xCount, 11);
    const weight = randomFloats(weightCount, 12);
    const gradOut = randomFloats(outCount, 13);

    it(`forward, ${name}`, () => {
      const expected = new Float32Array(outCount);
      const actual = new Float32Array(outCount);
      referenceBackend.conv2dForward(x, weight, expected, g);
      wasmBackend.conv2dForward(x, weight, actual, g);
      assertClose(actual, expected, forSum(depth), name);
    });

    it(`backward input, ${name}`, () => {
      const expected = new Float32Array(xCount);
      const actual = new Float32Array(xCount).fill(Number.NaN); // must be overwritten
      referenceBackend.conv2dBackwardInput(gradOut, weight, expected, g);
      wasmBackend.conv2dBackwardInput(gradOut, weight, actual, g);
      assertClose(actual, expected, forSum(g.outChannels * g.kernelHeight * g.kernelWidth), name);
    });

    it(`backward weight, ${name}`, () => {
      const expected = new Float32Array(weightCount);
      const actual = new Float32Array(weightCount).fill(Number.NaN);
      referenceBackend.conv2dBackwardWeight(x, gradOut, expected, g);
      wasmBackend.conv2dBackwardWeight(x, gradOut, actual, g);
      assertClose(actual, expected, forSum(g.batch * g.outHeight * g.outWidth), name);
    });
  }
});

function poolGeometry(
  batch: number,
  channels: number,
  inHeight: number,
  inWidth: number,
  kernel: [height: number, width: number],
  stride: [height: number, width: number],
  pad: [top: number, left: number],
  ceilMode = false,
): Pool2dGeometry {
  const outSize = (size: number, k: number, s: number, p: number) => {
    const span = size + 2 * p - k;
    let out = (ceilMode ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
    // PyTorch's ceil-mode rule: the last window must start inside the input or left padding.
    if (ceilMode && (out - 1) * s >= size + p) out--;
    return out;
  };
  return {
    batch,
    channels,
    inHeight,
    inWidth,
    kernelHeight: kernel[0],
    kernelWidth: kernel[1],
    strideHeight: stride[0],
    strideWidth: stride[1],
    padTop: pad[0],
    padLeft: pad[1],
    outHeight: outSize(inHeight, kernel[0], stride[0], pad[0]),
    outWidth: outSize(inWidth, kernel[1], stride[1], pad[1]),
  };
}

describe('wasm backend: pooling', () => {
  const cases: [string, Pool2dGeometry][] = [
    ['2×2 stride 2', poolGeometry(2, 3, 8, 8, [2, 2], [2, 2], [0, 0])],
    ['2×2 stride 2, odd input', poolGeometry(2, 2, 7, 9, [2, 2], [2, 2], [0, 0])],
    ['3×3 stride 2 pad 1', poolGeometry(2, 3, 9, 8, [3, 3], [2, 2], [1, 1])],
    ['3×2 kernel, 1×2 stride, pad 1×0', poolGeometry(1, 2, 6, 7, [3, 2], [1, 2], [1, 0])],
    ['overlapping 3×3 stride 1 pad 1', poolGeometry(1, 2, 5, 5, [3, 3], [1, 1], [1, 1])],
    ['ceil mode: windows hang past the input', poolGeometry(1, 2, 5, 7, [2, 3], [2, 2], [0, 1], true)],
    ['3×3 stride 1 pad 1, wide rows', poolGeometry(1, 2, 6, 19, [3, 3], [1, 1], [1, 1])],
    ['3×3 stride 2 pad 1, wide rows', poolGeometry(2, 2, 7, 23, [3, 3], [2, 2], [1, 1])],
    ['3×3 stride 3, wide rows', poolGeometry(1, 2, 9, 26, [3, 3], [3, 3], [0, 0])],
    ['2×4 kernel, 2×3 stride, pad 1×2', poolGeometry(1, 3, 8, 30, [2, 4], [2, 3], [1, 2], true)],
    ['seed pool: 64×32×28×28 → 14×14 (batch 2)', poolGeometry(2, 32, 28, 28, [2, 2], [2, 2], [0, 0])],
  ];
  for (const [name, g] of cases) {
    const inCount = g.batch * g.channels * g.inHeight * g.inWidth;
    const outCount = g.batch * g.channels * g.outHeight * g.outWidth;
    const x = randomFloats(inCount, 21);
    const gradOut = randomFloats(outCount, 22);

    it(`max forward and backward, ${name}`, () => {
      const expected = new Float32Array(outCount);
      const expectedArgmax = new Int32Array(outCount);
      const actual = new Float32Array(outCount);
      const actualArgmax = new Int32Array(outCount);
      referenceBackend.maxPool2dForward(x, expected, expectedArgmax, g);
      wasmBackend.maxPool2dForward(x, actual, actualArgmax, g);
      assertClose(actual, expected, FLOAT32, name);
      assert.deepEqual(actualArgmax, expectedArgmax);

      const expectedGrad = new Float32Array(inCount);
      const actualGrad = new Float32Array(inCount).fill(Number.NaN);
      referenceBackend.maxPool2dBackward(gradOut, expectedArgmax, expectedGrad, g);
      wasmBackend.maxPool2dBackward(gradOut, actualArgmax, actualGrad, g);
      assertClose(actualGrad, expectedGrad, FLOAT32, `${name} backward`);
    });

    for (const countIncludePad of [false, true]) {
      it(`average forward and backward, ${name}, countIncludePad=${countIncludePad}`, () => {
        const expected = new Float32Array(outCount);
        const actual = new Float32Array(outCount);
        referenceBackend.avgPool2dForward(x, expected, g, countIncludePad);
        wasmBackend.avgPool2dForward(x, actual, g, countIncludePad);
        assertClose(actual, expected, FLOAT32, name);

        const expectedGrad = new Float32Array(inCount);
        const actualGrad = new Float32Array(inCount).fill(Number.NaN);
        referenceBackend.avgPool2dBackward(gradOut, expectedGrad, g, countIncludePad);
        wasmBackend.avgPool2dBackward(gradOut, actualGrad, g, countIncludePad);
        assertClose(actualGrad, expectedGrad, FLOAT32, `${name} backward`);
      });
    }
  }

  it('max pooling agrees on ties, NaN and -infinity', () => {
    for (const [name, g] of cases) {
      const count = g.batch * g.channels * g.inHeight * g.inWidth;
      // Small integers make ties common; NaN and -infinity are sprinkled in.
      const x = randomFloats(count, 23).map((value, i) =>
        i % 37 === 5 ? Number.NaN : i % 29 === 3 ? -Infinity : Math.round(value * 2),
      );
      const outCount = g.batch * g.channels * g.outHeight * g.outWidth;
      const expected = new Float32Array(outCount);
      const expectedArgmax = new Int32Array(outCount);
      const actual = new Float32Array(outCount);
      const actualArgmax = new Int32Array(outCount);
      referenceBackend.maxPool2dForward(x, expected, expectedArgmax, g);
      wasmBackend.maxPool2dForward(x, actual, actualArgmax, g);
      assert.deepEqual(actualArgmax, expectedArgmax, name);
      // deepEqual treats NaN as equal to NaN, and these maxima are copies, not computed values.
      assert.deepEqual(actual, expected, name);
    }
  });

  it('max pooling takes the first of tied maxima and lets NaN win', () => {
    const g = poolGeometry(1, 1, 2, 4, [2, 2], [2, 2], [0, 0]);
    const x = Float32Array.from([5, 5, 1, Number.NaN, 5, 5, 2, 3]);
    const out = new Float32Array(2);
    const argmax = new Int32Array(2);
    wasmBackend.maxPool2dForward(x, out, argmax, g);
    assert.deepEqual(Array.from(argmax), [0, 3]);
    assert.equal(out[0], 5);
    assert.ok(Number.isNaN(out[1]!));
  });

  it('max pooling over an all -infinity window points at its first element', () => {
    const g = poolGeometry(1, 1, 3, 3, [2, 2], [2, 2], [1, 1]);
    const x = new Float32Array(9).fill(-Infinity);
    const out = new Float32Array(4);
    const argmax = new Int32Array(4);
    wasmBackend.maxPool2dForward(x, out, argmax, g);
    assert.deepEqual(Array.from(argmax), [0, 1, 3, 4]);
  });
});

describe('wasm backend: batch norm and channel affine', () => {
  const cases: [string, BatchNormGeometry, number][] = [
    ['4-D, spatial a multiple of 4', { batch: 4, channels: 3, spatial: 16 }, 0],
    ['4-D, odd spatial', { batch: 3, channels: 5, spatial: 35 }, 0],
    ['2-D (spatial 1)', { batch: 9, channels: 6, spatial: 1 }, 0],
    ['mean far from zero', { batch: 8, channels: 2, spatial: 49 }, 100],
    // The float32 passes subtract the mean as head + tail: one float32 mean of 10⁴ is off by 10⁻³.
    ['mean 10⁴, deviations of 1', { batch: 4, channels: 3, spatial: 37 }, 10_000],
    ['seed shape 64×32×14×14 (batch 4)', { batch: 4, channels: 32, spatial: 196 }, 0.5],
  ];
  for (const [name, g, offset] of cases) {
    const count = g.batch * g.channels * g.spatial;
    const x = randomFloats(count, 31, offset);
    const gamma = randomFloats(g.channels, 32, 1);
    const beta = randomFloats(g.channels, 33);
    const gradOut = randomFloats(count, 34);

    it(`train forward and backward, ${name}`, () => {
      const eps = 1e-5;
      const expected = {
        out: new Float32Array(count),
        mean: new Float32Array(g.channels),
        invStd: new Float32Array(g.channels),
      };
      const actual = {
        out: new Float32Array(count),
        mean: new Float32Array(g.channels),
        invStd: new Float32Array(g.channels),
      };
      referenceBackend.batchNormTrainForward(
        x,
        gamma,
        beta,
        expected.out,
        expected.mean,
        expected.invStd,
        eps,
        g,
      );
      wasmBackend.batchNormTrainForward(x, gamma, beta, actual.out, actual.mean, actual.invStd, eps, g);
      assertClose(actual.out, expected.out, FLOAT32, `${name} out`);
      assertClose(actual.mean, expected.mean, FLOAT32, `${name} mean`);
      assertClose(actual.invStd, expected.invStd, FLOAT32, `${name} invStd`);

      const expectedGrad = {
        x: new Float32Array(count),
        gamma: new Float32Array(g.channels),
        beta: new Float32Array(g.channels),
      };
      const actualGrad = {
        x: new Float32Array(count),
        gamma: new Float32Array(g.channels),
        beta: new Float32Array(g.channels),
      };
      const saved = [expected.mean, expected.invStd] as const;
      referenceBackend.batchNormTrainBackward(
        x,
        gradOut,
        gamma,
        ...saved,
        expectedGrad.x,
        expectedGrad.gamma,
        expectedGrad.beta,
        g,
      );
      wasmBackend.batchNormTrainBackward(
        x,
        gradOut,
        gamma,
        ...saved,
        actualGrad.x,
        actualGrad.gamma,
        actualGrad.beta,
        g,
      );
      const terms = g.batch * g.spatial;
      assertClose(actualGrad.x, expectedGrad.x, FLOAT32, `${name} gradX`);
      assertClose(actualGrad.gamma, expectedGrad.gamma, forSum(terms), `${name} gradGamma`);
      assertClose(actualGrad.beta, expectedGrad.beta, forSum(terms), `${name} gradBeta`);
    });

    it(`channel affine, ${name}`, () => {
      const expected = new Float32Array(count);
      const actual = new Float32Array(count);
      referenceBackend.channelAffine(x, gamma, beta, expected, g);
      wasmBackend.channelAffine(x, gamma, beta, actual, g);
      assertClose(actual, expected, FLOAT32, name);
    });

    it(`fused batch norm + ReLU equals the two kernels in turn, bit for bit, ${name}`, () => {
      // The reference's composite runs the wasm kernels one after the other (through `this`); the
      // fused kernels must give exactly their bits, ReLU's NaN and −0 handling included.
      const run = (fused: boolean) => {
        const forward = fused
          ? wasmBackend.batchNormReluTrainForward
          : referenceBackend.batchNormReluTrainForward;
        const backward = fused
          ? wasmBackend.batchNormReluTrainBackward
          : referenceBackend.batchNormReluTrainBackward;
        const affine = fused ? wasmBackend.channelAffineRelu : referenceBackend.channelAffineRelu;
        const input = Float32Array.from(x);
        input[1] = Number.NaN;
        const gradient = Float32Array.from(gradOut);
        gradient[2] = -0;
        const y = new Float32Array(count);
        const mean = new Float32Array(g.channels);
        const invStd = new Float32Array(g.channels);
        forward.call(wasmBackend, input, gamma, beta, y, mean, invStd, 1e-5, g);
        const clean = Float32Array.from(x);
        const yClean = new Float32Array(count);
        forward.call(wasmBackend, clean, gamma, beta, yClean, mean, invStd, 1e-5, g);
        const gradX = new Float32Array(count);
        const gradGamma = new Float32Array(g.channels);
        const gradBeta = new Float32Array(g.channels);
        backward.call(
          wasmBackend,
          clean,
          yClean,
          gradient,
          gamma,
          beta,
          mean,
          invStd,
          gradX,
          gradGamma,
          gradBeta,
          g,
        );
        const affined = new Float32Array(count);
        affine.call(wasmBackend, input, gamma, beta, affined, g);
        return [y, yClean, mean, invStd, gradX, gradGamma, gradBeta, affined];
      };
      const [fused, separate] = [run(true), run(false)];
      for (let i = 0; i < fused.length; i++) assert.deepEqual(fused[i], separate[i], `${name} output ${i}`);
      assert.ok(
        fused[1]!.some((v) => v === 0),
        'the ReLU clips something',
      );
    });
  }
});

describe('wasm backend: channel sums, activations, broadcast arithmetic, reductions', () => {
  for (const [name, g] of [
    ['4-D', { batch: 3, channels: 5, spatial: 35 }],
    ['2-D, channels a multiple of 4', { batch: 9, channels: 8, spatial: 1 }],
    ['2-D, odd channels', { batch: 7, channels: 11, spatial: 1 }],
  ] as [string, BatchNormGeometry][]) {
    it(`channel sums, ${name}`, () => {
      const x = randomFloats(g.batch * g.channels * g.spatial, 61, 0.5);
      const expected = new Float32Array(g.channels);
      const actual = new Float32Array(g.channels);
      referenceBackend.channelSum(x, expected, g);
      wasmBackend.channelSum(x, actual, g);
      assertClose(actual, expected, forSum(g.batch * g.spatial), name);
    });
  }

  it('ReLU and leaky ReLU agree exactly, with NaN, ±0 and ±infinity', () => {
    const x = randomFloats(1003, 62);
    x.set([Number.NaN, -0, 0, Infinity, -Infinity, 1e-40, -1e-40], 500);
    const gradOut = randomFloats(1003, 63);
    for (const [kind, alpha] of [
      ['relu', 0],
      ['leaky_relu', 0.01],
      ['leaky_relu', 0.3],
    ] as const) {
      const expected = new Float32Array(x.length);
      const actual = new Float32Array(x.length);
      referenceBackend.activationForward(kind, x, expected, alpha);
      wasmBackend.activationForward(kind, x, actual, alpha);
      assert.deepEqual(actual, expected, `${kind} forward`);
      const expectedGrad = new Float32Array(x.length);
      const actualGrad = new Float32Array(x.length);
      referenceBackend.activationBackward(kind, x, expected, gradOut, expectedGrad, alpha);
      wasmBackend.activationBackward(kind, x, actual, gradOut, actualGrad, alpha);
      assert.deepEqual(actualGrad, expectedGrad, `${kind} backward`);
    }
  });

  it('other activations still run (in the reference kernels)', () => {
    const x = randomFloats(37, 64);
    const expected = new Float32Array(x.length);
    const actual = new Float32Array(x.length);
    referenceBackend.activationForward('tanh', x, expected, 1);
    wasmBackend.activationForward('tanh', x, actual, 1);
    assert.deepEqual(actual, expected);
  });

  const shape = [2, 3, 5, 7];
  const full = randomFloats(2 * 3 * 5 * 7, 65);
  full[7] = Number.NaN;
  const operands: [string, number[]][] = [
    ['same shape', shape],
    ['same shape, lower rank', [3, 5, 7]],
    ['per channel [3, 1, 1]', [3, 1, 1]],
    ['per channel [1, 3, 1, 1]', [1, 3, 1, 1]],
    ['last axis [7]', [7]],
    ['middle run [5, 7]', [5, 7]],
    ['first axis [2, 1, 1, 1]', [2, 1, 1, 1]],
    ['scalar []', []],
    ['scalar [1, 1]', [1, 1]],
    ['not a contiguous run [3, 1, 7] (reference path)', [3, 1, 7]],
  ];
  for (const [name, operandShape] of operands) {
    const operand = randomFloats(
      operandShape.reduce((p, d) => p * d, 1),
      66,
    ).map((v, i) => (i === 2 ? Number.NaN : v + 1.5));
    for (const kind of ['add', 'sub', 'mul', 'div', 'maximum', 'minimum'] as BinaryKind[]) {
      it(`binary ${kind}, ${name}, on either side`, () => {
        for (const fullIsLeft of [true, false]) {
          const [a, aShape, b, bShape] = fullIsLeft
            ? [full, shape, operand, operandShape]
            : [operand, operandShape, full, shape];
          const expected = new Float32Array(full.length);
          const actual = new Float32Array(full.length);
          referenceBackend.binary(kind, a, aShape, b, bShape, expected, shape);
          wasmBackend.binary(kind, a, aShape, b, bShape, actual, shape);
          // float32 +, −, ·, ÷ and comparisons round exactly like the reference's float64 ones.
          assert.deepEqual(actual, expected, `${kind} ${name} fullIsLeft=${fullIsLeft}`);
        }
      });
    }
  }

  // Both operands broadcast: the larger is spread into wasm memory, the other is the vector.
  const bothBroadcast: [string, number[], number[]][] = [
    ['[2, 3, 1, 1] ∘ scalar (average-pool gradient)', [2, 3, 1, 1], []],
    ['[3, 1, 1] ∘ [2, 1, 1, 1]', [3, 1, 1], [2, 1, 1, 1]],
    ['[5, 1] ∘ [7]', [5, 1], [7]],
    ['[2, 1, 5, 7] ∘ [3, 1, 1] (not a contiguous run: reference path)', [2, 1, 5, 7], [3, 1, 1]],
  ];
  for (const [name, aShape, bShape] of bothBroadcast) {
    const sizeOf = (dims: number[]) => dims.reduce((p, d) => p * d, 1);
    const a = randomFloats(sizeOf(aShape), 67).map((v, i) => (i === 1 ? Number.NaN : v));
    const b = randomFloats(sizeOf(bShape), 68).map((v) => v + 1.5);
    for (const kind of ['add', 'sub', 'mul', 'div', 'maximum', 'minimum'] as BinaryKind[]) {
      it(`binary ${kind}, ${name}, both orders`, () => {
        for (const [left, leftShape, right, rightShape] of [
          [a, aShape, b, bShape],
          [b, bShape, a, aShape],
        ] as const) {
          const expected = new Float32Array(full.length);
          const actual = new Float32Array(full.length);
          referenceBackend.binary(kind, left, leftShape, right, rightShape, expected, shape);
          wasmBackend.binary(kind, left, leftShape, right, rightShape, actual, shape);
          assert.deepEqual(actual, expected, `${kind} ${name}`);
        }
      });
    }
  }

  it('binary works in place (out is one of the operands)', () => {
    const a = randomFloats(60, 67);
    const expected = new Float32Array(60);
    referenceBackend.binary('mul', a, [6, 10], a, [6, 10], expected, [6, 10]);
    wasmBackend.binary('mul', a, [6, 10], a, [6, 10], a, [6, 10]);
    assert.deepEqual(a, expected);
  });

  for (const outShape of [
    [1, 3, 1, 1],
    [1, 1, 1, 7],
    [1, 3, 5, 1],
    [2, 1, 1, 1],
    [1, 1, 1, 1],
    [2, 3, 5, 7],
    [2, 1, 1, 7], // not a contiguous run (reference path)
  ]) {
    it(`reduceSum [2, 3, 5, 7] → [${outShape.join(', ')}]`, () => {
      const x = randomFloats(2 * 3 * 5 * 7, 68, 0.25);
      const expected = new Float32Array(outShape.reduce((p, d) => p * d, 1));
      const actual = new Float32Array(expected.length);
      referenceBackend.reduceSum(x, shape, expected, outShape);
      wasmBackend.reduceSum(x, shape, actual, outShape);
      assertClose(actual, expected, forSum(x.length / expected.length), `[${outShape.join(', ')}]`);
    });
  }

  it('reduceSum of a bias gradient [N, F] → [1, F]', () => {
    const x = randomFloats(64 * 10, 69);
    const expected = new Float32Array(10);
    const actual = new Float32Array(10);
    referenceBackend.reduceSum(x, [64, 10], expected, [1, 10]);
    wasmBackend.reduceSum(x, [64, 10], actual, [1, 10]);
    assertClose(actual, expected, forSum(64), 'bias');
  });
});

describe('wasm backend: memory and dtypes', () => {
  it('delegates Float64Array calls to the reference kernels', () => {
    const a = Float64Array.from(randomFloats(12, 41));
    const b = Float64Array.from(randomFloats(20, 42));
    const expected = new Float64Array(15);
    const actual = new Float64Array(15);
    referenceBackend.matmul(a, b, expected, 3, 5, 4, false, false, false);
    wasmBackend.matmul(a, b, actual, 3, 5, 4, false, false, false);
    assert.deepEqual(actual, expected);
  });

  it('reuses its memory across calls instead of growing', () => {
    const g = convGeometry(2, 8, 12, 12, 8, [3, 3], [1, 1], [1, 1], [1, 1]);
    const x = randomFloats(g.batch * g.inChannels * g.inHeight * g.inWidth, 51);
    const weight = randomFloats(g.outChannels * g.inChannels * 9, 52);
    const out = new Float32Array(g.batch * g.outChannels * g.outHeight * g.outWidth);
    wasmBackend.conv2dForward(x, weight, out, g);
    const capacity = wasmRuntime().arena.capacityBytes;
    for (let i = 0; i < 20; i++) wasmBackend.conv2dForward(x, weight, out, g);
    assert.equal(wasmRuntime().arena.capacityBytes, capacity);
  });

  it('rejects arrays shorter than their shape', () => {
    assert.throws(
      () =>
        wasmBackend.matmul(
          new Float32Array(3),
          new Float32Array(4),
          new Float32Array(4),
          2,
          2,
          2,
          false,
          false,
          false,
        ),
      RangeError,
    );
  });
});
