/**
 * `tensile experiment transfer`: does a pretrained network beat training from scratch on a small
 * labelled set, and which freezing strategy does best?
 *
 * Two transfer tasks, each at 10, 30 and 100 labelled examples per class, 5 seeds (the same seeds,
 * labelled subsets and initial head weights for every method, so each method is compared with
 * scratch seed by seed: paired t-test; accuracies are given as mean with a 95% t interval):
 * - fashion→digits: the committed seed CNN trained on Fashion-MNIST (pretrained/), fine-tuned on
 *   MNIST digits 0–9 (a different domain: clothing photos to handwriting);
 * - digits 0-4→5-9: a seed CNN trained here on MNIST digits 0–4, fine-tuned on digits 5–9 (the same
 *   domain, new classes). It takes about half a minute to train, so it is trained rather than committed.
 * Methods: training from scratch, the four strategies (headOnly, freezeEarly, fullLowLr,
 * gradualUnfreeze) and the fineTune recipe, all with AdamW, batch 10 and a cosine schedule over the
 * run; each method has one learning rate for all tasks and sizes (see `methods`).
 *
 * Evaluation never touches training data: MNIST's 10,000 digits are split once (fixed seed) into a
 * 1,000-digit test set (100 per class), a 200-digit validation set (20 per class, for the per-epoch
 * curves and epochs-to-target) and the pool the labelled subsets and the 0–4 pretraining come from.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { numberOption, parseArgs } from '../arguments.js';
import {
  AdamW,
  backendByName,
  classifierOutputs,
  evaluate,
  filterClasses,
  fit,
  getBackend,
  lineChart,
  loadMnist,
  loadPretrained,
  manualSeed,
  oneCycleSchedule,
  Random,
  randomShift,
  replaceHead,
  seedCnn,
  setBackend,
  subset,
  takePerClass,
  transferStrategies,
  writeFigure,
  writeFileAtomic,
  configFromOptions,
  defaultStoreUrl,
  type ImageDataset,
  type Callback,
  type History,
  type Module,
  type Series,
  type StrategyName,
} from '../../src/index.js';
import type { Experiment } from '../experiment.js';
import { recordExperiment, recordingHelp, recordingOptions } from './recording.js';
import {
  accuracyCell,
  formatPValue,
  mean,
  pairedTTest,
  quickNotice,
  tInterval,
} from '../../app/explain/index.js';

const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export const transferHelp = `usage: tensile experiment transfer [options]

Fine-tunes pretrained seed CNNs on 10/30/100 MNIST examples per class with each transfer strategy
and from scratch, 5 seeds each; writes a table (mean with 95% t interval over the seeds, and each
strategy against scratch by a paired t-test) and figures (SVG and PNG).

options:
  --out DIR            output directory (default out/transfer; out/transfer/quick with --quick)
  --pretrained FILE    the Fashion-MNIST model (default pretrained/seed-cnn-fashion-mnist.safetensors)
  --sizes A,B,C        labelled examples per class (default 10,30,100)
  --epochs A,B,C       epochs for each size (default 20,10,4: 200, 300 and 400 steps of batch 10 on 0–9)
  --pretrain-epochs N  epochs of the digits 0–4 pretraining (default 4; 2 with --quick)
  --seeds N            seeds per configuration (default 5; at least 2 for intervals)
  --target X           validation accuracy for the epochs-to-target column (default 0.8)
  --methods LIST       comma-separated subset of ${'scratch,headOnly,freezeEarly,fullLowLr,gradualUnfreeze,fineTune'}
  --tasks LIST         comma-separated subset of fashion,digits (default both)
  --backend NAME       reference, wasm or native (default: fastest available)
  --quick              2 seeds, sizes 10,30, half the epochs: a smoke run of a minute or two that
                       shows the pipeline works; written apart (out/transfer/quick) and labelled,
                       never read as the experiment's result
${recordingHelp(defaultStoreUrl)}`;

interface Method {
  name: StrategyName;
  label: string;
  /** Learning rate (of the head, for fineTune); one value for every task and size. */
  lr: number;
  note: string;
}

