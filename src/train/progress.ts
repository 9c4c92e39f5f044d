/**
 * The progress bar: one live line per epoch on a terminal (epoch, batch, loss, accuracy,
 * samples/s, ETA), and plain lines when the output is not a terminal (CI logs, pipes), so logs stay
 * readable without carriage returns.
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
        const validation =
          logs.validationLoss !== undefined
            ? ` - val loss ${logs.validationLoss.toFixed(4)}` +
              (logs.validationAccuracy === undefined
                ? ''
                : ` val acc ${(logs.validationAccuracy * 100).toFixed(2)}%`)
            : '';
        // Metrics other than accuracy (shown as a percentage above) by name, four decimals.
        const others = Object.entries((logs.metrics as Record<string, number> | undefined) ?? {})
          .filter(([name]) => name !== 'accuracy' && name !== 'validationAccuracy')
          .map(([name, value]) => ` ${name} ${value.toFixed(4)}`)
          .join('');
        const line =
          `epoch ${event.epoch + 1}/${this.epochs} - ${formatDuration(logs.seconds)} - loss ${logs.loss.toFixed(4)}` +
          (logs.accuracy === undefined ? '' : ` acc ${(logs.accuracy * 100).toFixed(2)}%`) +
          `${validation}${others} - lr ${logs.learningRate.toExponential(2)}` +
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
