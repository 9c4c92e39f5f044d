/**
 * Loss functions with PyTorch's semantics and defaults.
 *
 * Cross-entropy and binary cross-entropy with logits are fused ops with a hand-written backward rule:
 * their stable forms need log1p and a branch on the sign of the logit, which the composed ops could
 * only imitate (log(1 + exp(−|x|)) loses the small terms, and the kink of |x| at 0 would then have to
 * be patched by tie-splitting conventions); the fused rule is exact and costs one pass. L1, Huber and
 * smooth L1 are composed from elementwise ops, so their gradients come from the rules those ops
 * already have (the subgradient of |d| at 0 is 0, as in PyTorch).
 */
import { record } from '../autograd/graph.js';
import { getBackend } from '../backend/index.js';
import type { Data } from '../backend/types.js';
import { formatShape, shapesEqual, ShapeError } from '../tensor/shape.js';
import { allocate, allocateUninitialized, Tensor } from '../tensor/tensor.js';
import { abs, checkSameDtype, minimum, scaleShift, square, sub, add } from './elementwise.js';
import { mean, sum } from './reduce.js';

/**
 * How per-element (or per-row) losses become the result, as PyTorch's `reduction`: 'mean' (a
 * scalar, shape []), 'sum' (a scalar) or 'none' (the unreduced losses).
 */
export type Reduction = 'mean' | 'sum' | 'none';

/** Class indices, one per row: an Int32Array, an array of numbers, or a rank-1 tensor of integers. */
export type ClassIndices = Int32Array | readonly number[] | Tensor;

/** Per-class numbers (weights): a rank-1 tensor or an array of length C. */
export type PerClassValues = Tensor | Float32Array | Float64Array | readonly number[];

export interface CrossEntropyOptions {
  /** Mix the target with the uniform distribution: (1−s)·target + s/C (PyTorch's label_smoothing). */
  labelSmoothing?: number;
  /**
   * A weight per class (PyTorch's `weight`), shape [C]. Each row's loss is scaled by its class's
   * weight (by every class's weight, for the smoothing term), and with 'mean' the sum is divided by
   * the summed weights of the rows' target classes, not by the number of rows.
   */
  classWeights?: PerClassValues;
  /** Rows whose target is this class index add nothing and are not counted (default −100, PyTorch's). */
  ignoreIndex?: number;
  /** Default 'mean'. */
  reduction?: Reduction;
}

function checkReduction(reduction: string, what: string): Reduction {
  if (reduction !== 'mean' && reduction !== 'sum' && reduction !== 'none')
    throw new RangeError(`${what}: reduction must be 'mean', 'sum' or 'none', got '${reduction}'`);
  return reduction;
}

function checkSameShape(output: Tensor, target: Tensor, what: string): void {
  if (!shapesEqual(output.shape, target.shape)) {
    throw new ShapeError(
      `${what}: output ${formatShape(output.shape)} and target ${formatShape(target.shape)} differ`,
    );
  }
}

/** Per-class values as numbers, checked to have length `classes`. */
function perClass(values: PerClassValues, classes: number, what: string, name: string): ArrayLike<number> {
  if (values instanceof Tensor) {
    if (values.rank !== 1 || values.shape[0] !== classes)
      throw new ShapeError(
        `${what}: ${name} has shape ${formatShape(values.shape)}, expected [${classes}] (one per class)`,
      );
    return values.data;
  }
  if (values.length !== classes)
    throw new ShapeError(`${what}: ${name} has ${values.length} values, expected ${classes} (one per class)`);
  return values;
}

