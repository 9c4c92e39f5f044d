export * from './charts.js';
export * from './figure.js';
export { textWidth, fontMetrics, type FontMetrics, type FontWeight } from './font-metrics.js';
export { learningRateFinderChart } from './lr-finder-chart.js';
