/**
 * Fused optimizer steps (Backend.adamUpdate, Backend.sgdUpdate) over float32 arrays in linear memory.
 *
 * Each element is computed in float64 and rounded once to float32 on store, in the reference
 * backend's order of operations (src/backend/reference/index.ts), so results are the reference's
 * bits: WebAssembly's f64 arithmetic and square root are IEEE-exact and it has no fused multiply-add.
 * The moment buffers are rounded before the parameter update reads them, as the reference reads its
 * stored m[i] and v[i]. Four elements per iteration as two f64x2 halves.
 */

/** The low (lanes 0, 1) and high (lanes 2, 3) float32 pairs of v, widened to float64. */
function low(v: v128): v128 {
  return f64x2.promote_low_f32x4(v);
}
function high(v: v128): v128 {
  return f64x2.promote_low_f32x4(f32x4.shuffle(v, v, 2, 3, 2, 3));
}
/** Two float64 pairs rounded to float32 and packed back into four lanes. */
function pack(lowPair: v128, highPair: v128): v128 {
  return f32x4.shuffle(f32x4.demote_f64x2_zero(lowPair), f32x4.demote_f64x2_zero(highPair), 0, 1, 4, 5);
}

/**
 * One Adam/AdamW step over elements [start, end) of parameter, gradient, m and v (float32 arrays at
 * those byte addresses). decoupled selects AdamW's decay θ·(1 − lr·λ) instead of the L2 term λ·θ.
 */
export function adamUpdate(
  parameter: usize,
  gradient: usize,
  m: usize,
  v: usize,
  start: i32,
  end: i32,
  lr: f64,
  beta1: f64,
  beta2: f64,
  eps: f64,
  weightDecay: f64,
  decoupled: bool,
  biasCorrection1: f64,
  biasCorrection2: f64,
): void {
  const stepSize = lr / biasCorrection1;
  const correction2Root = Math.sqrt(biasCorrection2);
  const l2 = decoupled ? 0 : weightDecay;
  const decay = decoupled ? 1 - lr * weightDecay : 1;
  const stepSizes = f64x2.splat(stepSize);
  const roots = f64x2.splat(correction2Root);
  const epsilons = f64x2.splat(eps);
  const decays = f64x2.splat(decay);
  const l2s = f64x2.splat(l2);
  const beta1s = f64x2.splat(beta1);
  const oneMinusBeta1s = f64x2.splat(1 - beta1);
  const beta2s = f64x2.splat(beta2);
  const oneMinusBeta2s = f64x2.splat(1 - beta2);
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const offset = <usize>i * 4;
    const thetas = v128.load(parameter + offset);
    const gradients = v128.load(gradient + offset);
    const ms = v128.load(m + offset);
    const vs = v128.load(v + offset);
    // Low pair.
    const decayedLow = f64x2.mul(low(thetas), decays);
    const gLow = f64x2.add(low(gradients), f64x2.mul(l2s, low(thetas)));
    const mLow = f64x2.add(f64x2.mul(beta1s, low(ms)), f64x2.mul(oneMinusBeta1s, gLow));
    const vLow = f64x2.add(f64x2.mul(beta2s, low(vs)), f64x2.mul(f64x2.mul(oneMinusBeta2s, gLow), gLow));
    // High pair.
    const decayedHigh = f64x2.mul(high(thetas), decays);
    const gHigh = f64x2.add(high(gradients), f64x2.mul(l2s, high(thetas)));
    const mHigh = f64x2.add(f64x2.mul(beta1s, high(ms)), f64x2.mul(oneMinusBeta1s, gHigh));
    const vHigh = f64x2.add(f64x2.mul(beta2s, high(vs)), f64x2.mul(f64x2.mul(oneMinusBeta2s, gHigh), gHigh));
    // Round the moments to float32 first: the update uses the stored values.
    const mRounded = pack(mLow, mHigh);
    const vRounded = pack(vLow, vHigh);
    v128.store(m + offset, mRounded);
    v128.store(v + offset, vRounded);
    const denominatorLow = f64x2.add(f64x2.div(f64x2.sqrt(low(vRounded)), roots), epsilons);
    const denominatorHigh = f64x2.add(f64x2.div(f64x2.sqrt(high(vRounded)), roots), epsilons);
    const thetaLow = f64x2.sub(decayedLow, f64x2.div(f64x2.mul(stepSizes, low(mRounded)), denominatorLow));
    const thetaHigh = f64x2.sub(
      decayedHigh,
      f64x2.div(f64x2.mul(stepSizes, high(mRounded)), denominatorHigh),
    );
    v128.store(parameter + offset, pack(thetaLow, thetaHigh));
  }
  for (; i < end; i++) {
    const offset = <usize>i * 4;
    const theta = <f64>load<f32>(parameter + offset);
    const decayed = theta * decay;
    const g = <f64>load<f32>(gradient + offset) + l2 * theta;
    const mNew = <f32>(beta1 * <f64>load<f32>(m + offset) + (1 - beta1) * g);
    const vNew = <f32>(beta2 * <f64>load<f32>(v + offset) + (1 - beta2) * g * g);
    store<f32>(m + offset, mNew);
    store<f32>(v + offset, vNew);
    store<f32>(
      parameter + offset,
      <f32>(decayed - (stepSize * <f64>mNew) / (Math.sqrt(<f64>vNew) / correction2Root + eps)),
    );
  }
}

