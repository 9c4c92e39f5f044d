/**
 * The Parzen estimator of TPE: a weighted mixture of product kernels over one or more parameters,
 * one mixture component per observation plus an optional prior component.
 *
 * Numeric parameters live in a transformed space (log space for log ranges; a half step wider than the
 * range for grids) where each component is a normal truncated to the bounds; grid parameters get the
 * probability mass of their cell. Categorical parameters get, per component, a distribution over the
 * choices peaked at the observed choice.
 */
import { cardinality, type Distribution, type ParamValue } from '../distributions.js';
import { logNormalInterval, logNormalPdf } from '../math/normal.js';
import type { Random } from '../../tensor/random.js';

/** How a parameter is represented inside the estimator. */
export type ParzenDimension =
  | {
      kind: 'numeric';
      low: number;
      high: number;
      step: number | null;
      log: boolean;
      integer: boolean;
      distribution: Distribution;
    }
  | { kind: 'categorical'; count: number; distribution: Distribution };

export function parzenDimension(distribution: Distribution): ParzenDimension {
  if (distribution.kind === 'categorical')
    return { kind: 'categorical', count: distribution.choices.length, distribution };
  const integer = distribution.kind === 'int';
  if (distribution.log) {
    // Log integers are sampled continuously in log space between the half-integers around the range.
    const low = integer ? Math.log(distribution.low - 0.5) : Math.log(distribution.low);
    const high = integer ? Math.log(distribution.high + 0.5) : Math.log(distribution.high);
    return { kind: 'numeric', low, high, step: null, log: true, integer, distribution };
  }
  const step = distribution.step ?? (integer ? 1 : null);
  if (step === null)
    return {
      kind: 'numeric',
      low: distribution.low,
      high: distribution.high,
      step: null,
      log: false,
      integer,
      distribution,
    };
  return {
    kind: 'numeric',
    low: distribution.low - step / 2,
    high: distribution.high + step / 2,
    step,
    log: false,
    integer,
    distribution,
  };
}

/** External value → the estimator's coordinate (transformed number or choice index). */
export function toParzen(dimension: ParzenDimension, value: ParamValue): number {
  const distribution = dimension.distribution;
  if (distribution.kind === 'categorical') return distribution.choices.indexOf(value);
  return distribution.log ? Math.log(value as number) : (value as number);
}

/** The estimator's coordinate → an external value in the domain (rounded onto grids). */
export function fromParzen(dimension: ParzenDimension, x: number): ParamValue {
  const distribution = dimension.distribution;
  if (distribution.kind === 'categorical') return distribution.choices[x]!;
  const { low, high } = distribution;
  if (distribution.log) {
    const value = Math.exp(x);
    return Math.min(high, Math.max(low, distribution.kind === 'int' ? Math.round(value) : value));
  }
  const step = distribution.step ?? (distribution.kind === 'int' ? 1 : null);
  if (step === null) return Math.min(high, Math.max(low, x));
  const k = Math.min(cardinality(distribution) - 1, Math.max(0, Math.round((x - low) / step)));
  const value = low + k * step;
  return distribution.kind === 'int' ? value : Number(value.toPrecision(14));
}

export interface ParzenSettings {
  considerPrior: boolean;
  priorWeight: number;
  considerMagicClip: boolean;
  considerEndpoints: boolean;
  /** Bandwidths from Scott's rule over all dimensions (multivariate TPE) instead of neighbour gaps. */
  multivariate: boolean;
  /**
   * Score with kernels of equal peak height, w_k·φ((x − μ_k)/σ_k)/Z_k, instead of equal mass
   * (w_k·φ(…)/(σ_k·Z_k)) on continuous coordinates. See TpeSamplerOptions.equalHeightKernels.
   */
  equalHeightKernels: boolean;
}

interface NumericKernels {
  kind: 'numeric';
  mus: Float64Array;
  sigmas: Float64Array;
  /** log of each truncated kernel's mass inside the bounds (its normalizer). */
  logMasses: Float64Array;
}

interface CategoricalKernels {
  kind: 'categorical';
  /** probabilities[k * count + c] */
  probabilities: Float64Array;
  count: number;
}