/**
 * Softmax cross-entropy of logits [N, C] against class indices [N] or class probabilities [N, C],
 * with PyTorch's `F.cross_entropy` semantics.
 *
 * For index targets y, row i's loss is
 *   (1−s)·w[yᵢ]·(−log p[i, yᵢ]) + (s/C)·Σ_c w[c]·(−log p[i, c]),
 * zero for rows whose target is `ignoreIndex`; 'mean' divides the sum by Σ w[yᵢ] over the rows not
 * ignored (the number of such rows without weights), so a batch whose rows are all ignored gives NaN,
 * as in PyTorch. For probability targets q (a float tensor [N, C], e.g. soft labels), row i's loss is
 * −Σ_c w[c]·((1−s)·q[i, c] + s/C)·log p[i, c] and 'mean' divides by N. No gradient flows to targets.
 *
 * Shapes: logits [N, C]; result [] ('mean', 'sum') or [N] ('none').
 * Example: crossEntropy(tensor([[2, 0, 0]]), [0]).item() ≈ 0.2395.
 */
export function crossEntropy(
  logits: Tensor,
  targets: ClassIndices,
  options: CrossEntropyOptions = {},
): Tensor {
  if (logits.rank !== 2)
    throw new ShapeError(`crossEntropy: expected logits [batch, classes], got ${formatShape(logits.shape)}`);
  const [rows, classes] = logits.shape as [number, number];
  const reduction = checkReduction(options.reduction ?? 'mean', 'crossEntropy');
  const smoothing = options.labelSmoothing ?? 0;
  if (!(smoothing >= 0 && smoothing <= 1))
    throw new RangeError(`crossEntropy: labelSmoothing must be in [0, 1], got ${smoothing}`);
  const weights =
    options.classWeights === undefined
      ? null
      : perClass(options.classWeights, classes, 'crossEntropy', 'classWeights');
  const weightOf = (c: number): number => (weights === null ? 1 : weights[c]!);
  const ignoreIndex = options.ignoreIndex ?? -100;

  // Each row's loss is −Σ_c A[c]·log p[c] for coefficients A that depend on the target only; the
  // gradient is then (Σ_c A[c])·p − A. fillCoefficients writes row r's A and returns Σ_c A[c].
  const coefficients = new Float64Array(classes);
  let fillCoefficients: (row: number) => number;
  let denominator: number;
  const probabilityTargets = targets instanceof Tensor && targets.rank === 2;
  if (probabilityTargets) {
    const probabilities = targets;
    if (!shapesEqual(logits.shape, probabilities.shape)) {
      throw new ShapeError(
        `crossEntropy: output ${formatShape(logits.shape)} and target ${formatShape(probabilities.shape)} differ`,
      );
    }
    if (options.ignoreIndex !== undefined)
      throw new RangeError('crossEntropy: ignoreIndex applies to class-index targets, not probabilities');
    fillCoefficients = (row) => {
      let total = 0;
      for (let c = 0; c < classes; c++) {
        const smoothed = (1 - smoothing) * probabilities.data[row * classes + c]! + smoothing / classes;
        coefficients[c] = weightOf(c) * smoothed;
        total += coefficients[c]!;
      }
      return total;
    };
    denominator = rows;
  } else {
    const indices = classIndices(targets, 'crossEntropy');
    if (indices.length !== rows) {
      throw new ShapeError(`crossEntropy: ${rows} rows of logits but ${indices.length} targets`);
    }
    for (let r = 0; r < rows; r++) {
      const target = indices[r]!;
      if (target === ignoreIndex) continue;
      if (!Number.isInteger(target) || target < 0 || target >= classes) {
        throw new RangeError(
          `crossEntropy: target ${r} is ${target}, expected a class index in [0, ${classes - 1}]` +
            (options.ignoreIndex === undefined ? '' : ` or ignoreIndex ${ignoreIndex}`),
        );
      }
    }
    let smoothingTotal = 0;
    for (let c = 0; c < classes; c++) smoothingTotal += weightOf(c);
    smoothingTotal *= smoothing / classes;
    fillCoefficients = (row) => {
      const target = indices[row]!;
      if (target === ignoreIndex) {
        coefficients.fill(0);
        return 0;
      }
      for (let c = 0; c < classes; c++) coefficients[c] = (smoothing / classes) * weightOf(c);
      const targetWeight = (1 - smoothing) * weightOf(target);
      coefficients[target]! += targetWeight;
      return smoothingTotal + targetWeight;
    };
    denominator = 0;
    for (let r = 0; r < rows; r++) if (indices[r] !== ignoreIndex) denominator += weightOf(indices[r]!);
  }

  const logProbabilities = allocateUninitialized(logits.dtype, logits.size);
  getBackend().softmaxForward(logits.data, logProbabilities, rows, classes, true);
  const rowLosses = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    fillCoefficients(r);
    let loss = 0;
    for (let c = 0; c < classes; c++) {
      // A zero coefficient skips the term, so that −∞ log-probabilities of an ignored row add no NaN.
      if (coefficients[c] !== 0) loss -= coefficients[c]! * logProbabilities[r * classes + c]!;
    }
    rowLosses[r] = loss;
  }
  const { data, shape } = reduceRows(rowLosses, reduction, denominator, logits.dtype);
  return record(new Tensor(data, shape), 'crossEntropy', [logits], (gradOut) => {
    const gradLogits = allocateUninitialized(logits.dtype, logits.size);
    for (let r = 0; r < rows; r++) {
      const scale =
        reduction === 'none' ? gradOut[r]! : reduction === 'sum' ? gradOut[0]! : gradOut[0]! / denominator;
      const coefficientSum = fillCoefficients(r);
      for (let c = 0; c < classes; c++) {
        const probability = Math.exp(logProbabilities[r * classes + c]!);
        gradLogits[r * classes + c] = (coefficientSum * probability - coefficients[c]!) * scale;
      }
    }
    return [gradLogits];
  });
}

