/**
 * DL0005 Transfer learning and DL0006 Layer freezing, measured with tensile's transfer strategies
 * (src/transfer): a seed CNN pretrained on MNIST digits 0–4 is reused for digits 5–9 with few
 * examples per class.
 *
 * - DL0006 compares the freezing strategies of the note (head only, early layers frozen, everything
 *   at a low rate, gradual unfreezing) and the fine-tuning recipe against training from scratch.
 * - DL0005 compares fine-tuning with training from scratch as the target data grows, and how fast
 *   each converges.
 *
 * The pretrained weights are written once to the explain cache folder and shared by both topics.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ImageDataset } from '../../data/dataset.js';
import { loadWeights, saveWeights } from '../../io/weights.js';
import { seedCnn } from '../../models/seed-cnn.js';
import { manualSeed } from '../../nn/init.js';
import type { Module } from '../../nn/module.js';
import { barChart, lineChart } from '../../plot/charts.js';
import { Random } from '../../tensor/random.js';
import { RunTracker } from '../../track/tracker.js';
import { evaluate, type History } from '../../train/fit.js';
import { replaceHead } from '../../transfer/head.js';
import { transferStrategies, type StrategyName, type TransferOptions } from '../../transfer/strategies.js';
import { count, mnistSplit, percent, recordedTraining } from '../common.js';
import type { ExplainContext, Topic } from '../types.js';
import { takePerClass } from '../../data/dataset.js';

const channels = [8, 16] as const;
const sourceClasses = [0, 1, 2, 3, 4];
const targetClasses = [5, 6, 7, 8, 9];

/** The source model: trained on digits 0–4, or loaded from the cache folder when an earlier topic trained it. */
async function pretrainedWeights(context: ExplainContext): Promise<string> {
  const file = path.join(
    context.cacheDirectory,
    `seed-cnn-${channels.join('-')}-digits-0-4${context.quick ? '-quick' : ''}.safetensors`,
  );
  if (fs.existsSync(file)) return file;
  const trainCount = context.quick ? 300 : 4000;
  const epochs = context.quick ? 1 : 4;
  context.log(
    `  pretraining the seed CNN (${channels.join(', ')} channels) on ${trainCount} digits 0–4, ${epochs} epochs`,
  );
  const { train, test } = mnistSplit(trainCount, 500, { classes: sourceClasses, seed: 5 });
  manualSeed(5);
  const model = seedCnn({ channels, classes: sourceClasses.length });
  const result = await recordedTraining(context, {
    name: 'pretraining on digits 0–4',
    model,
    train,
    test,
    epochs,
    lr: 3e-3,
    config: { task: 'digits 0-4', channels: [...channels] },
  });
  fs.mkdirSync(path.dirname(file), { recursive: true });
  saveWeights(model, file, { task: 'MNIST digits 0-4', test_accuracy: result.testAccuracy.toFixed(4) });
  return file;
}

/** The target task: digits 5–9 as classes 0–4, a few examples per class, and a held-out test set. */
function targetData(perClass: number, testCount: number): { train: ImageDataset; test: ImageDataset } {
  const { train, test } = mnistSplit(5 * 200, testCount, { classes: targetClasses, seed: 6 });
  return { train: takePerClass(train, perClass, new Random(perClass)), test };
}

/** A model for the target task: the pretrained body with a new 5-class head, or a fresh network. */
function targetModel(weights: string | null): Module {
  manualSeed(6);
  const model = seedCnn({ channels, classes: sourceClasses.length });
  if (weights !== null) {
    loadWeights(model, weights);
    replaceHead(model, targetClasses.length);
  }
  return model;
}

interface StrategyResult {
  name: StrategyName;
  accuracy: number;
  curve: number[];
  trainable: number;
  seconds: number;
}

