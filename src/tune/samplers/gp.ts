/**
 * Bayesian optimization with a Gaussian process and expected improvement.
 *
 * Each suggestion:
 *   1. encodes the finished trials into the unit cube (log ranges in log space, integers and grids
 *      continuously, categorical parameters one-hot) and standardizes their values, negated when
 *      maximizing, so the GP always minimizes (its constant prior mean is fitted too). Complete trials
 *      enter with their value; pruned trials with their last reported value, but never better than
 *      the best complete value (the incumbent is always a trial that ran its whole budget); failed
 *      trials, and trials pruned before their first report, with the worst value observed (a
 *      pessimistic liar: whatever broke there may break again);
 *   2. fits the Matérn-5/2 ARD kernel's hyperparameters by maximum marginal likelihood (with weak
 *      priors): L-BFGS from the previous fit, a default start and random starts (gaussian-process.ts);
 *   3. adds the other workers' running trials at the best value seen so far (a constant liar: no
 *      improvement is expected there, so no worker proposes the same point twice);
 *   4. maximizes log expected improvement: scores quasi-random candidates over the whole cube and
 *      candidates near the best points, then refines the best of them with box-bounded L-BFGS on the
 *      analytic gradient (categorical coordinates held fixed). When the best point's basin has
 *      stopped improving (`stallTrials`), the improvement is measured against the best point of
 *      another basin instead, and the exhausted basin is left out (see secondBasin);
 *   5. decodes the winner (rounding integers and grids, arg-max for one-hot groups), falling back to
 *      the next candidate when it lands on a point already evaluated or pending, of any state: the
 *      same grid point and choice on discrete parameters, and within `resolution` of the unit range
 *      on continuous ones.
 * Until `startupTrials` trials have finished (complete, pruned or failed alike) the suggestions follow
 * a scrambled Sobol sequence (the very first one is random, before any search space is known).
 */
import {
  cardinality,
  fromUnit,
  isSingleValue,
  toExternal,
  toInternal,
  toUnit,
  type Distribution,
  type ParamValue,
  type SearchSpace,
} from '../distributions.js';
import { lastIntermediate, pendingParams, type FrozenTrial } from '../frozen-trial.js';
import {
  defaultHyperparameters,
  fitHyperparameters,
  GaussianProcess,
  type GpHyperparameters,
} from '../gp/gaussian-process.js';
import { minimizeBox } from '../math/lbfgs.js';
import { logExpectedImprovementFactor, logExpectedImprovementFactorDerivative } from '../math/normal.js';
import { Random } from '../../tensor/random.js';
import type { Sampler, StudyView } from './sampler.js';
import {
  finishedTrialCount,
  intersectionSearchSpace,
  randomSeed,
  sampleUniform,
  trialRandom,
} from './search-space.js';
import { SobolEngine } from './sobol.js';

export interface GpSamplerOptions {
  seed?: number;
  /** Finished trials (complete, pruned or failed) before the GP takes over; Sobol points until then (default 10). */
  startupTrials?: number;
  /** Quasi-random candidates scored per suggestion (default 2048). */
  candidates?: number;
  /** Candidates drawn around each of the best points (default 128, around the best 5). */
  localCandidates?: number;
  /** Best candidates refined by L-BFGS (default 8). */
  refinements?: number;
  /** Random starts for the hyperparameters besides the warm and default ones, on every fifth fit (default 2). */
  hyperparameterRestarts?: number;
  /** The objective has no noise: fix the GP's noise at a tiny floor instead of fitting it (default false). */
  deterministicObjective?: boolean;
  /**
   * Warp the standardized objective values with a Yeo–Johnson power transform fitted by maximum
   * likelihood before modelling them, as HEBO (Cowen-Rivers et al., 2022) does (default false). It
   * helps objectives with a few extreme values, but the transform is fitted to the sample, and once a
   * basin has been refined with dozens of near-equal values it bends the scale around them: on
   * bench:tune's Hartmann6 a mediocre point next to the global minimum came out worse than the
   * average, and more seeds stopped in the local minimum than without warping.
   */
  warpOutputs?: boolean;
  /**
   * ξ: expected improvement counts only improvements beyond best − ξ, in units of the standardized
   * objective (default 0). Larger values trade refinement of the incumbent for exploration.
   */
  minimumImprovement?: number;
  /**
   * After this many finished trials without a relative improvement of 1e-3 of the value range
   * (default 10; 0: never), the best point's basin counts as exhausted: expected improvement is then
   * taken over the value of the best point in another basin and maximized outside the exhausted one,
   * until a trial improves on the best again. Expected improvement over the global best rates a
   * region only by how likely it is to beat the incumbent at once, so a region whose first samples
   * were mediocre stays unexplored even when it holds the true optimum. Two points lie in different
   * basins when the GP's mean rises above both somewhere on the segment between them (the hill–valley
   * test of niching evolutionary algorithms).
   */
  stallTrials?: number;
  /**
   * Two points whose continuous coordinates all lie within this fraction of their unit range (in log
   * space for log ranges), with the same choices and grid points elsewhere, count as the same
   * configuration, which is never proposed twice (default 1e-4; on lr from 1e-4 to 1e-1, 0.07%).
   */
  resolution?: number;
}

