/** Layers, models and initialisation. */
export * from './module.js';
export * from './init.js';
export * from './summary.js';
export * from './layers/activation.js';
export * from './layers/dense.js';
export * from './layers/conv.js';
export * from './layers/pooling.js';
export * from './layers/batchnorm.js';
export * from './layers/dropout.js';
export * from './layers/containers.js';
export * from './layers/fusion.js';
export * from './inference.js';
export * from './chain.js';
export * from './layers/layernorm.js';
export * from './config.js';
