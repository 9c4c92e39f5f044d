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
import type { Data } from '../backend/types.js';
import type { Tensor } from '../tensor/tensor.js';

export interface GradNode {
  /** The op that made the output, for error messages and graph inspection. */
  readonly name: string;
  readonly inputs: readonly Tensor[];
  /**
   * Given ∂L/∂output, returns ∂L/∂input for each input, or null where `needsGradient[i]` is false
   * (rules skip that work, e.g. the input gradient of a frozen first layer).
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

function addInto(target: Data, source: Data): void {
  for (let i = 0; i < target.length; i++) target[i]! += source[i]!;
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
  const gradients = new Map<Tensor, Data>([[root, seed]]);
  for (const tensor of reverseTopologicalOrder(root)) {
    const gradOutput = gradients.get(tensor);
    if (gradOutput === undefined) continue;
    gradients.delete(tensor);
    const node = tensor.gradFn;
    if (node === null) {
      tensor.accumulateGrad(gradOutput);
      continue;
    }
    const needs = node.inputs.map((input) => input.requiresGrad);
    const inputGradients = node.backward(gradOutput, needs);
    // Rules may pass gradOutput (or one array) through to several inputs, as add does; the first
    // taker owns it and later takers get a copy, because sums are accumulated in place.
    const taken = new Set<Data>();
    node.inputs.forEach((input, i) => {
      const inputGradient = inputGradients[i];
      if (!needs[i] || inputGradient === null || inputGradient === undefined) return;
      const existing = gradients.get(input);
      if (existing !== undefined) {
        addInto(existing, inputGradient);
      } else if (taken.has(inputGradient)) {
        gradients.set(input, inputGradient.slice());
      } else {
        taken.add(inputGradient);
        gradients.set(input, inputGradient);
      }
    });
    // Free the graph behind this tensor: its saved activations become garbage now.
    tensor.gradFn = null;
  }
}
