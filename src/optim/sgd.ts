import { getBackend } from '../backend/index.js';
import type { Data } from '../backend/types.js';
import type { Parameter } from '../nn/module.js';
import { type GroupSettings, type GroupSpec, Optimizer } from './optimizer.js';

export interface SgdSettings extends GroupSettings {
  momentum: number;
  dampening: number;
  nesterov: boolean;
}

/**
 * Stochastic gradient descent, PyTorch's formulation:
 *   g ← ∇θ + λ·θ                     (weight decay λ, as L2 in the gradient)
 *   b ← g on the first step, else μ·b + (1 − τ)·g   (momentum μ, dampening τ)
 *   g ← g + μ·b if Nesterov, else b
 *   θ ← θ − lr·g
 */
export class SGD extends Optimizer<SgdSettings> {
  constructor(parameters: Parameter[] | GroupSpec<SgdSettings>[], options: Partial<SgdSettings> = {}) {
    super(parameters, { lr: 0.01, momentum: 0, dampening: 0, nesterov: false, weightDecay: 0, ...options });
  }

  protected override validate(settings: SgdSettings): void {
    super.validate(settings);
    if (!(settings.momentum >= 0))
      throw new RangeError(`SGD: momentum must be ≥ 0, got ${settings.momentum}`);
    if (settings.nesterov && (settings.momentum <= 0 || settings.dampening !== 0)) {
      throw new RangeError('SGD: Nesterov momentum needs momentum > 0 and dampening 0');
    }
  }

  protected update(parameter: Data, gradient: Data, state: Record<string, Data>, s: SgdSettings): void {
    const firstStep = state.momentum === undefined;
    if (s.momentum !== 0 && firstStep)
      state.momentum = new (parameter.constructor as new (n: number) => Data)(parameter.length);
    getBackend().sgdUpdate(parameter, gradient, state.momentum ?? null, {
      lr: s.lr,
      momentum: s.momentum,
      dampening: s.dampening,
      nesterov: s.nesterov,
      weightDecay: s.weightDecay,
      firstStep,
    });
  }
}
