/**
 * Per-channel kernels over x viewed as [batch, channels, spatial]: training-mode batch norm (alone,
 * with the ReLU after it, and with a 2×2 max pooling after that), the channel affine map and
 * per-channel sums.
 *
 * Each kernel handles a range of channels or of [batch, channel] planes, so the backend's threads
 * can split a call; every plane and every channel is reduced by one thread in one order, so any
 * split gives the same bits as one thread.
 *
 * Batch statistics and the gradient sums are accumulated in float64 (f64x2 lanes), as the reference
 * backend does and as PyTorch accumulates on CPU: a float32 mean of 10⁵ values loses digits that the
 * tests (and training) notice. The elementwise passes (normalising, the input gradient) run in
 * float32 lanes with the mean subtracted in two parts, never folded into x·a + b, whose large
 * constant would cancel digits away.
 */
import { zeroFloats } from './floats';
import { maxPool2x2 } from './pool';

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

/*
 * Training-mode batch norm, plane by plane. A channel's statistics and gradient sums are sums over its
 * sample planes, which lie a whole sample apart ([batch, channels, spatial]): walking one channel's
 * planes reads memory in short runs (3 KB at 28×28) 100 KB apart, which the hardware prefetchers
 * barely follow, and wasm has no prefetch instruction. The same arithmetic over [1, 2048, 784], each
 * channel one run, took 0.85 instead of 1.25 ms forward and 1.17 instead of 1.89 ms backward (one
 * thread, CPU time). So every pass here walks the planes in memory order: a plane's float64 partial
 * sums (sumRun and the others, unchanged) go to a table, and each channel's total adds its planes'
 * partials in sample order, as the channel-by-channel loop did, so the bits are the same whichever
 * thread computed which plane. A call is three jobs forward (sums, squares about the mean,
 * normalising) and two backward (gradient sums, input gradient), with the per-channel steps between
 * them (batchNormCenters, batchNormForwardCoefficients, batchNormBackwardCoefficients) run by the
 * calling thread: a few adds per plane.
 */

/**
 * For planes q in [planeStart, planeEnd) of x viewed as [planes, spatial]: table[q] = Σ x over the
 * plane (float64) when centers is 0, else Σ (x − centers[q mod channels])², centers float64 [channels].
 */
export function batchNormPlaneSums(
  x: usize,
  centers: usize,
  table: usize,
  channels: i32,
  spatial: i32,
  planeStart: i32,
  planeEnd: i32,
): void {
  for (let q = planeStart; q < planeEnd; q++) {
    const plane = x + <usize>q * <usize>spatial * 4;
    const sum =
      centers == 0
        ? sumRun(plane, spatial)
        : squaredDeviationRun(plane, spatial, load<f64>(centers + <usize>(q % channels) * 8));
    store<f64>(table + <usize>q * 8, sum);
  }
}

/** Σ over samples of table[n·channels + c], in sample order (float64). */
function channelTotal(table: usize, batch: i32, channels: i32, c: i32): f64 {
  let total: f64 = 0;
  for (let n = 0; n < batch; n++) total += load<f64>(table + <usize>(n * channels + c) * 8);
  return total;
}

/** centers[c] = the mean of channel c, from batchNormPlaneSums' plane sums in table. */
export function batchNormCenters(
  table: usize,
  centers: usize,
  batch: i32,
  channels: i32,
  spatial: i32,
): void {
  const count = <f64>batch * <f64>spatial;
  for (let c = 0; c < channels; c++)
    store<f64>(centers + <usize>c * 8, channelTotal(table, batch, channels, c) / count);
}

/**
 * From the means (centers) and the planes' squared deviations about them (table): invStd =
 * 1/sqrt(biased variance + eps); mean and invStd stored as float32 [channels] for backward, and per
 * channel the float64 center, scale gamma·invStd and shift beta that batchNormNormalizePlanes applies
 * (coefficients, 3 per channel).
 */
export function batchNormForwardCoefficients(
  table: usize,
  centers: usize,
  gamma: usize,
  beta: usize,
  mean: usize,
  invStd: usize,
  coefficients: usize,
  eps: f64,
  batch: i32,
  channels: i32,
  spatial: i32,
): void {
  const count = <f64>batch * <f64>spatial;
  for (let c = 0; c < channels; c++) {
    const mu = load<f64>(centers + <usize>c * 8);
    const inverse = 1 / Math.sqrt(channelTotal(table, batch, channels, c) / count + eps);
    store<f32>(mean + <usize>c * 4, <f32>mu);
    store<f32>(invStd + <usize>c * 4, <f32>inverse);
    const k = coefficients + <usize>c * 24;
    store<f64>(k, mu);
    store<f64>(k, <f64>load<f32>(gamma + <usize>c * 4) * inverse, 8);
    store<f64>(k, <f64>load<f32>(beta + <usize>c * 4), 16);
  }
}

