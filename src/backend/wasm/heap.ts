/**
 * The kernels module's memory as a heap of blocks that outlive a backend call: tensors the wasm
 * backend computes on live here (WasmTensorStorage), so that its kernels read their inputs and write
 * their outputs in place instead of copying every operand in and every result out; the per-call
 * scratch arena (./runtime.ts) is a block too.
 *
 * Why: a training step of the seed CNN copied about 380 MB between JavaScript arrays and the
 * module's memory, all of it on the calling thread while the workers waited for their share
 * (measured: the step 1.33× faster with the copies skipped).
 *
 * The memory is shared (SharedArrayBuffer), so growing it never moves or detaches what is already
 * there: a Float32Array made over memory.buffer before a grow stays valid, it merely belongs to an
 * older SharedArrayBuffer object of the same memory. Blocks are only handed out and freed on the
 * calling thread between kernel runs, so workers never see the memory grow under them.
 */
import type { Data, TensorStorage } from '../types.js';
import type { Pointer, WasmMemory } from './runtime.js';

const PAGE_BYTES = 65536;
/** wasm32's limit: 4 GiB of 64 KiB pages; must match --maximumMemory in scripts/build-wasm.mjs. */
export const MAXIMUM_PAGES = 65536;
/** Blocks start and end on cache-line boundaries, so SIMD rows of different blocks never share a line. */
export const ALIGNMENT = 64;

function align(bytes: number): number {
  return Math.ceil(Math.max(bytes, 0) / ALIGNMENT) * ALIGNMENT || ALIGNMENT;
}

/**
 * Best-fit allocation over the module's memory above `base`, with free neighbours merged. The free
 * list stays short (a training step uses a few dozen sizes), so linear scans are cheap next to the
 * kernels that use the blocks.
 */
export class WasmHeap {
  /** End of the highest block in use: memory above it is free and not in the list. */
  private top: Pointer;
  /** Free blocks below top, sorted by address, never adjacent (merged on free). */
  private readonly free: { start: Pointer; bytes: number }[] = [];
  /** SharedArrayBuffer objects that memory.buffer has returned: views over any of them are ours. */
  private readonly buffers = new WeakSet<object>();

  constructor(
    readonly memory: WasmMemory,
    base: Pointer,
  ) {
    this.top = align(base);
    this.buffers.add(memory.buffer);
  }

  /** The memory's current buffer (remembered, so that views made over it count as ours). */
  buffer(): ArrayBufferLike {
    const buffer = this.memory.buffer;
    this.buffers.add(buffer);
    return buffer;
  }

  /** Whether data is a view of this memory. */
  contains(data: Data | Int32Array): boolean {
    return this.buffers.has(data.buffer);
  }

  /** Reserves `bytes` (rounded up to whole cache lines); returns the block's address. */
  allocate(bytes: number): Pointer {
    const size = align(bytes);
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const candidate = this.free[i]!;
      if (candidate.bytes >= size && (best < 0 || candidate.bytes < this.free[best]!.bytes)) best = i;
      if (candidate.bytes === size) break;
    }
    if (best >= 0) {
      const block = this.free[best]!;
      const start = block.start;
      if (block.bytes === size) this.free.splice(best, 1);
      else {
        block.start += size;
        block.bytes -= size;
      }
      return start;
    }
    // No free block fits: take the memory above top, starting inside a free block that ends at top.
    let start = this.top;
    const last = this.free[this.free.length - 1];
    if (last !== undefined && last.start + last.bytes === this.top) {
      start = last.start;
      this.free.pop();
    }
    this.ensure(start + size);
    this.top = start + size;
    return start;
  }

  /** Returns the block of `bytes` at `start` (as passed to and returned by allocate). */
  release(start: Pointer, bytes: number): void {
    let end = start + align(bytes);
    let begin = start;
    // Insertion point: the first free block above this one.
    let low = 0;
    let high = this.free.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (this.free[middle]!.start < begin) low = middle + 1;
      else high = middle;
    }
    const before = this.free[low - 1];
    const after = this.free[low];
    let index = low;
    if (before !== undefined && before.start + before.bytes === begin) {
      begin = before.start;
      index--;
      this.free.splice(index, 1);
    }
    if (after !== undefined && after.start === end) {
      end = after.start + after.bytes;
      this.free.splice(index, 1);
    }
    if (end === this.top) {
      this.top = begin;
      return;
    }
    this.free.splice(index, 0, { start: begin, bytes: end - begin });
  }

  /** Bytes from the heap's base to its top (what the blocks in use, and the holes between, span). */
  get spanBytes(): number {
    return this.top;
  }

  /** Grows the memory to hold `end` bytes. */
  private ensure(end: number): void {
    const available = this.memory.buffer.byteLength;
    if (end <= available) return;
    const pages = Math.ceil((end - available) / PAGE_BYTES);
    if (available / PAGE_BYTES + pages > MAXIMUM_PAGES) {
      throw new RangeError(`wasm backend: ${end} bytes of memory needed, over the 4 GiB wasm32 limit`);
    }
    this.memory.grow(pages);
  }
}

