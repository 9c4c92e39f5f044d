/**
 * npm run bench [-- --json] [--steps N] [--rounds N] [--backend NAME|all] [--threads N] [--workload NAME]
 *                 [--no-torch] [--soak [--soak-steps N]]
 *
 * Throughput of tensile's backends on four workloads, side by side with PyTorch's CPU build when
 * /usr/bin/python3 has torch (run with 2 threads, alternating with ours in the same run):
 *   seedcnn-train  seed CNN (conv 32-32-pool-64-64-pool, BN, GAP, dense 10), Adam, batch 64
 *   seedcnn-infer  the same network in inference mode, batch 256
 *   mlp-train      784-256-256-10 with ReLU, Adam, batch 128
 *   gemm           1024×1024×1024 float32 matrix multiply
 * Each figure is the median over `steps` timed steps after warm-up, on random data.
 * --soak trains seedcnn-train for 5,000 steps and reports peak RSS after 100 steps and at the end.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import {
  Adam,
  availableBackends,
  backendByName,
  crossEntropy,
  Dense,
  type Module,
  manualSeed,
  noGrad,
  randn,
  ReLU,
  seedCnn,
  Sequential,
  setBackend,
  Tensor,
  getBackend,
} from '../src/index.js';
import { flopsPerSample } from './flops.js';
import { setNativeThreads, getNativeThreads } from '../src/backend/native/index.js';
import { getWasmThreads, setWasmThreads } from '../src/backend/wasm/index.js';

type WorkloadName = 'seedcnn-train' | 'seedcnn-infer' | 'mlp-train' | 'gemm';
const workloadNames: WorkloadName[] = ['seedcnn-train', 'seedcnn-infer', 'mlp-train', 'gemm'];

interface Workload {
  batch: number;
  /** Floating-point operations of one step. */
  flops: number;
  step: () => void;
}

function trainingWorkload(model: Module, input: Tensor, classes: number, forwardFlops: number): Workload {
  const labels = new Int32Array(input.shape[0]!).map((_, i) => i % classes);
  const optimizer = new Adam(model.parameters(), { lr: 1e-3 });
  model.train();
  return {
    batch: input.shape[0]!,
    // Backward costs two forwards (input and weight gradients), the usual convention.
    flops: 3 * forwardFlops * input.shape[0]!,
    step: () => {
      const loss = crossEntropy(model.forward(input), labels);
      optimizer.zeroGrad();
      loss.backward();
      optimizer.step();
    },
  };
}

export function makeWorkload(name: WorkloadName): Workload {
  manualSeed(0);
  switch (name) {
    case 'seedcnn-train': {
      const model = seedCnn({ channels: [32, 64] });
      return trainingWorkload(model, randn([64, 1, 28, 28]), 10, flopsPerSample(model, [1, 28, 28]));
    }
    case 'seedcnn-infer': {
      const model = seedCnn({ channels: [32, 64] }).eval();
      const input = randn([256, 1, 28, 28]);
      return {
        batch: 256,
        flops: 256 * flopsPerSample(model, [1, 28, 28]),
        step: () => noGrad(() => model.forward(input)),
      };
    }
    case 'mlp-train': {
      const model = new Sequential(
        new Dense(784, 256),
        new ReLU(),
        new Dense(256, 256),
        new ReLU(),
        new Dense(256, 10),
      );
      return trainingWorkload(model, randn([128, 784]), 10, flopsPerSample(model, [784]));
    }
    case 'gemm': {
      const n = 1024;
      const a = randn([n, n]).data;
      const b = randn([n, n]).data;
      const out = new Float32Array(n * n);
      return {
        batch: 1,
        flops: 2 * n * n * n,
        step: () => getBackend().matmul(a, b, out, n, n, n, false, false, false),
      };
    }
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function timeWorkload(
  workload: Workload,
  steps: number,
  warmup: number,
): { samplesPerSecond: number; gflops: number } {
  for (let i = 0; i < warmup; i++) workload.step();
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const start = performance.now();
    workload.step();
    times.push((performance.now() - start) / 1000);
  }
  const seconds = median(times);
  return { samplesPerSecond: workload.batch / seconds, gflops: workload.flops / seconds / 1e9 };
}

const here = path.dirname(fileURLToPath(import.meta.url));
const torchScript = path.resolve(here, '..', '..', 'bench', 'python', 'torch_bench.py');
const python = '/usr/bin/python3';

function torchAvailable(): boolean {
  const result = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' });
  return result.status === 0;
}

/**
 * Environment for the PyTorch process. Debian 12's OpenBLAS 0.3.21 does not recognise recent Xeons
 * (Sapphire Rapids) and falls back to its SSE3 "Prescott" kernels, about 7× slower than its
 * AVX-512 ones; a PyTorch user with the pip wheel (MKL) never sees that, so we name the core type it
 * should use from the CPU's flags unless the caller already chose one.
 */
function torchEnvironment(): NodeJS.ProcessEnv {
  const environment = { ...process.env };
  if (environment.OPENBLAS_CORETYPE === undefined) {
    let flags = '';
    try {
      flags = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1] ?? '';
    } catch {
      // Not Linux: leave OpenBLAS to its own detection.
    }
    const has = (flag: string) => flags.split(/\s+/).includes(flag);
    if (has('avx512f') && has('avx512bw') && has('avx512vl')) environment.OPENBLAS_CORETYPE = 'SkylakeX';
    else if (has('avx2') && has('fma')) environment.OPENBLAS_CORETYPE = 'Haswell';
  }
  return environment;
}

