/** Shape arithmetic shared by tensors and ops. Shapes are row-major, outermost axis first. */

export type Shape = readonly number[];

/** Number of elements of a shape (1 for a scalar []). */
export function sizeOf(shape: Shape): number {
  let size = 1;
  for (const dimension of shape) size *= dimension;
  return size;
}

/** "[2, 3, 4]" for error messages. */
export function formatShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

/** Throws unless every dimension is a non-negative integer. */
export function checkShape(shape: Shape, what: string): void {
  for (const dimension of shape) {
    if (!Number.isInteger(dimension) || dimension < 0) {
      throw new ShapeError(`${what}: shape ${formatShape(shape)} has an invalid dimension ${dimension}`);
    }
  }
}

/** An error about tensor shapes; the message names the op or layer and expected vs actual shapes. */
export class ShapeError extends Error {
  override name = 'ShapeError';
}

/** NumPy broadcasting of two shapes (right-aligned; a 1 stretches). */
export function broadcastShapes(a: Shape, b: Shape, what: string): number[] {
  const rank = Math.max(a.length, b.length);
  const out = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(
        `${what}: shapes ${formatShape(a)} and ${formatShape(b)} cannot be broadcast (axis ${i}: ${da} vs ${db})`,
      );
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** The shape `shape` padded on the left with 1s to `rank` axes (how broadcasting sees it). */
export function padShape(shape: Shape, rank: number): number[] {
  return [...new Array<number>(rank - shape.length).fill(1), ...shape];
}

/** Normalises a possibly negative axis index against a rank, with a clear error when out of range. */
export function normalizeAxis(axis: number, rank: number, what: string): number {
  const normalized = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(normalized) || normalized < 0 || normalized >= rank) {
    throw new ShapeError(`${what}: axis ${axis} is out of range for a tensor of rank ${rank}`);
  }
  return normalized;
}

export function shapesEqual(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((dimension, i) => dimension === b[i]);
}
