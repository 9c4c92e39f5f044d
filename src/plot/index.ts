export * from './charts.js';
export * from './figure.js';