interface TorchResult {
  samplesPerSecond: number;
  /** The BLAS library torch's matmuls ran on, as torch_bench.py found it. */
  blas: string;
}

function runTorch(name: WorkloadName, steps: number, warmup: number, threads: number): TorchResult | null {
  const result = spawnSync(python, [torchScript, name, String(steps), String(warmup), String(threads)], {
    encoding: 'utf8',
    env: torchEnvironment(),
  });
  if (result.status !== 0) {
    console.error(`bench: PyTorch ${name} failed: ${result.stderr.trim().split('\n').at(-1)}`);
    return null;
  }
  const parsed = JSON.parse(result.stdout) as { samples_per_s: number; blas: string };
  return { samplesPerSecond: parsed.samples_per_s, blas: parsed.blas };
}

function soak(stepsTotal: number): void {
  const workload = makeWorkload('seedcnn-train');
  let afterHundred = 0;
  const started = performance.now();
  for (let step = 1; step <= stepsTotal; step++) {
    workload.step();
    if (step === 100) afterHundred = process.resourceUsage().maxRSS / 1024;
    if (step % 500 === 0) {
      const rss = process.memoryUsage().rss / 2 ** 20;
      process.stderr.write(
        `soak: step ${step}/${stepsTotal}, RSS ${rss.toFixed(0)} MiB, peak ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB\n`,
      );
    }
  }
  const end = process.resourceUsage().maxRSS / 1024;
  const growth = (end - afterHundred) / afterHundred;
  console.log(
    JSON.stringify({
      soak: {
        backend: getBackend().name,
        steps: stepsTotal,
        peak_rss_mib_after_100: Number(afterHundred.toFixed(1)),
        peak_rss_mib_end: Number(end.toFixed(1)),
        growth_percent: Number((growth * 100).toFixed(2)),
        seconds: Number(((performance.now() - started) / 1000).toFixed(1)),
      },
    }),
  );
  console.log(
    `soak: peak RSS ${afterHundred.toFixed(0)} MiB after 100 steps, ${end.toFixed(0)} MiB after ${stepsTotal}: ${(growth * 100).toFixed(2)}% growth (${growth < 0.05 ? 'flat' : 'GROWING'})`,
  );
}

