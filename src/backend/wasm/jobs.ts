/**
 * Jobs: one kernel call split into chunks, and the protocol by which threads claim and run them.
 *
 * This module is loaded both by the calling thread (./threads.ts) and by every worker (./worker.ts).
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
import type { KernelExports } from './runtime.js';

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

/** What a job computes; selects the chunk runner. */
export const JobKind = {
  matmul: 0,
  conv2dForward: 1,
  conv2dBackwardInput: 2,
  conv2dBackwardWeight: 3,
  maxPool2dForward: 4,
  maxPool2dBackward: 5,
  avgPool2dForward: 6,
  avgPool2dBackward: 7,
  batchNormTrainForward: 8,
  batchNormTrainBackward: 9,
  channelAffine: 10,
  channelSum: 11,
  reluForward: 12,
  reluBackward: 13,
  leakyReluForward: 14,
  leakyReluBackward: 15,
  binaryBroadcast: 16,
  binarySameShape: 17,
  gemmPack: 18,
  gemmPackedBlocks: 19,
  winogradConv: 20,
  winogradWeightGradient: 21,
} as const;
export type JobKind = (typeof JobKind)[keyof typeof JobKind];

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

// The block of the chunk being run, set by locate(); module state rather than a returned tuple so the
// per-chunk path allocates nothing.
let firstIndex = 0;
let firstStart = 0;
let firstEnd = 0;
let secondStart = 0;
let secondEnd = 0;

function locate(p: Float64Array, chunk: number): void {
  const second = p[Slot.second]!;
  const secondBlock = p[Slot.secondBlock]!;
  const secondBlocks = blocks(second, secondBlock);
  const i = Math.floor(chunk / secondBlocks);
  const j = chunk - i * secondBlocks;
  const first = p[Slot.first]!;
  const firstBlock = p[Slot.firstBlock]!;
  firstIndex = i;
  firstStart = i * firstBlock;
  firstEnd = Math.min(firstStart + firstBlock, first);
  secondStart = j * secondBlock;
  secondEnd = Math.min(secondStart + secondBlock, second);
}

function scratchOf(p: Float64Array, thread: number): number {
  return p[Slot.scratch]! + thread * p[Slot.scratchStride]!;
}

type ChunkRunner = (k: KernelExports, p: Float64Array, thread: number) => void;

const A = ARGUMENTS;

/**
 * matmul: arguments a, b, c, m, n, k, transposeA, transposeB, accumulate; first = rows of C,
 * second = columns of C. A block of C needs only its rows of op(A) and columns of op(B), which are
 * sub-matrices with the original leading dimensions.
 */
const matmulChunk: ChunkRunner = (kernels, p, thread) => {
  const a = p[A]!;
  const b = p[A + 1]!;
  const c = p[A + 2]!;
  const m = p[A + 3]!;
  const n = p[A + 4]!;
  const k = p[A + 5]!;
  const transposeA = p[A + 6] !== 0;
  const transposeB = p[A + 7] !== 0;
  const lda = transposeA ? m : k;
  const ldb = transposeB ? k : n;
  const aBlock = a + (transposeA ? firstStart : firstStart * lda) * 4;
  const bBlock = b + (transposeB ? secondStart * ldb : secondStart) * 4;
  kernels.gemmStrided(
    firstEnd - firstStart,
    secondEnd - secondStart,
    k,
    aBlock,
    lda,
    transposeA,
    bBlock,
    ldb,
    transposeB,
    c + (firstStart * n + secondStart) * 4,
    n,
    p[A + 8] !== 0,
    scratchOf(p, thread),
  );
};

/**
 * gemmPack: arguments a, b, m, n, k, transposeA, transposeB, packedA, packedB, rows per A piece,
 * columns per B piece; first = operand (0: A, 1: B), second = piece (pieces past the operand's end
 * pack nothing).
 */
const gemmPackChunk: ChunkRunner = (kernels, p) => {
  const m = p[A + 2]!;
  const n = p[A + 3]!;
  const k = p[A + 4]!;
  const transposeA = p[A + 5] !== 0;
  const transposeB = p[A + 6] !== 0;
  if (firstStart === 0) {
    const rows = p[A + 9]!;
    const start = secondStart * rows;
    if (start < m)
      kernels.gemmPackA(
        p[A]!,
        transposeA ? m : k,
        transposeA,
        m,
        k,
        start,
        Math.min(m, start + rows),
        p[A + 7]!,
      );
  } else {
    const columns = p[A + 10]!;
    const start = secondStart * columns;
    if (start < n)
      kernels.gemmPackB(
        p[A + 1]!,
        transposeB ? k : n,
        transposeB,
        n,
        k,
        start,
        Math.min(n, start + columns),
        p[A + 8]!,
      );
  }
};

