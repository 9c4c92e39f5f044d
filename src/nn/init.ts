/**
 * Weight initialisation, apart from layer structure (a layer calls its initializer once; loading
 * pretrained weights takes the same slots). Defaults match PyTorch's reset_parameters() so that a
 * tensile model starts from the same distribution as the PyTorch one.
 */
import type { DType } from '../backend/types.js';
import { Random } from '../tensor/random.js';
import { sizeOf, type Shape } from '../tensor/shape.js';
import { allocate, Tensor } from '../tensor/tensor.js';

let globalRandom = new Random(0);

/** Seeds the generator used by initialisation and dropout when none is passed (torch.manual_seed). */
export function manualSeed(seed: number): void {
  globalRandom = new Random(seed);
}

/** The process-wide generator (seeded by manualSeed). */
export function defaultRandom(): Random {
  return globalRandom;
}

/** Samples uniform in [−bound, bound). */
export function uniform(
  shape: Shape,
  bound: number,
  random = globalRandom,
  dtype: DType = 'float32',
): Tensor {
  const data = allocate(dtype, sizeOf(shape));
  for (let i = 0; i < data.length; i++) data[i] = random.uniform(-bound, bound);
  return new Tensor(data, shape);
}

/** Samples normal(mean, std). */
export function normal(
  shape: Shape,
  std = 1,
  mean = 0,
  random = globalRandom,
  dtype: DType = 'float32',
): Tensor {
  const data = allocate(dtype, sizeOf(shape));
  for (let i = 0; i < data.length; i++) data[i] = random.normal(mean, std);
  return new Tensor(data, shape);
}

/** Standard normal samples (torch.randn). */
export function randn(shape: Shape, random = globalRandom, dtype: DType = 'float32'): Tensor {
  return normal(shape, 1, 0, random, dtype);
}

/**
 * PyTorch's default for Linear and Conv2d weights: kaiming_uniform with a = √5, which works out
 * to uniform(±1/√fanIn). fanIn = inputs per output (in, or in·kh·kw).
 */
export function defaultWeight(shape: Shape, fanIn: number, random = globalRandom): Tensor {
  return uniform(shape, 1 / Math.sqrt(fanIn), random);
}

/** He (Kaiming) normal initialisation for ReLU networks: normal(0, √(2/fanIn)). */
export function kaimingNormal(shape: Shape, fanIn: number, random = globalRandom): Tensor {
  return normal(shape, Math.sqrt(2 / fanIn), 0, random);
}

/** Glorot (Xavier) uniform: uniform(±√(6/(fanIn+fanOut))), Keras's default for Dense. */
export function glorotUniform(shape: Shape, fanIn: number, fanOut: number, random = globalRandom): Tensor {
  return uniform(shape, Math.sqrt(6 / (fanIn + fanOut)), random);
}
