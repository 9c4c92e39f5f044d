/**
 * The wasm backend's worker threads in a browser (the twin of ./kernel-workers.ts): module Web Workers
 * running ./kernel-worker.browser.ts (bundled as kernel-worker.js beside tensile.js), each given the
 * compiled module, the shared memory and the control block by postMessage.
 *
 * Sharing memory with a worker needs a cross-origin isolated page (COOP/COEP headers), and the calling
 * thread waits for its workers with Atomics.wait, which a page's main thread may not do; so the
 * default is every core in a worker of an isolated page, and one thread anywhere else. The results
 * are the same bits for any thread count.
 */
import type { KernelWorkerData, KernelWorkerEvents, KernelWorker } from './kernel-workers.js';

export type { KernelWorker, KernelWorkerData, KernelWorkerEvents } from './kernel-workers.js';

interface WebWorker {
  postMessage(message: unknown): void;
  terminate(): void;
  addEventListener(type: 'message' | 'error', listener: (event: { message?: string }) => void): void;
}
declare const Worker: new (url: URL, options: { type: 'module'; name: string }) => WebWorker;

interface BrowserGlobals {
  crossOriginIsolated?: boolean;
  document?: unknown;
  navigator?: { hardwareConcurrency?: number };
}
const page = globalThis as BrowserGlobals;

/** Whether this thread may run several kernel threads: a cross-origin isolated page, off the main thread. */
export function threadsPossible(): boolean {
  return page.crossOriginIsolated === true && page.document === undefined;
}

/** Logical cores where threads are possible (see threadsPossible), else 1. */
export function availableCores(): number {
  return threadsPossible() ? Math.max(1, page.navigator?.hardwareConcurrency ?? 1) : 1;
}

const workerUrl = new URL('./kernel-worker.js', import.meta.url);

export function startKernelWorker(data: KernelWorkerData, events: KernelWorkerEvents): KernelWorker {
  const worker = new Worker(workerUrl, { type: 'module', name: `tensile kernels ${data.thread}` });
  let started = false;
  worker.addEventListener('message', () => {
    if (started) return;
    started = true;
    events.ready();
  });
  worker.addEventListener('error', (event) => events.error(new Error(event.message ?? 'worker error')));
  try {
    worker.postMessage(data);
  } catch (error) {
    // A page that is not cross-origin isolated cannot send shared memory: report it as a failed start.
    queueMicrotask(() => events.error(error));
  }
  return { terminate: () => worker.terminate() };
}