function main(): void {
  const { values } = parseArgs({
    options: {
      json: { type: 'boolean', default: false },
      steps: { type: 'string', default: '30' },
      warmup: { type: 'string', default: '5' },
      rounds: { type: 'string', default: '1' },
      backend: { type: 'string', default: 'all' },
      'no-torch': { type: 'boolean', default: false },
      threads: { type: 'string' },
      workload: { type: 'string', multiple: true },
      soak: { type: 'boolean', default: false },
      'soak-steps': { type: 'string', default: '5000' },
    },
  });
  const steps = Number(values.steps);
  const warmup = Number(values.warmup);
  const rounds = Math.max(1, Number(values.rounds));
  if (values.threads !== undefined) {
    setNativeThreads(Number(values.threads));
    setWasmThreads(Number(values.threads));
  }
  const threads = getNativeThreads();
  const wasmThreads = getWasmThreads();
  if (values.soak) {
    if (values.backend !== 'all') setBackend(backendByName(values.backend!));
    soak(Number(values['soak-steps']));
    return;
  }
  const backends =
    values.backend === 'all'
      ? availableBackends()
          .filter((name) => name !== 'reference')
          .reverse()
      : [values.backend!];
  const selected = (values.workload as WorkloadName[] | undefined) ?? workloadNames;
  const withTorch = !values['no-torch'] && torchAvailable();
  if (!withTorch && !values.json)
    console.log(
      values['no-torch']
        ? 'PyTorch comparison skipped (--no-torch).'
        : `PyTorch not found (${python} cannot import torch): printing tensile alone.`,
    );
  const machine: Record<string, unknown> = {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    node: process.version,
    threads,
    wasm_threads: wasmThreads,
    backends,
    torch_blas: null,
  };
  const results: Record<string, Record<string, unknown>> = {};
  const rows: string[][] = [];
  for (const name of selected) {
    // Rounds alternate ours and PyTorch so that a change in the machine's load hits both; each
    // figure is the median over rounds of per-round medians.
    const ours = new Map<string, { samplesPerSecond: number; gflops: number }[]>();
    const torchRounds: number[] = [];
    let torchResult: TorchResult | null = null;
    for (let round = 0; round < rounds; round++) {
      for (const backendName of backends) {
        setBackend(backendByName(backendName));
        const measured = timeWorkload(makeWorkload(name), steps, warmup);
        ours.set(backendName, [...(ours.get(backendName) ?? []), measured]);
      }
      torchResult = withTorch ? runTorch(name, steps, warmup, 2) : null;
      if (torchResult !== null) torchRounds.push(torchResult.samplesPerSecond);
    }
    const perBackend: Record<string, { samples_per_s: number; gflops: number }> = {};
    for (const [backendName, measured] of ours) {
      perBackend[backendName] = {
        samples_per_s: Number(median(measured.map((m) => m.samplesPerSecond)).toFixed(1)),
        gflops: Number(median(measured.map((m) => m.gflops)).toFixed(2)),
      };
    }
    const torch = torchRounds.length > 0 ? median(torchRounds) : null;
    if (torchResult !== null && machine.torch_blas === null) {
      machine.torch_blas = torchResult.blas;
      if (!torchResult.blas.startsWith('OpenBLAS'))
        console.error(
          `bench: PyTorch's matmuls run on ${torchResult.blas}, far slower than a real install; ` +
            'install the Debian package libopenblas0-pthread for a fair comparison.',
        );
    }
    const primary = perBackend[backends[0]!]!;
    results[name] = {
      ...primary,
      backend: backends[0],
      torch_samples_per_s: torch === null ? null : Number(torch.toFixed(1)),
      ratio: torch === null ? null : Number((primary.samples_per_s / torch).toFixed(3)),
      backends: Object.fromEntries(
        Object.entries(perBackend).map(([b, r]) => [
          b,
          { ...r, ratio: torch === null ? null : Number((r.samples_per_s / torch).toFixed(3)) },
        ]),
      ),
    };
    for (const [backendName, r] of Object.entries(perBackend)) {
      rows.push([
        name,
        backendName,
        r.samples_per_s.toFixed(1),
        r.gflops.toFixed(1),
        torch === null ? '-' : torch.toFixed(1),
        torch === null ? '-' : (r.samples_per_s / torch).toFixed(2) + '×',
      ]);
    }
  }
  if (values.json) {
    console.log(JSON.stringify({ machine, workloads: results }));
    return;
  }
  const header = ['workload', 'backend', 'samples/s', 'GFLOP/s', 'PyTorch samples/s', 'tensile/PyTorch'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(
    `machine: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, native threads ${threads}, wasm threads ${wasmThreads}; PyTorch ${withTorch ? `with 2 threads on ${String(machine.torch_blas)}` : 'not run'}`,
  );
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows) console.log(line(row));
}

main();