/**
 * The rates: 1e-2 was the best of {3e-3, 1e-2, 3e-2} for scratch on 10 digits per class; the
 * pretrained body keeps that rate when it trains (freezeEarly, gradualUnfreeze, fineTune's head), the
 * head alone takes a higher one, and fullLowLr is by definition a tenth of it.
 */
const methods: Method[] = [
  { name: 'scratch', label: 'from scratch', lr: 1e-2, note: 'random initialisation, everything trainable' },
  {
    name: 'headOnly',
    label: 'head only',
    lr: 5e-2,
    note: 'body frozen (batch norm in inference mode), new head trained',
  },
  { name: 'freezeEarly', label: 'freeze early', lr: 1e-2, note: 'first conv block (layers 0–6) frozen' },
  { name: 'fullLowLr', label: 'full, low lr', lr: 1e-3, note: 'everything trainable at a tenth of the rate' },
  {
    name: 'gradualUnfreeze',
    label: 'gradual unfreeze',
    lr: 1e-2,
    note: 'head, then + block 2, then + block 1, a third of the epochs each',
  },
  {
    name: 'fineTune',
    label: 'fineTune',
    lr: 1e-2,
    note: '1 head-only epoch, then all (head at lr/2) with rates decaying 2.6× per group',
  },
];

interface Task {
  key: 'fashion' | 'digits';
  title: string;
  classes: number[];
  /** Builds the pretrained model (once); `callbacks` go to the pretraining fit, if there is one. */
  pretrained: (callbacks: Callback[]) => { model: Module; description: string };
  /** Whether pretrained() trains (and so is recorded as a run). */
  trains: boolean;
}

interface Run {
  task: string;
  method: StrategyName;
  perClass: number;
  seed: number;
  testAccuracy: number;
  validationAccuracy: number[];
  epochsToTarget: number | null;
  seconds: number;
}

function list(value: string, name: string): number[] {
  const numbers = value.split(',').map(Number);
  if (numbers.some((n) => !Number.isFinite(n) || n <= 0))
    throw new Error(`--${name} must be positive numbers separated by commas, got '${value}'`);
  return numbers;
}

/** Copies a model: same architecture, the same weights and buffers. */
function copyModel(source: Module, build: () => Module): Module {
  const copy = build();
  copy.loadStateDict(source.stateDict());
  return copy;
}

/**
 * MNIST split once, with a fixed seed, per class: 100 test and 20 validation digits of every class,
 * the rest (8,800) the pool that labelled subsets and the 0–4 pretraining draw from.
 */
function splitMnist(mnist: ImageDataset): {
  pool: ImageDataset;
  validation: ImageDataset;
  test: ImageDataset;
} {
  const random = new Random(2024);
  const byClass: number[][] = Array.from({ length: mnist.classes }, () => []);
  for (let i = 0; i < mnist.count; i++) byClass[mnist.labels[i]!]!.push(i);
  const parts = { pool: [] as number[], validation: [] as number[], test: [] as number[] };
  for (const indices of byClass) {
    random.shuffle(indices);
    parts.test.push(...indices.slice(0, 100));
    parts.validation.push(...indices.slice(100, 120));
    parts.pool.push(...indices.slice(120));
  }
  const sorted = (indices: number[]) =>
    subset(
      mnist,
      indices.sort((a, b) => a - b),
    );
  return { pool: sorted(parts.pool), validation: sorted(parts.validation), test: sorted(parts.test) };
}

