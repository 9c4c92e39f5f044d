/**
 * Jobs: one kernel call split into chunks, and the protocol by which threads claim and run them.
 *
 * This module is loaded both by the calling thread (./threads.ts) and by every worker (./worker.ts).
 * It knows no kernel: each kernel file of this folder brings its chunk runners (and declares the
 * exports of the kernels module they call) as a KernelFileJobs, and ./index.ts lists those in the job
 * table, which numbers the runners; a job is posted under its runner's number, and the calling thread
 * and every worker build the same table from the same list.
 * A job lives in a small SharedArrayBuffer, the control block: a few Int32 words for the protocol and
 * a Float64 parameter block (pointers into the shared wasm memory, shapes, and how the output is
 * split). A chunk is one block of a two-level grid over the output: `first` items (rows, images,
 * planes, channels, elements) in blocks of `firstBlock`, times `second` items in blocks of
 * `secondBlock`. Chunk c is block (c div secondBlocks, c mod secondBlocks).
 *
 * Claiming. The CLAIM word packs the job's generation (high bits) with the next unclaimed chunk (low
 * CHUNK_BITS bits). A thread claims by compare-and-swap, so a thread that wakes late, after the job it
 * was woken for has finished and the next one has been posted, sees a different generation and never
 * runs a chunk of the new job with the old job's parameters. Parameters are written only while no
 * job is in flight, and a successful claim proves the job it belongs to is still in flight, so they
 * are never read torn. Chunks are taken dynamically, so a thread that the OS deschedules (the
 * machine is shared) leaves its share to the others instead of holding them up.
 *
 * Staging. Only the calling thread can copy between JavaScript arrays and wasm memory, so a job may
 * be posted before its inputs are in place: the AVAILABLE word says how many chunks (in index order)
 * have their inputs copied in, and threads claim no chunk beyond it. As each chunk finishes its FINISHED
 * flag takes the job's generation, so the caller can copy that chunk's outputs out while other chunks
 * still run. Copying and computing then overlap instead of taking turns.
 */
import type { KernelExports, RuntimeExportName } from './runtime.js';

/** Int32 slots of the control block. */
export const Control = {
  /** Bumped for every posted job; idle workers sleep on it with Atomics.wait. */
  wake: 0,
  /** generation << CHUNK_BITS | next unclaimed chunk. */
  claim: 1,
  /** Chunks finished; the poster sleeps on it until it reaches the chunk count. */
  done: 2,
  /** Chunks that threw; the poster turns a non-zero count into an error. */
  failed: 3,
  /** The job's kind: its runner's place in the job table. */
  kind: 4,
  tasks: 5,
  /** Chunks run by worker threads (thread > 0) since the process started; tests read it. */
  workerChunks: 6,
  /** Chunks whose inputs are in wasm memory: chunks [0, available) may be claimed. */
  available: 7,
  /** How long a thread spins before sleeping when it must wait (microseconds; see waitWhile). */
  spinMicroseconds: 8,
} as const;
const CONTROL_INTS = 16;
/** Float64 slots of the parameter block. */
const PARAMETER_SLOTS = 48;

export const CHUNK_BITS = 12;
/** Most chunks a job may have. */
export const MAX_CHUNKS = 1 << CHUNK_BITS;
const CHUNK_MASK = MAX_CHUNKS - 1;
/** Generations wrap after 2^19 jobs; a thread would have to sleep through all of them to be fooled. */
export const GENERATION_MASK = (1 << (31 - CHUNK_BITS)) - 1;

/** Bytes of the SharedArrayBuffer holding the control words, the parameters and the finished flags. */
export const CONTROL_BYTES = CONTROL_INTS * 4 + PARAMETER_SLOTS * 8 + MAX_CHUNKS * 4;

/** Views of a control block. */
export interface ControlBlock {
  readonly words: Int32Array;
  readonly parameters: Float64Array;
  /** finished[c] is the generation of the last job whose chunk c is done (the caller resets it). */
  readonly finished: Int32Array;
}

