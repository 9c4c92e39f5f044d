/**
 * A small, fast, seedable pseudo-random generator for everything in tensile that must be
 * reproducible: weight initialisation, shuffling, data splits, augmentation.
 *
 * Algorithm: xoshiro128** 1.1 (Blackman and Vigna, https://prng.di.unimi.it/), 128 bits of state,
 * period 2^128 − 1, passes BigCrush, and needs only 32-bit integer arithmetic (Math.imul), which V8
 * runs fast. The seed is expanded into the state with splitmix64, as the authors recommend, so
 * nearby seeds (0, 1, 2, ...) give unrelated streams.
 *
 * Math.random cannot be seeded, and its state cannot be saved; with Random a training run that saves
 * getState() in its checkpoint resumes with exactly the numbers it would have drawn.
 */

/** The complete state of a Random; plain JSON, so it fits in a checkpoint. */
export interface RandomState {
  algorithm: 'xoshiro128**';
  /** The four 32-bit state words, as unsigned integers. */
  words: [number, number, number, number];
  /** normal() makes values in pairs; the second waits here (null when none waits). */
  spareNormal: number | null;
}

/** A mutable array-like with numeric indices (plain arrays and typed arrays). */
export interface MutableArrayLike<T> {
  readonly length: number;
  [index: number]: T;
}

const TWO_POW_32 = 4294967296;
const TWO_POW_53 = 9007199254740992;
const MASK_64 = (1n << 64n) - 1n;

function splitMix64(state: bigint): { next: bigint; output: bigint } {
  const next = (state + 0x9e3779b97f4a7c15n) & MASK_64;
  let z = next;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK_64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK_64;
  return { next, output: z ^ (z >> 31n) };
}

export class Random {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  private spareNormal: number | null = null;

  /**
   * @param seed any safe integer (negative ones included) or a bigint; it is read as 64 bits.
   * @example
   * const random = new Random(42);
   * random.next(); // the same number on every machine and every run
   */
  constructor(seed: number | bigint = 0) {
    if (typeof seed === 'number' && !Number.isSafeInteger(seed)) {
      throw new RangeError(`Random: seed must be a safe integer or a bigint, got ${seed}`);
    }
    let state = BigInt.asUintN(64, BigInt(seed));
    const words: number[] = [];
    for (let i = 0; i < 2; i++) {
      const step = splitMix64(state);
      state = step.next;
      words.push(Number(step.output & 0xffffffffn), Number(step.output >> 32n));
    }
    this.setWords(words[0]!, words[1]!, words[2]!, words[3]!);
  }

  /** Restores a generator from getState(). */
  static fromState(state: RandomState): Random {
    const random = new Random(0);
    random.setState(state);
    return random;
  }

  /** The next 32 random bits as an unsigned integer in [0, 2^32). */
  nextUint32(): number {
    const s0 = this.s0;
    const s1 = this.s1;
    const s2 = this.s2;
    const s3 = this.s3;
    const product = Math.imul(s1, 5);
    const result = Math.imul((product << 7) | (product >>> 25), 9);
    const t = s1 << 9;
    const n2 = s2 ^ s0;
    const n3 = s3 ^ s1;
    this.s1 = s1 ^ n2;
    this.s0 = s0 ^ n3;
    this.s2 = n2 ^ t;
    this.s3 = (n3 << 11) | (n3 >>> 21);
    return result >>> 0;
  }

  /** A float uniform in [0, 1) with 53 random bits (every double of the form k·2^-53). */
  next(): number {
    const high = this.nextUint32() >>> 5; // 27 bits
    const low = this.nextUint32() >>> 6; // 26 bits
    return (high * 67108864 + low) / TWO_POW_53;
  }

  /** A float uniform in [low, high). */
  uniform(low: number, high: number): number {
    return low + (high - low) * this.next();
  }