/** Class indices as numbers; a tensor must have rank 1 and hold integers (checked by the caller). */
function classIndices(targets: ClassIndices, what: string): ArrayLike<number> {
  if (!(targets instanceof Tensor)) return targets;
  if (targets.rank !== 1)
    throw new ShapeError(
      `${what}: class-index targets must have shape [batch], got ${formatShape(targets.shape)}`,
    );
  return targets.data;
}

/** The reduced result of per-row (or per-element) losses computed in float64. */
function reduceRows(
  losses: Float64Array,
  reduction: Reduction,
  denominator: number,
  dtype: Tensor['dtype'],
): { data: Data; shape: number[] } {
  if (reduction === 'none') {
    const data = allocate(dtype, losses.length);
    data.set(losses);
    return { data, shape: [losses.length] };
  }
  let total = 0;
  for (const loss of losses) total += loss;
  const data = allocate(dtype, 1);
  data[0] = reduction === 'sum' ? total : total / denominator;
  return { data, shape: [] };
}

export interface BinaryCrossEntropyOptions {
  /**
   * Weight of the positive term per class (PyTorch's pos_weight): a number, or C values for the last
   * axis. Above 1 it raises recall; PyTorch suggests (negatives / positives) of each class.
   */
  posWeight?: number | PerClassValues;
  /** Default 'mean' (over every element). */
  reduction?: Reduction;
}

/**
 * Binary cross-entropy of logits x against targets y in [0, 1] of the same shape (multi-hot labels
 * [N, C] for multi-label classification), PyTorch's `F.binary_cross_entropy_with_logits`:
 *   ℓ = −[p·y·log σ(x) + (1−y)·log(1 − σ(x))] = (1−y)·x + (1 + (p−1)·y)·softplus(−x),
 * with softplus(−x) = max(−x, 0) + log1p(exp(−|x|)), stable for any x. p is posWeight (1 by default).
 * The gradient is (1−y) − (1 + (p−1)·y)·σ(−x); no gradient flows to the target.
 *
 * Shapes: output and target alike (any shape; posWeight along the last axis); result [] or that shape.
 * Example: binaryCrossEntropyWithLogits(tensor([0]), tensor([1])).item() ≈ log 2.
 */
