/**
 * The statistics that explain topics and experiments rest their verdicts on: the mean of a measure
 * over seeds with its Student t interval, the paired t-test between two arms trained on the same
 * seeds, and the check that a model is past chance before anything is concluded from it.
 *
 * Everything is computed (the t distribution through the regularised incomplete beta function), not
 * read from a table, so any number of seeds works. Values are plain numbers; accuracies are passed as
 * fractions (0.91) and formatted as percentages by the text helpers.
 */

/** Arithmetic mean; NaN for no values. */
export function mean(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}

/** Sample standard deviation (divided by n − 1); 0 for fewer than two values. */
export function sampleStandardDeviation(values: readonly number[]): number {
  if (values.length < 2) return 0;
  const centre = mean(values);
  return Math.sqrt(values.reduce((sum, value) => sum + (value - centre) ** 2, 0) / (values.length - 1));
}

/** ln Γ(x) for x > 0 (Lanczos approximation, g = 7; about 15 significant digits). */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const coefficients = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  const shifted = x - 1;
  let sum = coefficients[0]!;
  for (let i = 1; i < coefficients.length; i++) sum += coefficients[i]! / (shifted + i);
  const t = shifted + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (shifted + 0.5) * Math.log(t) - t + Math.log(sum);
}

/**
 * The continued fraction of the incomplete beta function (modified Lentz evaluation); converges fast
 * for x < (a + 1)/(a + b + 2), which the caller arranges by symmetry.
 */
function betaContinuedFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let result = d;
  for (let m = 1; m <= 1000; m++) {
    // Even step, then odd step of the fraction's terms.
    const even = (m * (b - m) * x) / ((a + 2 * m - 1) * (a + 2 * m));
    d = 1 + even * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + even / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    result *= d * c;
    const odd = -((a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1));
    d = 1 + odd * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + odd / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const step = d * c;
    result *= step;
    if (Math.abs(step - 1) < 1e-16) break;
  }
  return result;
}

/** The regularised incomplete beta function I_x(a, b), for 0 ≤ x ≤ 1 and a, b > 0. */
export function regularizedIncompleteBeta(x: number, a: number, b: number): number {
  if (!(x >= 0 && x <= 1) || !(a > 0) || !(b > 0)) return Number.NaN;
  if (x === 0 || x === 1) return x;
  const logFront = logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x);
  if (x < (a + 1) / (a + b + 2)) return (Math.exp(logFront) * betaContinuedFraction(x, a, b)) / a;
  return 1 - (Math.exp(logFront) * betaContinuedFraction(1 - x, b, a)) / b;
}

/** P(T ≤ t) for Student's t with `degreesOfFreedom` (> 0, not necessarily whole). */
export function studentTCdf(t: number, degreesOfFreedom: number): number {
  if (Number.isNaN(t) || !(degreesOfFreedom > 0)) return Number.NaN;
  if (t === Infinity) return 1;
  if (t === -Infinity) return 0;
  // P(|T| > |t|) = I_{ν/(ν+t²)}(ν/2, 1/2).
  const tail = regularizedIncompleteBeta(
    degreesOfFreedom / (degreesOfFreedom + t * t),
    degreesOfFreedom / 2,
    0.5,
  );
  return t >= 0 ? 1 - tail / 2 : tail / 2;
}

/** The t with P(T ≤ t) = p (0 < p < 1): the inverse of studentTCdf, found by bisection. */
export function studentTQuantile(p: number, degreesOfFreedom: number): number {
  if (!(p > 0 && p < 1) || !(degreesOfFreedom > 0)) return Number.NaN;
  if (p === 0.5) return 0;
  if (p < 0.5) return -studentTQuantile(1 - p, degreesOfFreedom);
  let low = 0;
  let high = 1;
  while (studentTCdf(high, degreesOfFreedom) < p) {
    low = high;
    high *= 2;
  }
  // The CDF is monotone, so bisection converges to double precision in a bounded number of steps.
  for (let i = 0; i < 200 && high - low > 1e-15 * high; i++) {
    const middle = (low + high) / 2;
    if (studentTCdf(middle, degreesOfFreedom) < p) low = middle;
    else high = middle;
  }
  return (low + high) / 2;
}

