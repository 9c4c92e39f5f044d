/** 2-D convolution over NCHW tensors with PyTorch's weight layout [out, in, kh, kw]. */
import { isGradientEnabled, record } from '../autograd/graph.js';
import { getBackend } from '../backend/index.js';
import type { Conv2dGeometry, Data } from '../backend/types.js';
import { formatShape, ShapeError, sizeOf } from '../tensor/shape.js';
import { allocate, allocateUninitialized, Tensor } from '../tensor/tensor.js';
import { checkSameDtype } from './elementwise.js';

export type Pair = number | readonly [number, number];
/** Padding as numbers, or 'valid' (none) / 'same' (output size = input size, stride 1 only). */
export type Padding = Pair | 'same' | 'valid';

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Padding;
  dilation?: Pair;
}

export function pair(value: Pair): [number, number] {
  return typeof value === 'number' ? [value, value] : [value[0], value[1]];
}

/**
 * Resolves a padding setting to [top, left] and the output size. 'same' pads (k-1)·d in total per
 * axis, the extra row/column at the bottom/right as PyTorch does for even kernels.
 */
export function convolutionGeometry(
  xShape: readonly number[],
  weightShape: readonly number[],
  options: Conv2dOptions,
  what: string,
): Conv2dGeometry {
  const [batch, inChannels, inHeight, inWidth] = xShape as [number, number, number, number];
  const [outChannels, weightInChannels, kernelHeight, kernelWidth] = weightShape as [
    number,
    number,
    number,
    number,
  ];
  if (xShape.length !== 4) {
    throw new ShapeError(
      `${what}: expected input [batch, ${weightInChannels}, height, width], got ${formatShape(xShape)}`,
    );
  }
  if (inChannels !== weightInChannels) {
    throw new ShapeError(
      `${what}: expected ${weightInChannels} input channels, got input of shape ${formatShape(xShape)} (${inChannels} channels)`,
    );
  }
  const [strideHeight, strideWidth] = pair(options.stride ?? 1);
  const [dilationHeight, dilationWidth] = pair(options.dilation ?? 1);
  const padding = options.padding ?? 0;
  let padTop: number;
  let padLeft: number;
  let padHeightTotal: number;
  let padWidthTotal: number;
  if (padding === 'same') {
    if (strideHeight !== 1 || strideWidth !== 1) {
      throw new ShapeError(
        `${what}: padding 'same' needs stride 1, got stride [${strideHeight}, ${strideWidth}]`,
      );
    }
    padHeightTotal = dilationHeight * (kernelHeight - 1);
    padWidthTotal = dilationWidth * (kernelWidth - 1);
    padTop = Math.floor(padHeightTotal / 2);
    padLeft = Math.floor(padWidthTotal / 2);
  } else {
    [padTop, padLeft] = padding === 'valid' ? [0, 0] : pair(padding);
    padHeightTotal = 2 * padTop;
    padWidthTotal = 2 * padLeft;
  }
  const outHeight =
    Math.floor((inHeight + padHeightTotal - dilationHeight * (kernelHeight - 1) - 1) / strideHeight) + 1;
  const outWidth =
    Math.floor((inWidth + padWidthTotal - dilationWidth * (kernelWidth - 1) - 1) / strideWidth) + 1;
  if (outHeight < 1 || outWidth < 1) {
    throw new ShapeError(
      `${what}: input ${inHeight}×${inWidth} is too small for a ${kernelHeight}×${kernelWidth} kernel (dilation ${dilationHeight}, padding ${padTop})`,
    );
  }
  return {
    batch,
    inChannels,
    inHeight,
    inWidth,
    outChannels,
    kernelHeight,
    kernelWidth,
    strideHeight,
    strideWidth,
    padTop,
    padLeft,
    dilationHeight,
    dilationWidth,
    outHeight,
    outWidth,
  };
}

/**
 * y = conv(x, weight) + bias.
 * x: [N, Cin, H, W]; weight: [Cout, Cin, kh, kw]; bias: [Cout] or null. Returns [N, Cout, Hout, Wout].
 */
