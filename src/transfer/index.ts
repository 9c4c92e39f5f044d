/** Transfer learning: block groups, freezing, head surgery, discriminative rates and the fine-tuning strategies. */
export * from './groups.js';
export * from './freeze.js';
export * from './head.js';
export * from './rates.js';
export * from './strategies.js';
export * from './pretrained.js';
