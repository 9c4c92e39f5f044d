/**
 * Per-channel kernels over x viewed as [batch, channels, spatial]: training-mode batch norm, the
 * channel affine map and per-channel sums.
 *
 * Each kernel handles a range of channels (or of [batch, channel] planes), so the backend's threads
 * can split a call; every channel is reduced by one thread in one order, so any split gives the same
 * bits as one thread.
 *
 * Batch statistics and the gradient sums are accumulated in float64 (f64x2 lanes), as the reference
 * backend does and as PyTorch accumulates on CPU: a float32 mean of 10⁵ values loses digits that the
 * tests (and training) notice. The elementwise passes (normalising, the input gradient) run in
 * float32 lanes with the mean subtracted in two parts, never folded into x·a + b, whose large
 * constant would cancel digits away.
 */

function highHalf(v: v128): v128 {
  return f32x4.shuffle(v, v, 2, 3, 2, 3);
}

/**
 * Σ x[0, count) in float64. Eight floats a step into four f64x2 accumulators: a float64 add takes
 * several cycles before its sum can be added to again, so with two accumulators these sums ran at
 * half the speed the loads allow (batch norm's statistics and gradient sums were a tenth of the seed
 * CNN's training step). The float64 sums of float32 values stay exact to far below a float32 ulp,
 * whatever the order.
 */
function sumRun(x: usize, count: i32): f64 {
  let s0 = f64x2.splat(0);
  let s1 = f64x2.splat(0);
  let s2 = f64x2.splat(0);
  let s3 = f64x2.splat(0);
  let i = 0;
  for (; i + 8 <= count; i += 8) {
    const v = v128.load(x + <usize>i * 4);
    const w = v128.load(x + <usize>i * 4, 16);
    s0 = f64x2.add(s0, f64x2.promote_low_f32x4(v));
    s1 = f64x2.add(s1, f64x2.promote_low_f32x4(highHalf(v)));
    s2 = f64x2.add(s2, f64x2.promote_low_f32x4(w));
    s3 = f64x2.add(s3, f64x2.promote_low_f32x4(highHalf(w)));
  }
  if (i + 4 <= count) {
    const v = v128.load(x + <usize>i * 4);
    s0 = f64x2.add(s0, f64x2.promote_low_f32x4(v));
    s1 = f64x2.add(s1, f64x2.promote_low_f32x4(highHalf(v)));
    i += 4;
  }
  const both = f64x2.add(f64x2.add(s0, s2), f64x2.add(s1, s3));
  let sum = f64x2.extract_lane(both, 0) + f64x2.extract_lane(both, 1);
  for (; i < count; i++) sum += <f64>load<f32>(x + <usize>i * 4);
  return sum;
}

/** The squares of v − center, float64 lanes, for the two halves of a float32 vector. */
function squaredLow(v: v128, c: v128): v128 {
  const d = f64x2.sub(f64x2.promote_low_f32x4(v), c);
  return f64x2.mul(d, d);
}

/** Σ (x − center)² over x[0, count) in float64 (four accumulators, as sumRun). */
function squaredDeviationRun(x: usize, count: i32, center: f64): f64 {
  const c = f64x2.splat(center);
  let s0 = f64x2.splat(0);
  let s1 = f64x2.splat(0);
  let s2 = f64x2.splat(0);
  let s3 = f64x2.splat(0);
  let i = 0;
  for (; i + 8 <= count; i += 8) {
    const v = v128.load(x + <usize>i * 4);
    const w = v128.load(x + <usize>i * 4, 16);
    s0 = f64x2.add(s0, squaredLow(v, c));
    s1 = f64x2.add(s1, squaredLow(highHalf(v), c));
    s2 = f64x2.add(s2, squaredLow(w, c));
    s3 = f64x2.add(s3, squaredLow(highHalf(w), c));
  }
  if (i + 4 <= count) {
    const v = v128.load(x + <usize>i * 4);
    s0 = f64x2.add(s0, squaredLow(v, c));
    s1 = f64x2.add(s1, squaredLow(highHalf(v), c));
    i += 4;
  }
  const both = f64x2.add(f64x2.add(s0, s2), f64x2.add(s1, s3));
  let sum = f64x2.extract_lane(both, 0) + f64x2.extract_lane(both, 1);
  for (; i < count; i++) {
    const d = <f64>load<f32>(x + <usize>i * 4) - center;
    sum += d * d;
  }
  return sum;
}