export function controlBlock(buffer: SharedArrayBuffer): ControlBlock {
  const parametersAt = CONTROL_INTS * 4;
  const finishedAt = parametersAt + PARAMETER_SLOTS * 8;
  return {
    words: new Int32Array(buffer, 0, CONTROL_INTS),
    parameters: new Float64Array(buffer, parametersAt, PARAMETER_SLOTS),
    finished: new Int32Array(buffer, finishedAt, MAX_CHUNKS),
  };
}

/** Parameter slots shared by every job; kernel arguments start at ARGUMENTS. */
export const Slot = {
  first: 0,
  firstBlock: 1,
  second: 2,
  secondBlock: 3,
  /** Per-thread scratch: thread t uses [scratch + t·scratchStride, … + scratchStride). */
  scratch: 4,
  scratchStride: 5,
  /** Offset of the GEMM workspace inside a thread's scratch (after the im2col columns). */
  workOffset: 6,
  /** Bytes between the outputs of consecutive first-axis blocks, for jobs that write partial sums. */
  blockStride: 7,
} as const;
export const ARGUMENTS = 8;

/** Chunks of the job described by `p`. */
export function chunkCount(p: Float64Array): number {
  return blocks(p[Slot.first]!, p[Slot.firstBlock]!) * blocks(p[Slot.second]!, p[Slot.secondBlock]!);
}

function blocks(count: number, block: number): number {
  return count <= 0 ? 0 : Math.ceil(count / block);
}

/**
 * The block of the grid one chunk covers, as locate() sets it: [firstStart, firstEnd) of the first
 * axis (block firstIndex) and [secondStart, secondEnd) of the second.
 */
export interface ChunkBlock {
  firstIndex: number;
  firstStart: number;
  firstEnd: number;
  secondStart: number;
  secondEnd: number;
}

// One block object, refilled for every chunk, so that the per-chunk path allocates nothing.
const block: ChunkBlock = { firstIndex: 0, firstStart: 0, firstEnd: 0, secondStart: 0, secondEnd: 0 };

function locate(p: Float64Array, chunk: number): ChunkBlock {
  const second = p[Slot.second]!;
  const secondBlock = p[Slot.secondBlock]!;
  const secondBlocks = blocks(second, secondBlock);
  const i = Math.floor(chunk / secondBlocks);
  const j = chunk - i * secondBlocks;
  const first = p[Slot.first]!;
  const firstBlock = p[Slot.firstBlock]!;
  block.firstIndex = i;
  block.firstStart = i * firstBlock;
  block.firstEnd = Math.min(block.firstStart + firstBlock, first);
  block.secondStart = j * secondBlock;
  block.secondEnd = Math.min(block.secondStart + secondBlock, second);
  return block;
}

/** This thread's scratch region: [scratch + thread·scratchStride, … + scratchStride). */
export function scratchOf(p: Float64Array, thread: number): number {
  return p[Slot.scratch]! + thread * p[Slot.scratchStride]!;
}

/**
 * Runs one chunk of a job as thread `thread`: reads the job's arguments from `p` (from ARGUMENTS on)
 * and calls the kernels module on the block `chunk` of the output. The block is only valid during the
 * call (it is refilled for the next chunk).
 */
export type ChunkRunner = (
  kernels: KernelExports,
  p: Float64Array,
  chunk: ChunkBlock,
  thread: number,
) => void;

/**
 * What one kernel file of this folder contributes to the worker threads: the exports of the kernels
 * module it calls (it declares their signatures by augmenting KernelExports in ./runtime.ts; they
 * are checked when the module is instantiated), and its chunk runners by job name. Kernel files
 * export one each (`export const poolingJobs = { … } satisfies KernelFileJobs`) and ./index.ts lists
 * them all in the one job table.
 */
export interface KernelFileJobs {
  readonly exports: { readonly [Name in keyof KernelExports]?: true };
  readonly runners: { readonly [job: string]: ChunkRunner };
}

