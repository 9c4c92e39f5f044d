/**
 * The wasm backend's threads: a persistent pool of `threads − 1` workers (node:worker_threads on Node,
 * Web Workers in the browser build: src/platform/kernel-workers*.ts), each
 * running its own instance of the kernels module over the one shared memory, with the calling thread
 * working as thread 0.
 *
 * The Backend interface is synchronous, so a kernel call posts its job in a shared control block
 * (./jobs.ts), wakes the workers with Atomics.notify, claims chunks itself, and sleeps in Atomics.wait
 * until every chunk is done; no promise or event-loop turn is involved. Workers are created on the first
 * job that wants them and are unref()'d, so they never keep the process alive; until they are up the
 * calling thread simply runs every chunk itself.
 *
 * The thread count defaults to os.availableParallelism(), or TENSILE_THREADS when that is set, and is
 * changed with setWasmThreads(). Results do not depend on it (see ./jobs.ts and assembly/).
 */
import { availableCores, type KernelWorker, startKernelWorker } from '../../platform/kernel-workers.js';

import {
  CHUNK_BITS,
  chunkCount,
  claimChunk,
  Control,
  CONTROL_BYTES,
  controlBlock,
  GENERATION_MASK,
  jobTable,
  MAX_CHUNKS,
  NONE_LEFT,
  participate,
  runChunk,
  runClaimedChunk,
  Slot,
  waitWhile,
  type ChunkRunner,
  type ControlBlock,
} from './jobs.js';
import { wasmRuntime, type KernelExports } from './runtime.js';

/** The most threads setWasmThreads accepts. */
export const MAX_THREADS = 256;

function defaultThreads(): number {
  const fromEnvironment = process.env.TENSILE_THREADS;
  if (fromEnvironment !== undefined && fromEnvironment !== '') {
    const count = Number(fromEnvironment);
    if (Number.isInteger(count) && count >= 1 && count <= MAX_THREADS) return count;
    process.stderr.write(
      `tensile: ignoring TENSILE_THREADS=${fromEnvironment} (expected an integer from 1 to ${MAX_THREADS})\n`,
    );
  }
  return Math.max(1, Math.min(MAX_THREADS, availableCores()));
}

/**
 * Knobs for tests and benchmarks. The defaults are what the backend is tuned for; tests lower the
 * thresholds to split small, odd-sized problems into many chunks, and turn callerRunsChunks off so
 * that the workers alone run them.
 */
export interface WasmTuning {
  /** Chunks per thread a threaded job aims for. */
  chunksPerThread: number;
  /** Products with fewer multiply-adds run on the calling thread alone. */
  parallelMultiplyAdds: number;
  /** Other jobs with fewer elements run on the calling thread alone. */
  parallelElements: number;
  /** Whether the calling thread claims chunks too (false: it only waits; needs at least one worker). */
  callerRunsChunks: boolean;
  /**
   * How long a thread that has to wait (a worker between jobs, the caller for the last chunk) spins
   * before it sleeps, in microseconds. 0 by default: a spin saves a futex wake, but the spinning
   * thread holds a core that V8's own helper threads want (see waitWhile in ./jobs.ts).
   */
  spinMicroseconds: number;
}

export const wasmTuning: WasmTuning = {
  chunksPerThread: 4,
  parallelMultiplyAdds: 1 << 21,
  parallelElements: 1 << 16,
  callerRunsChunks: true,
  spinMicroseconds: 0,
};

// The thread count and the control block are made on first use: worker threads import this module too
// (through the kernel files and the job table), and they neither read TENSILE_THREADS nor post jobs.
let configuredThreads: number | undefined;
let controlBlockInUse: ControlBlock | undefined;

function threads(): number {
  configuredThreads ??= defaultThreads();
  return configuredThreads;
}

/** The control block every job is posted in (the workers get its buffer when they start). */
function jobControl(): ControlBlock {
  if (controlBlockInUse === undefined) {
    controlBlockInUse = controlBlock(new SharedArrayBuffer(CONTROL_BYTES));
    Atomics.store(controlBlockInUse.words, Control.spinMicroseconds, wasmTuning.spinMicroseconds);
  }
  return controlBlockInUse;
}
/**
 * The worker running as thread i + 1 is workers[i] (undefined while that slot has none). The index is
 * fixed for a worker's life because it selects the worker's scratch in every job.
 */
const workers: (KernelWorker | undefined)[] = [];
/** Settles when the matching worker has instantiated the kernels. */
const workersReady = new Map<KernelWorker, Promise<void>>();
/** Why a worker failed to start, if one did; the backend then stays on the calling thread. */
let startFailure: string | null = null;
let generation = 0;

/**
 * Sets how many threads the wasm kernels use, the calling thread included (1 to 256). Fewer threads
 * than before terminate the surplus workers; more start on the next kernel call that can use them.
 * Results are the same for every count.
 */