/** How the search space maps into the unit cube. */
interface Encoding {
  names: string[];
  distributions: Distribution[];
  /** First coordinate of each parameter. */
  offsets: number[];
  /** Coordinates per parameter (1, or the number of choices for categorical ones). */
  widths: number[];
  dimensions: number;
  /** 1 for coordinates that L-BFGS may move (non-categorical). */
  continuous: Uint8Array;
  /** 1 for coordinates of continuous ranges (neither categorical nor on a grid): compared within the resolution. */
  unbounded: Uint8Array;
}

function encoding(space: SearchSpace): Encoding {
  const names = Object.keys(space);
  const distributions = names.map((n) => space[n]!);
  const offsets: number[] = [];
  const widths: number[] = [];
  let dimensions = 0;
  for (const distribution of distributions) {
    offsets.push(dimensions);
    const width = distribution.kind === 'categorical' ? distribution.choices.length : 1;
    widths.push(width);
    dimensions += width;
  }
  const continuous = new Uint8Array(dimensions);
  const unbounded = new Uint8Array(dimensions);
  distributions.forEach((distribution, p) => {
    if (distribution.kind !== 'categorical') continuous[offsets[p]!] = 1;
    if (!Number.isFinite(cardinality(distribution))) unbounded[offsets[p]!] = 1;
  });
  return { names, distributions, offsets, widths, dimensions, continuous, unbounded };
}

/** Params (external values) → a point of the cube; null when a parameter is missing or out of range. */
function encode(enc: Encoding, params: Readonly<Record<string, ParamValue>>, out: Float64Array): boolean {
  for (let p = 0; p < enc.names.length; p++) {
    const name = enc.names[p]!;
    if (!(name in params)) return false;
    const distribution = enc.distributions[p]!;
    let internal: number;
    try {
      internal = toInternal(distribution, params[name]!);
    } catch {
      return false;
    }
    if (distribution.kind === 'categorical') {
      for (let c = 0; c < enc.widths[p]!; c++) out[enc.offsets[p]! + c] = c === internal ? 1 : 0;
    } else {
      if (internal < distribution.low || internal > distribution.high) return false;
      out[enc.offsets[p]!] = toUnit(distribution, internal);
    }
  }
  return true;
}

/** A cube point → params; one-hot groups decode to their largest coordinate. */
function decode(enc: Encoding, point: ArrayLike<number>): Record<string, ParamValue> {
  const params: Record<string, ParamValue> = {};
  enc.names.forEach((name, p) => {
    const distribution = enc.distributions[p]!;
    if (distribution.kind === 'categorical') {
      let best = 0;
      for (let c = 1; c < enc.widths[p]!; c++)
        if (point[enc.offsets[p]! + c]! > point[enc.offsets[p]! + best]!) best = c;
      params[name] = distribution.choices[best]!;
    } else {
      params[name] = toExternal(distribution, fromUnit(distribution, point[enc.offsets[p]!]!));
    }
  });
  return params;
}