/** One strategy, recorded as a child run (fine-tuning's two phases in one run). */
async function runStrategy(
  context: ExplainContext,
  name: StrategyName,
  weights: string | null,
  data: { train: ImageDataset; test: ImageDataset },
  epochs: number,
  label: string,
): Promise<StrategyResult> {
  const model = targetModel(name === 'scratch' ? null : weights);
  const tracker = await RunTracker.start(context.store, {
    name: label,
    kind: 'finetune',
    parentId: context.runId,
    finishOnFitEnd: false,
    config: { strategy: name, pretrained: name !== 'scratch', trainSamples: data.train.count, epochs },
  });
  const started = performance.now();
  let history: History;
  const options: TransferOptions = {
    epochs,
    seed: 6,
    progress: false,
    validationData: data.test,
    callbacks: [tracker],
    ...(name === 'scratch' ? { lr: 3e-3 } : {}),
  };
  try {
    history = transferStrategies[name](model, data.train, options);
  } catch (error) {
    await tracker.fail(error);
    await tracker.close();
    throw error;
  }
  const trainable = model
    .parameters()
    .filter((p) => p.requiresGrad)
    .reduce((sum, p) => sum + p.size, 0);
  const accuracy = evaluate(model, data.test).accuracy;
  tracker.updateSummary({ testAccuracy: accuracy });
  await tracker.finish('complete');
  await tracker.close();
  const seconds = (performance.now() - started) / 1000;
  context.log(`  ${label}: test accuracy ${percent(accuracy)} (${seconds.toFixed(0)} s)`);
  return {
    name,
    accuracy,
    curve: history.epochs.map((e) => e.validationAccuracy ?? Number.NaN),
    trainable,
    seconds,
  };
}

const strategyLabels: Record<StrategyName, string> = {
  headOnly: 'freeze all but the head',
  freezeEarly: 'freeze the first block',
  fullLowLr: 'everything, low learning rate',
  gradualUnfreeze: 'gradual unfreezing',
  fineTune: 'fine-tune (frozen warm-up, then discriminative rates)',
  scratch: 'from scratch (no transfer)',
};

