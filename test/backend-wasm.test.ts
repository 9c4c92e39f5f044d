/**
 * What is specific to the WebAssembly backend: its GEMM blocking on products too large for the
 * conformance suite, both kernel builds instantiated side by side, the Winograd convolutions (with
 * their thresholds lowered), the exactness of its ReLU and broadcast kernels, in-place operands, and
 * its memory. Every kernel against the reference, on both builds and 1 and 2 threads, is in
 * test/conformance/.
 *
 * Needs build/wasm/kernels.wasm and kernels-relaxed.wasm (`npm run build:wasm`).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { referenceBackend } from '../src/backend/reference/index.js';
import type { BatchNormGeometry, Conv2dGeometry } from '../src/backend/types.js';
import { wasmBackend, wasmKernelBuild } from '../src/backend/wasm/index.js';
import {
  instantiateKernels,
  wasmRuntime,
  type WasmMemory,
  type WasmModule,
} from '../src/backend/wasm/runtime.js';
import {
  usesWinograd,
  usesWinogradWeightGradient,
  winogradTile,
  winogradTuning,
} from '../src/backend/wasm/winograd.js';
import { convGeometry as conv, poolGeometry, randomArray } from './conformance/shapes.js';
import { assertClose, type Tolerance } from './conformance/tolerance.js';

const FLOAT32: Tolerance = { kind: 'close', absolute: 1e-5, relative: 1e-4 };

/** The part of the WebAssembly API the build test uses (tsconfig's lib has no DOM declarations). */
interface WasmEngine {
  Memory: new (descriptor: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
  Module: new (bytes: Uint8Array) => WasmModule;
}

/** Sums of `terms` float32 products round at about sqrt(terms) times the single-product error. */
function forSum(terms: number): Tolerance {
  return { kind: 'close', absolute: 1e-5 * Math.sqrt(Math.max(terms, 1)), relative: 1e-4 };
}

/** Deterministic uniform [-1, 1) floats plus offset (mulberry32), so a failure reproduces. */
function randomFloats(count: number, seed: number, offset = 0): Float32Array {
  return randomArray('float32', count, seed, offset) as Float32Array;
}

/** A convolution's geometry from positional sizes. */
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
  return conv({ batch, inChannels, inHeight, inWidth, outChannels, kernel, stride, pad, dilation });
}

