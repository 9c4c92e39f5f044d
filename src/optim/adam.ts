import { getBackend } from '../backend/index.js';
import type { Data } from '../backend/types.js';
import type { Parameter } from '../nn/module.js';
import { type GroupSettings, type GroupSpec, Optimizer } from './optimizer.js';

export interface AdamSettings extends GroupSettings {
  beta1: number;
  beta2: number;
  eps: number;
}

/**
 * Adam (Kingma & Ba), PyTorch's formulation, with t the step number:
 *   g ← ∇θ + λ·θ            (Adam: weight decay as L2 in the gradient)
 *   θ ← θ·(1 − lr·λ)        (AdamW instead: decoupled decay, and no L2 term)
 *   m ← β₁·m + (1 − β₁)·g;   v ← β₂·v + (1 − β₂)·g²
 *   θ ← θ − (lr/(1 − β₁ᵗ)) · m / (√v/√(1 − β₂ᵗ) + ε)
 */
export class Adam extends Optimizer<AdamSettings> {
  protected readonly decoupledWeightDecay: boolean = false;

  constructor(parameters: Parameter[] | GroupSpec<AdamSettings>[], options: Partial<AdamSettings> = {}) {
    super(parameters, { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, ...options });
  }

  protected override validate(settings: AdamSettings): void {
    super.validate(settings);
    for (const key of ['beta1', 'beta2'] as const) {
      if (!(settings[key] >= 0 && settings[key] < 1))
        throw new RangeError(`${this.constructor.name}: ${key} must be in [0, 1), got ${settings[key]}`);
    }
    if (!(settings.eps >= 0))
      throw new RangeError(`${this.constructor.name}: eps must be ≥ 0, got ${settings.eps}`);
  }

  protected update(parameter: Data, gradient: Data, state: Record<string, Data>, s: AdamSettings): void {
    const make = () => new (parameter.constructor as new (n: number) => Data)(parameter.length);
    const m = (state.exp_avg ??= make());
    const v = (state.exp_avg_sq ??= make());
    const stepState = (state.step ??= new Float64Array(1));
    const t = ++stepState[0]!;
    // One fused kernel per parameter (the backend's adamUpdate writes out the arithmetic above).
    getBackend().adamUpdate(parameter, gradient, m, v, {
      lr: s.lr,
      beta1: s.beta1,
      beta2: s.beta2,
      eps: s.eps,
      weightDecay: s.weightDecay,
      decoupledWeightDecay: this.decoupledWeightDecay,
      biasCorrection1: 1 - s.beta1 ** t,
      biasCorrection2: 1 - s.beta2 ** t,
    });
  }
}

/** Adam with decoupled weight decay (Loshchilov & Hutter); PyTorch's default weightDecay 0.01. */
export class AdamW extends Adam {
  protected override readonly decoupledWeightDecay: boolean = true;

  constructor(parameters: Parameter[] | GroupSpec<AdamSettings>[], options: Partial<AdamSettings> = {}) {
    super(parameters, { weightDecay: 0.01, ...options });
  }
}