/** Snaps a point onto what decode would return (so duplicates can be recognised). */
function canonical(enc: Encoding, point: ArrayLike<number>): Float64Array {
  const out = new Float64Array(enc.dimensions);
  encode(enc, decode(enc, point), out);
  return out;
}

/**
 * Whether two canonical points are the same configuration: equal choices and grid points, continuous
 * coordinates within `resolution`.
 */
function sameConfiguration(enc: Encoding, a: Float64Array, b: Float64Array, resolution: number): boolean {
  for (let j = 0; j < enc.dimensions; j++) {
    const tolerance = enc.unbounded[j] ? resolution : 1e-9;
    if (Math.abs(a[j]! - b[j]!) > tolerance) return false;
  }
  return true;
}

export class GpSampler implements Sampler {
  readonly startupTrials: number;
  private readonly options: Required<Omit<GpSamplerOptions, 'seed' | 'startupTrials'>>;
  readonly seed: number;
  private previous: { key: string; hyperparameters: GpHyperparameters } | null = null;
  private fits = 0;

  constructor(options: GpSamplerOptions = {}) {
    this.seed = options.seed ?? randomSeed();
    this.startupTrials = options.startupTrials ?? 10;
    this.options = {
      candidates: options.candidates ?? 2048,
      localCandidates: options.localCandidates ?? 128,
      refinements: options.refinements ?? 8,
      hyperparameterRestarts: options.hyperparameterRestarts ?? 2,
      deterministicObjective: options.deterministicObjective ?? false,
      warpOutputs: options.warpOutputs ?? false,
      minimumImprovement: options.minimumImprovement ?? 0,
      stallTrials: options.stallTrials ?? 10,
      resolution: options.resolution ?? 1e-4,
    };
    if (!(this.options.resolution >= 0 && this.options.resolution < 1))
      throw new RangeError('GpSampler: resolution must lie in [0, 1)');
    if (!Number.isSafeInteger(this.startupTrials) || this.startupTrials < 1)
      throw new RangeError('GpSampler: startupTrials must be a positive integer');
  }

  inferRelativeSearchSpace(study: StudyView): SearchSpace {
    const space = intersectionSearchSpace(study.trials, { includePruned: true });
    for (const name of Object.keys(space)) if (isSingleValue(space[name]!)) delete space[name];
    return space;
  }

  /** 'startup: random' (no search space yet), 'startup: sobol' (too few finished trials) or 'gp'. */
  phase(study: StudyView, trial: FrozenTrial, space: SearchSpace): string {
    if (encoding(space).dimensions === 0) return 'startup: random';
    return this.inStartup(study, trial) ? 'startup: sobol' : 'gp';
  }

  /** Whether the trial still gets a Sobol point: too few finished trials, or none with a value yet. */
  private inStartup(study: StudyView, trial: FrozenTrial): boolean {
    if (finishedTrialCount(study.trials, trial) < this.startupTrials) return true;
    return !study.trials.some(
      (t) =>
        t.id !== trial.id &&
        (t.state === 'complete' || (t.state === 'pruned' && t.intermediateValues.size > 0)),
    );
  }

  sampleIndependent(
    _study: StudyView,
    trial: FrozenTrial,
    name: string,
    distribution: Distribution,
  ): ParamValue {
    return sampleUniform(distribution, trialRandom(this.seed, trial.number, name));
  }

