/**
 * Sobol quasi-random search: points that fill the unit cube far more evenly than independent random
 * draws (a (t, s)-sequence in base 2), mapped onto the search space with `fromUnit`.
 *
 * The engine computes point n directly from the bits of n's Gray code (x_n = XOR of the direction
 * numbers V_k for the set bits of n ^ (n >> 1)), the order of Antonov and Saleev that scipy also uses,
 * so any worker can compute any point: the sampler gives trial number n the n-th point, and parallel
 * workers never draw the same one.
 *
 * Scrambling (default on) applies a random lower-triangular binary matrix to each dimension's
 * direction numbers and XORs a random digital shift (Matoušek's linear matrix scramble): the net
 * structure stays, the sequence stops starting at the origin, and different seeds give independent
 * randomizations.
 */
import type { Distribution, ParamValue, SearchSpace } from '../distributions.js';
import { fromUnit, isSingleValue, toExternal } from '../distributions.js';
import type { FrozenTrial } from '../frozen-trial.js';
import { Random } from '../../tensor/random.js';
import type { Sampler, StudyView } from './sampler.js';
import { intersectionSearchSpace, randomSeed, sampleUniform, trialRandom } from './search-space.js';
import { sobolDirections } from './sobol-directions.js';

const BITS = 32;

function parity(x: number): number {
  x ^= x >>> 16;
  x ^= x >>> 8;
  x ^= x >>> 4;
  x ^= x >>> 2;
  x ^= x >>> 1;
  return x & 1;
}

/** The 32 direction numbers V_1..V_32 of one dimension (as unsigned 32-bit integers, V_k = m_k / 2^k). */
function directionNumbers(dimension: number): Uint32Array {
  const [polynomial, initial] = sobolDirections[dimension]!;
  const degree = initial.length;
  const v = new Uint32Array(BITS);
  if (degree === 0) {
    for (let k = 0; k < BITS; k++) v[k] = 2 ** (BITS - 1 - k);
    return v;
  }
  for (let k = 0; k < Math.min(degree, BITS); k++) v[k] = (initial[k]! * 2 ** (BITS - 1 - k)) >>> 0;
  for (let k = degree; k < BITS; k++) {
    let value = v[k - degree]! ^ (v[k - degree]! >>> degree);
    for (let j = 1; j < degree; j++) {
      // a_j, the coefficient of x^{degree-j}, is bit (degree - j) of the polynomial.
      if ((polynomial >>> (degree - j)) & 1) value ^= v[k - j]!;
    }
    v[k] = value >>> 0;
  }
  return v;
}

export class SobolEngine {
  readonly dimensions: number;
  private readonly directions: Uint32Array[];
  private readonly shifts: Uint32Array;

  /** The largest dimension count the embedded direction numbers support. */
  static readonly maxDimensions = sobolDirections.length;

  /**
   * @param dimensions points have this many coordinates (at most SobolEngine.maxDimensions)
   * @param scramble a Random to scramble with, or null for the plain sequence (which starts at 0)
   */
  constructor(dimensions: number, scramble: Random | null) {
    if (!Number.isSafeInteger(dimensions) || dimensions < 1 || dimensions > SobolEngine.maxDimensions) {
      throw new RangeError(
        `SobolEngine: dimensions must be an integer in [1, ${SobolEngine.maxDimensions}], got ${dimensions}`,
      );
    }
    this.dimensions = dimensions;
    this.directions = [];
    this.shifts = new Uint32Array(dimensions);
    for (let d = 0; d < dimensions; d++) {
      let v = directionNumbers(d);
      if (scramble !== null) {
        // Row i of the lower-triangular matrix: its diagonal bit plus random bits of higher significance.
        const rows = new Uint32Array(BITS);
        for (let i = 0; i < BITS; i++) {
          const diagonal = 2 ** (BITS - 1 - i);
          const above = i === 0 ? 0 : (~(2 * diagonal - 1) >>> 0) & 0xffffffff;
          rows[i] = ((scramble.nextUint32() & above) | diagonal) >>> 0;
        }
        const scrambled = new Uint32Array(BITS);
        for (let k = 0; k < BITS; k++) {
          let out = 0;
          for (let i = 0; i < BITS; i++) if (parity(rows[i]! & v[k]!)) out |= 2 ** (BITS - 1 - i);
          scrambled[k] = out >>> 0;
        }
        v = scrambled;
        this.shifts[d] = scramble.nextUint32();
      }
      this.directions.push(v);
    }
  }

  /** Point n (0, 1, 2, ...) of the sequence, coordinates in [0, 1). */
  point(index: number): Float64Array {
    if (!Number.isSafeInteger(index) || index < 0 || index >= 2 ** BITS)
      throw new RangeError(`SobolEngine: index must be an integer in [0, 2^32), got ${index}`);
    const gray = (index ^ Math.floor(index / 2)) >>> 0;
    const result = new Float64Array(this.dimensions);
    for (let d = 0; d < this.dimensions; d++) {
      const v = this.directions[d]!;
      let x = this.shifts[d]!;
      for (let k = 0; k < BITS; k++) if ((gray >>> k) & 1) x ^= v[k]!;
      result[d] = (x >>> 0) / 2 ** BITS;
    }
    return result;
  }
}

export interface SobolSamplerOptions {
  seed?: number;
  /** Scramble the sequence (default true). */
  scramble?: boolean;
}

export class SobolSampler implements Sampler {
  private readonly scrambleSeed: number;
  private readonly scramble: boolean;
  private engine: SobolEngine | null = null;

  constructor(options: SobolSamplerOptions = {}) {
    this.scrambleSeed = options.seed ?? randomSeed();
    this.scramble = options.scramble ?? true;
  }

  /** The parameters all finished trials share: known after the first trial, which is random. */
  inferRelativeSearchSpace(study: StudyView): SearchSpace {
    const space = intersectionSearchSpace(study.trials);
    for (const name of Object.keys(space)) if (isSingleValue(space[name]!)) delete space[name];
    return space;
  }

  sampleRelative(_study: StudyView, trial: FrozenTrial, space: SearchSpace): Record<string, ParamValue> {
    const names = Object.keys(space).slice(0, SobolEngine.maxDimensions);
    if (names.length === 0) return {};
    if (this.engine === null || this.engine.dimensions < names.length) {
      this.engine = new SobolEngine(
        Math.max(names.length, this.engine?.dimensions ?? 0),
        this.scramble ? new Random(this.scrambleSeed) : null,
      );
    }
    // The unscrambled sequence starts at the origin, a corner; start it one point later.
    const point = this.engine.point(trial.number + (this.scramble ? 0 : 1));
    const result: Record<string, ParamValue> = {};
    names.forEach((name, d) => (result[name] = toExternal(space[name]!, fromUnit(space[name]!, point[d]!))));
    return result;
  }

  sampleIndependent(
    _study: StudyView,
    trial: FrozenTrial,
    name: string,
    distribution: Distribution,
  ): ParamValue {
    return sampleUniform(distribution, trialRandom(this.scrambleSeed, trial.number, name));
  }

  phase(_study: StudyView, _trial: FrozenTrial, space: SearchSpace): string {
    return Object.keys(space).length === 0 ? 'random' : 'sobol';
  }
}
