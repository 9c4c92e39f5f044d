/**
 * The conformance cases of every Backend kernel: what each runs, on which shapes, and how close to
 * the reference it must be. Typed by KernelName, so a kernel added to Backend without cases here
 * fails to compile.
 */
import { referenceBackend } from '../../src/backend/reference/index.js';
import type { KernelName } from '../../src/backend/kernels.js';
import type {
  ActivationKind,
  AdamStep,
  Backend,
  BatchNormGeometry,
  BinaryKind,
  Conv2dGeometry,
  Data,
  DType,
  Pool2dGeometry,
  SgdStep,
} from '../../src/backend/types.js';
import {
  binaryShapes,
  broadcastOperandShapes,
  channelCases,
  channelSumCases,
  convCases,
  elementwiseSizes,
  matmulShapes,
  poolCases,
  randomArray,
  reduceShapes,
  sizeOf,
} from './shapes.js';
import { exact, normalized, reassociated, rounded, type Tolerance } from './tolerance.js';

/** A kernel's outputs by name (the arrays it writes). */
export type Outputs = Record<string, Data | Int32Array>;

export interface KernelCase {
  readonly name: string;
  /** Runs the kernel on backend with fresh inputs of dtype (the same values every call). */
  run(backend: Backend, dtype: DType): Outputs;
  /** How close each float output must be to the reference's (Int32 outputs must be equal). */
  readonly tolerance: Tolerance | Readonly<Record<string, Tolerance>>;
  /**
   * For fused kernels: the same call through the reference's composition of unfused kernels, run on
   * the backend's own kernels; the fused kernel must give exactly these bits.
   */
  unfused?(backend: Backend): Outputs;
  /**
   * False for cases that check a property only (fused against unfused, say) rather than the
   * reference's values.
   */
  readonly againstReference?: boolean;
}

/** An output array of dtype filled with NaN, so a kernel that does not overwrite it is caught. */
function unwritten(dtype: DType, length: number): Data {
  return (dtype === 'float32' ? new Float32Array(length) : new Float64Array(length)).fill(Number.NaN);
}

/** Copies values into an array of dtype. */
function as(dtype: DType, values: ArrayLike<number>): Data {
  return dtype === 'float32' ? Float32Array.from(values) : Float64Array.from(values);
}

function matmulCases(): KernelCase[] {
  const cases: KernelCase[] = [];
  for (const [m, n, k] of matmulShapes) {
    const large = m * n * k > 1e7;
    for (const transposeA of [false, true]) {
      for (const transposeB of [false, true]) {
        for (const accumulate of [false, true]) {
          // The large product checks thread splitting; two layouts suffice there.
          if (large && (accumulate || transposeA !== transposeB)) continue;
          cases.push({
            name: `${m}x${n}x${k} transposeA=${transposeA} transposeB=${transposeB} accumulate=${accumulate}`,
            tolerance: reassociated(k),
            run(backend, dtype) {
              const a = randomArray(dtype, m * k, m * 7 + k);
              const b = randomArray(dtype, k * n, n * 13 + k);
              const out = accumulate ? randomArray(dtype, m * n, m + n) : unwritten(dtype, m * n);
              backend.matmul(a, b, out, m, n, k, transposeA, transposeB, accumulate);
              return { out };
            },
          });
        }
      }
    }
  }
  return cases;
}

function convInputs(g: Conv2dGeometry, dtype: DType) {
  return {
    x: randomArray(dtype, g.batch * g.inChannels * g.inHeight * g.inWidth, 11),
    weight: randomArray(dtype, g.outChannels * g.inChannels * g.kernelHeight * g.kernelWidth, 12),
    gradOut: randomArray(dtype, g.batch * g.outChannels * g.outHeight * g.outWidth, 13),
  };
}

function convForwardCases(): KernelCase[] {
  return convCases.map(({ name, geometry: g }) => ({
    name,
    tolerance: reassociated(g.inChannels * g.kernelHeight * g.kernelWidth),
    run(backend, dtype) {
      const { x, weight } = convInputs(g, dtype);
      const out = unwritten(dtype, g.batch * g.outChannels * g.outHeight * g.outWidth);
      backend.conv2dForward(x, weight, out, g);
      return { out };
    },
  }));
}

/**
 * The fused inference convolution on every convolution geometry, with the epilogue's three shapes:
 * a folded batch norm alone, with ReLU, and with a residual add before the ReLU (a residual block's
 * last convolution). The fused kernel must give the bits of the unfused kernels on the same backend.
 */
