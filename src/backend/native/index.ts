/**
 * The native CPU backend: C++ kernels (AVX-512, AVX2/FMA or portable vector code, chosen at run
 * time from the CPU), multi-threaded, compiled from native/ by node-gyp during `npm install`, or,
 * where that cannot run, the package's prebuilt copy for this platform (prebuilds/). native/README.md
 * describes the kernels' design.
 *
 * The addon works zero-copy on the Float32Array buffers. Kernels it does not cover, and every call
 * with float64 data, go to the reference backend (../kernels.ts), so the native backend implements
 * the whole Backend interface. Results do not depend on the thread count: work is split so that every output
 * element is summed in the same order whatever the number of threads.
 *
 * Example:
 * ```ts
 * const backend = loadNativeBackend() ?? referenceBackend; // null when the addon is not built
 * setNativeThreads(2);
 * backend.matmul(a, b, out, m, n, k, false, false, false); // out[m,n] = a[m,k]·b[k,n]
 * ```
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

import {
  channelArguments,
  convArguments,
  poolWindowArguments,
  type ChannelArguments,
  type ConvArguments,
  type PoolWindowArguments,
} from '../arguments.js';
import { DECLINED, fastBackend } from '../kernels.js';
import type { ActivationKind, Backend, BatchNormGeometry, BinaryKind, Pool2dGeometry } from '../types.js';

/** Pool2dGeometry as the addon takes it: batch and channels, then the window. */
type PoolArguments = [batch: number, channels: number, ...window: PoolWindowArguments];

