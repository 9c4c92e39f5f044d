/**
 * How close a backend's result must be to the reference's: named tolerance presets and the one
 * closeness check the kernel tests use.
 */
import assert from 'node:assert/strict';

/**
 * |actual − expected| ≤ absolute + relative·|expected|, elementwise; `exact` instead asks for the
 * same values (NaN equal to NaN, −0 distinct from 0), and `bits` for the same bit patterns.
 */
export type Tolerance =
  | { readonly kind: 'close'; readonly absolute: number; readonly relative: number }
  | { readonly kind: 'exact' };

/**
 * The same values as the reference: kernels that compute each element exactly as the reference does
 * (comparisons, copies, float32 operations the reference also rounds once, float64 steps rounded
 * once on store) and every call a fast backend passes on to the reference.
 */
export const exact: Tolerance = { kind: 'exact' };

/** One float32 rounding of a value the reference computes in float64 (averages, affine maps). */
export const rounded: Tolerance = { kind: 'close', absolute: 1e-6, relative: 1e-6 };

/** Normalisation: a float32 mean and variance feed every element (batch norm's outputs). */
export const normalized: Tolerance = { kind: 'close', absolute: 1e-5, relative: 1e-4 };

/**
 * A float32 sum of `terms` products in another order than the reference's float64 sum: rounding
 * grows about as sqrt(terms), up to at most 1e-4.
 */
export function reassociated(terms: number): Tolerance {
  return { kind: 'close', absolute: Math.min(1e-4, 1e-5 * Math.sqrt(Math.max(terms, 1))), relative: 1e-4 };
}

/** Asserts actual agrees with expected within tolerance, naming the first element that does not. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance: Tolerance,
  what: string,
): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (tolerance.kind === 'exact') {
      if (!Object.is(a, e)) assert.fail(`${what}: element ${i} is ${a}, expected exactly ${e}`);
      continue;
    }
    // Equal values (infinities included) pass, and so does NaN against NaN.
    if (a === e || (Number.isNaN(e) && Number.isNaN(a))) continue;
    const limit = tolerance.absolute + tolerance.relative * Math.abs(e);
    // NaN fails the comparison, so a NaN on one side only is a mismatch.
    if (!(Math.abs(a - e) <= limit)) assert.fail(`${what}: element ${i} is ${a}, expected ${e} (±${limit})`);
  }
}

/**
 * Asserts the same bit patterns (results that must not depend on the thread count), except that any
 * NaN equals any NaN: JavaScript engines do not keep NaN payloads and signs.
 */
export function assertSameBits(
  actual: Float32Array | Float64Array | Int32Array,
  expected: Float32Array | Float64Array | Int32Array,
  what: string,
): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (!Object.is(a, e) && !(Number.isNaN(a) && Number.isNaN(e))) {
      assert.fail(`${what}: element ${i} is ${a}, expected the bits of ${e}`);
    }
  }
}
