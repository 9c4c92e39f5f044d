/**
 * The progress bar: one live line per epoch on a terminal (epoch, batch, loss, accuracy,
 * samples/s, ETA), and plain lines when the output is not a terminal (CI logs, pipes), so logs stay
 * readable without carriage returns. Each epoch's line also carries every metric the fit was given,
 * next to the loss, under a short name that keeps its exact meaning (`f1_macro`, `mae`, `rmse`, `r2`;
 * see shortMetricName).
 */
import type { Callback } from './callbacks.js';
import type { TrainingEvent } from './events.js';

export interface ProgressOptions {
  /** Where to write (default process.stderr, like tqdm). */
  stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Force live redrawing on or off (default: whether the stream is a terminal). */
  live?: boolean;
  /** Minimum milliseconds between live redraws (default 100). */
  refreshMilliseconds?: number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.max(0, Math.round(seconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, '0');
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, '0')}:${rest}` : `${minutes}:${rest}`;
}

/** Averagings of Precision, Recall and F1Score as they appear in those metrics' default names. */
const averagings = ['macro', 'micro', 'weighted'] as const;

/** Short names of the default metric names (src/train/metrics.ts), in scikit-learn's scoring words. */
const shortNames: Record<string, string> = {
  accuracy: 'acc',
  rocAuc: 'roc_auc',
  meanAbsoluteError: 'mae',
  rootMeanSquaredError: 'rmse',
  r2Score: 'r2',
};

/**
 * The short name the progress line gives a metric: 'macroF1' → 'f1_macro', 'weightedRecall' →
 * 'recall_weighted', 'top5Accuracy' → 'top5_acc', 'meanAbsoluteError' → 'mae',
 * 'rootMeanSquaredError' → 'rmse', 'r2Score' → 'r2', 'rocAuc' → 'roc_auc'. A name of your own
 * (a metric constructed with { name }) is kept as it is.
 */
export function shortMetricName(name: string): string {
  const known = shortNames[name];
  if (known !== undefined) return known;
  const topK = /^top(\d+)Accuracy$/.exec(name);
  if (topK) return `top${topK[1]}_acc`;
  for (const average of averagings) {
    const score = /^(Precision|Recall|F1)$/.exec(name.slice(average.length));
    if (name.startsWith(average) && score) return `${score[1]!.toLowerCase()}_${average}`;
  }
  return name;
}

/** Accuracies read as percentages, like the accuracy the line has always shown. */
function isAccuracy(name: string): boolean {
  return name === 'accuracy' || /^top\d+Accuracy$/.test(name);
}

/** A metric's value: a percentage for accuracies, else four decimals (exponent form below 0.001). */
function formatMetric(name: string, value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (isAccuracy(name)) return `${(value * 100).toFixed(2)}%`;
  return value !== 0 && Math.abs(value) < 0.001 ? value.toExponential(3) : value.toFixed(4);
}

/**
 * The metrics of an epoch as `name value` pairs, training ones then validation ones (prefixed
 * 'val '), each in the order the fit was given them. Accuracy is left to the caller, which has
 * always printed it first. Values that are not single numbers (per-class lists) are left out.
 */
export function formatEpochMetrics(metrics: Record<string, unknown>): {
  training: string;
  validation: string;
} {
  const training: [string, number][] = [];
  const validation: [string, number][] = [];
  for (const [name, value] of Object.entries(metrics)) {
    if (typeof value !== 'number') continue;
    const trainingName = validationBase(name).find((base) => metrics[base] !== undefined);
    if (trainingName !== undefined) validation.push([trainingName, value]);
    else training.push([name, value]);
  }
  const pairs = (list: [string, number][], prefix: string) =>
    list
      .filter(([name]) => name !== 'accuracy')
      .map(([name, value]) => ` ${prefix}${shortMetricName(name)} ${formatMetric(name, value)}`)
      .join('');
  return { training: pairs(training, ''), validation: pairs(validation, 'val ') };
}

/**
 * The training names a validation name can come from ('validationMacroF1' ← 'macroF1'; a metric
 * named 'F1' gives 'validationF1' too, see fit.ts's validationName); none for other names.
 */
function validationBase(name: string): string[] {
  const match = /^validation([A-Z0-9])(.*)$/.exec(name);
  return match ? [`${match[1]!.toLowerCase()}${match[2]}`, `${match[1]}${match[2]}`] : [];
}

export class ProgressBar implements Callback {
  private readonly stream: NonNullable<ProgressOptions['stream']>;
  private readonly live: boolean;
  private readonly refreshMilliseconds: number;
  private epochs = 0;
  private batches = 0;
  private lastDraw = 0;
  private epochStarted = 0;

  constructor(options: ProgressOptions = {}) {
    this.stream = options.stream ?? process.stderr;
    this.live = options.live ?? this.stream.isTTY === true;
    this.refreshMilliseconds = options.refreshMilliseconds ?? 100;
  }

  handle(event: TrainingEvent): void {
    switch (event.type) {
      case 'fitStart':
        this.epochs = event.epochs;
        this.batches = event.batchesPerEpoch;
        this.stream.write(
          `Training on ${event.trainSamples.toLocaleString('en-US')} samples` +
            (event.validationSamples > 0
              ? `, validating on ${event.validationSamples.toLocaleString('en-US')}`
              : '') +
            ` for ${event.epochs} epochs\n`,
        );
        break;
      case 'epochStart':
        this.epochStarted = performance.now();
        break;
      case 'batchEnd': {
        if (!this.live) break;
        const now = performance.now();
        if (now - this.lastDraw < this.refreshMilliseconds && event.batch + 1 !== this.batches) break;
        this.lastDraw = now;
        const done = event.batch + 1;
        const width = 24;
        const filled = Math.round((width * done) / this.batches);
        const bar =
          '='.repeat(Math.max(0, filled - 1)) +
          (filled > 0 ? (done === this.batches ? '=' : '>') : '') +
          ' '.repeat(width - filled);
        const elapsed = (now - this.epochStarted) / 1000;
        const eta = (elapsed / done) * (this.batches - done);
        const accuracy =
          event.epochAccuracy === undefined ? '' : ` acc ${(event.epochAccuracy * 100).toFixed(2)}%`;
        // A stream of unknown length has no bar and no ETA, only the batch count.
        const position = this.batches > 0 ? `[${bar}] ${done}/${this.batches}` : `batch ${done}`;
        const line =
          `epoch ${event.epoch + 1}/${this.epochs} ${position}` +
          ` loss ${event.epochLoss.toFixed(4)}${accuracy}` +
          ` ${Math.round(event.samplesPerSecond)} samples/s` +
          (this.batches > 0 ? ` ETA ${formatDuration(eta)}` : '');
        this.stream.write(`\r${line}\x1b[K`);
        break;
      }
      case 'epochEnd': {
        const logs = event.logs;
        const metrics = formatEpochMetrics(logs.metrics);
        const validation =
          logs.validationLoss !== undefined
            ? ` - val loss ${logs.validationLoss.toFixed(4)}` +
              (logs.validationAccuracy === undefined
                ? ''
                : ` val acc ${(logs.validationAccuracy * 100).toFixed(2)}%`) +
              metrics.validation
            : '';
        const line =
          `epoch ${event.epoch + 1}/${this.epochs} - ${formatDuration(logs.seconds)} - loss ${logs.loss.toFixed(4)}` +
          (logs.accuracy === undefined ? '' : ` acc ${(logs.accuracy * 100).toFixed(2)}%`) +
          `${metrics.training}${validation} - lr ${logs.learningRate.toExponential(2)}` +
          ` - ${Math.round(logs.samplesPerSecond)} samples/s`;
        this.stream.write(this.live ? `\r${line}\x1b[K\n` : `${line}\n`);
        break;
      }
      case 'fitEnd':
        if (event.stoppedEarly) this.stream.write(`stopped early after ${event.history.length} epochs\n`);
        break;
      default:
        break;
    }
  }
}
