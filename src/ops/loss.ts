/** Loss functions (mean reduction), with fused, numerically stable backward rules. */
import { record } from '../autograd/graph.js';
import { getBackend } from '../backend/index.js';
import { formatShape, shapesEqual, ShapeError } from '../tensor/shape.js';
import { allocate, allocateUninitialized, Tensor } from '../tensor/tensor.js';
import { checkSameDtype } from './elementwise.js';

export interface CrossEntropyOptions {
  /** Mix the one-hot target with the uniform distribution: (1−s)·onehot + s/C (PyTorch's label_smoothing). */
  labelSmoothing?: number;
}

/**
 * Mean softmax cross-entropy of logits [N, C] against integer class targets [N].
 * With label smoothing s, each row's loss is (1−s)·(−log p_target) + s·mean_c(−log p_c).
 */
export function crossEntropy(
  logits: Tensor,
  targets: Int32Array | readonly number[],
  options: CrossEntropyOptions = {},
): Tensor {
  if (logits.rank !== 2)
    throw new ShapeError(`crossEntropy: expected logits [batch, classes], got ${formatShape(logits.shape)}`);
  const [rows, classes] = logits.shape as [number, number];
  if (targets.length !== rows) {
    throw new ShapeError(`crossEntropy: ${rows} rows of logits but ${targets.length} targets`);
  }
  for (let r = 0; r < rows; r++) {
    const target = targets[r]!;
    if (!Number.isInteger(target) || target < 0 || target >= classes) {
      throw new RangeError(
        `crossEntropy: target ${r} is ${target}, expected a class index in [0, ${classes - 1}]`,
      );
    }
  }
  const smoothing = options.labelSmoothing ?? 0;
  if (!(smoothing >= 0 && smoothing <= 1))
    throw new RangeError(`crossEntropy: labelSmoothing must be in [0, 1], got ${smoothing}`);
  const logProbabilities = allocateUninitialized(logits.dtype, logits.size);
  getBackend().softmaxForward(logits.data, logProbabilities, rows, classes, true);
  let total = 0;
  for (let r = 0; r < rows; r++) {
    let rowMean = 0;
    for (let c = 0; c < classes; c++) rowMean += logProbabilities[r * classes + c]!;
    rowMean /= classes;
    total += -(1 - smoothing) * logProbabilities[r * classes + targets[r]!]! - smoothing * rowMean;
  }
  const loss = allocate(logits.dtype, 1);
  loss[0] = total / rows;
  return record(new Tensor(loss, []), 'crossEntropy', [logits], (gradOut) => {
    // ∂/∂logits = (softmax − smoothed target)/N.
    const scale = gradOut[0]! / rows;
    const gradLogits = allocateUninitialized(logits.dtype, logits.size);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < classes; c++) {
        const targetProbability = (c === targets[r] ? 1 - smoothing : 0) + smoothing / classes;
        gradLogits[r * classes + c] =
          (Math.exp(logProbabilities[r * classes + c]!) - targetProbability) * scale;
      }
    }
    return [gradLogits];
  });
}

/** Mean squared error between prediction and target of the same shape. */
export function mseLoss(prediction: Tensor, target: Tensor): Tensor {
  checkSameDtype(prediction, target, 'mseLoss');
  if (!shapesEqual(prediction.shape, target.shape)) {
    throw new ShapeError(
      `mseLoss: prediction ${formatShape(prediction.shape)} and target ${formatShape(target.shape)} differ`,
    );
  }
  let total = 0;
  for (let i = 0; i < prediction.size; i++) total += (prediction.data[i]! - target.data[i]!) ** 2;
  const loss = allocate(prediction.dtype, 1);
  loss[0] = total / prediction.size;
  return record(new Tensor(loss, []), 'mseLoss', [prediction, target], (gradOut, needs) => {
    const scale = (2 * gradOut[0]!) / prediction.size;
    const gradPrediction = allocate(prediction.dtype, prediction.size);
    for (let i = 0; i < prediction.size; i++)
      gradPrediction[i] = (prediction.data[i]! - target.data[i]!) * scale;
    let gradTarget = null;
    if (needs[1]) {
      gradTarget = allocate(prediction.dtype, prediction.size);
      getBackend().scaleShift(gradPrediction, -1, 0, gradTarget);
    }
    return [needs[0] ? gradPrediction : null, gradTarget];
  });
}