function convForwardFusedCases(): KernelCase[] {
  const epilogues = [
    { label: 'affine', residual: false, relu: false },
    { label: 'affine + relu', residual: false, relu: true },
    { label: 'affine + residual + relu', residual: true, relu: true },
  ];
  return convCases.flatMap(({ name, geometry: g }) =>
    epilogues.map(({ label, residual, relu }): KernelCase => {
      const run = (backend: Backend, fused: Backend['conv2dForwardFused'], dtype: DType): Outputs => {
        const { x, weight } = convInputs(g, dtype);
        const count = g.batch * g.outChannels * g.outHeight * g.outWidth;
        const scale = randomArray(dtype, g.outChannels, 14);
        const shift = randomArray(dtype, g.outChannels, 15);
        const shortcut = residual ? randomArray(dtype, count, 16) : null;
        const out = unwritten(dtype, count);
        fused.call(backend, x, weight, scale, shift, shortcut, out, g, relu);
        return { out };
      };
      return {
        name: `${name}, ${label}`,
        // The convolution's reassociation, then an affine map and an add (a few more roundings).
        tolerance: reassociated(g.inChannels * g.kernelHeight * g.kernelWidth + 4),
        run: (backend, dtype) => run(backend, backend.conv2dForwardFused, dtype),
        unfused: (backend) => run(backend, referenceBackend.conv2dForwardFused, 'float32'),
      };
    }),
  );
}

/**
 * The fused inference convolution followed by 2×2 max pooling, on every convolution geometry, with
 * and without ReLU, and with a NaN in the input (which the pooling must pass on as maxPool2dValues
 * does): the bits of the unfused kernels on the same backend.
 */
function convForwardFusedMaxPoolCases(): KernelCase[] {
  const variants = [
    { label: 'affine, pooled', relu: false, nan: false },
    { label: 'affine + relu, pooled', relu: true, nan: false },
    { label: 'affine with a NaN input, pooled', relu: false, nan: true },
  ];
  return convCases.flatMap(({ name, geometry: g }) =>
    variants.map(({ label, relu, nan }): KernelCase => {
      const run = (backend: Backend, fused: Backend['conv2dForwardFusedMaxPool'], dtype: DType): Outputs => {
        const { x, weight } = convInputs(g, dtype);
        if (nan) x[Math.floor(x.length / 3)] = Number.NaN;
        const scale = randomArray(dtype, g.outChannels, 14);
        const shift = randomArray(dtype, g.outChannels, 15);
        const out = unwritten(
          dtype,
          g.batch * g.outChannels * Math.floor(g.outHeight / 2) * Math.floor(g.outWidth / 2),
        );
        fused.call(backend, x, weight, scale, shift, out, g, relu);
        return { out };
      };
      return {
        name: `${name}, ${label}`,
        tolerance: reassociated(g.inChannels * g.kernelHeight * g.kernelWidth + 4),
        run: (backend, dtype) => run(backend, backend.conv2dForwardFusedMaxPool, dtype),
        unfused: (backend) => run(backend, referenceBackend.conv2dForwardFusedMaxPool, 'float32'),
      };
    }),
  );
}

function convBackwardInputCases(): KernelCase[] {
  return convCases.map(({ name, geometry: g }) => ({
    name,
    tolerance: reassociated(g.outChannels * g.kernelHeight * g.kernelWidth),
    run(backend, dtype) {
      const { x, weight, gradOut } = convInputs(g, dtype);
      const gradX = unwritten(dtype, x.length);
      backend.conv2dBackwardInput(gradOut, weight, gradX, g);
      return { gradX };
    },
  }));
}

function convBackwardWeightCases(): KernelCase[] {
  return convCases.map(({ name, geometry: g }) => ({
    name,
    tolerance: reassociated(g.batch * g.outHeight * g.outWidth),
    run(backend, dtype) {
      const { x, weight, gradOut } = convInputs(g, dtype);
      const gradWeight = unwritten(dtype, weight.length);
      backend.conv2dBackwardWeight(x, gradOut, gradWeight, g);
      return { gradWeight };
    },
  }));
}

