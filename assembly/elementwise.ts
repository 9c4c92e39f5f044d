/**
 * Elementwise kernels: ReLU and leaky ReLU with their gradients, and binary arithmetic where one
 * operand is full and the other is the same shape or broadcast along a middle axis (bias and
 * per-channel patterns).
 *
 * Every kernel handles the element range [start, end) (or the row range of a broadcast) so that the
 * backend's threads can split a call; results do not depend on the split. The arithmetic matches the
 * reference backend bit for bit: float32 +, −, ·, ÷ round the same as the reference's float64 ones
 * rounded to float32, and the leaky slope is applied in float64 as the reference does.
 */

/** out = x > 0 ? x : 0 (NaN and −0 give +0, as in the reference backend). */
export function reluForward(x: usize, out: usize, start: i32, end: i32): void {
  const zero = f32x4.splat(0);
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const offset = <usize>i * 4;
    const v = v128.load(x + offset);
    v128.store(out + offset, v128.and(v, f32x4.gt(v, zero)));
  }
  for (; i < end; i++) {
    const offset = <usize>i * 4;
    const v = load<f32>(x + offset);
    store<f32>(out + offset, v > 0 ? v : 0);
  }
}

/** gradX = x > 0 ? gradOut : 0 (the derivative at 0 is 0, as in PyTorch). */
export function reluBackward(x: usize, gradOut: usize, gradX: usize, start: i32, end: i32): void {
  const zero = f32x4.splat(0);
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const offset = <usize>i * 4;
    const mask = f32x4.gt(v128.load(x + offset), zero);
    v128.store(gradX + offset, v128.and(v128.load(gradOut + offset), mask));
  }
  for (; i < end; i++) {
    const offset = <usize>i * 4;
    store<f32>(gradX + offset, load<f32>(x + offset) > 0 ? load<f32>(gradOut + offset) : 0);
  }
}

/** Four float32 lanes times a float64 factor, rounded once to float32. */
function scaleInDouble(v: v128, factor: v128): v128 {
  const low = f64x2.mul(f64x2.promote_low_f32x4(v), factor);
  const high = f64x2.mul(f64x2.promote_low_f32x4(f32x4.shuffle(v, v, 2, 3, 2, 3)), factor);
  return f32x4.shuffle(f32x4.demote_f64x2_zero(low), f32x4.demote_f64x2_zero(high), 0, 1, 4, 5);
}

/** out = x > 0 ? x : slope·x. */
export function leakyReluForward(x: usize, out: usize, slope: f64, start: i32, end: i32): void {
  const zero = f32x4.splat(0);
  const factor = f64x2.splat(slope);
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const offset = <usize>i * 4;
    const v = v128.load(x + offset);
    v128.store(out + offset, v128.bitselect(v, scaleInDouble(v, factor), f32x4.gt(v, zero)));
  }
  for (; i < end; i++) {
    const offset = <usize>i * 4;
    const v = load<f32>(x + offset);
    store<f32>(out + offset, v > 0 ? v : <f32>(slope * <f64>v));
  }
}

/** gradX = x > 0 ? gradOut : slope·gradOut (the derivative at 0 is the slope, as in PyTorch). */
export function leakyReluBackward(
  x: usize,
  gradOut: usize,
  gradX: usize,
  slope: f64,
  start: i32,
  end: i32,
): void {
  const zero = f32x4.splat(0);
  const factor = f64x2.splat(slope);
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const offset = <usize>i * 4;
    const g = v128.load(gradOut + offset);
    const mask = f32x4.gt(v128.load(x + offset), zero);
    v128.store(gradX + offset, v128.bitselect(g, scaleInDouble(g, factor), mask));
  }
  for (; i < end; i++) {
    const offset = <usize>i * 4;
    const g = load<f32>(gradOut + offset);
    store<f32>(gradX + offset, load<f32>(x + offset) > 0 ? g : <f32>(slope * <f64>g));
  }
}

/** Binary operation codes, in the order of BINARY_KINDS in src/backend/wasm/index.ts. */
const ADD = 0;
const SUB = 1;
const MUL = 2;
const DIV = 3;
const MAXIMUM = 4;
const MINIMUM = 5;

