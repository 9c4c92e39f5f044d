/**
 * The typed Backend interface: the few kernels every tensile backend provides.
 *
 * Kernels work on flat, contiguous, row-major typed arrays and never allocate their outputs: the
 * caller (the op layer) allocates `out` and passes shapes. That keeps tensor lifetime in one place
 * (src/tensor) and lets a backend be a plain object of functions.
 *
 * The reference backend (./reference) implements every kernel in plain TypeScript and is the
 * executable specification; fast backends (WebAssembly, native) are tables of the hot kernels, per
 * dtype, that ./kernels.ts completes with the reference kernels, and are tested against it
 * (test/conformance/). A kernel missing from a backend is a compile error, never a run-time lookup.
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

/**
 * One Adam or AdamW step's settings (PyTorch's formulation; src/optim/adam.ts writes out the
 * algorithm). The caller counts steps and passes the bias corrections for step t.
 */
export interface AdamStep {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** λ: an L2 term λ·θ added to the gradient (Adam), or decoupled decay θ·(1 − lr·λ) (AdamW). */
  weightDecay: number;
  decoupledWeightDecay: boolean;
  /** 1 − β₁ᵗ for step t (1-based). */
  biasCorrection1: number;
  /** 1 − β₂ᵗ for step t. */
  biasCorrection2: number;
}

/** One SGD step's settings (PyTorch's formulation; src/optim/sgd.ts writes out the algorithm). */
export interface SgdStep {
  lr: number;
  momentum: number;
  dampening: number;
  nesterov: boolean;
  weightDecay: number;
  /** True on the parameter's first step: the momentum buffer is then set to the gradient. */
  firstStep: boolean;
}

/**
 * Memory a backend keeps float32 tensors in so that its kernels work on them in place (the wasm
 * backend: its module's memory, which kernels cannot reach JavaScript arrays outside of). Tensor
 * buffers that src/tensor/memory.ts allocates while the backend is current come from here.
 */
export interface TensorStorage {
  /** An array of `size` elements, contents undefined; null when the storage declines (full). */
  allocate(size: number): Float32Array | null;
  /** Gives back the memory of an array that allocate() returned and nothing reads any more; false if it is not one. */
  free(data: Data): boolean;
  /** Whether data is an array that allocate() returned and that has not been freed. */
  owns(data: Data): boolean;
}