  /**
   * An integer uniform in [0, n), without modulo bias (rejection sampling).
   * @param n a positive safe integer.
   */
  int(n: number): number {
    if (!Number.isSafeInteger(n) || n <= 0) {
      throw new RangeError(`Random.int: n must be a positive safe integer, got ${n}`);
    }
    if (n <= TWO_POW_32) {
      // Accept only draws below the largest multiple of n, so every residue is equally likely.
      const limit = TWO_POW_32 - (TWO_POW_32 % n);
      for (;;) {
        const value = this.nextUint32();
        if (value < limit) return value % n;
      }
    }
    const limit = TWO_POW_53 - (TWO_POW_53 % n);
    for (;;) {
      const value = (this.nextUint32() >>> 5) * 67108864 + (this.nextUint32() >>> 6);
      if (value < limit) return value % n;
    }
  }

  /**
   * A normally distributed float (Box–Muller transform; values come in pairs and the second is kept
   * for the next call, as part of the state).
   */
  normal(mean = 0, standardDeviation = 1): number {
    if (this.spareNormal !== null) {
      const spare = this.spareNormal;
      this.spareNormal = null;
      return mean + standardDeviation * spare;
    }
    // 1 - next() lies in (0, 1], so the logarithm is finite.
    const radius = Math.sqrt(-2 * Math.log(1 - this.next()));
    const angle = 2 * Math.PI * this.next();
    this.spareNormal = radius * Math.sin(angle);
    return mean + standardDeviation * radius * Math.cos(angle);
  }

  /** Shuffles `array` in place (Fisher–Yates) and returns it. */
  shuffle<A extends MutableArrayLike<unknown>>(array: A): A {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const swap = array[i]!;
      array[i] = array[j]!;
      array[j] = swap;
    }
    return array;
  }

  /** A random permutation of 0, 1, ..., n − 1. */
  permutation(n: number): Int32Array {
    if (!Number.isInteger(n) || n < 0 || n > 0x7fffffff) {
      throw new RangeError(`Random.permutation: n must be an integer in [0, 2^31), got ${n}`);
    }
    const indices = new Int32Array(n);
    for (let i = 0; i < n; i++) indices[i] = i;
    return this.shuffle(indices);
  }

  /**
   * A new generator seeded from this one's output: independent streams for independent consumers
   * (say, initialisation and data order), so adding draws to one does not shift the other.
   */
  fork(): Random {
    const seed = (BigInt(this.nextUint32()) << 32n) | BigInt(this.nextUint32());
    return new Random(seed);
  }

  /** A copy of the complete state; `setState` of it reproduces every later draw exactly. */
  getState(): RandomState {
    return {
      algorithm: 'xoshiro128**',
      words: [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0],
      spareNormal: this.spareNormal,
    };
  }

  setState(state: RandomState): void {
    if (state === null || typeof state !== 'object' || state.algorithm !== 'xoshiro128**') {
      throw new TypeError(`Random.setState: expected a xoshiro128** state from getState()`);
    }
    const words = state.words;
    if (
      !Array.isArray(words) ||
      words.length !== 4 ||
      !words.every((word) => Number.isInteger(word) && word >= 0 && word < TWO_POW_32)
    ) {
      throw new TypeError(`Random.setState: words must be four unsigned 32-bit integers`);
    }
    if (state.spareNormal !== null && typeof state.spareNormal !== 'number') {
      throw new TypeError(`Random.setState: spareNormal must be a number or null`);
    }
    this.setWords(words[0], words[1], words[2], words[3]);
    this.spareNormal = state.spareNormal;
  }

  private setWords(w0: number, w1: number, w2: number, w3: number): void {
    if ((w0 | w1 | w2 | w3) === 0) {
      // The all-zero state is the generator's only fixed point; no seed maps to it in practice,
      // but a hand-written state could.
      throw new RangeError('Random: the all-zero state is invalid for xoshiro128**');
    }
    this.s0 = w0 | 0;
    this.s1 = w1 | 0;
    this.s2 = w2 | 0;
    this.s3 = w3 | 0;
  }
}