/** Pooling input: random, or small integers with NaN and −infinity sprinkled in (ties are common). */
function poolInput(g: Pool2dGeometry, dtype: DType, ties: boolean): Data {
  const x = randomArray(dtype, g.batch * g.channels * g.inHeight * g.inWidth, 21);
  if (ties) {
    x.forEach((value, i) => {
      x[i] = i % 37 === 5 ? Number.NaN : i % 29 === 3 ? -Infinity : Math.round(value * 2);
    });
  }
  return x;
}

const poolOutCount = (g: Pool2dGeometry): number => g.batch * g.channels * g.outHeight * g.outWidth;

function maxPoolForwardCases(): KernelCase[] {
  return poolCases.flatMap(({ name, geometry: g }) =>
    [false, true].map((ties): KernelCase => ({
      name: `${name}${ties ? ', ties, NaN and -infinity' : ''}`,
      tolerance: exact,
      run(backend, dtype) {
        const out = unwritten(dtype, poolOutCount(g));
        const argmax = new Int32Array(out.length).fill(-1);
        backend.maxPool2dForward(poolInput(g, dtype, ties), out, argmax, g);
        return { out, argmax };
      },
    })),
  );
}

/** Max pooling's values alone must be maxPool2dForward's out, bit for bit (ties, NaN and −∞ too). */
function maxPoolValuesCases(): KernelCase[] {
  return poolCases.flatMap(({ name, geometry: g }) =>
    [false, true].map((ties): KernelCase => {
      const run = (backend: Backend, values: Backend['maxPool2dValues'], dtype: DType): Outputs => {
        const out = unwritten(dtype, poolOutCount(g));
        values.call(backend, poolInput(g, dtype, ties), out, g);
        return { out };
      };
      return {
        name: `${name}${ties ? ', ties, NaN and -infinity' : ''}`,
        tolerance: exact,
        run: (backend, dtype) => run(backend, backend.maxPool2dValues, dtype),
        // The reference composes maxPool2dForward of the backend itself.
        unfused: (backend) => run(backend, referenceBackend.maxPool2dValues, 'float32'),
      };
    }),
  );
}

function maxPoolBackwardCases(): KernelCase[] {
  return poolCases.map(({ name, geometry: g }) => ({
    name,
    tolerance: rounded,
    run(backend, dtype) {
      // The windows' winners as the reference finds them, ties included.
      const argmax = new Int32Array(poolOutCount(g));
      referenceBackend.maxPool2dForward(
        poolInput(g, dtype, true),
        unwritten(dtype, argmax.length),
        argmax,
        g,
      );
      const gradX = unwritten(dtype, g.batch * g.channels * g.inHeight * g.inWidth);
      backend.maxPool2dBackward(randomArray(dtype, argmax.length, 22), argmax, gradX, g);
      return { gradX };
    },
  }));
}

function avgPoolForwardCases(): KernelCase[] {
  return poolCases.flatMap(({ name, geometry: g }) =>
    [false, true].map((countIncludePad): KernelCase => ({
      name: `${name}, countIncludePad=${countIncludePad}`,
      tolerance: rounded,
      run(backend, dtype) {
        const out = unwritten(dtype, poolOutCount(g));
        backend.avgPool2dForward(poolInput(g, dtype, false), out, g, countIncludePad);
        return { out };
      },
    })),
  );
}

function avgPoolBackwardCases(): KernelCase[] {
  return poolCases.flatMap(({ name, geometry: g }) =>
    [false, true].map((countIncludePad): KernelCase => ({
      name: `${name}, countIncludePad=${countIncludePad}`,
      tolerance: rounded,
      run(backend, dtype) {
        const gradX = unwritten(dtype, g.batch * g.channels * g.inHeight * g.inWidth);
        backend.avgPool2dBackward(randomArray(dtype, poolOutCount(g), 22), gradX, g, countIncludePad);
        return { gradX };
      },
    })),
  );
}

/** Batch-norm inputs; nan puts a NaN into x and a −0 into gradOut (for the fused kernels' masks). */
function normInputs(g: BatchNormGeometry, offset: number, dtype: DType, nan = false) {
  const count = g.batch * g.channels * g.spatial;
  const x = randomArray(dtype, count, 31, offset);
  const gradOut = randomArray(dtype, count, 34);
  if (nan) {
    x[1] = Number.NaN;
    gradOut[2] = -0;
  }
  return {
    count,
    x,
    gamma: randomArray(dtype, g.channels, 32, 1),
    beta: randomArray(dtype, g.channels, 33),
    gradOut,
  };
}

