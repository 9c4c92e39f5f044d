/**
 * Per-channel kernels over x viewed as [batch, channels, spatial]: training-mode batch norm and the
 * channel affine map.
 *
 * Batch statistics and the normalisation itself are computed in float64 (f64x2 lanes), as the
 * reference backend does and as PyTorch accumulates on CPU: a float32 mean of 10⁵ values, or
 * x·a + b with a large mean folded into b, loses digits that the tests (and training) notice.
 */

function highHalf(v: v128): v128 {
  return f32x4.shuffle(v, v, 2, 3, 2, 3);
}

/** Σ x[0, count) in float64. */
function sumRun(x: usize, count: i32): f64 {
  let low = f64x2.splat(0);
  let high = f64x2.splat(0);
  let i = 0;
  for (; i + 4 <= count; i += 4) {
    const v = v128.load(x + <usize>i * 4);
    low = f64x2.add(low, f64x2.promote_low_f32x4(v));
    high = f64x2.add(high, f64x2.promote_low_f32x4(highHalf(v)));
  }
  const both = f64x2.add(low, high);
  let sum = f64x2.extract_lane(both, 0) + f64x2.extract_lane(both, 1);
  for (; i < count; i++) sum += <f64>load<f32>(x + <usize>i * 4);
  return sum;
}

/** Σ (x − center)² over x[0, count) in float64. */
function squaredDeviationRun(x: usize, count: i32, center: f64): f64 {
  const c = f64x2.splat(center);
  let low = f64x2.splat(0);
  let high = f64x2.splat(0);
  let i = 0;
  for (; i + 4 <= count; i += 4) {
    const v = v128.load(x + <usize>i * 4);
    const dLow = f64x2.sub(f64x2.promote_low_f32x4(v), c);
    const dHigh = f64x2.sub(f64x2.promote_low_f32x4(highHalf(v)), c);
    low = f64x2.add(low, f64x2.mul(dLow, dLow));
    high = f64x2.add(high, f64x2.mul(dHigh, dHigh));
  }
  const both = f64x2.add(low, high);
  let sum = f64x2.extract_lane(both, 0) + f64x2.extract_lane(both, 1);
  for (; i < count; i++) {
    const d = <f64>load<f32>(x + <usize>i * 4) - center;
    sum += d * d;
  }
  return sum;
}

/** out = (x − center)·scale + shift over [0, count), in float64, rounded once to float32. */
function normalizeRun(x: usize, out: usize, count: i32, center: f64, scale: f64, shift: f64): void {
  const c = f64x2.splat(center);
  const a = f64x2.splat(scale);
  const b = f64x2.splat(shift);
  let i = 0;
  for (; i + 4 <= count; i += 4) {
    const v = v128.load(x + <usize>i * 4);
    const low = f64x2.add(f64x2.mul(f64x2.sub(f64x2.promote_low_f32x4(v), c), a), b);
    const high = f64x2.add(f64x2.mul(f64x2.sub(f64x2.promote_low_f32x4(highHalf(v)), c), a), b);
    v128.store(
      out + <usize>i * 4,
      f32x4.shuffle(f32x4.demote_f64x2_zero(low), f32x4.demote_f64x2_zero(high), 0, 1, 4, 5),
    );
  }
  for (; i < count; i++) {
    store<f32>(out + <usize>i * 4, <f32>((<f64>load<f32>(x + <usize>i * 4) - center) * scale + shift));
  }
}

/**
 * y = gamma·(x − mean)/sqrt(var + eps) + beta with the batch mean and biased variance of each channel;
 * mean and invStd (1/sqrt(var + eps)) are saved for backward. gamma, beta, mean, invStd are [channels].
 */
