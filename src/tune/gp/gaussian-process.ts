/**
 * Gaussian-process regression with a Matérn-5/2 kernel and one length scale per input dimension
 * (automatic relevance determination), for Bayesian optimization on the unit cube.
 *
 *   k(x, x') = s² · (1 + √5·r + 5r²/3) · exp(−√5·r),   r² = Σ_d (x_d − x'_d)² / ℓ_d²
 *   y = f(x) + ε,  ε ~ N(0, σ²)
 *
 * Inputs are points of [0, 1]^D, outputs standardized (zero mean, unit variance) by the caller.
 * The prior mean is a constant m estimated by generalized least squares, m = 1ᵀK⁻¹y / 1ᵀK⁻¹1
 * (ordinary kriging): correlated points count as the little information they carry, so a cluster of
 * evaluations around one good point does not drag the prediction for unexplored regions down to its
 * level. With a plain average it does, every distant corner then looks promising, and expected
 * improvement wastes its exploration on the boundary of the box. Since m maximizes the likelihood for
 * each θ, the gradient below needs no term for it.
 * The hyperparameters θ = (log ℓ_1..log ℓ_D, log s², log σ²) maximize the log marginal likelihood plus
 * log-normal priors (which keep small-data fits from collapsing to extreme length scales), by box-bounded
 * L-BFGS from several starting points with the analytic gradient
 *   ∂/∂θ_j log p(y | θ) = ½·tr((ααᵀ − K⁻¹)·∂K/∂θ_j),  α = K⁻¹y.
 */
import { cholesky, inverseFromCholesky, solveLower, solveLowerTransposed } from '../math/linalg.js';
import { minimizeBox } from '../math/lbfgs.js';
import type { Random } from '../../tensor/random.js';

const SQRT5 = Math.sqrt(5);
const LOG_2PI = Math.log(2 * Math.PI);

export interface GpHyperparameters {
  lengthScales: Float64Array;
  signalVariance: number;
  noiseVariance: number;
}

export interface GpFitOptions {
  /** Starting points besides the default one: usually the previous fit (warm start). */
  initial?: readonly GpHyperparameters[];
  /** Start from the default hyperparameters too (default true). */
  defaultStart?: boolean;
  /** Extra starts drawn from the priors (default 2). */
  randomRestarts?: number;
  /** L-BFGS iterations per start (default 60). */
  maxIterations?: number;
  /** Smallest noise variance (default 1e-6, relative to the standardized outputs). */
  minNoise?: number;
  /** Fix the noise at minNoise instead of fitting it (for deterministic objectives). */
  fixedNoise?: boolean;
  random: Random;
}

/** Bounds and priors in θ space (natural logs). */
const bounds = {
  logLength: [Math.log(0.005), Math.log(20)] as const,
  logSignal: [Math.log(0.05), Math.log(20)] as const,
  logNoiseMax: Math.log(0.5),
};
const priors = {
  logLength: { mean: Math.log(0.5), sd: 1 },
  logSignal: { mean: 0, sd: 1 },
  logNoise: { mean: Math.log(1e-4), sd: 2.5 },
};

function matern(r: number): number {
  return (1 + SQRT5 * r + (5 / 3) * r * r) * Math.exp(-SQRT5 * r);
}

/** −(1/r)·dk/dr / s² = (5/3)(1 + √5 r)e^{−√5 r}: the factor that every derivative of k shares. */
function maternSlope(r: number): number {
  return (5 / 3) * (1 + SQRT5 * r) * Math.exp(-SQRT5 * r);
}

export class GaussianProcess {
  readonly n: number;
  readonly dimensions: number;
  readonly hyperparameters: GpHyperparameters;
  private readonly x: Float64Array;
  private readonly inverseSquaredLengths: Float64Array;
  private readonly factor: Float64Array;
  private readonly alpha: Float64Array;
  /** The constant prior mean (GLS estimate). */
  readonly priorMean: number;

  /**
   * Conditions the GP on points x [n, D] (row-major, in [0, 1]) with outputs y [n].
   * Throws when the kernel matrix cannot be factorized even with added jitter.
   */
  constructor(x: Float64Array, y: Float64Array, dimensions: number, hyperparameters: GpHyperparameters) {
    this.n = y.length;
    this.dimensions = dimensions;
    this.x = x;
    this.hyperparameters = hyperparameters;
    this.inverseSquaredLengths = hyperparameters.lengthScales.map((l) => 1 / (l * l));
    const kernel = kernelMatrix(
      x,
      this.n,
      dimensions,
      this.inverseSquaredLengths,
      hyperparameters.signalVariance,
    );
    const factor = factorize(kernel, this.n, hyperparameters.noiseVariance, hyperparameters.signalVariance);
    if (factor === null) throw new Error('GaussianProcess: the kernel matrix is not positive definite');
    this.factor = factor;
    this.priorMean = generalizedLeastSquaresMean(factor, this.n, y);
    this.alpha = solveLowerTransposed(
      factor,
      this.n,
      solveLower(
        factor,
        this.n,
        y.map((v) => v - this.priorMean),
      ),
    );
  }

