/**
 * Callbacks that write files: ModelCheckpoint and MetricsLogger. Apart from ./callbacks.ts so that the
 * training loop itself reaches no file system (the browser build bundles it without these).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { saveWeights } from '../io/weights.js';
import {
  type Callback,
  defaultMode,
  type MonitoredMetric,
  monitoredValue,
  type TrainingControl,
} from './callbacks.js';
import type { TrainingEvent } from './events.js';

export interface ModelCheckpointOptions {
  /** File to write (safetensors); `{epoch}` is replaced by the 1-based epoch number. */
  path: string;
  monitor?: MonitoredMetric;
  mode?: 'min' | 'max';
  /** Only write when the monitored metric improves (default true when monitor is set). */
  saveBestOnly?: boolean;
}

/** Saves the model's weights after epochs (atomically, so a crash never leaves a broken file). */
export class ModelCheckpoint implements Callback {
  private best = Number.NaN;
  readonly saved: string[] = [];
  constructor(readonly options: ModelCheckpointOptions) {}

  handle(event: TrainingEvent, control: TrainingControl): void {
    if (event.type !== 'epochEnd') return;
    const { monitor } = this.options;
    if (monitor !== undefined && (this.options.saveBestOnly ?? true)) {
      const value = monitoredValue(event.logs, monitor);
      const mode = this.options.mode ?? defaultMode(monitor);
      const improved = Number.isNaN(this.best) || (mode === 'min' ? value < this.best : value > this.best);
      if (!improved) return;
      this.best = value;
    }
    const file = this.options.path.replaceAll('{epoch}', String(event.epoch + 1));
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    saveWeights(control.model, file, {
      epoch: String(event.epoch + 1),
      ...(monitor ? { [monitor]: String(monitoredValue(event.logs, monitor)) } : {}),
    });
    this.saved.push(file);
  }
}

/** Appends one JSON object per epoch (and a start/end record) to a file: a metrics log as JSON lines. */
export class MetricsLogger implements Callback {
  constructor(readonly path: string) {}

  handle(event: TrainingEvent): void {
    if (event.type !== 'epochEnd' && event.type !== 'fitStart' && event.type !== 'fitEnd') return;
    const record =
      event.type === 'epochEnd'
        ? { event: 'epoch', time: new Date().toISOString(), ...event.logs }
        : event.type === 'fitStart'
          ? {
              event: 'fitStart',
              time: new Date().toISOString(),
              epochs: event.epochs,
              trainSamples: event.trainSamples,
            }
          : {
              event: 'fitEnd',
              time: new Date().toISOString(),
              epochs: event.history.length,
              stoppedEarly: event.stoppedEarly,
              outcome: event.outcome,
            };
    fs.mkdirSync(path.dirname(path.resolve(this.path)), { recursive: true });
    fs.appendFileSync(this.path, JSON.stringify(record) + '\n');
  }
}
