/** Max and average pooling over NCHW tensors, windowed and global. */
import { isGradientEnabled, record } from '../autograd/graph.js';
import { getBackend } from '../backend/index.js';
import type { Pool2dGeometry } from '../backend/types.js';
import { allocationCount, releaseInternal } from '../tensor/memory.js';
import { formatShape, ShapeError } from '../tensor/shape.js';
import { allocate, allocateUninitialized, Tensor } from '../tensor/tensor.js';
import { pair, type Pair } from './convolution.js';

export interface Pool2dOptions {
  kernelSize: Pair;
  /** Defaults to kernelSize (non-overlapping windows), as in PyTorch. */
  stride?: Pair;
  padding?: Pair;
  /** Round the output size up instead of down (PyTorch's ceil_mode). */
  ceilMode?: boolean;
}

export function poolGeometry(shape: readonly number[], options: Pool2dOptions, what: string): Pool2dGeometry {
  if (shape.length !== 4)
    throw new ShapeError(
      `${what}: expected input [batch, channels, height, width], got ${formatShape(shape)}`,
    );
  const [batch, channels, inHeight, inWidth] = shape as [number, number, number, number];
  const [kernelHeight, kernelWidth] = pair(options.kernelSize);
  const [strideHeight, strideWidth] = pair(options.stride ?? options.kernelSize);
  const [padTop, padLeft] = pair(options.padding ?? 0);
  if (padTop * 2 > kernelHeight || padLeft * 2 > kernelWidth) {
    throw new ShapeError(
      `${what}: padding [${padTop}, ${padLeft}] must be at most half the kernel [${kernelHeight}, ${kernelWidth}]`,
    );
  }
  const size = (input: number, kernel: number, stride: number, pad: number) => {
    const span = input + 2 * pad - kernel;
    let out = (options.ceilMode ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
    // PyTorch: the last window must start inside the input or left padding.
    if (options.ceilMode && (out - 1) * stride >= input + pad) out--;
    return out;
  };
  const outHeight = size(inHeight, kernelHeight, strideHeight, padTop);
  const outWidth = size(inWidth, kernelWidth, strideWidth, padLeft);
  if (outHeight < 1 || outWidth < 1) {
    throw new ShapeError(
      `${what}: input ${inHeight}×${inWidth} is smaller than the ${kernelHeight}×${kernelWidth} window`,
    );
  }
  return {
    batch,
    channels,
    inHeight,
    inWidth,
    kernelHeight,
    kernelWidth,
    strideHeight,
    strideWidth,
    padTop,
    padLeft,
    outHeight,
    outWidth,
  };
}

/** Max pooling. x: [N, C, H, W] → [N, C, Hout, Wout]; padding counts as −∞. */
export function maxPool2d(x: Tensor, options: Pool2dOptions): Tensor {
  const g = poolGeometry(x.shape, options, 'maxPool2d');
  const outSize = g.batch * g.channels * g.outHeight * g.outWidth;
  const out = allocateUninitialized(x.dtype, outSize);
  if (!isGradientEnabled() || !x.requiresGrad) {
    // Nothing will run the backward rule: the values alone, without the argmax (same bits).
    getBackend().maxPool2dValues(x.data, out, g);
    return new Tensor(out, [g.batch, g.channels, g.outHeight, g.outWidth]);
  }
  // The argmax as the integers of a float32 array from the backend's storage where it has one: the
  // wasm backend then copies it neither out after the forward nor in for the backward, and no fresh
  // array is zeroed each step. Nothing but this op sees it: given back once the backward has run.
  const since = allocationCount();
  const argmaxData = allocateUninitialized('float32', outSize);
  const argmax = new Int32Array(argmaxData.buffer, argmaxData.byteOffset, outSize);
  getBackend().maxPool2dForward(x.data, out, argmax, g);
  return record(
    new Tensor(out, [g.batch, g.channels, g.outHeight, g.outWidth]),
    'maxPool2d',
    [x],
    (gradOut) => {
      const gradX = allocateUninitialized(x.dtype, x.size);
      getBackend().maxPool2dBackward(gradOut, argmax, gradX, g);
      releaseInternal(argmaxData, since);
      return [gradX];
    },
  );
}

/**
 * Average pooling. x: [N, C, H, W] → [N, C, Hout, Wout]. countIncludePad (default true, as in
 * PyTorch) divides by the whole window including zero padding.
 */
export function avgPool2d(x: Tensor, options: Pool2dOptions & { countIncludePad?: boolean }): Tensor {
  const g = poolGeometry(x.shape, options, 'avgPool2d');
  const countIncludePad = options.countIncludePad ?? true;
  const out = allocateUninitialized(x.dtype, g.batch * g.channels * g.outHeight * g.outWidth);
  getBackend().avgPool2dForward(x.data, out, g, countIncludePad);
  return record(
    new Tensor(out, [g.batch, g.channels, g.outHeight, g.outWidth]),
    'avgPool2d',
    [x],
    (gradOut) => {
      const gradX = allocateUninitialized(x.dtype, x.size);
      getBackend().avgPool2dBackward(gradOut, gradX, g, countIncludePad);
      return [gradX];
    },
  );
}

function checkImage(x: Tensor, what: string): [number, number, number] {
  if (x.rank !== 4)
    throw new ShapeError(
      `${what}: expected input [batch, channels, height, width], got ${formatShape(x.shape)}`,
    );
  return [x.shape[0]!, x.shape[1]!, x.shape[2]! * x.shape[3]!];
}

/** Mean over each feature map. x: [N, C, H, W] → [N, C]. */
export function globalAvgPool2d(x: Tensor): Tensor {
  const [batch, channels, spatial] = checkImage(x, 'globalAvgPool2d');
  const backend = getBackend();
  const out = allocate(x.dtype, batch * channels);
  // A sum over the spatial axis, so fast backends run it as a kernel.
  backend.reduceSum(x.data, [batch * channels, spatial], out, [batch * channels, 1]);
  backend.scaleShift(out, 1 / spatial, 0, out);
  return record(new Tensor(out, [batch, channels]), 'globalAvgPool2d', [x], (gradOut) => {
    // Scale the [N·C] gradient, then broadcast it over each plane: one pass over the large gradient
    // instead of two, and the same values (x/spatial + 0 either way).
    const scaled = allocate(x.dtype, batch * channels);
    backend.scaleShift(gradOut, 1 / spatial, 0, scaled);
    const gradX = allocateUninitialized(x.dtype, x.size);
    backend.binary('add', scaled, [batch * channels, 1], allocate(x.dtype, 1), [], gradX, [
      batch * channels,
      spatial,
    ]);
    return [gradX];
  });
}

/** Maximum over each feature map. x: [N, C, H, W] → [N, C]; the gradient goes to the first maximum. */
export function globalMaxPool2d(x: Tensor): Tensor {
  const [batch, channels, spatial] = checkImage(x, 'globalMaxPool2d');
  const out = allocate(x.dtype, batch * channels);
  const argmax = new Int32Array(batch * channels);
  getBackend().reduceMax(x.data, [batch * channels, spatial], out, [batch * channels, 1], argmax);
  return record(new Tensor(out, [batch, channels]), 'globalMaxPool2d', [x], (gradOut) => {
    const gradX = allocate(x.dtype, x.size);
    for (let plane = 0; plane < batch * channels; plane++) gradX[argmax[plane]!] = gradOut[plane]!;
    return [gradX];
  });
}