/**
 * gemmPackedBlocks: arguments packedA, packedB, c, m, n, k, accumulate; first = rows of C, second =
 * columns of C; this thread's scratch holds its edge tile.
 */
const gemmPackedBlocksChunk: ChunkRunner = (kernels, p, thread) => {
  const n = p[A + 4]!;
  kernels.gemmPackedBlock(
    p[A]!,
    p[A + 1]!,
    p[A + 3]!,
    n,
    p[A + 5]!,
    p[A + 2]!,
    n,
    p[A + 6] !== 0,
    firstStart,
    firstEnd,
    secondStart,
    secondEnd,
    scratchOf(p, thread),
  );
};

/**
 * Convolutions: the 18 arguments, then the block's two ranges, then this thread's columns and
 * workspace. The third pointer (the output) moves by Slot.blockStride per first-axis block, which
 * gives each image block of the weight gradient its own partial sum.
 */
function convChunk(kernel: 'conv2dForward' | 'conv2dBackwardInput' | 'conv2dBackwardWeight'): ChunkRunner {
  return (kernels, p, thread) => {
    const cols = scratchOf(p, thread);
    kernels[kernel](
      p[A]!,
      p[A + 1]!,
      p[A + 2]! + firstIndex * p[Slot.blockStride]!,
      p[A + 3]!,
      p[A + 4]!,
      p[A + 5]!,
      p[A + 6]!,
      p[A + 7]!,
      p[A + 8]!,
      p[A + 9]!,
      p[A + 10]!,
      p[A + 11]!,
      p[A + 12]!,
      p[A + 13]!,
      p[A + 14]!,
      p[A + 15]!,
      p[A + 16]!,
      p[A + 17]!,
      firstStart,
      firstEnd,
      secondStart,
      secondEnd,
      cols,
      cols + p[Slot.workOffset]!,
    );
  };
}

/**
 * winogradConv: arguments x, packed transformed weights, out, batch, inChannels, height, width,
 * outChannels; first = images, second = output channels.
 */
const winogradChunk: ChunkRunner = (kernels, p, thread) => {
  kernels.winogradConv(
    p[A]!,
    p[A + 1]!,
    p[A + 2]!,
    p[A + 3]!,
    p[A + 4]!,
    p[A + 5]!,
    p[A + 6]!,
    p[A + 7]!,
    firstStart,
    firstEnd,
    secondStart,
    secondEnd,
    scratchOf(p, thread),
  );
};

/**
 * winogradWeightGradient: arguments x, gradOut, gradWeight (partial sums), batch, inChannels, height,
 * width, outChannels; first = images (each block writes its own partial sum, Slot.blockStride
 * apart), second = output channels.
 */
const winogradWeightGradientChunk: ChunkRunner = (kernels, p, thread) => {
  kernels.winogradWeightGradient(
    p[A]!,
    p[A + 1]!,
    p[A + 2]! + firstIndex * p[Slot.blockStride]!,
    p[A + 3]!,
    p[A + 4]!,
    p[A + 5]!,
    p[A + 6]!,
    p[A + 7]!,
    firstStart,
    firstEnd,
    secondStart,
    secondEnd,
    scratchOf(p, thread),
  );
};

/**
 * Pooling: arguments input, output, argmax (0 for average pooling), the pooling geometry (planes,
 * inHeight, inWidth, kernelHeight, kernelWidth, strideHeight, strideWidth, padTop, padLeft, outHeight,
 * outWidth) and countIncludePad; first = planes. A block of planes is a pooling problem of its own
 * at an offset.
 */
const PLANES = A + 3;

function planeInBytes(p: Float64Array): number {
  return p[PLANES + 1]! * p[PLANES + 2]! * 4;
}

function planeOutBytes(p: Float64Array): number {
  return p[PLANES + 9]! * p[PLANES + 10]! * 4;
}

