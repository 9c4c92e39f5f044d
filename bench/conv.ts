/**
 * npm run bench:conv [-- --json] [--threads N] [--repeats N] [--warmup N] [--only SUBSTRING] [--no-torch]
 *                    [--statistic median|min] [--no-winograd]
 *
 * GFLOP/s of the native backend's convolutions — forward, input gradient and weight gradient — over
 * a sweep of geometries (kernels 1, 3, 5, 7; strides 1 and 2; 1 to 512 channels; 7² to 224²; batch 1
 * to 256; the seed CNN's and ResNet-18's layers among them), side by side with PyTorch's CPU build
 * (bench/python/conv_bench.py: torch.nn.functional.conv2d and autograd, same thread count) when
 * /usr/bin/python3 has torch, each as a fraction of the chip's FMA peak.
 *
 * The peak is measured, not looked up: bench/fma-peak.c is a register-only loop of independent
 * fused multiply-adds (AVX-512, else AVX2+FMA, else a plain vector loop), compiled here with the
 * system C compiler (`cc -O2 -march=native`), run on 1 thread and on the bench's thread count; each
 * thread's FLOPs are divided by its own CPU time (so cycles other processes take on a shared machine
 * do not count), the best of ten tries counts, and the peak for N threads is the larger of the
 * N-thread sum and N × the 1-thread figure. The wall-clock figure is printed beside it. Without a C compiler the peak falls back to the native GEMM's best at 1024³, which
 * is a lower bound of the peak (fractions are then overstated), and the output says so.
 *
 * --no-winograd times the direct convolutions where the native backend would take its Winograd path
 * (3×3 stride-1 layers of 48 to 256 channels), to compare the two.
 *
 * Each figure is the median (or with --statistic min the minimum, the steadier measure of a kernel's
 * own speed while other processes compete for the cores) of `repeats` timed runs after `warmup`; FLOPs are 2 × multiply-adds of
 * the forward convolution for all three (each gradient does as many multiply-adds as the forward).
 * The median fraction is over all geometries and the three passes (and per pass). Timings on a
 * shared machine are noisy: quote the load with them.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  getNativeIsa,
  getNativeThreads,
  loadNativeBackend,
  nativeUnavailableReason,
  setNativeThreads,
  setNativeWinograd,
} from '../src/backend/native/index.js';
import type { Backend, Conv2dGeometry } from '../src/backend/types.js';
import { torchEnvironment } from './torch-env.js';

interface Geometry {
  name: string;
  batch: number;
  cin: number;
  cout: number;
  size: number;
  kernel: number;
  stride: number;
  padding: number;
}

type Pass = 'forward' | 'grad_input' | 'grad_weight';
const passes: Pass[] = ['forward', 'grad_input', 'grad_weight'];

function geometry(
  name: string,
  batch: number,
  cin: number,
  cout: number,
  size: number,
  kernel: number,
  stride = 1,
): Geometry {
  return { name, batch, cin, cout, size, kernel, stride, padding: Math.floor(kernel / 2) };
}

/** The sweep: the seed CNN's layers, ResNet-18's (both stems), and other kernels, strides, batches. */
const geometries: Geometry[] = [
  geometry('seedcnn conv1', 64, 1, 32, 28, 3),
  geometry('seedcnn conv2', 64, 32, 32, 28, 3),
  geometry('seedcnn conv3', 64, 32, 64, 14, 3),
  geometry('seedcnn conv4', 64, 64, 64, 14, 3),
  geometry('seedcnn conv2 b256', 256, 32, 32, 28, 3),
  geometry('resnet18 conv1 (7×7/2)', 8, 3, 64, 224, 7, 2),
  geometry('resnet18 layer1', 8, 64, 64, 56, 3),
  geometry('resnet18 layer2.0 conv1 (/2)', 8, 64, 128, 56, 3, 2),
  geometry('resnet18 layer2', 8, 128, 128, 28, 3),
  geometry('resnet18 layer2 downsample', 8, 64, 128, 56, 1, 2),
  geometry('resnet18 layer3.0 conv1 (/2)', 8, 128, 256, 28, 3, 2),
  geometry('resnet18 layer3', 8, 256, 256, 14, 3),
  geometry('resnet18 layer3 downsample', 8, 128, 256, 28, 1, 2),
  geometry('resnet18 layer4.0 conv1 (/2)', 8, 256, 512, 14, 3, 2),
  geometry('resnet18 layer4', 8, 512, 512, 7, 3),
  geometry('resnet18 layer4 downsample', 8, 256, 512, 14, 1, 2),
  geometry('resnet18-small conv1', 32, 3, 64, 32, 3),
  geometry('resnet18-small layer1', 32, 64, 64, 32, 3),
  geometry('resnet18-small layer3', 32, 256, 256, 8, 3),
  geometry('resnet18 layer1 b1', 1, 64, 64, 56, 3),
  geometry('resnet18 layer4 b1', 1, 512, 512, 7, 3),
  geometry('5×5 32→64', 64, 32, 64, 28, 5),
  geometry('5×5/2 64→128', 8, 64, 128, 56, 5, 2),
  geometry('7×7 64→64', 16, 64, 64, 14, 7),
  geometry('1×1 256→256', 32, 256, 256, 14, 1),
  geometry('1×1 512→512', 64, 512, 512, 7, 1),
  geometry('3×3/2 stem 3→32 224²', 4, 3, 32, 224, 3, 2),
];