  sampleRelative(study: StudyView, trial: FrozenTrial, space: SearchSpace): Record<string, ParamValue> {
    const enc = encoding(space);
    if (enc.dimensions === 0) return {};
    const random = trialRandom(this.seed, trial.number, 'gp');
    const d = enc.dimensions;
    const { points, values, complete, pending, visited } = observations(enc, study, trial);
    // Points already evaluated (in any state) or pending, for step 5 and the startup points.
    const seen = visited.map((p) => canonical(enc, p));
    const resolution = this.options.resolution;
    const isNew = (point: Float64Array) => {
      const c = canonical(enc, point);
      return !seen.some((s) => sameConfiguration(enc, s, c, resolution));
    };
    if (this.inStartup(study, trial) || points.length === 0)
      return this.startupPoint(enc, space, trial.number, isNew, random);

    // 1. Standardize (and, when asked, warp towards normality).
    const n = points.length;
    const y = this.options.warpOutputs ? warpOutputs(values) : standardize(Float64Array.from(values));
    const x = new Float64Array(n * d);
    points.forEach((p, i) => x.set(p, i * d));

    // 2. Fit, warm-started from the previous fit of the same space.
    // The default and random starts on every fifth fit only: between them the warm start tracks the
    // optimum, and the extra starts cost most of a suggestion's time at a hundred trials.
    const spaceKey = JSON.stringify(space);
    const warm = this.previous?.key === spaceKey ? [this.previous.hyperparameters] : [];
    const restart = warm.length === 0 || this.fits++ % 5 === 0;
    const hyperparameters = fitHyperparameters(x, y, d, {
      initial: warm,
      defaultStart: restart,
      randomRestarts: restart ? this.options.hyperparameterRestarts : 0,
      fixedNoise: this.options.deterministicObjective,
      random,
    });
    this.previous = { key: spaceKey, hyperparameters };

    // 3. Constant liar for running trials, at the best complete value.
    let best = Infinity;
    for (let i = 0; i < n; i++) if (complete[i]) best = Math.min(best, y[i]!);
    if (best === Infinity) for (const v of y) best = Math.min(best, v);
    let target = best - this.options.minimumImprovement;
    const allX = new Float64Array((n + pending.length) * d);
    allX.set(x);
    pending.forEach((p, i) => allX.set(p, (n + i) * d));
    const allY = new Float64Array(n + pending.length);
    allY.set(y);
    allY.fill(best, n);
    let gp: GaussianProcess;
    try {
      gp = new GaussianProcess(allX, allY, d, hyperparameters);
    } catch {
      gp = new GaussianProcess(allX, allY, d, defaultHyperparameters(d));
    }

    // 4. Maximize log EI over the cube, improving on the best value; or, once the best point's basin
    // has stalled, improving on the best point of another basin, away from the stalled one.
    // (Ties rank complete trials first, so the incumbent is a complete trial.)
    const order = Array.from(y.keys()).sort(
      (a, b) => y[a]! - y[b]! || Number(complete[b]) - Number(complete[a]),
    );
    const stalled =
      this.options.stallTrials > 0 && trialsSinceImprovement(values) >= this.options.stallTrials;
    const secondary = stalled ? secondBasin(gp, points, y, order) : null;
    let candidates: Float64Array[];
    if (secondary === null) {
      candidates = this.candidates(enc, points, order.slice(0, 5), this.options.candidates, random);
    } else {
      target = y[secondary]! - this.options.minimumImprovement;
      const incumbent = points[order[0]!]!;
      candidates = this.candidates(
        enc,
        points,
        [secondary],
        this.options.candidates,
        random,
        4 * this.options.localCandidates,
      ).filter((point) => !sameBasin(gp, incumbent, y[order[0]!]!, point));
    }
    const scored = candidates.map((point) => ({ point, score: logExpectedImprovement(gp, point, target) }));
    scored.sort((a, b) => b.score - a.score);
    const refined: { point: Float64Array; score: number }[] = [];
    const starts = scored.slice(0, this.options.refinements);
    if (secondary === null) {
      for (const start of starts) refined.push(this.refine(enc, gp, start.point, target));
    } else {
      // Exploring a second basin: refine within a small box and keep only points outside the
      // exhausted basin (which, measured against the second basin's value, has the largest EI of all).
      const incumbent = points[order[0]!]!;
      for (const start of starts) {
        const result = this.refine(enc, gp, start.point, target, 0.05);
        if (!sameBasin(gp, incumbent, y[order[0]!]!, result.point)) refined.push(result);
      }
    }
    const ranked = [...refined, ...scored].sort((a, b) => b.score - a.score);

    // 5. Decode, skipping points already evaluated (in any state) or pending.
    for (const candidate of ranked) if (isNew(candidate.point)) return decode(enc, candidate.point);
    return freshRandomPoint(enc, space, isNew, random);
  }

