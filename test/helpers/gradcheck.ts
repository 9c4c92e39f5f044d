/**
 * Finite-difference gradient checking in float64 on the reference backend (PyTorch's gradcheck
 * settings: eps 1e-6, atol 1e-5, rtol 1e-3; these fail in float32, so inputs are float64).
 */
import assert from 'node:assert/strict';
import { noGrad, Random, referenceBackend, Tensor, withBackend } from '../../src/index.js';

export const gradcheckTolerance = { eps: 1e-6, atol: 1e-5, rtol: 1e-3 };

/** A float64 tensor of normal samples (requiresGrad set). */
export function randomInput(shape: number[], random: Random, scale = 1, requiresGrad = true): Tensor {
  const data = new Float64Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = random.normal() * scale;
  return new Tensor(data, shape, requiresGrad);
}

/**
 * Checks ∂(Σ f(inputs)·R)/∂input for every input that requires gradients against central
 * differences, R being a fixed random projection (so every output element matters).
 */
export function gradcheck(name: string, f: (inputs: Tensor[]) => Tensor, inputs: Tensor[], seed = 7): void {
  withBackend(referenceBackend, () => {
    const random = new Random(seed);
    const first = noGrad(() => f(inputs));
    const projection = new Float64Array(first.size);
    for (let i = 0; i < projection.length; i++) projection[i] = random.normal();
    const objective = (): number => {
      const out = noGrad(() => f(inputs));
      let total = 0;
      for (let i = 0; i < out.size; i++) total += out.data[i]! * projection[i]!;
      return total;
    };
    for (const input of inputs) input.grad = null;
    const out = f(inputs);
    assert.equal(out.dtype, 'float64', `${name}: gradcheck needs float64 outputs`);
    out.backward(new Tensor(projection, out.shape));
    inputs.forEach((input, index) => {
      if (!input.requiresGrad) return;
      assert.ok(input.grad !== null, `${name}: no gradient reached input ${index}`);
      const { eps, atol, rtol } = gradcheckTolerance;
      for (let i = 0; i < input.size; i++) {
        const saved = input.data[i]!;
        input.data[i] = saved + eps;
        const plus = objective();
        input.data[i] = saved - eps;
        const minus = objective();
        input.data[i] = saved;
        const numeric = (plus - minus) / (2 * eps);
        const analytic = input.grad!.data[i]!;
        assert.ok(
          Math.abs(analytic - numeric) <= atol + rtol * Math.abs(numeric),
          `${name}: input ${index} element ${i}: analytic ${analytic} vs numeric ${numeric}`,
        );
      }
    });
  });
}
