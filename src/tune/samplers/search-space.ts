/** Search spaces inferred from a study's history, and uniform sampling of one distribution. */
import {
  fromUnit,
  sameDistribution,
  toExternal,
  type Distribution,
  type ParamValue,
  type SearchSpace,
} from '../distributions.js';
import type { FrozenTrial } from '../frozen-trial.js';
import { Random } from '../../tensor/random.js';
import { fnv1a } from '../hash.js';

function finished(trials: readonly FrozenTrial[], includePruned: boolean): FrozenTrial[] {
  return trials.filter((t) => t.state === 'complete' || (includePruned && t.state === 'pruned'));
}

function sorted(space: Record<string, Distribution>): SearchSpace {
  const result: SearchSpace = {};
  for (const name of Object.keys(space).sort()) result[name] = space[name]!;
  return result;
}

/**
 * The parameters every complete (and, optionally, pruned) trial has, each with one and the same
 * distribution everywhere: the space that joint (relative) samplers model. Names are sorted so the
 * dimension order does not depend on the order of suggest calls. Empty before the first such trial.
 */
export function intersectionSearchSpace(
  trials: readonly FrozenTrial[],
  options: { includePruned?: boolean } = {},
): SearchSpace {
  let space: Record<string, Distribution> | null = null;
  for (const trial of finished(trials, options.includePruned ?? true)) {
    if (space === null) {
      space = { ...trial.distributions };
      continue;
    }
    for (const name of Object.keys(space)) {
      const other = trial.distributions[name];
      if (other === undefined || !sameDistribution(space[name]!, other)) delete space[name];
    }
  }
  return sorted(space ?? {});
}

/**
 * Every parameter any complete or pruned trial has, with the distribution of the latest trial that
 * used it (for samplers that treat parameters one at a time).
 */
export function unionSearchSpace(trials: readonly FrozenTrial[]): SearchSpace {
  const space: Record<string, Distribution> = {};
  for (const trial of finished(trials, true)) Object.assign(space, trial.distributions);
  return sorted(space);
}

/**
 * Finished trials (complete, pruned or failed) other than `trial`: what startupTrials counts. Every
 * finished trial used up a trial of the budget, whether or not it reached a final value.
 */
export function finishedTrialCount(trials: readonly FrozenTrial[], trial: FrozenTrial): number {
  let count = 0;
  for (const other of trials)
    if (
      other.id !== trial.id &&
      (other.state === 'complete' || other.state === 'pruned' || other.state === 'failed')
    )
      count++;
  return count;
}

/** A value drawn uniformly (in log space for log ranges; every grid point equally likely). */
export function sampleUniform(distribution: Distribution, random: Random): ParamValue {
  return toExternal(distribution, fromUnit(distribution, random.next()));
}

/** A seed for samplers created without one: differs between processes and runs. */
export function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 52);
}

/**
 * The generator a sampler uses for one trial: a function of the sampler's seed, the trial number and
 * a salt (the parameter name, say). Seeded studies are reproducible draw for draw, and workers sharing
 * a study with the same seed still draw differently, because they never run the same trial number.
 */
export function trialRandom(seed: number, trialNumber: number, salt: string): Random {
  // Each part goes through the splitmix64 finalizer before the next is folded in, so keys that differ
  // in a few bits (trial 6 and trial 7) give unrelated generators.
  const mask = (1n << 64n) - 1n;
  const finalize = (x: bigint) => {
    x = ((x ^ (x >> 30n)) * 0xbf58476d1ce4e5b9n) & mask;
    x = ((x ^ (x >> 27n)) * 0x94d049bb133111ebn) & mask;
    return x ^ (x >> 31n);
  };
  let key = finalize(BigInt.asUintN(64, BigInt(Math.floor(seed))));
  key = finalize(key ^ BigInt(trialNumber));
  key = finalize(key ^ BigInt(fnv1a(salt)));
  return new Random(key);
}
