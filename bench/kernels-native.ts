/**
 * Micro-benchmark of the native kernels: GEMM at 512³ and 1024³, and the seed CNN's layers at batch
 * 64 (per-layer forward and backward convolutions, batch norm, ReLU, max pooling), on 1 and 2
 * threads. Prints a table, or one JSON object with --json.
 *
 *   node dist/bench/kernels-native.js [--json] [--threads 1,2] [--repeats 15] [--statistic median|min]
 *     [--only <substring of a workload name>] [--isa avx512|avx2|scalar]
 *
 * Each figure is the median (or the minimum) of `repeats` timed runs after two warm-up runs. Timings
 * on a shared machine are noisy: compare figures from the same run only; the minimum is the more
 * stable measure of a kernel's own speed when other processes compete for the cores.
 */
import {
  getNativeIsa,
  loadNativeBackend,
  nativeUnavailableReason,
  setNativeIsa,
  setNativeThreads,
  type NativeIsa,
} from '../src/backend/native/index.js';
import type { Backend, Conv2dGeometry } from '../src/backend/types.js';

interface Options {
  json: boolean;
  threads: number[];
  repeats: number;
  statistic: 'median' | 'min';
  only: string | null;
  isa: NativeIsa | null;
}

function parseOptions(argv: readonly string[]): Options {
  const options: Options = {
    json: false,
    threads: [1, 2],
    repeats: 15,
    statistic: 'median',
    only: null,
    isa: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const argument = argv[i];
    if (argument === '--json') options.json = true;
    else if (argument === '--threads') options.threads = (argv[++i] ?? '').split(',').map(Number);
    else if (argument === '--repeats') options.repeats = Number(argv[++i]);
    else if (argument === '--only') options.only = argv[++i] ?? null;
    else if (argument === '--statistic') options.statistic = argv[++i] === 'min' ? 'min' : 'median';
    else if (argument === '--isa') {
      const isa = argv[++i];
      if (isa !== 'avx512' && isa !== 'avx2' && isa !== 'scalar')
        throw new Error(`unknown instruction set ${isa}`);
      options.isa = isa;
    } else throw new Error(`unknown argument ${argument}`);
  }
  return options;
}

function randomArray(length: number): Float32Array {
  const values = new Float32Array(length);
  for (let i = 0; i < length; i++) values[i] = Math.random() * 2 - 1;
  return values;
}

/** Median (or minimum) seconds of `repeats` runs after two warm-up runs. */
function timeSeconds(repeats: number, statistic: 'median' | 'min', run: () => void): number {
  run();
  run();
  const times: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const start = process.hrtime.bigint();
    run();
    times.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  times.sort((a, b) => a - b);
  return statistic === 'min' ? times[0]! : times[Math.floor(times.length / 2)]!;
}

interface Workload {
  name: string;
  /** Floating-point operations per run, for GFLOP/s; 0 for memory-bound kernels. */
  flops: number;
  run: () => void;
}