describe('wasm backend: matmul', () => {
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
    [
      '16→16, 4×4, 9 images (images share a product)',
      convGeometry(9, 16, 4, 4, 16, [3, 3], [1, 1], [1, 1], [1, 1]),
    ],
  ];
  it('small images that share a product give the same bits as one image a product', () => {
    // assembly/winograd.ts imagesPerProduct gathers the tiles of several small images as the columns
    // of one product; every column is summed alone, so the grouping must not change a bit.
    const productColumns = winogradTuning.productColumns;
    const shapes: [batch: number, inChannels: number, height: number, width: number, outChannels: number][] =
      [
        [9, 16, 4, 4, 16], // 4 tiles an image, dense numbering
        [5, 12, 8, 8, 13], // 16 tiles, a short last strip of U
        [7, 9, 6, 6, 8], // 3×3 tiles: rows rounded up to whole groups
        [3, 8, 7, 5, 10], // odd sizes, cut tiles
        [5, 10, 1, 1, 9], // one tile
        [4, 8, 2, 9, 11], // one tile row, leftover tiles
        [3, 14, 14, 14, 12], // 56 columns an image
        [3, 260, 4, 4, 9], // depth past one 256-deep block
        [3, 9, 4, 4, 260], // input gradient depth past one block
      ];
    try {
      for (const [batch, inChannels, height, width, outChannels] of shapes) {
        const g = convGeometry(batch, inChannels, height, width, outChannels, [3, 3], [1, 1], [1, 1], [1, 1]);
        const x = randomFloats(batch * inChannels * height * width, 41);
        const weight = randomFloats(outChannels * inChannels * 9, 42);
        const gradOut = randomFloats(batch * outChannels * height * width, 43);
        const results = [1, 16, 64, 256].map((columns) => {
          winogradTuning.productColumns = columns;
          const out = new Float32Array(gradOut.length).fill(Number.NaN);
          const gradX = new Float32Array(x.length).fill(Number.NaN);
          wasmBackend.conv2dForward(x, weight, out, g);
          wasmBackend.conv2dBackwardInput(gradOut, weight, gradX, g);
          return { out, gradX };
        });
        const name = `${batch}×${inChannels}→${outChannels}, ${height}×${width}`;
        for (const result of results.slice(1)) {
          assert.deepEqual(result.out, results[0]!.out, `${name}: forward`);
          assert.deepEqual(result.gradX, results[0]!.gradX, `${name}: input gradient`);
        }
      }
    } finally {
      winogradTuning.productColumns = productColumns;
    }
  });

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

describe('wasm backend: Winograd F(4×4, 3×3) convolutions', () => {
  // The channel threshold lowered, as above, so that few channels take the Winograd path too.
  const minChannels = winogradTuning.minChannels;
  before(() => {
    winogradTuning.minChannels = 1;
  });
  after(() => {
    winogradTuning.minChannels = minChannels;
  });
  /** A 3×3, stride-1, pad-1 geometry. */
  const winograd = (batch: number, inChannels: number, height: number, width: number, outChannels: number) =>
    convGeometry(batch, inChannels, height, width, outChannels, [3, 3], [1, 1], [1, 1], [1, 1]);

  /**
   * The two directions that take F(4×4, 3×3): the forward (sums over the input channels, from x to
   * out) and the input gradient (over the output channels, from gradOut to gradX).
   */
  const directions = (g: Conv2dGeometry, weight: Float32Array) => {
    const xCount = g.batch * g.inChannels * g.inHeight * g.inWidth;
    const outCount = g.batch * g.outChannels * g.outHeight * g.outWidth;
    type Run = (backend: typeof wasmBackend, input: Float32Array, out: Float32Array) => void;
    const forward: Run = (backend, input, out) => backend.conv2dForward(input, weight, out, g);
    const inputGradient: Run = (backend, input, out) => backend.conv2dBackwardInput(input, weight, out, g);
    return [
      { label: 'forward', depth: g.inChannels, inputCount: xCount, count: outCount, run: forward },
      {
        label: 'input gradient',
        depth: g.outChannels,
        inputCount: outCount,
        count: xCount,
        run: inputGradient,
      },
    ];
  };

  it('takes tiles of 4 for sums over at most 32 channels where they save a quarter of the products', () => {
    assert.equal(winogradTile(32, 28, 28), 4);
    assert.equal(winogradTile(1, 7, 7), 4);
    assert.equal(winogradTile(32, 7, 13), 4);
    assert.equal(winogradTile(33, 28, 28), 2); // deeper sums: F(4×4)'s rounding error grows with them
    assert.equal(winogradTile(64, 14, 14), 2);
    assert.equal(winogradTile(32, 6, 28), 2); // under 7 a side
    assert.equal(winogradTile(32, 9, 9), 2); // 3 · 9 tiles of 4 > 25 tiles of 2
    assert.equal(winogradTile(32, 10, 10), 2);
    assert.equal(winogradTile(32, 11, 11), 4);
  });

  // Forward on tiles of 4 where the input has at most 32 channels, the input gradient where the
  // output has; the other direction of the same layer stays on tiles of 2.
  const cases: [string, Conv2dGeometry][] = [
    ['32→32, 28×28, 2 images (seed layer 2)', winograd(2, 32, 28, 28, 32)],
    ['32→64, 14×14, 3 images (seed layer 3: images share a product)', winograd(3, 32, 14, 14, 64)],
    ['5→7, 7×7 (one group of tiles, cut tiles)', winograd(2, 5, 7, 7, 7)],
    ['24→40, 17×23 (the last group of a row part past the edge)', winograd(2, 24, 17, 23, 40)],
    ['40→32, 16×18 (input gradient on tiles of 4)', winograd(2, 40, 16, 18, 32)],
    ['32→3, 37×11 (a short last strip of U)', winograd(1, 32, 37, 11, 3)],
  ];
  for (const [name, g] of cases) {
    const weight = randomFloats(g.outChannels * g.inChannels * 9, 52);
    for (const [index, { label, depth, inputCount, count, run }] of directions(g, weight).entries()) {
      const input = randomFloats(inputCount, 51 + 2 * index);
      // Forward and input gradient alike: the output is as large as the input.
      const tile = winogradTile(depth, g.inHeight, g.inWidth);
      const terms = depth * 9;
      it(`${label} on tiles of ${tile}, ${name}: the reference's values; tiles of 2 differ in their last bits`, () => {
        const expected = new Float32Array(count);
        run(referenceBackend, input, expected);
        const large = new Float32Array(count).fill(Number.NaN);
        run(wasmBackend, input, large);
        assertClose(large, expected, forSum(terms), `${name}, ${label}`);
        winogradTuning.largeTiles = false;
        try {
          const small = new Float32Array(count).fill(Number.NaN);
          run(wasmBackend, input, small);
          assertClose(small, expected, forSum(terms), `${name}, ${label}, tiles of 2`);
          // Both transforms leave rounding errors, so the two differ where tiles of 4 were taken.
          assert.equal(
            large.some((value, i) => value !== small[i]),
            tile === 4,
          );
        } finally {
          winogradTuning.largeTiles = true;
        }
      });
    }
  }

  it('keeps NaNs and infinities where the direct sum puts them (tiles of 2 again)', () => {
    // A NaN reaches every output of its F(4×4) tile (the transforms mix the patch's 36 values), so a
    // call whose outputs are not all finite runs again on tiles of 2.
    const g = winograd(2, 32, 15, 15, 32);
    const count = g.batch * g.inChannels * g.inHeight * g.inWidth;
    const weight = randomFloats(g.outChannels * g.inChannels * 9, 55);
    for (const [label, bad] of [
      ['NaN', Number.NaN],
      ['infinity', Number.POSITIVE_INFINITY],
    ] as const) {
      const input = randomFloats(count, 56);
      input[7 * 15 + 7] = bad; // image 0, channel 0, the middle
      input[count - 1] = bad; // image 1, the last channel's corner
      for (const direction of directions(g, weight)) {
        const expected = new Float32Array(count);
        const actual = new Float32Array(count).fill(Number.NaN);
        direction.run(referenceBackend, input, expected);
        direction.run(wasmBackend, input, actual);
        const finite = (values: Float32Array) => Array.from(values, (value) => Number.isFinite(value));
        assert.deepEqual(finite(actual), finite(expected), `${label}, ${direction.label}`);
        assert.ok(
          finite(expected).includes(false),
          `${label}, ${direction.label}: some outputs are not finite`,
        );
      }
    }
  });
});

describe('wasm backend: pooling', () => {
  it('max pooling takes the first of tied maxima and lets NaN win', () => {
    const g = poolGeometry({
      batch: 1,
      channels: 1,
      inHeight: 2,
      inWidth: 4,
      kernel: [2, 2],
      stride: [2, 2],
    });
    const x = Float32Array.from([5, 5, 1, Number.NaN, 5, 5, 2, 3]);
    const out = new Float32Array(2);
    const argmax = new Int32Array(2);
    wasmBackend.maxPool2dForward(x, out, argmax, g);
    assert.deepEqual(Array.from(argmax), [0, 3]);
    assert.equal(out[0], 5);
    assert.ok(Number.isNaN(out[1]!));
  });

  it('max pooling over an all -infinity window points at its first element', () => {
    const g = poolGeometry({
      batch: 1,
      channels: 1,
      inHeight: 3,
      inWidth: 3,
      kernel: [2, 2],
      stride: [2, 2],
      pad: [1, 1],
    });
    const x = new Float32Array(9).fill(-Infinity);
    const out = new Float32Array(4);
    const argmax = new Int32Array(4);
    wasmBackend.maxPool2dForward(x, out, argmax, g);
    assert.deepEqual(Array.from(argmax), [0, 1, 3, 4]);
  });

  it('2×2 stride-2 max pooling (its own path) gives the reference values and indices', () => {
    // Rows of 2 to 28 columns: whole groups of four windows, an overlapping last group, windows no
    // group reads, an odd last column and row; values with ties, NaN and -infinity.
    const sizes: [number, number][] = [
      [28, 28],
      [14, 14],
      [7, 9],
      [8, 8],
      [5, 17],
      [2, 2],
      [16, 10],
      [9, 23],
    ];
    for (const [inHeight, inWidth] of sizes) {
      const g = poolGeometry({ batch: 2, channels: 3, inHeight, inWidth, kernel: [2, 2], stride: [2, 2] });
      const x = randomArray('float32', 6 * inHeight * inWidth, 71).map((v, i) =>
        i % 17 === 0 ? Number.NaN : i % 13 === 0 ? -Infinity : Math.round(v * 4) / 4,
      ) as Float32Array;
      const outCount = 6 * g.outHeight * g.outWidth;
      const expected = new Float32Array(outCount);
      const expectedArgmax = new Int32Array(outCount);
      referenceBackend.maxPool2dForward(x, expected, expectedArgmax, g);
      const out = new Float32Array(outCount);
      const argmax = new Int32Array(outCount);
      wasmBackend.maxPool2dForward(x, out, argmax, g);
      assert.deepEqual(out, expected, `${inHeight}×${inWidth}: values`);
      assert.deepEqual(argmax, expectedArgmax, `${inHeight}×${inWidth}: indices`);
    }
  });
});

describe('wasm backend: batch norm + ReLU + 2×2 max pooling with indices max pooling does not give', () => {
  // The fused backward builds each plane's gradient four windows at a time from argmax inside each
  // window; any other index (a caller's own, repeated ones, -1) takes the plane through the path that
  // spreads the pooled gradient as maxPool2dBackward does. Both must give the composition's bits.
  it('gives the bits of maxPool2dBackward then the fused batch norm + ReLU backward', () => {
    const g = poolGeometry({
      batch: 2,
      channels: 3,
      inHeight: 9,
      inWidth: 19,
      kernel: [2, 2],
      stride: [2, 2],
    });
    const count = g.batch * g.channels * g.inHeight * g.inWidth;
    const planeIn = g.inHeight * g.inWidth;
    const planeOut = g.outHeight * g.outWidth;
    const x = randomFloats(count, 81, 0.2);
    const gamma = randomFloats(g.channels, 82, 1);
    const beta = randomFloats(g.channels, 83);
    const y = new Float32Array(count);
    const argmax = new Int32Array(g.batch * g.channels * planeOut);
    const mean = new Float32Array(g.channels);
    const invStd = new Float32Array(g.channels);
    wasmBackend.batchNormReluMaxPoolTrainForward(
      x,
      gamma,
      beta,
      y,
      new Float32Array(argmax.length),
      argmax,
      mean,
      invStd,
      1e-5,
      g,
    );
    // Plane 1: one index moved out of its window onto another window's element; plane 3: an index
    // past the plane (ignored) and a repeated one; plane 4: every index 0. Other planes keep theirs.
    argmax[planeOut + 5] = argmax[planeOut + 6]!;
    argmax[3 * planeOut] = planeIn;
    argmax[3 * planeOut + 2] = argmax[3 * planeOut + 1]!;
    argmax.fill(0, 4 * planeOut, 5 * planeOut);
    const gradOut = randomFloats(argmax.length, 84);
    gradOut[7] = -0;
    const run = (fused: boolean) => {
      const backward = fused
        ? wasmBackend.batchNormReluMaxPoolTrainBackward
        : referenceBackend.batchNormReluMaxPoolTrainBackward;
      const gradX = new Float32Array(count).fill(Number.NaN);
      const gradGamma = new Float32Array(g.channels);
      const gradBeta = new Float32Array(g.channels);
      backward.call(
        wasmBackend,
        x,
        y,
        gradOut,
        argmax,
        gamma,
        beta,
        mean,
        invStd,
        gradX,
        gradGamma,
        gradBeta,
        g,
      );
      return [gradX, gradGamma, gradBeta];
    };
    const [fused, composed] = [run(true), run(false)];
    for (let i = 0; i < fused.length; i++) assert.deepEqual(fused[i], composed[i], `output ${i}`);
  });
});

describe('wasm backend: batch norm and channel affine far from zero', () => {
  // The float32 passes subtract the mean as head + tail: one float32 mean of 10⁴ is off by 10⁻³. (The
  // native addon's batch norm is not that exact; the conformance suite's cases, which it meets, stay
  // within means of 100.)
  const cases: [string, BatchNormGeometry, number][] = [
    ['mean 10⁴, deviations of 1', { batch: 4, channels: 3, spatial: 37 }, 10_000],
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

describe('wasm backend: exact activations and in-place broadcast arithmetic', () => {
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

  it('binary works in place (out is one of the operands)', () => {
    const a = randomFloats(60, 67);
    const expected = new Float32Array(60);
    referenceBackend.binary('mul', a, [6, 10], a, [6, 10], expected, [6, 10]);
    wasmBackend.binary('mul', a, [6, 10], a, [6, 10], a, [6, 10]);
    assert.deepEqual(a, expected);
  });
});

describe('wasm backend: memory', () => {
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
