/**
 * Fast backends as kernel tables. A fast backend (wasm, native) states which kernels it implements
 * and for which dtype; fastBackend() builds the whole Backend from that table, running the
 * reference kernel for every call whose tensors are not all of a dtype the fast kernel handles, and
 * for every kernel the table leaves out. That check is written once here, not in each kernel.
 *
 * Example:
 * ```ts
 * const backend = fastBackend('mine', {
 *   float32: {
 *     // a, b and out are Float32Array here: float64 calls never reach this function.
 *     matmul: (a, b, out, m, n, k, transposeA, transposeB, accumulate) => myGemm(a, b, out, m, n, k),
 *   },
 * });
 * backend.matmul(new Float64Array(4), b64, out64, 2, 2, 2, false, false, false); // reference kernel
 * ```
 */
import { referenceBackend } from './reference/index.js';
import type { Backend, Data, DType, TensorStorage } from './types.js';

/** The names of Backend's kernels (every member but its name and storage). */
export type KernelName = Exclude<keyof Backend, 'name' | 'storage'>;

/**
 * What a fast kernel returns when it does not handle a call after all (an activation kind or a
 * broadcast pattern it has no code for): the reference kernel then runs with the same arguments.
 */
export const DECLINED: unique symbol = Symbol('declined');

/** The typed array of a dtype. */
export type ArrayOf<D extends DType> = D extends 'float32' ? Float32Array : Float64Array;

/** A parameter list with every tensor (Data) narrowed to ArrayOf<D>; other parameters unchanged. */
type Narrowed<P extends readonly unknown[], D extends DType> = {
  [I in keyof P]: [P[I]] extends [Data]
    ? ArrayOf<D>
    : [P[I]] extends [Data | null]
      ? ArrayOf<D> | null
      : P[I];
};

/** A fast kernel for dtype D: Backend's kernel K with its tensors narrowed to D's array type. */
export type FastKernel<K extends KernelName, D extends DType> = (
  ...args: Narrowed<Parameters<Backend[K]>, D>
) => void | typeof DECLINED;

/** The kernels a backend implements for one dtype; a misspelt or unknown name is a compile error. */
export type KernelsFor<D extends DType> = { readonly [K in KernelName]?: FastKernel<K, D> };

/** A fast backend's kernels, by the dtype they handle (a kernel may appear under several). */
export type KernelTable = { readonly [D in DType]?: KernelsFor<D> };

/**
 * Per kernel, which parameters are tensors (true) and which are not (false): the tuple has one entry
 * per parameter, and the compiler checks every entry against Backend's signature, so a kernel added
 * to Backend, or a parameter added to a kernel, fails to compile until it is described here.
 */
type TensorMask<P extends readonly unknown[]> = {
  [I in keyof P]: [P[I]] extends [Data] ? true : [P[I]] extends [Data | null] ? true : false;
};

/** Marks a tensor parameter in tensorArguments. */
const tensor = true;
/** Marks any other parameter (a size, a flag, a kind, a shape, an Int32Array of indices). */
const other = false;

/** Which parameters of each kernel are tensors, checked against Backend (see TensorMask). */
export const tensorArguments: { readonly [K in KernelName]: TensorMask<Parameters<Backend[K]>> } = {
  matmul: [tensor, tensor, tensor, other, other, other, other, other, other],
  conv2dForward: [tensor, tensor, tensor, other],
  conv2dForwardFused: [tensor, tensor, tensor, tensor, tensor, tensor, other, other],
  conv2dForwardFusedMaxPool: [tensor, tensor, tensor, tensor, tensor, other, other],
  conv2dBackwardInput: [tensor, tensor, tensor, other],
  conv2dBackwardWeight: [tensor, tensor, tensor, other],
  maxPool2dForward: [tensor, tensor, other, other],
  maxPool2dValues: [tensor, tensor, other],
  maxPool2dBackward: [tensor, other, tensor, other],
  avgPool2dForward: [tensor, tensor, other, other],
  avgPool2dBackward: [tensor, tensor, other, other],
  batchNormTrainForward: [tensor, tensor, tensor, tensor, tensor, tensor, other, other],
  batchNormTrainBackward: [tensor, tensor, tensor, tensor, tensor, tensor, tensor, tensor, other],
  batchNormReluTrainForward: [tensor, tensor, tensor, tensor, tensor, tensor, other, other],
  batchNormReluTrainBackward: [
    tensor,
    tensor,
    tensor,
    tensor,
    tensor,
    tensor,
    tensor,
    tensor,
    tensor,
    tensor,
    other,
  ],
  batchNormReluMaxPoolTrainForward: [
    tensor,
    tensor,
    tensor,
    tensor,
    tensor,
    other,
    tensor,
    tensor,
    other,
    other,
  ],
  batchNormReluMaxPoolTrainBackward: [
    tensor,
    tensor,
    tensor,
    other,
    tensor,
    tensor,
    tensor,
    tensor,
    tensor,
    tensor,
    tensor,
    other,
  ],
  channelAffineRelu: [tensor, tensor, tensor, tensor, other],
  channelAffine: [tensor, tensor, tensor, tensor, other],
  channelSum: [tensor, tensor, other],
  activationForward: [other, tensor, tensor, other],
  activationBackward: [other, tensor, tensor, tensor, tensor, other],
  binary: [other, tensor, other, tensor, other, tensor, other],
  scaleShift: [tensor, other, other, tensor],
  power: [tensor, other, tensor],
  reduceSum: [tensor, other, tensor, other],
  reduceMax: [tensor, other, tensor, other, other],
  softmaxForward: [tensor, tensor, other, other, other],
  softmaxBackward: [tensor, tensor, tensor, other, other, other],
  adamUpdate: [tensor, tensor, tensor, tensor, other],
  sgdUpdate: [tensor, tensor, tensor, other],
  transpose: [tensor, other, other, tensor],
};

