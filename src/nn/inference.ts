/**
 * The inference rewrite: a convolution followed by an inference-mode batch norm (and a ReLU, and in
 * a residual block the shortcut's add and ReLU) runs as one fused convolution, whose write-back
 * applies the batch norm's per-channel affine map, the add and the ReLU to each value while it is in
 * cache (ops/convolution.ts conv2dFused). That saves three to four passes over every activation
 * and the tensors in between: ResNet-18's inference spent about a seventh of its time in them.
 *
 * The batch norm is folded into the epilogue, not into the weights: w' = w·γ/√(var+ε) would round
 * differently from the unfused model, and would need a cache of folded weights that goes stale
 * when a training loop changes the parameters or the running statistics. Applied to the
 * convolution's output instead, the map costs one multiply-add per output (as the separate batch
 * norm did), nothing is cached, and the result has the same bits as running the layers one by one
 * (tested), so the rewrite never changes what a model computes.
 *
 * It applies only where nothing can tell the difference: the batch norm uses its running statistics
 * (eval mode, or frozen), no gradient is wanted (under noGrad, or nothing involved requires one),
 * the convolution has no bias of its own, and no layer involved has forward hooks (which must see
 * each layer's own output). Sequential applies it to Conv2d → BatchNorm (→ ReLU) runs of its layers
 * (fusion.ts) and ResNet's blocks to their own structure. setInferenceFusion(false) turns it off.
 */
import { isGradientEnabled } from '../autograd/graph.js';
import { conv2dFused } from '../ops/convolution.js';
import { allocate, type Tensor } from '../tensor/tensor.js';
import { BatchNorm } from './layers/batchnorm.js';
import type { Conv2d } from './layers/conv.js';
import type { Module } from './module.js';

let enabled = true;

/**
 * Turns the inference rewrite on (the default) or off for every model; it gives the same values
 * either way, so this is for measuring it or ruling it out.
 */
export function setInferenceFusion(on: boolean): void {
  enabled = on;
}

/** Whether the inference rewrite is on (see setInferenceFusion). */
export function inferenceFusionEnabled(): boolean {
  return enabled;
}

/** Whether conv → batchNorm has the structure the rewrite folds: no convolution bias, matching channels. */
export function foldableConvBatchNorm(conv: Conv2d, batchNorm: BatchNorm): boolean {
  return conv.bias === null && conv.outChannels === batchNorm.channels;
}

/**
 * Whether modules (the layers a fused convolution would stand for) may run fused now on input x
 * (and residual): the rewrite is on, no batch norm among them uses batch statistics, none has
 * forward hooks, and no gradient is wanted.
 */
export function inferenceFusionApplies(
  x: Tensor,
  modules: readonly Module[],
  residual: Tensor | null = null,
): boolean {
  if (!enabled) return false;
  for (const module of modules) {
    if (module.hasForwardHooks()) return false;
    if (module instanceof BatchNorm && module.usesBatchStatistics) return false;
  }
  if (!isGradientEnabled()) return true;
  if (x.requiresGrad || residual?.requiresGrad === true) return false;
  return !modules.some((module) => module.parameters().some((parameter) => parameter.requiresGrad));
}

/**
 * relu?(batchNorm(conv(x)) + residual) as one fused convolution, for inference (call only where
 * inferenceFusionApplies and foldableConvBatchNorm hold), with maxPool then 2×2 max pooling with
 * stride 2 (no residual). The batch norm's scale and shift are computed exactly as its own
 * inference forward computes them (ops/normalization.ts), so the result has the same bits as the
 * layers one by one.
 * x: [N, Cin, H, W]; residual: [N, Cout, Hout, Wout] or null. Returns [N, Cout, Hout, Wout], or
 * [N, Cout, floor(Hout / 2), floor(Wout / 2)] with maxPool.
 */
export function convBatchNormInference(
  x: Tensor,
  conv: Conv2d,
  batchNorm: BatchNorm,
  options: { relu: boolean; residual?: Tensor | null; maxPool?: boolean },
): Tensor {
  const channels = batchNorm.channels;
  const scale = allocate(x.dtype, channels);
  const shift = allocate(x.dtype, channels);
  const gamma = batchNorm.weight?.data;
  const beta = batchNorm.bias?.data;
  const mean = batchNorm.runningMean.data;
  const variance = batchNorm.runningVar.data;
  for (let c = 0; c < channels; c++) {
    scale[c] = (gamma === undefined ? 1 : gamma[c]!) / Math.sqrt(variance[c]! + batchNorm.eps);
    shift[c] = (beta === undefined ? 0 : beta[c]!) - mean[c]! * scale[c]!;
  }
  return conv2dFused(
    x,
    conv.weight,
    {
      scale,
      shift,
      residual: options.residual ?? null,
      relu: options.relu,
      maxPool: options.maxPool ?? false,
    },
    conv.convolution,
    'Conv2d',
  );
}