  /**
   * Point number `index` of a scrambled Sobol sequence, decoded; a random new point instead when it
   * repeats a configuration already evaluated or pending (small discrete spaces).
   */
  private startupPoint(
    enc: Encoding,
    space: SearchSpace,
    index: number,
    isNew: (point: Float64Array) => boolean,
    random: Random,
  ): Record<string, ParamValue> {
    const params = enc.names.length;
    if (params > SobolEngine.maxDimensions) return {};
    const engine = new SobolEngine(params, new Random(this.seed + 7));
    const u = engine.point(index);
    const result: Record<string, ParamValue> = {};
    enc.names.forEach(
      (name, p) => (result[name] = toExternal(enc.distributions[p]!, fromUnit(enc.distributions[p]!, u[p]!))),
    );
    const point = new Float64Array(enc.dimensions);
    if (!encode(enc, result, point) || isNew(point)) return result;
    return freshRandomPoint(enc, space, isNew, random);
  }

  /** Quasi-random points over the cube plus Gaussian perturbations of the best observed points. */
  private candidates(
    enc: Encoding,
    points: readonly Float64Array[],
    centres: readonly number[],
    global: number,
    random: Random,
    perCentre = this.options.localCandidates,
  ): Float64Array[] {
    const d = enc.dimensions;
    const result: Float64Array[] = [];
    const params = enc.names.length;
    const engine = params <= SobolEngine.maxDimensions ? new SobolEngine(params, random.fork()) : null;
    for (let c = 0; c < global; c++) {
      const u =
        engine !== null ? engine.point(c) : Float64Array.from({ length: params }, () => random.next());
      const point = new Float64Array(d);
      enc.distributions.forEach((distribution, p) => {
        if (distribution.kind === 'categorical')
          point[enc.offsets[p]! + Math.min(enc.widths[p]! - 1, Math.floor(u[p]! * enc.widths[p]!))] = 1;
        else point[enc.offsets[p]!] = u[p]!;
      });
      result.push(point);
    }
    const scales = [0.2, 0.05, 0.01, 0.002];
    for (const index of centres) {
      for (let c = 0; c < perCentre; c++) {
        const point = Float64Array.from(points[index]!);
        const scale = scales[c % scales.length]!;
        enc.distributions.forEach((distribution, p) => {
          const offset = enc.offsets[p]!;
          if (distribution.kind === 'categorical') {
            if (random.next() < 0.1) {
              point.fill(0, offset, offset + enc.widths[p]!);
              point[offset + random.int(enc.widths[p]!)] = 1;
            }
          } else {
            point[offset] = Math.min(1, Math.max(0, point[offset]! + random.normal(0, scale)));
          }
        });
        result.push(point);
      }
    }
    return result;
  }

  /** L-BFGS on −log EI over the continuous coordinates, categorical ones held fixed. */
  private refine(
    enc: Encoding,
    gp: GaussianProcess,
    start: Float64Array,
    best: number,
    radius = 1,
  ): { point: Float64Array; score: number } {
    const free: number[] = [];
    for (let i = 0; i < enc.dimensions; i++) if (enc.continuous[i]) free.push(i);
    if (free.length === 0) return { point: start, score: logExpectedImprovement(gp, start, best) };
    const point = Float64Array.from(start);
    const result = minimizeBox(
      (z, gradient) => {
        free.forEach((i, k) => (point[i] = z[k]!));
        const { value, gradient: full } = logExpectedImprovementWithGradient(gp, point, best);
        free.forEach((i, k) => (gradient[k] = -full[i]!));
        return -value;
      },
      free.map((i) => start[i]!),
      free.map((i) => Math.max(0, start[i]! - radius)),
      free.map((i) => Math.min(1, start[i]! + radius)),
      { maxIterations: 40, gradientTolerance: 1e-7, valueTolerance: 1e-9 },
    );
    const refined = Float64Array.from(start);
    free.forEach((i, k) => (refined[i] = result.x[k]!));
    return { point: refined, score: -result.value };
  }
}

/** Uniform random points until one is new (at most 100 tries: a fully evaluated space repeats one). */
function freshRandomPoint(
  enc: Encoding,
  space: SearchSpace,
  isNew: (point: Float64Array) => boolean,
  random: Random,
): Record<string, ParamValue> {
  const params: Record<string, ParamValue> = {};
  const point = new Float64Array(enc.dimensions);
  for (let attempt = 0; attempt < 100; attempt++) {
    for (const name of enc.names) params[name] = sampleUniform(space[name]!, random);
    if (encode(enc, params, point) && isNew(point)) break;
  }
  return params;
}