/** The functions exported by native/build/Release/tensile_native.node (see native/src/addon.cc). */
interface NativeAddon {
  matmul(
    a: Float32Array,
    b: Float32Array,
    out: Float32Array,
    m: number,
    n: number,
    k: number,
    transposeA: boolean,
    transposeB: boolean,
    accumulate: boolean,
  ): void;
  conv2dForward(x: Float32Array, weight: Float32Array, out: Float32Array, ...geometry: ConvArguments): void;
  conv2dBackwardInput(
    gradOut: Float32Array,
    weight: Float32Array,
    gradX: Float32Array,
    ...geometry: ConvArguments
  ): void;
  conv2dBackwardWeight(
    x: Float32Array,
    gradOut: Float32Array,
    gradWeight: Float32Array,
    ...geometry: ConvArguments
  ): void;
  conv2dForwardFused(
    x: Float32Array,
    weight: Float32Array,
    scale: Float32Array,
    shift: Float32Array,
    residual: Float32Array | null,
    out: Float32Array,
    relu: boolean,
    ...geometry: ConvArguments
  ): void;
  /** false where the convolution cannot pool as it writes (out untouched). */
  conv2dForwardFusedMaxPool(
    x: Float32Array,
    weight: Float32Array,
    scale: Float32Array,
    shift: Float32Array,
    out: Float32Array,
    relu: boolean,
    ...geometry: ConvArguments
  ): boolean;
  maxPool2dForward(x: Float32Array, out: Float32Array, argmax: Int32Array, ...geometry: PoolArguments): void;
  maxPool2dValues(x: Float32Array, out: Float32Array, ...geometry: PoolArguments): void;
  maxPool2dBackward(
    gradOut: Float32Array,
    argmax: Int32Array,
    gradX: Float32Array,
    ...geometry: PoolArguments
  ): void;
  avgPool2dForward(
    x: Float32Array,
    out: Float32Array,
    countIncludePad: boolean,
    ...geometry: PoolArguments
  ): void;
  avgPool2dBackward(
    gradOut: Float32Array,
    gradX: Float32Array,
    countIncludePad: boolean,
    ...geometry: PoolArguments
  ): void;
  batchNormTrainForward(
    x: Float32Array,
    gamma: Float32Array,
    beta: Float32Array,
    out: Float32Array,
    mean: Float32Array,
    invStd: Float32Array,
    eps: number,
    ...geometry: ChannelArguments
  ): void;
  batchNormTrainBackward(
    x: Float32Array,
    gradOut: Float32Array,
    gamma: Float32Array,
    mean: Float32Array,
    invStd: Float32Array,
    gradX: Float32Array,
    gradGamma: Float32Array,
    gradBeta: Float32Array,
    ...geometry: ChannelArguments
  ): void;
  channelAffine(
    x: Float32Array,
    scale: Float32Array,
    shift: Float32Array,
    out: Float32Array,
    ...geometry: ChannelArguments
  ): void;
  batchNormReluTrainForward(
    x: Float32Array,
    gamma: Float32Array,
    beta: Float32Array,
    out: Float32Array,
    mean: Float32Array,
    invStd: Float32Array,
    eps: number,
    ...geometry: ChannelArguments
  ): void;
  batchNormReluTrainBackward(
    x: Float32Array,
    gradOut: Float32Array,
    gamma: Float32Array,
    beta: Float32Array,
    mean: Float32Array,
    invStd: Float32Array,
    gradX: Float32Array,
    gradGamma: Float32Array,
    gradBeta: Float32Array,
    ...geometry: ChannelArguments
  ): void;
  batchNormReluMaxPoolTrainForward(
    x: Float32Array,
    gamma: Float32Array,
    beta: Float32Array,
    out: Float32Array,
    argmax: Int32Array,
    mean: Float32Array,
    invStd: Float32Array,
    eps: number,
    ...geometry: PoolArguments
  ): void;
  batchNormReluMaxPoolTrainBackward(
    x: Float32Array,
    gradOut: Float32Array,
    argmax: Int32Array,
    gamma: Float32Array,
    beta: Float32Array,
    mean: Float32Array,
    invStd: Float32Array,
    gradX: Float32Array,
    gradGamma: Float32Array,
    gradBeta: Float32Array,
    ...geometry: PoolArguments
  ): void;
  channelAffineRelu(
    x: Float32Array,
    scale: Float32Array,
    shift: Float32Array,
    out: Float32Array,
    ...geometry: ChannelArguments
  ): void;
  channelSum(x: Float32Array, out: Float32Array, ...geometry: ChannelArguments): void;
  activationForward(kind: number, x: Float32Array, out: Float32Array, alpha: number): void;
  activationBackward(
    kind: number,
    x: Float32Array,
    y: Float32Array,
    gradOut: Float32Array,
    gradX: Float32Array,
    alpha: number,
  ): void;
  binary(
    kind: number,
    a: Float32Array,
    aMode: number,
    b: Float32Array,
    bMode: number,
    out: Float32Array,
    outer: number,
    middle: number,
    inner: number,
  ): void;
  scaleShift(x: Float32Array, scale: number, shift: number, out: Float32Array): void;
  adamUpdate(
    parameter: Float32Array,
    gradient: Float32Array,
    m: Float32Array,
    v: Float32Array,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    decoupledWeightDecay: boolean,
    biasCorrection1: number,
    biasCorrection2: number,
  ): void;
  sgdUpdate(
    parameter: Float32Array,
    gradient: Float32Array,
    momentumBuffer: Float32Array | null,
    lr: number,
    momentum: number,
    dampening: number,
    nesterov: boolean,
    weightDecay: number,
    firstStep: boolean,
  ): void;
  setThreads(count: number): void;
  getThreads(): number;
  setIsa(name: string): boolean;
  setWinograd(enabled: boolean): boolean;
  getIsa(): string;
  cpuHasAvx2(): boolean;
}

/** Every function of NativeAddon, checked at load (the compiler keeps this list complete). */
const addonFunctions = Object.keys({
  matmul: true,
  conv2dForward: true,
  conv2dForwardFused: true,
  conv2dForwardFusedMaxPool: true,
  conv2dBackwardInput: true,
  conv2dBackwardWeight: true,
  maxPool2dForward: true,
  maxPool2dValues: true,
  maxPool2dBackward: true,
  avgPool2dForward: true,
  avgPool2dBackward: true,
  batchNormTrainForward: true,
  batchNormTrainBackward: true,
  channelAffine: true,
  batchNormReluTrainForward: true,
  batchNormReluTrainBackward: true,
  batchNormReluMaxPoolTrainForward: true,
  batchNormReluMaxPoolTrainBackward: true,
  channelAffineRelu: true,
  channelSum: true,
  activationForward: true,
  activationBackward: true,
  binary: true,
  scaleShift: true,
  adamUpdate: true,
  sgdUpdate: true,
  setThreads: true,
  getThreads: true,
  setIsa: true,
  setWinograd: true,
  getIsa: true,
  cpuHasAvx2: true,
} satisfies Record<keyof NativeAddon, true>);

