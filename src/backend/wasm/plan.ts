/**
 * How the wasm backend lays out a kernel call: argument checks, how many chunks a job is cut into,
 * per-thread scratch, the job's arguments, and the stages that copy operands in and results out
 * block by block (see runJob in ./threads.ts). Shared by the kernel planners in this folder.
 */
import type { BatchNormGeometry } from '../types.js';
import { ARGUMENTS as A, chunkCount, MAX_CHUNKS, Slot } from './jobs.js';
import { wasmRuntime, type Pointer } from './runtime.js';
import { getWasmThreads, wasmTuning, type JobStages } from './threads.js';

/** Rejects arrays too short for their shape, which would otherwise be read as garbage in wasm memory. */
export function requireLength(name: string, data: Float32Array | Int32Array, count: number): void {
  if (data.length < count) {
    throw new RangeError(`wasm backend: ${name} has ${data.length} elements, the shape needs ${count}`);
  }
}

/** Element chunks are whole cache lines (16 floats), so two threads never write one line. */
export const LINE_FLOATS = 16;

export function roundUp(value: number, multiple: number): number {
  return Math.ceil(value / multiple) * multiple;
}

/**
 * How many chunks a job with `work` units should be split into: 1 on one thread, or below
 * `threshold` (waking a worker costs tens of microseconds, about what such a job takes); otherwise a
 * few per thread (wasmTuning.chunksPerThread), so that a thread the OS deschedules (the machine may be
 * shared) leaves its share to the others, but not many more, because every chunk has fixed costs
 * (a claim, a call into wasm, and for convolutions packing the weights).
 */
export function chunkTarget(work: number, threshold: number): number {
  const threads = getWasmThreads();
  return threads === 1 || work < threshold ? 1 : threads * wasmTuning.chunksPerThread;
}

/** Items per block so that `count` items make about `chunks` blocks, a multiple of `multiple`. */
export function blockFor(count: number, chunks: number, multiple = 1): number {
  const blocks = Math.min(Math.max(chunks, 1), MAX_CHUNKS);
  return Math.max(roundUp(Math.ceil(count / blocks), multiple), 1);
}

/** The job's grid: `first` items in blocks of firstBlock, times `second` items in blocks of secondBlock. */
export function setGrid(
  p: Float64Array,
  first: number,
  firstBlock: number,
  second = 1,
  secondBlock = 1,
): void {
  p[Slot.blockStride] = 0;
  p[Slot.first] = first;
  p[Slot.firstBlock] = firstBlock;
  p[Slot.second] = second;
  p[Slot.secondBlock] = secondBlock;
}

/**
 * Reserves `bytes` of scratch per thread that may run a chunk of the job (every thread when it has
 * several chunks) and records where. Returns the first thread's region.
 */
export function reserveScratch(p: Float64Array, bytes: number): Pointer {
  const { arena } = wasmRuntime();
  const stride = roundUp(Math.max(bytes, 0), 64);
  const threads = chunkCount(p) > 1 ? getWasmThreads() : 1;
  p[Slot.scratch] = arena.allocate(stride * threads);
  p[Slot.scratchStride] = stride;
  return p[Slot.scratch];
}

/** Writes `values` into the parameter block from the first argument slot on. */
export function setArguments(p: Float64Array, ...values: number[]): void {
  for (let i = 0; i < values.length; i++) p[A + i] = values[i]!;
}

/** An array staged by item: its region in wasm memory and the elements per item of the job's first axis. */
export type ItemArray = readonly [data: Float32Array | Int32Array, at: Pointer, elementsPerItem: number];

/**
 * Stages for a job whose first-axis items (images, planes, rows, elements) are consecutive runs of
 * elements in every staged array: block b copies its items of each input in and of each output out.
 * Arrays every chunk needs (weights) are copied in before the job instead.
 */
export function itemStages(
  p: Float64Array,
  inputs: readonly ItemArray[],
  outputs: readonly ItemArray[],
): JobStages {
  const { arena } = wasmRuntime();
  const first = p[Slot.first]!;
  const firstBlock = p[Slot.firstBlock]!;
  const copy = (block: number, arrays: readonly ItemArray[], into: boolean) => {
    const start = block * firstBlock;
    const count = Math.min(first, start + firstBlock) - start;
    for (const [data, at, unit] of arrays) {
      if (into) arena.copyInRange(at, data, start * unit, count * unit);
      else arena.copyOutRange(at, data, start * unit, count * unit);
    }
  };
  return {
    stageIn: (block) => copy(block, inputs, true),
    stageOut: (block) => copy(block, outputs, false),
  };
}

/** An array of a per-channel job: [batch, channels, spatial], or a [channels] vector when `vector`. */
export type ChannelArray = readonly [data: Float32Array, at: Pointer, vector: boolean];

/**
 * Stages for a job whose first axis is channels of x [batch, channels, spatial]: block b copies, for
 * every image, its run of channels of each full-size array, and its slice of each [channels] vector.
 */
export function channelStages(
  p: Float64Array,
  g: BatchNormGeometry,
  inputs: readonly ChannelArray[],
  outputs: readonly ChannelArray[],
): JobStages {
  const { arena } = wasmRuntime();
  const firstBlock = p[Slot.firstBlock]!;
  const copy = (block: number, arrays: readonly ChannelArray[], into: boolean) => {
    const start = block * firstBlock;
    const count = Math.min(g.channels, start + firstBlock) - start;
    for (const [data, at, vector] of arrays) {
      if (vector) {
        if (into) arena.copyInRange(at, data, start, count);
        else arena.copyOutRange(at, data, start, count);
        continue;
      }
      for (let n = 0; n < g.batch; n++) {
        const offset = (n * g.channels + start) * g.spatial;
        if (into) arena.copyInRange(at, data, offset, count * g.spatial);
        else arena.copyOutRange(at, data, offset, count * g.spatial);
      }
    }
  };
  return {
    stageIn: (block) => copy(block, inputs, true),
    stageOut: (block) => copy(block, outputs, false),
  };
}

/**
 * input itself, or a copy of it in a JavaScript array when it shares memory with one of `outputs`
 * inside the module's memory. Kernels other than the elementwise ones read inputs while other
 * threads write outputs: with JavaScript arrays each operand was copied to a region of its own, but
 * tensors kept in the module's memory are used in place, so an input that an output overlaps (an
 * in-place update of a view) is read from a copy instead.
 */
export function apart<T extends Float32Array | Int32Array>(
  input: T,
  ...outputs: readonly (Float32Array | Int32Array)[]
): T {
  const { heap } = wasmRuntime();
  if (!heap.contains(input)) return input;
  const start = input.byteOffset;
  const end = start + input.byteLength;
  for (const output of outputs) {
    if (!heap.contains(output)) continue;
    if (start < output.byteOffset + output.byteLength && output.byteOffset < end) return input.slice() as T;
  }
  return input;
}
