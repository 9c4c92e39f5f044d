/**
 * The typed Backend interface: the few kernels every tensile backend provides.
 *
 * Kernels work on flat, contiguous, row-major typed arrays and never allocate their outputs: the
 * caller (the op layer) allocates `out` and passes shapes. That keeps tensor lifetime in one place
 * (src/tensor) and lets a backend be a plain object of functions.
 *
 * The reference backend (./reference) implements every kernel in plain TypeScript and is the
 * executable specification; fast backends (WebAssembly, native) override the hot kernels and are
 * tested against it. A kernel missing from a backend is a compile error, never a run-time lookup.
 *
 * Float64 data is accepted by the reference backend (gradient checks run there in float64); fast
 * backends may handle float64 by delegating to the reference kernels.
 */

/** Storage of a tensor's elements. */
export type Data = Float32Array | Float64Array;

export type DType = 'float32' | 'float64';

/** Elementwise functions with a hand-written derivative (applied by the activation layers). */
export type ActivationKind =
  | 'relu'
  | 'leaky_relu'
  | 'elu'
  | 'gelu'
  | 'sigmoid'
  | 'tanh'
  | 'exp'
  | 'log'
  | 'sqrt'
  | 'abs'
  | 'neg'
  | 'square';

/** Binary elementwise operations with NumPy broadcasting. */
export type BinaryKind = 'add' | 'sub' | 'mul' | 'div' | 'maximum' | 'minimum';

/**
 * Geometry of a 2-D convolution over NCHW input with an [outChannels, inChannels, kernelHeight,
 * kernelWidth] weight (PyTorch's layout). out is [batch, outChannels, outHeight, outWidth].
 */
export interface Conv2dGeometry {
  batch: number;
  inChannels: number;
  inHeight: number;
  inWidth: number;
  outChannels: number;
  kernelHeight: number;
  kernelWidth: number;
  strideHeight: number;
  strideWidth: number;
  /** Zero padding added before the first row; PyTorch pads the same amount after. */
  padTop: number;
  padLeft: number;
  dilationHeight: number;
  dilationWidth: number;
  outHeight: number;
  outWidth: number;
}

/** Geometry of a 2-D pooling window over NCHW input; out is [batch, channels, outHeight, outWidth]. */
export interface Pool2dGeometry {
  batch: number;
  channels: number;
  inHeight: number;
  inWidth: number;
  kernelHeight: number;
  kernelWidth: number;
  strideHeight: number;
  strideWidth: number;
  padTop: number;
  padLeft: number;
  outHeight: number;
  outWidth: number;
}

/**
 * Batch normalization over x viewed as [batch, channels, spatial] (spatial = H·W for 4-D input,
 * 1 for 2-D input). Statistics are per channel.
 */
export interface BatchNormGeometry {
  batch: number;
  channels: number;
  spatial: number;
}

export interface Backend {
  readonly name: string;

  /**
   * out[M,N] (+)= op(A)·op(B) where op(A) is [M,K] and op(B) is [K,N].
   * A is stored [M,K], or [K,M] when transposeA; B is stored [K,N], or [N,K] when transposeB.
   * When accumulate is true the product is added to out, otherwise out is overwritten.
   */
  matmul(
    a: Data,
    b: Data,
    out: Data,
    m: number,
    n: number,
    k: number,
    transposeA: boolean,
    transposeB: boolean,
    accumulate: boolean,
  ): void;

  /** y = conv(x, weight) (no bias; bias is added by the op as a broadcast add). */
  conv2dForward(x: Data, weight: Data, out: Data, g: Conv2dGeometry): void;
  /** gradX = ∂L/∂x given gradOut = ∂L/∂y. gradX is overwritten. */
  conv2dBackwardInput(gradOut: Data, weight: Data, gradX: Data, g: Conv2dGeometry): void;
  /** gradWeight = ∂L/∂weight given gradOut. gradWeight is overwritten. */
  conv2dBackwardWeight(x: Data, gradOut: Data, gradWeight: Data, g: Conv2dGeometry): void;

