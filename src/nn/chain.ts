/**
 * runChain: calls modules one after another, each on the output of the one before, and tells the
 * memory layer (src/tensor/memory.ts) which of the outputs in between no user code can reach.
 * Sequential runs its layers through it; any container whose forward is such a chain may.
 *
 * Why it matters: an output passed between two modules that keep no tensors (see keepsNoTensors)
 * is seen only by the next module and by the recorded graph. Marked internal, the backward pass
 * reuses its memory once every rule that reads it has run; under noGrad nothing records it, so its
 * memory is reused as soon as the next module has returned. That keeps a training step of the seed
 * CNN nearly free of garbage (see memory.ts). A module with hooks, or of a class that did not
 * declare keepsNoTensors itself, breaks the chain on both sides: what it sees is never reused.
 */
import { isGradientEnabled } from '../autograd/graph.js';
import { allocationCount, markInternal, releaseInternal, storageOf } from '../tensor/memory.js';
import { ShapeError } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import { keepsNoTensors, Module } from './module.js';

/**
 * modules[last].call(… modules[1].call(modules[0].call(x))), with the memory reuse described above.
 * A ShapeError thrown by module i gets `${name(i)}: ` in front of its message, so the user knows
 * which one to fix. An empty chain returns x. observe, when given, sees every module's output as it
 * is made (before its memory may be reused).
 */
export function runChain(
  modules: readonly Module[],
  x: Tensor,
  name: (index: number) => string,
  observe?: (output: Tensor) => void,
): Tensor {
  const since = allocationCount();
  const recording = isGradientEnabled();
  const inner: Tensor[] = [];
  let y = x;
  let producerKeepsNothing = false;
  for (let index = 0; index < modules.length; index++) {
    const module = modules[index]!;
    const keepsNothing = keepsNoTensors(module);
    const input = y;
    // The chain's own input belongs to the caller: only outputs of an earlier module are inner.
    const internal = index > 0 && producerKeepsNothing && keepsNothing;
    if (internal && y.requiresGrad) inner.push(y);
    try {
      y = module.call(y);
    } catch (error) {
      if (error instanceof ShapeError) error.message = `${name(index)}: ${error.message}`;
      throw error;
    }
    observe?.(y);
    if (internal && !recording && storageOf(input.data) !== storageOf(y.data))
      releaseInternal(input.data, since);
    producerKeepsNothing = keepsNothing;
  }
  // The last module may return a view of an inner output (Flatten shares memory): that one is the
  // caller's.
  for (const tensor of inner)
    if (storageOf(tensor.data) !== storageOf(y.data)) markInternal(tensor.data, since);
  return y;
}

/**
 * The same reuse for a container whose forward is not a plain chain (a residual block, a network
 * with a stem): marks `inner`, tensors that the container's forward made and passed only to its
 * own children and ops, as internal, so the backward pass reuses their memory once every rule that
 * reads them has run. `since` is an allocationCount() taken when forward began: a tensor made
 * before it (the forward's input, passed through as a shortcut) is never taken. `output`, and any
 * inner tensor sharing its memory, stays the caller's. Under noGrad nothing recorded them, so
 * their memory goes straight to the next allocation of its size, as between a Sequential's layers
 * (ResNet-18 inference at 224² left 25 MB activations to the garbage collector otherwise, and filled
 * the wasm backend's tensor memory). Does nothing unless the container's own class declares
 * keepsNoTensors (a subclass may keep what its parent did not), or when a child may keep tensors
 * (see keepsNoTensors: hooks included). The container's own hooks see only its input and output,
 * which are never marked.
 */
export function markInner(container: Module, inner: readonly Tensor[], output: Tensor, since: number): void {
  const containerClass = container.constructor as typeof Module;
  const declared = Object.hasOwn(containerClass, 'keepsNoTensors') && containerClass.keepsNoTensors;
  if (!declared || !container.children().every(keepsNoTensors)) return;
  const kept = storageOf(output.data);
  const recording = isGradientEnabled();
  for (const tensor of inner) {
    if (storageOf(tensor.data) === kept) continue;
    if (!recording) releaseInternal(tensor.data, since);
    else if (tensor.requiresGrad) markInternal(tensor.data, since);
  }
}
