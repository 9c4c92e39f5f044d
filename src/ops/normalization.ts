/** Batch normalization (PyTorch semantics: momentum 0.1 means new = 0.9·old + 0.1·batch). */
import { record } from '../autograd/graph.js';
import { getBackend } from '../backend/index.js';
import type { BatchNormGeometry, Data } from '../backend/types.js';
import { formatShape, ShapeError } from '../tensor/shape.js';
import { allocationCount, releaseInternal } from '../tensor/memory.js';
import { allocate, allocateUninitialized, Tensor } from '../tensor/tensor.js';
import { poolGeometry } from './pooling.js';

export interface BatchNormOptions {
  /** Batch statistics (true) or running statistics (false). */
  training: boolean;
  /** Weight of the new batch statistic in the running average (PyTorch's meaning). */
  momentum?: number;
  eps?: number;
  /** Whether training mode updates runningMean/runningVar in place (false: use batch stats only). */
  updateRunningStatistics?: boolean;
  /**
   * Apply ReLU to the result: relu(batchNorm(x)) as one op, which fast backends compute in one pass
   * over memory and without the intermediate tensor. Same values and gradients as the two ops.
   */
  relu?: boolean;
}

function geometryOf(x: Tensor, channels: number, what: string): BatchNormGeometry {
  if ((x.rank !== 2 && x.rank !== 4) || x.shape[1] !== channels) {
    throw new ShapeError(
      `${what}: expected input [batch, ${channels}] or [batch, ${channels}, height, width], got ${formatShape(x.shape)}`,
    );
  }
  return { batch: x.shape[0]!, channels, spatial: x.rank === 4 ? x.shape[2]! * x.shape[3]! : 1 };
}

/**
 * y = γ·(x − μ)/√(σ² + ε) + β per channel. x: [N, C] or [N, C, H, W]; gamma, beta, running stats: [C].
 * In training the batch mean and biased variance normalise, and the running statistics move toward
 * the batch mean and the unbiased variance. In inference the running statistics normalise. With
 * options.relu the result is max(y, 0), batch norm and ReLU as one op.
 */
export function batchNorm(
  x: Tensor,
  runningMean: Tensor,
  runningVar: Tensor,
  gamma: Tensor | null,
  beta: Tensor | null,
  options: BatchNormOptions,
  what = 'batchNorm',
): Tensor {
  const channels = runningMean.size;
  const g = geometryOf(x, channels, what);
  const eps = options.eps ?? 1e-5;
  const relu = options.relu ?? false;
  const backend = getBackend();
  const gammaData = gamma?.data ?? allocate(x.dtype, channels).fill(1);
  const betaData = beta?.data ?? allocate(x.dtype, channels);
  const out = allocateUninitialized(x.dtype, x.size);
  const parameterInputs = [gamma, beta].filter((t): t is Tensor => t !== null);
  const inputs = [x, ...parameterInputs];

  if (!options.training) {
    // Inference: a per-channel affine map with scale γ/√(var+ε) and shift β − μ·scale.
    const scale = allocate(x.dtype, channels);
    const shift = allocate(x.dtype, channels);
    for (let c = 0; c < channels; c++) {
      scale[c] = gammaData[c]! / Math.sqrt(runningVar.data[c]! + eps);
      shift[c] = betaData[c]! - runningMean.data[c]! * scale[c]!;
    }
    if (relu) backend.channelAffineRelu(x.data, scale, shift, out, g);
    else backend.channelAffine(x.data, scale, shift, out, g);
    return record(new Tensor(out, x.shape), what, inputs, (outputGradient, needs) => {
      // With ReLU, the affine map's output gradient is outputGradient where out > 0.
      let gradOut = outputGradient;
      if (relu) {
        gradOut = allocateUninitialized(x.dtype, x.size);
        backend.activationBackward('relu', out, out, outputGradient, gradOut, 0);
      }
      const grads: (Data | null)[] = [];
      if (needs[0]) {
        const zero = allocate(x.dtype, channels);
        const gradX = allocateUninitialized(x.dtype, x.size);
        backend.channelAffine(gradOut, scale, zero, gradX, g);
        grads.push(gradX);
      } else grads.push(null);
      if (gamma !== null && !needs[1]) grads.push(null);
      else if (gamma !== null) {
        // ∂L/∂γ = Σ g·x̂ with x̂ from the running statistics.
        const xhat = allocateUninitialized(x.dtype, x.size);
        const invStd = scale.map((_, c) => 1 / Math.sqrt(runningVar.data[c]! + eps));
        const negMean = invStd.map((inv, c) => -runningMean.data[c]! * inv);
        backend.channelAffine(x.data, invStd, negMean, xhat, g);
        for (let i = 0; i < xhat.length; i++) xhat[i] = xhat[i]! * gradOut[i]!;
        const gradGamma = allocate(x.dtype, channels);
        backend.channelSum(xhat, gradGamma, g);
        grads.push(gradGamma);
      }
      const betaIndex = gamma !== null ? 2 : 1;
      if (beta !== null && !needs[betaIndex]) grads.push(null);
      else if (beta !== null) {
        const gradBeta = allocate(x.dtype, channels);
        backend.channelSum(gradOut, gradBeta, g);
        grads.push(gradBeta);
      }
      return grads;
    });
  }

  const count = trainingCount(x, g, what);
  const mean = allocate(x.dtype, channels);
  const invStd = allocate(x.dtype, channels);
  if (relu) backend.batchNormReluTrainForward(x.data, gammaData, betaData, out, mean, invStd, eps, g);
  else backend.batchNormTrainForward(x.data, gammaData, betaData, out, mean, invStd, eps, g);
  updateRunning(runningMean, runningVar, mean, invStd, eps, count, options);
  return record(new Tensor(out, x.shape), what, inputs, (gradOut) => {
    const gradX = allocateUninitialized(x.dtype, x.size);
    const gradGamma = allocate(x.dtype, channels);
    const gradBeta = allocate(x.dtype, channels);
    if (relu) {
      backend.batchNormReluTrainBackward(
        x.data,
        out,
        gradOut,
        gammaData,
        betaData,
        mean,
        invStd,
        gradX,
        gradGamma,
        gradBeta,
        g,
      );
    } else {
      backend.batchNormTrainBackward(x.data, gradOut, gammaData, mean, invStd, gradX, gradGamma, gradBeta, g);
    }
    const grads: Data[] = [gradX];
    if (gamma !== null) grads.push(gradGamma);
    if (beta !== null) grads.push(gradBeta);
    return grads;
  });
}