  /**
   * Max pooling; padding counts as -infinity. argmax receives, per output element, the flat index
   * within its (n, c) input plane of the winning element (the first maximum in row-major window order,
   * as PyTorch).
   */
  maxPool2dForward(x: Data, out: Data, argmax: Int32Array, g: Pool2dGeometry): void;
  /** gradX is overwritten: each gradOut element is added to its argmax position. */
  maxPool2dBackward(gradOut: Data, argmax: Int32Array, gradX: Data, g: Pool2dGeometry): void;
  /** Average pooling; with countIncludePad the divisor is the full window clipped to the padded input. */
  avgPool2dForward(x: Data, out: Data, g: Pool2dGeometry, countIncludePad: boolean): void;
  /** gradX is overwritten. */
  avgPool2dBackward(gradOut: Data, gradX: Data, g: Pool2dGeometry, countIncludePad: boolean): void;

  /**
   * Training-mode batch norm: computes per-channel batch mean and biased variance, writes
   * y = gamma·(x-mean)/sqrt(var+eps) + beta, and saves mean and invStd (1/sqrt(var+eps)) for backward.
   */
  batchNormTrainForward(
    x: Data,
    gamma: Data,
    beta: Data,
    out: Data,
    mean: Data,
    invStd: Data,
    eps: number,
    g: BatchNormGeometry,
  ): void;
  /**
   * Backward of training-mode batch norm. Overwrites gradX, gradGamma and gradBeta.
   */
  batchNormTrainBackward(
    x: Data,
    gradOut: Data,
    gamma: Data,
    mean: Data,
    invStd: Data,
    gradX: Data,
    gradGamma: Data,
    gradBeta: Data,
    g: BatchNormGeometry,
  ): void;
  /** Per-channel affine map out = x·scale[c] + shift[c] (inference-mode batch norm, bias add). */
  channelAffine(x: Data, scale: Data, shift: Data, out: Data, g: BatchNormGeometry): void;
  /** Per-channel sums of x: out[c] = Σ over batch and spatial of x. */
  channelSum(x: Data, out: Data, g: BatchNormGeometry): void;

  /** out = f(x) elementwise; alpha parameterises leaky_relu (slope) and elu. */
  activationForward(kind: ActivationKind, x: Data, out: Data, alpha: number): void;
  /**
   * gradX = gradOut · f'(x). Both x and y = f(x) are given so each kind uses whichever is cheaper.
   */
  activationBackward(kind: ActivationKind, x: Data, y: Data, gradOut: Data, gradX: Data, alpha: number): void;

  /** out = a ∘ b with NumPy broadcasting; shapes are right-aligned, outShape is the broadcast shape. */
  binary(
    kind: BinaryKind,
    a: Data,
    aShape: readonly number[],
    b: Data,
    bShape: readonly number[],
    out: Data,
    outShape: readonly number[],
  ): void;
  /** out = x·scale + shift elementwise (scalars). */
  scaleShift(x: Data, scale: number, shift: number, out: Data): void;
  /** out = x^exponent elementwise. */
  power(x: Data, exponent: number, out: Data): void;
  /**
   * Sum x (shape xShape) down to outShape, which has the same rank with 1 on every reduced axis.
   * out is overwritten.
   */
  reduceSum(x: Data, xShape: readonly number[], out: Data, outShape: readonly number[]): void;
  /** Max over the reduced axes (outShape as in reduceSum); argmax gets the flat index into x. */
  reduceMax(
    x: Data,
    xShape: readonly number[],
    out: Data,
    outShape: readonly number[],
    argmax: Int32Array,
  ): void;

  /** Row-wise softmax (log = false) or log-softmax (log = true) of x viewed as [rows, cols]. */
  softmaxForward(x: Data, out: Data, rows: number, cols: number, log: boolean): void;
  /** gradX from y (the forward output) and gradOut. */
  softmaxBackward(y: Data, gradOut: Data, gradX: Data, rows: number, cols: number, log: boolean): void;

  /** Copy x [d0, d1, ...] into out with axes permuted: out.shape[i] = xShape[perm[i]]. */
  transpose(x: Data, xShape: readonly number[], perm: readonly number[], out: Data): void;
}