const geometryName = (g: BatchNormGeometry, offset = 0): string =>
  `${g.batch}x${g.channels}x${g.spatial}${offset === 0 ? '' : `, mean ${offset}`}`;

/** Forward of (fused) training batch norm on backend: out, mean and invStd. */
function normForward(
  backend: Backend,
  kernel: Backend['batchNormTrainForward'],
  g: BatchNormGeometry,
  offset: number,
  dtype: DType,
  nan: boolean,
): Outputs {
  const { count, x, gamma, beta } = normInputs(g, offset, dtype, nan);
  const out = unwritten(dtype, count);
  const mean = unwritten(dtype, g.channels);
  const invStd = unwritten(dtype, g.channels);
  kernel.call(backend, x, gamma, beta, out, mean, invStd, 1e-5, g);
  return { out, mean, invStd };
}

function normForwardCases(fused: boolean): KernelCase[] {
  const kernel = fused ? 'batchNormReluTrainForward' : 'batchNormTrainForward';
  return channelCases.flatMap(({ geometry: g, offset }) =>
    [false, true].map((nan): KernelCase => ({
      name: `${geometryName(g, offset)}${nan ? ', with NaN' : ''}`,
      tolerance: normalized,
      run: (backend, dtype) => normForward(backend, backend[kernel], g, offset, dtype, nan),
      ...(fused
        ? { unfused: (backend) => normForward(backend, referenceBackend[kernel], g, offset, 'float32', nan) }
        : {}),
    })),
  );
}

/** Backward of (fused) training batch norm on backend, from the reference forward's statistics. */
function normBackward(
  backend: Backend,
  fused: boolean,
  viaReference: boolean,
  g: BatchNormGeometry,
  offset: number,
  dtype: DType,
  nan: boolean,
): Outputs {
  const { count, x, gamma, beta, gradOut } = normInputs(g, offset, dtype, nan);
  // The saved statistics are the reference forward's on x without the NaN, the same for every backend.
  const clean = nan ? normInputs(g, offset, dtype).x : x;
  const y = unwritten(dtype, count);
  const mean = unwritten(dtype, g.channels);
  const invStd = unwritten(dtype, g.channels);
  const forward = fused ? referenceBackend.batchNormReluTrainForward : referenceBackend.batchNormTrainForward;
  forward.call(referenceBackend, clean, gamma, beta, y, mean, invStd, 1e-5, g);
  const gradX = unwritten(dtype, count);
  const gradGamma = unwritten(dtype, g.channels);
  const gradBeta = unwritten(dtype, g.channels);
  if (fused) {
    const kernel = viaReference
      ? referenceBackend.batchNormReluTrainBackward
      : backend.batchNormReluTrainBackward;
    kernel.call(backend, clean, y, gradOut, gamma, beta, mean, invStd, gradX, gradGamma, gradBeta, g);
  } else {
    backend.batchNormTrainBackward(clean, gradOut, gamma, mean, invStd, gradX, gradGamma, gradBeta, g);
  }
  return { gradX, gradGamma, gradBeta };
}

function normBackwardCases(fused: boolean): KernelCase[] {
  return channelCases.flatMap(({ geometry: g, offset }) =>
    (fused ? [false, true] : [false]).map((nan): KernelCase => ({
      name: `${geometryName(g, offset)}${nan ? ', with −0 gradients' : ''}`,
      tolerance: {
        gradX: normalized,
        gradGamma: reassociated(g.batch * g.spatial),
        gradBeta: reassociated(g.batch * g.spatial),
      },
      run: (backend, dtype) => normBackward(backend, fused, false, g, offset, dtype, nan),
      ...(fused
        ? { unfused: (backend) => normBackward(backend, true, true, g, offset, 'float32', nan) }
        : {}),
    })),
  );
}

/**
 * Batch norm + ReLU + 2×2 max pooling geometries: even and odd sizes (the last row and column left
 * out), rows long enough for the pooling's vector path, and a mean far from zero.
 */
const normPoolCases: readonly { geometry: Pool2dGeometry; offset: number }[] = [
  [3, 5, 6, 8, 0],
  [2, 4, 7, 9, 3],
  [4, 6, 14, 14, 0.5],
  [2, 3, 20, 18, 0],
].map(([batch, channels, inHeight, inWidth, offset]) => ({
  geometry: {
    batch: batch!,
    channels: channels!,
    inHeight: inHeight!,
    inWidth: inWidth!,
    kernelHeight: 2,
    kernelWidth: 2,
    strideHeight: 2,
    strideWidth: 2,
    padTop: 0,
    padLeft: 0,
    outHeight: Math.floor(inHeight! / 2),
    outWidth: Math.floor(inWidth! / 2),
  },
  offset: offset!,
}));

