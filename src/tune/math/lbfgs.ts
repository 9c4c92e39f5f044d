/**
 * Box-constrained quasi-Newton minimization: L-BFGS directions (Nocedal, 1980) restricted to the
 * variables not held at a bound, with a projected backtracking (Armijo) line search. A compact cousin
 * of L-BFGS-B for the few-dimensional, smooth problems of the GP sampler (kernel hyperparameters,
 * acquisition maxima).
 */

/** f(x) that also writes ∂f/∂x into gradient. */
export type ObjectiveWithGradient = (x: Float64Array, gradient: Float64Array) => number;

export interface MinimizeOptions {
  /** Default 100. */
  maxIterations?: number;
  /** Correction pairs kept (default 10). */
  memory?: number;
  /** Stop when the projected gradient's largest component is below this (default 1e-6). */
  gradientTolerance?: number;
  /** Stop when an iteration improves f by less than this, relatively (default 1e-10). */
  valueTolerance?: number;
}

export interface MinimizeResult {
  x: Float64Array;
  value: number;
  iterations: number;
  evaluations: number;
}

function clamp(x: Float64Array, lower: ArrayLike<number>, upper: ArrayLike<number>): void {
  for (let i = 0; i < x.length; i++) x[i] = Math.min(upper[i]!, Math.max(lower[i]!, x[i]!));
}

function dot(a: Float64Array, b: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return sum;
}

/** Minimizes f over the box [lower, upper] starting from x0. Non-finite values count as "too far". */
export function minimizeBox(
  f: ObjectiveWithGradient,
  x0: ArrayLike<number>,
  lower: ArrayLike<number>,
  upper: ArrayLike<number>,
  options: MinimizeOptions = {},
): MinimizeResult {
  const maxIterations = options.maxIterations ?? 100;
  const memory = options.memory ?? 10;
  const gradientTolerance = options.gradientTolerance ?? 1e-6;
  const valueTolerance = options.valueTolerance ?? 1e-10;
  const n = x0.length;
  let x = Float64Array.from(x0);
  clamp(x, lower, upper);
  let gradient = new Float64Array(n);
  let value = f(x, gradient);
  let evaluations = 1;
  if (!Number.isFinite(value)) return { x, value, iterations: 0, evaluations };
  const steps: Float64Array[] = [];
  const changes: Float64Array[] = [];
  const direction = new Float64Array(n);
  const candidate = new Float64Array(n);
  const candidateGradient = new Float64Array(n);
  const alphas = new Float64Array(memory);
  let iteration = 0;
  for (; iteration < maxIterations; iteration++) {
    // Free variables: those not pressed against a bound by the gradient.
    let projected = 0;
    const free = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const atLower = x[i]! <= lower[i]! && gradient[i]! > 0;
      const atUpper = x[i]! >= upper[i]! && gradient[i]! < 0;
      free[i] = atLower || atUpper ? 0 : 1;
      if (free[i]) projected = Math.max(projected, Math.abs(gradient[i]!));
    }
    if (projected < gradientTolerance) break;

    // Two-loop recursion: direction = −H·gradient.
    direction.set(gradient);
    for (let k = steps.length - 1; k >= 0; k--) {
      alphas[k] = dot(steps[k]!, direction) / dot(changes[k]!, steps[k]!);
      for (let i = 0; i < n; i++) direction[i]! -= alphas[k]! * changes[k]![i]!;
    }
    if (steps.length > 0) {
      const last = steps.length - 1;
      const scale = dot(steps[last]!, changes[last]!) / dot(changes[last]!, changes[last]!);
      for (let i = 0; i < n; i++) direction[i]! *= scale;
    } else {
      // First step: a unit-length move along the steepest descent.
      const norm = Math.sqrt(dot(gradient, gradient));
      for (let i = 0; i < n; i++) direction[i]! /= Math.max(norm, 1e-12);
    }
    for (let k = 0; k < steps.length; k++) {
      const beta = dot(changes[k]!, direction) / dot(changes[k]!, steps[k]!);
      for (let i = 0; i < n; i++) direction[i]! += (alphas[k]! - beta) * steps[k]![i]!;
    }
    for (let i = 0; i < n; i++) direction[i] = free[i] ? -direction[i]! : 0;
    if (dot(direction, gradient) >= 0) {
      // Not a descent direction once bounds are applied: forget the curvature, go downhill.
      steps.length = 0;
      changes.length = 0;
      const norm = Math.sqrt(dot(gradient, gradient));
      for (let i = 0; i < n; i++) direction[i] = free[i] ? -gradient[i]! / Math.max(norm, 1e-12) : 0;
    }

    // Projected backtracking line search (Armijo condition on the actual move).
    let step = 1;
    let accepted = false;
    let candidateValue = value;
    for (let trial = 0; trial < 40; trial++) {
      for (let i = 0; i < n; i++) candidate[i] = x[i]! + step * direction[i]!;
      clamp(candidate, lower, upper);
      let decrease = 0;
      for (let i = 0; i < n; i++) decrease += gradient[i]! * (candidate[i]! - x[i]!);
      candidateValue = f(candidate, candidateGradient);
      evaluations++;
      if (Number.isFinite(candidateValue) && candidateValue <= value + 1e-4 * decrease) {
        accepted = true;
        break;
      }
      step *= 0.5;
    }
    if (!accepted) {
      if (steps.length === 0) break;
      steps.length = 0;
      changes.length = 0;
      continue;
    }
    const s = new Float64Array(n);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      s[i] = candidate[i]! - x[i]!;
      y[i] = candidateGradient[i]! - gradient[i]!;
    }
    const improvement = value - candidateValue;
    x = Float64Array.from(candidate);
    gradient = Float64Array.from(candidateGradient);
    value = candidateValue;
    if (dot(s, y) > 1e-12 * Math.sqrt(dot(s, s) * dot(y, y))) {
      steps.push(s);
      changes.push(y);
      if (steps.length > memory) {
        steps.shift();
        changes.shift();
      }
    }
    if (improvement <= valueTolerance * Math.max(1, Math.abs(value))) {
      iteration++;
      break;
    }
  }
  return { x, value, iterations: iteration, evaluations };
}
