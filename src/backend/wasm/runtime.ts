/**
 * Loading of the kernels module (build/wasm/kernels-relaxed.wasm where the engine runs relaxed SIMD,
 * build/wasm/kernels.wasm otherwise) and the scratch arena in its linear memory.
 *
 * The module imports a shared memory: the calling thread and the worker threads of ./threads.ts each
 * instantiate the same compiled module over that one memory, which ./heap.ts divides into blocks.
 * Kernels allocate nothing: each backend call resets the arena, lays out its operands, outputs and
 * per-thread scratch in it, copies in the inputs that are JavaScript arrays, runs, and copies such
 * outputs back; operands that are tensors kept in the module's memory are used in place. Only the
 * calling thread allocates, and only between kernel runs, so workers never see the memory grow under
 * them.
 */
import { compileKernels, type KernelBuild } from '../../platform/wasm-kernels.js';
import { ALIGNMENT, MAXIMUM_PAGES, WasmHeap } from './heap.js';
import { definedJobTable } from './jobs.js';

/** Must match --initialMemory in scripts/build-wasm.mjs. */
const INITIAL_PAGES = 16;

/**
 * The part of the WebAssembly JavaScript API used here. tsconfig's lib is ES2022 without DOM, which
 * is where TypeScript declares WebAssembly, so this module declares what it uses.
 */
export interface WasmMemory {
  readonly buffer: ArrayBufferLike;
  grow(deltaPages: number): number;
}
/** A compiled module; opaque here, and cloneable to worker threads. */
export type WasmModule = object;
interface WasmApi {
  Memory: new (descriptor: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (
    module: WasmModule,
    imports: Record<string, Record<string, unknown>>,
  ) => { readonly exports: Record<string, unknown> };
}
declare const WebAssembly: WasmApi;

/** Byte address in the module's linear memory. */
export type Pointer = number;

/**
 * The functions exported by assembly/index.ts that this backend calls (see the AssemblyScript
 * sources for semantics). Only heapBase is declared here, for this module; each kernel file of this
 * folder declares the exports it calls by augmenting this interface
 * (`declare module './runtime.js' { interface KernelExports { … } }`) and lists them in its jobs
 * (./jobs.ts, KernelFileJobs), which instantiateKernels checks. Kernels that threads share take the
 * block of the output they compute as trailing ranges.
 */
export interface KernelExports {
  heapBase(): Pointer;
}
/** The exports this module calls itself. */
export type RuntimeExportName = 'heapBase';
const runtimeExportNames: readonly RuntimeExportName[] = ['heapBase'];

/** The scratch block is sized to what the largest call needed, plus this much room. */
const ARENA_HEADROOM = 1.25;

/**
 * Per-call scratch in the module's memory: a bump allocator over one heap block, reset at the start
 * of every backend call. A call that needs more than the block takes extra blocks from the heap;
 * the next reset replaces them all with one block of the size that call needed, so repeated calls
 * settle on one block and neither allocate nor leak.
 *
 * Operands that are already in the module's memory (tensors of WasmTensorStorage) are used where
 * they are: place() returns their own address, and the copy functions skip them.
 */
export class WasmArena {
  private block: Pointer = 0;
  private blockBytes = 0;
  private top: Pointer = 0;
  private extra: [start: Pointer, bytes: number][] = [];
  private used = 0;

  constructor(readonly heap: WasmHeap) {}

  /** Bytes of scratch held between calls. */
  get capacityBytes(): number {
    return this.blockBytes;
  }

  /** Forgets every region handed out so far; the block itself is kept for the next call. */
  reset(): void {
    if (this.extra.length > 0) {
      for (const [start, bytes] of this.extra) this.heap.release(start, bytes);
      this.extra = [];
      if (this.blockBytes > 0) this.heap.release(this.block, this.blockBytes);
      this.blockBytes = roundToLine(this.used * ARENA_HEADROOM);
      this.block = this.heap.allocate(this.blockBytes);
    }
    this.top = this.block;
    this.used = 0;
  }

  /** Reserves `bytes` bytes (contents undefined) and returns their address. */
  allocate(bytes: number): Pointer {
    const size = roundToLine(bytes);
    this.used += size;
    if (this.top + size <= this.block + this.blockBytes) {
      const start = this.top;
      this.top += size;
      return start;
    }
    const start = this.heap.allocate(size);
    this.extra.push([start, size]);
    return start;
  }

  /**
   * Where the first `count` elements of `data` are to be read or written by a kernel: their own
   * address when data lives in the module's memory, else a fresh scratch region (for the caller's
   * stages or copyIn to fill, and copyOut to read back).
   */
  place(data: Float32Array | Int32Array, count: number): Pointer {
    return this.heap.contains(data) ? data.byteOffset : this.allocate(count * 4);
  }

