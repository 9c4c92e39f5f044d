/**
 * Reverse-mode automatic differentiation: the recorded graph and the backward pass.
 *
 * Every differentiable op that produces a tensor from inputs that require gradients attaches a
 * GradNode to its output. `backward(root)` walks the graph in reverse topological order, calling each
 * node's backward rule once with the summed gradient of its output, and accumulates into `.grad` of
 * leaf tensors (parameters). The graph is freed after the pass (PyTorch's retain_graph=false), so a
 * training loop never holds more than one step's activations and users never dispose anything.
 *
 * Gradients flow as raw typed arrays, not tensors: tensile does not build graphs of graphs
 * (no higher-order derivatives), which keeps the backward pass allocation-light.
 */
import { getBackend } from '../backend/index.js';
import type { Data } from '../backend/types.js';
import {
  allocateUninitialized,
  isInternal,
  recycle,
  recycleActivation,
  storageOf,
  withRecycling,
} from '../tensor/memory.js';
import type { Tensor } from '../tensor/tensor.js';

export interface GradNode {
  /** The op that made the output, for error messages and graph inspection. */
  readonly name: string;
  readonly inputs: readonly Tensor[];
  /**
   * Given ∂L/∂output, returns ∂L/∂input for each input, or null where `needsGradient[i]` is false
   * (rules skip that work, e.g. the input gradient of a frozen first layer). gradOutput is lent
   * for the call: once the rule returns, the backward pass reuses its memory for later arrays unless
   * a returned gradient shares it (pass-through rules such as add or reshape), so a rule must not
   * keep it.
   */
  backward(gradOutput: Data, needsGradient: readonly boolean[]): readonly (Data | null)[];
}

let gradientEnabled = true;

/** Whether ops currently record the graph. */
export function isGradientEnabled(): boolean {
  return gradientEnabled;
}

/**
 * Runs fn without recording the graph (PyTorch's torch.no_grad): for inference and for in-place
 * parameter updates.
 */
export function noGrad<T>(fn: () => T): T {
  const previous = gradientEnabled;
  gradientEnabled = false;
  try {
    return fn();
  } finally {
    gradientEnabled = previous;
  }
}

/**
 * Attaches a backward rule to `output` when gradients are on and any input requires them.
 * Returns output for chaining.
 */
export function record(
  output: Tensor,
  name: string,
  inputs: readonly Tensor[],
  backward: GradNode['backward'],
): Tensor {
  if (!gradientEnabled || !inputs.some((input) => input.requiresGrad)) return output;
  output.requiresGrad = true;
  output.gradFn = { name, inputs, backward };
  return output;
}

/** Tensors reachable from root through recorded nodes, outputs before their inputs. */
function reverseTopologicalOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const visited = new Set<Tensor>();
  // Iterative depth-first search: deep networks would overflow a recursive one.
  const stack: { tensor: Tensor; expanded: boolean }[] = [{ tensor: root, expanded: false }];
  while (stack.length > 0) {
    const top = stack.pop()!;
    if (top.expanded) {
      order.push(top.tensor);
      continue;
    }
    if (visited.has(top.tensor)) continue;
    visited.add(top.tensor);
    stack.push({ tensor: top.tensor, expanded: true });
    for (const input of top.tensor.gradFn?.inputs ?? []) {
      if (input.requiresGrad && !visited.has(input)) stack.push({ tensor: input, expanded: false });
    }
  }
  return order.reverse();
}

/**
 * target += source, elementwise (a tensor read by several ops gets the sum of their gradients): by
 * the backend, whose add is vectorised and threaded. A JavaScript loop here was 2% of a ResNet-18
 * training step, one add per residual block. The sums equal the loop's (one float add each).
 */
function addInto(target: Data, source: Data): void {
  const shape = [target.length];
  getBackend().binary('add', target, shape, source, shape, target, shape);
}

