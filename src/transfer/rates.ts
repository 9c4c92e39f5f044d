/**
 * Discriminative learning rates (Howard & Ruder, ULMFiT, 2018): the layers near the input hold the
 * most general features and should move least, so each block group gets its own rate, decaying
 * geometrically from the head down.
 */
import type { Module, Parameter } from '../nn/module.js';
import { blockGroups } from './groups.js';

export interface DiscriminativeOptions {
  /** Learning rate of the head, the last block group. */
  lr: number;
  /**
   * Each group's rate is the next one's divided by decay (default 2.6, ULMFiT's value): with the
   * seed CNN's three groups, head lr, block2 lr/2.6, block1 lr/6.76.
   */
  decay?: number;
}

/** One optimizer parameter group per block group; pass the array to SGD, Adam or AdamW. */
export interface DiscriminativeGroup {
  name: string;
  parameters: Parameter[];
  lr: number;
}

/**
 * Optimizer parameter groups for model with learning rates lr / decay^(G−1−i) for block group i of G
 * (see blockGroups). Every parameter is included, frozen or not: optimizers skip frozen ones, so
 * the same optimizer keeps working while groups are unfrozen one by one.
 *
 * @example
 * const optimizer = new AdamW(discriminativeLearningRates(model, { lr: 1e-3 }));
 * optimizer.groups.map((g) => g.settings.lr); // [1.48e-4, 3.85e-4, 1e-3] for the seed CNN
 */
export function discriminativeLearningRates(
  model: Module,
  options: DiscriminativeOptions,
): DiscriminativeGroup[] {
  const decay = options.decay ?? 2.6;
  if (!(options.lr > 0) || !Number.isFinite(options.lr))
    throw new RangeError(`discriminativeLearningRates: lr must be a positive number, got ${options.lr}`);
  if (!(decay >= 1) || !Number.isFinite(decay))
    throw new RangeError(`discriminativeLearningRates: decay must be ≥ 1, got ${decay}`);
  const groups = blockGroups(model).filter((group) => group.parameters.length > 0);
  return groups.map((group, index) => ({
    name: group.name,
    parameters: group.parameters,
    lr: options.lr / decay ** (groups.length - 1 - index),
  }));
}