export function binaryCrossEntropyWithLogits(
  output: Tensor,
  target: Tensor,
  options: BinaryCrossEntropyOptions = {},
): Tensor {
  const what = 'binaryCrossEntropyWithLogits';
  checkSameShape(output, target, what);
  const reduction = checkReduction(options.reduction ?? 'mean', what);
  const lastAxis = output.rank === 0 ? 1 : output.shape[output.rank - 1]!;
  const posWeight = options.posWeight ?? 1;
  const positiveWeights =
    typeof posWeight === 'number' ? null : perClass(posWeight, lastAxis, what, 'posWeight');
  const scalarPosWeight = typeof posWeight === 'number' ? posWeight : 1;
  // The factor 1 + (p − 1)·y of softplus(−x), element i lying in class i mod C of the last axis.
  const logWeightAt = (i: number): number =>
    1 + ((positiveWeights === null ? scalarPosWeight : positiveWeights[i % lastAxis]!) - 1) * target.data[i]!;
  const losses = new Float64Array(output.size);
  for (let i = 0; i < output.size; i++) {
    const x = output.data[i]!;
    const softplusOfNegative = Math.max(-x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
    losses[i] = (1 - target.data[i]!) * x + logWeightAt(i) * softplusOfNegative;
  }
  const reduced = reduceRows(losses, reduction, output.size, output.dtype);
  const shape = reduction === 'none' ? output.shape : [];
  return record(new Tensor(reduced.data, shape), what, [output], (gradOut) => {
    const gradOutput = allocateUninitialized(output.dtype, output.size);
    const meanScale = reduction === 'mean' ? 1 / output.size : 1;
    for (let i = 0; i < output.size; i++) {
      const x = output.data[i]!;
      // σ(−x) without overflow: e^(−x)/(1+e^(−x)) for x ≥ 0, 1/(1+e^x) otherwise.
      const sigmoidOfNegative = x >= 0 ? Math.exp(-x) / (1 + Math.exp(-x)) : 1 / (1 + Math.exp(x));
      const upstream = reduction === 'none' ? gradOut[i]! : gradOut[0]! * meanScale;
      gradOutput[i] = (1 - target.data[i]! - logWeightAt(i) * sigmoidOfNegative) * upstream;
    }
    return [gradOutput];
  });
}

/** Applies a reduction to elementwise losses by the composed reductions (their gradients come free). */
function reduceElements(losses: Tensor, reduction: Reduction): Tensor {
  if (reduction === 'none') return losses;
  return reduction === 'sum' ? sum(losses) : mean(losses);
}

export interface RegressionLossOptions {
  /** Default 'mean'. */
  reduction?: Reduction;
}

function checkRegressionPair(output: Tensor, target: Tensor, what: string): void {
  checkSameDtype(output, target, what);
  checkSameShape(output, target, what);
}

/**
 * Mean absolute error |output − target| (PyTorch's `F.l1_loss`); the gradient at a zero difference
 * is 0. Shapes: output and target alike; result [] or that shape with reduction 'none'.
 * Example: l1Loss(tensor([1, 2]), tensor([0, 4])).item() = 1.5.
 */
export function l1Loss(output: Tensor, target: Tensor, options: RegressionLossOptions = {}): Tensor {
  checkRegressionPair(output, target, 'l1Loss');
  const reduction = checkReduction(options.reduction ?? 'mean', 'l1Loss');
  return reduceElements(abs(sub(output, target)), reduction);
}

export type MseLossOptions = RegressionLossOptions;

/**
 * Squared error (output − target)² (PyTorch's `F.mse_loss`), with a fused backward for the default
 * mean. Shapes: output and target alike; result [] or that shape with reduction 'none'.
 * Example: mseLoss(tensor([1, 2]), tensor([0, 4])).item() = 2.5.
 */
export function mseLoss(output: Tensor, target: Tensor, options: MseLossOptions = {}): Tensor {
  checkRegressionPair(output, target, 'mseLoss');
  const reduction = checkReduction(options.reduction ?? 'mean', 'mseLoss');
  if (reduction !== 'mean') return reduceElements(square(sub(output, target)), reduction);
  let total = 0;
  for (let i = 0; i < output.size; i++) total += (output.data[i]! - target.data[i]!) ** 2;
  const loss = allocate(output.dtype, 1);
  loss[0] = total / output.size;
  return record(new Tensor(loss, []), 'mseLoss', [output, target], (gradOut, needs) => {
    const scale = (2 * gradOut[0]!) / output.size;
    const gradOutput = allocate(output.dtype, output.size);
    for (let i = 0; i < output.size; i++) gradOutput[i] = (output.data[i]! - target.data[i]!) * scale;
    let gradTarget = null;
    if (needs[1]) {
      gradTarget = allocate(output.dtype, output.size);
      getBackend().scaleShift(gradOutput, -1, 0, gradTarget);
    }
    return [needs[0] ? gradOutput : null, gradTarget];
  });
}

export interface HuberLossOptions extends RegressionLossOptions {
  /** Where the loss turns from quadratic to linear (default 1, PyTorch's); must be positive. */
  delta?: number;
}

/**
 * Huber loss (PyTorch's `F.huber_loss`): with d = output − target,
 *   ½·d² for |d| ≤ δ, δ·(|d| − ½·δ) beyond,
 * composed as ½·m² + δ·(|d| − m) with m = min(|d|, δ), which has the same value and gradient
 * (clip(d, −δ, δ)) everywhere, the boundary included.
 * Shapes: output and target alike; result [] or that shape with reduction 'none'.
 * Example: huberLoss(tensor([0, 3]), tensor([0.5, 0])).item() = (0.125 + 2.5)/2.
 */
export function huberLoss(output: Tensor, target: Tensor, options: HuberLossOptions = {}): Tensor {
  checkRegressionPair(output, target, 'huberLoss');
  const reduction = checkReduction(options.reduction ?? 'mean', 'huberLoss');
  const delta = options.delta ?? 1;
  if (!(delta > 0 && Number.isFinite(delta)))
    throw new RangeError(`huberLoss: delta must be a positive number, got ${delta}`);
  return reduceElements(huberElements(output, target, delta), reduction);
}

function huberElements(output: Tensor, target: Tensor, delta: number): Tensor {
  const absolute = abs(sub(output, target));
  const threshold = allocate(output.dtype, 1);
  threshold[0] = delta;
  const clipped = minimum(absolute, new Tensor(threshold, []));
  return add(scaleShift(square(clipped), 0.5), scaleShift(sub(absolute, clipped), delta));
}

export interface SmoothL1LossOptions extends RegressionLossOptions {
  /** Width of the quadratic zone (default 1, PyTorch's); 0 gives the L1 loss. */
  beta?: number;
}

/**
 * Smooth L1 loss (PyTorch's `F.smooth_l1_loss`): with d = output − target,
 *   ½·d²/β for |d| < β, |d| − ½·β beyond,
 * which is the Huber loss with δ = β divided by β (and the L1 loss when β = 0). With β = 0 the
 * gradient at d = 0 is 0, as for l1Loss; PyTorch 1.13 gives −1 there (its kernel's d ≤ −β branch).
 * Shapes: output and target alike; result [] or that shape with reduction 'none'.
 * Example: smoothL1Loss(tensor([0, 3]), tensor([0.5, 0])).item() = (0.125 + 2.5)/2.
 */
export function smoothL1Loss(output: Tensor, target: Tensor, options: SmoothL1LossOptions = {}): Tensor {
  checkRegressionPair(output, target, 'smoothL1Loss');
  const reduction = checkReduction(options.reduction ?? 'mean', 'smoothL1Loss');
  const beta = options.beta ?? 1;
  if (!(beta >= 0 && Number.isFinite(beta)))
    throw new RangeError(`smoothL1Loss: beta must be a non-negative number, got ${beta}`);
  if (beta === 0) return reduceElements(abs(sub(output, target)), reduction);
  return reduceElements(scaleShift(huberElements(output, target, beta), 1 / beta), reduction);
}