function outSize(g: Geometry): number {
  return Math.floor((g.size + 2 * g.padding - g.kernel) / g.stride) + 1;
}

function flopsOf(g: Geometry): number {
  return 2 * g.batch * g.cout * outSize(g) ** 2 * g.cin * g.kernel ** 2;
}

function toBackendGeometry(g: Geometry): Conv2dGeometry {
  const out = outSize(g);
  return {
    batch: g.batch,
    inChannels: g.cin,
    inHeight: g.size,
    inWidth: g.size,
    outChannels: g.cout,
    kernelHeight: g.kernel,
    kernelWidth: g.kernel,
    strideHeight: g.stride,
    strideWidth: g.stride,
    padTop: g.padding,
    padLeft: g.padding,
    dilationHeight: 1,
    dilationWidth: 1,
    outHeight: out,
    outWidth: out,
  };
}

function randomArray(length: number): Float32Array {
  const data = new Float32Array(length);
  for (let i = 0; i < length; i++) data[i] = Math.random() - 0.5;
  return data;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** median (the default) or min over the timed runs, for both sides: --statistic. */
let statistic: 'median' | 'min' = 'median';

function timedSeconds(run: () => void, repeats: number, warmup: number): number {
  for (let i = 0; i < warmup; i++) run();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const start = performance.now();
    run();
    times.push((performance.now() - start) / 1000);
  }
  return statistic === 'min' ? Math.min(...times) : median(times);
}

function timeNative(backend: Backend, g: Geometry, repeats: number, warmup: number): Record<Pass, number> {
  const bg = toBackendGeometry(g);
  const x = randomArray(g.batch * g.cin * g.size * g.size);
  const weight = randomArray(g.cout * g.cin * g.kernel * g.kernel);
  const out = randomArray(g.batch * g.cout * bg.outHeight * bg.outWidth);
  const gradX = new Float32Array(x.length);
  const gradWeight = new Float32Array(weight.length);
  return {
    forward: timedSeconds(() => backend.conv2dForward(x, weight, out, bg), repeats, warmup),
    grad_input: timedSeconds(() => backend.conv2dBackwardInput(out, weight, gradX, bg), repeats, warmup),
    grad_weight: timedSeconds(() => backend.conv2dBackwardWeight(x, out, gradWeight, bg), repeats, warmup),
  };
}

const here = path.dirname(fileURLToPath(import.meta.url));
const benchSource = path.resolve(here, '..', '..', 'bench');
const python = '/usr/bin/python3';

