/** Matrix products: matmul and the dense layer's fused linear map. */
import { record } from '../autograd/graph.js';
import { getBackend } from '../backend/index.js';
import type { Data } from '../backend/types.js';
import { formatShape, ShapeError } from '../tensor/shape.js';
import { allocate, allocateUninitialized, Tensor } from '../tensor/tensor.js';
import { checkSameDtype } from './elementwise.js';

/** [M, K] · [K, N] → [M, N]. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  checkSameDtype(a, b, 'matmul');
  if (a.rank !== 2 || b.rank !== 2 || a.shape[1] !== b.shape[0]) {
    throw new ShapeError(
      `matmul: expected [M, K] · [K, N], got ${formatShape(a.shape)} · ${formatShape(b.shape)}`,
    );
  }
  const [m, k] = a.shape as [number, number];
  const n = b.shape[1]!;
  const out = allocateUninitialized(a.dtype, m * n);
  getBackend().matmul(a.data, b.data, out, m, n, k, false, false, false);
  return record(new Tensor(out, [m, n]), 'matmul', [a, b], (g, needs) => {
    const backend = getBackend();
    let gradA: Data | null = null;
    let gradB: Data | null = null;
    if (needs[0]) {
      gradA = allocateUninitialized(a.dtype, m * k);
      backend.matmul(g, b.data, gradA, m, k, n, false, true, false); // g · Bᵀ
    }
    if (needs[1]) {
      gradB = allocateUninitialized(a.dtype, k * n);
      backend.matmul(a.data, g, gradB, k, n, m, true, false, false); // Aᵀ · g
    }
    return [gradA, gradB];
  });
}

/**
 * y = x · Wᵀ + b, the dense layer's map, with PyTorch's weight layout.
 * x: [N, in]; weight: [out, in]; bias: [out] or null. Returns [N, out].
 */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null, what = 'linear'): Tensor {
  checkSameDtype(x, weight, what);
  if (x.rank !== 2 || weight.rank !== 2 || x.shape[1] !== weight.shape[1]) {
    throw new ShapeError(
      `${what}: expected input [batch, ${weight.shape[1]}] for weight ${formatShape(weight.shape)}, got ${formatShape(x.shape)}`,
    );
  }
  const [batch, inFeatures] = x.shape as [number, number];
  const outFeatures = weight.shape[0]!;
  if (bias !== null && (bias.rank !== 1 || bias.shape[0] !== outFeatures)) {
    throw new ShapeError(`${what}: bias must have shape [${outFeatures}], got ${formatShape(bias.shape)}`);
  }
  const backend = getBackend();
  // Without a bias the product overwrites out; with one it accumulates into the copied bias rows.
  const out =
    bias === null
      ? allocateUninitialized(x.dtype, batch * outFeatures)
      : allocate(x.dtype, batch * outFeatures);
  if (bias !== null) {
    // Start from the broadcast bias and accumulate the product into it.
    for (let r = 0; r < batch; r++) out.set(bias.data, r * outFeatures);
  }
  backend.matmul(x.data, weight.data, out, batch, outFeatures, inFeatures, false, true, bias !== null);
  const inputs = bias === null ? [x, weight] : [x, weight, bias];
  return record(new Tensor(out, [batch, outFeatures]), what, inputs, (g, needs) => {
    const grads: (Data | null)[] = [null, null, null];
    if (needs[0]) {
      grads[0] = allocateUninitialized(x.dtype, x.size);
      backend.matmul(g, weight.data, grads[0], batch, inFeatures, outFeatures, false, false, false);
    }
    if (needs[1]) {
      grads[1] = allocateUninitialized(x.dtype, weight.size);
      backend.matmul(g, x.data, grads[1], outFeatures, inFeatures, batch, true, false, false);
    }
    if (bias !== null && needs[2]) {
      grads[2] = allocate(x.dtype, outFeatures);
      backend.channelSum(g, grads[2], { batch, channels: outFeatures, spatial: 1 });
    }
    return grads.slice(0, inputs.length);
  });
}
