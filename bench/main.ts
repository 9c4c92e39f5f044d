/**
 * npm run bench [-- --json] [--steps N] [--rounds N] [--backend NAME|all] [--threads N] [--workload NAME]
 *                 [--no-torch] [--no-ort] [--soak [--soak-steps N]]
 *
 * Throughput of tensile's backends on six workloads, side by side with PyTorch's CPU build when
 * /usr/bin/python3 has torch (run with 2 threads, alternating with ours in the same run), and for the
 * inference workloads with onnxruntime-node (the network exported by exportOnnx from tensile's own
 * weights, intraOpNumThreads = the native thread count) when it loads:
 *   seedcnn-train   seed CNN (conv 32-32-pool-64-64-pool, BN, GAP, dense 10), Adam, batch 64
 *   seedcnn-infer   the same network in inference mode, batch 256
 *   resnet18-train  ResNet-18 with the small stem, 32×32 RGB, 10 classes, SGD momentum 0.9, batch 32
 *   resnet18-infer  ResNet-18 with the ImageNet stem, 224×224 RGB, 1000 classes, inference, batch 8
 *   mlp-train       784-256-256-10 with ReLU, Adam, batch 128
 *   gemm            1024×1024×1024 float32 matrix multiply
 * Each figure is the median over `steps` timed steps after warm-up, on random data. "best peer" is
 * the faster of PyTorch and onnxruntime; the ratio column is tensile / best peer.
 * --soak trains seedcnn-train (or the one --workload given) for 5,000 steps (--soak-steps) and reports
 * peak RSS after 100 steps and at the end.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
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
  exportOnnx,
  type Module,
  manualSeed,
  noGrad,
  randn,
  ReLU,
  resnet18,
  SGD,
  seedCnn,
  Sequential,
  setBackend,
  Tensor,
  getBackend,
} from '../src/index.js';
import { flopsPerSample, forwardFlops } from './flops.js';
import { torchEnvironment } from './torch-env.js';
import { setNativeThreads, getNativeThreads } from '../src/backend/native/index.js';
import { getWasmThreads, setWasmThreads } from '../src/backend/wasm/index.js';

type WorkloadName =
  'seedcnn-train' | 'seedcnn-infer' | 'resnet18-train' | 'resnet18-infer' | 'mlp-train' | 'gemm';
const workloadNames: WorkloadName[] = [
  'seedcnn-train',
  'seedcnn-infer',
  'resnet18-train',
  'resnet18-infer',
  'mlp-train',
  'gemm',
];

interface Workload {
  batch: number;
  /** Floating-point operations of one step. */
  flops: number;
  step: () => void;
  /** Inference workloads: the network and its input, for the onnxruntime comparison. */
  inference?: { model: Module; input: Tensor };
}

