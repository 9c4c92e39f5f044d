/**
 * The statistics behind the explain verdicts, against values computed with SciPy 1.x
 * (scipy.stats.t.ppf / cdf / interval, scipy.stats.ttest_rel, scipy.special.betainc / gammaln).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  aboveChance,
  accuracyCell,
  compareArms,
  formatPValue,
  logGamma,
  mean,
  pairedTTest,
  regularizedIncompleteBeta,
  sampleStandardDeviation,
  studentTCdf,
  studentTQuantile,
  tInterval,
  verdict,
} from '../app/explain/statistics.js';

function close(actual: number, expected: number, tolerance: number, what: string): void {
  assert.ok(
    Math.abs(actual - expected) <= tolerance * Math.max(1, Math.abs(expected)),
    `${what}: ${actual} against ${expected}`,
  );
}

test('log-gamma and the regularised incomplete beta function match SciPy', () => {
  close(logGamma(0.3), 1.0957979948180756, 1e-13, 'gammaln(0.3)');
  close(logGamma(50.5), 146.51925549072064, 1e-13, 'gammaln(50.5)');
  close(logGamma(5), Math.log(24), 1e-13, 'gammaln(5)');
  close(regularizedIncompleteBeta(0.3, 2.5, 1.5), 0.08894372317066562, 1e-12, 'betainc(2.5, 1.5, 0.3)');
  close(regularizedIncompleteBeta(0.9, 10, 0.5), 0.15164090963470994, 1e-12, 'betainc(10, 0.5, 0.9)');
  assert.equal(regularizedIncompleteBeta(0, 2, 3), 0);
  assert.equal(regularizedIncompleteBeta(1, 2, 3), 1);
});

test('Student t quantiles match scipy.stats.t.ppf for small and large degrees of freedom', () => {
  const ppf975: [number, number][] = [
    [1, 12.706204736174694],
    [2, 4.302652729749462],
    [3, 3.1824463052837078],
    [4, 2.7764451051977934],
    [5, 2.5705818356363146],
    [9, 2.262157162798205],
    [29, 2.045229642132703],
    [100, 1.9839715185235518],
    [1000, 1.9623390808264083],
    [2.5, 3.5746548420036817],
  ];
  for (const [df, expected] of ppf975)
    close(studentTQuantile(0.975, df), expected, 1e-10, `t.ppf(0.975, ${df})`);
  const ppf995: [number, number][] = [
    [1, 63.656741162871526],
    [4, 4.604094871349992],
    [30, 2.7499956535672254],
  ];
  for (const [df, expected] of ppf995)
    close(studentTQuantile(0.995, df), expected, 1e-10, `t.ppf(0.995, ${df})`);
  close(studentTQuantile(0.001, 7), -4.785289628638334, 1e-10, 't.ppf(0.001, 7)');
  assert.equal(studentTQuantile(0.5, 3), 0);
});

test('the Student t CDF matches scipy.stats.t.cdf', () => {
  close(2 * (1 - studentTCdf(2, 5)), 0.10193947882985835, 1e-12, '2·t.sf(2, 5)');
  close(studentTCdf(-1.5, 3), 0.11529193262241147, 1e-12, 't.cdf(-1.5, 3)');
  close(studentTCdf(0.7, 2.5), 0.728297528405226, 1e-12, 't.cdf(0.7, 2.5)');
  close(studentTCdf(25, 1), 0.9872743886520081, 1e-12, 't.cdf(25, 1)');
  // The inverse really inverts.
  for (const df of [1, 3, 8, 40]) close(studentTCdf(studentTQuantile(0.9, df), df), 0.9, 1e-12, `df ${df}`);
});

test('the t interval of a mean matches scipy.stats.t.interval', () => {
  const values = [0.91, 0.93, 0.9, 0.94, 0.92];
  close(mean(values), 0.92, 1e-15, 'mean');
  close(sampleStandardDeviation(values), Math.sqrt(0.00025), 1e-12, 'sd');
  const interval = tInterval(values);
  close(interval.lower, 0.9003675683852246, 1e-12, 'lower');
  close(interval.upper, 0.9396324316147757, 1e-12, 'upper');
  assert.equal(interval.count, 5);
  const two = tInterval([0.5, 0.7]);
  close(two.lower, -0.6706204736174691, 1e-12, 'two seeds, lower');
  close(two.upper, 1.870620473617469, 1e-12, 'two seeds, upper');
  // One seed says nothing about the spread.
  assert.ok(Number.isNaN(tInterval([0.8]).halfWidth));
  assert.equal(accuracyCell(interval), '92.0 ± 2.0');
});

test('the paired t-test matches scipy.stats.ttest_rel', () => {
  const first = [0.91, 0.93, 0.9, 0.94, 0.92];
  const second = [0.89, 0.92, 0.9, 0.91, 0.9];
  const result = pairedTTest(first, second);
  close(result.t, 3.13785816221095, 1e-10, 't');
  close(result.pValue, 0.03491970667453887, 1e-10, 'p');
  assert.equal(result.degreesOfFreedom, 4);

  const x = [0.62, 0.71, 0.66, 0.69, 0.64];
  const y = [0.6, 0.72, 0.61, 0.66, 0.65];
  const other = pairedTTest(x, y);
  close(other.t, 1.3719886811400697, 1e-10, 't');
  close(other.pValue, 0.24198153056802132, 1e-10, 'p');
  close(other.difference.lower, -0.016378635694174082, 1e-10, 'difference, lower');
  close(other.difference.upper, 0.04837863569417407, 1e-10, 'difference, upper');

  // Identical arms: no difference at all; a constant shift: certain.
  assert.equal(pairedTTest(x, x).pValue, 1);
  assert.equal(
    pairedTTest(
      x,
      x.map((v) => v - 0.01),
    ).pValue,
    0,
  );
  assert.throws(() => pairedTTest([1, 2], [1]), /one value per seed/);
  assert.throws(() => pairedTTest([1], [1]), /at least two seeds/);
});

test('a winner is named only when the paired test finds the difference, and never below chance', () => {
  const clear = compareArms(
    { name: 'max pooling', values: [0.91, 0.93, 0.9, 0.94, 0.92] },
    { name: 'average pooling', values: [0.89, 0.92, 0.9, 0.91, 0.9] },
  );
  assert.equal(clear.winner?.name, 'max pooling');
  assert.match(verdict(clear, 10), /^max pooling is more accurate than average pooling/);
  assert.match(verdict(clear, 10), /paired t-test over 5 seeds, t = 3\.14, p = 0\.035/);

  const unclear = compareArms(
    { name: 'a', values: [0.62, 0.71, 0.66, 0.69, 0.64] },
    { name: 'b', values: [0.6, 0.72, 0.61, 0.66, 0.65] },
  );
  assert.equal(unclear.winner, null);
  assert.match(verdict(unclear), /^no difference was found at this budget/);
  assert.match(verdict(unclear), /p = 0\.242/);

  // 9.7% against 9.4% on ten classes: chance level, so no comparison at all.
  const chance = compareArms(
    { name: 'large kernels', values: [0.097, 0.11, 0.09] },
    { name: 'small kernels', values: [0.094, 0.1, 0.088] },
  );
  assert.match(
    verdict(chance, 10),
    /^neither large kernels nor small kernels is clearly above chance \(10\.0%\)/,
  );
  // One arm at chance and the other learning: that is the finding.
  const oneLearns = compareArms(
    { name: 'with batch norm', values: [0.78, 0.7, 0.85, 0.8, 0.75] },
    { name: 'without batch norm', values: [0.098, 0.1, 0.11, 0.09, 0.1] },
  );
  assert.match(
    verdict(oneLearns, 10),
    /^without batch norm is not clearly above chance \(10\.0%\) at this budget while with batch norm is: with batch norm learns/,
  );
  assert.match(verdict(oneLearns, 10), /p < 0\.001\)\)$/);
  assert.equal(aboveChance([0.097, 0.11, 0.09], 10).above, false);
  assert.equal(aboveChance([0.9, 0.92, 0.91], 10).above, true);
  assert.equal(formatPValue(0.0004), '< 0.001');
});