  /** Posterior mean of f at x [D] alone: O(n·D), without the O(n²) variance. */
  mean(point: ArrayLike<number>): number {
    const { n, dimensions: d } = this;
    let sum = 0;
    for (let i = 0; i < n; i++) {
      let r2 = 0;
      for (let j = 0; j < d; j++) {
        const diff = point[j]! - this.x[i * d + j]!;
        r2 += diff * diff * this.inverseSquaredLengths[j]!;
      }
      const r = Math.sqrt(r2);
      sum += (1 + SQRT5 * r + (5 / 3) * r2) * Math.exp(-SQRT5 * r) * this.alpha[i]!;
    }
    return this.priorMean + this.hyperparameters.signalVariance * sum;
  }

  /** Posterior mean and variance of f (without noise) at x [D]. */
  predict(point: ArrayLike<number>): { mean: number; variance: number } {
    const { n, dimensions: d } = this;
    const k = new Float64Array(n);
    let mean = this.priorMean;
    for (let i = 0; i < n; i++) {
      let r2 = 0;
      for (let j = 0; j < d; j++) {
        const diff = point[j]! - this.x[i * d + j]!;
        r2 += diff * diff * this.inverseSquaredLengths[j]!;
      }
      k[i] = this.hyperparameters.signalVariance * matern(Math.sqrt(r2));
      mean += k[i]! * this.alpha[i]!;
    }
    const v = solveLower(this.factor, n, k, k);
    let explained = 0;
    for (let i = 0; i < n; i++) explained += v[i]! * v[i]!;
    return {
      mean,
      variance: Math.max(
        1e-12 * this.hyperparameters.signalVariance,
        this.hyperparameters.signalVariance - explained,
      ),
    };
  }

  /** Mean and variance with their gradients with respect to the point (each [D]). */
  predictWithGradient(point: ArrayLike<number>): {
    mean: number;
    variance: number;
    meanGradient: Float64Array;
    varianceGradient: Float64Array;
  } {
    const { n, dimensions: d } = this;
    const s2 = this.hyperparameters.signalVariance;
    const k = new Float64Array(n);
    const slopes = new Float64Array(n);
    let mean = this.priorMean;
    for (let i = 0; i < n; i++) {
      let r2 = 0;
      for (let j = 0; j < d; j++) {
        const diff = point[j]! - this.x[i * d + j]!;
        r2 += diff * diff * this.inverseSquaredLengths[j]!;
      }
      const r = Math.sqrt(r2);
      k[i] = s2 * matern(r);
      slopes[i] = s2 * maternSlope(r);
      mean += k[i]! * this.alpha[i]!;
    }
    const v = solveLower(this.factor, n, k);
    let explained = 0;
    for (let i = 0; i < n; i++) explained += v[i]! * v[i]!;
    const weights = solveLowerTransposed(this.factor, n, v); // K⁻¹·k
    const meanGradient = new Float64Array(d);
    const varianceGradient = new Float64Array(d);
    for (let i = 0; i < n; i++) {
      // ∂k_i/∂x_j = −slope_i·(x_j − X_ij)/ℓ_j²
      const a = this.alpha[i]! * slopes[i]!;
      const w = weights[i]! * slopes[i]!;
      for (let j = 0; j < d; j++) {
        const scaled = (point[j]! - this.x[i * d + j]!) * this.inverseSquaredLengths[j]!;
        meanGradient[j]! -= a * scaled;
        varianceGradient[j]! += 2 * w * scaled;
      }
    }
    const variance = s2 - explained;
    if (variance < 1e-12 * s2)
      return { mean, variance: 1e-12 * s2, meanGradient, varianceGradient: new Float64Array(d) };
    return { mean, variance, meanGradient, varianceGradient };
  }
}

/** m = 1ᵀK⁻¹y / 1ᵀK⁻¹1 from the Cholesky factor of K: with u = L⁻¹1 and v = L⁻¹y, m = u·v / u·u. */
function generalizedLeastSquaresMean(factor: Float64Array, n: number, y: Float64Array): number {
  const u = solveLower(factor, n, new Float64Array(n).fill(1));
  const v = solveLower(factor, n, y);
  let uv = 0;
  let uu = 0;
  for (let i = 0; i < n; i++) {
    uv += u[i]! * v[i]!;
    uu += u[i]! * u[i]!;
  }
  return uu > 0 ? uv / uu : 0;
}