function trainingWorkload(
  model: Module,
  input: Tensor,
  classes: number,
  forwardFlops: number,
  optimizerKind: 'adam' | 'sgd-momentum' = 'adam',
): Workload {
  const labels = new Int32Array(input.shape[0]!).map((_, i) => i % classes);
  const optimizer =
    optimizerKind === 'adam'
      ? new Adam(model.parameters(), { lr: 1e-3 })
      : new SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
  model.train();
  return {
    batch: input.shape[0]!,
    // Backward costs two forwards (input and weight gradients), the usual convention.
    flops: 3 * forwardFlops * input.shape[0]!,
    step: () => {
      const loss = crossEntropy(model.call(input), labels);
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
        step: () => noGrad(() => model.call(input)),
        inference: { model, input },
      };
    }
    case 'resnet18-train': {
      const model = resnet18({ classes: 10, inChannels: 3, stem: 'small' });
      const flops = forwardFlops(model, [3, 32, 32]);
      return trainingWorkload(model, randn([32, 3, 32, 32]), 10, flops, 'sgd-momentum');
    }
    case 'resnet18-infer': {
      const model = resnet18({ classes: 1000, inChannels: 3, stem: 'imagenet' }).eval();
      const input = randn([8, 3, 224, 224]);
      return {
        batch: 8,
        flops: 8 * forwardFlops(model, [3, 224, 224]),
        step: () => noGrad(() => model.call(input)),
        inference: { model, input },
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

type OrtModule = typeof import('onnxruntime-node');

/** onnxruntime-node, or the reason it cannot be loaded (not installed, no binary for this platform). */
async function loadOrt(): Promise<OrtModule | string> {
  try {
    return await import('onnxruntime-node');
  } catch (error) {
    return (error as Error).message.split('\n')[0]!;
  }
}

/**
 * Samples per second of onnxruntime on an inference workload: the network exported to ONNX from
 * tensile's own weights (a temporary file), one InferenceSession with intraOpNumThreads = threads,
 * the same batch; the median over `steps` timed runs after `warmup`.
 */
async function runOrt(
  ort: OrtModule,
  inference: { model: Module; input: Tensor },
  steps: number,
  warmup: number,
  threads: number,
): Promise<number> {
  const directory = mkdtempSync(path.join(os.tmpdir(), 'tensile-bench-'));
  const file = path.join(directory, 'model.onnx');
  try {
    exportOnnx(inference.model, file, { inputShape: inference.input.shape.slice(1) });
    const session = await ort.InferenceSession.create(file, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
    try {
      const feeds = {
        [session.inputNames[0]!]: new ort.Tensor('float32', Float32Array.from(inference.input.data), [
          ...inference.input.shape,
        ]),
      };
      for (let i = 0; i < warmup; i++) await session.run(feeds);
      const times: number[] = [];
      for (let i = 0; i < steps; i++) {
        const start = performance.now();
        await session.run(feeds);
        times.push((performance.now() - start) / 1000);
      }
      return inference.input.shape[0]! / median(times);
    } finally {
      await session.release();
    }
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

function soak(stepsTotal: number, name: WorkloadName): void {
  const workload = makeWorkload(name);
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
        workload: name,
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
    `soak (${name}): peak RSS ${afterHundred.toFixed(0)} MiB after 100 steps, ${end.toFixed(0)} MiB after ${stepsTotal}: ${(growth * 100).toFixed(2)}% growth (${growth < 0.05 ? 'flat' : 'GROWING'})`,
  );
}

const benchOptions = {
  help: { type: 'boolean', short: 'h', default: false },
  json: { type: 'boolean', default: false },
  steps: { type: 'string', default: '30' },
  warmup: { type: 'string', default: '5' },
  rounds: { type: 'string', default: '1' },
  backend: { type: 'string', default: 'all' },
  'no-torch': { type: 'boolean', default: false },
  'no-ort': { type: 'boolean', default: false },
  threads: { type: 'string' },
  workload: { type: 'string', multiple: true },
  soak: { type: 'boolean', default: false },
  'soak-steps': { type: 'string', default: '5000' },
} as const;

/** What --help prints (and a mistyped option, before its error): the options of this file's header. */
const usage = `usage: npm run bench [-- --json] [--steps N] [--warmup N] [--rounds N] [--backend NAME|all]
                 [--threads N] [--workload NAME ...] [--no-torch] [--no-ort] [--soak [--soak-steps N]]
workloads: seedcnn-train, seedcnn-infer, resnet18-train, resnet18-infer, mlp-train, gemm`;

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({ options: benchOptions });
  } catch (error) {
    console.error(`bench: ${error instanceof Error ? error.message : String(error)}\n${usage}`);
    process.exit(2);
  }
  const { values } = parsed;
  if (values.help) {
    console.log(usage);
    return;
  }
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
    const soaked = (values.workload ?? ['seedcnn-train']) as string[];
    if (soaked.length !== 1 || !workloadNames.includes(soaked[0] as WorkloadName)) {
      console.error(`bench: --soak takes one training --workload (default seedcnn-train)\n${usage}`);
      process.exit(2);
    }
    soak(Number(values['soak-steps']), soaked[0] as WorkloadName);
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
  const ort = values['no-ort'] ? 'skipped (--no-ort)' : await loadOrt();
  const withOrt = typeof ort !== 'string';
  const ortNote = withOrt ? null : `onnxruntime-node ${ort}`;
  if (ortNote !== null && !values.json && selected.some((name) => name.endsWith('-infer')))
    console.log(`onnxruntime comparison skipped: ${ortNote}.`);
  const machine: Record<string, unknown> = {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    node: process.version,
    threads,
    wasm_threads: wasmThreads,
    backends,
    torch_blas: null,
    onnxruntime: withOrt ? `onnxruntime-node, intraOpNumThreads ${threads}` : ortNote,
  };
  const results: Record<string, Record<string, unknown>> = {};
  const rows: string[][] = [];
  const fixed = (value: number | null, digits: number) =>
    value === null ? null : Number(value.toFixed(digits));
  for (const name of selected) {
    // Rounds alternate ours and the peers so that a change in the machine's load hits all; each
    // figure is the median over rounds of per-round medians.
    const ours = new Map<string, { samplesPerSecond: number; gflops: number }[]>();
    const torchRounds: number[] = [];
    const ortRounds: number[] = [];
    let torchResult: TorchResult | null = null;
    for (let round = 0; round < rounds; round++) {
      for (const backendName of backends) {
        setBackend(backendByName(backendName));
        const measured = timeWorkload(makeWorkload(name), steps, warmup);
        ours.set(backendName, [...(ours.get(backendName) ?? []), measured]);
      }
      torchResult = withTorch ? runTorch(name, steps, warmup, 2) : null;
      if (torchResult !== null) torchRounds.push(torchResult.samplesPerSecond);
      if (typeof ort !== 'string' && name.endsWith('-infer')) {
        // Exported from the weights tensile just ran (seeded, so the same network every round).
        const inference = makeWorkload(name).inference!;
        try {
          ortRounds.push(await runOrt(ort, inference, steps, warmup, threads));
        } catch (error) {
          console.error(`bench: onnxruntime ${name} failed: ${(error as Error).message.split('\n')[0]}`);
        }
      }
    }
    const perBackend: Record<string, { samples_per_s: number; gflops: number }> = {};
    for (const [backendName, measured] of ours) {
      perBackend[backendName] = {
        samples_per_s: Number(median(measured.map((m) => m.samplesPerSecond)).toFixed(1)),
        gflops: Number(median(measured.map((m) => m.gflops)).toFixed(2)),
      };
    }
    const torch = torchRounds.length > 0 ? median(torchRounds) : null;
    const onnx = ortRounds.length > 0 ? median(ortRounds) : null;
    const peers = [torch, onnx].filter((value): value is number => value !== null);
    const bestPeer = peers.length > 0 ? Math.max(...peers) : null;
    const bestPeerName = bestPeer === null ? null : bestPeer === torch ? 'pytorch' : 'onnxruntime';
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
      torch_samples_per_s: fixed(torch, 1),
      ratio: torch === null ? null : Number((primary.samples_per_s / torch).toFixed(3)),
      ort_samples_per_s: fixed(onnx, 1),
      best_peer: bestPeerName,
      ratio_best_peer: bestPeer === null ? null : Number((primary.samples_per_s / bestPeer).toFixed(3)),
      backends: Object.fromEntries(
        Object.entries(perBackend).map(([b, r]) => [
          b,
          {
            ...r,
            ratio: torch === null ? null : Number((r.samples_per_s / torch).toFixed(3)),
            ratio_best_peer: bestPeer === null ? null : Number((r.samples_per_s / bestPeer).toFixed(3)),
          },
        ]),
      ),
    };
    const inference = name.endsWith('-infer');
    for (const [backendName, r] of Object.entries(perBackend)) {
      rows.push([
        name,
        backendName,
        r.samples_per_s.toFixed(1),
        r.gflops.toFixed(1),
        torch === null ? '-' : torch.toFixed(1),
        onnx === null ? (inference && !withOrt ? 'n/a' : '-') : onnx.toFixed(1),
        bestPeer === null ? '-' : `${(r.samples_per_s / bestPeer).toFixed(2)}× ${bestPeerName}`,
      ]);
    }
  }
  if (values.json) {
    console.log(JSON.stringify({ machine, workloads: results }));
    return;
  }
  const header = [
    'workload',
    'backend',
    'samples/s',
    'GFLOP/s',
    'PyTorch samples/s',
    'onnxruntime samples/s',
    'tensile / best peer',
  ];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(
    `machine: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, native threads ${threads}, wasm threads ${wasmThreads}; PyTorch ${withTorch ? `with 2 threads on ${String(machine.torch_blas)}` : 'not run'}; onnxruntime ${withOrt ? `with intraOpNumThreads ${threads}` : 'not run'}`,
  );
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows) console.log(line(row));
}

await main();