export class ParzenEstimator {
  readonly dimensions: readonly ParzenDimension[];
  /** Mixture weights, summing to 1 (observations first, the prior last). */
  readonly weights: Float64Array;
  private readonly kernels: (NumericKernels | CategoricalKernels)[];
  private readonly logWeights: Float64Array;
  private readonly equalHeightKernels: boolean;

  /**
   * @param observations one row per observation: coordinates in the order of `dimensions`
   * @param observationWeights one non-negative weight per observation (before normalization)
   */
  constructor(
    dimensions: readonly ParzenDimension[],
    observations: readonly (readonly number[])[],
    observationWeights: readonly number[],
    settings: ParzenSettings,
  ) {
    this.dimensions = dimensions;
    this.equalHeightKernels = settings.equalHeightKernels;
    const n = observations.length;
    const components = n + (settings.considerPrior || n === 0 ? 1 : 0);
    const weights = new Float64Array(components);
    for (let i = 0; i < n; i++) weights[i] = observationWeights[i]!;
    if (components > n) weights[n] = settings.priorWeight;
    let total = 0;
    for (const w of weights) total += w;
    for (let i = 0; i < components; i++) weights[i]! /= total;
    this.weights = weights;
    this.logWeights = weights.map(Math.log);
    this.kernels = dimensions.map((dimension, d) => {
      const values = observations.map((row) => row[d]!);
      if (dimension.kind === 'categorical')
        return categoricalKernels(dimension.count, values, components, settings);
      return numericKernels(dimension.low, dimension.high, values, components, settings, dimensions.length);
    });
  }

  /** Draws `count` points (rows of coordinates) from the mixture. */
  sample(random: Random, count: number): number[][] {
    const points: number[][] = [];
    for (let s = 0; s < count; s++) {
      const component = pickIndex(this.weights, random);
      points.push(
        this.dimensions.map((dimension, d) => {
          const kernels = this.kernels[d]!;
          if (kernels.kind === 'categorical') {
            return pickIndex(
              kernels.probabilities.subarray(component * kernels.count, (component + 1) * kernels.count),
              random,
            );
          }
          const dim = dimension as Extract<ParzenDimension, { kind: 'numeric' }>;
          const x = sampleTruncatedNormal(
            kernels.mus[component]!,
            kernels.sigmas[component]!,
            dim.low,
            dim.high,
            random,
          );
          if (dim.step !== null) {
            // Onto the grid, whose first point is half a step inside the widened bounds.
            const first = dim.low + dim.step / 2;
            const last = dim.high - dim.step / 2;
            return Math.min(last, Math.max(first, first + Math.round((x - first) / dim.step) * dim.step));
          }
          if (dim.integer && dim.log)
            return Math.log(
              Math.min(Math.exp(dim.high) - 0.5, Math.max(Math.exp(dim.low) + 0.5, Math.round(Math.exp(x)))),
            );
          return x;
        }),
      );
    }
    return points;
  }

  /** log of the mixture density (or mass, on grids and choices) at each point. */
  logPdf(points: readonly (readonly number[])[]): Float64Array {
    const components = this.weights.length;
    const result = new Float64Array(points.length);
    const terms = new Float64Array(components);
    points.forEach((point, p) => {
      terms.set(this.logWeights);
      this.dimensions.forEach((dimension, d) => {
        const kernels = this.kernels[d]!;
        const x = point[d]!;
        if (kernels.kind === 'categorical') {
          for (let k = 0; k < components; k++)
            terms[k]! += Math.log(kernels.probabilities[k * kernels.count + x]!);
          return;
        }
        const dim = dimension as Extract<ParzenDimension, { kind: 'numeric' }>;
        for (let k = 0; k < components; k++) {
          const mu = kernels.mus[k]!;
          const sigma = kernels.sigmas[k]!;
          if (dim.step !== null) {
            const lower = Math.max(dim.low, x - dim.step / 2);
            const upper = Math.min(dim.high, x + dim.step / 2);
            terms[k]! +=
              logNormalInterval((lower - mu) / sigma, (upper - mu) / sigma) - kernels.logMasses[k]!;
          } else {
            terms[k]! +=
              logNormalPdf((x - mu) / sigma) -
              (this.equalHeightKernels ? 0 : Math.log(sigma)) -
              kernels.logMasses[k]!;
          }
        }
      });
      result[p] = logSumExp(terms);
    });
    return result;
  }
}