const normPoolName = (g: Pool2dGeometry, offset: number): string =>
  `${g.batch}x${g.channels}x${g.inHeight}x${g.inWidth}${offset === 0 ? '' : `, mean ${offset}`}`;

const channelsOf = (g: Pool2dGeometry): BatchNormGeometry => ({
  batch: g.batch,
  channels: g.channels,
  spatial: g.inHeight * g.inWidth,
});

/** Forward of batch norm + ReLU + pooling on backend: the pooled out, argmax and the statistics. */
function normPoolForward(
  backend: Backend,
  kernel: Backend['batchNormReluMaxPoolTrainForward'],
  g: Pool2dGeometry,
  offset: number,
  dtype: DType,
  nan: boolean,
): Outputs {
  const { count, x, gamma, beta } = normInputs(channelsOf(g), offset, dtype, nan);
  const out = unwritten(dtype, poolOutCount(g));
  const argmax = new Int32Array(out.length).fill(-1);
  const mean = unwritten(dtype, g.channels);
  const invStd = unwritten(dtype, g.channels);
  kernel.call(backend, x, gamma, beta, unwritten(dtype, count), out, argmax, mean, invStd, 1e-5, g);
  return { out, argmax, mean, invStd };
}

function normPoolForwardCases(): KernelCase[] {
  return normPoolCases.flatMap(({ geometry: g, offset }) =>
    [false, true].map((nan): KernelCase => ({
      name: `${normPoolName(g, offset)}${nan ? ', with NaN' : ''}`,
      tolerance: normalized,
      run: (backend, dtype) =>
        normPoolForward(backend, backend.batchNormReluMaxPoolTrainForward, g, offset, dtype, nan),
      unfused: (backend) =>
        normPoolForward(
          backend,
          referenceBackend.batchNormReluMaxPoolTrainForward,
          g,
          offset,
          'float32',
          nan,
        ),
    })),
  );
}

/** Backward of batch norm + ReLU + pooling on backend, from the reference forward's y, argmax and statistics. */
function normPoolBackward(
  backend: Backend,
  kernel: Backend['batchNormReluMaxPoolTrainBackward'],
  g: Pool2dGeometry,
  offset: number,
  dtype: DType,
  zeros: boolean,
): Outputs {
  const { count, x, gamma, beta } = normInputs(channelsOf(g), offset, dtype);
  const y = unwritten(dtype, count);
  const argmax = new Int32Array(poolOutCount(g));
  const mean = unwritten(dtype, g.channels);
  const invStd = unwritten(dtype, g.channels);
  referenceBackend.batchNormReluMaxPoolTrainForward(
    x,
    gamma,
    beta,
    y,
    unwritten(dtype, argmax.length),
    argmax,
    mean,
    invStd,
    1e-5,
    g,
  );
  const gradOut = randomArray(dtype, argmax.length, 35);
  if (zeros) gradOut.forEach((value, i) => (gradOut[i] = i % 3 === 0 ? -0 : value));
  const gradX = unwritten(dtype, count);
  const gradGamma = unwritten(dtype, g.channels);
  const gradBeta = unwritten(dtype, g.channels);
  kernel.call(backend, x, y, gradOut, argmax, gamma, beta, mean, invStd, gradX, gradGamma, gradBeta, g);
  return { gradX, gradGamma, gradBeta };
}

function normPoolBackwardCases(): KernelCase[] {
  return normPoolCases.flatMap(({ geometry: g, offset }) =>
    [false, true].map((zeros): KernelCase => ({
      name: `${normPoolName(g, offset)}${zeros ? ', with −0 gradients' : ''}`,
      tolerance: {
        gradX: normalized,
        gradGamma: reassociated(g.batch * g.inHeight * g.inWidth),
        gradBeta: reassociated(g.batch * g.inHeight * g.inWidth),
      },
      run: (backend, dtype) =>
        normPoolBackward(backend, backend.batchNormReluMaxPoolTrainBackward, g, offset, dtype, zeros),
      unfused: (backend) =>
        normPoolBackward(
          backend,
          referenceBackend.batchNormReluMaxPoolTrainBackward,
          g,
          offset,
          'float32',
          zeros,
        ),
    })),
  );
}