/** Places SVG documents side by side in one. */
function sideBySide(svgs: string[]): string {
  let x = 0;
  let height = 0;
  const inner = svgs.map((svg) => {
    const width = Number(/width="([\d.]+)"/.exec(svg)![1]);
    height = Math.max(height, Number(/height="([\d.]+)"/.exec(svg)![1]));
    const placed = svg.replace('<svg ', `<svg x="${x}" y="0" `);
    x += width;
    return placed;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${x}" height="${height}" viewBox="0 0 ${x} ${height}">\n${inner.join('\n')}</svg>\n`;
}

export async function runTransferExperiment(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      out: { type: 'string' },
      pretrained: { type: 'string' },
      sizes: { type: 'string' },
      epochs: { type: 'string' },
      seeds: { type: 'string' },
      'pretrain-epochs': { type: 'string' },
      target: { type: 'string', default: '0.8' },
      methods: { type: 'string' },
      tasks: { type: 'string', default: 'fashion,digits' },
      backend: { type: 'string' },
      quick: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
      ...recordingOptions,
    },
  });
  if (values.help) {
    console.log(transferHelp);
    return 0;
  }
  if (values.backend !== undefined) setBackend(backendByName(values.backend));
  const quick = values.quick!;
  const sizes = list(values.sizes ?? (quick ? '10,30' : '10,30,100'), 'sizes');
  const epochsBySize = list(values.epochs ?? (quick ? '10,5,2' : '20,10,4'), 'epochs');
  if (epochsBySize.length < sizes.length)
    throw new Error(`--epochs needs one value per size (${sizes.length}), got '${values.epochs}'`);
  const seedCount = numberOption(values.seeds ?? (quick ? '2' : '5'), 'seeds', {
    integer: true,
    minimum: 1,
  })!;
  const target = Number(values.target);
  const pretrainEpochs = numberOption(values['pretrain-epochs'] ?? (quick ? '2' : '4'), 'pretrain-epochs', {
    integer: true,
    minimum: 1,
  })!;
  const chosenMethods =
    values.methods === undefined
      ? methods
      : values.methods.split(',').map((name) => {
          const method = methods.find((m) => m.name === name);
          if (method === undefined)
            throw new Error(
              `--methods: unknown method '${name}'; expected some of ${methods.map((m) => m.name).join(', ')}`,
            );
          return method;
        });
  const pretrainedFile =
    values.pretrained ??
    [
      path.join(repositoryRoot, 'pretrained', 'seed-cnn-fashion-mnist.safetensors'),
      'pretrained/seed-cnn-fashion-mnist.safetensors',
    ].find((file) => fs.existsSync(file));
  if (pretrainedFile === undefined || !fs.existsSync(pretrainedFile))
    throw new Error(
      `the pretrained model is missing (${pretrainedFile ?? 'pretrained/seed-cnn-fashion-mnist.safetensors'}); pass --pretrained FILE`,
    );
  // A quick run is a smoke test: it goes to its own folder so it never replaces the experiment's
  // result (which tensile explain DL0005/DL0006 read from out/transfer).
  const outDirectory =
    values.out ?? (quick ? path.join('out', 'transfer', 'quick') : path.join('out', 'transfer'));
  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  const log = (line: string) => console.log(line);

  // One fixed split of MNIST for every run: test, validation and the pool of labelled examples.
  const { pool, validation, test } = splitMnist(loadMnist());
  log(
    `tensile experiment transfer: backend ${getBackend().name}; MNIST split ${pool.count} pool / ${validation.count} validation / ${test.count} test`,
  );

  const fashion = loadPretrained(pretrainedFile);
  const architecture = fashion.architecture;
  if (architecture.family !== 'seed-cnn')
    throw new Error(`${pretrainedFile}: expected a seed CNN, got a ${architecture.family}`);
  const channels = architecture.options.channels ?? [32, 64];

  const tasks: Task[] = [
    {
      key: 'fashion',
      title: 'Fashion-MNIST → digits 0–9',
      classes: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
      trains: false,
      pretrained: () => ({
        model: fashion.model,
        description: `${path.relative(process.cwd(), pretrainedFile)} (seed CNN ${channels.join('/')}, Fashion-MNIST test accuracy ${fashion.metadata.test_accuracy ?? '?'})`,
      }),
    },
    {
      key: 'digits',
      title: 'digits 0–4 → digits 5–9',
      classes: [5, 6, 7, 8, 9],
      trains: true,
      pretrained: (callbacks: Callback[]) => {
        // Pretrained here on the pool's digits 0–4, with tensile train's recipe.
        const low = filterClasses(pool, [0, 1, 2, 3, 4], { relabel: true });
        manualSeed(1);
        const model = seedCnn({ channels, classes: 5 });
        const epochs = pretrainEpochs;
        const t0 = performance.now();
        fit(model, low, {
          optimizer: new AdamW(model.parameters(), { lr: 5e-3, weightDecay: 1e-4 }),
          epochs,
          batchSize: 64,
          seed: 1,
          transforms: [randomShift(2)],
          schedule: oneCycleSchedule(epochs * Math.ceil(low.count / 64)),
          progress: false,
          callbacks,
        });
        const accuracy = evaluate(model, filterClasses(test, [0, 1, 2, 3, 4], { relabel: true })).accuracy;
        return {
          model,
          description: `seed CNN ${channels.join('/')} trained here on ${low.count} pool digits 0–4 for ${epochs} epochs (${((performance.now() - t0) / 1000).toFixed(0)} s), test accuracy on 0–4 ${(accuracy * 100).toFixed(1)}%`,
        };
      },
    },
  ].filter((task) => values.tasks!.split(',').includes(task.key)) as Task[];

  return recordExperiment(
    {
      experiment: 'transfer',
      storage: values.storage ?? defaultStoreUrl,
      track: !values['no-track'],
      config: configFromOptions(values, ['help', 'no-track', 'storage']),
    },
    async (recording) => {
      const runs: Run[] = [];
      const descriptions: string[] = [];
      for (const task of tasks) {
        const taskPool = filterClasses(pool, task.classes, { relabel: true });
        const taskValidation = filterClasses(validation, task.classes, { relabel: true });
        const taskTest = filterClasses(test, task.classes, { relabel: true });
        const pretrained = task.trains
          ? await recording.training(
              { name: `transfer ${task.key}: pretraining`, config: { task: task.key, pretraining: true } },
              (callbacks) => task.pretrained(callbacks),
            )
          : task.pretrained([]);
        descriptions.push(`${task.title}: ${pretrained.description}`);
        log(`\n${task.title}: pretrained ${pretrained.description}`);
        const build = () => seedCnn({ channels, classes: classifierOutputs(pretrained.model) });
        for (const [sizeIndex, perClass] of sizes.entries()) {
          const epochs = epochsBySize[sizeIndex]!;
          for (let seed = 1; seed <= seedCount; seed++) {
            const labelled = takePerClass(taskPool, perClass, new Random(1000 * seed + perClass));
            for (const method of chosenMethods) {
              manualSeed(seed);
              let model: Module;
              if (method.name === 'scratch') model = seedCnn({ channels, classes: task.classes.length });
              else {
                model = copyModel(pretrained.model, build);
                replaceHead(model, task.classes.length, { random: new Random(seed) });
              }
              const t0 = performance.now();
              const trainedModel = model;
              const history: History = await recording.training(
                {
                  name: `transfer ${task.key} ${method.name} ${perClass}/class seed ${seed}`,
                  config: { task: task.key, method: method.name, perClass, seed, lr: method.lr, epochs },
                },
                (callbacks) =>
                  transferStrategies[method.name](trainedModel, labelled, {
                    // fineTune's epochs count the unfrozen phase after its 1-epoch warm-up: the same total.
                    epochs: method.name === 'fineTune' ? Math.max(1, epochs - 1) : epochs,
                    lr: method.lr,
                    batchSize: 10,
                    seed,
                    validationData: taskValidation,
                    progress: false,
                    callbacks,
                  }),
              );
              const seconds = (performance.now() - t0) / 1000;
              const curve = history.epochs.map((logs) => logs.validationAccuracy ?? Number.NaN);
              const reached = curve.findIndex((accuracy) => accuracy >= target);
              const run: Run = {
                task: task.key,
                method: method.name,
                perClass,
                seed,
                testAccuracy: evaluate(model, taskTest).accuracy,
                validationAccuracy: curve,
                epochsToTarget: reached < 0 ? null : reached + 1,
                seconds,
              };
              runs.push(run);
              log(
                `  ${String(perClass).padStart(3)}/class seed ${seed} ${method.label.padEnd(16)} test ${(run.testAccuracy * 100).toFixed(1).padStart(5)}%` +
                  `  epochs to ${(target * 100).toFixed(0)}%: ${run.epochsToTarget === null ? '-' : run.epochsToTarget}  (${seconds.toFixed(1)} s)`,
              );
            }
          }
        }
      }

      // Tables: test accuracy, mean ± half-width of the 95% t interval over the seeds; each method
      // against scratch (paired t-test over the seeds); epochs to reach the target validation accuracy.
      const lines: string[] = [];
      const accuracies = (selected: Run[]) => selected.map((run) => run.testAccuracy);
      const cell = (selected: Run[]) => accuracyCell(tInterval(accuracies(selected)));
      const epochsCell = (selected: Run[]) => {
        const reached = selected
          .filter((run) => run.epochsToTarget !== null)
          .map((run) => run.epochsToTarget!);
        if (reached.length === 0) return '–';
        return `${mean(reached).toFixed(1)}${reached.length < selected.length ? ` (${reached.length}/${selected.length})` : ''}`;
      };
      /** Runs of one task, method and size, in seed order (so arms pair up seed by seed). */
      const selectedRuns = (task: Task, name: StrategyName, size: number) =>
        runs
          .filter((run) => run.task === task.key && run.method === name && run.perClass === size)
          .sort((a, b) => a.seed - b.seed);
      const comparisons: {
        task: string;
        method: StrategyName;
        perClass: number;
        difference: number;
        lower: number;
        upper: number;
        pValue: number;
      }[] = [];
      for (const task of tasks) {
        const header = `| method | ${sizes.map((size, i) => `${size}/class (${epochsBySize[i]} ep)`).join(' | ')} | ${sizes.map((size) => `epochs to ${(target * 100).toFixed(0)}% at ${size}/class`).join(' | ')} |`;
        lines.push(
          `### ${task.title}${quick ? ' (QUICK RUN: not a result)' : ''}`,
          '',
          `Test accuracy (%) on ${task.classes.length * 100} held-out digits, mean ± half-width of the 95% Student t interval over ${seedCount} seed${seedCount > 1 ? 's' : ''}; epochs until the validation accuracy first reaches ${(target * 100).toFixed(0)}% (mean over the seeds that reach it; – none did).`,
          '',
          header,
          `|${'---|'.repeat(1 + 2 * sizes.length)}`,
        );
        for (const method of chosenMethods) {
          lines.push(
            `| ${method.label} | ${sizes.map((size) => cell(selectedRuns(task, method.name, size))).join(' | ')} | ${sizes.map((size) => epochsCell(selectedRuns(task, method.name, size))).join(' | ')} |`,
          );
        }
        lines.push('');
        const baseline = chosenMethods.find((method) => method.name === 'scratch');
        if (baseline === undefined || seedCount < 2) continue;
        lines.push(
          `Against training from scratch: difference in test accuracy (points), mean with its 95% t interval and the paired t-test's p over the ${seedCount} seeds (same labelled examples and seed for both arms).`,
          '',
          `| method | ${sizes.map((size) => `${size}/class`).join(' | ')} |`,
          `|${'---|'.repeat(1 + sizes.length)}`,
        );
        for (const method of chosenMethods) {
          if (method.name === 'scratch') continue;
          const cells = sizes.map((size) => {
            const test = pairedTTest(
              accuracies(selectedRuns(task, method.name, size)),
              accuracies(selectedRuns(task, 'scratch', size)),
            );
            comparisons.push({
              task: task.key,
              method: method.name,
              perClass: size,
              difference: test.difference.mean,
              lower: test.difference.lower,
              upper: test.difference.upper,
              pValue: test.pValue,
            });
            const found = test.pValue < 0.05 ? (test.difference.mean > 0 ? ' better' : ' worse') : '';
            return `${accuracyCell(test.difference)} (p ${formatPValue(test.pValue).replace(/^(?!<)/, '= ')})${quick ? '' : found}`;
          });
          lines.push(`| ${method.label} | ${cells.join(' | ')} |`);
        }
        lines.push('');
      }
      const methodLines = chosenMethods.map((method) => `- ${method.label}: lr ${method.lr}; ${method.note}`);
      const totalSeconds = (performance.now() - started) / 1000;
      const cpu = process.cpuUsage(cpuStarted);
      const cpuSeconds = (cpu.user + cpu.system) / 1e6;
      const runSeconds = (name: StrategyName) =>
        mean(runs.filter((run) => run.method === name).map((run) => run.seconds));
      const markdown = [
        `## Transfer experiment${quick ? ' (QUICK RUN)' : ''}`,
        '',
        ...(quick ? [`${quickNotice}`, ''] : []),
        ...descriptions.map((d) => `- ${d}`),
        `- AdamW, batch 10, cosine schedule; ${sizes.map((s, i) => `${epochsBySize[i]} epochs at ${s}/class`).join(', ')}; backend ${getBackend().name}; ${totalSeconds.toFixed(0)} s in all (${cpuSeconds.toFixed(0)} s of CPU time)`,
        ...methodLines,
        '',
        ...lines,
        `Mean seconds per run (all sizes): ${chosenMethods.map((m) => `${m.label} ${runSeconds(m.name).toFixed(1)}`).join(', ')}.`,
        '',
      ].join('\n');

      fs.mkdirSync(outDirectory, { recursive: true });
      const tablePath = path.join(outDirectory, 'table.md');
      const resultsPath = path.join(outDirectory, 'results.json');
      writeFileAtomic(tablePath, new TextEncoder().encode(markdown));
      writeFileAtomic(
        resultsPath,
        new TextEncoder().encode(
          JSON.stringify(
            {
              quick,
              sizes,
              epochs: epochsBySize,
              seeds: seedCount,
              target,
              methods: chosenMethods,
              runs,
              againstScratch: comparisons,
            },
            null,
            1,
          ),
        ),
      );

      // Figures: accuracy against examples per class; validation accuracy against epoch (smallest size).
      const accuracyPanels = tasks.map((task) =>
        lineChart({
          title: `${task.title}${quick ? ' (quick run)' : ''}: mean, 95% interval`,
          xLabel: 'labelled examples per class',
          yLabel: 'test accuracy (%)',
          xScale: 'log',
          width: 600,
          series: chosenMethods.map((method): Series => {
            const per = sizes.map((size) =>
              runs
                .filter((run) => run.task === task.key && run.method === method.name && run.perClass === size)
                .map((run) => run.testAccuracy * 100),
            );
            // Error bars: half-width of the 95% t interval over the seeds (none for a single seed).
            const error = per.map((values) => tInterval(values).halfWidth);
            return {
              name: method.label,
              x: sizes,
              y: per.map(mean),
              error: error.map((halfWidth) => (Number.isFinite(halfWidth) ? halfWidth : 0)),
            };
          }),
        }),
      );
      const curvePanels = tasks.map((task) =>
        lineChart({
          title: `${task.title}, ${sizes[0]}/class`,
          xLabel: 'epoch',
          yLabel: `validation accuracy (%), mean of ${seedCount} seeds`,
          width: 600,
          series: chosenMethods.map((method): Series => {
            const curves = runs
              .filter(
                (run) => run.task === task.key && run.method === method.name && run.perClass === sizes[0],
              )
              .map((run) => run.validationAccuracy);
            const epochs = curves[0]?.length ?? 0;
            return {
              name: method.label,
              x: Array.from({ length: epochs }, (_, e) => e + 1),
              y: Array.from({ length: epochs }, (_, e) => mean(curves.map((curve) => curve[e]! * 100))),
            };
          }),
        }),
      );
      const accuracyFigure = writeFigure(
        sideBySide(accuracyPanels),
        path.join(outDirectory, 'accuracy-vs-examples'),
      );
      const curveFigure = writeFigure(sideBySide(curvePanels), path.join(outDirectory, 'validation-curves'));

      console.log(`\n${lines.join('\n')}`);
      console.log(
        `wrote ${tablePath}\nwrote ${resultsPath}\nwrote ${accuracyFigure.svg} and ${accuracyFigure.png}\nwrote ${curveFigure.svg} and ${curveFigure.png}`,
      );
      console.log(`total ${totalSeconds.toFixed(0)} s (${cpuSeconds.toFixed(0)} s of CPU time)`);
      await recording.results(
        {
          quick,
          seconds: Number(totalSeconds.toFixed(1)),
          trainings: runs.length,
          seeds: seedCount,
          meanTestAccuracy: Object.fromEntries(
            chosenMethods.map((method) => [
              method.name,
              mean(runs.filter((run) => run.method === method.name).map((run) => run.testAccuracy)),
            ]),
          ),
        },
        [accuracyFigure.svg, curveFigure.svg],
      );
      return 0;
    },
  );
}

export const transferExperiment: Experiment = {
  name: 'transfer',
  summary: 'pretrained seed CNNs fine-tuned on few MNIST digits: four strategies and fineTune vs scratch',
  run: runTransferExperiment,
};