function isNativeAddon(value: unknown): value is NativeAddon {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  return addonFunctions.every((name) => typeof record[name] === 'function');
}

/** Activation kinds the addon implements, with their codes in native/src/kernels.h. */
const activationCodes: Partial<Record<ActivationKind, number>> = {
  relu: 0,
  leaky_relu: 1,
  abs: 2,
  neg: 3,
  square: 4,
};

/** BinaryKind codes in native/src/kernels.h. */
const binaryCodes: Record<BinaryKind, number> = { add: 0, sub: 1, mul: 2, div: 3, maximum: 4, minimum: 5 };

/** How the addon reads a binary operand while walking out as [outer, middle, inner]. */
const enum OperandMode {
  Full = 0,
  Middle = 1,
  Scalar = 2,
}

interface BinaryLayout {
  aMode: OperandMode;
  bMode: OperandMode;
  outer: number;
  middle: number;
  inner: number;
}

const product = (values: readonly number[]): number => values.reduce((p, d) => p * d, 1);

/**
 * Recognises the broadcasts the addon handles: operands equal to the output, scalars, and operands
 * whose non-1 axes form one contiguous block equal to the output's (a per-channel bias [C,1,1] against
 * [N,C,H,W]). Returns null for any other broadcast, which the reference kernel then computes.
 */
function binaryLayout(
  aShape: readonly number[],
  bShape: readonly number[],
  outShape: readonly number[],
): BinaryLayout | null {
  const total = product(outShape);
  const rank = outShape.length;
  let block: [number, number] | null = null;
  const modeOf = (shape: readonly number[]): OperandMode | null => {
    const size = product(shape);
    if (size === total) return OperandMode.Full;
    if (size === 1) return OperandMode.Scalar;
    const offset = rank - shape.length;
    if (offset < 0) return null;
    let first = -1;
    let last = -1;
    for (let axis = 0; axis < shape.length; axis++) {
      if (shape[axis] === 1) continue;
      if (shape[axis] !== outShape[axis + offset]) return null;
      if (first < 0) first = axis + offset;
      else if (last !== axis + offset - 1) return null;
      last = axis + offset;
    }
    if (block !== null && (block[0] !== first || block[1] !== last + 1)) return null;
    block = [first, last + 1];
    return OperandMode.Middle;
  };
  const aMode = modeOf(aShape);
  const bMode = modeOf(bShape);
  if (aMode === null || bMode === null) return null;
  const [start, end]: [number, number] = block ?? [0, rank];
  return {
    aMode,
    bMode,
    outer: product(outShape.slice(0, start)),
    middle: product(outShape.slice(start, end)),
    inner: product(outShape.slice(end)),
  };
}

/**
 * For a reduceSum whose kept axes (those where outShape is not 1, or where xShape is 1 too) form one
 * contiguous block, x viewed as [batch, channels, spatial] with channels the kept block; null for
 * other reductions (the reference kernel computes those).
 */
function keptBlock(xShape: readonly number[], outShape: readonly number[]): BatchNormGeometry | null {
  if (xShape.length !== outShape.length) return null;
  let first = -1;
  let last = -1;
  for (let axis = 0; axis < xShape.length; axis++) {
    if (xShape[axis] === 1) continue;
    if (outShape[axis] === 1) continue;
    if (outShape[axis] !== xShape[axis]) return null;
    if (first >= 0 && last !== axis - 1) {
      // A gap: only axes of size 1 in x may sit between kept axes.
      for (let between = last + 1; between < axis; between++) if (xShape[between] !== 1) return null;
    }
    if (first < 0) first = axis;
    last = axis;
  }
  if (first < 0) return { batch: 1, channels: 1, spatial: product(xShape) };
  return {
    batch: product(xShape.slice(0, first)),
    channels: product(xShape.slice(first, last + 1)),
    spatial: product(xShape.slice(last + 1)),
  };
}

const poolArguments = (g: Pool2dGeometry): PoolArguments => [g.batch, g.channels, ...poolWindowArguments(g)];

