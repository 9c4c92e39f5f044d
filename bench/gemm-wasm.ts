/**
 * Micro-benchmark of the WebAssembly backend: GEMM throughput, the seed CNN's convolution layers at
 * batch 64 (1×28×28 → 32 → 32, pool, → 64 → 64 at 14×14, all 3×3 pad 1), pooling and batch norm.
 *
 * Run after `npm run build`: node dist/bench/gemm-wasm.js [--threads 1,2] [--reference]
 * --threads lists the thread counts to time (default: the backend's default, getWasmThreads()).
 * Times include copying operands in and out of wasm memory, as the backend does on every call.
 * TENSILE_WASM_RELAXED_SIMD=0 times the plain-SIMD build instead of the relaxed-SIMD one.
 * --reference also times the reference backend's convolutions (slow: about a minute).
 */
import { performance } from 'node:perf_hooks';

import { referenceBackend } from '../src/backend/reference/index.js';
import type { Backend, BatchNormGeometry, Conv2dGeometry, Pool2dGeometry } from '../src/backend/types.js';
import { getWasmThreads, setWasmThreads, wasmBackend, wasmKernelBuild } from '../src/backend/wasm/index.js';

function randomFloats(count: number): Float32Array {
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) values[i] = Math.random() * 2 - 1;
  return values;
}

/**
 * Fastest of repeated runs, in milliseconds, after warm-up calls that let V8 tier the kernels up to
 * TurboFan. The minimum rather than the median because the bench machines are shared: other
 * processes only ever add time.
 */
function time(run: () => void, minimumMilliseconds = 1000, warmups = 3): number {
  for (let i = 0; i < warmups; i++) run();
  let best = Infinity;
  let samples = 0;
  const deadline = performance.now() + minimumMilliseconds;
  while (samples < 5 || performance.now() < deadline) {
    const start = performance.now();
    run();
    best = Math.min(best, performance.now() - start);
    samples++;
  }
  return best;
}

function benchGemm(size: number): void {
  const a = randomFloats(size * size);
  const b = randomFloats(size * size);
  const out = new Float32Array(size * size);
  for (const [transposeA, transposeB] of [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ] as const) {
    const ms = time(() => wasmBackend.matmul(a, b, out, size, size, size, transposeA, transposeB, false));
    const gflops = (2 * size ** 3) / (ms * 1e6);
    const label = `${transposeA ? 'T' : 'N'}${transposeB ? 'T' : 'N'}`;
    console.log(`gemm ${size}³ ${label}: ${ms.toFixed(2)} ms, ${gflops.toFixed(1)} GFLOP/s`);
  }
}

function layer(batch: number, inChannels: number, size: number, outChannels: number): Conv2dGeometry {
  return {
    batch,
    inChannels,
    inHeight: size,
    inWidth: size,
    outChannels,
    kernelHeight: 3,
    kernelWidth: 3,
    strideHeight: 1,
    strideWidth: 1,
    padTop: 1,
    padLeft: 1,
    dilationHeight: 1,
    dilationWidth: 1,
    outHeight: size,
    outWidth: size,
  };
}

function benchConv(backend: Backend, name: string, g: Conv2dGeometry, minimumMilliseconds: number): number {
  const x = randomFloats(g.batch * g.inChannels * g.inHeight * g.inWidth);
  const weight = randomFloats(g.outChannels * g.inChannels * g.kernelHeight * g.kernelWidth);
  const out = new Float32Array(g.batch * g.outChannels * g.outHeight * g.outWidth);
  const gradOut = randomFloats(out.length);
  const gradX = new Float32Array(x.length);
  const gradWeight = new Float32Array(weight.length);
  const warmups = backend === wasmBackend ? 3 : 0;
  const forward = time(() => backend.conv2dForward(x, weight, out, g), minimumMilliseconds, warmups);
  const input = time(
    () => backend.conv2dBackwardInput(gradOut, weight, gradX, g),
    minimumMilliseconds,
    warmups,
  );
  const weights = time(
    () => backend.conv2dBackwardWeight(x, gradOut, gradWeight, g),
    minimumMilliseconds,
    warmups,
  );
  const macs =
    g.batch * g.outChannels * g.outHeight * g.outWidth * g.inChannels * g.kernelHeight * g.kernelWidth;
  const rate = (ms: number) => ((2 * macs) / (ms * 1e6)).toFixed(1);
  console.log(
    `${backend.name} ${name}: forward ${forward.toFixed(1)} ms (${rate(forward)} GFLOP/s), ` +
      `backward input ${input.toFixed(1)} ms (${rate(input)}), backward weight ${weights.toFixed(1)} ms (${rate(weights)})`,
  );
  return forward + input + weights;
}

