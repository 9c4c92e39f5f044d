/**
 * Writes to a run store from a thread of their own.
 *
 * tensile's training loop is synchronous: it holds its thread for the whole fit, so an asynchronous
 * store (PostgreSQL) would only send what the loop recorded after the loop had ended, and a
 * dashboard would see a run's curve appear all at once at the end. A worker thread with its own
 * connection runs its own event loop: messages posted to it during the loop are written at once, in
 * the order they were posted. Stores with synchronous writes (memory, SQLite) need none of this and
 * are written directly.
 */
import { Worker } from 'node:worker_threads';
import type { JsonObject, MetricInput, NewArtifact, RunState } from './types.js';

/** The writes a tracker makes after its run exists. */
export type WriteMessage =
  | { id: number; method: 'logMetrics'; runId: number; points: MetricInput[] }
  | { id: number; method: 'updateConfig' | 'updateSummary'; runId: number; values: JsonObject }
  | {
      id: number;
      method: 'finishRun';
      runId: number;
      state: Exclude<RunState, 'running'>;
      error: string | null;
    }
  | { id: number; method: 'addArtifact'; runId: number; artifact: NewArtifact }
  | { id: number; method: 'close' };

/** A write as the caller sends it (the writer numbers it). */
export type WriteRequest = DistributiveOmit<WriteMessage, 'id'>;

export type WriteReply = { id: number; error: string | null };

type Pending = { resolve: () => void; reject: (error: Error) => void };

/** Posts writes to a thread that owns a connection to the store at `url`. */
export class BackgroundWriter {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed: Promise<void> | null = null;
  private failure: Error | null = null;

  constructor(url: string) {
    this.worker = new Worker(new URL('./background-writer-worker.js', import.meta.url), {
      workerData: { url },
    });
    this.worker.on('message', (reply: WriteReply) => {
      const pending = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (reply.error === null) pending?.resolve();
      else pending?.reject(new Error(reply.error));
    });
    this.worker.on('error', (error) => this.fail(error));
    // A thread that ended (its store could not be opened, or it was terminated) answers nothing more.
    this.worker.on('exit', () => this.fail(new Error('the run store writer thread has ended')));
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const pending of this.pending.values()) pending.reject(error);
    this.pending.clear();
  }

  /** Sends one write; the promise settles when the thread has written it (rejects at once once the thread has failed). */
  send(message: WriteRequest): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...message, id });
    });
  }

  /** Waits for every write sent so far, then ends the thread. */
  close(): Promise<void> {
    this.closed ??= this.send({ method: 'close' }).finally(() =>
      this.worker.terminate().then(() => undefined),
    );
    return this.closed;
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