/** The exports of every kernel file in `Files` (a union of their names). */
type ExportsOf<Files extends readonly KernelFileJobs[]> = Files[number] extends infer File
  ? File extends KernelFileJobs
    ? keyof File['exports']
    : never
  : never;

/** KernelExports members that no file in `Files` lists: their files are missing from the table. */
export type UnlistedExports<Files extends readonly KernelFileJobs[]> = Exclude<
  keyof KernelExports,
  ExportsOf<Files> | RuntimeExportName
>;

/**
 * Every chunk runner, numbered: a job is posted under its runner's kind (its place in the table), so
 * the calling thread and every worker must number the same runners the same way. They do because
 * each builds its table from the same list of kernel files, in the same order (./index.ts).
 */
export class JobTable {
  /** Runners by kind. */
  readonly runners: readonly ChunkRunner[];
  /** Their job names (the keys of their files' runners), by kind. */
  readonly jobNames: readonly string[];
  /** Every export of the kernels module that the listed files call (./runtime.ts checks them). */
  readonly exportNames: readonly (keyof KernelExports)[];
  private readonly kinds = new Map<ChunkRunner, number>();

  constructor(files: readonly KernelFileJobs[]) {
    const runners: ChunkRunner[] = [];
    const jobNames: string[] = [];
    const exportNames = new Set<keyof KernelExports>();
    for (const file of files) {
      for (const name of Object.keys(file.exports) as (keyof KernelExports)[]) exportNames.add(name);
      for (const [job, runner] of Object.entries(file.runners)) {
        if (this.kinds.has(runner)) throw new Error(`wasm backend: job runner ${job} is listed twice`);
        this.kinds.set(runner, runners.length);
        runners.push(runner);
        jobNames.push(job);
      }
    }
    this.runners = runners;
    this.jobNames = jobNames;
    this.exportNames = [...exportNames];
  }

  /** The kind a job run by `runner` is posted under. */
  kindOf(runner: ChunkRunner): number {
    const kind = this.kinds.get(runner);
    if (kind === undefined) {
      throw new Error(
        `wasm backend: job runner ${runner.name} is not in the job table; list its file's jobs in src/backend/wasm/index.ts`,
      );
    }
    return kind;
  }
}

let installed: JobTable | undefined;

/**
 * Builds this thread's job table from the kernel files' jobs and makes it the one every job uses
 * (./index.ts calls this once, for the calling thread and for every worker that imports it). While a
 * kernel file that declares exports is missing from `files`, the call fails to compile, naming those
 * exports (`unlistedExports`).
 */
export function defineJobTable<const Files extends readonly KernelFileJobs[]>(
  files: Files &
    ([UnlistedExports<Files>] extends [never]
      ? unknown
      : { readonly unlistedExports: UnlistedExports<Files> }),
): JobTable {
  if (installed !== undefined) throw new Error('wasm backend: the job table is defined twice');
  installed = new JobTable(files);
  return installed;
}

/** The job table ./index.ts defined, or undefined before it has. */
export function definedJobTable(): JobTable | undefined {
  return installed;
}

/** The job table ./index.ts defined (an error before it has). */
export function jobTable(): JobTable {
  if (installed === undefined) {
    throw new Error('wasm backend: no job table; import the backend from src/backend/wasm/index.ts');
  }
  return installed;
}

/** Runs chunk `chunk` of the job described by `p` with `runner`, as thread `thread`. */
export function runChunk(
  kernels: KernelExports,
  runner: ChunkRunner,
  p: Float64Array,
  chunk: number,
  thread: number,
): void {
  runner(kernels, p, locate(p, chunk), thread);
}

/**
 * Waits while `array[index]` holds `value`: spins for up to Control.spinMicroseconds, then sleeps in
 * Atomics.wait. The spin (wasmTuning.spinMicroseconds) is off by default: measured on two pinned
 * cores, a 1 ms spin made the seed CNN's training step 15-30% slower, most likely because a spinning
 * worker takes the core that V8's garbage-collection and compiler threads need while the caller is
 * between kernels; a futex wake costs far less than that.
 */
