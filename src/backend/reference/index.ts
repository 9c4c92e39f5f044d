/**
 * The reference backend: every kernel as the plainest correct loop in TypeScript.
 *
 * This file is the executable specification of tensile's kernels. It is deliberately naive: no
 * blocking, no im2col, accumulation in JavaScript's float64 numbers. Fast backends override the hot
 * kernels and are tested against these loops and against PyTorch. Works on Float32Array and
 * Float64Array alike (gradient checks run here in float64).
 */
import type {
  ActivationKind,
  Backend,
  BatchNormGeometry,
  BinaryKind,
  Conv2dGeometry,
  Data,
  Pool2dGeometry,
} from '../types.js';

/** Row-major strides of a shape. */
function stridesOf(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let stride = 1;
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    strides[axis] = stride;
    stride *= shape[axis]!;
  }
  return strides;
}

/**
 * Strides for reading an operand of shape `shape` while walking `outShape` (right-aligned NumPy
 * broadcasting): a broadcast axis gets stride 0.
 */
function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const own = stridesOf(shape);
  const offset = outShape.length - shape.length;
  return outShape.map((_, axis) => {
    const ownAxis = axis - offset;
    if (ownAxis < 0) return 0;
    return shape[ownAxis] === 1 ? 0 : own[ownAxis]!;
  });
}

/** Calls visit(outIndex, aIndex, bIndex) for every element of outShape. */
function forEachBroadcast(
  outShape: readonly number[],
  aStrides: readonly number[],
  bStrides: readonly number[],
  visit: (outIndex: number, aIndex: number, bIndex: number) => void,
): void {
  const rank = outShape.length;
  const total = outShape.reduce((p, d) => p * d, 1);
  const counter = new Array<number>(rank).fill(0);
  let aIndex = 0;
  let bIndex = 0;
  for (let outIndex = 0; outIndex < total; outIndex++) {
    visit(outIndex, aIndex, bIndex);
    for (let axis = rank - 1; axis >= 0; axis--) {
      counter[axis]!++;
      aIndex += aStrides[axis]!;
      bIndex += bStrides[axis]!;
      if (counter[axis]! < outShape[axis]!) break;
      aIndex -= aStrides[axis]! * outShape[axis]!;
      bIndex -= bStrides[axis]! * outShape[axis]!;
      counter[axis] = 0;
    }
  }
}

const binaryFunctions: Record<BinaryKind, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  maximum: (a, b) => (a >= b ? a : b),
  minimum: (a, b) => (a <= b ? a : b),
};

/** erf with float64 accuracy (Abramowitz–Stegun 7.1.26 is too coarse for parity; use a series/continued fraction). */
function erf(x: number): number {
  const sign = x < 0 ? -1 : 1;
  const ax = Math.abs(x);
  if (ax < 2.5) {
    // Maclaurin series: erf(x) = 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1)); converges fast for |x| < 2.5.
    let term = ax;
    let sum = ax;
    const x2 = ax * ax;
    for (let n = 1; n < 60; n++) {
      term *= -x2 / n;
      const contribution = term / (2 * n + 1);
      sum += contribution;
      if (Math.abs(contribution) < 1e-17 * Math.abs(sum)) break;
    }
    return (sign * 2 * sum) / Math.sqrt(Math.PI);
  }
  // Continued fraction for erfc at larger |x|, where the series loses precision.
  let fraction = 0;
  for (let n = 60; n >= 1; n--) fraction = n / 2 / (ax + fraction);
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + fraction);
  return sign * (1 - erfc);
}

/** Standard normal density. */
const normalPdf = (x: number): number => Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);

/** f(x) for each activation kind; alpha is the leaky_relu slope or the elu scale. */
export function activationValue(kind: ActivationKind, x: number, alpha: number): number {
  switch (kind) {
    case 'relu':
      return x > 0 ? x : 0;
    case 'leaky_relu':
      return x > 0 ? x : alpha * x;
    case 'elu':
      return x > 0 ? x : alpha * Math.expm1(x);
    case 'gelu':
      // Exact GELU, x·Φ(x), PyTorch's default (approximate='none').
      return 0.5 * x * (1 + erf(x / Math.SQRT2));
    case 'sigmoid':
      return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
    case 'tanh':
      return Math.tanh(x);
    case 'exp':
      return Math.exp(x);
    case 'log':
      return Math.log(x);
    case 'sqrt':
      return Math.sqrt(x);
    case 'abs':
      return Math.abs(x);
    case 'neg':
      return -x;
    case 'square':
      return x * x;
  }
}

