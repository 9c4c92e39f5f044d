/**
 * Prefetching in worker threads: each worker builds its own copy of a map-style dataset (from a
 * module you name, since functions and datasets cannot be sent to a thread) and turns the loader's
 * index jobs into collated batches while the training thread trains. The loader still draws the
 * order, in the training thread, so the batches are the ones plain iteration gives.
 */
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Tensor } from '../tensor/tensor.js';
import type { BatchJob, Prefetcher } from './loader.js';
import type { Batch, Dataset } from './protocol.js';

/** What the named export of a worker module returns: the dataset, and its collate when not the default. */
export interface WorkerDataset<Sample> {
  dataset: Dataset<Sample>;
  collate?(samples: Sample[]): Batch;
}

/** @internal A job sent to a worker. */
export interface JobMessage {
  id: number;
  indices: Int32Array;
}

/** @internal A worker's answer. */
export type BatchMessage =
  | {
      id: number;
      size: number;
      input: { data: Float32Array; shape: number[] };
      target: { kind: 'classes'; data: Int32Array } | { kind: 'floats'; data: Float32Array; shape: number[] };
    }
  | { id: number; error: string };

export interface WorkerPrefetcherOptions {
  /**
   * The module (a file path or URL) whose export `exportName` is a function returning a
   * WorkerDataset. It must build the same samples as the dataset the loader was given.
   */
  module: string | URL;
  /** Default 'createDataset'. */
  exportName?: string;
  /** Threads (default 2). */
  workers?: number;
}

type Pending = { resolve: (batch: Batch) => void; reject: (error: Error) => void };

/**
 * A Prefetcher whose batches are made in worker threads. Index jobs (map-style datasets) go to the
 * workers, round robin, up to `prefetch` ahead; a stream's jobs are made in this thread. Augmentation
 * that draws from the loader's generator (an ImageDataset's transforms) cannot run in a worker, so
 * the loader refuses transforms with it. Threads start with the first epoch and do not keep the
 * process alive; close() ends them.
 *
 * @example
 * // rows.ts: export function createDataset() { return { dataset: tensorDataset(readInputs(), readTargets()) }; }
 * const loader = new DataLoader(rows, { batchSize: 64, shuffle: true, prefetch: 4,
 *   prefetcher: new WorkerPrefetcher({ module: new URL('./rows.js', import.meta.url) }) });
 * await fitAsync(model, loader, { optimizer, epochs: 10 });
 */
export class WorkerPrefetcher implements Prefetcher {
  readonly module: string;
  readonly exportName: string;
  readonly workerCount: number;
  private workers: Worker[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private nextWorker = 0;

  constructor(options: WorkerPrefetcherOptions) {
    this.module =
      options.module instanceof URL
        ? options.module.href
        : /^[a-z]+:/i.test(options.module)
          ? options.module
          : pathToFileURL(path.resolve(options.module)).href;
    this.exportName = options.exportName ?? 'createDataset';
    this.workerCount = options.workers ?? 2;
    if (!Number.isInteger(this.workerCount) || this.workerCount < 1)
      throw new RangeError(`WorkerPrefetcher: workers must be a positive integer, got ${this.workerCount}`);
  }

  private start(): void {
    if (this.workers.length > 0) return;
    for (let i = 0; i < this.workerCount; i++) {
      const worker = new Worker(new URL('./prefetch-worker.js', import.meta.url), {
        workerData: { module: this.module, exportName: this.exportName },
      });
      worker.on('message', (message: BatchMessage) => this.receive(message));
      worker.on('error', (error) => this.failAll(error));
      worker.unref();
      this.workers.push(worker);
    }
  }

  private receive(message: BatchMessage): void {
    const pending = this.pending.get(message.id);
    this.pending.delete(message.id);
    if (pending === undefined) return;
    if ('error' in message) {
      pending.reject(new Error(`WorkerPrefetcher: ${message.error}`));
      return;
    }
    const target =
      message.target.kind === 'classes'
        ? message.target.data
        : new Tensor(message.target.data, message.target.shape);
    pending.resolve({
      input: new Tensor(message.input.data, message.input.shape),
      target,
      size: message.size,
    });
  }

  private failAll(error: Error): void {
    for (const pending of this.pending.values()) pending.reject(error);
    this.pending.clear();
  }

  private run<B>(job: BatchJob, make: (job: BatchJob) => B): Promise<B> {
    if (!('indices' in job)) return Promise.resolve().then(() => make(job));
    this.start();
    const id = this.nextId++;
    const worker = this.workers[this.nextWorker++ % this.workers.length]!;
    const batch = new Promise<Batch>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    // A worker keeps the process alive only while it owes a batch.
    worker.ref();
    const message: JobMessage = { id, indices: job.indices };
    worker.postMessage(message);
    // The workers make Batches; a loader using this prefetcher yields Batches (see DataLoader).
    return batch.finally(() => {
      if (this.pending.size === 0) for (const each of this.workers) each.unref();
    }) as Promise<B>;
  }

  prefetch<B>(jobs: Iterator<BatchJob>, make: (job: BatchJob) => B, depth: number): AsyncIterator<B> {
    const inFlight: Promise<B>[] = [];
    let jobsDone = false;
    const fill = (): void => {
      while (!jobsDone && inFlight.length < Math.max(1, depth)) {
        const next = jobs.next();
        if (next.done === true) {
          jobsDone = true;
          break;
        }
        const batch = this.run(next.value, make);
        // Awaited in order below; this only keeps a batch abandoned by return() from being unhandled.
        batch.catch(() => undefined);
        inFlight.push(batch);
      }
    };
    return {
      next: async (): Promise<IteratorResult<B>> => {
        fill();
        const batch = inFlight.shift();
        if (batch === undefined) return { value: undefined, done: true };
        const value = await batch;
        fill();
        return { value, done: false };
      },
      return: (): Promise<IteratorResult<B>> => {
        jobsDone = true;
        inFlight.length = 0;
        jobs.return?.();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  /** Ends the threads; a later epoch starts new ones. */
  async close(): Promise<void> {
    const workers = this.workers;
    this.workers = [];
    this.failAll(new Error('WorkerPrefetcher: closed'));
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
}