/**
 * ReLU as the reference computes it, y > 0 ? y : 0: pmax(0, y) is (0 < y ? y : 0), so NaN and −0
 * become +0 just as there (f32x4.max would keep the NaN).
 */
function reluVector(v: v128): v128 {
  return f32x4.pmax(f32x4.splat(0), v);
}

/**
 * out = (x − center)·scale + shift over [0, count) in float32, with `relu` then max(·, 0) (the fused
 * batch norm + ReLU, the same bits as the two kernels one after the other). The center is split into
 * a float32 head and tail and subtracted in two steps: x − head is exact for x near the mean
 * (Sterbenz), so a large mean costs no digits, which a single float32 center would (a mean of 10⁴
 * has an ulp of 10⁻³). Four lanes instead of float64's two: this pass is half of batch norm's time.
 */
function normalizeRun(
  x: usize,
  out: usize,
  count: i32,
  center: f64,
  scale: f64,
  shift: f64,
  relu: bool,
): void {
  const head = <f32>center;
  const tail = <f32>(center - <f64>head);
  const a = <f32>scale;
  const b = <f32>shift;
  const headVector = f32x4.splat(head);
  const tailVector = f32x4.splat(tail);
  const aVector = f32x4.splat(a);
  const bVector = f32x4.splat(b);
  let i = 0;
  for (; i + 4 <= count; i += 4) {
    const d = f32x4.sub(f32x4.sub(v128.load(x + <usize>i * 4), headVector), tailVector);
    const y = f32x4.add(f32x4.mul(d, aVector), bVector);
    v128.store(out + <usize>i * 4, relu ? reluVector(y) : y);
  }
  for (; i < count; i++) {
    const y = (load<f32>(x + <usize>i * 4) - head - tail) * a + b;
    store<f32>(out + <usize>i * 4, relu && !(y > 0) ? 0 : y);
  }
}

/**
 * y = gamma·(x − mean)/sqrt(var + eps) + beta with the batch mean and biased variance of each channel;
 * mean and invStd (1/sqrt(var + eps)) are saved for backward. gamma, beta, mean, invStd are [channels].
 * With `relu` the output is max(y, 0) (batch norm fused with the ReLU after it). Only channels
 * [channelStart, channelEnd) are computed.
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
  channelStart: i32,
  channelEnd: i32,
  relu: bool,
): void {
  const count = <f64>batch * <f64>spatial;
  const stride = <usize>(channels * spatial) * 4;
  for (let c = channelStart; c < channelEnd; c++) {
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
      normalizeRun(first + <usize>n * stride, firstOut + <usize>n * stride, spatial, mu, scale, shift, relu);
    }
  }
}

/**
 * g[i], or with a ReLU mask `y` (non-zero pointer) g[i] where y[i] > 0 and +0 elsewhere: the gradient
 * that the ReLU after a fused batch norm passes back, as the reference's ReLU backward computes it.
 */
function maskedGradient(g: usize, y: usize, at: usize): v128 {
  const gv = v128.load(g + at);
  return y == 0 ? gv : v128.and(gv, f32x4.gt(v128.load(y + at), f32x4.splat(0)));
}

/** maskedGradient for one float, widened to float64. */
function maskedGradientScalar(g: usize, y: usize, at: usize): f64 {
  return y != 0 && !(load<f32>(y + at) > 0) ? 0 : <f64>load<f32>(g + at);
}

/**
 * Σ g and Σ g·(x − center) over [0, count), in float64, with g masked by `y` as maskedGradient does;
 * returns them in lanes 0 and 1. Eight floats a step, each sum in two pairs of accumulators (see
 * sumRun).
 */
