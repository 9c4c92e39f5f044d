/**
 * Large tensor buffers: allocation without zero-filling, and reuse of the buffers that the backward
 * pass knows to be dead.
 *
 * Tensors are owned by the garbage collector (see tensor.ts), so in general nothing knows when a
 * buffer dies. The backward pass knows it for two kinds: the gradients it hands to the rules (never
 * shown to the user), dead once the rule has returned unless an input gradient shares their memory;
 * and the activations between the layers of a Sequential (markInternal), dead once every rule that
 * reads them has run. Handing those to the next allocation of the same size instead of leaving
 * them to the collector leaves almost no garbage behind a training step (seed CNN: 78 MB of fresh
 * buffers a step before, 0.2 MB after), which matters twice. V8 runs a full collection each time
 * some 64 MiB of external memory has piled up (about one a step before). And the malloc heap that
 * holds the buffers grows to the most garbage that ever piled up between two collections, so a
 * rare late collection raised the peak resident size for good, hundreds of steps into training.
 * Reused buffers are also still in cache.
 *
 * Only buffers handed out during the current backward pass, or marked internal, are ever taken:
 * an array that a rule returns from its closure, or that the user made, never is.
 */
import { getBackend } from '../backend/index.js';
import type { Data, DType, TensorStorage } from '../backend/types.js';
import { uninitializedBytes } from '../platform/bytes.js';

/** Below this many elements V8's own heap is faster than malloc, and zero-filling costs little. */
const smallArray = 1024;
/**
 * The free lists may hold as many bytes as allocateUninitialized handed out between the last two
 * backward passes (one training step's worth: the next step asks for the same again), and at
 * least this many; beyond that, dead buffers are left to the collector. A fixed cap of 256 MiB
 * sent ResNet-18's batch-32 step 24 MiB over it, garbage every step.
 */
let recycledByteFloor = 256 * 2 ** 20;

/** Dead buffers by byte length, most recently freed last (still warm in cache). */
const recycled = new Map<number, ArrayBuffer[]>();
let recycledBytes = 0;
/** Bytes allocateUninitialized took from malloc, and from the free lists, since the process began. */
let freshBytes = 0;
let reusedBytes = 0;
/** Sizes that allocateUninitialized was asked for since the last backward pass began. */
const requested = new Set<number>();
/** Bytes handed out (fresh or reused) since the last backward pass began, and in the window before. */
let requestedBytes = 0;
let previousRequestedBytes = 0;
/** Storage (see storageOf) handed out while a backward pass runs: the only gradients recycle() accepts. */
let backwardBuffers: Set<object> | null = null;
/** Off only in tests that compare results with and without reuse (setRecycling). */
let recyclingEnabled = true;
/** When each large buffer was handed out, counted in allocations (see allocationCount). */
const allocatedAt = new WeakMap<object, number>();
let allocations = 0;
/** Activations that nothing outside the recorded graph can reach (see markInternal). */
const internalBuffers = new WeakSet<object>();
/** Arrays that a backend's TensorStorage handed out, with that storage (which frees them). */
const stored = new WeakMap<Data, TensorStorage>();

/**
 * What identifies an array's memory: its ArrayBuffer, which each JavaScript array here owns whole,
 * or for an array in a backend's storage (many share one buffer, the wasm module's memory) the array
 * itself. Views of one tensor share its array object (reshape), so they share the key too.
 */
export function storageOf(data: Data): object {
  return stored.has(data) ? data : data.buffer;
}

/** A zero-filled array of size elements: for outputs that a kernel accumulates into. */
export function allocate(dtype: DType, size: number): Data {
  return dtype === 'float64' ? new Float64Array(size) : new Float32Array(size);
}

/**
 * An array of size elements whose contents are undefined (old memory), for outputs that a kernel
 * overwrites completely. `new Float32Array(n)` zero-fills, which for the megabyte activations of a
 * convolutional network is a pass over memory that the kernel then repeats; Buffer.allocUnsafeSlow
 * skips the memset, and its memory comes from malloc, so glibc hands blocks freed by earlier steps
 * back instead of mapping fresh, zeroed pages (fewer page faults). A buffer recycled by the backward
 * pass comes first. Never use it for an output that is only partly written or that a kernel adds
 * into: stale values would leak into results.
 */
export function allocateUninitialized(dtype: DType, size: number): Data {
  if (size < smallArray) return allocate(dtype, size);
  const storage = dtype === 'float32' ? getBackend().storage : undefined;
  const inStorage = storage?.allocate(size) ?? null;
  if (inStorage !== null) {
    stored.set(inStorage, storage!);
    backwardBuffers?.add(inStorage);
    allocatedAt.set(inStorage, ++allocations);
    return inStorage;
  }
  const bytes = size * (dtype === 'float64' ? 8 : 4);
  requested.add(bytes);
  requestedBytes += bytes;
  let buffer = recycled.get(bytes)?.pop();
  if (buffer !== undefined) {
    recycledBytes -= bytes;
    reusedBytes += bytes;
  } else {
    buffer = uninitializedBytes(bytes);
    freshBytes += bytes;
  }
  backwardBuffers?.add(buffer);
  allocatedAt.set(buffer, ++allocations);
  return dtype === 'float64' ? new Float64Array(buffer, 0, size) : new Float32Array(buffer, 0, size);
}

/**
 * Counters of the large buffers allocateUninitialized handed out (arrays in a backend's storage
 * excluded), in bytes since the process began: fresh from malloc (garbage for the collector once
 * dead, unless reused), or reused from the free lists; and what the free lists hold now. A training
 * loop whose steps keep taking fresh bytes leaves that much garbage behind each step (see the
 * header of this file for why that costs).
 */
