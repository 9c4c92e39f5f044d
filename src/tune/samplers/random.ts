/** Random search: every parameter drawn independently and uniformly (log-uniformly on log ranges). */
import type { Distribution, ParamValue, SearchSpace } from '../distributions.js';
import type { FrozenTrial } from '../frozen-trial.js';
import type { Sampler, StudyView } from './sampler.js';
import { randomSeed, sampleUniform, trialRandom } from './search-space.js';

export interface RandomSamplerOptions {
  /** Seed of the sampler's generator (default: from Math.random, so runs differ). */
  seed?: number;
}

export class RandomSampler implements Sampler {
  readonly seed: number;

  constructor(options: RandomSamplerOptions = {}) {
    this.seed = options.seed ?? randomSeed();
  }

  inferRelativeSearchSpace(): SearchSpace {
    return {};
  }

  sampleRelative(): Record<string, ParamValue> {
    return {};
  }

  phase(): string {
    return 'random';
  }

  sampleIndependent(
    _study: StudyView,
    trial: FrozenTrial,
    name: string,
    distribution: Distribution,
  ): ParamValue {
    return sampleUniform(distribution, trialRandom(this.seed, trial.number, name));
  }
}
