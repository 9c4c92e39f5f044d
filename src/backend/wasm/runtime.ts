/**
 * Loading of build/wasm/kernels.wasm and the scratch arena in its linear memory.
 *
 * The module imports a shared memory so that a later step can run the same kernels on worker threads
 * over one memory; today every kernel runs on the calling thread. Kernels allocate nothing: each
 * backend call resets the arena, lays out its inputs, outputs and scratch from heapBase() upwards,
 * copies the inputs in, runs, and copies the outputs out. The memory grows to the largest call seen
 * and is reused, so repeated calls neither allocate nor leak.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The part of the WebAssembly JavaScript API used here. tsconfig's lib is ES2022 without DOM, which
 * is where TypeScript declares WebAssembly, so this module declares what it uses.
 */
interface WasmMemory {
  readonly buffer: ArrayBufferLike;
  grow(deltaPages: number): number;
}
interface WasmApi {
  Memory: new (descriptor: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (
    module: object,
    imports: Record<string, Record<string, unknown>>,
  ) => { readonly exports: Record<string, unknown> };
}
declare const WebAssembly: WasmApi;

/** Byte address in the module's linear memory. */
export type Pointer = number;

/** Geometry of a convolution as the wasm kernels take it, in Conv2dGeometry's field order. */
export type ConvArguments = [
  batch: number,
  inChannels: number,
  inHeight: number,
  inWidth: number,
  outChannels: number,
  kernelHeight: number,
  kernelWidth: number,
  strideHeight: number,
  strideWidth: number,
  padTop: number,
  padLeft: number,
  dilationHeight: number,
  dilationWidth: number,
  outHeight: number,
  outWidth: number,
];

/** Geometry of a pooling window as the wasm kernels take it (planes = batch·channels). */
export type PoolArguments = [
  planes: number,
  inHeight: number,
  inWidth: number,
  kernelHeight: number,
  kernelWidth: number,
  strideHeight: number,
  strideWidth: number,
  padTop: number,
  padLeft: number,
  outHeight: number,
  outWidth: number,
];

/** The functions exported by assembly/index.ts (see the AssemblyScript sources for semantics). */
export type KernelExports = {
  heapBase(): Pointer;
  gemmWorkspaceBytes(m: number, n: number, k: number): number;
  gemm(
    a: Pointer,
    b: Pointer,
    c: Pointer,
    m: number,
    n: number,
    k: number,
    transposeA: boolean,
    transposeB: boolean,
    accumulate: boolean,
    work: Pointer,
  ): void;
  convColumnBytes(
    inChannels: number,
    kernelHeight: number,
    kernelWidth: number,
    strideHeight: number,
    strideWidth: number,
    padTop: number,
    padLeft: number,
    outHeight: number,
    outWidth: number,
  ): number;
  conv2dForward(
    x: Pointer,
    weight: Pointer,
    out: Pointer,
    ...rest: [...ConvArguments, Pointer, Pointer]
  ): void;
  conv2dBackwardInput(
    gradOut: Pointer,
    weight: Pointer,
    gradX: Pointer,
    ...rest: [...ConvArguments, Pointer, Pointer]
  ): void;
  conv2dBackwardWeight(
    x: Pointer,
    gradOut: Pointer,
    gradWeight: Pointer,
    ...rest: [...ConvArguments, Pointer, Pointer]
  ): void;
  maxPool2dForward(x: Pointer, out: Pointer, argmax: Pointer, ...geometry: PoolArguments): void;
  maxPool2dBackward(
    gradOut: Pointer,
    argmax: Pointer,
    gradX: Pointer,
    planes: number,
    planeIn: number,
    planeOut: number,
  ): void;
  avgPool2dForward(x: Pointer, out: Pointer, ...rest: [...PoolArguments, boolean]): void;
  avgPool2dBackward(gradOut: Pointer, gradX: Pointer, ...rest: [...PoolArguments, boolean]): void;
  batchNormTrainForward(
    x: Pointer,
    gamma: Pointer,
    beta: Pointer,
    out: Pointer,
    mean: Pointer,
    invStd: Pointer,
    eps: number,
    batch: number,
    channels: number,
    spatial: number,
  ): void;
  batchNormTrainBackward(
    x: Pointer,
    gradOut: Pointer,
    gamma: Pointer,
    mean: Pointer,
    invStd: Pointer,
    gradX: Pointer,
    gradGamma: Pointer,
    gradBeta: Pointer,
    batch: number,
    channels: number,
    spatial: number,
  ): void;
  channelAffine(
    x: Pointer,
    scale: Pointer,
    shift: Pointer,
    out: Pointer,
    batch: number,
    channels: number,
    spatial: number,
  ): void;
};

const kernelNames: readonly (keyof KernelExports)[] = [
  'heapBase',
  'gemmWorkspaceBytes',
  'gemm',
  'convColumnBytes',
  'conv2dForward',
  'conv2dBackwardInput',
  'conv2dBackwardWeight',
  'maxPool2dForward',
  'maxPool2dBackward',
  'avgPool2dForward',
  'avgPool2dBackward',
  'batchNormTrainForward',
  'batchNormTrainBackward',
  'channelAffine',
];

const PAGE_BYTES = 65536;
/** Must match --initialMemory and --maximumMemory in scripts/build-wasm.mjs. */
const INITIAL_PAGES = 16;
const MAXIMUM_PAGES = 65536;
/** Regions start on cache-line boundaries so SIMD rows of different buffers never share a line. */
const ALIGNMENT = 64;

/** A bump allocator over the module's memory, reset at the start of every backend call. */
export class WasmArena {
  private top: Pointer;