/** Values per channel in training: more than one, or the variance means nothing. */
function trainingCount(x: Tensor, g: BatchNormGeometry, what: string): number {
  const count = g.batch * g.spatial;
  if (count < 2) {
    throw new ShapeError(
      `${what}: training needs more than one value per channel, got input ${formatShape(x.shape)}`,
    );
  }
  return count;
}

/** Moves the running statistics toward the batch's (unless options say not to), as PyTorch does. */
function updateRunning(
  runningMean: Tensor,
  runningVar: Tensor,
  mean: Data,
  invStd: Data,
  eps: number,
  count: number,
  options: { momentum?: number; updateRunningStatistics?: boolean },
): void {
  if (!(options.updateRunningStatistics ?? true)) return;
  const momentum = options.momentum ?? 0.1;
  for (let c = 0; c < runningMean.size; c++) {
    const biasedVariance = 1 / (invStd[c]! * invStd[c]!) - eps;
    const unbiasedVariance = (biasedVariance * count) / (count - 1);
    runningMean.data[c] = (1 - momentum) * runningMean.data[c]! + momentum * mean[c]!;
    runningVar.data[c] = (1 - momentum) * runningVar.data[c]! + momentum * unbiasedVariance;
  }
}

/**
 * maxPool2d(relu(batchNorm(x)), 2×2, stride 2) in training as one op: batch norm with the batch's
 * statistics (the running ones updated as batchNorm updates them), ReLU, then 2×2 max pooling with
 * stride 2 and no padding, windows past the last whole one dropped. Fast backends normalise and
 * pool each plane while it is in cache and never write the full-size activation, forward or
 * backward; the values and gradients have the bits of the three ops one after another.
 * x: [N, C, H, W]; gamma, beta, running stats: [C]. Returns [N, C, floor(H / 2), floor(W / 2)].
 */
export function batchNormReluMaxPool2d(
  x: Tensor,
  runningMean: Tensor,
  runningVar: Tensor,
  gamma: Tensor | null,
  beta: Tensor | null,
  options: Omit<BatchNormOptions, 'training' | 'relu'>,
  what = 'BatchNorm+ReLU+MaxPool2d',
): Tensor {
  const channels = runningMean.size;
  const g = geometryOf(x, channels, what);
  const pool = poolGeometry(x.shape, { kernelSize: 2 }, what);
  const count = trainingCount(x, g, what);
  const eps = options.eps ?? 1e-5;
  const backend = getBackend();
  const gammaData = gamma?.data ?? allocate(x.dtype, channels).fill(1);
  const betaData = beta?.data ?? allocate(x.dtype, channels);
  const pooledSize = g.batch * channels * pool.outHeight * pool.outWidth;
  const out = allocateUninitialized(x.dtype, pooledSize);
  const mean = allocate(x.dtype, channels);
  const invStd = allocate(x.dtype, channels);
  // The batch norm's output, for backends that compose the kernels or read the ReLU's mask there (a
  // fused one may leave it unwritten); nothing but this op sees it, so its memory is given back once
  // the backward has run.
  const since = allocationCount();
  const y = allocateUninitialized(x.dtype, x.size);
  // The pooling's argmax likewise, as the integers of a float32 array from the backend's storage
  // where it has one: the wasm backend then neither copies it out after the forward nor in for the
  // backward (1.6 MB each way at 64×32×28²), and no fresh array is zeroed each step.
  const argmaxData = allocateUninitialized('float32', pooledSize);
  const argmax = new Int32Array(argmaxData.buffer, argmaxData.byteOffset, pooledSize);
  backend.batchNormReluMaxPoolTrainForward(
    x.data,
    gammaData,
    betaData,
    y,
    out,
    argmax,
    mean,
    invStd,
    eps,
    pool,
  );
  updateRunning(runningMean, runningVar, mean, invStd, eps, count, options);
  const inputs = [x, ...[gamma, beta].filter((t): t is Tensor => t !== null)];
  const shape = [g.batch, channels, pool.outHeight, pool.outWidth];
  return record(new Tensor(out, shape), what, inputs, (gradOut) => {
    const gradX = allocateUninitialized(x.dtype, x.size);
    const gradGamma = allocate(x.dtype, channels);
    const gradBeta = allocate(x.dtype, channels);
    backend.batchNormReluMaxPoolTrainBackward(
      x.data,
      y,
      gradOut,
      argmax,
      gammaData,
      betaData,
      mean,
      invStd,
      gradX,
      gradGamma,
      gradBeta,
      pool,
    );
    releaseInternal(y, since);
    releaseInternal(argmaxData, since);
    const grads: Data[] = [gradX];
    if (gamma !== null) grads.push(gradGamma);
    if (beta !== null) grads.push(gradBeta);
    return grads;
  });
}
