/**
 * ReduceLROnPlateau: lowers the learning rate when a monitored metric stops improving, with
 * PyTorch's semantics (torch.optim.lr_scheduler.ReduceLROnPlateau); Keras's callback of the same name
 * differs in counting (it reduces after `patience` bad epochs where PyTorch waits for patience + 1)
 * and in comparing by an absolute minDelta.
 */
import type { Optimizer } from '../optim/optimizer.js';
import {
  type Callback,
  defaultMode,
  monitoredValue,
  type MonitoredMetric,
  type TrainingControl,
} from './callbacks.js';
import type { TrainingEvent } from './events.js';

export interface ReduceLROnPlateauOptions {
  /** Default 'validationLoss'. */
  monitor?: MonitoredMetric;
  /** 'min' (lower is better) or 'max'; default from the name (accuracies 'max', the rest 'min'). */
  mode?: 'min' | 'max';
  /** New rate = rate × factor (default 0.1; must be < 1). */
  factor?: number;
  /** Epochs without improvement tolerated; the rate drops on the (patience + 1)-th (default 10). */
  patience?: number;
  /** How much better counts as better (default 1e-4), relative or absolute as thresholdMode says. */
  threshold?: number;
  /** 'rel' (default): better than best·(1 ∓ threshold); 'abs': better than best ∓ threshold. */
  thresholdMode?: 'rel' | 'abs';
  /** Epochs after a reduction during which bad epochs are not counted (default 0). */
  cooldown?: number;
  /** Lower bound of the rate: one for all groups, or one per group (default 0). */
  minLr?: number | readonly number[];
  /** A reduction smaller than this is not applied (default 1e-8). */
  eps?: number;
}

/**
 * After each epoch: if the monitored value improved on the best so far (by the threshold), it
 * becomes the best and the count of bad epochs resets; else the count grows. During a cooldown the
 * count stays at 0. When the count exceeds patience, every group's rate becomes
 * max(rate × factor, minLr) (unless that changes it by less than eps), the cooldown starts and the
 * count resets.
 *
 * @example
 * fit(model, train, { optimizer, epochs: 30, validationData, callbacks: [new ReduceLROnPlateau({ patience: 2 })] });
 */
export class ReduceLROnPlateau implements Callback {
  readonly monitor: MonitoredMetric;
  readonly mode: 'min' | 'max';
  readonly factor: number;
  readonly patience: number;
  readonly threshold: number;
  readonly thresholdMode: 'rel' | 'abs';
  readonly cooldown: number;
  readonly minLr: number | readonly number[];
  readonly eps: number;
  best: number;
  badEpochs = 0;
  cooldownLeft = 0;
  /** Epochs at which the rate was reduced (0-based count of step calls before it). */
  readonly reductions: number[] = [];
  private steps = 0;

  constructor(options: ReduceLROnPlateauOptions = {}) {
    this.monitor = options.monitor ?? 'validationLoss';
    this.mode = options.mode ?? defaultMode(this.monitor);
    this.factor = options.factor ?? 0.1;
    this.patience = options.patience ?? 10;
    this.threshold = options.threshold ?? 1e-4;
    this.thresholdMode = options.thresholdMode ?? 'rel';
    this.cooldown = options.cooldown ?? 0;
    this.minLr = options.minLr ?? 0;
    this.eps = options.eps ?? 1e-8;
    if (!(this.factor < 1 && this.factor >= 0))
      throw new RangeError(`ReduceLROnPlateau: factor must be in [0, 1), got ${this.factor}`);
    if (!Number.isInteger(this.patience) || this.patience < 0)
      throw new RangeError(
        `ReduceLROnPlateau: patience must be a non-negative integer, got ${this.patience}`,
      );
    if (!Number.isInteger(this.cooldown) || this.cooldown < 0)
      throw new RangeError(
        `ReduceLROnPlateau: cooldown must be a non-negative integer, got ${this.cooldown}`,
      );
    if (!(this.threshold >= 0))
      throw new RangeError(`ReduceLROnPlateau: threshold must be ≥ 0, got ${this.threshold}`);
    this.best = this.mode === 'min' ? Infinity : -Infinity;
  }

  private isBetter(value: number): boolean {
    const { best, threshold } = this;
    if (this.mode === 'min')
      return this.thresholdMode === 'rel' ? value < best * (1 - threshold) : value < best - threshold;
    return this.thresholdMode === 'rel' ? value > best * (1 + threshold) : value > best + threshold;
  }

  /** Feeds one epoch's value (what fit does at every epochEnd); returns whether the rate was reduced. */
  step(value: number, optimizer: Optimizer): boolean {
    this.steps++;
    if (this.isBetter(value)) {
      this.best = value;
      this.badEpochs = 0;
    } else {
      this.badEpochs++;
    }
    if (this.cooldownLeft > 0) {
      this.cooldownLeft--;
      this.badEpochs = 0;
    }
    if (this.badEpochs <= this.patience) return false;
    optimizer.groups.forEach((group, index) => {
      const floor = typeof this.minLr === 'number' ? this.minLr : (this.minLr[index] ?? 0);
      const old = group.settings.lr;
      const reduced = Math.max(old * this.factor, floor);
      if (old - reduced > this.eps) group.settings.lr = reduced;
    });
    this.reductions.push(this.steps);
    this.cooldownLeft = this.cooldown;
    this.badEpochs = 0;
    return true;
  }

  handle(event: TrainingEvent, control: TrainingControl): void {
    if (event.type === 'epochEnd') this.step(monitoredValue(event.logs, this.monitor), control.optimizer);
  }
}