/** Geometries of the per-channel maps and sums. */
const affineGeometries = (): { geometry: BatchNormGeometry; offset: number }[] => [
  ...channelCases,
  ...channelSumCases.map((geometry) => ({ geometry, offset: 0.5 })),
];

function affineCases(relu: boolean): KernelCase[] {
  const kernel = relu ? 'channelAffineRelu' : 'channelAffine';
  const run = (
    backend: Backend,
    affine: Backend['channelAffine'],
    g: BatchNormGeometry,
    offset: number,
    dtype: DType,
  ): Outputs => {
    const { count, x, gamma, beta } = normInputs(g, offset, dtype, relu);
    const out = unwritten(dtype, count);
    affine.call(backend, x, gamma, beta, out, g);
    return { out };
  };
  return affineGeometries().map(({ geometry: g, offset }) => ({
    name: geometryName(g, offset),
    tolerance: rounded,
    run: (backend, dtype) => run(backend, backend[kernel], g, offset, dtype),
    ...(relu
      ? { unfused: (backend: Backend) => run(backend, referenceBackend[kernel], g, offset, 'float32') }
      : {}),
  }));
}

function channelSumKernelCases(): KernelCase[] {
  return affineGeometries().map(({ geometry: g, offset }) => ({
    name: geometryName(g, offset),
    // Sums over [batch, channels] matrices add each column in batch order in float64, as the reference.
    tolerance: g.spatial === 1 ? exact : reassociated(g.batch * g.spatial),
    run(backend, dtype) {
      const out = unwritten(dtype, g.channels);
      backend.channelSum(randomArray(dtype, g.batch * g.channels * g.spatial, 61, offset), out, g);
      return { out };
    },
  }));
}

const activationKinds: readonly [ActivationKind, number][] = [
  ['relu', 0],
  ['leaky_relu', 0.01],
  ['leaky_relu', 0.3],
  ['elu', 1],
  ['gelu', 0],
  ['sigmoid', 0],
  ['tanh', 0],
  ['exp', 0],
  ['log', 0],
  ['sqrt', 0],
  ['abs', 0],
  ['neg', 0],
  ['square', 0],
];

/** Activation input: random, with exact zeros (the kinks) and NaN, ±0, ±infinity and subnormals. */
function activationInput(size: number, dtype: DType): Data {
  const x = randomArray(dtype, size, 62);
  for (let i = 0; i < x.length; i += 97) x[i] = 0;
  if (size > 600) x.set([Number.NaN, -0, 0, Infinity, -Infinity, 1e-40, -1e-40], 500);
  return x;
}

function activationCases(backward: boolean): KernelCase[] {
  return activationKinds.flatMap(([kind, alpha]) =>
    elementwiseSizes.map((size): KernelCase => ({
      name: `${kind} (alpha ${alpha}), ${size} elements`,
      // The native addon multiplies leaky ReLU's slope in float32 and may give ReLU's zeros another
      // sign (backend-wasm.test.ts holds the wasm kernels to the exact values).
      tolerance: kind === 'relu' || kind === 'leaky_relu' ? rounded : exact,
      run(backend, dtype): Outputs {
        const x = activationInput(size, dtype);
        if (!backward) {
          const out = unwritten(dtype, size);
          backend.activationForward(kind, x, out, alpha);
          return { out };
        }
        const y = unwritten(dtype, size);
        referenceBackend.activationForward(kind, x, y, alpha);
        const gradX = unwritten(dtype, size);
        backend.activationBackward(kind, x, y, randomArray(dtype, size, 63), gradX, alpha);
        return { gradX };
      },
    })),
  );
}

const binaryKinds: readonly BinaryKind[] = ['add', 'sub', 'mul', 'div', 'maximum', 'minimum'];