  /** Reserves room for the first `count` elements of `data` and copies them in (unless in place). */
  copyIn(data: Float32Array | Int32Array, count: number): Pointer {
    const at = this.place(data, count);
    this.copyInRange(at, data, 0, count);
    return at;
  }

  /** Copies `count` elements starting at `at` into the front of `target` (unless it is in place). */
  copyOut(at: Pointer, target: Float32Array | Int32Array, count: number): void {
    if (this.inPlace(target, at)) return;
    target.set(target instanceof Float32Array ? this.floats(at, count) : this.ints(at, count));
  }

  /** Copies data[start, start + count) to the same element offsets of the region at `at`. */
  copyInRange(at: Pointer, data: Float32Array | Int32Array, start: number, count: number): void {
    if (this.inPlace(data, at)) return;
    const address = at + start * 4;
    const view = data instanceof Float32Array ? this.floats(address, count) : this.ints(address, count);
    view.set(data.subarray(start, start + count));
  }

  /** Copies elements [start, start + count) of the region at `at` to the same offsets of `target`. */
  copyOutRange(at: Pointer, target: Float32Array | Int32Array, start: number, count: number): void {
    if (this.inPlace(target, at)) return;
    const address = at + start * 4;
    target.set(
      target instanceof Float32Array ? this.floats(address, count) : this.ints(address, count),
      start,
    );
  }

  /** A Float32Array over `count` floats at `at`, to fill a region in place. */
  view(at: Pointer, count: number): Float32Array {
    return this.floats(at, count);
  }

  /** Whether the region at `at` is data's own memory (placed there by place()): nothing to copy. */
  private inPlace(data: Float32Array | Int32Array, at: Pointer): boolean {
    return data.byteOffset === at && this.heap.contains(data);
  }

  private floats(at: Pointer, count: number): Float32Array {
    return new Float32Array(this.heap.buffer(), at, count);
  }

  private ints(at: Pointer, count: number): Int32Array {
    return new Int32Array(this.heap.buffer(), at, count);
  }
}

function roundToLine(bytes: number): number {
  return Math.ceil(Math.max(bytes, 0) / ALIGNMENT) * ALIGNMENT;
}

/** Which build of the kernels runs (see src/platform/wasm-kernels.ts, which compiles it). */
export type WasmKernelBuild = KernelBuild;

export interface WasmRuntime {
  readonly kernels: KernelExports;
  readonly arena: WasmArena;
  /** Blocks of the module's memory: the arena's, and tensors' (WasmTensorStorage). */
  readonly heap: WasmHeap;
  /** The compiled module and the shared memory, for worker threads to instantiate their own copy. */
  readonly module: WasmModule;
  readonly memory: WasmMemory;
  readonly build: WasmKernelBuild;
}

/**
 * Instantiates `module` over `memory` and checks that it exports every kernel this backend calls: this
 * module's, and those the kernel files list in the job table (./index.ts defines it on import).
 */
export function instantiateKernels(module: WasmModule, memory: WasmMemory): KernelExports {
  const { exports } = new WebAssembly.Instance(module, { env: { memory } });
  for (const name of [...runtimeExportNames, ...(definedJobTable()?.exportNames ?? [])]) {
    if (typeof exports[name] !== 'function') {
      throw new Error(
        `wasm backend: the kernels module has no export ${name}; rebuild it with \`npm run build:wasm\``,
      );
    }
  }
  // Every name was checked to be a function just above; their signatures come from assembly/ (the
  // kernel files declare them).
  return exports as unknown as KernelExports;
}

function load(): WasmRuntime {
  const memory = new WebAssembly.Memory({ initial: INITIAL_PAGES, maximum: MAXIMUM_PAGES, shared: true });
  // Node reads and compiles build/wasm/ here; the browser build's twin hands over what the page compiled.
  const { module, build } = compileKernels();
  const kernels = instantiateKernels(module, memory);
  const heap = new WasmHeap(memory, kernels.heapBase());
  return { kernels, arena: new WasmArena(heap), heap, module, memory, build };
}

let runtime: WasmRuntime | undefined;

/** The loaded module and its arena; compiled and instantiated synchronously on first use. */
export function wasmRuntime(): WasmRuntime {
  runtime ??= load();
  return runtime;
}

/** Which kernels build this process runs (compiling it if that has not happened yet). */
export function wasmKernelBuild(): WasmKernelBuild {
  return wasmRuntime().build;
}