export const freezingTopic: Topic = {
  id: 'DL0006',
  aliases: ['freezing', 'freeze', 'layer-freeze'],
  title: 'Layer freezing in transfer learning',
  version: 1,
  async run(context) {
    const weights = await pretrainedWeights(context);
    const perClass = context.quick ? 10 : 20;
    const epochs = context.quick ? 2 : 10;
    const data = targetData(perClass, context.quick ? 300 : 500);
    context.log(
      `DL0006: each strategy on ${data.train.count} images of digits 5–9 (${perClass} per class), ${epochs} epochs`,
    );
    const names: StrategyName[] = context.quick
      ? ['headOnly', 'scratch']
      : ['headOnly', 'freezeEarly', 'fullLowLr', 'gradualUnfreeze', 'fineTune', 'scratch'];
    const results: StrategyResult[] = [];
    for (const name of names)
      results.push(await runStrategy(context, name, weights, data, epochs, strategyLabels[name]));
    const scratch = results.find((r) => r.name === 'scratch')!;
    const ranked = results.filter((r) => r.name !== 'scratch').sort((a, b) => b.accuracy - a.accuracy);
    const bestStrategy = ranked[0]!;
    const worstStrategy = ranked.at(-1)!;
    const total = results.find((r) => r.name === 'scratch')!.trainable;
    const head = results.find((r) => r.name === 'headOnly');

    const curveFigure = lineChart({
      title: `Digits 5–9 from a model pretrained on 0–4, ${data.train.count} training images`,
      xLabel: 'epoch',
      yLabel: 'validation accuracy (%)',
      series: results.map((r) => ({
        name: strategyLabels[r.name],
        x: r.curve.map((_, i) => i + 1),
        y: r.curve.map((a) => a * 100),
      })),
      yRange: [0, 100],
      width: 860,
    });
    const barFigure = barChart({
      title: 'Test accuracy by freezing strategy',
      yLabel: 'test accuracy (%)',
      categories: results.map((r) => r.name),
      groups: [
        {
          name: 'test accuracy after the last epoch',
          values: results.map((r) => Number((r.accuracy * 100).toFixed(1))),
        },
      ],
      width: 860,
    });
    const beatsScratch = ranked.filter((r) => r.accuracy > scratch.accuracy + 0.01).length;
    return {
      title: freezingTopic.title,
      question: 'What are the common strategies for layer freezing in transfer learning?',
      text: [
        'Freezing a layer means not updating its weights (tensile: requiresGrad false, and its batch norms kept in inference mode by default) while the rest trains. The strategies differ in how much of the pretrained network is allowed to change: only the new head; everything but the first blocks, which hold the most general features (strokes, edges); everything, but slowly; or the head first and then one block group after another from the top (gradual unfreezing).',
        `Measured with tensile's own strategies (src/transfer): a seed CNN (${channels.join(' and ')} channels) pretrained on MNIST digits 0–4 learns digits 5–9 from ${perClass} examples per class (${data.train.count} images, ${epochs} epochs, ${data.test.count} test images). ${beatsScratch === ranked.length ? 'Every strategy beat training from scratch' : `${beatsScratch} of ${ranked.length} strategies beat training from scratch`} (${percent(scratch.accuracy)}); the best was ${strategyLabels[bestStrategy.name]} with ${percent(bestStrategy.accuracy)}, the weakest ${strategyLabels[worstStrategy.name]} with ${percent(worstStrategy.accuracy)}.`,
        head === undefined
          ? ''
          : `Freezing all but the head trains ${count(head.trainable)} of ${count(total)} parameters and reached ${percent(head.accuracy)}: the note's "good starting point for similar tasks and small datasets" holds when the source features fit the new classes, and is the cheapest since no gradient flows into the body.`,
        'The ranking depends on how related the tasks are and how much target data there is: with digits 5–9 after 0–4 the source features are close to what the target needs. Rerun with --fresh after changing the data to see it move.',
      ].filter((p) => p.length > 0),
      tables: [
        {
          title: `Digits 5–9 with ${perClass} examples per class, from a model pretrained on digits 0–4`,
          columns: ['strategy', 'trainable parameters at the end', 'test accuracy', 'time'],
          rows: results.map((r) => [
            strategyLabels[r.name],
            count(r.trainable),
            percent(r.accuracy),
            `${r.seconds.toFixed(0)} s`,
          ]),
        },
      ],
      figures: [
        { name: 'freezing-curves', svg: curveFigure },
        { name: 'freezing-accuracy', svg: barFigure },
      ],
      numbers: {
        perClass,
        epochs,
        strategies: results.map((r) => ({
          strategy: r.name,
          testAccuracy: r.accuracy,
          trainableParameters: r.trainable,
          seconds: r.seconds,
        })),
      },
    };
  },
};

