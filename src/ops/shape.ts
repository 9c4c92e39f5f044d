/** Ops that change how elements are arranged: reshape, flatten, transpose, concatenate. */
import { record } from '../autograd/graph.js';
import { getBackend } from '../backend/index.js';
import { formatShape, normalizeAxis, type Shape, ShapeError, sizeOf } from '../tensor/shape.js';
import { allocate, allocateUninitialized, Tensor } from '../tensor/tensor.js';

/**
 * The same elements under a new shape; one dimension may be -1 (inferred). Shares the data array
 * (tensors are contiguous, so a reshape never copies).
 */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const inferred = shape.filter((d) => d === -1).length;
  if (inferred > 1) throw new ShapeError(`reshape: only one dimension may be -1, got ${formatShape(shape)}`);
  const known = sizeOf(shape.filter((d) => d !== -1));
  const resolved = shape.map((d) => (d === -1 ? (known === 0 ? 0 : x.size / known) : d));
  if (sizeOf(resolved) !== x.size || resolved.some((d) => !Number.isInteger(d))) {
    throw new ShapeError(
      `reshape: cannot view a tensor of shape ${formatShape(x.shape)} (${x.size} elements) as ${formatShape(shape)}`,
    );
  }
  return record(new Tensor(x.data, resolved), 'reshape', [x], (g) => [g]);
}

/** [N, d1, d2, ...] → [N, d1·d2·...] (PyTorch's flatten(start_dim=1)). */
export function flatten(x: Tensor, startAxis = 1): Tensor {
  const start = normalizeAxis(startAxis, Math.max(x.rank, 1), 'flatten');
  return reshape(x, [...x.shape.slice(0, start), sizeOf(x.shape.slice(start))]);
}

/** Permutes axes: out.shape[i] = x.shape[perm[i]]; copies. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.length !== x.rank || [...perm].sort((p, q) => p - q).some((axis, i) => axis !== i)) {
    throw new ShapeError(`permute: [${perm.join(', ')}] is not a permutation of the ${x.rank} axes`);
  }
  const outShape = perm.map((axis) => x.shape[axis]!);
  const out = allocateUninitialized(x.dtype, x.size);
  getBackend().transpose(x.data, x.shape, perm, out);
  const inverse = new Array<number>(perm.length);
  perm.forEach((axis, i) => (inverse[axis] = i));
  return record(new Tensor(out, outShape), 'permute', [x], (g) => {
    const gradX = allocateUninitialized(x.dtype, x.size);
    getBackend().transpose(g, outShape, inverse, gradX);
    return [gradX];
  });
}

/** Swaps the last two axes of a matrix (or batch of matrices). */
export function transpose(x: Tensor): Tensor {
  if (x.rank < 2) throw new ShapeError(`transpose: needs at least 2 axes, got shape ${formatShape(x.shape)}`);
  const perm = x.shape.map((_, i) => i);
  perm[x.rank - 1] = x.rank - 2;
  perm[x.rank - 2] = x.rank - 1;
  return permute(x, perm);
}

/** Joins tensors along an axis; all other dimensions must agree. */
export function concat(tensors: readonly Tensor[], axis = 0): Tensor {
  if (tensors.length === 0) throw new ShapeError('concat: needs at least one tensor');
  const first = tensors[0]!;
  const a = normalizeAxis(axis, first.rank, 'concat');
  for (const [i, t] of tensors.entries()) {
    if (t.rank !== first.rank || t.shape.some((d, j) => j !== a && d !== first.shape[j])) {
      throw new ShapeError(
        `concat: tensor ${i} has shape ${formatShape(t.shape)}, incompatible with ${formatShape(first.shape)} along axis ${a}`,
      );
    }
  }
  const outer = sizeOf(first.shape.slice(0, a));
  const inner = sizeOf(first.shape.slice(a + 1));
  const total = tensors.reduce((sum, t) => sum + t.shape[a]!, 0);
  const outShape = [...first.shape];
  outShape[a] = total;
  const out = allocate(first.dtype, sizeOf(outShape));
  let offset = 0;
  for (const t of tensors) {
    const block = t.shape[a]! * inner;
    for (let o = 0; o < outer; o++)
      out.set(t.data.subarray(o * block, (o + 1) * block), o * total * inner + offset);
    offset += block;
  }
  return record(new Tensor(out, outShape), 'concat', tensors, (g, needs) => {
    let start = 0;
    return tensors.map((t, i) => {
      const block = t.shape[a]! * inner;
      const begin = start;
      start += block;
      if (!needs[i]) return null;
      const gradT = allocate(t.dtype, t.size);
      for (let o = 0; o < outer; o++)
        gradT.set(g.subarray(o * total * inner + begin, o * total * inner + begin + block), o * block);
      return gradT;
    });
  });
}