function binaryCases(): KernelCase[] {
  const full = [2, 3, 5, 7];
  const pairs: [number[], number[], number[]][] = [
    ...broadcastOperandShapes.flatMap((shape): [number[], number[], number[]][] => [
      [full, shape, full],
      [shape, full, full],
    ]),
    ...binaryShapes.flatMap(([a, b, out]): [number[], number[], number[]][] => [
      [a, b, out],
      [b, a, out],
    ]),
  ];
  return binaryKinds.flatMap((kind) =>
    pairs.map(([aShape, bShape, outShape]): KernelCase => ({
      name: `${kind} [${aShape}] with [${bShape}]`,
      tolerance: exact,
      run(backend, dtype) {
        const a = randomArray(dtype, sizeOf(aShape), 65);
        a[Math.min(7, a.length - 1)] = Number.NaN;
        // Away from 0, so that division stays finite; one NaN on this side too.
        const b = randomArray(dtype, sizeOf(bShape), 66, 1.5);
        if (b.length > 2) b[2] = Number.NaN;
        const out = unwritten(dtype, sizeOf(outShape));
        backend.binary(kind, a, aShape, b, bShape, out, outShape);
        return { out };
      },
    })),
  );
}

function scaleShiftCases(): KernelCase[] {
  return elementwiseSizes.map((size) => ({
    name: `${size} elements`,
    tolerance: exact,
    run(backend, dtype) {
      const out = unwritten(dtype, size);
      backend.scaleShift(randomArray(dtype, size, 6), 1 / 49, 0.25, out);
      return { out };
    },
  }));
}

function powerCases(): KernelCase[] {
  return [2, 0.5, -1, 3].map((exponent) => ({
    name: `exponent ${exponent}`,
    tolerance: exact,
    run(backend, dtype) {
      const out = unwritten(dtype, 1003);
      backend.power(randomArray(dtype, 1003, 7, 1), exponent, out);
      return { out };
    },
  }));
}

function reduceSumCases(): KernelCase[] {
  return reduceShapes.map(([xShape, outShape]) => ({
    name: `[${xShape}] to [${outShape}]`,
    tolerance: reassociated(sizeOf(xShape) / sizeOf(outShape)),
    run(backend, dtype) {
      const out = unwritten(dtype, sizeOf(outShape));
      backend.reduceSum(randomArray(dtype, sizeOf(xShape), 68, 0.25), xShape, out, outShape);
      return { out };
    },
  }));
}

function reduceMaxCases(): KernelCase[] {
  return reduceShapes.map(([xShape, outShape]) => ({
    name: `[${xShape}] to [${outShape}]`,
    tolerance: exact,
    run(backend, dtype) {
      const out = unwritten(dtype, sizeOf(outShape));
      const argmax = new Int32Array(out.length).fill(-1);
      backend.reduceMax(randomArray(dtype, sizeOf(xShape), 69), xShape, out, outShape, argmax);
      return { out, argmax };
    },
  }));
}

const softmaxShapes: readonly [rows: number, cols: number][] = [
  [1, 1],
  [3, 10],
  [64, 10],
  [7, 1000],
];

function softmaxCases(backward: boolean): KernelCase[] {
  return softmaxShapes.flatMap(([rows, cols]) =>
    [false, true].map((log): KernelCase => ({
      name: `${rows}x${cols}${log ? ', log' : ''}`,
      tolerance: exact,
      run(backend, dtype): Outputs {
        const x = randomArray(dtype, rows * cols, 70);
        const y = unwritten(dtype, x.length);
        if (!backward) {
          backend.softmaxForward(x, y, rows, cols, log);
          return { y };
        }
        referenceBackend.softmaxForward(x, y, rows, cols, log);
        const gradX = unwritten(dtype, x.length);
        backend.softmaxBackward(y, randomArray(dtype, x.length, 71), gradX, rows, cols, log);
        return { gradX };
      },
    })),
  );
}

const optimizerSizes: readonly number[] = [1, 7, 33, 1000, 70_001];

const adamSteps: readonly { name: string; step: Omit<AdamStep, 'biasCorrection1' | 'biasCorrection2'> }[] = [
  {
    name: 'Adam with L2',
    step: { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, decoupledWeightDecay: false },
  },
  {
    name: 'AdamW',
    step: { lr: 5e-3, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.1, decoupledWeightDecay: true },
  },
  {
    name: 'Adam without decay',
    step: { lr: 0.1, beta1: 0, beta2: 0.5, eps: 0, weightDecay: 0, decoupledWeightDecay: false },
  },
];