export const transferTopic: Topic = {
  id: 'DL0005',
  aliases: ['transfer', 'transfer-learning'],
  title: 'Transfer learning against training from scratch',
  version: 1,
  async run(context) {
    const weights = await pretrainedWeights(context);
    const sizes = context.quick ? [5, 10] : [5, 20, 100];
    const epochs = context.quick ? 2 : 10;
    const testCount = context.quick ? 300 : 500;
    context.log(
      `DL0005: fine-tuning against training from scratch with ${sizes.join(', ')} examples per class, ${epochs} epochs`,
    );
    const rows = [];
    for (const perClass of sizes) {
      const data = targetData(perClass, testCount);
      const tuned = await runStrategy(
        context,
        'fineTune',
        weights,
        data,
        epochs,
        `fine-tuned, ${perClass} per class`,
      );
      const scratch = await runStrategy(
        context,
        'scratch',
        weights,
        data,
        epochs,
        `from scratch, ${perClass} per class`,
      );
      rows.push({ perClass, images: data.train.count, tuned, scratch });
    }
    const sizeFigure = lineChart({
      title: 'Digits 5–9: test accuracy against training examples per class',
      xLabel: 'training examples per class',
      yLabel: 'test accuracy (%)',
      xScale: 'log',
      series: [
        {
          name: 'fine-tuned from digits 0–4',
          x: rows.map((r) => r.perClass),
          y: rows.map((r) => r.tuned.accuracy * 100),
        },
        {
          name: 'trained from scratch',
          x: rows.map((r) => r.perClass),
          y: rows.map((r) => r.scratch.accuracy * 100),
        },
      ],
      yRange: [0, 100],
    });
    const middle = rows[Math.min(1, rows.length - 1)]!;
    const curveFigure = lineChart({
      title: `Convergence with ${middle.perClass} examples per class`,
      xLabel: 'epoch',
      yLabel: 'validation accuracy (%)',
      series: [
        {
          name: 'fine-tuned',
          x: middle.tuned.curve.map((_, i) => i + 1),
          y: middle.tuned.curve.map((a) => a * 100),
        },
        {
          name: 'from scratch',
          x: middle.scratch.curve.map((_, i) => i + 1),
          y: middle.scratch.curve.map((a) => a * 100),
        },
      ],
      yRange: [0, 100],
    });
    const first = rows[0]!;
    const last = rows.at(-1)!;
    const gapFirst = (first.tuned.accuracy - first.scratch.accuracy) * 100;
    const gapLast = (last.tuned.accuracy - last.scratch.accuracy) * 100;
    const target = Math.max(0.5, middle.scratch.accuracy);
    const reach = (curve: number[]) => curve.findIndex((a) => a >= target - 1e-9) + 1;
    const tunedReach = reach(middle.tuned.curve);
    const scratchReach = reach(middle.scratch.curve);
    return {
      title: transferTopic.title,
      question: 'Why use transfer learning instead of training from scratch?',
      text: [
        'Transfer learning starts a new task from a network trained on a related one, so the early layers arrive already detecting useful features and only the task-specific part has much to learn.',
        `Measured with tensile: a seed CNN (${channels.join(' and ')} channels) pretrained on MNIST digits 0–4, fine-tuned on digits 5–9 (one frozen warm-up epoch for the new head, then everything with smaller rates for lower blocks), against the same network trained from scratch, ${epochs} epochs each, with ${sizes.join(', ')} examples per class. With ${first.perClass} per class fine-tuning reached ${percent(first.tuned.accuracy)} against ${percent(first.scratch.accuracy)} from scratch (${gapFirst >= 0 ? '+' : ''}${gapFirst.toFixed(1)} points); with ${last.perClass} per class, ${percent(last.tuned.accuracy)} against ${percent(last.scratch.accuracy)} (${gapLast >= 0 ? '+' : ''}${gapLast.toFixed(1)} points).`,
        gapFirst > gapLast
          ? 'The advantage is largest when data is scarce and shrinks as data grows, as the note says: with enough examples the network can learn the features itself.'
          : 'Here the advantage did not shrink with more data, which the note would not predict; with only 10 epochs the run from scratch may simply not have converged yet.',
        tunedReach > 0 && (scratchReach === 0 || tunedReach < scratchReach)
          ? `Faster convergence: with ${middle.perClass} per class the fine-tuned network reached the accuracy the scratch network ended with (${percent(target)}) after ${tunedReach} epoch${tunedReach > 1 ? 's' : ''}${scratchReach > 0 ? `, the scratch network after ${scratchReach}` : ''}.`
          : `Convergence: with ${middle.perClass} per class the fine-tuned network did not get to the scratch network's final accuracy sooner in this run.`,
      ],
      tables: [
        {
          title: 'Digits 5–9: test accuracy after fine-tuning and from scratch',
          columns: ['examples per class', 'training images', 'fine-tuned', 'from scratch', 'difference'],
          rows: rows.map((r) => [
            String(r.perClass),
            String(r.images),
            percent(r.tuned.accuracy),
            percent(r.scratch.accuracy),
            `${((r.tuned.accuracy - r.scratch.accuracy) * 100).toFixed(1)} points`,
          ]),
        },
      ],
      figures: [
        { name: 'transfer-data-size', svg: sizeFigure },
        { name: 'transfer-convergence', svg: curveFigure },
      ],
      numbers: {
        epochs,
        sizes: rows.map((r) => ({
          perClass: r.perClass,
          fineTuned: r.tuned.accuracy,
          scratch: r.scratch.accuracy,
        })),
      },
    };
  },
};
