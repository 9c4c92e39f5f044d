export * from './events.js';
export * from './callbacks.js';
export * from './progress.js';
export * from './fit.js';
export * from './non-finite.js';
export * from './clipping.js';
export * from './plateau.js';
export * from './lr-finder.js';
