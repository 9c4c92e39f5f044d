/**
 * node dist/bench/transfer.js [--steps N] [--backend NAME] [--json]
 *
 * What freezing saves per training step. A frozen prefix of the network runs forward only: no
 * backward kernel touches it (test/transfer-freeze.test.ts counts them), and the optimizer skips
 * its parameters. Timed per step (forward, backward, AdamW step) on random data:
 *   seed CNN 32/64, batch 64, 1×28×28: nothing frozen; block 1 frozen (layers 0–6); blocks 1–2
 *     frozen (head only); the same with batch norm kept trainable (fastai's train_bn), which makes the
 *     backward pass run through the whole body again; and an inference-mode forward as the floor.
 *   ResNet-18 layout at widths 16–128, batch 32, 3×64×64: nothing frozen, stem + layer1 frozen, all
 *     but the head frozen.
 * Figures are the median and the fastest of N timed steps after 3 warm-up steps (the machines are
 * shared: other processes only ever add time, so the fastest is the steadier number).
 */
import { parseArgs } from 'node:util';
import {
  AdamW,
  backendByName,
  crossEntropy,
  freeze,
  getBackend,
  manualSeed,
  type Module,
  noGrad,
  randn,
  resnet,
  seedCnn,
  setBackend,
  type Tensor,
  unfreeze,
} from '../src/index.js';

interface Row {
  model: string;
  configuration: string;
  trainableParameters: number;
  medianMilliseconds: number;
  fastestMilliseconds: number;
  samplesPerSecond: number;
}

function timeSteps(step: () => void, steps: number): { median: number; fastest: number } {
  for (let i = 0; i < 3; i++) step();
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const start = performance.now();
    step();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return { median: times[Math.floor(times.length / 2)]!, fastest: times[0]! };
}

function trainingStep(model: Module, input: Tensor, classes: number): () => void {
  const labels = new Int32Array(input.shape[0]!).map((_, i) => i % classes);
  const optimizer = new AdamW(model.parameters(), { lr: 1e-3 });
  return () => {
    model.train();
    const loss = crossEntropy(model.call(input), labels);
    optimizer.zeroGrad();
    loss.backward();
    optimizer.step();
  };
}

function main(): void {
  const { values } = parseArgs({
    options: {
      steps: { type: 'string', default: '20' },
      backend: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  if (values.backend !== undefined) setBackend(backendByName(values.backend));
  const steps = Number(values.steps);
  const rows: Row[] = [];
  const measure = (name: string, configuration: string, model: Module, input: Tensor, step: () => void) => {
    const { median, fastest } = timeSteps(step, steps);
    const trainable = model
      .parameters()
      .filter((p) => p.requiresGrad)
      .reduce((sum, p) => sum + p.size, 0);
    rows.push({
      model: name,
      configuration,
      trainableParameters: trainable,
      medianMilliseconds: median,
      fastestMilliseconds: fastest,
      samplesPerSecond: (input.shape[0]! * 1000) / median,
    });
    if (!values.json) console.error(`  ${name} ${configuration}: ${median.toFixed(1)} ms`);
  };

  manualSeed(1);
  const cnn = seedCnn({ channels: [32, 64] });
  const cnnInput = randn([64, 1, 28, 28]);
  const cnnSetups: [string, () => void][] = [
    ['nothing frozen', () => unfreeze(cnn)],
    ['block 1 frozen', () => (unfreeze(cnn), freeze(cnn, { firstGroups: 1 }))],
    ['head only (blocks 1–2 frozen)', () => (unfreeze(cnn), freeze(cnn, { firstGroups: 2 }))],
    [
      'head only, batch norm trainable',
      () => (unfreeze(cnn), freeze(cnn, { firstGroups: 2 }, { batchNorm: 'trainable' })),
    ],
  ];
  for (const [configuration, setUp] of cnnSetups) {
    setUp();
    measure('seed CNN 32/64, batch 64', configuration, cnn, cnnInput, trainingStep(cnn, cnnInput, 10));
  }
  unfreeze(cnn);
  measure('seed CNN 32/64, batch 64', 'forward only (inference)', cnn, cnnInput, () =>
    noGrad(() => cnn.eval().call(cnnInput)),
  );

  manualSeed(2);
  const net = resnet({ layers: [2, 2, 2, 2], widths: [16, 32, 64, 128], classes: 10 });
  const netInput = randn([32, 3, 64, 64]);
  const netSetups: [string, () => void][] = [
    ['nothing frozen', () => unfreeze(net)],
    ['stem + layer1 frozen', () => (unfreeze(net), freeze(net, { firstGroups: 2 }))],
    ['head only', () => (unfreeze(net), freeze(net, { firstGroups: 5 }))],
  ];
  for (const [configuration, setUp] of netSetups) {
    setUp();
    measure(
      'ResNet-18 widths 16–128, batch 32',
      configuration,
      net,
      netInput,
      trainingStep(net, netInput, 10),
    );
  }

  if (values.json) {
    console.log(JSON.stringify({ backend: getBackend().name, steps, rows }, null, 1));
    return;
  }
  console.log(
    `\nTraining step time with frozen parts (backend ${getBackend().name}, median of ${steps} steps)\n`,
  );
  const header = [
    'model',
    'configuration',
    'trainable',
    'ms/step',
    'fastest',
    'samples/s',
    'vs nothing frozen',
  ];
  const body = rows.map((row) => {
    const baseline = rows.find((r) => r.model === row.model && r.configuration === 'nothing frozen')!;
    return [
      row.model,
      row.configuration,
      row.trainableParameters.toLocaleString('en-US'),
      row.medianMilliseconds.toFixed(1),
      row.fastestMilliseconds.toFixed(1),
      row.samplesPerSecond.toFixed(0),
      row === baseline
        ? ''
        : `${((1 - row.medianMilliseconds / baseline.medianMilliseconds) * 100).toFixed(0)}% less time`,
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((cells) => cells[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  console.log([line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n'));
}

main();
