/**
 * The learning-rate finder's sweep drawn: train/ returns the numbers (findLearningRate), and the
 * drawing lives here with the other charts, so the training layer does not depend on SVG rendering.
 */
import type { LearningRateFinderResult } from '../train/lr-finder.js';
import { lineChart } from './charts.js';

/** The sweep as an SVG line chart: smoothed loss against the rate on a log axis, the suggestions marked. */
export function learningRateFinderChart(
  result: LearningRateFinderResult,
  title = 'Learning-rate finder',
): string {
  return lineChart({
    title,
    xLabel: 'learning rate',
    yLabel: 'loss (smoothed)',
    xScale: 'log',
    series: [
      { name: 'loss', x: result.learningRates, y: result.losses },
      {
        name: `valley (suggested) ${result.valley.learningRate.toExponential(1)}`,
        x: [result.valley.learningRate],
        y: [result.valley.loss],
      },
      {
        name: `steepest ${result.steepest.learningRate.toExponential(1)}`,
        x: [result.steepest.learningRate],
        y: [result.steepest.loss],
      },
    ],
  });
}
