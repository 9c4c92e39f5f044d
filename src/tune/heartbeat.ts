/**
 * The trial thread: heartbeats and, for network storages, the trial's writes.
 *
 * Heartbeats: while a trial runs, its worker stamps it in storage every few seconds; a trial whose
 * stamp grows older than the grace period belongs to a dead worker and is failed (and retried, when
 * the study allows) by whichever worker notices first.
 *
 * tensile's training loop is synchronous and blocks its thread for minutes, so the stamps come from a
 * worker thread with its own storage connection: they keep coming while the main thread trains, and
 * stop exactly when the process dies. For storages whose writes need the event loop (PostgreSQL), the
 * same thread also performs the trial's writes (parameters, reported values, attributes): the main
 * thread posts them as it makes them, so they reach the database while training still blocks the main
 * thread, and other workers' samplers and pruners see them at once. Storages without a URL (memory)
 * cannot be opened from another thread; they get an in-process timer, which is all a single-process
 * storage needs.
 */
import { Worker } from 'node:worker_threads';
import type { Distribution, JsonValue, ParamValue } from './distributions.js';
import { closeWithStorage } from './storage/resources.js';
import { StorageUnavailableError } from '../sql/retry.js';
import type { Storage } from './storage/storage.js';

export interface HeartbeatSettings {
  /** Seconds between heartbeats (default 5). */
  intervalSeconds: number;
  /** Seconds without a heartbeat after which a running trial counts as dead (default 20). */
  graceSeconds: number;
}

export const defaultHeartbeat: HeartbeatSettings = { intervalSeconds: 5, graceSeconds: 20 };

/**
 * The least settings accepted. A stamp travels through a thread, a connection and a transaction, and
 * a busy machine (or a database restart) delays it by a good part of a second: a grace period shorter
 * than a few intervals, or than a second, fails trials whose workers are alive.
 */
export const heartbeatMinimums = { intervalSeconds: 0.1, graceIntervals: 3, graceSeconds: 1 } as const;

export function checkHeartbeat(settings: HeartbeatSettings): void {
  const { intervalSeconds, graceSeconds } = settings;
  const least = heartbeatMinimums;
  if (!(Number.isFinite(intervalSeconds) && intervalSeconds >= least.intervalSeconds))
    throw new RangeError(
      `heartbeat: intervalSeconds must be at least ${least.intervalSeconds}, got ${intervalSeconds}`,
    );
  const minimumGrace = Math.max(least.graceSeconds, least.graceIntervals * intervalSeconds);
  if (!(Number.isFinite(graceSeconds) && graceSeconds >= minimumGrace))
    throw new RangeError(
      `heartbeat: graceSeconds must be at least ${least.graceIntervals} × intervalSeconds and at least ${least.graceSeconds} s (${minimumGrace} here), got ${graceSeconds}`,
    );
}

/** One write a running trial makes. */
export type TrialWrite =
  | { kind: 'param'; trialId: number; name: string; distribution: Distribution; value: ParamValue }
  | { kind: 'intermediate'; trialId: number; step: number; value: number }
  | { kind: 'userAttribute'; trialId: number; key: string; value: JsonValue };

/** Performs a trial write on a storage. */
export function applyTrialWrite(storage: Storage, write: TrialWrite): Promise<void> {
  switch (write.kind) {
    case 'param':
      return storage.setTrialParam(write.trialId, write.name, write.distribution, write.value);
    case 'intermediate':
      return storage.setTrialIntermediateValue(write.trialId, write.step, write.value);
    case 'userAttribute':
      return storage.setTrialUserAttribute(write.trialId, write.key, write.value);
  }
}

export interface Heartbeat {
  start(trialId: number): void;
  stop(trialId: number): void;
  /** Performs a write off the main thread (null when this heartbeat has no thread). */
  readonly write: ((write: TrialWrite) => Promise<void>) | null;
  close(): Promise<void>;
}

/** Messages between the main thread and the trial thread. */
export type TrialThreadRequest =
  | { type: 'start'; trialId: number }
  | { type: 'stop'; trialId: number }
  | { type: 'write'; id: number; write: TrialWrite }
  | { type: 'close' };