/**
 * Most bytes of tensors the heap holds at once. Past it, new tensors are ordinary JavaScript arrays
 * again (copied in and out by the kernels, as before): tensors that nothing recycles are freed only
 * when the garbage collector has found them dead and the finalisation callback has run, which a
 * synchronous training loop never lets happen, and the module's memory never shrinks.
 */
const TENSOR_BYTE_LIMIT = 512 * 2 ** 20;

/**
 * Float32 tensors in the kernels module's memory (TensorStorage for the wasm backend). A block is
 * freed when free() is called with its array (the backward pass recycles dead gradients and
 * activations this way), or else once the garbage collector has collected the array.
 */
export class WasmTensorStorage implements TensorStorage {
  /** Block address and size of every array handed out and not yet freed. */
  private readonly blocks = new WeakMap<Float32Array, { start: Pointer; bytes: number }>();
  private readonly finalizer = new FinalizationRegistry<{ start: Pointer; bytes: number }>((block) =>
    this.returnBlock(block),
  );
  private bytesInUse = 0;
  /** Whether the limit has been reported (once a process). */
  private warned = false;

  /**
   * @param heap the heap, found on first use (the module loads lazily)
   * @param byteLimit most bytes of tensors held at once (tests lower it)
   */
  constructor(
    private readonly heap: () => WasmHeap,
    private readonly byteLimit = TENSOR_BYTE_LIMIT,
  ) {}

  allocate(size: number): Float32Array | null {
    const bytes = size * 4;
    if (this.bytesInUse + bytes > this.byteLimit) {
      if (!this.warned && process.env.TENSILE_QUIET !== '1') {
        this.warned = true;
        process.stderr.write(
          `tensile: wasm backend: ${this.byteLimit / 2 ** 20} MiB of tensors in its memory; new tensors are JavaScript arrays, copied per kernel call (slower), until the garbage collector frees old ones\n`,
        );
      }
      return null;
    }
    const heap = this.heap();
    const start = heap.allocate(bytes);
    const data = new Float32Array(heap.buffer(), start, size);
    const block = { start, bytes };
    this.blocks.set(data, block);
    this.finalizer.register(data, block, data);
    this.bytesInUse += bytes;
    return data;
  }

  free(data: Data): boolean {
    if (!(data instanceof Float32Array)) return false;
    const block = this.blocks.get(data);
    if (block === undefined) return false;
    this.blocks.delete(data);
    this.finalizer.unregister(data);
    this.returnBlock(block);
    return true;
  }

  owns(data: Data): boolean {
    return data instanceof Float32Array && this.blocks.has(data);
  }

  /** Bytes of tensors held now (for tests and the soak benchmark). */
  get heldBytes(): number {
    return this.bytesInUse;
  }

  private returnBlock(block: { start: Pointer; bytes: number }): void {
    this.bytesInUse -= block.bytes;
    this.heap().release(block.start, block.bytes);
  }
}