function timeTorch(
  selected: Geometry[],
  threads: number,
  repeats: number,
  warmup: number,
): Map<string, Record<Pass, number>> | string {
  if (spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' }).status !== 0)
    return `${python} cannot import torch`;
  const result = spawnSync(
    python,
    [
      path.join(benchSource, 'python', 'conv_bench.py'),
      String(threads),
      String(repeats),
      String(warmup),
      statistic,
    ],
    // Convolutions in Debian's torch go through im2col and OpenBLAS: the same core type as npm run bench.
    { input: JSON.stringify(selected), encoding: 'utf8', env: torchEnvironment() },
  );
  if (result.status !== 0) return `conv_bench.py failed: ${result.stderr.trim().split('\n').at(-1)}`;
  const parsed = JSON.parse(result.stdout) as { results: ({ name: string } & Record<Pass, number>)[] };
  return new Map(parsed.results.map((r) => [r.name, r]));
}

interface Peak {
  gflops: number;
  /** What the figure is: the FMA loop, or the GEMM fallback (a lower bound of the peak). */
  method: string;
  isa: string;
  singleThreadGflops: number | null;
  /** The loop's best on all `threads` threads over wall-clock time (null for the GEMM fallback). */
  measuredGflops: number | null;
}

/** The FMA peak on `threads` threads from bench/fma-peak.c, else the native GEMM's best at 1024³. */
function measurePeak(backend: Backend, threads: number): Peak {
  const directory = mkdtempSync(path.join(os.tmpdir(), 'tensile-fma-'));
  try {
    const binary = path.join(directory, 'fma-peak');
    const compiled = spawnSync(
      'cc',
      [
        '-O2',
        '-march=native',
        '-ffp-contract=fast',
        '-pthread',
        path.join(benchSource, 'fma-peak.c'),
        '-o',
        binary,
      ],
      { encoding: 'utf8' },
    );
    if (compiled.status === 0) {
      const run = (n: number) =>
        JSON.parse(spawnSync(binary, [String(n), '0.2', '10'], { encoding: 'utf8' }).stdout) as {
          isa: string;
          gflops: number;
          wall_gflops: number;
        };
      // gflops counts each thread's own CPU time, so cycles other processes take on a shared machine
      // do not lower it; N × the 1-thread figure is the other estimate of the N-core peak.
      const many = run(threads);
      const one = threads === 1 ? many : run(1);
      return {
        gflops: Math.max(many.gflops, one.gflops * threads),
        method: `register-only FMA loop (bench/fma-peak.c, ${many.isa}, ${threads} thread${threads === 1 ? '' : 's'}, per-thread CPU time)`,
        isa: many.isa,
        singleThreadGflops: one.gflops,
        measuredGflops: many.wall_gflops,
      };
    }
    console.error(
      `bench:conv: cannot compile bench/fma-peak.c (${compiled.stderr?.trim().split('\n')[0] ?? 'no cc'})`,
    );
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
  const n = 1024;
  const a = randomArray(n * n);
  const b = randomArray(n * n);
  const out = new Float32Array(n * n);
  let best = Infinity;
  for (let i = 0; i < 7; i++) {
    const start = performance.now();
    backend.matmul(a, b, out, n, n, n, false, false, false);
    best = Math.min(best, (performance.now() - start) / 1000);
  }
  return {
    gflops: (2 * n ** 3) / best / 1e9,
    method: 'native GEMM 1024³ best of 7 (NOT the FMA peak: a lower bound of it; fractions are overstated)',
    isa: getNativeIsa() ?? 'unknown',
    singleThreadGflops: null,
    measuredGflops: null,
  };
}

function main(): void {
  const { values } = parseArgs({
    options: {
      json: { type: 'boolean', default: false },
      threads: { type: 'string' },
      repeats: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '2' },
      only: { type: 'string' },
      'no-torch': { type: 'boolean', default: false },
      statistic: { type: 'string', default: 'median' },
      'no-winograd': { type: 'boolean', default: false },
    },
  });
  if (values['no-winograd']) setNativeWinograd(false);
  if (values.threads !== undefined) setNativeThreads(Number(values.threads));
  if (values.statistic !== 'median' && values.statistic !== 'min')
    throw new RangeError(`bench:conv: --statistic must be median or min, got ${values.statistic}`);
  statistic = values.statistic;
  const threads = getNativeThreads();
  const repeats = Math.max(1, Number(values.repeats));
  const warmup = Math.max(0, Number(values.warmup));
  const backend = loadNativeBackend();
  if (backend === null) {
    console.error(`bench:conv: the native backend is not available: ${nativeUnavailableReason()}`);
    process.exitCode = 1;
    return;
  }
  const selected = geometries.filter((g) => values.only === undefined || g.name.includes(values.only));
  const peak = measurePeak(backend, threads);
  const native = new Map(selected.map((g) => [g.name, timeNative(backend, g, repeats, warmup)]));
  const torch = values['no-torch'] ? '--no-torch' : timeTorch(selected, threads, repeats, warmup);
  const torchNote = typeof torch === 'string' ? torch : null;
  const gflops = (g: Geometry, seconds: number) => flopsOf(g) / seconds / 1e9;
  const round = (value: number, digits: number) => Number(value.toFixed(digits));

  const fractions: Record<'native' | 'torch', Record<Pass, number[]>> = {
    native: { forward: [], grad_input: [], grad_weight: [] },
    torch: { forward: [], grad_input: [], grad_weight: [] },
  };
  const results = selected.map((g) => {
    const side = (times: Record<Pass, number>, who: 'native' | 'torch') =>
      Object.fromEntries(
        passes.map((pass) => {
          const rate = gflops(g, times[pass]);
          fractions[who][pass].push(rate / peak.gflops);
          return [
            pass,
            {
              seconds: round(times[pass], 6),
              gflops: round(rate, 2),
              fraction: round(rate / peak.gflops, 4),
            },
          ];
        }),
      ) as Record<Pass, { seconds: number; gflops: number; fraction: number }>;
    const t = typeof torch === 'string' ? undefined : torch.get(g.name);
    return {
      ...g,
      out_size: outSize(g),
      flops: flopsOf(g),
      native: side(native.get(g.name)!, 'native'),
      torch: t === undefined ? null : side(t, 'torch'),
    };
  });
  const medians = (who: 'native' | 'torch') =>
    fractions[who].forward.length === 0
      ? null
      : {
          forward: round(median(fractions[who].forward), 4),
          grad_input: round(median(fractions[who].grad_input), 4),
          grad_weight: round(median(fractions[who].grad_weight), 4),
          all: round(median(passes.flatMap((pass) => fractions[who][pass])), 4),
        };
  const machine = {
    statistic,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    node: process.version,
    threads,
    native_isa: getNativeIsa(),
    native_winograd: !values['no-winograd'],
    torch: torchNote ?? `PyTorch, ${threads} threads`,
  };
  const peakJson = {
    gflops: round(peak.gflops, 2),
    single_thread_gflops: peak.singleThreadGflops === null ? null : round(peak.singleThreadGflops, 2),
    wall_clock_gflops: peak.measuredGflops === null ? null : round(peak.measuredGflops, 2),
    method: peak.method,
  };
  const summary = { native: medians('native'), torch: medians('torch') };
  if (values.json) {
    console.log(JSON.stringify({ machine, peak: peakJson, geometries: results, median_fraction: summary }));
    return;
  }
  const percent = (fraction: number) => `${(100 * fraction).toFixed(1)}%`;
  console.log(
    `machine: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, native ${machine.native_isa}${machine.native_winograd ? '' : ' without Winograd'} on ${threads} thread${threads === 1 ? '' : 's'}; PyTorch ${torchNote === null ? `on ${threads} threads` : `not run (${torchNote})`}`,
  );
  console.log(
    `peak: ${peak.gflops.toFixed(1)} GFLOP/s from a ${peak.method}` +
      (peak.singleThreadGflops === null || threads === 1
        ? ''
        : `; 1 thread: ${peak.singleThreadGflops.toFixed(1)}; ${threads} threads over wall-clock time: ${peak.measuredGflops!.toFixed(1)}`),
  );
  const header = [
    'geometry',
    'N×Cin×H²→Cout k/s',
    'pass',
    'native GFLOP/s',
    'of peak',
    'PyTorch GFLOP/s',
    'of peak',
    'native/PyTorch',
  ];
  const rows: string[][] = [];
  for (const r of results) {
    for (const pass of passes) {
      const n = r.native[pass];
      const t = r.torch?.[pass];
      rows.push([
        r.name,
        `${r.batch}×${r.cin}×${r.size}²→${r.cout} ${r.kernel}/${r.stride}`,
        pass.replace('_', ' '),
        n.gflops.toFixed(1),
        percent(n.fraction),
        t === undefined ? '-' : t.gflops.toFixed(1),
        t === undefined ? '-' : percent(t.fraction),
        t === undefined ? '-' : `${(n.gflops / t.gflops).toFixed(2)}×`,
      ]);
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows) console.log(line(row));
  for (const who of ['native', 'torch'] as const) {
    const m = summary[who];
    if (m === null) continue;
    console.log(
      `median fraction of peak, ${who === 'native' ? 'native' : 'PyTorch'}: ${percent(m.all)} over all passes ` +
        `(forward ${percent(m.forward)}, grad input ${percent(m.grad_input)}, grad weight ${percent(m.grad_weight)})`,
    );
  }
}

main();
