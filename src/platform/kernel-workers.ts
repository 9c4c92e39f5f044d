/**
 * The wasm backend's worker threads, on Node (node:worker_threads). The browser build swaps in
 * ./kernel-workers.browser.ts (Web Workers). src/backend/wasm/threads.ts runs the pool through these
 * two functions and does not know which platform it is on.
 */
import * as os from 'node:os';
import { Worker } from 'node:worker_threads';

/** What a kernel worker is started with (see src/backend/wasm/worker.ts). */
export interface KernelWorkerData {
  /** The compiled kernels module (a WebAssembly.Module). */
  module: object;
  /** The shared WebAssembly.Memory every thread instantiates the module over. */
  memory: object;
  /** The job control block (./jobs.ts). */
  control: SharedArrayBuffer;
  /** This worker's thread index, 1 and up (the calling thread is 0). */
  thread: number;
}

/** What a started worker tells its pool. */
export interface KernelWorkerEvents {
  /** The worker has instantiated the kernels and joins jobs from now on. */
  ready(): void;
  /** The worker could not start, or its thread died. */
  error(error: unknown): void;
}

export interface KernelWorker {
  terminate(): void;
}

/** Cores this process may use: availableParallelism honours affinity masks and cgroup limits. */
export function availableCores(): number {
  return os.availableParallelism();
}

const workerUrl = new URL('../backend/wasm/worker.js', import.meta.url);

/** Starts one kernel worker; it never keeps the process alive (unref). */
export function startKernelWorker(data: KernelWorkerData, events: KernelWorkerEvents): KernelWorker {
  const worker = new Worker(workerUrl, { workerData: data });
  worker.unref();
  worker.once('message', () => events.ready());
  worker.on('error', (error) => events.error(error));
  return {
    terminate() {
      void worker.terminate();
    },
  };
}
