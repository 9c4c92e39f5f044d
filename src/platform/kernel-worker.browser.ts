/**
 * Entry point of the wasm backend's Web Workers (bundled as dist/browser/kernel-worker.js and started
 * by ./kernel-workers.browser.ts), the browser's counterpart of src/backend/wasm/worker.ts: the first
 * message carries the compiled module, the shared memory, the control block and the thread index;
 * the worker instantiates the kernels, says it is ready, and from then on joins every job, sleeping
 * in Atomics.wait (which workers may do) between jobs.
 */
// The job table: the same runners, numbered the same way, as on the calling thread.
import { wasmJobs } from '../backend/wasm/index.js';
import { Control, controlBlock, participate, waitWhile } from '../backend/wasm/jobs.js';
import { instantiateKernels, type WasmMemory, type WasmModule } from '../backend/wasm/runtime.js';
import type { KernelWorkerData } from './kernel-workers.js';

interface WorkerScope {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', listener: (event: { data: KernelWorkerData }) => void): void;
}
const scope = globalThis as unknown as WorkerScope;

scope.addEventListener('message', ({ data }) => {
  const kernels = instantiateKernels(data.module as WasmModule, data.memory as WasmMemory);
  const control = controlBlock(data.control);
  const words = control.words;
  const report = (error: unknown) =>
    console.error(
      `tensile wasm worker ${data.thread}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
  scope.postMessage('ready');
  for (;;) {
    const seen = Atomics.load(words, Control.wake);
    participate(kernels, wasmJobs, control, data.thread, report);
    waitWhile(control, words, Control.wake, seen);
  }
});
