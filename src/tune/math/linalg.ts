/**
 * Small dense linear algebra in float64 for the Gaussian process: matrices are row-major
 * Float64Arrays of n×n, vectors Float64Arrays of n.
 */

/**
 * Cholesky factor L (lower triangular, row-major n×n) with A = L·Lᵀ; reads only A's lower triangle.
 * Returns null when A is not (numerically) positive definite.
 */
export function cholesky(a: Float64Array, n: number): Float64Array | null {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const rowI = i * n;
    for (let j = 0; j <= i; j++) {
      const rowJ = j * n;
      let sum = a[rowI + j]!;
      for (let k = 0; k < j; k++) sum -= l[rowI + k]! * l[rowJ + k]!;
      if (i === j) {
        if (!(sum > 0)) return null;
        l[rowI + i] = Math.sqrt(sum);
      } else {
        l[rowI + j] = sum / l[rowJ + j]!;
      }
    }
  }
  return l;
}

/** Solves L·x = b (L lower triangular), writing into out (may alias b). */
export function solveLower(
  l: Float64Array,
  n: number,
  b: ArrayLike<number>,
  out: Float64Array = new Float64Array(n),
): Float64Array {
  for (let i = 0; i < n; i++) {
    let sum = b[i]!;
    const row = i * n;
    for (let k = 0; k < i; k++) sum -= l[row + k]! * out[k]!;
    out[i] = sum / l[row + i]!;
  }
  return out;
}

/** Solves Lᵀ·x = b (L lower triangular), writing into out (may alias b). */
export function solveLowerTransposed(
  l: Float64Array,
  n: number,
  b: ArrayLike<number>,
  out: Float64Array = new Float64Array(n),
): Float64Array {
  for (let i = n - 1; i >= 0; i--) {
    let sum = b[i]!;
    for (let k = i + 1; k < n; k++) sum -= l[k * n + i]! * out[k]!;
    out[i] = sum / l[i * n + i]!;
  }
  return out;
}

/** A⁻¹ = L⁻ᵀ·L⁻¹ from the Cholesky factor (symmetric, both triangles filled). */
export function inverseFromCholesky(l: Float64Array, n: number): Float64Array {
  // Row j of `columns` is column j of L⁻¹ (zero above the diagonal), found by forward substitution;
  // keeping columns as rows makes every inner loop below run over contiguous memory.
  const columns = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    const row = j * n;
    for (let i = j; i < n; i++) {
      let sum = i === j ? 1 : 0;
      const lRow = i * n;
      for (let k = j; k < i; k++) sum -= l[lRow + k]! * columns[row + k]!;
      columns[row + i] = sum / l[lRow + i]!;
    }
  }
  // A⁻¹[i][j] = Σ_k L⁻¹[k][i]·L⁻¹[k][j] = Σ_{k ≥ max(i, j)} columns[i][k]·columns[j][k].
  const inverse = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const rowI = i * n;
    for (let j = 0; j <= i; j++) {
      const rowJ = j * n;
      let sum = 0;
      for (let k = i; k < n; k++) sum += columns[rowI + k]! * columns[rowJ + k]!;
      inverse[rowI + j] = sum;
      inverse[rowJ + i] = sum;
    }
  }
  return inverse;
}