/** The addon's kernels, for float32 data; the reference backend runs float64 and what they decline. */
function createNativeBackend(addon: NativeAddon): Backend {
  return fastBackend('native', {
    float32: {
      matmul: (a, b, out, m, n, k, transposeA, transposeB, accumulate) =>
        addon.matmul(a, b, out, m, n, k, transposeA, transposeB, accumulate),
      conv2dForward: (x, weight, out, g) => addon.conv2dForward(x, weight, out, ...convArguments(g)),
      conv2dBackwardInput: (gradOut, weight, gradX, g) =>
        addon.conv2dBackwardInput(gradOut, weight, gradX, ...convArguments(g)),
      conv2dBackwardWeight: (x, gradOut, gradWeight, g) =>
        addon.conv2dBackwardWeight(x, gradOut, gradWeight, ...convArguments(g)),
      conv2dForwardFused: (x, weight, scale, shift, residual, out, g, relu) =>
        addon.conv2dForwardFused(x, weight, scale, shift, residual, out, relu, ...convArguments(g)),
      conv2dForwardFusedMaxPool: (x, weight, scale, shift, out, g, relu) =>
        addon.conv2dForwardFusedMaxPool(x, weight, scale, shift, out, relu, ...convArguments(g))
          ? undefined
          : DECLINED,
      maxPool2dForward: (x, out, argmax, g) => addon.maxPool2dForward(x, out, argmax, ...poolArguments(g)),
      maxPool2dValues: (x, out, g) => addon.maxPool2dValues(x, out, ...poolArguments(g)),
      maxPool2dBackward: (gradOut, argmax, gradX, g) =>
        addon.maxPool2dBackward(gradOut, argmax, gradX, ...poolArguments(g)),
      avgPool2dForward: (x, out, g, countIncludePad) =>
        addon.avgPool2dForward(x, out, countIncludePad, ...poolArguments(g)),
      avgPool2dBackward: (gradOut, gradX, g, countIncludePad) =>
        addon.avgPool2dBackward(gradOut, gradX, countIncludePad, ...poolArguments(g)),
      batchNormTrainForward: (x, gamma, beta, out, mean, invStd, eps, g) =>
        addon.batchNormTrainForward(x, gamma, beta, out, mean, invStd, eps, ...channelArguments(g)),
      batchNormTrainBackward: (x, gradOut, gamma, mean, invStd, gradX, gradGamma, gradBeta, g) =>
        addon.batchNormTrainBackward(
          x,
          gradOut,
          gamma,
          mean,
          invStd,
          gradX,
          gradGamma,
          gradBeta,
          ...channelArguments(g),
        ),
      channelAffine: (x, scale, shift, out, g) =>
        addon.channelAffine(x, scale, shift, out, ...channelArguments(g)),
      batchNormReluTrainForward: (x, gamma, beta, out, mean, invStd, eps, g) =>
        addon.batchNormReluTrainForward(x, gamma, beta, out, mean, invStd, eps, ...channelArguments(g)),
      // The addon recomputes the ReLU mask from the forward's inputs instead of reading y.
      batchNormReluTrainBackward: (
        x,
        _y,
        gradOut,
        gamma,
        beta,
        mean,
        invStd,
        gradX,
        gradGamma,
        gradBeta,
        g,
      ) =>
        addon.batchNormReluTrainBackward(
          x,
          gradOut,
          gamma,
          beta,
          mean,
          invStd,
          gradX,
          gradGamma,
          gradBeta,
          ...channelArguments(g),
        ),
      // Each plane is normalised and pooled while in cache; y is never written, nor read back.
      batchNormReluMaxPoolTrainForward: (x, gamma, beta, _y, out, argmax, mean, invStd, eps, g) =>
        addon.batchNormReluMaxPoolTrainForward(
          x,
          gamma,
          beta,
          out,
          argmax,
          mean,
          invStd,
          eps,
          ...poolArguments(g),
        ),
      batchNormReluMaxPoolTrainBackward: (
        x,
        _y,
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
      ) =>
        addon.batchNormReluMaxPoolTrainBackward(
          x,
          gradOut,
          argmax,
          gamma,
          beta,
          mean,
          invStd,
          gradX,
          gradGamma,
          gradBeta,
          ...poolArguments(g),
        ),
      channelAffineRelu: (x, scale, shift, out, g) =>
        addon.channelAffineRelu(x, scale, shift, out, ...channelArguments(g)),
      channelSum: (x, out, g) => addon.channelSum(x, out, ...channelArguments(g)),
      activationForward(kind, x, out, alpha) {
        const code = activationCodes[kind];
        if (code === undefined) return DECLINED;
        addon.activationForward(code, x, out, alpha);
      },
      activationBackward(kind, x, y, gradOut, gradX, alpha) {
        const code = activationCodes[kind];
        if (code === undefined) return DECLINED;
        addon.activationBackward(code, x, y, gradOut, gradX, alpha);
      },
      scaleShift: (x, scale, shift, out) => addon.scaleShift(x, scale, shift, out),
      reduceSum(x, xShape, out, outShape) {
        const layout = keptBlock(xShape, outShape);
        if (layout === null) return DECLINED;
        // The kept axes are one contiguous block: a sum over [before, kept, after] is channelSum's.
        addon.channelSum(x, out, layout.batch, layout.channels, layout.spatial);
      },
      adamUpdate: (parameter, gradient, m, v, step) =>
        addon.adamUpdate(
          parameter,
          gradient,
          m,
          v,
          step.lr,
          step.beta1,
          step.beta2,
          step.eps,
          step.weightDecay,
          step.decoupledWeightDecay,
          step.biasCorrection1,
          step.biasCorrection2,
        ),
      sgdUpdate: (parameter, gradient, momentumBuffer, step) =>
        addon.sgdUpdate(
          parameter,
          gradient,
          momentumBuffer,
          step.lr,
          step.momentum,
          step.dampening,
          step.nesterov,
          step.weightDecay,
          step.firstStep,
        ),
      binary(kind, a, aShape, b, bShape, out, outShape) {
        const layout = binaryLayout(aShape, bShape, outShape);
        if (layout === null) return DECLINED;
        const { aMode, bMode, outer, middle, inner } = layout;
        addon.binary(binaryCodes[kind], a, aMode, b, bMode, out, outer, middle, inner);
      },
    },
  });
}