export function setWasmThreads(count: number): void {
  if (!Number.isInteger(count) || count < 1 || count > MAX_THREADS) {
    throw new RangeError(
      `wasm backend: thread count must be an integer from 1 to ${MAX_THREADS}, got ${count}`,
    );
  }
  configuredThreads = count;
  // Safe between calls: no job is in flight, and a late worker cannot claim a finished job's chunks.
  while (workers.length > count - 1) {
    const worker = workers.pop();
    if (worker === undefined) continue;
    workersReady.delete(worker);
    worker.terminate();
  }
}

/** The number of threads the wasm kernels use, the calling thread included. */
export function getWasmThreads(): number {
  return threads();
}

/** The parameter block of the next job; fill it, then call runJob. */
export function jobParameters(): Float64Array {
  return jobControl().parameters;
}

function startWorkers(): void {
  if (startFailure !== null) return;
  const { module, memory } = wasmRuntime();
  const control = jobControl();
  const threadCount = threads();
  for (let slot = 0; slot < threadCount - 1; slot++) {
    if (workers[slot] !== undefined) continue;
    let started = false;
    let settle: { resolve(): void; reject(error: unknown): void } | undefined;
    const ready = new Promise<void>((resolve, reject) => {
      settle = { resolve, reject };
    });
    // Only wasmWorkersReady's callers hear of a failed start this way; nobody else awaits it.
    ready.catch(() => {});
    // Node's worker_threads or the browser's Web Workers: src/platform/kernel-workers*.ts.
    const worker: KernelWorker = startKernelWorker(
      { module, memory, control: control.words.buffer as SharedArrayBuffer, thread: slot + 1 },
      {
        ready() {
          started = true;
          settle!.resolve();
        },
        error(error) {
          settle!.reject(error);
          // Chunks that throw are caught inside participate, so this is a worker that could not start or
          // whose thread died; it is dropped. One that could not start will not start next time either:
          // say so once and stay on the calling thread. (A thread that dies holding a claimed chunk would
          // leave that job waiting; only a crash of the thread itself can do that.)
          if (workers[slot] === worker) workers[slot] = undefined;
          workersReady.delete(worker);
          if (!started && startFailure === null) {
            startFailure = error instanceof Error ? error.message : String(error);
            process.stderr.write(
              `tensile: wasm worker threads unavailable (${startFailure}); using one thread\n`,
            );
          }
        },
      },
    );
    workersReady.set(worker, ready);
    workers[slot] = worker;
  }
}

/** Workers started and not known to have failed. */
function liveWorkers(): number {
  let count = 0;
  for (const worker of workers) if (worker !== undefined) count++;
  return count;
}

/**
 * Copying for a staged job, by block of the job's first axis (a block's chunks are the chunks of its
 * row of the grid). Only the calling thread may touch JavaScript arrays, so it copies while the
 * workers compute the blocks already in place.
 */
export interface JobStages {
  /** Copies the inputs that block `block` reads into wasm memory. */
  stageIn(block: number): void;
  /** Copies the outputs that block `block` wrote out of wasm memory. */
  stageOut(block: number): void;
}

/**
 * Runs every chunk of the job whose parameters are in jobParameters(), each with `runner` (a runner
 * of the job table, ./index.ts), on up to getWasmThreads() threads, and returns when all are done
 * (and, with `stages`, all copied out). Throws when a chunk failed on any thread.
 */
