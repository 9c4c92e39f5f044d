/**
 * Entry point of the wasm backend's worker threads (started by ./threads.ts).
 *
 * Instantiates the kernels module over the shared memory, then loops: join the job in flight (if
 * any), and sleep in Atomics.wait until the next one is posted. workerData carries the compiled
 * module, the shared memory, the control block's buffer and this worker's thread index, which
 * selects its slice of per-thread scratch.
 */
import { parentPort, workerData } from 'node:worker_threads';

// The job table: the same runners, numbered the same way, as on the calling thread. Importing it
// defines the table and loads the kernel files, none of which starts threads or compiles anything.
import { wasmJobs } from './index.js';
import { Control, controlBlock, participate, waitWhile } from './jobs.js';
import { instantiateKernels, type WasmMemory, type WasmModule } from './runtime.js';

interface WorkerData {
  module: WasmModule;
  memory: WasmMemory;
  control: SharedArrayBuffer;
  thread: number;
}

const data = workerData as WorkerData;
const kernels = instantiateKernels(data.module, data.memory);
const control = controlBlock(data.control);
const words = control.words;
parentPort?.postMessage('ready');

function report(error: unknown): void {
  process.stderr.write(
    `tensile wasm worker ${data.thread}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
}

for (;;) {
  const seen = Atomics.load(words, Control.wake);
  participate(kernels, wasmJobs, control, data.thread, report);
  waitWhile(control, words, Control.wake, seen);
}
