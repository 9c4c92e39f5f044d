/**
 * The WebAssembly backend on several threads gives the same bits as on one.
 *
 * Every kernel is run on odd-sized problems once on one thread, then on 2 and 3 threads with the
 * thresholds lowered so that even these small problems split into many uneven chunks: first with the
 * workers alone running the chunks (so worker threads are certainly exercised), then with the calling
 * thread taking part. Each output element is computed by one thread in one order whatever the split,
 * so the results must be identical, not merely close. Also checked: the pool's life cycle (lazy
 * start, no pile-up over repeated calls, resizing, TENSILE_THREADS, not holding the process open).
 *
 * Needs build/wasm/kernels.wasm and kernels-relaxed.wasm (`npm run build:wasm`).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import type { BatchNormGeometry, BinaryKind, Conv2dGeometry, Pool2dGeometry } from '../src/backend/types.js';
import { getWasmThreads, setWasmThreads, wasmBackend, wasmTuning } from '../src/backend/wasm/index.js';
import { wasmRuntime } from '../src/backend/wasm/runtime.js';
import { startedWorkers, wasmWorkersReady, workerChunksRun } from '../src/backend/wasm/threads.js';
import { usesWinograd, usesWinogradWeightGradient } from '../src/backend/wasm/winograd.js';
import { randomArray } from './conformance/shapes.js';

/** Deterministic uniform [-1, 1) floats (the conformance suite's mulberry32), so a failure reproduces. */
function randomFloats(count: number, seed: number): Float32Array {
  return randomArray('float32', count, seed) as Float32Array;
}

type Outputs = (Float32Array | Int32Array)[];

const defaults = { ...wasmTuning };
const threadsBefore = getWasmThreads();

/** Lowered thresholds: every job splits, into an odd number of chunks per thread. */
function splitEverything(callerRunsChunks: boolean): void {
  Object.assign(wasmTuning, {
    chunksPerThread: 5,
    parallelMultiplyAdds: 0,
    parallelElements: 0,
    callerRunsChunks,
  });
}

/**
 * Runs `compute` on one thread and then on 2 and 3 threads (workers alone, then workers and caller),
 * asserting identical outputs; `compute` allocates and returns its outputs. `splits` says whether the
 * problem is big enough to split at all, in which case the workers must have run some chunks.
 */
async function assertSameOnThreads(name: string, compute: () => Outputs, splits = true): Promise<void> {
  Object.assign(wasmTuning, defaults);
  setWasmThreads(1);
  const expected = compute();
  for (const threads of [2, 3]) {
    setWasmThreads(threads);
    await wasmWorkersReady();
    for (const callerRunsChunks of [false, true]) {
      splitEverything(callerRunsChunks);
      const chunksBefore = workerChunksRun();
      const actual = compute();
      const label = `${name} on ${threads} threads${callerRunsChunks ? '' : ', workers only'}`;
      assert.deepEqual(actual, expected, label);
      if (splits && !callerRunsChunks)
        assert.ok(workerChunksRun() > chunksBefore, `${label}: no worker ran a chunk`);
    }
  }
  Object.assign(wasmTuning, defaults);
}

function convGeometry(
  batch: number,
  inChannels: number,
  inHeight: number,
  inWidth: number,
  outChannels: number,
  kernel: number,
  stride: number,
  pad: number,
  dilation = 1,
): Conv2dGeometry {
  const outSize = (size: number) => Math.floor((size + 2 * pad - dilation * (kernel - 1) - 1) / stride) + 1;
  return {
    batch,
    inChannels,
    inHeight,
    inWidth,
    outChannels,
    kernelHeight: kernel,
    kernelWidth: kernel,
    strideHeight: stride,
    strideWidth: stride,
    padTop: pad,
    padLeft: pad,
    dilationHeight: dilation,
    dilationWidth: dilation,
    outHeight: outSize(inHeight),
    outWidth: outSize(inWidth),
  };
}

function poolGeometry(
  batch: number,
  channels: number,
  inHeight: number,
  inWidth: number,
  kernel: number,
  stride: number,
  pad: number,
): Pool2dGeometry {
  const outSize = (size: number) => Math.floor((size + 2 * pad - kernel) / stride) + 1;
  return {
    batch,
    channels,
    inHeight,
    inWidth,
    kernelHeight: kernel,
    kernelWidth: kernel,
    strideHeight: stride,
    strideWidth: stride,
    padTop: pad,
    padLeft: pad,
    outHeight: outSize(inHeight),
    outWidth: outSize(inWidth),
  };
}