/**
 * The finished trials as GP observations (values signed so that lower is better), in trial order, and
 * the running trials' points. Complete trials count with their value; pruned ones with their last
 * reported value, made no better than the best complete value; failed ones and those pruned before a
 * report with the worst value among the others (left out while there is none). `visited`: the points
 * of every finished and running trial.
 */
function observations(
  enc: Encoding,
  study: StudyView,
  trial: FrozenTrial,
): {
  points: Float64Array[];
  values: number[];
  complete: boolean[];
  pending: Float64Array[];
  visited: Float64Array[];
} {
  const sign = study.direction === 'minimize' ? 1 : -1;
  const d = enc.dimensions;
  const entries: { point: Float64Array; value: number | null; complete: boolean }[] = [];
  const pending: Float64Array[] = [];
  const visited: Float64Array[] = [];
  let bestComplete = Infinity;
  for (const other of study.trials) {
    if (other.id === trial.id) continue;
    const point = new Float64Array(d);
    if (other.state === 'running') {
      if (encode(enc, pendingParams(other), point)) {
        pending.push(point);
        visited.push(point);
      }
      continue;
    }
    if (!encode(enc, other.params, point)) continue;
    if (other.state !== 'waiting') visited.push(point);
    if (other.state === 'complete') {
      entries.push({ point, value: sign * other.value!, complete: true });
      bestComplete = Math.min(bestComplete, sign * other.value!);
    } else if (other.state === 'pruned' || other.state === 'failed') {
      const last = other.state === 'pruned' ? lastIntermediate(other) : null;
      entries.push({
        point,
        value: last !== null && Number.isFinite(last.value) ? sign * last.value : null,
        complete: false,
      });
    }
  }
  let worst = -Infinity;
  for (const entry of entries) {
    if (entry.value === null) continue;
    if (!entry.complete && bestComplete < Infinity) entry.value = Math.max(entry.value, bestComplete);
    worst = Math.max(worst, entry.value);
  }
  const points: Float64Array[] = [];
  const values: number[] = [];
  const complete: boolean[] = [];
  for (const entry of entries) {
    const value = entry.value ?? (worst === -Infinity ? null : worst);
    if (value === null) continue;
    points.push(entry.point);
    values.push(value);
    complete.push(entry.complete);
  }
  return { points, values, complete, pending, visited };
}

/** Shifts and scales values in place to zero mean and unit variance (constant values become zeros). */
export function standardize(values: Float64Array): Float64Array {
  const n = values.length;
  let mean = 0;
  for (const v of values) mean += v / n;
  let variance = 0;
  for (const v of values) variance += (v - mean) ** 2 / n;
  const sd = Math.sqrt(variance) || 1;
  for (let i = 0; i < n; i++) values[i] = (values[i]! - mean) / sd;
  return values;
}

/** The Yeo–Johnson transform (a Box–Cox transform extended to negative values). */
export function yeoJohnson(value: number, lambda: number): number {
  if (value >= 0) return Math.abs(lambda) < 1e-12 ? Math.log1p(value) : ((value + 1) ** lambda - 1) / lambda;
  return Math.abs(lambda - 2) < 1e-12
    ? -Math.log1p(-value)
    : -((1 - value) ** (2 - lambda) - 1) / (2 - lambda);
}

/**
 * Standardizes values, applies the Yeo–Johnson transform whose λ ∈ [−2, 4] maximizes the normal
 * log-likelihood of the result (golden-section search on the profile likelihood), and standardizes
 * again. The transform is monotone, so the best value stays the best.
 */