function conv(batch: number, inChannels: number, size: number, outChannels: number): Conv2dGeometry {
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

function workloads(backend: Backend): Workload[] {
  const list: Workload[] = [];
  for (const size of [512, 1024]) {
    const a = randomArray(size * size);
    const b = randomArray(size * size);
    const out = new Float32Array(size * size);
    list.push({
      name: `gemm ${size}³`,
      flops: 2 * size ** 3,
      run: () => backend.matmul(a, b, out, size, size, size, false, false, false),
    });
  }
  const layers: [string, Conv2dGeometry][] = [
    ['conv1 1→32 28²', conv(64, 1, 28, 32)],
    ['conv2 32→32 28²', conv(64, 32, 28, 32)],
    ['conv3 32→64 14²', conv(64, 32, 14, 64)],
    ['conv4 64→64 14²', conv(64, 64, 14, 64)],
  ];
  for (const [name, g] of layers) {
    const x = randomArray(g.batch * g.inChannels * g.inHeight * g.inWidth);
    const weight = randomArray(g.outChannels * g.inChannels * 9);
    const out = randomArray(g.batch * g.outChannels * g.outHeight * g.outWidth);
    const gradX = new Float32Array(x.length);
    const gradWeight = new Float32Array(weight.length);
    const flops = 2 * g.batch * g.outChannels * g.outHeight * g.outWidth * g.inChannels * 9;
    list.push({ name: `${name} forward`, flops, run: () => backend.conv2dForward(x, weight, out, g) });
    list.push({
      name: `${name} grad input`,
      flops,
      run: () => backend.conv2dBackwardInput(out, weight, gradX, g),
    });
    list.push({
      name: `${name} grad weight`,
      flops,
      run: () => backend.conv2dBackwardWeight(x, out, gradWeight, g),
    });
  }
  const bn = { batch: 64, channels: 32, spatial: 28 * 28 };
  const size = bn.batch * bn.channels * bn.spatial;
  const x = randomArray(size);
  const gradOut = randomArray(size);
  const y = new Float32Array(size);
  const gradX = new Float32Array(size);
  const gamma = randomArray(bn.channels);
  const beta = randomArray(bn.channels);
  const mean = new Float32Array(bn.channels);
  const invStd = new Float32Array(bn.channels);
  const gradGamma = new Float32Array(bn.channels);
  const gradBeta = new Float32Array(bn.channels);
  list.push({
    name: 'batch norm forward 64×32×28²',
    flops: 0,
    run: () => backend.batchNormTrainForward(x, gamma, beta, y, mean, invStd, 1e-5, bn),
  });
  list.push({
    name: 'batch norm backward 64×32×28²',
    flops: 0,
    run: () =>
      backend.batchNormTrainBackward(x, gradOut, gamma, mean, invStd, gradX, gradGamma, gradBeta, bn),
  });
  list.push({
    name: 'relu forward 64×32×28²',
    flops: 0,
    run: () => backend.activationForward('relu', x, y, 0),
  });
  list.push({
    name: 'relu backward 64×32×28²',
    flops: 0,
    run: () => backend.activationBackward('relu', x, y, gradOut, gradX, 0),
  });
  const pool = {
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
  const pooled = new Float32Array(size / 4);
  const argmax = new Int32Array(size / 4);
  list.push({
    name: 'max pool forward 64×32×28²',
    flops: 0,
    run: () => backend.maxPool2dForward(x, pooled, argmax, pool),
  });
  list.push({
    name: 'max pool backward 64×32×28²',
    flops: 0,
    run: () => backend.maxPool2dBackward(pooled, argmax, gradX, pool),
  });
  return list;
}

function main(): void {
  const options = parseOptions(process.argv.slice(2));
  const backend = loadNativeBackend();
  if (backend === null) {
    console.log(`native backend unavailable: ${nativeUnavailableReason()}`);
    return;
  }
  if (options.isa !== null && !setNativeIsa(options.isa)) {
    console.log(`this CPU or build cannot run the ${options.isa} kernels`);
    return;
  }
  const all = workloads(backend).filter((w) => options.only === null || w.name.includes(options.only));
  const results: Record<string, Record<string, { ms: number; gflops: number | null }>> = {};
  for (const workload of all) {
    results[workload.name] = {};
    for (const threads of options.threads) {
      setNativeThreads(threads);
      const seconds = timeSeconds(options.repeats, options.statistic, workload.run);
      results[workload.name]![`${threads}`] = {
        ms: seconds * 1e3,
        gflops: workload.flops > 0 ? workload.flops / seconds / 1e9 : null,
      };
    }
  }
  if (options.json) {
    console.log(
      JSON.stringify({
        isa: getNativeIsa(),
        statistic: options.statistic,
        threads: options.threads,
        results,
      }),
    );
    return;
  }
  console.log(`native kernels (${getNativeIsa()}), ${options.statistic} of ${options.repeats} runs`);
  const header = [
    'workload'.padEnd(34),
    ...options.threads.map((t) => `${t} thread${t > 1 ? 's' : ''}`.padStart(24)),
  ];
  console.log(header.join(''));
  for (const [name, byThreads] of Object.entries(results)) {
    const cells = options.threads.map((t) => {
      const { ms, gflops } = byThreads[`${t}`]!;
      const text = gflops === null ? `${ms.toFixed(3)} ms` : `${ms.toFixed(3)} ms ${gflops.toFixed(1)} GF/s`;
      return text.padStart(24);
    });
    console.log([name.padEnd(34), ...cells].join(''));
  }
}

main();
