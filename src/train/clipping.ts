/**
 * Gradient clipping with PyTorch's semantics (torch.nn.utils.clip_grad_norm_ and clip_grad_value_),
 * applied by fit between backward and the optimizer step (options clipGradientNorm and
 * clipGradientValue), or called directly in a loop of your own.
 */
import type { Parameter } from '../nn/module.js';

/** Parameters that take part: those with a gradient (frozen ones have none), as PyTorch skips grad None. */
function withGradients(parameters: readonly Parameter[]): Parameter[] {
  return parameters.filter((parameter) => parameter.gradientData() !== null);
}

/**
 * Scales all gradients together so that their total norm is at most maxNorm, and returns the total
 * norm from before clipping. The total norm treats every gradient as one concatenated vector:
 * (Σ over parameters Σ |g|^p)^(1/p), or max |g| for normType Infinity. When it exceeds maxNorm every
 * gradient is multiplied by maxNorm / (total + 1e-6) (PyTorch's epsilon, so the result stays just
 * below maxNorm); otherwise nothing changes. Sums are accumulated in float64.
 *
 * @param parameters typically model.parameters(); ones without a gradient are ignored.
 * @example
 * loss.backward();
 * const norm = clipGradientNorm(model.parameters(), 1);   // total norm ≤ 1 afterwards
 * optimizer.step();
 */
export function clipGradientNorm(parameters: readonly Parameter[], maxNorm: number, normType = 2): number {
  if (!(maxNorm > 0) || !Number.isFinite(maxNorm))
    throw new RangeError(`clipGradientNorm: maxNorm must be a finite number > 0, got ${maxNorm}`);
  if (!(normType > 0))
    throw new RangeError(`clipGradientNorm: normType must be > 0 or Infinity, got ${normType}`);
  const chosen = withGradients(parameters);
  if (chosen.length === 0) return 0;
  let total: number;
  if (normType === Infinity) {
    total = 0;
    for (const parameter of chosen)
      for (const value of parameter.gradientData()!) total = Math.max(total, Math.abs(value));
  } else {
    let sum = 0;
    for (const parameter of chosen)
      for (const value of parameter.gradientData()!)
        sum += normType === 2 ? value * value : Math.abs(value) ** normType;
    total = normType === 2 ? Math.sqrt(sum) : sum ** (1 / normType);
  }
  const coefficient = maxNorm / (total + 1e-6);
  // PyTorch multiplies by the coefficient clamped to 1, and multiplying by 1 changes nothing.
  if (coefficient < 1) {
    for (const parameter of chosen) {
      const data = parameter.gradientData()!;
      for (let i = 0; i < data.length; i++) data[i] = data[i]! * coefficient;
    }
  }
  return total;
}

/**
 * Clamps every gradient element to [−clipValue, clipValue] (PyTorch's clip_grad_value_).
 *
 * @example
 * clipGradientValue(model.parameters(), 0.5);
 */
export function clipGradientValue(parameters: readonly Parameter[], clipValue: number): void {
  if (!(clipValue > 0) || !Number.isFinite(clipValue))
    throw new RangeError(`clipGradientValue: clipValue must be a finite number > 0, got ${clipValue}`);
  for (const parameter of withGradients(parameters)) {
    const data = parameter.gradientData()!;
    for (let i = 0; i < data.length; i++) data[i] = Math.min(clipValue, Math.max(-clipValue, data[i]!));
  }
}