/** A mean over seeds with its two-sided Student t interval. */
export interface Interval {
  mean: number;
  lower: number;
  upper: number;
  /** upper − mean (the interval is symmetric). */
  halfWidth: number;
  standardDeviation: number;
  /** How many values (seeds) it rests on. */
  count: number;
  /** e.g. 0.95. */
  confidence: number;
}

/**
 * The mean of `values` and its Student t interval: mean ± t_{(1+c)/2, n−1} · s/√n. With one value the
 * interval is unbounded (NaN bounds): one seed says nothing about the spread.
 */
export function tInterval(values: readonly number[], confidence = 0.95): Interval {
  const count = values.length;
  const centre = mean(values);
  const standardDeviation = sampleStandardDeviation(values);
  const halfWidth =
    count < 2
      ? Number.NaN
      : (studentTQuantile((1 + confidence) / 2, count - 1) * standardDeviation) / Math.sqrt(count);
  return {
    mean: centre,
    lower: centre - halfWidth,
    upper: centre + halfWidth,
    halfWidth,
    standardDeviation,
    count,
    confidence,
  };
}

/** A paired t-test of `first − second` over the same seeds. */
export interface PairedTest {
  /** Mean of first − second, and its t interval. */
  difference: Interval;
  t: number;
  degreesOfFreedom: number;
  /** Two-sided p-value. */
  pValue: number;
}

/**
 * Paired t-test: first[i] and second[i] come from the same seed (same data order, same
 * initialisation stream), so the seed-to-seed noise they share cancels in their difference.
 */
export function pairedTTest(
  first: readonly number[],
  second: readonly number[],
  confidence = 0.95,
): PairedTest {
  if (first.length !== second.length) throw new Error('pairedTTest: both arms need one value per seed');
  if (first.length < 2) throw new Error('pairedTTest: needs at least two seeds');
  const differences = first.map((value, i) => value - second[i]!);
  const difference = tInterval(differences, confidence);
  const degreesOfFreedom = differences.length - 1;
  const standardError = difference.standardDeviation / Math.sqrt(differences.length);
  let t: number;
  let pValue: number;
  if (standardError === 0) {
    // Every seed gave the same difference: none at all is p = 1, a constant non-zero one p = 0.
    t = difference.mean === 0 ? 0 : Math.sign(difference.mean) * Infinity;
    pValue = difference.mean === 0 ? 1 : 0;
  } else {
    t = difference.mean / standardError;
    pValue = 2 * (1 - studentTCdf(Math.abs(t), degreesOfFreedom));
  }
  return { difference, t, degreesOfFreedom, pValue };
}

/** Whether accuracies are past chance (1/classes): the lower end of their interval above it. */
export interface ChanceCheck {
  interval: Interval;
  chance: number;
  above: boolean;
}

export function aboveChance(accuracies: readonly number[], classes: number, confidence = 0.95): ChanceCheck {
  const interval = tInterval(accuracies, confidence);
  const chance = 1 / classes;
  return { interval, chance, above: Number.isFinite(interval.lower) && interval.lower > chance };
}

/** One arm of a comparison: its name and its measure per seed (the same seeds for every arm). */
export interface Arm {
  name: string;
  values: readonly number[];
}

export interface Comparison {
  first: Arm;
  second: Arm;
  test: PairedTest;
  /** The arm whose mean is higher, when the paired test finds the difference at level alpha; else null. */
  winner: Arm | null;
  alpha: number;
}

/** Compares two arms on the same seeds with a paired t-test at level alpha (default 0.05). */
export function compareArms(first: Arm, second: Arm, alpha = 0.05): Comparison {
  const test = pairedTTest(first.values, second.values, 1 - alpha);
  const winner = test.pValue < alpha ? (test.difference.mean > 0 ? first : second) : null;
  return { first, second, test, winner, alpha };
}

/** A number in percent with one decimal ("91.2%"). */
function percent(value: number): string {
  return Number.isFinite(value) ? `${(value * 100).toFixed(1)}%` : 'n/a';
}

/** How a difference is written: its scale and unit (accuracy differences: ×100, "points"). */
export interface DifferenceUnit {
  scale: number;
  name: string;
}

export const percentagePoints: DifferenceUnit = { scale: 100, name: 'points' };

/** A difference with its sign in a unit ("+1.2"). */
function signed(value: number, unit: DifferenceUnit): string {
  const scaled = value * unit.scale;
  return `${scaled >= 0 ? '+' : '−'}${Math.abs(scaled).toFixed(1)}`;
}