  constructor(
    private readonly memory: WasmMemory,
    private readonly base: Pointer,
  ) {
    this.top = base;
  }

  /** Current size of the module's memory in bytes; it only grows, to the largest call so far. */
  get capacityBytes(): number {
    return this.memory.buffer.byteLength;
  }

  /** Forgets every region handed out so far; the memory itself is kept for the next call. */
  reset(): void {
    this.top = this.base;
  }

  /** Reserves `bytes` bytes (contents undefined) and returns their address. */
  allocate(bytes: number): Pointer {
    const start = Math.ceil(this.top / ALIGNMENT) * ALIGNMENT;
    this.top = start + Math.max(bytes, 0);
    const available = this.memory.buffer.byteLength;
    if (this.top > available) {
      const pages = Math.ceil((this.top - available) / PAGE_BYTES);
      if (available / PAGE_BYTES + pages > MAXIMUM_PAGES) {
        throw new RangeError(`wasm backend: a call needs ${this.top} bytes, over the 4 GiB wasm32 limit`);
      }
      this.memory.grow(pages);
    }
    return start;
  }

  /** Reserves room for the first `count` elements of `data` and copies them in. */
  copyIn(data: Float32Array | Int32Array, count: number): Pointer {
    const at = this.allocate(count * 4);
    const view = data instanceof Float32Array ? this.floats(at, count) : this.ints(at, count);
    view.set(data.subarray(0, count));
    return at;
  }

  /** Copies `count` elements starting at `at` into the front of `target`. */
  copyOut(at: Pointer, target: Float32Array | Int32Array, count: number): void {
    target.set(target instanceof Float32Array ? this.floats(at, count) : this.ints(at, count));
  }

  private floats(at: Pointer, count: number): Float32Array {
    return new Float32Array(this.memory.buffer, at, count);
  }

  private ints(at: Pointer, count: number): Int32Array {
    return new Int32Array(this.memory.buffer, at, count);
  }
}

export interface WasmRuntime {
  readonly kernels: KernelExports;
  readonly arena: WasmArena;
}

/** build/wasm/kernels.wasm, found from dist/src/backend/wasm/runtime.js. */
const wasmUrl = new URL('../../../../build/wasm/kernels.wasm', import.meta.url);

function load(): WasmRuntime {
  const path = fileURLToPath(wasmUrl);
  if (!existsSync(path)) {
    throw new Error(`wasm backend: ${path} is missing; run \`npm run build:wasm\` to build it`);
  }
  const memory = new WebAssembly.Memory({ initial: INITIAL_PAGES, maximum: MAXIMUM_PAGES, shared: true });
  const module = new WebAssembly.Module(readFileSync(path));
  const { exports } = new WebAssembly.Instance(module, { env: { memory } });
  for (const name of kernelNames) {
    if (typeof exports[name] !== 'function') {
      throw new Error(`wasm backend: ${path} has no export ${name}; rebuild it with \`npm run build:wasm\``);
    }
  }
  // Every name was checked to be a function just above; their signatures come from assembly/.
  const kernels = exports as KernelExports;
  return { kernels, arena: new WasmArena(memory, kernels.heapBase()) };
}

let runtime: WasmRuntime | undefined;

/** The loaded module and its arena; compiled and instantiated synchronously on first use. */
export function wasmRuntime(): WasmRuntime {
  runtime ??= load();
  return runtime;
}
