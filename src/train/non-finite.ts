/**
 * Guards against silent NaN in training: a diverging run stops with an error that names where it
 * went wrong, and inputs are checked before training starts.
 */
import type { Module } from '../nn/module.js';
import { firstNonFiniteIndex, NonFiniteError } from '../tensor/finite.js';

export { assertFiniteState, firstNonFiniteIndex, NonFiniteError } from '../tensor/finite.js';

/** What fit does when the loss or a gradient is not finite. */
export type NonFinitePolicy = 'stop' | 'skip';

/** The first trainable parameter (in state_dict order) whose gradient holds a NaN or infinity. */
export function firstNonFiniteGradient(model: Module): string | undefined {
  for (const [name, parameter] of model.namedParameters()) {
    const gradient = parameter.gradientData();
    if (gradient !== null && firstNonFiniteIndex(gradient) >= 0) return name;
  }
  return undefined;
}

/**
 * Checks images for NaN and infinity before training, naming the sample and the position.
 *
 * @param sampleSize values per sample (channels·height·width).
 */
export function assertFiniteInputs(images: ArrayLike<number>, sampleSize: number, what: string): void {
  const index = firstNonFiniteIndex(images);
  if (index >= 0) {
    throw new NonFiniteError(
      `${what}: sample ${Math.floor(index / sampleSize)} holds ${images[index]} at value ${index % sampleSize} ` +
        `(NaN and infinities would turn every weight into NaN; fix the data, or pass allowNonFiniteInputs: true)`,
    );
  }
}