function gradientSumsRun(x: usize, g: usize, y: usize, count: i32, center: f64): v128 {
  const c = f64x2.splat(center);
  let sum0 = f64x2.splat(0);
  let sum1 = f64x2.splat(0);
  let sum2 = f64x2.splat(0);
  let sum3 = f64x2.splat(0);
  let dot0 = f64x2.splat(0);
  let dot1 = f64x2.splat(0);
  let dot2 = f64x2.splat(0);
  let dot3 = f64x2.splat(0);
  let i = 0;
  for (; i + 8 <= count; i += 8) {
    const at = <usize>i * 4;
    const xv = v128.load(x + at);
    const xw = v128.load(x + at, 16);
    const gv = maskedGradient(g, y, at);
    const gw = maskedGradient(g, y, at + 16);
    const g0 = f64x2.promote_low_f32x4(gv);
    const g1 = f64x2.promote_low_f32x4(highHalf(gv));
    const g2 = f64x2.promote_low_f32x4(gw);
    const g3 = f64x2.promote_low_f32x4(highHalf(gw));
    sum0 = f64x2.add(sum0, g0);
    sum1 = f64x2.add(sum1, g1);
    sum2 = f64x2.add(sum2, g2);
    sum3 = f64x2.add(sum3, g3);
    dot0 = f64x2.add(dot0, f64x2.mul(g0, f64x2.sub(f64x2.promote_low_f32x4(xv), c)));
    dot1 = f64x2.add(dot1, f64x2.mul(g1, f64x2.sub(f64x2.promote_low_f32x4(highHalf(xv)), c)));
    dot2 = f64x2.add(dot2, f64x2.mul(g2, f64x2.sub(f64x2.promote_low_f32x4(xw), c)));
    dot3 = f64x2.add(dot3, f64x2.mul(g3, f64x2.sub(f64x2.promote_low_f32x4(highHalf(xw)), c)));
  }
  if (i + 4 <= count) {
    const xv = v128.load(x + <usize>i * 4);
    const gv = maskedGradient(g, y, <usize>i * 4);
    const g0 = f64x2.promote_low_f32x4(gv);
    const g1 = f64x2.promote_low_f32x4(highHalf(gv));
    sum0 = f64x2.add(sum0, g0);
    sum1 = f64x2.add(sum1, g1);
    dot0 = f64x2.add(dot0, f64x2.mul(g0, f64x2.sub(f64x2.promote_low_f32x4(xv), c)));
    dot1 = f64x2.add(dot1, f64x2.mul(g1, f64x2.sub(f64x2.promote_low_f32x4(highHalf(xv)), c)));
    i += 4;
  }
  const sums = f64x2.add(f64x2.add(sum0, sum2), f64x2.add(sum1, sum3));
  const dots = f64x2.add(f64x2.add(dot0, dot2), f64x2.add(dot1, dot3));
  let sum = f64x2.extract_lane(sums, 0) + f64x2.extract_lane(sums, 1);
  let dot = f64x2.extract_lane(dots, 0) + f64x2.extract_lane(dots, 1);
  for (; i < count; i++) {
    const gi = maskedGradientScalar(g, y, <usize>i * 4);
    sum += gi;
    dot += gi * (<f64>load<f32>(x + <usize>i * 4) - center);
  }
  return f64x2.replace_lane(f64x2.splat(sum), 1, dot);
}

/**
 * gradX = k1·g − k0 − k2·(x − center) over [0, count), with g masked by `y`: float32 arithmetic on
 * coefficients computed in float64, the center split as in normalizeRun.
 */
function inputGradientRun(
  x: usize,
  g: usize,
  y: usize,
  gradX: usize,
  count: i32,
  center: f64,
  k0: f64,
  k1: f64,
  k2: f64,
): void {
  const head = <f32>center;
  const tail = <f32>(center - <f64>head);
  const c0 = <f32>k0;
  const c1 = <f32>k1;
  const c2 = <f32>k2;
  const headVector = f32x4.splat(head);
  const tailVector = f32x4.splat(tail);
  const a0 = f32x4.splat(c0);
  const a1 = f32x4.splat(c1);
  const a2 = f32x4.splat(c2);
  let i = 0;
  for (; i + 4 <= count; i += 4) {
    const d = f32x4.sub(f32x4.sub(v128.load(x + <usize>i * 4), headVector), tailVector);
    const gv = maskedGradient(g, y, <usize>i * 4);
    v128.store(gradX + <usize>i * 4, f32x4.sub(f32x4.sub(f32x4.mul(a1, gv), a0), f32x4.mul(a2, d)));
  }
  for (; i < count; i++) {
    const gi = <f32>maskedGradientScalar(g, y, <usize>i * 4);
    const d = load<f32>(x + <usize>i * 4) - head - tail;
    store<f32>(gradX + <usize>i * 4, c1 * gi - c0 - c2 * d);
  }
}