const maxPoolForwardChunk: ChunkRunner = (kernels, p) => {
  const inBytes = planeInBytes(p);
  const outBytes = planeOutBytes(p);
  kernels.maxPool2dForward(
    p[A]! + firstStart * inBytes,
    p[A + 1]! + firstStart * outBytes,
    p[A + 2]! + firstStart * outBytes,
    firstEnd - firstStart,
    p[PLANES + 1]!,
    p[PLANES + 2]!,
    p[PLANES + 3]!,
    p[PLANES + 4]!,
    p[PLANES + 5]!,
    p[PLANES + 6]!,
    p[PLANES + 7]!,
    p[PLANES + 8]!,
    p[PLANES + 9]!,
    p[PLANES + 10]!,
  );
};

/** Average pooling, forward (input x, output out) or backward (input gradOut, output gradX). */
function avgPoolChunk(backward: boolean): ChunkRunner {
  return (kernels, p) => {
    const inBytes = planeInBytes(p);
    const outBytes = planeOutBytes(p);
    const kernel = backward ? kernels.avgPool2dBackward : kernels.avgPool2dForward;
    kernel(
      p[A]! + firstStart * (backward ? outBytes : inBytes),
      p[A + 1]! + firstStart * (backward ? inBytes : outBytes),
      firstEnd - firstStart,
      p[PLANES + 1]!,
      p[PLANES + 2]!,
      p[PLANES + 3]!,
      p[PLANES + 4]!,
      p[PLANES + 5]!,
      p[PLANES + 6]!,
      p[PLANES + 7]!,
      p[PLANES + 8]!,
      p[PLANES + 9]!,
      p[PLANES + 10]!,
      p[PLANES + 11] !== 0,
    );
  };
}

/** maxPool2dBackward: arguments gradOut, argmax, gradX, planeIn, planeOut; first = planes. */
const maxPoolBackwardChunk: ChunkRunner = (kernels, p) => {
  const planeIn = p[A + 3]!;
  const planeOut = p[A + 4]!;
  kernels.maxPool2dBackward(
    p[A]! + firstStart * planeOut * 4,
    p[A + 1]! + firstStart * planeOut * 4,
    p[A + 2]! + firstStart * planeIn * 4,
    firstEnd - firstStart,
    planeIn,
    planeOut,
  );
};

/**
 * batchNormTrainForward: x, gamma, beta, out, mean, invStd, eps, batch, channels, spatial, relu (1 for
 * the fused batch norm + ReLU); first = channels.
 */
const batchNormForwardChunk: ChunkRunner = (kernels, p) => {
  kernels.batchNormTrainForward(
    p[A]!,
    p[A + 1]!,
    p[A + 2]!,
    p[A + 3]!,
    p[A + 4]!,
    p[A + 5]!,
    p[A + 6]!,
    p[A + 7]!,
    p[A + 8]!,
    p[A + 9]!,
    firstStart,
    firstEnd,
    p[A + 10] !== 0,
  );
};

/**
 * batchNormTrainBackward: its 11 arguments in order, then the fused forward's output (0 for plain
 * batch norm); first = channels.
 */
const batchNormBackwardChunk: ChunkRunner = (kernels, p) => {
  kernels.batchNormTrainBackward(
    p[A]!,
    p[A + 1]!,
    p[A + 2]!,
    p[A + 3]!,
    p[A + 4]!,
    p[A + 5]!,
    p[A + 6]!,
    p[A + 7]!,
    p[A + 8]!,
    p[A + 9]!,
    p[A + 10]!,
    firstStart,
    firstEnd,
    p[A + 11]!,
  );
};

/** channelAffine: x, scale, shift, out, channels, spatial, relu; first = planes (batch·channels). */
const channelAffineChunk: ChunkRunner = (kernels, p) => {
  kernels.channelAffine(
    p[A]!,
    p[A + 1]!,
    p[A + 2]!,
    p[A + 3]!,
    p[A + 4]!,
    p[A + 5]!,
    firstStart,
    firstEnd,
    p[A + 6] !== 0,
  );
};

/** channelSum: x, out, batch, channels, spatial; first = channels. */
const channelSumChunk: ChunkRunner = (kernels, p) => {
  kernels.channelSum(p[A]!, p[A + 1]!, p[A + 2]!, p[A + 3]!, p[A + 4]!, firstStart, firstEnd);
};

