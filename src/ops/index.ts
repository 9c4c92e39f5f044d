/** The public ops: differentiable functions of tensors. */
export * from './elementwise.js';
export * from './shape.js';
export * from './reduce.js';
export * from './linear.js';
export * from './convolution.js';
export * from './pooling.js';
export * from './normalization.js';
export * from './softmax.js';
export * from './loss.js';
export * from './dropout.js';