function kernelMatrix(
  x: Float64Array,
  n: number,
  d: number,
  inverseSquaredLengths: Float64Array,
  signalVariance: number,
): Float64Array {
  const kernel = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    kernel[i * n + i] = signalVariance;
    for (let j = 0; j < i; j++) {
      let r2 = 0;
      for (let c = 0; c < d; c++) {
        const diff = x[i * d + c]! - x[j * d + c]!;
        r2 += diff * diff * inverseSquaredLengths[c]!;
      }
      const value = signalVariance * matern(Math.sqrt(r2));
      kernel[i * n + j] = value;
      kernel[j * n + i] = value;
    }
  }
  return kernel;
}

/** Cholesky of K + σ²I, adding jitter (up to 1e-4·s²) when rounding makes K indefinite. */
function factorize(kernel: Float64Array, n: number, noise: number, signal: number): Float64Array | null {
  const withNoise = Float64Array.from(kernel);
  for (let jitter = 0; jitter <= 1e-4 * signal; jitter = jitter === 0 ? 1e-10 * signal : jitter * 10) {
    for (let i = 0; i < n; i++) withNoise[i * n + i] = kernel[i * n + i]! + noise + jitter;
    const factor = cholesky(withNoise, n);
    if (factor !== null) return factor;
  }
  return null;
}

/**
 * −(log marginal likelihood + log prior) at θ = (log ℓ_1..log ℓ_D, log s², log σ²) with its gradient,
 * for fixed data. The squared coordinate differences of all pairs are computed once, since every
 * evaluation during a fit needs them.
 */
export class NegativeLogPosterior {
  private readonly n: number;
  private readonly d: number;
  private readonly y: Float64Array;
  /** squaredDifferences[p·D + c] = (x_i,c − x_j,c)² for pair p = (i, j), j < i, in row order. */
  private readonly squaredDifferences: Float64Array;
  private readonly fixedNoise: number | null;

  constructor(x: Float64Array, y: Float64Array, d: number, fixedNoise: number | null) {
    const n = y.length;
    this.n = n;
    this.d = d;
    this.y = y;
    this.fixedNoise = fixedNoise;
    this.squaredDifferences = new Float64Array(((n * (n - 1)) / 2) * d);
    let p = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < i; j++, p++) {
        for (let c = 0; c < d; c++) {
          const diff = x[i * d + c]! - x[j * d + c]!;
          this.squaredDifferences[p * d + c] = diff * diff;
        }
      }
    }
  }

  /** The value at θ; writes the gradient. Infinity where K cannot be factorized. */
  evaluate(theta: Float64Array, gradient: Float64Array): number {
    const { n, d, y, squaredDifferences } = this;
    const inverseSquaredLengths = new Float64Array(d);
    for (let c = 0; c < d; c++) inverseSquaredLengths[c] = Math.exp(-2 * theta[c]!);
    const signal = Math.exp(theta[d]!);
    const noise = this.fixedNoise ?? Math.exp(theta[d + 1]!);
    // K with noise on the diagonal, and each pair's s²·slope for the length-scale derivatives.
    const kernel = new Float64Array(n * n);
    const slopes = new Float64Array((n * (n - 1)) / 2);
    let p = 0;
    for (let i = 0; i < n; i++) {
      kernel[i * n + i] = signal + noise;
      for (let j = 0; j < i; j++, p++) {
        let r2 = 0;
        for (let c = 0; c < d; c++) r2 += squaredDifferences[p * d + c]! * inverseSquaredLengths[c]!;
        const r = Math.sqrt(r2);
        const decay = Math.exp(-SQRT5 * r);
        kernel[i * n + j] = signal * (1 + SQRT5 * r + (5 / 3) * r2) * decay;
        slopes[p] = signal * (5 / 3) * (1 + SQRT5 * r) * decay;
      }
    }
    const factor = cholesky(kernel, n);
    if (factor === null) {
      gradient.fill(0);
      return Infinity;
    }
    const mean = generalizedLeastSquaresMean(factor, n, y);
    const centered = y.map((v) => v - mean);
    const alpha = solveLowerTransposed(factor, n, solveLower(factor, n, centered));
    let value = 0.5 * n * LOG_2PI;
    for (let i = 0; i < n; i++) value += 0.5 * centered[i]! * alpha[i]! + Math.log(factor[i * n + i]!);
    // W = K⁻¹ − ααᵀ; ∂(−log p)/∂θ_j = ½·Σ_ik W_ik·∂K_ik/∂θ_j, off-diagonal pairs counted twice.
    const inverse = inverseFromCholesky(factor, n);
    gradient.fill(0);
    let signalGradient = 0;
    let noiseGradient = 0;
    p = 0;
    for (let i = 0; i < n; i++) {
      const wii = inverse[i * n + i]! - alpha[i]! * alpha[i]!;
      noiseGradient += wii;
      signalGradient += wii * signal;
      for (let j = 0; j < i; j++, p++) {
        const wij = inverse[i * n + j]! - alpha[i]! * alpha[j]!;
        signalGradient += 2 * wij * kernel[i * n + j]!;
        const common = wij * slopes[p]!;
        for (let c = 0; c < d; c++)
          gradient[c]! += common * squaredDifferences[p * d + c]! * inverseSquaredLengths[c]!;
      }
    }
    gradient[d] = 0.5 * signalGradient;
    gradient[d + 1] = this.fixedNoise === null ? 0.5 * noiseGradient * noise : 0;
    // Priors: log-normal on ℓ, s² and σ², i.e. normal on θ.
    const addPrior = (index: number, mean: number, sd: number) => {
      const z = (theta[index]! - mean) / sd;
      value += 0.5 * z * z;
      gradient[index]! += z / sd;
    };
    for (let c = 0; c < d; c++) addPrior(c, priors.logLength.mean, priors.logLength.sd);
    addPrior(d, priors.logSignal.mean, priors.logSignal.sd);
    if (this.fixedNoise === null) addPrior(d + 1, priors.logNoise.mean, priors.logNoise.sd);
    return value;
  }
}

