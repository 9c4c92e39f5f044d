/**
 * Copy and fill for short float runs. memory.copy and memory.fill become calls into the engine's
 * runtime, which cost more than the work for the few-dozen-float rows of im2col; inline SIMD loops
 * are used below a threshold and the bulk instructions above it.
 */

const BULK_THRESHOLD: i32 = 256;

/** dst[0, count) = src[0, count) (non-overlapping float runs). */
export function copyFloats(dst: usize, src: usize, count: i32): void {
  if (count >= BULK_THRESHOLD) {
    memory.copy(dst, src, <usize>count * 4);
    return;
  }
  let i = 0;
  for (; i + 4 <= count; i += 4) v128.store(dst + <usize>i * 4, v128.load(src + <usize>i * 4));
  for (; i < count; i++) store<f32>(dst + <usize>i * 4, load<f32>(src + <usize>i * 4));
}

/** dst[0, count) = 0. */
export function zeroFloats(dst: usize, count: i32): void {
  if (count >= BULK_THRESHOLD) {
    memory.fill(dst, 0, <usize>count * 4);
    return;
  }
  const zero = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= count; i += 4) v128.store(dst + <usize>i * 4, zero);
  for (; i < count; i++) store<f32>(dst + <usize>i * 4, 0);
}

/** dst[0, count) += src[0, count) (non-overlapping float runs). */
export function addFloats(dst: usize, src: usize, count: i32): void {
  let i = 0;
  for (; i + 4 <= count; i += 4) {
    const offset = <usize>i * 4;
    v128.store(dst + offset, f32x4.add(v128.load(dst + offset), v128.load(src + offset)));
  }
  for (; i < count; i++) {
    const offset = <usize>i * 4;
    store<f32>(dst + offset, load<f32>(dst + offset) + load<f32>(src + offset));
  }
}

/**
 * out[i] = ((blocks[0][i] + blocks[1][i]) + blocks[2][i]) + … for i in [start, end): the sum of
 * `count` blocks of `stride` floats each, always added in block order so the result is fixed.
 */
export function sumBlocks(blocks: usize, count: i32, stride: i32, out: usize, start: i32, end: i32): void {
  const strideBytes = <usize>stride * 4;
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const offset = <usize>i * 4;
    let sum = v128.load(blocks + offset);
    for (let b = 1; b < count; b++) sum = f32x4.add(sum, v128.load(blocks + <usize>b * strideBytes + offset));
    v128.store(out + offset, sum);
  }
  for (; i < end; i++) {
    const offset = <usize>i * 4;
    let sum = load<f32>(blocks + offset);
    for (let b = 1; b < count; b++) sum += load<f32>(blocks + <usize>b * strideBytes + offset);
    store<f32>(out + offset, sum);
  }
}
