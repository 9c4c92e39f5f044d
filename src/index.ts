/**
 * tensile: the public surface. Everything a user (and tensile's own CLI) needs is exported here.
 */

export { getBackend, setBackend, withBackend, referenceBackend } from './backend/index.js';
export { availableBackends, backendByName, type BackendName } from './backend/registry.js';
export { getNativeThreads, setNativeThreads, setNativeWinograd } from './backend/native/index.js';
export { getWasmThreads, setWasmThreads } from './backend/wasm/threads.js';
export type {
  Backend,
  Data,
  DType,
  Conv2dGeometry,
  Pool2dGeometry,
  BatchNormGeometry,
  ActivationKind,
} from './backend/types.js';
export { Tensor, tensor, zeros, ones, full, type NestedArray } from './tensor/tensor.js';
export { ShapeError, formatShape, shapesEqual, sizeOf, type Shape } from './tensor/shape.js';
export { noGrad, isGradientEnabled, backward } from './autograd/graph.js';
export { memoryCounters } from './tensor/memory.js';
export * as ops from './ops/index.js';
export * from './ops/index.js';
export * from './nn/index.js';
export * from './optim/index.js';
export * from './io/safetensors.js';
export * from './data/index.js';
export * from './train/index.js';
export * from './train/metrics.js';
export * from './io/weights.js';
export * from './io/model-file.js';
export * from './io/torch-checkpoint.js';
export { PickleError } from './io/pickle.js';
export { assertWritableTarget } from './io/atomic-write.js';
export { OptionalDependencyError } from './util/optional-dependency.js';
export * from './models/seed-cnn.js';
export * from './plot/index.js';
export * from './models/resnet.js';
export * from './transfer/index.js';
export * from './train/checkpoint.js';
export * from './track/index.js';
export * from './tune/index.js';
export * from './io/onnx/index.js';