export function memoryCounters(): { freshBytes: number; reusedBytes: number; pooledBytes: number } {
  return { freshBytes, reusedBytes, pooledBytes: recycledBytes };
}

/** A mark for markInternal: arrays allocated after this call have a later mark. */
export function allocationCount(): number {
  return allocations;
}

/**
 * Declares that data, the output of an inner layer of a container, is seen only by the layer after
 * it and by the recorded graph: no user code holds it. The backward pass may then reuse its memory
 * once every rule that reads it has run. Only whole buffers allocated after `since` (an
 * allocationCount() taken when the container's forward began) are marked, so a layer that returns
 * its input, or a tensor made before the forward pass, is never taken.
 */
export function markInternal(data: Data, since: number): void {
  const key = storageOf(data);
  if ((allocatedAt.get(key) ?? 0) <= since) return;
  if (key === data.buffer && (data.byteOffset !== 0 || data.byteLength !== data.buffer.byteLength)) return;
  internalBuffers.add(key);
}

/**
 * Declares data dead: the output of an inner layer of a container under noGrad once the next layer
 * has returned (nothing recorded it), or a buffer an op allocated for its own kernels once its
 * backward rule has run (the graph runs each rule once); only whole buffers allocated after `since`
 * (an allocationCount()) are taken. Its memory goes to the next allocation of its size.
 */
export function releaseInternal(data: Data, since: number): void {
  if (recyclingEnabled && (allocatedAt.get(storageOf(data)) ?? 0) > since) keep(data);
}

/** Whether markInternal accepted the buffer behind data. */
export function isInternal(data: Data): boolean {
  return internalBuffers.has(storageOf(data));
}

/**
 * Runs fn (a backward pass) with recycling enabled: arrays allocated meanwhile may be given to
 * recycle() once dead. Returns fn's result. Free lists of a size that no allocation asked for since
 * the previous backward pass are dropped first, so that buffers do not outlive a change of
 * workload by more than one step.
 */
export function withRecycling<T>(fn: () => T): T {
  for (const [bytes, list] of recycled) {
    if (requested.has(bytes)) continue;
    recycledBytes -= bytes * list.length;
    recycled.delete(bytes);
  }
  requested.clear();
  previousRequestedBytes = requestedBytes;
  requestedBytes = 0;
  const outer = backwardBuffers;
  backwardBuffers = recyclingEnabled ? new Set() : null;
  try {
    return fn();
  } finally {
    backwardBuffers = outer;
  }
}

/** Sets the least bytes the free lists may hold (for tests; 256 MiB by default). Returns the old value. */
export function setRecycledByteFloor(bytes: number): number {
  const old = recycledByteFloor;
  recycledByteFloor = bytes;
  return old;
}

/** Turns reuse by the backward pass on or off (for tests; on by default). */
export function setRecycling(enabled: boolean): void {
  recyclingEnabled = enabled;
}

/**
 * Declares a gradient dead: no live array shares its memory and nothing will read it again. Only
 * whole buffers allocated by allocateUninitialized during the current withRecycling call are taken;
 * anything else is left to the garbage collector.
 */
export function recycle(data: Data): void {
  if (backwardBuffers?.delete(storageOf(data)) === true) keep(data);
}

/**
 * Takes back an array that the library made and that nothing else can reach any more (a parameter's
 * gradient that zeroGrad drops, which no code outside the library has seen): the next allocation of
 * its size may reuse it. Outside a backward pass too. Only arrays from allocateUninitialized's free
 * lists are taken: a copy out of a backend's storage (a gradient under the WebAssembly backend,
 * whose allocations come from its storage) would only sit in the lists, so it is left to the
 * collector.
 */
export function recycleReleased(data: Data): void {
  if (recyclingEnabled && !stored.has(data) && allocatedAt.has(data.buffer)) keep(data);
}

/**
 * Declares an activation dead (its last reader in the backward pass has run). Only buffers marked
 * by markInternal are taken.
 */
export function recycleActivation(data: Data): void {
  if (backwardBuffers !== null && internalBuffers.delete(storageOf(data))) keep(data);
}

function keep(data: Data): void {
  const storage = stored.get(data);
  if (storage !== undefined) {
    // The storage reuses the memory itself (the next allocation of any size may take it).
    stored.delete(data);
    storage.free(data);
    return;
  }
  const buffer = data.buffer as ArrayBuffer;
  if (data.byteOffset !== 0 || data.byteLength !== buffer.byteLength) return;
  const limit = Math.max(recycledByteFloor, previousRequestedBytes, requestedBytes);
  if (recycledBytes + buffer.byteLength > limit) return;
  const list = recycled.get(buffer.byteLength);
  if (list === undefined) recycled.set(buffer.byteLength, [buffer]);
  else list.push(buffer);
  recycledBytes += buffer.byteLength;
}

/**
 * data, or a copy in an ordinary JavaScript array when data lives in a backend's storage: for
 * arrays that outlive the training step, such as a parameter's .grad, which the next zeroGrad drops.
 * Storage is reclaimed explicitly by the backward pass or else only after a garbage collection and
 * a turn of the event loop, which a synchronous training loop never gives, so long-lived arrays are
 * kept out of it. The stored array is recycled when the backward pass allocated it.
 */
export function outsideStorage(data: Data): Data {
  if (!stored.has(data)) return data;
  const copy = data.slice();
  recycle(data);
  return copy;
}
