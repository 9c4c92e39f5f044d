/**
 * Where a step's time goes, kernel by kernel, on a backend: the seed CNN (`seedcnn-train`, batch 64,
 * Adam; `seedcnn-infer`, batch 256) or ResNet-18 (`resnet18-train`, small stem, batch 32, SGD with
 * momentum; `resnet18-infer`, ImageNet stem, 224², batch 8, eval mode under noGrad), as
 * bench/main.ts builds them. Every kernel of the backend is wrapped to time each call, labelled with
 * its geometry (convolutions and pooling) or its first array's length.
 *
 * Run after `npm run build`:
 *   npm run bench:profile -- [--workload seedcnn-train|seedcnn-infer|resnet18-train|resnet18-infer]
 *     [--backend wasm|native|reference] [--threads N] [--steps N] [--cpu] [--top N]
 * --cpu times each kernel by the process's CPU time (process.cpuUsage) instead of the wall clock:
 * with one thread that is the kernel's own work, which other processes on a shared machine do not
 * inflate. Per kernel it prints the mean per step and the fastest step's total, largest first.
 */
import { parseArgs } from 'node:util';

import {
  Adam,
  backendByName,
  crossEntropy,
  manualSeed,
  type Module,
  noGrad,
  randn,
  resnet18,
  SGD,
  seedCnn,
  setBackend,
  setNativeThreads,
  setWasmThreads,
  type Tensor,
} from '../src/index.js';
import type { Backend } from '../src/backend/types.js';

/** A label for one kernel call: its geometry where it has one, else the length of its first array. */
function label(kernel: string, args: readonly unknown[]): string {
  if (kernel === 'matmul') return `matmul ${String(args[3])}×${String(args[4])}×${String(args[5])}`;
  for (const arg of args) {
    if (typeof arg !== 'object' || arg === null || ArrayBuffer.isView(arg) || Array.isArray(arg)) continue;
    const g = arg as Record<string, number>;
    if (g.kernelHeight === undefined) continue;
    const window = `${g.kernelHeight}×${g.kernelWidth}/${g.strideHeight}`;
    if (g.outChannels !== undefined) {
      return `${kernel} ${g.batch}×${g.inChannels}→${g.outChannels} ${g.inHeight}×${g.inWidth} ${window}`;
    }
    return `${kernel} ${g.batch}×${g.channels} ${g.inHeight}×${g.inWidth} ${window}`;
  }
  const first = args.find((arg): arg is Float32Array => ArrayBuffer.isView(arg));
  return first === undefined ? kernel : `${kernel} ${first.length}`;
}

function main(): void {
  const { values } = parseArgs({
    options: {
      workload: { type: 'string', default: 'seedcnn-train' },
      backend: { type: 'string', default: 'wasm' },
      threads: { type: 'string' },
      steps: { type: 'string', default: '10' },
      cpu: { type: 'boolean', default: false },
      top: { type: 'string', default: '30' },
    },
  });
  if (values.threads !== undefined) {
    setWasmThreads(Number(values.threads));
    setNativeThreads(Number(values.threads));
  }
  const backend = backendByName(values.backend);
  const totals = new Map<string, { milliseconds: number; calls: number; perStep: number[] }>();
  let step = -1;
  const kernels = backend as unknown as Record<string, unknown>;
  for (const name of Object.keys(backend)) {
    const kernel = kernels[name];
    if (typeof kernel !== 'function') continue;
    kernels[name] = function (this: Backend, ...args: unknown[]): unknown {
      if (step < 0) return (kernel as (...a: unknown[]) => unknown).apply(this, args);
      const cpuStart = values.cpu ? process.cpuUsage() : null;
      const start = performance.now();
      const result = (kernel as (...a: unknown[]) => unknown).apply(this, args);
      let milliseconds = performance.now() - start;
      if (cpuStart !== null) {
        const used = process.cpuUsage(cpuStart);
        milliseconds = (used.user + used.system) / 1000;
      }
      const key = label(name, args);
      const entry = totals.get(key) ?? { milliseconds: 0, calls: 0, perStep: [] };
      entry.milliseconds += milliseconds;
      entry.calls++;
      entry.perStep[step] = (entry.perStep[step] ?? 0) + milliseconds;
      totals.set(key, entry);
      return result;
    };
  }
  setBackend(backend);
  manualSeed(0);
  if (values.workload === 'resnet18-train') {
    const model = resnet18({ classes: 10, inChannels: 3, stem: 'small' });
    const optimizer = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
    runSteps(trainingStep(model, randn([32, 3, 32, 32]), optimizer));
  } else if (values.workload === 'seedcnn-train') {
    const model = seedCnn({ channels: [32, 64] });
    runSteps(trainingStep(model, randn([64, 1, 28, 28]), new Adam(model.parameters(), { lr: 1e-3 })));
  } else if (values.workload === 'resnet18-infer') {
    const model = resnet18({ classes: 1000, inChannels: 3, stem: 'imagenet' }).eval();
    const input = randn([8, 3, 224, 224]);
    runSteps(() => void noGrad(() => model.call(input)));
  } else if (values.workload === 'seedcnn-infer') {
    const model = seedCnn({ channels: [32, 64] }).eval();
    const input = randn([256, 1, 28, 28]);
    runSteps(() => void noGrad(() => model.call(input)));
  } else {
    console.error(
      `step-profile: unknown --workload ${values.workload} (seedcnn-train, seedcnn-infer, resnet18-train or resnet18-infer)`,
    );
    process.exit(2);
  }

  function trainingStep(net: Module, x: Tensor, optimizer: Adam | SGD): () => void {
    net.train();
    const labels = new Int32Array(x.shape[0]!).map((_, i) => i % 10);
    return () => {
      const loss = crossEntropy(net.call(x), labels);
      optimizer.zeroGrad();
      loss.backward();
      optimizer.step();
    };
  }

  function runSteps(trainStep: () => void): void {
    for (let i = 0; i < 3; i++) trainStep();
    const steps = Number(values.steps);
    const stepTimes: number[] = [];
    const cpuStart = process.cpuUsage();
    for (step = 0; step < steps; step++) {
      const start = performance.now();
      trainStep();
      stepTimes.push(performance.now() - start);
    }
    const cpu = process.cpuUsage(cpuStart);
    step = -1;
    stepTimes.sort((a, b) => a - b);
    const rows = [...totals.entries()].map(([key, entry]) => ({
      key,
      mean: entry.milliseconds / steps,
      fastest: Math.min(...entry.perStep.filter((t) => t !== undefined)),
      calls: entry.calls / steps,
    }));
    rows.sort((a, b) => b.mean - a.mean);
    const kernelTotal = rows.reduce((sum, row) => sum + row.mean, 0);
    console.log(
      `${values.workload} on ${backend.name}: step fastest ${stepTimes[0]!.toFixed(1)} ms, median ` +
        `${stepTimes[steps >> 1]!.toFixed(1)} ms; kernels ${kernelTotal.toFixed(1)} ms a step ` +
        `(${values.cpu ? 'CPU' : 'wall'} time); process CPU ${((cpu.user + cpu.system) / 1000 / steps).toFixed(1)} ms a step`,
    );
    console.log('     mean  fastest  calls  kernel');
    for (const row of rows.slice(0, Number(values.top))) {
      console.log(
        `${row.mean.toFixed(2).padStart(9)}${row.fastest.toFixed(2).padStart(9)}${row.calls.toFixed(0).padStart(7)}  ${row.key}`,
      );
    }
  }
}

main();