/** The package root, from this file compiled to dist/src/backend/native/index.js. */
const packageRoot = new URL('../../../../', import.meta.url);
const platform = `${process.platform}-${process.arch}`;

/**
 * Where the addon may be, in the order tried: the one node-gyp built on this machine (`npm install`
 * runs scripts/build-native.mjs), then the one shipped in the package for this platform (made at
 * pack time by scripts/prepack.mjs), used when there is no compiler or install scripts were skipped.
 */
const addonCandidates: readonly { file: string; missing: string }[] = [
  {
    file: 'native/build/Release/tensile_native.node',
    missing:
      'the addon was not built at install (`npm rebuild tensile` or `node scripts/build-native.mjs` ' +
      'builds it; native/build/build.log says why a build failed)',
  },
  {
    file: `prebuilds/${platform}/tensile_native.node`,
    missing: `the package has no prebuilt addon for ${platform}`,
  },
];

type LoadResult = { addon: NativeAddon; backend: Backend; path: string } | { reason: string };

let loadResult: LoadResult | undefined;
let requestedThreads: number | undefined;

/** Loads the addon at addonPath, or says why it cannot be used. */
function loadFrom(addonPath: string, file: string): { addon: NativeAddon } | { reason: string } {
  try {
    const loaded: unknown = createRequire(import.meta.url)(addonPath);
    if (!isNativeAddon(loaded)) return { reason: `${file} does not export the expected kernels` };
    return { addon: loaded };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { reason: `${file} does not load here (${message})` };
  }
}

function load(): LoadResult {
  if (loadResult !== undefined) return loadResult;
  const reasons: string[] = [];
  for (const candidate of addonCandidates) {
    const addonPath = fileURLToPath(new URL(candidate.file, packageRoot));
    if (!existsSync(addonPath)) {
      reasons.push(candidate.missing);
      continue;
    }
    const loaded = loadFrom(addonPath, candidate.file);
    if ('reason' in loaded) {
      reasons.push(loaded.reason);
      continue;
    }
    const addon = loaded.addon;
    addon.setThreads(requestedThreads ?? defaultThreads());
    // TENSILE_NATIVE_ISA=avx2 (or scalar) forces a narrower variant, e.g. to compare with a CPU that
    // lacks AVX-512; a variant this CPU cannot run is ignored and the default kept.
    const forcedIsa = process.env.TENSILE_NATIVE_ISA;
    if (forcedIsa !== undefined && forcedIsa !== '') addon.setIsa(forcedIsa);
    loadResult = { addon, backend: createNativeBackend(addon), path: addonPath };
    return loadResult;
  }
  loadResult = { reason: reasons.join('; ') };
  return loadResult;
}