/** Unary and same-shape kernels over an element range: pointers, then (for leaky ReLU) the slope. */
const reluForwardChunk: ChunkRunner = (kernels, p) => {
  kernels.reluForward(p[A]!, p[A + 1]!, firstStart, firstEnd);
};
const reluBackwardChunk: ChunkRunner = (kernels, p) => {
  kernels.reluBackward(p[A]!, p[A + 1]!, p[A + 2]!, firstStart, firstEnd);
};
const leakyReluForwardChunk: ChunkRunner = (kernels, p) => {
  kernels.leakyReluForward(p[A]!, p[A + 1]!, p[A + 2]!, firstStart, firstEnd);
};
const leakyReluBackwardChunk: ChunkRunner = (kernels, p) => {
  kernels.leakyReluBackward(p[A]!, p[A + 1]!, p[A + 2]!, p[A + 3]!, firstStart, firstEnd);
};

/** binaryBroadcast: kind, full, broadcast, out, fullIsLeft, middle, inner; first = rows. */
const binaryBroadcastChunk: ChunkRunner = (kernels, p) => {
  kernels.binaryBroadcast(
    p[A]!,
    p[A + 1]!,
    p[A + 2]!,
    p[A + 3]!,
    p[A + 4] !== 0,
    p[A + 5]!,
    p[A + 6]!,
    firstStart,
    firstEnd,
  );
};

/** binarySameShape: kind, a, b, out; first = elements. */
const binarySameShapeChunk: ChunkRunner = (kernels, p) => {
  kernels.binarySameShape(p[A]!, p[A + 1]!, p[A + 2]!, p[A + 3]!, firstStart, firstEnd);
};

/** Chunk runners by JobKind. */
const runners: Record<JobKind, ChunkRunner> = {
  [JobKind.matmul]: matmulChunk,
  [JobKind.conv2dForward]: convChunk('conv2dForward'),
  [JobKind.conv2dBackwardInput]: convChunk('conv2dBackwardInput'),
  [JobKind.conv2dBackwardWeight]: convChunk('conv2dBackwardWeight'),
  [JobKind.maxPool2dForward]: maxPoolForwardChunk,
  [JobKind.maxPool2dBackward]: maxPoolBackwardChunk,
  [JobKind.avgPool2dForward]: avgPoolChunk(false),
  [JobKind.avgPool2dBackward]: avgPoolChunk(true),
  [JobKind.batchNormTrainForward]: batchNormForwardChunk,
  [JobKind.batchNormTrainBackward]: batchNormBackwardChunk,
  [JobKind.channelAffine]: channelAffineChunk,
  [JobKind.channelSum]: channelSumChunk,
  [JobKind.reluForward]: reluForwardChunk,
  [JobKind.reluBackward]: reluBackwardChunk,
  [JobKind.leakyReluForward]: leakyReluForwardChunk,
  [JobKind.leakyReluBackward]: leakyReluBackwardChunk,
  [JobKind.binaryBroadcast]: binaryBroadcastChunk,
  [JobKind.binarySameShape]: binarySameShapeChunk,
  [JobKind.gemmPack]: gemmPackChunk,
  [JobKind.gemmPackedBlocks]: gemmPackedBlocksChunk,
  [JobKind.winogradConv]: winogradChunk,
  [JobKind.winogradWeightGradient]: winogradWeightGradientChunk,
};

/** Runs chunk `chunk` of the job of kind `kind` described by `p`, as thread `thread`. */
export function runChunk(
  kernels: KernelExports,
  kind: JobKind,
  p: Float64Array,
  chunk: number,
  thread: number,
): void {
  locate(p, chunk);
  runners[kind](kernels, p, thread);
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
  kind: JobKind,
  chunk: number,
  thread: number,
  generation: number,
  tasks: number,
  onError: (error: unknown) => void,
): void {
  const words = control.words;
  try {
    runChunk(kernels, kind, control.parameters, chunk, thread);
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
  control: ControlBlock,
  thread: number,
  onError: (error: unknown) => void,
): void {
  const words = control.words;
  const generation = Atomics.load(words, Control.claim) >>> CHUNK_BITS;
  // Read before any chunk is claimed; a successful claim proves these belong to `generation`.
  const kind = Atomics.load(words, Control.kind) as JobKind;
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
    runClaimedChunk(kernels, control, kind, chunk, thread, generation, tasks, onError);
  }
}
