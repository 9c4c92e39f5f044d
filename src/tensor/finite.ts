/**
 * NaN and infinity checks shared by training (src/train) and saving (src/io): weights are never
 * written from non-finite values, whichever way they got there.
 */
import type { Tensor } from './tensor.js';

/** Training diverged (a NaN or infinite loss or gradient), or non-finite values reached a save. */
export class NonFiniteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NonFiniteError';
  }
}

/** Index of the first NaN or ±Infinity in `values`, or -1. */
export function firstNonFiniteIndex(values: ArrayLike<number>): number {
  for (let i = 0; i < values.length; i++) {
    // x - x is 0 for every finite x and NaN for NaN and ±Infinity: one comparison per value.
    const value = values[i]!;
    if (value - value !== 0) return i;
  }
  return -1;
}

function countNonFinite(values: ArrayLike<number>): number {
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!;
    if (value - value !== 0) count++;
  }
  return count;
}

/**
 * Throws a NonFiniteError naming the first tensor of the state (parameters and buffers, e.g. batch
 * norm's running statistics) that holds a NaN or infinity, with how many it holds.
 *
 * @param what what was about to happen, e.g. "write 'w.safetensors'".
 */
export function assertFiniteState(state: Iterable<[string, Tensor]>, what: string): void {
  for (const [name, tensor] of state) {
    if (!(tensor.data instanceof Float32Array || tensor.data instanceof Float64Array)) continue;
    const bad = countNonFinite(tensor.data);
    if (bad > 0) {
      throw new NonFiniteError(
        `refusing to ${what}: '${name}' has ${bad} of ${tensor.data.length} values that are NaN or infinite ` +
          `(the training diverged, or its input held NaN)`,
      );
    }
  }
}