export function waitWhile(control: ControlBlock, array: Int32Array, index: number, value: number): void {
  const spin = Atomics.load(control.words, Control.spinMicroseconds);
  if (spin > 0) {
    const deadline = performance.now() + spin / 1000;
    // performance.now() is read every 64 checks: it costs more than a load of the shared word.
    for (let checks = 1; Atomics.load(array, index) === value; checks++) {
      if ((checks & 63) === 0 && performance.now() > deadline) break;
    }
  }
  Atomics.wait(array, index, value);
}

/** claimChunk's answer when the job has no unclaimed chunk left (or has been replaced). */
export const NONE_LEFT = -1;
/** claimChunk's answer when the next chunk's inputs are not copied in yet. */
export const NOT_STAGED = -2;

/**
 * Claims the next chunk of the job of `generation` with `tasks` chunks: its index, NONE_LEFT, or
 * NOT_STAGED.
 */
export function claimChunk(words: Int32Array, generation: number, tasks: number): number {
  let claim = Atomics.load(words, Control.claim);
  for (;;) {
    if (claim >>> CHUNK_BITS !== generation) return NONE_LEFT;
    const chunk = claim & CHUNK_MASK;
    if (chunk >= tasks) return NONE_LEFT;
    if (chunk >= Atomics.load(words, Control.available)) return NOT_STAGED;
    const witnessed = Atomics.compareExchange(words, Control.claim, claim, claim + 1);
    if (witnessed === claim) return chunk;
    claim = witnessed;
  }
}

/**
 * Runs a claimed chunk and records it: its finished flag, the done count (whose last increment wakes
 * the poster). Errors are counted in Control.failed and passed to `onError` rather than thrown, so
 * the count still completes and nobody is left waiting.
 */
export function runClaimedChunk(
  kernels: KernelExports,
  control: ControlBlock,
  runner: ChunkRunner,
  chunk: number,
  thread: number,
  generation: number,
  tasks: number,
  onError: (error: unknown) => void,
): void {
  const words = control.words;
  try {
    runChunk(kernels, runner, control.parameters, chunk, thread);
  } catch (error) {
    Atomics.add(words, Control.failed, 1);
    onError(error);
  }
  if (thread > 0) Atomics.add(words, Control.workerChunks, 1);
  Atomics.store(control.finished, chunk, generation);
  Atomics.notify(control.finished, chunk);
  if (Atomics.add(words, Control.done, 1) + 1 === tasks) Atomics.notify(words, Control.done);
}

/**
 * Claims and runs chunks of the job in flight until none is left, as thread `thread`; returns at
 * once when that job is finished or another has replaced it. When the next chunk is not staged yet it
 * sleeps until the caller stages more.
 */
export function participate(
  kernels: KernelExports,
  jobs: JobTable,
  control: ControlBlock,
  thread: number,
  onError: (error: unknown) => void,
): void {
  const words = control.words;
  const generation = Atomics.load(words, Control.claim) >>> CHUNK_BITS;
  // Read before any chunk is claimed; a successful claim proves these belong to `generation`.
  const runner = jobs.runners[Atomics.load(words, Control.kind)]!;
  const tasks = Atomics.load(words, Control.tasks);
  for (;;) {
    const chunk = claimChunk(words, generation, tasks);
    if (chunk === NONE_LEFT) return;
    if (chunk === NOT_STAGED) {
      // The caller bumps and notifies Control.available as it stages chunks, and when it posts the
      // next job, so this sleep always ends.
      const available = Atomics.load(words, Control.available);
      const claim = Atomics.load(words, Control.claim);
      if (claim >>> CHUNK_BITS === generation && (claim & CHUNK_MASK) >= available) {
        waitWhile(control, words, Control.available, available);
      }
      continue;
    }
    runClaimedChunk(kernels, control, runner, chunk, thread, generation, tasks, onError);
  }
}
