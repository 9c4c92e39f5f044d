/**
 * The learning-rate finder (Smith's LR range test, as fastai's lr_find runs it): train for a few
 * hundred batches while the rate grows exponentially from tiny to huge, smooth the losses, and
 * suggest a rate where the loss was still falling fast. The model, the optimizer and the global
 * generator are put back bit-for-bit afterwards, so the finder can run right before the real fit.
 */
import type { Data } from '../backend/types.js';
import { defaultRandom } from '../nn/init.js';
import type { Module } from '../nn/module.js';
import type { Optimizer } from '../optim/optimizer.js';
import type { Example } from '../data/protocol.js';
import type { Callback, TrainingControl } from './callbacks.js';
import type { TrainingEvent } from './events.js';
import { fit, type FitData, type FitOptions } from './fit.js';

export interface LearningRateFinderOptions<Sample = Example> extends Pick<
  FitOptions<Sample>,
  | 'batchSize'
  | 'loss'
  | 'collate'
  | 'transforms'
  | 'clipGradientNorm'
  | 'clipGradientValue'
  | 'allowNonFiniteInputs'
> {
  optimizer: Optimizer;
  /** First rate of the sweep (default 1e-7). */
  startLr?: number;
  /** Last rate (default 10). */
  endLr?: number;
  /**
   * Batches in the sweep (default 200; fastai's 100 spans the 8 decades in steps of 20%, so the
   * smoothing's lag of about 50 batches shifts the curve by a larger factor); fewer when the loss
   * diverges first.
   */
  iterations?: number;
  /** Weight of the past in the loss's moving average, debiased (default 0.98). */
  smoothing?: number;
  /** Stop once the smoothed loss exceeds this many times its minimum (default 4; Infinity never). */
  divergeFactor?: number;
  /** Seeds the batch order (default 0). */
  seed?: number;
}

/** A point of the sweep. */
export interface LearningRatePoint {
  index: number;
  learningRate: number;
  /** The smoothed loss there. */
  loss: number;
}

export interface LearningRateFinderResult {
  /** The rate of each batch. */
  learningRates: number[];
  /** Each batch's loss, smoothed (exponential moving average, debiased). */
  losses: number[];
  /** Each batch's loss as measured. */
  rawLosses: number[];
  /** Where the smoothed loss falls fastest per unit of log rate. */
  steepest: LearningRatePoint;
  /** Midway down the longest run over which the loss keeps falling (fastai's default suggestion). */
  valley: LearningRatePoint;
  /** The suggested rate: the valley's, which is less sensitive to one noisy slope than the steepest point. */
  suggestion: number;
  /** Why the sweep ended. */
  stoppedBy: 'iterations' | 'divergence' | 'non-finite loss';
}

/** Records the sweep and sets each batch's rate; leaves the run when done or diverged. */
class RangeTest implements Callback {
  readonly learningRates: number[] = [];
  readonly losses: number[] = [];
  readonly rawLosses: number[] = [];
  stoppedBy: LearningRateFinderResult['stoppedBy'] = 'iterations';
  private average = 0;
  private best = Infinity;
  private rate = 0;

  constructor(
    private readonly startLr: number,
    private readonly endLr: number,
    private readonly iterations: number,
    private readonly smoothing: number,
    private readonly divergeFactor: number,
  ) {}

  handle(event: TrainingEvent, control: TrainingControl): void {
    const done = this.rawLosses.length;
    if (event.type === 'batchStart') {
      const fraction = this.iterations === 1 ? 0 : done / (this.iterations - 1);
      this.rate = this.startLr * (this.endLr / this.startLr) ** fraction;
      // One rate for every group: the sweep measures the rate, not the ratios between groups.
      for (const group of control.optimizer.groups) group.settings.lr = this.rate;
    } else if (event.type === 'batchSkipped') {
      this.stoppedBy = 'non-finite loss';
      control.stopAfterBatch('the loss went non-finite');
    } else if (event.type === 'batchEnd') {
      this.average = this.smoothing * this.average + (1 - this.smoothing) * event.loss;
      const smoothed = this.average / (1 - this.smoothing ** (done + 1));
      this.learningRates.push(this.rate);
      this.rawLosses.push(event.loss);
      this.losses.push(smoothed);
      this.best = Math.min(this.best, smoothed);
      if (smoothed > this.divergeFactor * this.best) {
        this.stoppedBy = 'divergence';
        control.stopAfterBatch('the loss diverged');
      } else if (done + 1 >= this.iterations) {
        control.stopAfterBatch('the sweep is complete');
      }
    }
  }
}

/**
 * The point of steepest descent: the largest fall of the loss per unit of ln(rate) between
 * neighbouring points.
 */
export function steepestPoint(learningRates: readonly number[], losses: readonly number[]): number {
  let best = 0;
  let bestSlope = Infinity;
  for (let i = 1; i < losses.length; i++) {
    const slope =
      (losses[i]! - losses[i - 1]!) / (Math.log(learningRates[i]!) - Math.log(learningRates[i - 1]!));
    if (slope < bestSlope) {
      bestSlope = slope;
      best = i;
    }
  }
  return best;
}

/**
 * The valley: the longest subsequence of points whose losses strictly fall (a longest decreasing
 * subsequence, O(n²) for a few hundred points), and the point midway between its first and last.
 * A long fall is a range of rates that train well; its middle is safely away from both the flat
 * start and the cliff at the end.
 */