export function conv2d(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null,
  options: Conv2dOptions = {},
  what = 'conv2d',
): Tensor {
  checkSameDtype(x, weight, what);
  if (weight.rank !== 4)
    throw new ShapeError(`${what}: weight must be [out, in, kh, kw], got ${formatShape(weight.shape)}`);
  const g = convolutionGeometry(x.shape, weight.shape, options, what);
  if (bias !== null && (bias.rank !== 1 || bias.shape[0] !== g.outChannels)) {
    throw new ShapeError(`${what}: bias must have shape [${g.outChannels}], got ${formatShape(bias.shape)}`);
  }
  const backend = getBackend();
  const outShape = [g.batch, g.outChannels, g.outHeight, g.outWidth];
  const out = allocateUninitialized(x.dtype, g.batch * g.outChannels * g.outHeight * g.outWidth);
  const channelGeometry = { batch: g.batch, channels: g.outChannels, spatial: g.outHeight * g.outWidth };
  if (bias !== null) {
    // The bias as the fused kernel's epilogue (x·1 + b, the bits of a separate channelAffine).
    const ones = allocate(x.dtype, g.outChannels).fill(1);
    backend.conv2dForwardFused(x.data, weight.data, ones, bias.data, null, out, g, false);
  } else {
    backend.conv2dForward(x.data, weight.data, out, g);
  }
  const inputs = bias === null ? [x, weight] : [x, weight, bias];
  return record(new Tensor(out, outShape), what, inputs, (gradOut, needs) => {
    const grads: (Data | null)[] = [null, null, null];
    if (needs[0]) {
      grads[0] = allocateUninitialized(x.dtype, x.size);
      backend.conv2dBackwardInput(gradOut, weight.data, grads[0], g);
    }
    if (needs[1]) {
      grads[1] = allocateUninitialized(x.dtype, weight.size);
      backend.conv2dBackwardWeight(x.data, gradOut, grads[1], g);
    }
    if (bias !== null && needs[2]) {
      grads[2] = allocate(x.dtype, g.outChannels);
      backend.channelSum(gradOut, grads[2], channelGeometry);
    }
    return grads.slice(0, inputs.length);
  });
}

/** What conv2dFused does to each output after the convolution (see Backend.conv2dForwardFused). */
export interface ConvolutionEpilogue {
  /** Per output channel [Cout]: v·scale[c] + shift[c] (a batch norm in inference mode, folded). */
  scale: Data;
  shift: Data;
  /** Added after the affine map: a residual block's shortcut, the output's shape. */
  residual?: Tensor | null;
  /** max(v, 0) after the add. */
  relu?: boolean;
  /**
   * Then 2×2 max pooling with stride 2 (no padding; a last odd row or column dropped, as
   * maxPool2d(x, { kernelSize: 2 }) does): the output is [N, Cout, floor(Hout / 2), floor(Wout / 2)],
   * with the bits of maxPool2d on the unpooled output. Not with a residual.
   */
  maxPool?: boolean;
}

/**
 * Inference-only convolution with an epilogue: relu?(conv(x, weight)·scale[c] + shift[c] + residual),
 * the same bits as conv2d followed by the per-channel affine map, add and relu, in one pass over
 * the output (and with maxPool, the 2×2 max pooling after them). It records no backward rule, so it
 * refuses to run when a gradient is wanted.
 * x: [N, Cin, H, W]; weight: [Cout, Cin, kh, kw]; residual: [N, Cout, Hout, Wout] or none.
 * Returns [N, Cout, Hout, Wout], or [N, Cout, floor(Hout / 2), floor(Wout / 2)] with maxPool.
 */
export function conv2dFused(
  x: Tensor,
  weight: Tensor,
  epilogue: ConvolutionEpilogue,
  options: Conv2dOptions = {},
  what = 'conv2d',
): Tensor {
  checkSameDtype(x, weight, what);
  const residual = epilogue.residual ?? null;
  if (isGradientEnabled() && (x.requiresGrad || weight.requiresGrad || residual?.requiresGrad === true)) {
    throw new Error(`${what}: the fused inference convolution has no gradient; call it under noGrad`);
  }
  if (weight.rank !== 4)
    throw new ShapeError(`${what}: weight must be [out, in, kh, kw], got ${formatShape(weight.shape)}`);
  const g = convolutionGeometry(x.shape, weight.shape, options, what);
  const outShape = [g.batch, g.outChannels, g.outHeight, g.outWidth];
  if (epilogue.scale.length !== g.outChannels || epilogue.shift.length !== g.outChannels) {
    throw new ShapeError(
      `${what}: scale and shift need ${g.outChannels} values, got ${epilogue.scale.length} and ${epilogue.shift.length}`,
    );
  }
  if (residual !== null) {
    checkSameDtype(x, residual, what);
    if (formatShape(residual.shape) !== formatShape(outShape)) {
      throw new ShapeError(
        `${what}: the residual must have the output's shape ${formatShape(outShape)}, got ${formatShape(residual.shape)}`,
      );
    }
  }
  if (epilogue.maxPool === true) {
    if (residual !== null)
      throw new Error(`${what}: the fused convolution cannot both add a residual and pool`);
    const pooledShape = [g.batch, g.outChannels, Math.floor(g.outHeight / 2), Math.floor(g.outWidth / 2)];
    const pooled = allocateUninitialized(x.dtype, sizeOf(pooledShape));
    getBackend().conv2dForwardFusedMaxPool(
      x.data,
      weight.data,
      epilogue.scale,
      epilogue.shift,
      pooled,
      g,
      epilogue.relu ?? false,
    );
    return new Tensor(pooled, pooledShape);
  }
  const out = allocateUninitialized(x.dtype, g.batch * g.outChannels * g.outHeight * g.outWidth);
  getBackend().conv2dForwardFused(
    x.data,
    weight.data,
    epilogue.scale,
    epilogue.shift,
    residual?.data ?? null,
    out,
    g,
    epilogue.relu ?? false,
  );
  return new Tensor(out, outShape);
}