function toTheta(h: GpHyperparameters, d: number): Float64Array {
  const theta = new Float64Array(d + 2);
  for (let j = 0; j < d; j++) theta[j] = Math.log(h.lengthScales[j]!);
  theta[d] = Math.log(h.signalVariance);
  theta[d + 1] = Math.log(h.noiseVariance);
  return theta;
}

function fromTheta(theta: Float64Array, d: number, fixedNoise: number | null): GpHyperparameters {
  return {
    lengthScales: Float64Array.from({ length: d }, (_, j) => Math.exp(theta[j]!)),
    signalVariance: Math.exp(theta[d]!),
    noiseVariance: fixedNoise ?? Math.exp(theta[d + 1]!),
  };
}

/** The default starting point: length scales 0.5, unit signal, small noise. */
export function defaultHyperparameters(d: number, minNoise = 1e-6): GpHyperparameters {
  return {
    lengthScales: new Float64Array(d).fill(0.5),
    signalVariance: 1,
    noiseVariance: Math.max(minNoise, 1e-4),
  };
}

/** Maximum a posteriori hyperparameters for points x [n, D] and standardized outputs y [n]. */
export function fitHyperparameters(
  x: Float64Array,
  y: Float64Array,
  d: number,
  options: GpFitOptions,
): GpHyperparameters {
  const minNoise = options.minNoise ?? 1e-6;
  const fixedNoise = options.fixedNoise ? minNoise : null;
  const lower = new Float64Array(d + 2);
  const upper = new Float64Array(d + 2);
  for (let j = 0; j < d; j++) [lower[j], upper[j]] = bounds.logLength;
  [lower[d], upper[d]] = bounds.logSignal;
  lower[d + 1] = Math.log(minNoise);
  upper[d + 1] = Math.max(lower[d + 1]!, bounds.logNoiseMax);
  const starts: Float64Array[] =
    options.defaultStart === false ? [] : [toTheta(defaultHyperparameters(d, minNoise), d)];
  for (const initial of options.initial ?? [])
    if (initial.lengthScales.length === d) starts.push(toTheta(initial, d));
  for (let r = 0; r < (options.randomRestarts ?? 2); r++) {
    const theta = new Float64Array(d + 2);
    for (let j = 0; j < d; j++) theta[j] = options.random.normal(priors.logLength.mean, priors.logLength.sd);
    theta[d] = options.random.normal(priors.logSignal.mean, priors.logSignal.sd);
    theta[d + 1] = options.random.normal(priors.logNoise.mean, priors.logNoise.sd);
    starts.push(theta);
  }
  const objective = new NegativeLogPosterior(x, y, d, fixedNoise);
  let best: { theta: Float64Array; value: number } | null = null;
  for (const start of starts) {
    for (let j = 0; j < d + 2; j++) start[j] = Math.min(upper[j]!, Math.max(lower[j]!, start[j]!));
    const result = minimizeBox(
      (theta, gradient) => objective.evaluate(theta, gradient),
      start,
      lower,
      upper,
      {
        maxIterations: options.maxIterations ?? 60,
        gradientTolerance: 1e-5,
        valueTolerance: 1e-8,
      },
    );
    if (Number.isFinite(result.value) && (best === null || result.value < best.value))
      best = { theta: result.x, value: result.value };
  }
  if (best === null && options.defaultStart === false)
    return fitHyperparameters(x, y, d, { ...options, defaultStart: true });
  return best === null ? defaultHyperparameters(d, minNoise) : fromTheta(best.theta, d, fixedNoise);
}