export interface Backend {
  readonly name: string;
  /** Where tensors live for this backend's kernels; absent: ordinary JavaScript arrays. */
  readonly storage?: TensorStorage;

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
  /**
   * Inference convolution with its epilogue, as each output value v of channel c is written:
   * v·scale[c] + shift[c] (a folded batch norm, or a bias with scale 1), then + residual (same shape
   * as out, when given: a residual block's shortcut), then max(v, 0) when relu. out has the bits of
   * conv2dForward followed by channelAffine, binary add and activationForward relu on this backend;
   * the reference composes those kernels (through `this`; channelAffineRelu, which has the same
   * bits, where there is no residual), a fast backend fuses them into the convolution's write-back.
   * out must not alias x or residual.
   * x: [N, Cin, H, W]; weight: [Cout, Cin, kh, kw]; scale, shift: [Cout]; residual, out: [N, Cout, Hout, Wout].
   */
  conv2dForwardFused(
    x: Data,
    weight: Data,
    scale: Data,
    shift: Data,
    residual: Data | null,
    out: Data,
    g: Conv2dGeometry,
    relu: boolean,
  ): void;
  /**
   * conv2dForwardFused without a residual, then 2×2 max pooling with stride 2 (no padding, windows
   * past the last whole one dropped): out has the bits of conv2dForwardFused followed by
   * maxPool2dValues. The reference composes those two kernels (through `this`); a fast backend
   * pools the convolution's outputs while they are in registers, where the shape lets it, and
   * never writes the full-size output.
   * x: [N, Cin, H, W]; weight: [Cout, Cin, kh, kw]; scale, shift: [Cout];
   * out: [N, Cout, floor(Hout / 2), floor(Wout / 2)].
   */
  conv2dForwardFusedMaxPool(
    x: Data,
    weight: Data,
    scale: Data,
    shift: Data,
    out: Data,
    g: Conv2dGeometry,
    relu: boolean,
  ): void;
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
  /**
   * maxPool2dForward's values without the argmax (inference, where no backward pass reads it): the
   * same out, bit for bit.
   */
  maxPool2dValues(x: Data, out: Data, g: Pool2dGeometry): void;
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
  /**
   * Training-mode batch norm followed by ReLU: out = max(y, 0) for batchNormTrainForward's y, with
   * mean and invStd saved as there. The reference composes the two kernels (through `this`, so a
   * backend that overrides them keeps its own); a backend may fuse them into one pass over memory.
   */
  batchNormReluTrainForward(
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
   * Backward of batchNormReluTrainForward: the batch-norm gradient of gradOut·[y > 0], where y is the
   * forward's output (positive exactly where the batch-norm output was). Overwrites gradX, gradGamma
   * and gradBeta. The inputs are the forward's own; a backend may read the mask from y or recompute
   * it from x, gamma, beta, mean and invStd as its forward computed y.
   */
  batchNormReluTrainBackward(
    x: Data,
    y: Data,
    gradOut: Data,
    gamma: Data,
    beta: Data,
    mean: Data,
    invStd: Data,
    gradX: Data,
    gradGamma: Data,
    gradBeta: Data,
    g: BatchNormGeometry,
  ): void;
  /**
   * Training-mode batch norm with ReLU into y (batchNormReluTrainForward), then 2×2 max pooling with
   * stride 2 of y (maxPool2dForward: no padding, windows past the last whole one dropped): out,
   * argmax, mean and invStd have those two kernels' bits. The reference composes them (through
   * `this`); a fast backend may pool each plane while it is in cache and leave y unwritten, y then
   * being storage the op provides for backends that compose.
   * x, y: [N, C, H, W] (g.inHeight, g.inWidth); out, argmax: [N, C, floor(H / 2), floor(W / 2)];
   * gamma, beta, mean, invStd: [C].
   */
  batchNormReluMaxPoolTrainForward(
    x: Data,
    gamma: Data,
    beta: Data,
    y: Data,
    out: Data,
    argmax: Int32Array,
    mean: Data,
    invStd: Data,
    eps: number,
    g: Pool2dGeometry,
  ): void;
  /**
   * Backward of batchNormReluMaxPoolTrainForward: the bits of maxPool2dBackward of gradOut (pooled)
   * followed by batchNormReluTrainBackward with that gradient. y as the forward left it (a backend
   * that did not write it must not read it). Overwrites gradX, gradGamma and gradBeta.
   */
  batchNormReluMaxPoolTrainBackward(
    x: Data,
    y: Data,
    gradOut: Data,
    argmax: Int32Array,
    gamma: Data,
    beta: Data,
    mean: Data,
    invStd: Data,
    gradX: Data,
    gradGamma: Data,
    gradBeta: Data,
    g: Pool2dGeometry,
  ): void;
  /** out = max(x·scale[c] + shift[c], 0): inference-mode batch norm followed by ReLU. */
  channelAffineRelu(x: Data, scale: Data, shift: Data, out: Data, g: BatchNormGeometry): void;
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

  /**
   * One Adam/AdamW step, in place, for one parameter θ of n elements with gradient ∇θ and moment
   * buffers m and v (all length n, all the same dtype):
   *   g ← ∇θ + λ·θ (L2, Adam only);  θ ← θ·(1 − lr·λ) (decoupled, AdamW only)
   *   m ← β₁·m + (1 − β₁)·g;  v ← β₂·v + (1 − β₂)·g²
   *   θ ← θ − (lr/biasCorrection1)·m / (√v/√biasCorrection2 + ε)
   * Each element is computed in float64 and rounded once on store, as the reference does, so every
   * backend gives the same bits.
   */
  adamUpdate(parameter: Data, gradient: Data, m: Data, v: Data, step: AdamStep): void;
  /**
   * One SGD step, in place: g ← ∇θ + λ·θ; with momentum μ > 0 the buffer b (length n, else null)
   * becomes g on the first step, else μ·b + (1 − dampening)·g, and g ← g + μ·b (Nesterov) or b;
   * then θ ← θ − lr·g. Computed in float64 per element like adamUpdate.
   */
  sgdUpdate(parameter: Data, gradient: Data, momentumBuffer: Data | null, step: SgdStep): void;

  /** Copy x [d0, d1, ...] into out with axes permuted: out.shape[i] = xShape[perm[i]]. */
  transpose(x: Data, xShape: readonly number[], perm: readonly number[], out: Data): void;
}