export function valleyPoint(losses: readonly number[]): number {
  const n = losses.length;
  if (n === 0) return 0;
  const length = new Array<number>(n).fill(1);
  const start = Array.from({ length: n }, (_, i) => i);
  let bestEnd = 0;
  for (let i = 1; i < n; i++) {
    for (let j = 0; j < i; j++) {
      if (losses[i]! < losses[j]! && length[j]! + 1 > length[i]!) {
        length[i] = length[j]! + 1;
        start[i] = start[j]!;
      }
    }
    if (length[i]! > length[bestEnd]!) bestEnd = i;
  }
  return start[bestEnd]! + Math.floor((bestEnd - start[bestEnd]!) / 2);
}

/** The model's values, the optimizer's state and the global generator, copied. */
function snapshot(model: Module, optimizer: Optimizer) {
  const values = [...model.stateDict()].map(([, tensor]) => tensor.data.slice());
  const gradients = model.parameters().map((parameter) => parameter.grad);
  const saved = optimizer.stateDict();
  const optimizerState = {
    tensors: new Map<string, Data>([...saved.tensors].map(([key, value]) => [key, value.slice()])),
    stepCount: saved.stepCount,
    groups: saved.groups,
  };
  return { values, gradients, optimizerState, training: model.training, random: defaultRandom().getState() };
}

function restore(model: Module, optimizer: Optimizer, saved: ReturnType<typeof snapshot>): void {
  [...model.stateDict()].forEach(([, tensor], i) => tensor.data.set(saved.values[i]!));
  model.parameters().forEach((parameter, i) => {
    parameter.grad = saved.gradients[i]!;
  });
  optimizer.loadStateDict(saved.optimizerState);
  model.train(saved.training);
  defaultRandom().setState(saved.random);
}

/**
 * Sweeps the learning rate exponentially from startLr to endLr over `iterations` training batches
 * (one rate per batch, every parameter group alike), records the smoothed loss, and suggests a rate.
 * Afterwards the model's weights and buffers, its gradients and mode, the optimizer's state and
 * settings, and the global generator are exactly as before, whatever happened during the sweep.
 *
 * @example
 * const sweep = findLearningRate(model, train, { optimizer });
 * optimizer.groups[0]!.settings.lr = sweep.suggestion;
 * fs.writeFileSync('lr-find.svg', learningRateFinderChart(sweep));
 */
export function findLearningRate<Sample = Example>(
  model: Module,
  data: FitData<Sample>,
  options: LearningRateFinderOptions<Sample>,
): LearningRateFinderResult {
  const startLr = options.startLr ?? 1e-7;
  const endLr = options.endLr ?? 10;
  const iterations = options.iterations ?? 200;
  const smoothing = options.smoothing ?? 0.98;
  const divergeFactor = options.divergeFactor ?? 4;
  if (!(startLr > 0 && endLr > startLr && Number.isFinite(endLr)))
    throw new RangeError(`findLearningRate: need 0 < startLr < endLr, got ${startLr} and ${endLr}`);
  if (!Number.isInteger(iterations) || iterations < 2)
    throw new RangeError(`findLearningRate: iterations must be an integer ≥ 2, got ${iterations}`);
  if (!(smoothing >= 0 && smoothing < 1))
    throw new RangeError(`findLearningRate: smoothing must be in [0, 1), got ${smoothing}`);
  if (!(divergeFactor > 1))
    throw new RangeError(`findLearningRate: divergeFactor must be > 1, got ${divergeFactor}`);
  const test = new RangeTest(startLr, endLr, iterations, smoothing, divergeFactor);
  const saved = snapshot(model, options.optimizer);
  try {
    fit(model, data, {
      optimizer: options.optimizer,
      batchSize: options.batchSize,
      loss: options.loss,
      collate: options.collate,
      transforms: options.transforms,
      clipGradientNorm: options.clipGradientNorm,
      clipGradientValue: options.clipGradientValue,
      allowNonFiniteInputs: options.allowNonFiniteInputs,
      // Each epoch has at least one batch, so this many epochs always reach the planned sweep.
      epochs: iterations,
      metrics: [],
      progress: false,
      nonFinite: 'skip',
      seed: options.seed ?? 0,
      callbacks: [test],
    });
  } finally {
    restore(model, options.optimizer, saved);
  }
  if (test.losses.length === 0)
    throw new Error('findLearningRate: no batch was trained (is the data empty?)');
  // Like fastai, judge without the first tenth (the average is still warming up) and the last few
  // points (already diverging), when the sweep is long enough to spare them.
  const first = test.losses.length >= 20 ? Math.floor(test.losses.length / 10) : 0;
  const last = test.losses.length >= 20 ? test.losses.length - 5 : test.losses.length;
  const rates = test.learningRates.slice(first, last);
  const losses = test.losses.slice(first, last);
  const point = (index: number): LearningRatePoint => ({
    index: index + first,
    learningRate: rates[index]!,
    loss: losses[index]!,
  });
  const valley = point(valleyPoint(losses));
  return {
    learningRates: test.learningRates,
    losses: test.losses,
    rawLosses: test.rawLosses,
    steepest: point(steepestPoint(rates, losses)),
    valley,
    suggestion: valley.learningRate,
    stoppedBy: test.stoppedBy,
  };
}