/**
 * The dispatcher below takes at most this many arguments (named, not a rest array: V8 allocates an
 * array for `...args` on every call, and kernels run thousands of times a second).
 */
type AtMostTwelve = [
  unknown?,
  unknown?,
  unknown?,
  unknown?,
  unknown?,
  unknown?,
  unknown?,
  unknown?,
  unknown?,
  unknown?,
  unknown?,
  unknown?,
];
/** The kernels with more parameters than that: none, or the declaration below fails to compile. */
type TooManyParameters = {
  [K in KernelName]: Parameters<Backend[K]> extends AtMostTwelve ? never : K;
}[KernelName];
const arityChecked: [TooManyParameters] extends [never] ? true : never = true;

/** Every kernel's name, in Backend's order. */
export const kernelNames = Object.keys(tensorArguments) as KernelName[];

/** A kernel with its parameter types erased, as the dispatcher calls it. */
type AnyKernel = (...args: unknown[]) => void | typeof DECLINED;

/** Whether an argument at a tensor position may go to the fast kernel of `arrayType`. */
function handledBy(
  arrayType: typeof Float32Array | typeof Float64Array,
  isTensor: boolean,
  value: unknown,
): boolean {
  return !isTensor || value === null || value instanceof arrayType;
}

/**
 * Backend kernel `name`: fast32 when every tensor argument is a Float32Array (null counts as any
 * dtype, for an optional buffer), else fast64 when every one is a Float64Array, else (or when the fast
 * kernel declines) the reference kernel, called as a method of `backend` so that a reference kernel
 * composed of others (batchNormReluTrainForward) runs the backend's fast ones.
 */
function dispatcher(
  name: KernelName,
  fast32: AnyKernel | undefined,
  fast64: AnyKernel | undefined,
  backend: Backend,
): AnyKernel {
  const reference = referenceBackend[name] as AnyKernel;
  const mask: readonly boolean[] = tensorArguments[name];
  // Parameters past the kernel's own count are not tensors (the dispatcher passes them as undefined).
  const [m0 = other, m1 = other, m2 = other, m3 = other, m4 = other, m5 = other, m6 = other, m7 = other] =
    mask;
  const [m8 = other, m9 = other, m10 = other, m11 = other] = mask.slice(8);
  const all = (
    type: typeof Float32Array | typeof Float64Array,
    a0: unknown,
    a1: unknown,
    a2: unknown,
    a3: unknown,
    a4: unknown,
    a5: unknown,
    a6: unknown,
    a7: unknown,
    a8: unknown,
    a9: unknown,
    a10: unknown,
    a11: unknown,
  ): boolean =>
    handledBy(type, m0, a0) &&
    handledBy(type, m1, a1) &&
    handledBy(type, m2, a2) &&
    handledBy(type, m3, a3) &&
    handledBy(type, m4, a4) &&
    handledBy(type, m5, a5) &&
    handledBy(type, m6, a6) &&
    handledBy(type, m7, a7) &&
    handledBy(type, m8, a8) &&
    handledBy(type, m9, a9) &&
    handledBy(type, m10, a10) &&
    handledBy(type, m11, a11);
  return (a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11) => {
    if (fast32 !== undefined && all(Float32Array, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11)) {
      if (fast32(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11) !== DECLINED) return;
    } else if (fast64 !== undefined && all(Float64Array, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11)) {
      if (fast64(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11) !== DECLINED) return;
    }
    reference.call(backend, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11);
  };
}

/**
 * The Backend called `name` that runs `table`'s kernels where they apply and the reference kernels
 * everywhere else (see dispatcher). `storage` is where tensors live for its kernels, if not in
 * ordinary JavaScript arrays.
 */
export function fastBackend(name: string, table: KernelTable, storage?: TensorStorage): Backend {
  const backend: Record<string, unknown> = { ...referenceBackend, name };
  if (storage !== undefined) backend.storage = storage;
  // Every key of the spread is a Backend member, and each kernel is replaced below by one of the same
  // signature (the dispatcher passes its arguments through unchanged).
  const built = backend as unknown as Backend;
  for (const kernel of kernelNames) {
    const fast32 = table.float32?.[kernel] as AnyKernel | undefined;
    const fast64 = table.float64?.[kernel] as AnyKernel | undefined;
    if (fast32 === undefined && fast64 === undefined) continue;
    backend[kernel] = dispatcher(kernel, fast32, fast64, built);
  }
  void arityChecked;
  return built;
}