export function batchNormTrainForward(
  x: usize,
  gamma: usize,
  beta: usize,
  out: usize,
  mean: usize,
  invStd: usize,
  eps: f64,
  batch: i32,
  channels: i32,
  spatial: i32,
): void {
  const count = <f64>batch * <f64>spatial;
  const stride = <usize>(channels * spatial) * 4;
  for (let c = 0; c < channels; c++) {
    const first = x + <usize>(c * spatial) * 4;
    let sum: f64 = 0;
    for (let n = 0; n < batch; n++) sum += sumRun(first + <usize>n * stride, spatial);
    const mu = sum / count;
    let squares: f64 = 0;
    for (let n = 0; n < batch; n++) squares += squaredDeviationRun(first + <usize>n * stride, spatial, mu);
    const inverse = 1 / Math.sqrt(squares / count + eps);
    store<f32>(mean + <usize>c * 4, <f32>mu);
    store<f32>(invStd + <usize>c * 4, <f32>inverse);
    const scale = <f64>load<f32>(gamma + <usize>c * 4) * inverse;
    const shift = <f64>load<f32>(beta + <usize>c * 4);
    const firstOut = out + <usize>(c * spatial) * 4;
    for (let n = 0; n < batch; n++) {
      normalizeRun(first + <usize>n * stride, firstOut + <usize>n * stride, spatial, mu, scale, shift);
    }
  }
}

/** Σ g and Σ g·(x − center) over [0, count), in float64; returns them in lanes 0 and 1. */
function gradientSumsRun(x: usize, g: usize, count: i32, center: f64): v128 {
  const c = f64x2.splat(center);
  let sumLow = f64x2.splat(0);
  let sumHigh = f64x2.splat(0);
  let dotLow = f64x2.splat(0);
  let dotHigh = f64x2.splat(0);
  let i = 0;
  for (; i + 4 <= count; i += 4) {
    const xv = v128.load(x + <usize>i * 4);
    const gv = v128.load(g + <usize>i * 4);
    const gLow = f64x2.promote_low_f32x4(gv);
    const gHigh = f64x2.promote_low_f32x4(highHalf(gv));
    sumLow = f64x2.add(sumLow, gLow);
    sumHigh = f64x2.add(sumHigh, gHigh);
    dotLow = f64x2.add(dotLow, f64x2.mul(gLow, f64x2.sub(f64x2.promote_low_f32x4(xv), c)));
    dotHigh = f64x2.add(dotHigh, f64x2.mul(gHigh, f64x2.sub(f64x2.promote_low_f32x4(highHalf(xv)), c)));
  }
  const sums = f64x2.add(sumLow, sumHigh);
  const dots = f64x2.add(dotLow, dotHigh);
  let sum = f64x2.extract_lane(sums, 0) + f64x2.extract_lane(sums, 1);
  let dot = f64x2.extract_lane(dots, 0) + f64x2.extract_lane(dots, 1);
  for (; i < count; i++) {
    const gi = <f64>load<f32>(g + <usize>i * 4);
    sum += gi;
    dot += gi * (<f64>load<f32>(x + <usize>i * 4) - center);
  }
  return f64x2.replace_lane(f64x2.splat(sum), 1, dot);
}

/** gradX = k1·g − k0 − k2·(x − center) over [0, count), in float64. */
function inputGradientRun(
  x: usize,
  g: usize,
  gradX: usize,
  count: i32,
  center: f64,
  k0: f64,
  k1: f64,
  k2: f64,
): void {
  const c = f64x2.splat(center);
  const a0 = f64x2.splat(k0);
  const a1 = f64x2.splat(k1);
  const a2 = f64x2.splat(k2);
  let i = 0;
  for (; i + 4 <= count; i += 4) {
    const xv = v128.load(x + <usize>i * 4);
    const gv = v128.load(g + <usize>i * 4);
    const low = f64x2.sub(
      f64x2.sub(f64x2.mul(a1, f64x2.promote_low_f32x4(gv)), a0),
      f64x2.mul(a2, f64x2.sub(f64x2.promote_low_f32x4(xv), c)),
    );
    const high = f64x2.sub(
      f64x2.sub(f64x2.mul(a1, f64x2.promote_low_f32x4(highHalf(gv))), a0),
      f64x2.mul(a2, f64x2.sub(f64x2.promote_low_f32x4(highHalf(xv)), c)),
    );
    v128.store(
      gradX + <usize>i * 4,
      f32x4.shuffle(f32x4.demote_f64x2_zero(low), f32x4.demote_f64x2_zero(high), 0, 1, 4, 5),
    );
  }
  for (; i < count; i++) {
    const gi = <f64>load<f32>(g + <usize>i * 4);
    const xi = <f64>load<f32>(x + <usize>i * 4);
    store<f32>(gradX + <usize>i * 4, <f32>(k1 * gi - k0 - k2 * (xi - center)));
  }
}