/**
 * out = (x − center)·scale + shift per plane of x [planes, spatial] for planes [planeStart,
 * planeEnd), with batchNormForwardCoefficients' coefficients of the plane's channel; with `relu`
 * clamped at 0.
 */
export function batchNormNormalizePlanes(
  x: usize,
  out: usize,
  coefficients: usize,
  channels: i32,
  spatial: i32,
  planeStart: i32,
  planeEnd: i32,
  relu: bool,
): void {
  for (let q = planeStart; q < planeEnd; q++) {
    const k = coefficients + <usize>(q % channels) * 24;
    const at = <usize>q * <usize>spatial * 4;
    normalizeRun(x + at, out + at, spatial, load<f64>(k), load<f64>(k, 8), load<f64>(k, 16), relu);
  }
}

/**
 * batchNormNormalizePlanes with the ReLU into y, then each plane's 2×2 stride-2 max pooling into out
 * and argmax [planes, outHeight, outWidth] (maxPool2dForward's 2×2 path) while the plane is in L1
 * cache, instead of a second pass that reads y back from memory. y is still written: the backward's
 * ReLU mask is read there.
 */
export function batchNormReluMaxPoolPlanes(
  x: usize,
  y: usize,
  out: usize,
  argmax: usize,
  coefficients: usize,
  channels: i32,
  inHeight: i32,
  inWidth: i32,
  outHeight: i32,
  outWidth: i32,
  planeStart: i32,
  planeEnd: i32,
): void {
  const spatial = inHeight * inWidth;
  const pooled = outHeight * outWidth;
  for (let q = planeStart; q < planeEnd; q++) {
    const k = coefficients + <usize>(q % channels) * 24;
    const at = <usize>q * <usize>spatial * 4;
    normalizeRun(x + at, y + at, spatial, load<f64>(k), load<f64>(k, 8), load<f64>(k, 16), true);
    const pooledAt = <usize>q * <usize>pooled * 4;
    maxPool2x2(y + at, out + pooledAt, argmax + pooledAt, 1, inHeight, inWidth, outHeight, outWidth);
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
 * For planes q in [planeStart, planeEnd) of x and gradOut [planes, spatial]: table[q] = (Σ g,
 * Σ g·(x − mean[c])) in float64 (gradientSumsRun), c = q mod channels, g = gradOut masked by y > 0
 * when y is not 0 (the ReLU of a fused forward).
 */
export function batchNormGradientSumsPlanes(
  x: usize,
  gradOut: usize,
  y: usize,
  mean: usize,
  table: usize,
  channels: i32,
  spatial: i32,
  planeStart: i32,
  planeEnd: i32,
): void {
  for (let q = planeStart; q < planeEnd; q++) {
    const at = <usize>q * <usize>spatial * 4;
    const center = <f64>load<f32>(mean + <usize>(q % channels) * 4);
    v128.store(
      table + <usize>q * 16,
      gradientSumsRun(x + at, gradOut + at, y == 0 ? 0 : y + at, spatial, center),
    );
  }
}

/**
 * The backward's per-channel step, from batchNormGradientSumsPlanes' table and the saved mean and
 * invStd. With x̂ = (x − mean)·invStd: gradBeta = Σ g, gradGamma = Σ g·x̂, and gradX = gamma·invStd·(g
 * − Σg/count − x̂·Σ(g·x̂)/count) = k1·g − k0 − k2·(x − mean): coefficients holds (mean, k0, k1, k2)
 * per channel, float64, for batchNormInputGradientPlanes.
 */
export function batchNormBackwardCoefficients(
  table: usize,
  gamma: usize,
  mean: usize,
  invStd: usize,
  gradGamma: usize,
  gradBeta: usize,
  coefficients: usize,
  batch: i32,
  channels: i32,
  spatial: i32,
): void {
  const count = <f64>batch * <f64>spatial;
  for (let c = 0; c < channels; c++) {
    const inverse = <f64>load<f32>(invStd + <usize>c * 4);
    let sumGrad: f64 = 0;
    let sumGradCentered: f64 = 0;
    for (let n = 0; n < batch; n++) {
      const sums = v128.load(table + <usize>(n * channels + c) * 16);
      sumGrad += f64x2.extract_lane(sums, 0);
      sumGradCentered += f64x2.extract_lane(sums, 1);
    }
    const sumGradXhat = sumGradCentered * inverse;
    store<f32>(gradBeta + <usize>c * 4, <f32>sumGrad);
    store<f32>(gradGamma + <usize>c * 4, <f32>sumGradXhat);
    const scale = <f64>load<f32>(gamma + <usize>c * 4) * inverse;
    const k = coefficients + <usize>c * 32;
    store<f64>(k, <f64>load<f32>(mean + <usize>c * 4));
    store<f64>(k, (scale * sumGrad) / count, 8);
    store<f64>(k, scale, 16);
    store<f64>(k, (scale * inverse * sumGradXhat) / count, 24);
  }
}

/**
 * gradX = k1·g − k0 − k2·(x − mean) per plane [planeStart, planeEnd) of x, gradOut and gradX
 * [planes, spatial], with batchNormBackwardCoefficients' coefficients of the plane's channel and g
 * masked by y > 0 when y is not 0.
 */
export function batchNormInputGradientPlanes(
  x: usize,
  gradOut: usize,
  y: usize,
  gradX: usize,
  coefficients: usize,
  channels: i32,
  spatial: i32,
  planeStart: i32,
  planeEnd: i32,
): void {
  for (let q = planeStart; q < planeEnd; q++) {
    const k = coefficients + <usize>(q % channels) * 32;
    const at = <usize>q * <usize>spatial * 4;
    inputGradientRun(
      x + at,
      gradOut + at,
      y == 0 ? 0 : y + at,
      gradX + at,
      spatial,
      load<f64>(k),
      load<f64>(k, 8),
      load<f64>(k, 16),
      load<f64>(k, 24),
    );
  }
}

/**
 * One sample plane of maxPool2dBackward's gradient for any argmax: zeros, each pooled value added at
 * its argmax (0 + g turns a −0 gradient into +0 there, as that kernel does), then the ReLU's mask
 * (maskedGradient: +0 where y is not positive) where values landed, once all have. The path for
 * indices that the 2×2 paths below do not recognise.
 */
function pooledGradientAnywhere(
  plane: usize,
  y: usize,
  gradient: usize,
  indices: usize,
  spatial: i32,
  pooled: i32,
): void {
  zeroFloats(plane, spatial);
  for (let o = 0; o < pooled; o++) {
    const index = load<i32>(indices + <usize>o * 4);
    if (index < 0 || index >= spatial) continue;
    const at = plane + <usize>index * 4;
    store<f32>(at, load<f32>(at) + load<f32>(gradient + <usize>o * 4));
  }
  for (let o = 0; o < pooled; o++) {
    const index = load<i32>(indices + <usize>o * 4);
    if (index < 0 || index >= spatial) continue;
    if (!(load<f32>(y + <usize>index * 4) > 0)) store<f32>(plane + <usize>index * 4, 0);
  }
}

/**
 * Whether each window's argmax (lanes of `index`) is its top-left element, for four 2×2 windows whose
 * top-left corners are input elements first, first + 2, first + 4 and first + 6; `offset` 1, inWidth
 * and inWidth + 1 ask for the top-right, bottom-left and bottom-right elements instead.
 */
function argmaxAt(index: v128, first: i32, offset: i32): v128 {
  return i32x4.eq(index, i32x4.add(i32x4.splat(first + offset), i32x4(0, 2, 4, 6)));
}

/** Whether every window's argmax is one of its four elements. */
function allInside(at00: v128, at01: v128, at10: v128, at11: v128): bool {
  return i32x4.all_true(v128.or(v128.or(at00, at01), v128.or(at10, at11)));
}

/** The even-indexed floats of the eight from `at`: four windows' left column in one input row. */
function evens(at: usize): v128 {
  return f32x4.shuffle(v128.load(at), v128.load(at, 16), 0, 2, 4, 6);
}

/** The odd-indexed floats of the eight from `at`: four windows' right column. */
function odds(at: usize): v128 {
  return f32x4.shuffle(v128.load(at), v128.load(at, 16), 1, 3, 5, 7);
}

/**
 * The pooled gradient of four windows (at00 … at11 as argmaxAt gives them) as the ReLU's mask
 * leaves it: 0 + g (maxPool2dBackward adds g to a zero, turning −0 into +0) where y at the window's
 * argmax is positive, else +0.
 */
function maskedFour(
  y: usize,
  gradient: usize,
  first: i32,
  inWidth: i32,
  at00: v128,
  at01: v128,
  at10: v128,
  at11: v128,
): v128 {
  const zero = f32x4.splat(0);
  const top = y + <usize>first * 4;
  const bottom = top + <usize>inWidth * 4;
  const positive = v128.or(
    v128.or(v128.and(at00, f32x4.gt(evens(top), zero)), v128.and(at01, f32x4.gt(odds(top), zero))),
    v128.or(v128.and(at10, f32x4.gt(evens(bottom), zero)), v128.and(at11, f32x4.gt(odds(bottom), zero))),
  );
  return v128.and(f32x4.add(zero, v128.load(gradient)), positive);
}

/**
 * Writes the two input rows (eight floats each from element `first`) of four windows' output
 * gradient: each window's masked value at its argmax, +0 at its other three elements.
 */
function spreadFour(
  plane: usize,
  masked: v128,
  first: i32,
  inWidth: i32,
  at00: v128,
  at01: v128,
  at10: v128,
  at11: v128,
): void {
  const g00 = v128.and(masked, at00);
  const g01 = v128.and(masked, at01);
  const g10 = v128.and(masked, at10);
  const g11 = v128.and(masked, at11);
  const top = plane + <usize>first * 4;
  const bottom = top + <usize>inWidth * 4;
  v128.store(top, f32x4.shuffle(g00, g01, 0, 4, 1, 5));
  v128.store(top, f32x4.shuffle(g00, g01, 2, 6, 3, 7), 16);
  v128.store(bottom, f32x4.shuffle(g10, g11, 0, 4, 1, 5));
  v128.store(bottom, f32x4.shuffle(g10, g11, 2, 6, 3, 7), 16);
}

/** Whether `index` lies in the 2×2 window with top-left corner `first`. */
function insideWindow(index: i32, first: i32, inWidth: i32): bool {
  return index == first || index == first + 1 || index == first + inWidth || index == first + inWidth + 1;
}

/**
 * Groups of four windows in an output row of outWidth: those whose eight input columns from 2·ox lie
 * inside the row (maxPool2x2's grouping in assembly/pool.ts), the last group overlapping the one
 * before where the row is not a multiple of 4; windows from the returned column on take a scalar path.
 */
function groupEnd(inWidth: i32, outWidth: i32): i32 {
  return inWidth >= 8 ? min((inWidth - 8) / 2 + 4, outWidth) : 0;
}

/**
 * One sample plane's output gradient after a 2×2 stride-2 max pooling (pooledGradientAnywhere's
 * values, built four windows at a time) into `plane`, and each window's masked pooled value
 * (maskedFour's) into `masked` [outHeight, outWidth] for pooledInputGradient2x2. False when some
 * argmax lies outside its window (never so from max pooling): then `plane` holds
 * pooledGradientAnywhere's values and `masked` is not to be read.
 */
function pooledGradient2x2(
  plane: usize,
  masked: usize,
  y: usize,
  gradient: usize,
  indices: usize,
  inHeight: i32,
  inWidth: i32,
  outHeight: i32,
  outWidth: i32,
): bool {
  const spatial = inHeight * inWidth;
  // Elements that no window covers (an odd last row or column) are +0.
  if ((inHeight | inWidth) & 1) zeroFloats(plane, spatial);
  const end = groupEnd(inWidth, outWidth);
  for (let oy = 0; oy < outHeight; oy++) {
    const row = 2 * oy * inWidth;
    const o = <usize>(oy * outWidth) * 4;
    let ox = 0;
    for (; ox < end; ox += 4) {
      // The last group overlaps the one before; the windows it repeats get the same values.
      const start = min(ox, end - 4);
      const at = o + <usize>start * 4;
      const first = row + 2 * start;
      const index = v128.load(indices + at);
      const at00 = argmaxAt(index, first, 0);
      const at01 = argmaxAt(index, first, 1);
      const at10 = argmaxAt(index, first, inWidth);
      const at11 = argmaxAt(index, first, inWidth + 1);
      if (!allInside(at00, at01, at10, at11)) {
        pooledGradientAnywhere(plane, y, gradient, indices, spatial, outHeight * outWidth);
        return false;
      }
      const value = maskedFour(y, gradient + at, first, inWidth, at00, at01, at10, at11);
      v128.store(masked + at, value);
      spreadFour(plane, value, first, inWidth, at00, at01, at10, at11);
    }
    for (ox = max(ox, end); ox < outWidth; ox++) {
      const at = o + <usize>ox * 4;
      const first = row + 2 * ox;
      const index = load<i32>(indices + at);
      if (!insideWindow(index, first, inWidth)) {
        pooledGradientAnywhere(plane, y, gradient, indices, spatial, outHeight * outWidth);
        return false;
      }
      const value: f32 = load<f32>(y + <usize>index * 4) > 0 ? <f32>0 + load<f32>(gradient + at) : 0;
      store<f32>(masked + at, value);
      store<f32>(plane + <usize>first * 4, index == first ? value : 0);
      store<f32>(plane + <usize>(first + 1) * 4, index == first + 1 ? value : 0);
      store<f32>(plane + <usize>(first + inWidth) * 4, index == first + inWidth ? value : 0);
      store<f32>(plane + <usize>(first + inWidth + 1) * 4, index == first + inWidth + 1 ? value : 0);
    }
  }
  return true;
}

/** inputGradientRun's value for one element of x at `at` with output gradient g. */
function inputGradientElement(
  x: usize,
  gradX: usize,
  at: i32,
  g: f32,
  head: f32,
  tail: f32,
  c0: f32,
  c1: f32,
  c2: f32,
): void {
  const offset = <usize>at * 4;
  const d = load<f32>(x + offset) - head - tail;
  store<f32>(gradX + offset, c1 * g - c0 - c2 * d);
}

/** inputGradientRun over the eight floats from `at` of one row, with output gradients g (low, high). */
function inputGradientEight(
  x: usize,
  gradX: usize,
  at: usize,
  low: v128,
  high: v128,
  head: v128,
  tail: v128,
  a0: v128,
  a1: v128,
  a2: v128,
): void {
  const d = f32x4.sub(f32x4.sub(v128.load(x + at), head), tail);
  v128.store(gradX + at, f32x4.sub(f32x4.sub(f32x4.mul(a1, low), a0), f32x4.mul(a2, d)));
  const e = f32x4.sub(f32x4.sub(v128.load(x + at, 16), head), tail);
  v128.store(gradX + at, f32x4.sub(f32x4.sub(f32x4.mul(a1, high), a0), f32x4.mul(a2, e)), 16);
}

/**
 * One sample plane's input gradient (inputGradientRun's values, with center, k0, k1, k2) from the
 * masked pooled values that pooledGradient2x2 left in `masked`, four windows at a time, without
 * building the plane's output gradient: each element's value depends on its own gradient only. False
 * (having written part of gradX) where pooledGradient2x2 returned false.
 */
function pooledInputGradient2x2(
  x: usize,
  gradX: usize,
  masked: usize,
  indices: usize,
  inHeight: i32,
  inWidth: i32,
  outHeight: i32,
  outWidth: i32,
  center: f64,
  k0: f64,
  k1: f64,
  k2: f64,
): bool {
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
  const end = groupEnd(inWidth, outWidth);
  for (let oy = 0; oy < outHeight; oy++) {
    const row = 2 * oy * inWidth;
    const o = <usize>(oy * outWidth) * 4;
    let ox = 0;
    for (; ox < end; ox += 4) {
      const start = min(ox, end - 4);
      const at = o + <usize>start * 4;
      const first = row + 2 * start;
      const index = v128.load(indices + at);
      const at00 = argmaxAt(index, first, 0);
      const at01 = argmaxAt(index, first, 1);
      const at10 = argmaxAt(index, first, inWidth);
      const at11 = argmaxAt(index, first, inWidth + 1);
      if (!allInside(at00, at01, at10, at11)) return false;
      const value = v128.load(masked + at);
      const g00 = v128.and(value, at00);
      const g01 = v128.and(value, at01);
      const g10 = v128.and(value, at10);
      const g11 = v128.and(value, at11);
      const top = <usize>first * 4;
      const bottom = top + <usize>inWidth * 4;
      inputGradientEight(
        x,
        gradX,
        top,
        f32x4.shuffle(g00, g01, 0, 4, 1, 5),
        f32x4.shuffle(g00, g01, 2, 6, 3, 7),
        headVector,
        tailVector,
        a0,
        a1,
        a2,
      );
      inputGradientEight(
        x,
        gradX,
        bottom,
        f32x4.shuffle(g10, g11, 0, 4, 1, 5),
        f32x4.shuffle(g10, g11, 2, 6, 3, 7),
        headVector,
        tailVector,
        a0,
        a1,
        a2,
      );
    }
    for (ox = max(ox, end); ox < outWidth; ox++) {
      const at = o + <usize>ox * 4;
      const first = row + 2 * ox;
      const index = load<i32>(indices + at);
      if (!insideWindow(index, first, inWidth)) return false;
      const value = load<f32>(masked + at);
      inputGradientElement(x, gradX, first, index == first ? value : 0, head, tail, c0, c1, c2);
      inputGradientElement(x, gradX, first + 1, index == first + 1 ? value : 0, head, tail, c0, c1, c2);
      const below = first + inWidth;
      inputGradientElement(x, gradX, below, index == below ? value : 0, head, tail, c0, c1, c2);
      inputGradientElement(x, gradX, below + 1, index == below + 1 ? value : 0, head, tail, c0, c1, c2);
    }
    // An odd last column: no window's, gradient +0.
    if (inWidth & 1) {
      inputGradientElement(x, gradX, row + inWidth - 1, 0, head, tail, c0, c1, c2);
      inputGradientElement(x, gradX, row + 2 * inWidth - 1, 0, head, tail, c0, c1, c2);
    }
  }
  // An odd last row: likewise.
  if (inHeight & 1) {
    const row = (inHeight - 1) * inWidth;
    for (let i = 0; i < inWidth; i++) inputGradientElement(x, gradX, row + i, 0, head, tail, c0, c1, c2);
  }
  return true;
}

/**
 * Backward of batch norm + ReLU + 2×2 stride-2 max pooling for planes [planeStart, planeEnd): with
 * `sums`, batchNormGradientSumsPlanes' table from each plane's output gradient (maxPool2dBackward's
 * of the pooled gradOut and argmax [planes, outHeight, outWidth], masked by y > 0), built in
 * `scratch` (inHeight·inWidth floats, this thread's, in L1 cache) rather than in a full-size tensor
 * written to memory and read back twice, and each window's masked value in `masked` [planes,
 * outHeight, outWidth]; without, batchNormInputGradientPlanes' gradX from `masked` and the
 * coefficients. The same bits as maxPool2dBackward followed by the fused batch norm + ReLU backward.
 */
export function batchNormReluMaxPoolBackwardPlanes(
  x: usize,
  y: usize,
  gradOut: usize,
  argmax: usize,
  mean: usize,
  table: usize,
  masked: usize,
  gradX: usize,
  coefficients: usize,
  channels: i32,
  inHeight: i32,
  inWidth: i32,
  outHeight: i32,
  outWidth: i32,
  planeStart: i32,
  planeEnd: i32,
  scratch: usize,
  sums: bool,
): void {
  const spatial = inHeight * inWidth;
  const pooled = outHeight * outWidth;
  for (let q = planeStart; q < planeEnd; q++) {
    const at = <usize>q * <usize>spatial * 4;
    const pooledAt = <usize>q * <usize>pooled * 4;
    const c = q % channels;
    if (sums) {
      pooledGradient2x2(
        scratch,
        masked + pooledAt,
        y + at,
        gradOut + pooledAt,
        argmax + pooledAt,
        inHeight,
        inWidth,
        outHeight,
        outWidth,
      );
      const center = <f64>load<f32>(mean + <usize>c * 4);
      v128.store(table + <usize>q * 16, gradientSumsRun(x + at, scratch, 0, spatial, center));
      continue;
    }
    const k = coefficients + <usize>c * 32;
    const center = load<f64>(k);
    const k0 = load<f64>(k, 8);
    const k1 = load<f64>(k, 16);
    const k2 = load<f64>(k, 24);
    const done = pooledInputGradient2x2(
      x + at,
      gradX + at,
      masked + pooledAt,
      argmax + pooledAt,
      inHeight,
      inWidth,
      outHeight,
      outWidth,
      center,
      k0,
      k1,
      k2,
    );
    if (!done) {
      pooledGradientAnywhere(scratch, y + at, gradOut + pooledAt, argmax + pooledAt, spatial, pooled);
      inputGradientRun(x + at, scratch, 0, gradX + at, spatial, center, k0, k1, k2);
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