/**
 * Back-propagates from root. gradient defaults to ones (root is usually a scalar loss).
 * Leaf tensors with requiresGrad accumulate into .grad, as in PyTorch, until zeroGrad.
 */
export function backward(root: Tensor, gradient?: Data): void {
  if (!root.requiresGrad) {
    throw new Error(
      'backward(): the tensor does not require gradients (was it computed under noGrad, or from tensors without requiresGrad?)',
    );
  }
  if (gradient !== undefined && gradient.length !== root.size) {
    throw new Error(`backward(): gradient has ${gradient.length} elements, the tensor has ${root.size}`);
  }
  const seed = gradient ?? root.newData(root.size).fill(1);
  withRecycling(() => propagate(root, seed));
}

function propagate(root: Tensor, seed: Data): void {
  const order = reverseTopologicalOrder(root);
  // Readers of each internal activation's memory (see markInternal) among the tensors still to be
  // processed: its own tensor, views of it (reshape shares memory), and inputs outside the order,
  // which are never processed and so keep it alive. Once the last reader is done, every rule that
  // could read the memory has run (consumers come before their inputs) and it is reused.
  const readers = new Map<object, number>();
  const count = (tensor: Tensor) => {
    if (!isInternal(tensor.data)) return;
    const key = storageOf(tensor.data);
    readers.set(key, (readers.get(key) ?? 0) + 1);
  };
  for (const tensor of order) {
    count(tensor);
    for (const input of tensor.gradFn?.inputs ?? []) if (!input.requiresGrad) count(input);
  }
  const gradients = new Map<Tensor, Data>([[root, seed]]);
  for (const tensor of order) {
    const gradOutput = gradients.get(tensor);
    if (gradOutput === undefined) {
      release(tensor, readers);
      continue;
    }
    gradients.delete(tensor);
    const node = tensor.gradFn;
    if (node === null) {
      tensor.accumulateGrad(gradOutput);
      // Summed into an existing .grad (or copied out of a backend's storage): dead now.
      if (tensor.gradientData() !== gradOutput) recycle(gradOutput);
      continue;
    }
    const needs = node.inputs.map((input) => input.requiresGrad);
    const inputGradients = node.backward(gradOutput, needs);
    // Rules may pass gradOutput (or one array) through to several inputs, as add does; the first
    // taker owns it and later takers get a copy, because sums are accumulated in place.
    const taken = new Set<Data>();
    // Arrays that die here: gradOutput, and input gradients summed into an existing one. Their
    // memory is reused unless a gradient that lives on shares it.
    const dead: Data[] = [gradOutput];
    node.inputs.forEach((input, i) => {
      const inputGradient = inputGradients[i];
      if (!needs[i] || inputGradient === null || inputGradient === undefined) return;
      const existing = gradients.get(input);
      if (existing !== undefined) {
        addInto(existing, inputGradient);
        dead.push(inputGradient);
      } else if (taken.has(inputGradient)) {
        // A copy from allocateUninitialized, not slice(): the backward pass reuses it once dead.
        const copy = allocateUninitialized(
          inputGradient instanceof Float64Array ? 'float64' : 'float32',
          inputGradient.length,
        );
        copy.set(inputGradient);
        gradients.set(input, copy);
      } else {
        taken.add(inputGradient);
        gradients.set(input, inputGradient);
      }
    });
    const living = new Set([...taken].map(storageOf));
    for (const array of dead) if (!living.has(storageOf(array))) recycle(array);
    // Free the graph behind this tensor: its saved activations become garbage now.
    tensor.gradFn = null;
    release(tensor, readers);
  }
}

/** Counts tensor out as a reader of its memory; the last one out recycles an internal activation. */
function release(tensor: Tensor, readers: Map<object, number>): void {
  const key = storageOf(tensor.data);
  const left = readers.get(key);
  if (left === undefined) return;
  if (left > 1) {
    readers.set(key, left - 1);
    return;
  }
  readers.delete(key);
  recycleActivation(tensor.data);
}