/**
 * One SGD step over elements [start, end). buffer is the momentum buffer's address, used only when
 * hasMomentum; on the first step it is set to the gradient.
 */
export function sgdUpdate(
  parameter: usize,
  gradient: usize,
  buffer: usize,
  hasMomentum: bool,
  start: i32,
  end: i32,
  lr: f64,
  momentum: f64,
  dampening: f64,
  nesterov: bool,
  weightDecay: f64,
  firstStep: bool,
): void {
  let i = start;
  if (hasMomentum) {
    // Four elements a step as two f64x2 halves, each lane the scalar loop's operations (the scalar
    // loop, one element at a time with its branches inside, took 2.5 ns an element).
    const decay = f64x2.splat(weightDecay);
    const mu = f64x2.splat(momentum);
    const keep = f64x2.splat(1 - dampening);
    const rate = f64x2.splat(lr);
    for (; i + 4 <= end; i += 4) {
      const offset = <usize>i * 4;
      const theta = v128.load(parameter + offset);
      const grad = v128.load(gradient + offset);
      const thetaLow = low(theta);
      const thetaHigh = high(theta);
      let gLow = f64x2.add(low(grad), f64x2.mul(decay, thetaLow));
      let gHigh = f64x2.add(high(grad), f64x2.mul(decay, thetaHigh));
      let b: v128;
      if (firstStep) b = pack(gLow, gHigh);
      else {
        const old = v128.load(buffer + offset);
        b = pack(
          f64x2.add(f64x2.mul(mu, low(old)), f64x2.mul(keep, gLow)),
          f64x2.add(f64x2.mul(mu, high(old)), f64x2.mul(keep, gHigh)),
        );
      }
      v128.store(buffer + offset, b);
      if (nesterov) {
        gLow = f64x2.add(gLow, f64x2.mul(mu, low(b)));
        gHigh = f64x2.add(gHigh, f64x2.mul(mu, high(b)));
      } else {
        gLow = low(b);
        gHigh = high(b);
      }
      v128.store(
        parameter + offset,
        pack(f64x2.sub(thetaLow, f64x2.mul(rate, gLow)), f64x2.sub(thetaHigh, f64x2.mul(rate, gHigh))),
      );
    }
  }
  for (; i < end; i++) {
    const offset = <usize>i * 4;
    const theta = <f64>load<f32>(parameter + offset);
    let g = <f64>load<f32>(gradient + offset) + weightDecay * theta;
    if (hasMomentum) {
      const b = firstStep ? <f32>g : <f32>(momentum * <f64>load<f32>(buffer + offset) + (1 - dampening) * g);
      store<f32>(buffer + offset, b);
      g = nesterov ? g + momentum * <f64>b : <f64>b;
    }
    store<f32>(parameter + offset, <f32>(theta - lr * g));
  }
}