export function runJob(runner: ChunkRunner, stages?: JobStages): void {
  const jobs = jobTable();
  // Also the check, on every thread count, that the runner is in the table the workers use.
  const kind = jobs.kindOf(runner);
  const control = jobControl();
  const threadCount = threads();
  const parameters = control.parameters;
  const tasks = chunkCount(parameters);
  if (tasks > MAX_CHUNKS) {
    throw new RangeError(`wasm backend: a job of ${tasks} chunks (at most ${MAX_CHUNKS})`);
  }
  const blocks = firstBlocks(parameters);
  const { kernels } = wasmRuntime();
  if (tasks <= 1 || threadCount === 1) {
    for (let block = 0; block < blocks; block++) stages?.stageIn(block);
    for (let chunk = 0; chunk < tasks; chunk++) runChunk(kernels, runner, parameters, chunk, 0);
    for (let block = 0; block < blocks; block++) stages?.stageOut(block);
    return;
  }
  if (liveWorkers() < threadCount - 1) startWorkers();
  const live = liveWorkers();
  const words = control.words;
  const finished = control.finished;
  // Flags still holding this generation from 2^19 jobs ago must not pass for finished.
  if (stages !== undefined) for (let chunk = 0; chunk < tasks; chunk++) finished[chunk] = -1;
  Atomics.store(words, Control.kind, kind);
  Atomics.store(words, Control.tasks, tasks);
  Atomics.store(words, Control.done, 0);
  Atomics.store(words, Control.failed, 0);
  Atomics.store(words, Control.available, stages === undefined ? tasks : 0);
  Atomics.store(words, Control.spinMicroseconds, Math.max(0, Math.round(wasmTuning.spinMicroseconds)));
  generation = (generation + 1) & GENERATION_MASK;
  // Publishing the claim word is what makes the job visible; everything above is written before it.
  Atomics.store(words, Control.claim, generation << CHUNK_BITS);
  // Workers still asleep on `available` from an earlier job recheck and find it replaced.
  Atomics.notify(words, Control.available);
  Atomics.add(words, Control.wake, 1);
  Atomics.notify(words, Control.wake, Math.min(live, tasks - 1));
  let ownError: unknown = null;
  const onError = (error: unknown) => {
    ownError ??= error;
  };
  const callerRuns = wasmTuning.callerRunsChunks || live === 0;
  if (stages === undefined) {
    if (callerRuns) participate(kernels, jobs, control, 0, onError);
  } else {
    try {
      runStaged(kernels, control, runner, tasks, blocks, stages, callerRuns, onError);
    } catch (error) {
      // A copy threw: finish the job without its unstaged chunks, so that no thread is still writing
      // into wasm memory when the next call reuses it.
      abandonUnstaged(control, tasks);
      onError(error);
    }
  }
  for (let done = Atomics.load(words, Control.done); done < tasks; done = Atomics.load(words, Control.done)) {
    waitWhile(control, words, Control.done, done);
  }
  if (ownError !== null) throw ownError;
  if (Atomics.load(words, Control.failed) !== 0) {
    throw new Error('wasm backend: a kernel failed on a worker thread (its error is printed on stderr)');
  }
}

/** Blocks along the first axis of the job's grid. */
function firstBlocks(p: Float64Array): number {
  const first = p[Slot.first]!;
  return first <= 0 ? 0 : Math.ceil(first / p[Slot.firstBlock]!);
}

/**
 * The calling thread's part of a staged job: stage every block in, publishing each as it lands, then
 * copy blocks out in order as they finish, running chunks itself while the next block is not done.
 */
function runStaged(
  kernels: KernelExports,
  control: ControlBlock,
  runner: ChunkRunner,
  tasks: number,
  blocks: number,
  stages: JobStages,
  callerRuns: boolean,
  onError: (error: unknown) => void,
): void {
  const words = control.words;
  const finished = control.finished;
  const chunksPerBlock = tasks / blocks;
  for (let block = 0; block < blocks; block++) {
    stages.stageIn(block);
    Atomics.store(words, Control.available, (block + 1) * chunksPerBlock);
    Atomics.notify(words, Control.available);
  }
  let chunk = 0;
  for (let block = 0; block < blocks; block++) {
    const end = (block + 1) * chunksPerBlock;
    while (chunk < end) {
      const flag = Atomics.load(finished, chunk);
      if (flag === generation) {
        chunk++;
        continue;
      }
      const claimed = callerRuns ? claimChunk(words, generation, tasks) : NONE_LEFT;
      if (claimed >= 0) {
        runClaimedChunk(kernels, control, runner, claimed, 0, generation, tasks, onError);
      } else {
        waitWhile(control, finished, chunk, flag);
      }
    }
    stages.stageOut(block);
  }
}

/** Claims every chunk not yet claimed, staged or not, and counts it done without running it. */
function abandonUnstaged(control: ControlBlock, tasks: number): void {
  const words = control.words;
  let claim = Atomics.load(words, Control.claim);
  while (claim >>> CHUNK_BITS === generation && (claim & (MAX_CHUNKS - 1)) < tasks) {
    const witnessed = Atomics.compareExchange(words, Control.claim, claim, claim + 1);
    if (witnessed === claim) {
      Atomics.store(control.finished, claim & (MAX_CHUNKS - 1), generation);
      Atomics.add(words, Control.done, 1);
      claim++;
    } else {
      claim = witnessed;
    }
  }
}

/**
 * Starts the workers now rather than on the first threaded job, and resolves once every one has
 * instantiated the kernels (tests use it so that worker threads, not just the caller, run chunks).
 */
export async function wasmWorkersReady(): Promise<void> {
  if (liveWorkers() < threads() - 1) startWorkers();
  await Promise.all(workers.map((worker) => (worker === undefined ? undefined : workersReady.get(worker))));
}

/** Workers currently started (for tests: they are created lazily and must not pile up). */
export function startedWorkers(): number {
  return liveWorkers();
}

/** Chunks run by worker threads so far (for tests: proof that the workers took part). */
export function workerChunksRun(): number {
  return Atomics.load(jobControl().words, Control.workerChunks);
}