/** One thread per core: os.availableParallelism() honours CPU affinity masks and cgroup limits. */
function defaultThreads(): number {
  return Math.max(1, Math.min(256, os.availableParallelism()));
}

/**
 * The native backend, or null when the addon is not built or fails to load (nativeUnavailableReason()
 * then says why). Loads the addon on first call; later calls return the same object.
 */
export function loadNativeBackend(): Backend | null {
  const result = load();
  return 'backend' in result ? result.backend : null;
}

/** Why loadNativeBackend() returns null, or null when the native backend is available. */
export function nativeUnavailableReason(): string | null {
  const result = load();
  return 'reason' in result ? result.reason : null;
}

/**
 * The file the native backend was loaded from (native/build/Release/ when built at install,
 * prebuilds/<platform>-<arch>/ when the package's prebuilt is used), or null when it is unavailable.
 */
export function nativeAddonPath(): string | null {
  const result = load();
  return 'path' in result ? result.path : null;
}

/**
 * Sets the number of threads the native kernels use (the calling thread included), 1 to 256.
 * The default is the number of cores available to the process. Results are the same for any count.
 */
export function setNativeThreads(count: number): void {
  if (!Number.isInteger(count) || count < 1 || count > 256) {
    throw new RangeError(`thread count must be an integer from 1 to 256, got ${count}`);
  }
  requestedThreads = count;
  const result = loadResult;
  if (result !== undefined && 'addon' in result) result.addon.setThreads(count);
}

/** The number of threads the native kernels use (or will use once loaded). */
export function getNativeThreads(): number {
  const result = loadResult;
  if (result !== undefined && 'addon' in result) return result.addon.getThreads();
  return requestedThreads ?? defaultThreads();
}

/** Instruction-set variants of the native GEMM kernels. */
export type NativeIsa = 'avx512' | 'avx2' | 'scalar';

const nativeIsas: readonly NativeIsa[] = ['avx512', 'avx2', 'scalar'];

/**
 * Chooses the kernels' instruction-set variant; returns false (and changes nothing) when this CPU
 * or build lacks it. The default is the best the CPU has: AVX-512, else AVX2+FMA, else the portable
 * scalar code, or the one named by the environment variable TENSILE_NATIVE_ISA. Meant for tests and
 * benchmarks of each path.
 */
export function setNativeIsa(isa: NativeIsa): boolean {
  const result = load();
  return 'addon' in result ? result.addon.setIsa(isa) : false;
}

/**
 * Switches the native backend's Winograd F(2×2, 3×3) path for 3×3, stride-1, padding-1
 * convolutions with 48 to 256 channels on each side (forward, fused inference and input gradient);
 * off, those run as direct convolutions, which round differently. On by default unless the
 * environment sets TENSILE_NATIVE_WINOGRAD=0. Returns the previous setting (false when the addon is
 * not loaded). Meant for tests and benchmarks of each path.
 */
export function setNativeWinograd(enabled: boolean): boolean {
  const result = load();
  return 'addon' in result ? result.addon.setWinograd(enabled) : false;
}

/** The instruction-set variant in use, or null when the addon is not loaded. */
export function getNativeIsa(): NativeIsa | null {
  const result = load();
  if (!('addon' in result)) return null;
  const isa = result.addon.getIsa();
  return nativeIsas.find((known) => known === isa) ?? null;
}

/** The variants this CPU and build can run, best first. */
export function availableNativeIsas(): NativeIsa[] {
  const result = load();
  if (!('addon' in result)) return [];
  const addon = result.addon;
  const current = addon.getIsa();
  const available = nativeIsas.filter((isa) => addon.setIsa(isa));
  addon.setIsa(current);
  return available;
}