/** Pooling and batch norm at the seed CNN's first block: [64, 32, 28, 28]. */
function benchElementwise(backend: Backend, minimumMilliseconds: number): void {
  const pool: Pool2dGeometry = {
    batch: 64,
    channels: 32,
    inHeight: 28,
    inWidth: 28,
    kernelHeight: 2,
    kernelWidth: 2,
    strideHeight: 2,
    strideWidth: 2,
    padTop: 0,
    padLeft: 0,
    outHeight: 14,
    outWidth: 14,
  };
  const norm: BatchNormGeometry = { batch: 64, channels: 32, spatial: 28 * 28 };
  const x = randomFloats(64 * 32 * 28 * 28);
  const gradX = new Float32Array(x.length);
  const pooled = new Float32Array(64 * 32 * 14 * 14);
  const gradPooled = randomFloats(pooled.length);
  const argmax = new Int32Array(pooled.length);
  const y = new Float32Array(x.length);
  const gradY = randomFloats(x.length);
  const perChannel = () => new Float32Array(32);
  const [gamma, beta, mean, invStd, gradGamma, gradBeta] = [1, 2, 3, 4, 5, 6].map(perChannel) as [
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
  ];
  gamma.fill(1);
  const warmups = backend === wasmBackend ? 3 : 1;
  const timings: [string, () => void][] = [
    ['max pool 2×2 forward', () => backend.maxPool2dForward(x, pooled, argmax, pool)],
    ['max pool backward', () => backend.maxPool2dBackward(gradPooled, argmax, gradX, pool)],
    ['avg pool 2×2 forward', () => backend.avgPool2dForward(x, pooled, pool, true)],
    ['avg pool backward', () => backend.avgPool2dBackward(gradPooled, gradX, pool, true)],
    ['batch norm forward', () => backend.batchNormTrainForward(x, gamma, beta, y, mean, invStd, 1e-5, norm)],
    [
      'batch norm backward',
      () => backend.batchNormTrainBackward(x, gradY, gamma, mean, invStd, gradX, gradGamma, gradBeta, norm),
    ],
    ['channel affine', () => backend.channelAffine(x, gamma, beta, y, norm)],
  ];
  const line = timings.map(
    ([name, run]) => `${name} ${time(run, minimumMilliseconds, warmups).toFixed(1)} ms`,
  );
  console.log(`${backend.name} [64, 32, 28, 28]: ${line.join(', ')}`);
}

const seedLayers: [string, Conv2dGeometry][] = [
  ['conv1 1→32 28×28', layer(64, 1, 28, 32)],
  ['conv2 32→32 28×28', layer(64, 32, 28, 32)],
  ['conv3 32→64 14×14', layer(64, 32, 14, 64)],
  ['conv4 64→64 14×14', layer(64, 64, 14, 64)],
];

const threadsOption = process.argv.indexOf('--threads');
const threadCounts =
  threadsOption >= 0 ? process.argv[threadsOption + 1]!.split(',').map(Number) : [getWasmThreads()];
for (const threads of threadCounts) {
  setWasmThreads(threads);
  console.log(`-- ${threads} thread${threads === 1 ? '' : 's'}, ${wasmKernelBuild()} kernels`);
  benchGemm(512);
  benchGemm(1024);
  let total = 0;
  for (const [name, g] of seedLayers) total += benchConv(wasmBackend, name, g, 1000);
  console.log(`wasm seed CNN convolutions, forward + backward, batch 64: ${total.toFixed(1)} ms`);
  benchElementwise(wasmBackend, 500);
}
if (process.argv.includes('--reference')) {
  benchElementwise(referenceBackend, 0);
  for (const [name, g] of seedLayers) benchConv(referenceBackend, name, g, 0);
}