/** A p-value as text: three decimals, or "< 0.001". */
export function formatPValue(p: number): string {
  if (!Number.isFinite(p)) return 'n/a';
  return p < 0.001 ? '< 0.001' : p.toFixed(3);
}

/** "p = 0.035" or "p < 0.001". */
function pClause(p: number): string {
  const text = formatPValue(p);
  return text.startsWith('<') ? `p ${text}` : `p = ${text}`;
}

/** "91.2% (95% CI 90.1–92.3%)": an accuracy interval in percent. */
export function formatAccuracy(interval: Interval): string {
  if (!Number.isFinite(interval.halfWidth)) return `${percent(interval.mean)} (one seed: no interval)`;
  return `${percent(interval.mean)} (${Math.round(interval.confidence * 100)}% CI ${(interval.lower * 100).toFixed(1)}–${percent(interval.upper)})`;
}

/** "91.2 ± 1.1": a compact table cell in percent (± the half-width of the t interval). */
export function accuracyCell(interval: Interval): string {
  if (!Number.isFinite(interval.halfWidth)) return percent(interval.mean);
  return `${(interval.mean * 100).toFixed(1)} ± ${(interval.halfWidth * 100).toFixed(1)}`;
}

/**
 * The difference of a comparison as text: "+1.2 points (95% CI +0.3 to +2.1; paired t-test over 5
 * seeds, t = 3.14, p = 0.035)".
 */
export function formatDifference(comparison: Comparison, unit: DifferenceUnit = percentagePoints): string {
  const { difference, t, degreesOfFreedom, pValue } = comparison.test;
  return `${signed(difference.mean, unit)} ${unit.name} (${Math.round(difference.confidence * 100)}% CI ${signed(difference.lower, unit)} to ${signed(difference.upper, unit)}; paired t-test over ${degreesOfFreedom + 1} seeds, t = ${Number.isFinite(t) ? t.toFixed(2) : String(t)}, ${pClause(pValue)})`;
}

/**
 * A verdict sentence for two arms of accuracies: the winner when the paired t-test finds the
 * difference, otherwise that no difference was found at this budget. `chanceClasses` adds the check
 * that the arms are past chance first: when neither is, nothing is compared; when one is not, that is
 * the finding (one arm learns, the other does not), still with the paired test.
 */
export function verdict(comparison: Comparison, chanceClasses?: number): string {
  const { first, second } = comparison;
  const intervals = `${first.name} ${formatAccuracy(tInterval(first.values))}, ${second.name} ${formatAccuracy(tInterval(second.values))}`;
  const tested = `${first.name} − ${second.name} = ${formatDifference(comparison)}`;
  if (chanceClasses !== undefined) {
    const chance = percent(1 / chanceClasses);
    const below = [first, second].filter((arm) => !aboveChance(arm.values, chanceClasses).above);
    if (below.length === 2)
      return `neither ${first.name} nor ${second.name} is clearly above chance (${chance}) at this budget, so no comparison is drawn (${intervals})`;
    if (below.length === 1) {
      const learning = below[0] === first ? second : first;
      return `${below[0]!.name} is not clearly above chance (${chance}) at this budget while ${learning.name} is: ${comparison.winner === learning ? `${learning.name} learns and ${below[0]!.name} does not` : 'yet the paired test does not separate them'} (${intervals}; ${tested})`;
    }
  }
  if (comparison.winner === null) return `no difference was found at this budget (${intervals}; ${tested})`;
  const loser = comparison.winner === first ? second : first;
  return `${comparison.winner.name} is more accurate than ${loser.name} (${intervals}; ${tested})`;
}

/** The sentence that every quick result carries instead of conclusions. */
export const quickNotice =
  'QUICK RUN: a tiny budget (few seeds, little data, one or two epochs) that shows the pipeline works end to end. Its numbers are not an answer and no conclusion is drawn from them; run without --quick for the measured result.';

/**
 * Whether two intervals do not overlap: a conservative test of a difference between arms that are not
 * paired (e.g. samplers whose seeds mean different things), used where a paired test does not apply.
 */
export function intervalsSeparate(first: Interval, second: Interval): boolean {
  return first.lower > second.upper || second.lower > first.upper;
}