function logSumExp(values: Float64Array): number {
  let max = -Infinity;
  for (const v of values) if (v > max) max = v;
  if (max === -Infinity) return -Infinity;
  let sum = 0;
  for (const v of values) sum += Math.exp(v - max);
  return max + Math.log(sum);
}

/** An index drawn with probability proportional to weights. */
export function pickIndex(weights: ArrayLike<number>, random: Random): number {
  let total = 0;
  for (let i = 0; i < weights.length; i++) total += weights[i]!;
  let u = random.next() * total;
  for (let i = 0; i < weights.length; i++) {
    u -= weights[i]!;
    if (u < 0) return i;
  }
  return weights.length - 1;
}

/** N(mu, sigma) restricted to [low, high], by rejection (the kernels' centres lie inside the bounds, so most draws land). */
export function sampleTruncatedNormal(
  mu: number,
  sigma: number,
  low: number,
  high: number,
  random: Random,
): number {
  for (let attempt = 0; attempt < 100; attempt++) {
    const x = random.normal(mu, sigma);
    if (x >= low && x <= high) return x;
  }
  return Math.min(high, Math.max(low, mu));
}

function numericKernels(
  low: number,
  high: number,
  values: readonly number[],
  components: number,
  settings: ParzenSettings,
  dimensionCount: number,
): NumericKernels {
  const n = values.length;
  const mus = new Float64Array(components);
  const sigmas = new Float64Array(components);
  for (let i = 0; i < n; i++) mus[i] = values[i]!;
  const hasPrior = components > n;
  const range = high - low;
  if (hasPrior) mus[n] = 0.5 * (low + high);
  if (settings.multivariate) {
    // Scott's rule scaled to the range, as multivariate TPE (Falkner et al., BOHB) does.
    const bandwidth = 0.2 * components ** (-1 / (dimensionCount + 4)) * range;
    sigmas.fill(bandwidth);
  } else {
    // Each kernel is as wide as the larger gap to its neighbours (the range ends count as neighbours).
    const order = Array.from(mus.keys()).sort((a, b) => mus[a]! - mus[b]!);
    const sorted = order.map((i) => mus[i]!);
    for (let j = 0; j < sorted.length; j++) {
      const left = j === 0 ? sorted[j]! - low : sorted[j]! - sorted[j - 1]!;
      const right = j === sorted.length - 1 ? high - sorted[j]! : sorted[j + 1]! - sorted[j]!;
      let sigma = Math.max(left, right);
      if (!settings.considerEndpoints && sorted.length >= 2) {
        if (j === 0) sigma = right;
        if (j === sorted.length - 1) sigma = left;
      }
      sigmas[order[j]!] = sigma;
    }
  }
  // The "magic clip" keeps kernels from collapsing onto a point when observations pile up.
  const minSigma = settings.considerMagicClip ? range / Math.min(100, 1 + components) : 1e-12;
  for (let i = 0; i < components; i++) sigmas[i] = Math.min(range, Math.max(minSigma, sigmas[i]!));
  if (hasPrior) sigmas[n] = range;
  if (range === 0) sigmas.fill(1);
  const logMasses = new Float64Array(components);
  for (let k = 0; k < components; k++)
    logMasses[k] = logNormalInterval((low - mus[k]!) / sigmas[k]!, (high - mus[k]!) / sigmas[k]!);
  return { kind: 'numeric', mus, sigmas, logMasses };
}

function categoricalKernels(
  count: number,
  values: readonly number[],
  components: number,
  settings: ParzenSettings,
): CategoricalKernels {
  const probabilities = new Float64Array(components * count);
  // Every kernel spreads priorWeight / components over all choices and puts 1 on its own observation;
  // the prior kernel (last row) stays uniform.
  probabilities.fill(settings.priorWeight / components);
  for (let i = 0; i < values.length; i++) probabilities[i * count + values[i]!]! += 1;
  for (let k = 0; k < components; k++) {
    let total = 0;
    for (let c = 0; c < count; c++) total += probabilities[k * count + c]!;
    for (let c = 0; c < count; c++) probabilities[k * count + c]! /= total;
  }
  return { kind: 'categorical', probabilities, count };
}