/**
 * f'(x), given x and y = f(x). At the kinks (relu and leaky_relu at 0, abs at 0) PyTorch's
 * conventions apply: relu'(0) = 0, leaky_relu'(0) = slope, abs'(0) = 0.
 */
export function activationDerivative(kind: ActivationKind, x: number, y: number, alpha: number): number {
  switch (kind) {
    case 'relu':
      return x > 0 ? 1 : 0;
    case 'leaky_relu':
      return x > 0 ? 1 : alpha;
    case 'elu':
      return x > 0 ? 1 : y + alpha;
    case 'gelu':
      return 0.5 * (1 + erf(x / Math.SQRT2)) + x * normalPdf(x);
    case 'sigmoid':
      return y * (1 - y);
    case 'tanh':
      return 1 - y * y;
    case 'exp':
      return y;
    case 'log':
      return 1 / x;
    case 'sqrt':
      return 0.5 / y;
    case 'abs':
      return x > 0 ? 1 : x < 0 ? -1 : 0;
    case 'neg':
      return -1;
    case 'square':
      return 2 * x;
  }
}

/** The input coordinate read by output coordinate o at kernel tap k, or -1 when it falls in padding. */
function inputCoordinate(o: number, k: number, stride: number, pad: number, dilation: number, size: number) {
  const i = o * stride - pad + k * dilation;
  return i >= 0 && i < size ? i : -1;
}