export function warpOutputs(values: readonly number[]): Float64Array {
  const y = standardize(Float64Array.from(values));
  const n = y.length;
  let jacobian = 0;
  for (const v of y) jacobian += Math.sign(v) * Math.log1p(Math.abs(v));
  const logLikelihood = (lambda: number) => {
    let mean = 0;
    const t = Float64Array.from(y, (v) => yeoJohnson(v, lambda));
    for (const v of t) mean += v / n;
    let variance = 0;
    for (const v of t) variance += (v - mean) ** 2 / n;
    return -0.5 * n * Math.log(Math.max(variance, 1e-300)) + (lambda - 1) * jacobian;
  };
  const ratio = (Math.sqrt(5) - 1) / 2;
  let low = -2;
  let high = 4;
  let a = high - ratio * (high - low);
  let b = low + ratio * (high - low);
  let fa = logLikelihood(a);
  let fb = logLikelihood(b);
  for (let iteration = 0; iteration < 40; iteration++) {
    if (fa > fb) {
      high = b;
      b = a;
      fb = fa;
      a = high - ratio * (high - low);
      fa = logLikelihood(a);
    } else {
      low = a;
      a = b;
      fa = fb;
      b = low + ratio * (high - low);
      fb = logLikelihood(b);
    }
  }
  const lambda = (low + high) / 2;
  return standardize(Float64Array.from(y, (v) => yeoJohnson(v, lambda)));
}

/**
 * Hill–valley test: whether `point` (predicted or observed value `value`, or the GP mean when absent)
 * lies in the same basin as `anchor` (value anchorValue): the GP mean on the segment between them
 * never rises above both by more than 0.1 standard deviations (a margin against noise-level bumps).
 */
export function sameBasin(
  gp: GaussianProcess,
  anchor: Float64Array,
  anchorValue: number,
  point: Float64Array,
  value?: number,
): boolean {
  const ceiling = Math.max(anchorValue, value ?? gp.mean(point)) + 0.1;
  const between = new Float64Array(anchor.length);
  for (const t of [0.2, 0.4, 0.6, 0.8]) {
    for (let j = 0; j < between.length; j++) between[j] = anchor[j]! + t * (point[j]! - anchor[j]!);
    if (gp.mean(between) > ceiling) return false;
  }
  return true;
}

/**
 * The best observed point (index into points) in another basin than the best point, or null. `order`:
 * the indices best first (default: by y).
 */
export function secondBasin(
  gp: GaussianProcess,
  points: readonly Float64Array[],
  y: Float64Array,
  order: readonly number[] = Array.from(y.keys()).sort((a, b) => y[a]! - y[b]!),
): number | null {
  const incumbent = points[order[0]!]!;
  for (const index of order.slice(1, 40)) {
    if (!sameBasin(gp, incumbent, y[order[0]!]!, points[index]!, y[index]!)) return index;
  }
  return null;
}

/** Finished trials (values in trial order) since the best improved by more than 1e-3 of the value range. */
export function trialsSinceImprovement(values: readonly number[]): number {
  const range = Math.max(...values) - Math.min(...values);
  let best = Infinity;
  let since = 0;
  for (const value of values) {
    if (value < best - 1e-3 * range) since = 0;
    else since++;
    best = Math.min(best, value);
  }
  return since;
}

/** log EI(x) = log σ + log h((best − μ)/σ) for minimization. */
export function logExpectedImprovement(gp: GaussianProcess, point: ArrayLike<number>, best: number): number {
  const { mean, variance } = gp.predict(point);
  const sigma = Math.sqrt(variance);
  return Math.log(sigma) + logExpectedImprovementFactor((best - mean) / sigma);
}

/** log EI and its gradient with respect to the point. */
export function logExpectedImprovementWithGradient(
  gp: GaussianProcess,
  point: ArrayLike<number>,
  best: number,
): { value: number; gradient: Float64Array } {
  const { mean, variance, meanGradient, varianceGradient } = gp.predictWithGradient(point);
  const sigma = Math.sqrt(variance);
  const z = (best - mean) / sigma;
  const dLogH = logExpectedImprovementFactorDerivative(z);
  const gradient = new Float64Array(meanGradient.length);
  for (let j = 0; j < gradient.length; j++) {
    const dLogSigma = varianceGradient[j]! / (2 * variance);
    const dz = -meanGradient[j]! / sigma - z * dLogSigma;
    gradient[j] = dLogSigma + dLogH * dz;
  }
  return { value: Math.log(sigma) + logExpectedImprovementFactor(z), gradient };
}