function adamCases(): KernelCase[] {
  return adamSteps.flatMap(({ name, step }) =>
    optimizerSizes.map((size): KernelCase => ({
      name: `${name}, ${size} elements, three steps`,
      tolerance: exact,
      run(backend, dtype) {
        const parameter = randomArray(dtype, size, 1);
        const m = as(dtype, new Float32Array(size));
        const v = as(dtype, new Float32Array(size));
        for (let t = 1; t <= 3; t++) {
          const gradient = randomArray(dtype, size, 10 + t).map((g) => 2 * g);
          backend.adamUpdate(parameter, gradient, m, v, {
            ...step,
            biasCorrection1: 1 - step.beta1 ** t,
            biasCorrection2: 1 - step.beta2 ** t,
          });
        }
        return { parameter, m, v };
      },
    })),
  );
}

const sgdSteps: readonly { name: string; step: Omit<SgdStep, 'firstStep'> }[] = [
  { name: 'plain SGD', step: { lr: 0.1, momentum: 0, dampening: 0, nesterov: false, weightDecay: 0 } },
  { name: 'momentum', step: { lr: 0.05, momentum: 0.9, dampening: 0.1, nesterov: false, weightDecay: 1e-3 } },
  { name: 'Nesterov', step: { lr: 0.01, momentum: 0.95, dampening: 0, nesterov: true, weightDecay: 0.05 } },
];

function sgdCases(): KernelCase[] {
  return sgdSteps.flatMap(({ name, step }) =>
    optimizerSizes.map((size): KernelCase => ({
      name: `${name}, ${size} elements, three steps`,
      tolerance: exact,
      run(backend, dtype): Outputs {
        const parameter = randomArray(dtype, size, 2);
        const buffer = step.momentum > 0 ? as(dtype, new Float32Array(size)) : null;
        for (let t = 1; t <= 3; t++) {
          const gradient = randomArray(dtype, size, 20 + t).map((g) => 2 * g);
          backend.sgdUpdate(parameter, gradient, buffer, { ...step, firstStep: t === 1 });
        }
        return buffer === null ? { parameter } : { parameter, buffer };
      },
    })),
  );
}

const transposeCases: readonly [shape: number[], perm: number[]][] = [
  [
    [5, 7],
    [1, 0],
  ],
  [
    [2, 3, 4],
    [2, 0, 1],
  ],
  [
    [2, 3, 5, 7],
    [0, 2, 3, 1],
  ],
  [
    [1, 9, 1, 4],
    [3, 2, 1, 0],
  ],
];

function transposeKernelCases(): KernelCase[] {
  return transposeCases.map(([shape, perm]) => ({
    name: `[${shape}] by [${perm}]`,
    tolerance: exact,
    run(backend, dtype) {
      const out = unwritten(dtype, sizeOf(shape));
      backend.transpose(randomArray(dtype, sizeOf(shape), 72), shape, perm, out);
      return { out };
    },
  }));
}

/** Every kernel's cases (built when asked for, so importing this module computes nothing). */
export const kernelCases: { readonly [K in KernelName]: () => KernelCase[] } = {
  matmul: matmulCases,
  conv2dForward: convForwardCases,
  conv2dForwardFused: convForwardFusedCases,
  conv2dForwardFusedMaxPool: convForwardFusedMaxPoolCases,
  conv2dBackwardInput: convBackwardInputCases,
  conv2dBackwardWeight: convBackwardWeightCases,
  maxPool2dForward: maxPoolForwardCases,
  maxPool2dValues: maxPoolValuesCases,
  maxPool2dBackward: maxPoolBackwardCases,
  avgPool2dForward: avgPoolForwardCases,
  avgPool2dBackward: avgPoolBackwardCases,
  batchNormTrainForward: () => normForwardCases(false),
  batchNormTrainBackward: () => normBackwardCases(false),
  batchNormReluTrainForward: () => normForwardCases(true),
  batchNormReluTrainBackward: () => normBackwardCases(true),
  batchNormReluMaxPoolTrainForward: normPoolForwardCases,
  batchNormReluMaxPoolTrainBackward: normPoolBackwardCases,
  channelAffineRelu: () => affineCases(true),
  channelAffine: () => affineCases(false),
  channelSum: channelSumKernelCases,
  activationForward: () => activationCases(false),
  activationBackward: () => activationCases(true),
  binary: binaryCases,
  scaleShift: scaleShiftCases,
  power: powerCases,
  reduceSum: reduceSumCases,
  reduceMax: reduceMaxCases,
  softmaxForward: () => softmaxCases(false),
  softmaxBackward: () => softmaxCases(true),
  adamUpdate: adamCases,
  sgdUpdate: sgdCases,
  transpose: transposeKernelCases,
};