export const referenceBackend: Backend = {
  name: 'reference',

  matmul(a, b, out, m, n, k, transposeA, transposeB, accumulate) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let p = 0; p < k; p++) {
          const av = transposeA ? a[p * m + i]! : a[i * k + p]!;
          const bv = transposeB ? b[j * k + p]! : b[p * n + j]!;
          sum += av * bv;
        }
        out[i * n + j] = accumulate ? out[i * n + j]! + sum : sum;
      }
    }
  },

  conv2dForward(x, weight, out, g) {
    for (let n = 0; n < g.batch; n++) {
      for (let co = 0; co < g.outChannels; co++) {
        for (let oy = 0; oy < g.outHeight; oy++) {
          for (let ox = 0; ox < g.outWidth; ox++) {
            let sum = 0;
            for (let ci = 0; ci < g.inChannels; ci++) {
              for (let ky = 0; ky < g.kernelHeight; ky++) {
                const iy = inputCoordinate(oy, ky, g.strideHeight, g.padTop, g.dilationHeight, g.inHeight);
                if (iy < 0) continue;
                for (let kx = 0; kx < g.kernelWidth; kx++) {
                  const ix = inputCoordinate(ox, kx, g.strideWidth, g.padLeft, g.dilationWidth, g.inWidth);
                  if (ix < 0) continue;
                  sum +=
                    x[((n * g.inChannels + ci) * g.inHeight + iy) * g.inWidth + ix]! *
                    weight[((co * g.inChannels + ci) * g.kernelHeight + ky) * g.kernelWidth + kx]!;
                }
              }
            }
            out[((n * g.outChannels + co) * g.outHeight + oy) * g.outWidth + ox] = sum;
          }
        }
      }
    }
  },

  conv2dForwardFused(x, weight, scale, shift, residual, out, g, relu) {
    // The kernels this one fuses, in its order, through `this` so that a fast backend's own run.
    this.conv2dForward(x, weight, out, g);
    const channels = { batch: g.batch, channels: g.outChannels, spatial: g.outHeight * g.outWidth };
    if (residual === null && relu) {
      // channelAffineRelu has the bits of channelAffine then relu, in one pass where fused.
      this.channelAffineRelu(out, scale, shift, out, channels);
      return;
    }
    this.channelAffine(out, scale, shift, out, channels);
    if (residual !== null) {
      const shape = [g.batch, g.outChannels, g.outHeight, g.outWidth];
      this.binary('add', out, shape, residual, shape, out, shape);
    }
    if (relu) this.activationForward('relu', out, out, 0);
  },

  conv2dForwardFusedMaxPool(x, weight, scale, shift, out, g, relu) {
    // The two kernels this one fuses, through `this`, with the full-size output in between: in the
    // backend's own storage where it has one (WebAssembly memory, where its kernels work in place;
    // a JavaScript array would be copied in and out by both), given back at the end.
    const size = g.batch * g.outChannels * g.outHeight * g.outWidth;
    const stored = x instanceof Float32Array ? (this.storage?.allocate(size) ?? null) : null;
    const full = stored ?? new (x.constructor as Float32ArrayConstructor | Float64ArrayConstructor)(size);
    try {
      this.conv2dForwardFused(x, weight, scale, shift, null, full, g, relu);
      this.maxPool2dValues(full, out, {
        batch: g.batch,
        channels: g.outChannels,
        inHeight: g.outHeight,
        inWidth: g.outWidth,
        kernelHeight: 2,
        kernelWidth: 2,
        strideHeight: 2,
        strideWidth: 2,
        padTop: 0,
        padLeft: 0,
        outHeight: Math.floor(g.outHeight / 2),
        outWidth: Math.floor(g.outWidth / 2),
      });
    } finally {
      if (stored !== null) this.storage!.free(stored);
    }
  },

  conv2dBackwardInput(gradOut, weight, gradX, g) {
    // Accumulate in a float64 scratch so float32 results are rounded once.
    const accumulator = new Float64Array(gradX.length);
    for (let n = 0; n < g.batch; n++) {
      for (let co = 0; co < g.outChannels; co++) {
        for (let oy = 0; oy < g.outHeight; oy++) {
          for (let ox = 0; ox < g.outWidth; ox++) {
            const go = gradOut[((n * g.outChannels + co) * g.outHeight + oy) * g.outWidth + ox]!;
            for (let ci = 0; ci < g.inChannels; ci++) {
              for (let ky = 0; ky < g.kernelHeight; ky++) {
                const iy = inputCoordinate(oy, ky, g.strideHeight, g.padTop, g.dilationHeight, g.inHeight);
                if (iy < 0) continue;
                for (let kx = 0; kx < g.kernelWidth; kx++) {
                  const ix = inputCoordinate(ox, kx, g.strideWidth, g.padLeft, g.dilationWidth, g.inWidth);
                  if (ix < 0) continue;
                  accumulator[((n * g.inChannels + ci) * g.inHeight + iy) * g.inWidth + ix]! +=
                    go * weight[((co * g.inChannels + ci) * g.kernelHeight + ky) * g.kernelWidth + kx]!;
                }
              }
            }
          }
        }
      }
    }
    gradX.set(accumulator);
  },

  conv2dBackwardWeight(x, gradOut, gradWeight, g) {
    for (let co = 0; co < g.outChannels; co++) {
      for (let ci = 0; ci < g.inChannels; ci++) {
        for (let ky = 0; ky < g.kernelHeight; ky++) {
          for (let kx = 0; kx < g.kernelWidth; kx++) {
            let sum = 0;
            for (let n = 0; n < g.batch; n++) {
              for (let oy = 0; oy < g.outHeight; oy++) {
                const iy = inputCoordinate(oy, ky, g.strideHeight, g.padTop, g.dilationHeight, g.inHeight);
                if (iy < 0) continue;
                for (let ox = 0; ox < g.outWidth; ox++) {
                  const ix = inputCoordinate(ox, kx, g.strideWidth, g.padLeft, g.dilationWidth, g.inWidth);
                  if (ix < 0) continue;
                  sum +=
                    x[((n * g.inChannels + ci) * g.inHeight + iy) * g.inWidth + ix]! *
                    gradOut[((n * g.outChannels + co) * g.outHeight + oy) * g.outWidth + ox]!;
                }
              }
            }
            gradWeight[((co * g.inChannels + ci) * g.kernelHeight + ky) * g.kernelWidth + kx] = sum;
          }
        }
      }
    }
  },

  maxPool2dForward(x, out, argmax, g) {
    const planeIn = g.inHeight * g.inWidth;
    const planeOut = g.outHeight * g.outWidth;
    for (let plane = 0; plane < g.batch * g.channels; plane++) {
      for (let oy = 0; oy < g.outHeight; oy++) {
        for (let ox = 0; ox < g.outWidth; ox++) {
          let best = -Infinity;
          let bestIndex = -1;
          for (let ky = 0; ky < g.kernelHeight; ky++) {
            const iy = inputCoordinate(oy, ky, g.strideHeight, g.padTop, 1, g.inHeight);
            if (iy < 0) continue;
            for (let kx = 0; kx < g.kernelWidth; kx++) {
              const ix = inputCoordinate(ox, kx, g.strideWidth, g.padLeft, 1, g.inWidth);
              if (ix < 0) continue;
              const value = x[plane * planeIn + iy * g.inWidth + ix]!;
              // Strictly greater keeps the first maximum; NaN wins, as in PyTorch.
              if (value > best || bestIndex < 0 || Number.isNaN(value)) {
                best = value;
                bestIndex = iy * g.inWidth + ix;
              }
            }
          }
          out[plane * planeOut + oy * g.outWidth + ox] = best;
          argmax[plane * planeOut + oy * g.outWidth + ox] = bestIndex;
        }
      }
    }
  },

  maxPool2dValues(x, out, g) {
    this.maxPool2dForward(x, out, new Int32Array(out.length), g);
  },

  maxPool2dBackward(gradOut, argmax, gradX, g) {
    gradX.fill(0);
    const planeIn = g.inHeight * g.inWidth;
    const planeOut = g.outHeight * g.outWidth;
    for (let plane = 0; plane < g.batch * g.channels; plane++) {
      for (let o = 0; o < planeOut; o++) {
        gradX[plane * planeIn + argmax[plane * planeOut + o]!]! += gradOut[plane * planeOut + o]!;
      }
    }
  },

  avgPool2dForward(x, out, g, countIncludePad) {
    const planeIn = g.inHeight * g.inWidth;
    const planeOut = g.outHeight * g.outWidth;
    for (let plane = 0; plane < g.batch * g.channels; plane++) {
      for (let oy = 0; oy < g.outHeight; oy++) {
        for (let ox = 0; ox < g.outWidth; ox++) {
          let sum = 0;
          let count = 0;
          for (let ky = 0; ky < g.kernelHeight; ky++) {
            const iy = inputCoordinate(oy, ky, g.strideHeight, g.padTop, 1, g.inHeight);
            if (iy < 0) continue;
            for (let kx = 0; kx < g.kernelWidth; kx++) {
              const ix = inputCoordinate(ox, kx, g.strideWidth, g.padLeft, 1, g.inWidth);
              if (ix < 0) continue;
              sum += x[plane * planeIn + iy * g.inWidth + ix]!;
              count++;
            }
          }
          const divisor = countIncludePad ? poolDivisor(oy, ox, g) : count;
          out[plane * planeOut + oy * g.outWidth + ox] = sum / divisor;
        }
      }
    }
  },

  avgPool2dBackward(gradOut, gradX, g, countIncludePad) {
    const accumulator = new Float64Array(gradX.length);
    const planeIn = g.inHeight * g.inWidth;
    const planeOut = g.outHeight * g.outWidth;
    for (let plane = 0; plane < g.batch * g.channels; plane++) {
      for (let oy = 0; oy < g.outHeight; oy++) {
        for (let ox = 0; ox < g.outWidth; ox++) {
          let count = 0;
          for (let ky = 0; ky < g.kernelHeight; ky++) {
            if (inputCoordinate(oy, ky, g.strideHeight, g.padTop, 1, g.inHeight) < 0) continue;
            for (let kx = 0; kx < g.kernelWidth; kx++) {
              if (inputCoordinate(ox, kx, g.strideWidth, g.padLeft, 1, g.inWidth) >= 0) count++;
            }
          }
          const divisor = countIncludePad ? poolDivisor(oy, ox, g) : count;
          const share = gradOut[plane * planeOut + oy * g.outWidth + ox]! / divisor;
          for (let ky = 0; ky < g.kernelHeight; ky++) {
            const iy = inputCoordinate(oy, ky, g.strideHeight, g.padTop, 1, g.inHeight);
            if (iy < 0) continue;
            for (let kx = 0; kx < g.kernelWidth; kx++) {
              const ix = inputCoordinate(ox, kx, g.strideWidth, g.padLeft, 1, g.inWidth);
              if (ix < 0) continue;
              accumulator[plane * planeIn + iy * g.inWidth + ix]! += share;
            }
          }
        }
      }
    }
    gradX.set(accumulator);
  },

  batchNormTrainForward(x, gamma, beta, out, mean, invStd, eps, g) {
    const count = g.batch * g.spatial;
    for (let c = 0; c < g.channels; c++) {
      let sum = 0;
      for (let n = 0; n < g.batch; n++) {
        const base = (n * g.channels + c) * g.spatial;
        for (let s = 0; s < g.spatial; s++) sum += x[base + s]!;
      }
      const mu = sum / count;
      let squares = 0;
      for (let n = 0; n < g.batch; n++) {
        const base = (n * g.channels + c) * g.spatial;
        for (let s = 0; s < g.spatial; s++) squares += (x[base + s]! - mu) ** 2;
      }
      const inverse = 1 / Math.sqrt(squares / count + eps);
      mean[c] = mu;
      invStd[c] = inverse;
      for (let n = 0; n < g.batch; n++) {
        const base = (n * g.channels + c) * g.spatial;
        for (let s = 0; s < g.spatial; s++) {
          out[base + s] = gamma[c]! * (x[base + s]! - mu) * inverse + beta[c]!;
        }
      }
    }
  },

  batchNormTrainBackward(x, gradOut, gamma, mean, invStd, gradX, gradGamma, gradBeta, g) {
    // With x̂ = (x-μ)·invStd: ∂L/∂x = γ·invStd·(g - mean(g) - x̂·mean(g·x̂)) over each channel.
    const count = g.batch * g.spatial;
    for (let c = 0; c < g.channels; c++) {
      let sumGrad = 0;
      let sumGradXhat = 0;
      for (let n = 0; n < g.batch; n++) {
        const base = (n * g.channels + c) * g.spatial;
        for (let s = 0; s < g.spatial; s++) {
          const xhat = (x[base + s]! - mean[c]!) * invStd[c]!;
          sumGrad += gradOut[base + s]!;
          sumGradXhat += gradOut[base + s]! * xhat;
        }
      }
      gradBeta[c] = sumGrad;
      gradGamma[c] = sumGradXhat;
      const scale = gamma[c]! * invStd[c]!;
      for (let n = 0; n < g.batch; n++) {
        const base = (n * g.channels + c) * g.spatial;
        for (let s = 0; s < g.spatial; s++) {
          const xhat = (x[base + s]! - mean[c]!) * invStd[c]!;
          gradX[base + s] = scale * (gradOut[base + s]! - sumGrad / count - (xhat * sumGradXhat) / count);
        }
      }
    }
  },

  // The fused batch norm + ReLU kernels are composites of the kernels they fuse, called through
  // `this` so that a backend spreading this object keeps its own fast kernels for the parts.
  batchNormReluTrainForward(x, gamma, beta, out, mean, invStd, eps, g) {
    this.batchNormTrainForward(x, gamma, beta, out, mean, invStd, eps, g);
    this.activationForward('relu', out, out, 0);
  },

  batchNormReluTrainBackward(x, y, gradOut, gamma, _beta, mean, invStd, gradX, gradGamma, gradBeta, g) {
    // The batch norm's output gradient: gradOut where y > 0, else 0.
    const masked = y instanceof Float64Array ? new Float64Array(y.length) : new Float32Array(y.length);
    this.activationBackward('relu', y, y, gradOut, masked, 0);
    this.batchNormTrainBackward(x, masked, gamma, mean, invStd, gradX, gradGamma, gradBeta, g);
  },

  batchNormReluMaxPoolTrainForward(x, gamma, beta, y, out, argmax, mean, invStd, eps, g) {
    const channels = { batch: g.batch, channels: g.channels, spatial: g.inHeight * g.inWidth };
    this.batchNormReluTrainForward(x, gamma, beta, y, mean, invStd, eps, channels);
    this.maxPool2dForward(y, out, argmax, g);
  },

  batchNormReluMaxPoolTrainBackward(
    x,
    y,
    gradOut,
    argmax,
    gamma,
    beta,
    mean,
    invStd,
    gradX,
    gradGamma,
    gradBeta,
    g,
  ) {
    // The pooling's input gradient between the two kernels: in the backend's own storage where it
    // has one (see conv2dForwardFusedMaxPool), given back at the end.
    const size = g.batch * g.channels * g.inHeight * g.inWidth;
    const stored = x instanceof Float32Array ? (this.storage?.allocate(size) ?? null) : null;
    const gradY = stored ?? new (x.constructor as Float32ArrayConstructor | Float64ArrayConstructor)(size);
    try {
      this.maxPool2dBackward(gradOut, argmax, gradY, g);
      const channels = { batch: g.batch, channels: g.channels, spatial: g.inHeight * g.inWidth };
      this.batchNormReluTrainBackward(
        x,
        y,
        gradY,
        gamma,
        beta,
        mean,
        invStd,
        gradX,
        gradGamma,
        gradBeta,
        channels,
      );
    } finally {
      if (stored !== null) this.storage!.free(stored);
    }
  },

  channelAffineRelu(x, scale, shift, out, g) {
    this.channelAffine(x, scale, shift, out, g);
    this.activationForward('relu', out, out, 0);
  },

  channelAffine(x, scale, shift, out, g) {
    for (let n = 0; n < g.batch; n++) {
      for (let c = 0; c < g.channels; c++) {
        const base = (n * g.channels + c) * g.spatial;
        for (let s = 0; s < g.spatial; s++) out[base + s] = x[base + s]! * scale[c]! + shift[c]!;
      }
    }
  },

  channelSum(x, out, g) {
    for (let c = 0; c < g.channels; c++) {
      let sum = 0;
      for (let n = 0; n < g.batch; n++) {
        const base = (n * g.channels + c) * g.spatial;
        for (let s = 0; s < g.spatial; s++) sum += x[base + s]!;
      }
      out[c] = sum;
    }
  },

  activationForward(kind, x, out, alpha) {
    // ReLU is the one activation in every CNN step; a dedicated loop keeps the generic switch out of it.
    if (kind === 'relu') {
      for (let i = 0; i < x.length; i++) out[i] = x[i]! > 0 ? x[i]! : 0;
      return;
    }
    for (let i = 0; i < x.length; i++) out[i] = activationValue(kind, x[i]!, alpha);
  },

  activationBackward(kind, x, y, gradOut, gradX, alpha) {
    if (kind === 'relu') {
      for (let i = 0; i < x.length; i++) gradX[i] = x[i]! > 0 ? gradOut[i]! : 0;
      return;
    }
    for (let i = 0; i < x.length; i++) {
      gradX[i] = gradOut[i]! * activationDerivative(kind, x[i]!, y[i]!, alpha);
    }
  },

  binary(kind, a, aShape, b, bShape, out, outShape) {
    const f = binaryFunctions[kind];
    forEachBroadcast(
      outShape,
      broadcastStrides(aShape, outShape),
      broadcastStrides(bShape, outShape),
      (o, i, j) => {
        out[o] = f(a[i]!, b[j]!);
      },
    );
  },

  scaleShift(x, scale, shift, out) {
    for (let i = 0; i < x.length; i++) out[i] = x[i]! * scale + shift;
  },

  power(x, exponent, out) {
    for (let i = 0; i < x.length; i++) out[i] = x[i]! ** exponent;
  },

  reduceSum(x, xShape, out, outShape) {
    const accumulator = new Float64Array(out.length);
    const outStrides = broadcastStrides(outShape, xShape);
    forEachBroadcast(xShape, stridesOf(xShape), outStrides, (_, xIndex, outIndex) => {
      accumulator[outIndex]! += x[xIndex]!;
    });
    out.set(accumulator);
  },

  reduceMax(x, xShape, out, outShape, argmax) {
    out.fill(-Infinity);
    argmax.fill(-1);
    const outStrides = broadcastStrides(outShape, xShape);
    forEachBroadcast(xShape, stridesOf(xShape), outStrides, (_, xIndex, outIndex) => {
      if (x[xIndex]! > out[outIndex]! || argmax[outIndex]! < 0) {
        out[outIndex] = x[xIndex]!;
        argmax[outIndex] = xIndex;
      }
    });
  },

  softmaxForward(x, out, rows, cols, log) {
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      let max = -Infinity;
      for (let c = 0; c < cols; c++) max = Math.max(max, x[base + c]!);
      let sum = 0;
      for (let c = 0; c < cols; c++) sum += Math.exp(x[base + c]! - max);
      const logSum = Math.log(sum);
      for (let c = 0; c < cols; c++) {
        out[base + c] = log ? x[base + c]! - max - logSum : Math.exp(x[base + c]! - max) / sum;
      }
    }
  },

  softmaxBackward(y, gradOut, gradX, rows, cols, log) {
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      if (log) {
        // y = log softmax: ∂L/∂x = g - softmax·Σg.
        let sum = 0;
        for (let c = 0; c < cols; c++) sum += gradOut[base + c]!;
        for (let c = 0; c < cols; c++) gradX[base + c] = gradOut[base + c]! - Math.exp(y[base + c]!) * sum;
      } else {
        // y = softmax: ∂L/∂x = y·(g - Σ g·y).
        let dot = 0;
        for (let c = 0; c < cols; c++) dot += gradOut[base + c]! * y[base + c]!;
        for (let c = 0; c < cols; c++) gradX[base + c] = y[base + c]! * (gradOut[base + c]! - dot);
      }
    }
  },

  adamUpdate(parameter, gradient, m, v, step) {
    const stepSize = step.lr / step.biasCorrection1;
    const correction2Root = Math.sqrt(step.biasCorrection2);
    const l2 = step.decoupledWeightDecay ? 0 : step.weightDecay;
    const decay = step.decoupledWeightDecay ? 1 - step.lr * step.weightDecay : 1;
    const { beta1, beta2, eps } = step;
    for (let i = 0; i < parameter.length; i++) {
      const p = parameter[i]! * decay;
      const g = gradient[i]! + l2 * parameter[i]!;
      m[i] = beta1 * m[i]! + (1 - beta1) * g;
      v[i] = beta2 * v[i]! + (1 - beta2) * g * g;
      // m and v are read back after the store: the update uses their rounded (stored) values.
      parameter[i] = p - (stepSize * m[i]!) / (Math.sqrt(v[i]!) / correction2Root + eps);
    }
  },

  sgdUpdate(parameter, gradient, momentumBuffer, step) {
    const { lr, momentum, dampening, nesterov, weightDecay, firstStep } = step;
    for (let i = 0; i < parameter.length; i++) {
      let g = gradient[i]! + weightDecay * parameter[i]!;
      if (momentumBuffer !== null) {
        momentumBuffer[i] = firstStep ? g : momentum * momentumBuffer[i]! + (1 - dampening) * g;
        g = nesterov ? g + momentum * momentumBuffer[i]! : momentumBuffer[i]!;
      }
      parameter[i] = parameter[i]! - lr * g;
    }
  },

  transpose(x, xShape, perm, out) {
    const outShape = perm.map((axis) => xShape[axis]!);
    const xStrides = stridesOf(xShape);
    const permutedStrides = perm.map((axis) => xStrides[axis]!);
    forEachBroadcast(outShape, permutedStrides, permutedStrides, (o, i) => {
      out[o] = x[i]!;
    });
  },
};

/**
 * PyTorch's count_include_pad divisor: the window size clipped to the padded input (so windows that
 * hang past the padding, possible with ceil_mode, count only the part inside it).
 */
function poolDivisor(oy: number, ox: number, g: Pool2dGeometry): number {
  const yStart = oy * g.strideHeight - g.padTop;
  const xStart = ox * g.strideWidth - g.padLeft;
  const yEnd = Math.min(yStart + g.kernelHeight, g.inHeight + g.padTop);
  const xEnd = Math.min(xStart + g.kernelWidth, g.inWidth + g.padLeft);
  return (yEnd - yStart) * (xEnd - xStart);
}

export type { Data, Conv2dGeometry, Pool2dGeometry, BatchNormGeometry };