/**
 * Backward of training-mode batch norm, given the saved mean and invStd. With x̂ = (x − mean)·invStd:
 * gradBeta = Σ g, gradGamma = Σ g·x̂, gradX = gamma·invStd·(g − Σg/count − x̂·Σ(g·x̂)/count).
 * With `y` (the fused forward's output; 0 for none) g is gradOut where y > 0 and 0 elsewhere: the
 * backward of batch norm fused with the ReLU after it. Only channels [channelStart, channelEnd) are
 * computed.
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
  channelStart: i32,
  channelEnd: i32,
  y: usize,
): void {
  const count = <f64>batch * <f64>spatial;
  const stride = <usize>(channels * spatial) * 4;
  for (let c = channelStart; c < channelEnd; c++) {
    const offset = <usize>(c * spatial) * 4;
    const mu = <f64>load<f32>(mean + <usize>c * 4);
    const inverse = <f64>load<f32>(invStd + <usize>c * 4);
    let sumGrad: f64 = 0;
    let sumGradCentered: f64 = 0;
    for (let n = 0; n < batch; n++) {
      const sums = gradientSumsRun(
        x + offset + <usize>n * stride,
        gradOut + offset + <usize>n * stride,
        y == 0 ? 0 : y + offset + <usize>n * stride,
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
      inputGradientRun(x + at, gradOut + at, y == 0 ? 0 : y + at, gradX + at, spatial, mu, k0, scale, k2);
    }
  }
}

/**
 * out = x·scale[c] + shift[c] (inference-mode batch norm, bias add) over planes [planeStart, planeEnd)
 * of x viewed as [batch·channels, spatial]; plane q belongs to channel q mod channels. With `relu`,
 * out = max(x·scale[c] + shift[c], 0).
 */
export function channelAffine(
  x: usize,
  scale: usize,
  shift: usize,
  out: usize,
  channels: i32,
  spatial: i32,
  planeStart: i32,
  planeEnd: i32,
  relu: bool,
): void {
  for (let q = planeStart; q < planeEnd; q++) {
    const c = q % channels;
    const at = <usize>(q * spatial) * 4;
    const a = load<f32>(scale + <usize>c * 4);
    const b = load<f32>(shift + <usize>c * 4);
    const av = f32x4.splat(a);
    const bv = f32x4.splat(b);
    let i = 0;
    for (; i + 4 <= spatial; i += 4) {
      const offset = at + <usize>i * 4;
      const y = f32x4.add(f32x4.mul(v128.load(x + offset), av), bv);
      v128.store(out + offset, relu ? reluVector(y) : y);
    }
    for (; i < spatial; i++) {
      const offset = at + <usize>i * 4;
      const y = load<f32>(x + offset) * a + b;
      store<f32>(out + offset, relu && !(y > 0) ? 0 : y);
    }
  }
}

/**
 * out[c] = Σ over batch and spatial of x[n, c, s] for channels [channelStart, channelEnd), summed in
 * float64 as the reference backend does (this is the bias gradient of dense and convolution layers).
 */
export function channelSum(
  x: usize,
  out: usize,
  batch: i32,
  channels: i32,
  spatial: i32,
  channelStart: i32,
  channelEnd: i32,
): void {
  const stride = <usize>(channels * spatial) * 4;
  if (spatial == 1) {
    // [batch, channels]: sum down columns, four channels per vector, so rows are read contiguously.
    let c = channelStart;
    for (; c + 4 <= channelEnd; c += 4) {
      let low = f64x2.splat(0);
      let high = f64x2.splat(0);
      let at = x + <usize>c * 4;
      for (let n = 0; n < batch; n++) {
        const v = v128.load(at);
        low = f64x2.add(low, f64x2.promote_low_f32x4(v));
        high = f64x2.add(high, f64x2.promote_low_f32x4(highHalf(v)));
        at += stride;
      }
      store<f32>(out + <usize>c * 4, <f32>f64x2.extract_lane(low, 0));
      store<f32>(out + <usize>(c + 1) * 4, <f32>f64x2.extract_lane(low, 1));
      store<f32>(out + <usize>(c + 2) * 4, <f32>f64x2.extract_lane(high, 0));
      store<f32>(out + <usize>(c + 3) * 4, <f32>f64x2.extract_lane(high, 1));
    }
    for (; c < channelEnd; c++) {
      let sum: f64 = 0;
      for (let n = 0; n < batch; n++) sum += <f64>load<f32>(x + <usize>n * stride + <usize>c * 4);
      store<f32>(out + <usize>c * 4, <f32>sum);
    }
    return;
  }
  for (let c = channelStart; c < channelEnd; c++) {
    const first = x + <usize>(c * spatial) * 4;
    let sum: f64 = 0;
    for (let n = 0; n < batch; n++) sum += sumRun(first + <usize>n * stride, spatial);
    store<f32>(out + <usize>c * 4, <f32>sum);
  }
}