export type TrialThreadReply = {
  type: 'written';
  id: number;
  error: { name: string; message: string } | null;
};

class ThreadHeartbeat implements Heartbeat {
  private readonly worker: Worker;
  private readonly exited: Promise<void>;
  private readonly pending = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();
  private nextId = 0;
  private failure: Error | null = null;
  readonly write: (write: TrialWrite) => Promise<void>;

  constructor(url: string, intervalSeconds: number) {
    // No inherited flags: the thread runs a plain module, and flags such as --input-type (node -e) are
    // errors outside the main script.
    this.worker = new Worker(new URL('./heartbeat-worker.js', import.meta.url), {
      workerData: { url, intervalMs: intervalSeconds * 1000 },
      execArgv: [],
    });
    // The thread must not keep a finished program alive.
    this.worker.unref();
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.on('error', (error) => {
      this.failure ??= error;
      for (const { reject } of this.pending.values()) reject(error);
      this.pending.clear();
      console.error(`tensile: trial thread failed: ${error.message}`);
    });
    this.worker.on('message', (reply: TrialThreadReply) => {
      const waiter = this.pending.get(reply.id);
      if (waiter === undefined) return;
      this.pending.delete(reply.id);
      if (reply.error === null) waiter.resolve();
      // An outage outlasting the retry time keeps its class: Study.tell treats it apart from a bad write.
      else if (reply.error.name === 'StorageUnavailableError')
        waiter.reject(new StorageUnavailableError(reply.error.message));
      else waiter.reject(Object.assign(new Error(reply.error.message), { name: reply.error.name }));
    });
    this.write = (write) =>
      new Promise<void>((resolve, reject) => {
        // A thread that failed (its storage could not be opened) would never answer.
        if (this.failure !== null) {
          reject(this.failure);
          return;
        }
        const id = this.nextId++;
        this.pending.set(id, { resolve, reject });
        // While writes are in flight the thread must hold the process open for their answers.
        this.worker.ref();
        this.worker.postMessage({ type: 'write', id, write } satisfies TrialThreadRequest);
      }).finally(() => {
        if (this.pending.size === 0) this.worker.unref();
      });
  }

  start(trialId: number): void {
    this.worker.postMessage({ type: 'start', trialId } satisfies TrialThreadRequest);
  }

  stop(trialId: number): void {
    this.worker.postMessage({ type: 'stop', trialId } satisfies TrialThreadRequest);
  }

  async close(): Promise<void> {
    // Held open until the thread has closed its connection and exited.
    this.worker.ref();
    this.worker.postMessage({ type: 'close' } satisfies TrialThreadRequest);
    await this.exited;
  }
}

class TimerHeartbeat implements Heartbeat {
  readonly write = null;
  private readonly active = new Set<number>();
  private readonly timer: NodeJS.Timeout;

  constructor(storage: Storage, intervalSeconds: number) {
    this.timer = setInterval(() => {
      for (const id of this.active) storage.recordHeartbeat(id).catch(() => undefined);
    }, intervalSeconds * 1000);
    this.timer.unref();
  }

  start(trialId: number): void {
    this.active.add(trialId);
  }

  stop(trialId: number): void {
    this.active.delete(trialId);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
  }
}

/** A heartbeat for trials of `storage`: a thread when the storage can be reopened by URL, else a timer. */
export function createHeartbeat(storage: Storage, settings: HeartbeatSettings): Heartbeat {
  const heartbeat =
    storage.url !== null
      ? new ThreadHeartbeat(storage.url, settings.intervalSeconds)
      : new TimerHeartbeat(storage, settings.intervalSeconds);
  // Closing the storage closes its heartbeat, so a script that only closes the storage still exits.
  let closing: Promise<void> | null = null;
  const closeOnce = () => (closing ??= heartbeat.close());
  const forget = closeWithStorage(storage, closeOnce);
  return {
    start: (trialId) => heartbeat.start(trialId),
    stop: (trialId) => heartbeat.stop(trialId),
    write: heartbeat.write,
    close: async () => {
      forget();
      await closeOnce();
    },
  };
}
