/** Inverted dropout: zero each element with probability p during training, scale the rest by 1/(1−p). */
import { record } from '../autograd/graph.js';
import { allocate, Tensor } from '../tensor/tensor.js';
import type { Random } from '../tensor/random.js';

export function dropout(x: Tensor, probability: number, training: boolean, random: Random): Tensor {
  if (!(probability >= 0 && probability < 1)) {
    throw new RangeError(`dropout: probability must be in [0, 1), got ${probability}`);
  }
  if (!training || probability === 0) return x;
  const keep = 1 / (1 - probability);
  const mask = allocate(x.dtype, x.size);
  for (let i = 0; i < mask.length; i++) mask[i] = random.next() >= probability ? keep : 0;
  const out = allocate(x.dtype, x.size);
  for (let i = 0; i < out.length; i++) out[i] = x.data[i]! * mask[i]!;
  return record(new Tensor(out, x.shape), 'dropout', [x], (g) => {
    const gradX = allocate(x.dtype, x.size);
    for (let i = 0; i < gradX.length; i++) gradX[i] = g[i]! * mask[i]!;
    return [gradX];
  });
}
