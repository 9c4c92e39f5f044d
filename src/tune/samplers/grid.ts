/**
 * Grid search: every combination of the listed values, each run once, in random order (so a study
 * stopped early has covered the grid evenly rather than one corner). Workers pick among grid points
 * no running or finished trial holds, so parallel workers rarely repeat a point; a point whose trial
 * failed is run again. The study stops when the grid is covered.
 */
import {
  containsValue,
  describeDistribution,
  type Distribution,
  type JsonValue,
  type ParamValue,
  type SearchSpace,
} from '../distributions.js';
import { systemAttributeKeys, type FrozenTrial } from '../frozen-trial.js';
import type { Sampler, StudyView } from './sampler.js';
import { randomSeed, trialRandom } from './search-space.js';

export class GridSampler implements Sampler {
  readonly names: readonly string[];
  /** Grid points, each a value per name (in the order of names). */
  readonly points: readonly (readonly ParamValue[])[];
  readonly seed: number;

  /**
   * @param grid values per parameter, e.g. { lr: [1e-3, 1e-2, 1e-1], batchSize: [32, 64] }
   * @example new GridSampler({ lr: [1e-3, 1e-2], optimizer: ['sgd', 'adam'] }) // 4 points
   */
  constructor(grid: Record<string, readonly ParamValue[]>, options: { seed?: number } = {}) {
    this.names = Object.keys(grid).sort();
    if (this.names.length === 0) throw new RangeError('GridSampler: the grid needs at least one parameter');
    let points: ParamValue[][] = [[]];
    for (const name of this.names) {
      const values = grid[name]!;
      if (!Array.isArray(values) || values.length === 0)
        throw new RangeError(`GridSampler: '${name}' needs a non-empty list of values`);
      points = points.flatMap((prefix) => values.map((value) => [...prefix, value]));
    }
    this.points = points;
    this.seed = options.seed ?? randomSeed();
  }

  private taken(study: StudyView, except: number): Set<number> {
    const taken = new Set<number>();
    for (const trial of study.trials) {
      const id = trial.systemAttributes[systemAttributeKeys.gridId];
      if (trial.id !== except && typeof id === 'number' && trial.state !== 'failed') taken.add(id);
    }
    return taken;
  }

  beforeTrial(study: StudyView, trial: FrozenTrial): Record<string, JsonValue> | undefined {
    if (systemAttributeKeys.fixedParams in trial.systemAttributes) return undefined;
    const taken = this.taken(study, trial.id);
    const free = this.points.map((_, i) => i).filter((i) => !taken.has(i));
    // When another worker took the last free point meanwhile, repeat a random one rather than fail.
    const pool = free.length > 0 ? free : this.points.map((_, i) => i);
    return {
      [systemAttributeKeys.gridId]: pool[trialRandom(this.seed, trial.number, 'grid').int(pool.length)]!,
    };
  }

  isExhausted(study: StudyView): boolean {
    return this.taken(study, -1).size >= this.points.length;
  }

  inferRelativeSearchSpace(): SearchSpace {
    return {};
  }

  phase(): string {
    return 'grid';
  }

  sampleRelative(): Record<string, ParamValue> {
    return {};
  }

  sampleIndependent(
    _study: StudyView,
    trial: FrozenTrial,
    name: string,
    distribution: Distribution,
  ): ParamValue {
    const index = this.names.indexOf(name);
    if (index < 0)
      throw new Error(
        `GridSampler: the objective asks for '${name}', which the grid does not list (grid: ${this.names.join(', ')})`,
      );
    const id = trial.systemAttributes[systemAttributeKeys.gridId];
    if (typeof id !== 'number') throw new Error(`GridSampler: trial ${trial.number} has no grid point`);
    const value = this.points[id]![index]!;
    if (!containsValue(distribution, value))
      throw new RangeError(
        `GridSampler: grid value ${JSON.stringify(value)} of '${name}' is not in ${describeDistribution(distribution)}`,
      );
    return value;
  }
}