/**
 * Backward of training-mode batch norm, given the saved mean and invStd. With x̂ = (x − mean)·invStd:
 * gradBeta = Σ g, gradGamma = Σ g·x̂, gradX = gamma·invStd·(g − Σg/count − x̂·Σ(g·x̂)/count).
 */
export function batchNormTrainBackward(
  x: usize,
  gradOut: usize,
  gamma: usize,
  mean: usize,
  invStd: usize,
  gradX: usize,
  gradGamma: usize,
  gradBeta: usize,
  batch: i32,
  channels: i32,
  spatial: i32,
): void {
  const count = <f64>batch * <f64>spatial;
  const stride = <usize>(channels * spatial) * 4;
  for (let c = 0; c < channels; c++) {
    const offset = <usize>(c * spatial) * 4;
    const mu = <f64>load<f32>(mean + <usize>c * 4);
    const inverse = <f64>load<f32>(invStd + <usize>c * 4);
    let sumGrad: f64 = 0;
    let sumGradCentered: f64 = 0;
    for (let n = 0; n < batch; n++) {
      const sums = gradientSumsRun(
        x + offset + <usize>n * stride,
        gradOut + offset + <usize>n * stride,
        spatial,
        mu,
      );
      sumGrad += f64x2.extract_lane(sums, 0);
      sumGradCentered += f64x2.extract_lane(sums, 1);
    }
    const sumGradXhat = sumGradCentered * inverse;
    store<f32>(gradBeta + <usize>c * 4, <f32>sumGrad);
    store<f32>(gradGamma + <usize>c * 4, <f32>sumGradXhat);
    const scale = <f64>load<f32>(gamma + <usize>c * 4) * inverse;
    const k0 = (scale * sumGrad) / count;
    const k2 = (scale * inverse * sumGradXhat) / count;
    for (let n = 0; n < batch; n++) {
      const at = offset + <usize>n * stride;
      inputGradientRun(x + at, gradOut + at, gradX + at, spatial, mu, k0, scale, k2);
    }
  }
}

/** out = x·scale[c] + shift[c] (inference-mode batch norm, bias add). */
export function channelAffine(
  x: usize,
  scale: usize,
  shift: usize,
  out: usize,
  batch: i32,
  channels: i32,
  spatial: i32,
): void {
  let at: usize = 0;
  for (let n = 0; n < batch; n++) {
    for (let c = 0; c < channels; c++) {
      const a = load<f32>(scale + <usize>c * 4);
      const b = load<f32>(shift + <usize>c * 4);
      const av = f32x4.splat(a);
      const bv = f32x4.splat(b);
      let i = 0;
      for (; i + 4 <= spatial; i += 4) {
        const offset = at + <usize>i * 4;
        v128.store(out + offset, f32x4.add(f32x4.mul(v128.load(x + offset), av), bv));
      }
      for (; i < spatial; i++) {
        const offset = at + <usize>i * 4;
        store<f32>(out + offset, load<f32>(x + offset) * a + b);
      }
      at += <usize>spatial * 4;
    }
  }
}