describe('wasm backend: the same bits on 1, 2 and 3 threads', () => {
  after(() => {
    Object.assign(wasmTuning, defaults);
    setWasmThreads(threadsBefore);
  });

  const products: [m: number, n: number, k: number][] = [
    [1, 1, 1],
    [7, 13, 5],
    [33, 17, 300], // depth past one 256-deep block
    [131, 45, 9], // rows past one 128-row block
    [5, 4103, 3], // columns past one 4096-column panel
    [32, 21, 40], // 6+6+6+6+4+4 strips with the relaxed build's 6-row tile (two short strips)
    [64, 9, 17], // ten 6-row strips and one short one
    [8, 11, 6], // two short strips only
  ];
  for (const [m, n, k] of products) {
    it(`matmul M=${m} N=${n} K=${k}, every transpose, accumulating or not`, async () => {
      const a = randomFloats(m * k, 1);
      const b = randomFloats(k * n, 2);
      const start = randomFloats(m * n, 3);
      await assertSameOnThreads(
        `matmul ${m}×${n}×${k}`,
        () => {
          const outputs: Float32Array[] = [];
          for (const transposeA of [false, true]) {
            for (const transposeB of [false, true]) {
              for (const accumulate of [false, true]) {
                const out = Float32Array.from(start);
                wasmBackend.matmul(a, b, out, m, n, k, transposeA, transposeB, accumulate);
                outputs.push(out);
              }
            }
          }
          return outputs;
        },
        m * n > 1,
      );
    });
  }

  const convolutions: [string, Conv2dGeometry][] = [
    ['3×3 pad 1, 3 images', convGeometry(3, 5, 9, 7, 6, 3, 1, 1)],
    ['3×3 pad 1, 1 image (channel blocks)', convGeometry(1, 7, 8, 9, 9, 3, 1, 1)],
    ['3×3 stride 2, dilation 2', convGeometry(2, 3, 11, 10, 5, 3, 2, 2, 2)],
    ['5×5 pad 2, one input channel', convGeometry(3, 1, 12, 11, 13, 5, 1, 2)],
    ['1×1 (no im2col)', convGeometry(2, 7, 5, 6, 11, 1, 1, 0)],
    ['3×3 pad 1, 32 output channels (short strips)', convGeometry(2, 3, 6, 5, 32, 3, 1, 1)],
    ['Winograd 3×3 pad 1, 3 images, odd sizes', convGeometry(3, 12, 9, 11, 13, 3, 1, 1)],
    ['Winograd 3×3 pad 1, 1 image (channel blocks)', convGeometry(1, 13, 6, 7, 20, 3, 1, 1)],
    [
      'Winograd 3×3 pad 1, 11 images (weight-gradient image blocks, depth chunks across images)',
      convGeometry(11, 9, 14, 14, 14, 3, 1, 1),
    ],
    ['Winograd 3×3 pad 1, 4×4, 13 images (images share products)', convGeometry(13, 10, 4, 4, 9, 3, 1, 1)],
  ];
  for (const [name, g] of convolutions) {
    it(`conv2d forward and backward, ${name}`, async () => {
      if (name.startsWith('Winograd')) {
        assert.ok(usesWinograd(g), `${name}: takes the Winograd path`);
        assert.ok(usesWinogradWeightGradient(g), `${name}: the weight gradient takes the Winograd path`);
      }
      const x = randomFloats(g.batch * g.inChannels * g.inHeight * g.inWidth, 11);
      const weight = randomFloats(g.outChannels * g.inChannels * g.kernelHeight * g.kernelWidth, 12);
      const gradOut = randomFloats(g.batch * g.outChannels * g.outHeight * g.outWidth, 13);
      await assertSameOnThreads(name, () => {
        const out = new Float32Array(gradOut.length);
        const gradX = new Float32Array(x.length).fill(Number.NaN);
        const gradWeight = new Float32Array(weight.length).fill(Number.NaN);
        wasmBackend.conv2dForward(x, weight, out, g);
        wasmBackend.conv2dBackwardInput(gradOut, weight, gradX, g);
        wasmBackend.conv2dBackwardWeight(x, gradOut, gradWeight, g);
        return [out, gradX, gradWeight];
      });
    });
  }

  const pools: [string, Pool2dGeometry][] = [
    ['2×2 stride 2, odd input', poolGeometry(3, 5, 7, 9, 2, 2, 0)],
    ['3×3 stride 2 pad 1', poolGeometry(2, 7, 9, 11, 3, 2, 1)],
  ];
  for (const [name, g] of pools) {
    it(`max and average pooling, ${name}`, async () => {
      const x = randomFloats(g.batch * g.channels * g.inHeight * g.inWidth, 21);
      const gradOut = randomFloats(g.batch * g.channels * g.outHeight * g.outWidth, 22);
      await assertSameOnThreads(name, () => {
        const out = new Float32Array(gradOut.length);
        const argmax = new Int32Array(gradOut.length);
        const gradX = new Float32Array(x.length).fill(Number.NaN);
        const average = new Float32Array(gradOut.length);
        const gradAverage = new Float32Array(x.length).fill(Number.NaN);
        wasmBackend.maxPool2dForward(x, out, argmax, g);
        wasmBackend.maxPool2dBackward(gradOut, argmax, gradX, g);
        wasmBackend.avgPool2dForward(x, average, g, true);
        wasmBackend.avgPool2dBackward(gradOut, gradAverage, g, false);
        return [out, argmax, gradX, average, gradAverage];
      });
    });
  }

  const perChannel: [string, BatchNormGeometry][] = [
    ['4-D, odd spatial', { batch: 3, channels: 7, spatial: 35 }],
    ['2-D', { batch: 13, channels: 11, spatial: 1 }],
  ];
  for (const [name, g] of perChannel) {
    it(`batch norm (plain and fused with ReLU), channel affine and channel sums, ${name}`, async () => {
      const count = g.batch * g.channels * g.spatial;
      const x = randomFloats(count, 31);
      const gradOut = randomFloats(count, 32);
      const gamma = randomFloats(g.channels, 33);
      const beta = randomFloats(g.channels, 34);
      await assertSameOnThreads(name, () => {
        const out = new Float32Array(count);
        const mean = new Float32Array(g.channels);
        const invStd = new Float32Array(g.channels);
        const gradX = new Float32Array(count);
        const gradGamma = new Float32Array(g.channels);
        const gradBeta = new Float32Array(g.channels);
        const affine = new Float32Array(count);
        const sums = new Float32Array(g.channels);
        wasmBackend.batchNormTrainForward(x, gamma, beta, out, mean, invStd, 1e-5, g);
        wasmBackend.batchNormTrainBackward(x, gradOut, gamma, mean, invStd, gradX, gradGamma, gradBeta, g);
        wasmBackend.channelAffine(x, gamma, beta, affine, g);
        wasmBackend.channelSum(x, sums, g);
        const fused = new Float32Array(count);
        const fusedGradX = new Float32Array(count);
        const fusedGradGamma = new Float32Array(g.channels);
        const fusedGradBeta = new Float32Array(g.channels);
        const affineRelu = new Float32Array(count);
        wasmBackend.batchNormReluTrainForward(x, gamma, beta, fused, mean, invStd, 1e-5, g);
        wasmBackend.batchNormReluTrainBackward(
          x,
          fused,
          gradOut,
          gamma,
          beta,
          mean,
          invStd,
          fusedGradX,
          fusedGradGamma,
          fusedGradBeta,
          g,
        );
        wasmBackend.channelAffineRelu(x, gamma, beta, affineRelu, g);
        const outputs = [out, mean, invStd, gradX, gradGamma, gradBeta, affine, sums];
        return [...outputs, fused, fusedGradX, fusedGradGamma, fusedGradBeta, affineRelu];
      });
    });
  }

  const pooledNorms: [string, Pool2dGeometry][] = [
    ['odd rows and columns, rows of four-window groups', poolGeometry(3, 5, 9, 19, 2, 2, 0)],
    ['rows too short for a group of four', poolGeometry(2, 7, 6, 7, 2, 2, 0)],
  ];
  for (const [name, g] of pooledNorms) {
    it(`batch norm + ReLU + 2×2 max pooling, forward and backward, ${name}`, async () => {
      const count = g.batch * g.channels * g.inHeight * g.inWidth;
      const pooled = g.batch * g.channels * g.outHeight * g.outWidth;
      const x = randomFloats(count, 35);
      const gradOut = randomFloats(pooled, 36);
      const gamma = randomFloats(g.channels, 37);
      const beta = randomFloats(g.channels, 38);
      await assertSameOnThreads(name, () => {
        const y = new Float32Array(count);
        const out = new Float32Array(pooled);
        const argmax = new Int32Array(pooled);
        const mean = new Float32Array(g.channels);
        const invStd = new Float32Array(g.channels);
        const gradX = new Float32Array(count).fill(Number.NaN);
        const gradGamma = new Float32Array(g.channels);
        const gradBeta = new Float32Array(g.channels);
        wasmBackend.batchNormReluMaxPoolTrainForward(x, gamma, beta, y, out, argmax, mean, invStd, 1e-5, g);
        wasmBackend.batchNormReluMaxPoolTrainBackward(
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
        return [y, out, argmax, mean, invStd, gradX, gradGamma, gradBeta];
      });
    });
  }

  it('ReLU and leaky ReLU, forward and backward, on an odd length', async () => {
    const x = randomFloats(1001, 41);
    const gradOut = randomFloats(1001, 42);
    await assertSameOnThreads('activations', () => {
      const outputs: Float32Array[] = [];
      for (const kind of ['relu', 'leaky_relu'] as const) {
        const out = new Float32Array(x.length);
        const gradX = new Float32Array(x.length);
        wasmBackend.activationForward(kind, x, out, 0.02);
        wasmBackend.activationBackward(kind, x, out, gradOut, gradX, 0.02);
        outputs.push(out, gradX);
      }
      return outputs;
    });
  });

  it('binary operations (same shape, bias, per channel, scalar) and bias-gradient sums', async () => {
    const full = randomFloats(3 * 5 * 7 * 3, 51);
    const other = randomFloats(full.length, 52);
    const shape = [3, 5, 7, 3];
    const operands: [string, Float32Array, number[]][] = [
      ['same shape', other, shape],
      ['per channel', randomFloats(5, 53), [5, 1, 1]],
      ['last axis', randomFloats(3, 54), [3]],
      ['scalar', randomFloats(1, 55), []],
    ];
    await assertSameOnThreads('binary', () => {
      const outputs: Float32Array[] = [];
      for (const kind of ['add', 'sub', 'mul', 'div', 'maximum', 'minimum'] as BinaryKind[]) {
        for (const [, data, dataShape] of operands) {
          const left = new Float32Array(full.length);
          const right = new Float32Array(full.length);
          wasmBackend.binary(kind, full, shape, data, dataShape, left, shape);
          wasmBackend.binary(kind, data, dataShape, full, shape, right, shape);
          outputs.push(left, right);
        }
      }
      for (const outShape of [
        [1, 5, 1, 1],
        [1, 1, 1, 3],
        [1, 5, 7, 1],
        [1, 1, 1, 1],
      ]) {
        const out = new Float32Array(outShape.reduce((p, d) => p * d, 1));
        wasmBackend.reduceSum(full, shape, out, outShape);
        outputs.push(out);
      }
      return outputs;
    });
  });
});

describe('wasm backend: the worker pool', () => {
  after(() => {
    Object.assign(wasmTuning, defaults);
    setWasmThreads(threadsBefore);
  });

  it('keeps the same workers and memory over repeated calls', async () => {
    setWasmThreads(3);
    await wasmWorkersReady();
    splitEverything(true);
    const g = convGeometry(4, 6, 10, 10, 8, 3, 1, 1);
    const x = randomFloats(g.batch * g.inChannels * g.inHeight * g.inWidth, 61);
    const weight = randomFloats(g.outChannels * g.inChannels * 9, 62);
    const out = new Float32Array(g.batch * g.outChannels * g.outHeight * g.outWidth);
    wasmBackend.conv2dForward(x, weight, out, g);
    const capacity = wasmRuntime().arena.capacityBytes;
    for (let i = 0; i < 200; i++) wasmBackend.conv2dForward(x, weight, out, g);
    assert.equal(startedWorkers(), 2);
    assert.equal(wasmRuntime().arena.capacityBytes, capacity);
    Object.assign(wasmTuning, defaults);
  });

  it('shrinks and grows with setWasmThreads, and rejects bad counts', async () => {
    setWasmThreads(3);
    await wasmWorkersReady();
    assert.equal(startedWorkers(), 2);
    setWasmThreads(2);
    assert.equal(getWasmThreads(), 2);
    assert.equal(startedWorkers(), 1);
    setWasmThreads(1);
    assert.equal(startedWorkers(), 0);
    setWasmThreads(3);
    assert.equal(startedWorkers(), 0, 'workers start lazily');
    await wasmWorkersReady();
    assert.equal(startedWorkers(), 2);
    for (const bad of [0, -1, 1.5, Number.NaN, 257]) assert.throws(() => setWasmThreads(bad), RangeError);
  });

  it('reads TENSILE_THREADS, and its workers do not keep the process alive', () => {
    // A child process runs a threaded job and must then exit by itself, promptly.
    const script = `
      import { getWasmThreads, wasmBackend, wasmTuning } from ${JSON.stringify(new URL('../src/backend/wasm/index.js', import.meta.url).href)};
      import { workerChunksRun, wasmWorkersReady } from ${JSON.stringify(new URL('../src/backend/wasm/threads.js', import.meta.url).href)};
      await wasmWorkersReady();
      Object.assign(wasmTuning, { parallelElements: 0, callerRunsChunks: false });
      const x = new Float32Array(4096).fill(-1);
      wasmBackend.activationForward('relu', x, new Float32Array(4096), 0);
      console.log(getWasmThreads(), workerChunksRun() > 0);
    `;
    const directory = mkdtempSync(join(tmpdir(), 'tensile-wasm-threads-'));
    const path = join(directory, 'exits.mjs');
    writeFileSync(path, script);
    const result = spawnSync(process.execPath, [path], {
      env: { ...process.env, TENSILE_THREADS: '3' },
      encoding: 'utf8',
      timeout: 15000,
    });
    rmSync(directory, { recursive: true, force: true });
    assert.equal(result.error, undefined, 'the child process hung');
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout.trim(), '3 true');
  });
});