function applyVector(kind: i32, a: v128, b: v128): v128 {
  switch (kind) {
    case ADD:
      return f32x4.add(a, b);
    case SUB:
      return f32x4.sub(a, b);
    case MUL:
      return f32x4.mul(a, b);
    case DIV:
      return f32x4.div(a, b);
    // The reference's a >= b ? a : b: a NaN on either side yields b, as here.
    case MAXIMUM:
      return v128.bitselect(a, b, f32x4.ge(a, b));
    default:
      return v128.bitselect(a, b, f32x4.le(a, b));
  }
}

function applyScalar(kind: i32, a: f32, b: f32): f32 {
  switch (kind) {
    case ADD:
      return a + b;
    case SUB:
      return a - b;
    case MUL:
      return a * b;
    case DIV:
      return a / b;
    case MAXIMUM:
      return a >= b ? a : b;
    default:
      return a <= b ? a : b;
  }
}

/** out[i] = a[i] ∘ b[i] for i in [start, end). */
function sameShapeRun(kind: i32, a: usize, b: usize, out: usize, start: i32, end: i32): void {
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const offset = <usize>i * 4;
    v128.store(out + offset, applyVector(kind, v128.load(a + offset), v128.load(b + offset)));
  }
  for (; i < end; i++) {
    const offset = <usize>i * 4;
    store<f32>(out + offset, applyScalar(kind, load<f32>(a + offset), load<f32>(b + offset)));
  }
}

/**
 * out = a ∘ b where out and the full operand are [outer, middle, inner] and the other operand is
 * [middle] broadcast over outer and inner (a bias, a per-channel scale; middle = 1 is a scalar).
 * fullIsLeft says whether a (true) or b is the full operand. Rows [rowStart, rowEnd) of the
 * [outer·middle, inner] view are computed. The kind is tested per vector rather than hoisted: the
 * branch always goes the same way and these loops are bound by memory, not by instructions.
 */
export function binaryBroadcast(
  kind: i32,
  full: usize,
  broadcast: usize,
  out: usize,
  fullIsLeft: bool,
  middle: i32,
  inner: i32,
  rowStart: i32,
  rowEnd: i32,
): void {
  if (inner == 1) {
    for (let row = rowStart; row < rowEnd;) {
      // A stretch of rows that maps onto consecutive elements of the broadcast operand.
      const m = row % middle;
      const count = min(middle - m, rowEnd - row);
      const at = <usize>row * 4;
      const other = broadcast + <usize>m * 4;
      if (fullIsLeft) sameShapeRun(kind, full + at, other, out + at, 0, count);
      else sameShapeRun(kind, other, full + at, out + at, 0, count);
      row += count;
    }
    return;
  }
  for (let row = rowStart; row < rowEnd; row++) {
    const value = load<f32>(broadcast + <usize>(row % middle) * 4);
    const splat = f32x4.splat(value);
    const base = <usize>row * <usize>inner * 4;
    const x = full + base;
    const y = out + base;
    let i = 0;
    if (fullIsLeft) {
      for (; i + 4 <= inner; i += 4) {
        const offset = <usize>i * 4;
        v128.store(y + offset, applyVector(kind, v128.load(x + offset), splat));
      }
      for (; i < inner; i++) {
        const offset = <usize>i * 4;
        store<f32>(y + offset, applyScalar(kind, load<f32>(x + offset), value));
      }
    } else {
      for (; i + 4 <= inner; i += 4) {
        const offset = <usize>i * 4;
        v128.store(y + offset, applyVector(kind, splat, v128.load(x + offset)));
      }
      for (; i < inner; i++) {
        const offset = <usize>i * 4;
        store<f32>(y + offset, applyScalar(kind, value, load<f32>(x + offset)));
      }
    }
  }
}

/** out[i] = a[i] ∘ b[i] over [start, end) (both operands full). */
export function binarySameShape(kind: i32, a: usize, b: usize, out: usize, start: i32, end: i32): void {
  sameShapeRun(kind, a, b, out, start, end);
}
