export * from './events.js';
export * from './callbacks.js';
export * from './progress.js';
export * from './fit.js';
export * from './non-finite.js';
