/**
 * Shapes and deterministic data shared by the kernel conformance suite: the union of the shapes the
 * per-backend suites used, chosen to hit the edges of each fast kernel's blocking (sizes of 1, sizes
 * that are not multiples of a register tile, depth past one 256-deep block, rows past one 126- or
 * 128-row block, columns past one 4096-column panel) and every branch of im2col/col2im.
 */
import type { BatchNormGeometry, Conv2dGeometry, DType, Pool2dGeometry } from '../../src/backend/types.js';
import { convolutionGeometry } from '../../src/ops/convolution.js';
import { poolGeometry as poolingGeometry } from '../../src/ops/pooling.js';

/** Deterministic uniform numbers in [-1, 1) (mulberry32), so a failure reproduces. */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  };
}

/** `length` deterministic values of dtype, each offset + v for v uniform in [-1, 1). */
export function randomArray(
  dtype: DType,
  length: number,
  seed: number,
  offset = 0,
): Float32Array | Float64Array {
  const next = random(seed);
  const values = dtype === 'float32' ? new Float32Array(length) : new Float64Array(length);
  for (let i = 0; i < length; i++) values[i] = next() + offset;
  return values;
}

/** A convolution's geometry, worked out by the op layer's own convolutionGeometry (symmetric padding). */
export function convGeometry(spec: {
  batch: number;
  inChannels: number;
  inHeight: number;
  inWidth: number;
  outChannels: number;
  kernel: [height: number, width: number];
  stride?: [height: number, width: number];
  pad?: [top: number, left: number];
  dilation?: [height: number, width: number];
}): Conv2dGeometry {
  return convolutionGeometry(
    [spec.batch, spec.inChannels, spec.inHeight, spec.inWidth],
    [spec.outChannels, spec.inChannels, ...spec.kernel],
    { stride: spec.stride ?? 1, padding: spec.pad ?? 0, dilation: spec.dilation ?? 1 },
    'conformance case',
  );
}

/** A pooling window's geometry, worked out by the op layer's own poolGeometry. */
export function poolGeometry(spec: {
  batch: number;
  channels: number;
  inHeight: number;
  inWidth: number;
  kernel: [height: number, width: number];
  stride: [height: number, width: number];
  pad?: [top: number, left: number];
  ceil?: boolean;
}): Pool2dGeometry {
  return poolingGeometry(
    [spec.batch, spec.channels, spec.inHeight, spec.inWidth],
    { kernelSize: spec.kernel, stride: spec.stride, padding: spec.pad ?? 0, ceilMode: spec.ceil === true },
    'conformance case',
  );
}

/** [m, n, k] of matmul cases; each runs with every transpose and with and without accumulate. */
export const matmulShapes: readonly [m: number, n: number, k: number][] = [
  [1, 1, 1],
  [3, 3, 3],
  [1, 17, 33],
  [17, 1, 3],
  [3, 17, 33],
  [17, 3, 65],
  [17, 33, 64],
  [33, 17, 1],
  [33, 17, 65],
  [33, 65, 17],
  [64, 64, 64],
  [65, 129, 3],
  [129, 33, 129],
  [1, 129, 65],
  [129, 1, 33],
  [7, 129, 300],
  [5, 9, 600], // depth spans three 256-deep blocks
  [131, 13, 7], // rows span two 126- or 128-row blocks
  [3, 4103, 5], // columns span two 4096-column panels
  [203, 301, 517], // large enough for every backend to split it across threads
  [2, 2, 0], // an empty sum: out is zeroed, or kept when accumulating
];

export const convCases: readonly { name: string; geometry: Conv2dGeometry }[] = [
  {
    name: '3x3 pad 1 (seed CNN layer shape)',
    geometry: convGeometry({
      batch: 2,
      inChannels: 3,
      inHeight: 9,
      inWidth: 9,
      outChannels: 5,
      kernel: [3, 3],
      pad: [1, 1],
    }),
  },
  {
    name: '3x3 pad 1, 8x8',
    geometry: convGeometry({
      batch: 2,
      inChannels: 3,
      inHeight: 8,
      inWidth: 8,
      outChannels: 5,
      kernel: [3, 3],
      pad: [1, 1],
    }),
  },
  {
    name: 'stride 2, pad 1',
    geometry: convGeometry({
      batch: 3,
      inChannels: 4,
      inHeight: 7,
      inWidth: 8,
      outChannels: 6,
      kernel: [3, 3],
      stride: [2, 2],
      pad: [1, 1],
    }),
  },
  {
    name: '3x3 stride 2 pad 1, 9x9',
    geometry: convGeometry({
      batch: 2,
      inChannels: 3,
      inHeight: 9,
      inWidth: 9,
      outChannels: 4,
      kernel: [3, 3],
      stride: [2, 2],
      pad: [1, 1],
    }),
  },
  {
    // Native, AVX-512: the input gradient in blocks of 8 samples (the last partial) and channel
    // chunks.
    name: '3x3 stride 2 pad 1, batch 30 of 6x6 outputs',
    geometry: convGeometry({
      batch: 30,
      inChannels: 60,
      inHeight: 11,
      inWidth: 11,
      outChannels: 6,
      kernel: [3, 3],
      stride: [2, 2],
      pad: [1, 1],
    }),
  },
  {
    // Native: the weight gradient in 4 groups of 7 or 8 samples, in steps of 4 (some partial).
    name: '3x3 stride 2 pad 1, batch 30 of 8x8 outputs',
    geometry: convGeometry({
      batch: 30,
      inChannels: 60,
      inHeight: 16,
      inWidth: 16,
      outChannels: 6,
      kernel: [3, 3],
      stride: [2, 2],
      pad: [1, 1],
    }),
  },
  {
    // Native, AVX-512: products as [positions, channels] (272 grid positions fill 34 rows of 8 but
    // 272 of 288 columns), written back sixteen positions at a time.
    name: '3x3 stride 2 pad 1, 32x32 to 32 channels',
    geometry: convGeometry({
      batch: 2,
      inChannels: 4,
      inHeight: 32,
      inWidth: 32,
      outChannels: 32,
      kernel: [3, 3],
      stride: [2, 2],
      pad: [1, 1],
    }),
  },
  {
    name: 'dilation 2, pad 2',
    geometry: convGeometry({
      batch: 2,
      inChannels: 3,
      inHeight: 10,
      inWidth: 9,
      outChannels: 4,
      kernel: [3, 3],
      pad: [2, 2],
      dilation: [2, 2],
    }),
  },
  {
    name: '3x3 dilation 2 pad 2, 11x10',
    geometry: convGeometry({
      batch: 2,
      inChannels: 2,
      inHeight: 11,
      inWidth: 10,
      outChannels: 3,
      kernel: [3, 3],
      pad: [2, 2],
      dilation: [2, 2],
    }),
  },
  {
    name: '5x5 pad 2',
    geometry: convGeometry({
      batch: 2,
      inChannels: 2,
      inHeight: 11,
      inWidth: 12,
      outChannels: 7,
      kernel: [5, 5],
      pad: [2, 2],
    }),
  },
  {
    name: '5x5 pad 2, 12x12',
    geometry: convGeometry({
      batch: 1,
      inChannels: 3,
      inHeight: 12,
      inWidth: 12,
      outChannels: 6,
      kernel: [5, 5],
      pad: [2, 2],
    }),
  },
  {
    name: '1x1',
    geometry: convGeometry({
      batch: 3,
      inChannels: 17,
      inHeight: 5,
      inWidth: 6,
      outChannels: 33,
      kernel: [1, 1],
    }),
  },
  {
    // A first layer: few im2col rows, computed as stencils by the native backend (forward from
    // output rows of 8, weight gradient from output rows read sixteen at a time, the last vector
    // overlapping the one before it), here with rows of 20 and a ragged last block of output
    // channels.
    name: 'first layer: 1 channel, 3x3 pad 1, rows of 20',
    geometry: convGeometry({
      batch: 3,
      inChannels: 1,
      inHeight: 11,
      inWidth: 20,
      outChannels: 11,
      kernel: [3, 3],
      pad: [1, 1],
    }),
  },
  {
    // Output rows shorter than a vector: the native weight gradient lays them on the grid (rows of
    // 16 with the padding) instead of reading them in place.
    name: 'first layer: 1 channel, 3x3 pad 1, rows of 14',
    geometry: convGeometry({
      batch: 2,
      inChannels: 1,
      inHeight: 9,
      inWidth: 14,
      outChannels: 5,
      kernel: [3, 3],
      pad: [1, 1],
    }),
  },
  {
    name: 'first layer: 3 channels, 3x3 stride 2 pad 1, rows of 35',
    geometry: convGeometry({
      batch: 2,
      inChannels: 3,
      inHeight: 9,
      inWidth: 35,
      outChannels: 10,
      kernel: [3, 3],
      stride: [2, 2],
      pad: [1, 1],
    }),
  },
  {
    name: '1x1, 7 to 9 channels',
    geometry: convGeometry({
      batch: 2,
      inChannels: 7,
      inHeight: 5,
      inWidth: 6,
      outChannels: 9,
      kernel: [1, 1],
    }),
  },
  {
    // Native: more than 64 positions and more than 32 im2col rows take the grid, which for these
    // has no gap columns (the products go straight to the output; the weight gradient reads the
    // input in place).
    name: '1x1, 9x10 input',
    geometry: convGeometry({
      batch: 3,
      inChannels: 40,
      inHeight: 9,
      inWidth: 10,
      outChannels: 10,
      kernel: [1, 1],
    }),
  },
  {
    name: '3x1 kernel, no padding, 12x9 input',
    geometry: convGeometry({
      batch: 2,
      inChannels: 12,
      inHeight: 12,
      inWidth: 9,
      outChannels: 7,
      kernel: [3, 1],
    }),
  },
  {
    name: '1x1 stride 2',
    geometry: convGeometry({
      batch: 2,
      inChannels: 4,
      inHeight: 7,
      inWidth: 7,
      outChannels: 3,
      kernel: [1, 1],
      stride: [2, 2],
    }),
  },
  {
    name: '1x1 pad 1',
    geometry: convGeometry({
      batch: 1,
      inChannels: 3,
      inHeight: 4,
      inWidth: 5,
      outChannels: 2,
      kernel: [1, 1],
      pad: [1, 1],
    }),
  },
  {
    name: 'non-square kernel, stride and padding',
    geometry: convGeometry({
      batch: 2,
      inChannels: 3,
      inHeight: 9,
      inWidth: 7,
      outChannels: 5,
      kernel: [3, 2],
      stride: [2, 1],
      pad: [1, 0],
    }),
  },
  {
    name: '3x2 kernel, 2x1 stride, non-square input',
    geometry: convGeometry({
      batch: 2,
      inChannels: 3,
      inHeight: 10,
      inWidth: 7,
      outChannels: 4,
      kernel: [3, 2],
      stride: [2, 1],
      pad: [1, 0],
    }),
  },
  {
    name: '2x4 kernel, 1x3 stride, mixed padding and dilation',
    geometry: convGeometry({
      batch: 1,
      inChannels: 2,
      inHeight: 9,
      inWidth: 13,
      outChannels: 3,
      kernel: [2, 4],
      stride: [1, 3],
      pad: [0, 2],
      dilation: [2, 1],
    }),
  },
  {
    name: '5x3 kernel, stride (2, 1), pad (2, 1), dilation (1, 2)',
    geometry: convGeometry({
      batch: 3,
      inChannels: 5,
      inHeight: 23,
      inWidth: 19,
      outChannels: 7,
      kernel: [5, 3],
      stride: [2, 1],
      pad: [2, 1],
      dilation: [1, 2],
    }),
  },
  {
    name: 'single channel, batch 1, odd sizes',
    geometry: convGeometry({
      batch: 1,
      inChannels: 1,
      inHeight: 17,
      inWidth: 3,
      outChannels: 1,
      kernel: [3, 3],
      pad: [1, 1],
    }),
  },
  {
    name: 'wide channels (17 to 33), batch 17',
    geometry: convGeometry({
      batch: 17,
      inChannels: 17,
      inHeight: 6,
      inWidth: 6,
      outChannels: 33,
      kernel: [3, 3],
      pad: [1, 1],
    }),
  },
  {
    // 16 and 32 channels fill whole 16-wide panels: the native GEMM takes positions as its rows then.
    name: 'channels filling whole panels (16 to 32)',
    geometry: convGeometry({
      batch: 3,
      inChannels: 16,
      inHeight: 7,
      inWidth: 9,
      outChannels: 32,
      kernel: [3, 3],
      pad: [1, 1],
    }),
  },
  {
    name: 'padding larger than the kernel reach',
    geometry: convGeometry({
      batch: 1,
      inChannels: 2,
      inHeight: 4,
      inWidth: 5,
      outChannels: 3,
      kernel: [2, 2],
      pad: [3, 2],
    }),
  },
  {
    name: 'kernel larger than the padded reach',
    geometry: convGeometry({
      batch: 1,
      inChannels: 1,
      inHeight: 3,
      inWidth: 3,
      outChannels: 2,
      kernel: [3, 3],
      pad: [2, 2],
    }),
  },
  {
    name: '5x5 pad 2 on a 3x2 input (taps entirely in padding)',
    geometry: convGeometry({
      batch: 2,
      inChannels: 2,
      inHeight: 3,
      inWidth: 2,
      outChannels: 3,
      kernel: [5, 5],
      pad: [2, 2],
    }),
  },
  {
    name: 'batch 6, 8 to 16 channels, 14x14 (batch-parallel, as in the seed CNN)',
    geometry: convGeometry({
      batch: 6,
      inChannels: 8,
      inHeight: 14,
      inWidth: 14,
      outChannels: 16,
      kernel: [3, 3],
      pad: [1, 1],
    }),
  },
  {
    name: 'batch 1, 9 to 20 channels, 30x27 (split over positions and channels)',
    geometry: convGeometry({
      batch: 1,
      inChannels: 9,
      inHeight: 30,
      inWidth: 27,
      outChannels: 20,
      kernel: [3, 3],
      pad: [1, 1],
    }),
  },
  {
    name: 'batch 5, 16 to 32 channels, 12x12',
    geometry: convGeometry({
      batch: 5,
      inChannels: 16,
      inHeight: 12,
      inWidth: 12,
      outChannels: 32,
      kernel: [3, 3],
      pad: [1, 1],
    }),
  },
  {
    name: 'seed layer 1: 1 to 32, 28x28',
    geometry: convGeometry({
      batch: 2,
      inChannels: 1,
      inHeight: 28,
      inWidth: 28,
      outChannels: 32,
      kernel: [3, 3],
      pad: [1, 1],
    }),
  },
  {
    // The native backend's Winograd F(2×2, 3×3) path (32 to 256 channels): odd sizes, whose last
    // tiles are half outside the image, and two samples' tile rows in one block.
    name: 'Winograd shape: 48 to 56 channels, 9x11, batch 2',
    geometry: convGeometry({
      batch: 2,
      inChannels: 48,
      inHeight: 9,
      inWidth: 11,
      outChannels: 56,
      kernel: [3, 3],
      pad: [1, 1],
    }),
  },
  {
    // More input channels than one k block of the GEMM (256), and a row wider than 64 tiles.
    name: 'Winograd shape: 260 to 48 channels, 4x133',
    geometry: convGeometry({
      batch: 1,
      inChannels: 260,
      inHeight: 4,
      inWidth: 133,
      outChannels: 48,
      kernel: [3, 3],
      pad: [1, 1],
    }),
  },
  {
    // Many channels: the native Winograd blocks are shared by all threads.
    name: 'Winograd shape: 160 to 136 channels, 7x6, batch 3 (shared blocks)',
    geometry: convGeometry({
      batch: 3,
      inChannels: 160,
      inHeight: 7,
      inWidth: 6,
      outChannels: 136,
      kernel: [3, 3],
      pad: [1, 1],
    }),
  },
  {
    // Blocks of whole samples (batch 4: two per thread at two threads, four at one).
    name: 'Winograd shape: 32 to 32 channels, 14x14, batch 4 (whole-sample blocks)',
    geometry: convGeometry({
      batch: 4,
      inChannels: 32,
      inHeight: 14,
      inWidth: 14,
      outChannels: 32,
      kernel: [3, 3],
      pad: [1, 1],
    }),
  },
  {
    // The native F(4×4, 3×3) forward (sums over 32 channels): odd sizes, whose last tiles reach
    // past the image; its input gradient (sums over 40) stays F(2×2, 3×3).
    name: 'Winograd F(4x4) shape: 32 to 40 channels, 17x23, batch 2',
    geometry: convGeometry({
      batch: 2,
      inChannels: 32,
      inHeight: 17,
      inWidth: 23,
      outChannels: 40,
      kernel: [3, 3],
      pad: [1, 1],
    }),
  },
  {
    // The F(4×4, 3×3) input gradient (sums over 32 output channels); the forward is F(2×2, 3×3).
    name: 'Winograd F(4x4) input gradient: 40 to 32 channels, 16x18, batch 3',
    geometry: convGeometry({
      batch: 3,
      inChannels: 40,
      inHeight: 16,
      inWidth: 18,
      outChannels: 32,
      kernel: [3, 3],
      pad: [1, 1],
    }),
  },
  {
    // One sample's four tile rows: the F(4×4, 3×3) blocks are shared by all threads.
    name: 'Winograd F(4x4) shape: 32 to 32 channels, 16x16, batch 1 (shared blocks)',
    geometry: convGeometry({
      batch: 1,
      inChannels: 32,
      inHeight: 16,
      inWidth: 16,
      outChannels: 32,
      kernel: [3, 3],
      pad: [1, 1],
    }),
  },
  {
    // Blocks of whole samples with F(4×4, 3×3) (five tile rows of five lanes each).
    name: 'Winograd F(4x4) shape: 32 to 32 channels, 20x20, batch 8 (whole-sample blocks)',
    geometry: convGeometry({
      batch: 8,
      inChannels: 32,
      inHeight: 20,
      inWidth: 20,
      outChannels: 32,
      kernel: [3, 3],
      pad: [1, 1],
    }),
  },
  {
    // F(4×4, 3×3) on a small image (two tile rows of four lanes: 7 and 13 are 2 and 4 tiles of 4,
    // against 4 and 7 of 2), rows shorter than a vector of 16 whose patch strips end in padding.
    name: 'Winograd F(4x4) shape: 32 to 24 channels, 7x13, batch 3',
    geometry: convGeometry({
      batch: 3,
      inChannels: 32,
      inHeight: 7,
      inWidth: 13,
      outChannels: 24,
      kernel: [3, 3],
      pad: [1, 1],
    }),
  },
  {
    // The native Winograd weight gradient on 4×4 outputs with tiles enough (25 samples of four
    // tiles), which takes it over skipping the padding's taps.
    name: 'Winograd weight-gradient shape: 32 to 40 channels, 4x4, batch 25',
    geometry: convGeometry({
      batch: 25,
      inChannels: 32,
      inHeight: 4,
      inWidth: 4,
      outChannels: 40,
      kernel: [3, 3],
      pad: [1, 1],
    }),
  },
  {
    // The native Winograd weight gradient (192 to 256 channels a side).
    name: 'Winograd weight-gradient shape: 200 to 192 channels, 6x5, batch 2',
    geometry: convGeometry({
      batch: 2,
      inChannels: 200,
      inHeight: 6,
      inWidth: 5,
      outChannels: 192,
      kernel: [3, 3],
      pad: [1, 1],
    }),
  },
  {
    // The native forward that skips the taps reading only padding (small outputs, too few output
    // channels for Winograd): 37 samples, so a panel's 32 columns span two positions (their taps
    // joined); 64 channels, so the last block of 28 channels is short. Its input gradient (24 to
    // 64 channels) skips too.
    name: 'padding-skipping shape: 64 to 24 channels, 4x4, batch 37',
    geometry: convGeometry({
      batch: 37,
      inChannels: 64,
      inHeight: 4,
      inWidth: 4,
      outChannels: 24,
      kernel: [3, 3],
      pad: [1, 1],
    }),
  },
  {
    // The padding-skipping forward with stride 2 (16% of the products on padding) and 5×5 taps.
    name: 'padding-skipping shape: 40 to 24 channels, 8x7 to 4x4 (5x5 stride 2), batch 3',
    geometry: convGeometry({
      batch: 3,
      inChannels: 40,
      inHeight: 8,
      inWidth: 7,
      outChannels: 24,
      kernel: [5, 5],
      stride: [2, 2],
      pad: [2, 2],
    }),
  },
  {
    // Padding past the kernel's reach: a row of outputs reads no input at all (panels without
    // steps), with dilated taps.
    name: 'padding-skipping shape: 24 to 16 channels, 1x2 padded by 4, dilation 2, batch 5',
    geometry: convGeometry({
      batch: 5,
      inChannels: 24,
      inHeight: 1,
      inWidth: 2,
      outChannels: 16,
      kernel: [3, 3],
      pad: [4, 4],
      dilation: [2, 2],
    }),
  },
  {
    name: 'seed layer 3: 32 to 64, 14x14',
    geometry: convGeometry({
      batch: 1,
      inChannels: 32,
      inHeight: 14,
      inWidth: 14,
      outChannels: 64,
      kernel: [3, 3],
      pad: [1, 1],
    }),
  },
];

export const poolCases: readonly { name: string; geometry: Pool2dGeometry }[] = [
  {
    name: '2x2 stride 2',
    geometry: poolGeometry({
      batch: 2,
      channels: 3,
      inHeight: 8,
      inWidth: 8,
      kernel: [2, 2],
      stride: [2, 2],
    }),
  },
  {
    name: '2x2 stride 2, odd input',
    geometry: poolGeometry({
      batch: 2,
      channels: 2,
      inHeight: 7,
      inWidth: 9,
      kernel: [2, 2],
      stride: [2, 2],
    }),
  },
  {
    name: '3x3 stride 2 pad 1',
    geometry: poolGeometry({
      batch: 2,
      channels: 3,
      inHeight: 9,
      inWidth: 7,
      kernel: [3, 3],
      stride: [2, 2],
      pad: [1, 1],
    }),
  },
  {
    name: '3x3 stride 2 pad 1, 9x8',
    geometry: poolGeometry({
      batch: 2,
      channels: 3,
      inHeight: 9,
      inWidth: 8,
      kernel: [3, 3],
      stride: [2, 2],
      pad: [1, 1],
    }),
  },
  {
    // Rows long enough for the native backend's sixteen-wide stride-2 path, and its leftover outputs.
    name: '3x3 stride 2 pad 1, rows of 75 (vector path)',
    geometry: poolGeometry({
      batch: 2,
      channels: 2,
      inHeight: 6,
      inWidth: 75,
      kernel: [3, 3],
      stride: [2, 2],
      pad: [1, 1],
    }),
  },
  {
    // The sixteen-wide path over whole rows, padding masked at both ends: the left edge column and,
    // in ceil mode, a last window that starts on the last column (its other two in padding and past
    // it), in a row of two vectors.
    name: '5x3 kernel, stride 2 pad (2, 1), ceil mode, rows of 38 (vector path, both edges)',
    geometry: poolGeometry({
      batch: 2,
      channels: 3,
      inHeight: 9,
      inWidth: 38,
      kernel: [5, 3],
      stride: [2, 2],
      pad: [2, 1],
      ceil: true,
    }),
  },
  {
    name: '3x2 kernel, 1x2 stride, no padding, rows of 70 (vector path)',
    geometry: poolGeometry({
      batch: 1,
      channels: 3,
      inHeight: 5,
      inWidth: 70,
      kernel: [3, 2],
      stride: [1, 2],
    }),
  },
  {
    name: '3x2 kernel, 1x2 stride, pad 1x0',
    geometry: poolGeometry({
      batch: 1,
      channels: 2,
      inHeight: 6,
      inWidth: 7,
      kernel: [3, 2],
      stride: [1, 2],
      pad: [1, 0],
    }),
  },
  {
    name: '3x2 stride (1, 2) pad (1, 0), ceil mode',
    geometry: poolGeometry({
      batch: 1,
      channels: 5,
      inHeight: 7,
      inWidth: 10,
      kernel: [3, 2],
      stride: [1, 2],
      pad: [1, 0],
      ceil: true,
    }),
  },
  {
    name: 'overlapping 3x3 stride 1 pad 1',
    geometry: poolGeometry({
      batch: 1,
      channels: 2,
      inHeight: 5,
      inWidth: 5,
      kernel: [3, 3],
      stride: [1, 1],
      pad: [1, 1],
    }),
  },
  {
    name: 'ceil mode: windows hang past the input',
    geometry: poolGeometry({
      batch: 1,
      channels: 2,
      inHeight: 5,
      inWidth: 7,
      kernel: [2, 3],
      stride: [2, 2],
      pad: [0, 1],
      ceil: true,
    }),
  },
  {
    name: 'odd input, 2x2 stride 2 ceil mode',
    geometry: poolGeometry({
      batch: 3,
      channels: 17,
      inHeight: 5,
      inWidth: 5,
      kernel: [2, 2],
      stride: [2, 2],
      ceil: true,
    }),
  },
  {
    name: '3x3 stride 1 pad 1, wide rows',
    geometry: poolGeometry({
      batch: 1,
      channels: 2,
      inHeight: 6,
      inWidth: 19,
      kernel: [3, 3],
      stride: [1, 1],
      pad: [1, 1],
    }),
  },
  {
    name: '3x3 stride 2 pad 1, wide rows',
    geometry: poolGeometry({
      batch: 2,
      channels: 2,
      inHeight: 7,
      inWidth: 23,
      kernel: [3, 3],
      stride: [2, 2],
      pad: [1, 1],
    }),
  },
  {
    name: '3x3 stride 3, wide rows',
    geometry: poolGeometry({
      batch: 1,
      channels: 2,
      inHeight: 9,
      inWidth: 26,
      kernel: [3, 3],
      stride: [3, 3],
    }),
  },
  {
    name: '2x4 kernel, 2x3 stride, pad 1x2, ceil mode',
    geometry: poolGeometry({
      batch: 1,
      channels: 3,
      inHeight: 8,
      inWidth: 30,
      kernel: [2, 4],
      stride: [2, 3],
      pad: [1, 2],
      ceil: true,
    }),
  },
  {
    name: 'seed CNN pool, batch 2',
    geometry: poolGeometry({
      batch: 2,
      channels: 32,
      inHeight: 28,
      inWidth: 28,
      kernel: [2, 2],
      stride: [2, 2],
    }),
  },
  {
    // Large enough for the work to be split across threads.
    name: 'seed CNN pool, batch 8',
    geometry: poolGeometry({
      batch: 8,
      channels: 32,
      inHeight: 28,
      inWidth: 28,
      kernel: [2, 2],
      stride: [2, 2],
    }),
  },
];

/** Per-channel geometries, with the mean the data is offset by (far from 0 tests cancellation). */
export const channelCases: readonly { geometry: BatchNormGeometry; offset: number }[] = [
  { geometry: { batch: 4, channels: 3, spatial: 16 }, offset: 0 },
  { geometry: { batch: 4, channels: 3, spatial: 17 }, offset: 3 },
  { geometry: { batch: 3, channels: 5, spatial: 35 }, offset: 0 },
  { geometry: { batch: 3, channels: 5, spatial: 37 }, offset: 0 },
  { geometry: { batch: 9, channels: 6, spatial: 1 }, offset: 0 },
  { geometry: { batch: 9, channels: 4, spatial: 1 }, offset: 0 },
  { geometry: { batch: 33, channels: 5, spatial: 1 }, offset: 3 },
  { geometry: { batch: 8, channels: 2, spatial: 49 }, offset: 100 },
  { geometry: { batch: 4, channels: 32, spatial: 196 }, offset: 0.5 },
  { geometry: { batch: 8, channels: 32, spatial: 196 }, offset: 0 },
  { geometry: { batch: 16, channels: 32, spatial: 49 }, offset: 3 },
  { geometry: { batch: 1, channels: 1, spatial: 129 }, offset: 3 },
];

/** Geometries for channel sums and affine maps only (no normalisation). */
export const channelSumCases: readonly BatchNormGeometry[] = [
  { batch: 9, channels: 8, spatial: 1 },
  { batch: 7, channels: 11, spatial: 1 },
  { batch: 64, channels: 32, spatial: 196 },
  { batch: 128, channels: 256, spatial: 1 },
  { batch: 3, channels: 1000, spatial: 1 },
];

/** Operand shapes against a full [2, 3, 5, 7] operand, on either side. */
export const broadcastOperandShapes: readonly number[][] = [
  [2, 3, 5, 7],
  [3, 5, 7],
  [3, 1, 1],
  [1, 3, 1, 1],
  [7],
  [5, 7],
  [3, 5, 1],
  [2, 1, 1, 1],
  [],
  [1],
  [1, 1],
  [3, 1, 7], // not a contiguous run: the reference computes it
];

/** [aShape, bShape, outShape] where both operands broadcast, and other shapes. */
export const binaryShapes: readonly [number[], number[], number[]][] = [
  [[2, 3, 1, 1], [], [2, 3, 5, 7]], // the gradient of a global average pool
  [
    [3, 1, 1],
    [2, 1, 1, 1],
    [2, 3, 5, 7],
  ],
  [[5, 1], [7], [2, 3, 5, 7]],
  [
    [2, 1, 5, 7],
    [3, 1, 1],
    [2, 3, 5, 7],
  ], // not a contiguous run: the reference computes it
  [
    [4, 1, 5, 7],
    [1, 3, 1, 1],
    [4, 3, 5, 7],
  ], // two different broadcast blocks
  [
    [4, 3, 5, 7],
    [4, 3, 5, 7],
    [4, 3, 5, 7],
  ],
  [
    [4, 3, 5, 7],
    [3, 1, 1],
    [4, 3, 5, 7],
  ],
  [
    [1, 3, 1, 1],
    [4, 3, 5, 7],
    [4, 3, 5, 7],
  ],
  [
    [4, 3, 5, 7],
    [3, 5, 1],
    [4, 3, 5, 7],
  ],
  [[65, 17], [17], [65, 17]],
  [[65, 17], [1], [65, 17]],
  [[], [65, 17], [65, 17]],
  [
    [200, 300],
    [200, 300],
    [200, 300],
  ],
];

/** [xShape, outShape] of reductions. */
export const reduceShapes: readonly [number[], number[]][] = [
  [
    [2, 3, 5, 7],
    [1, 3, 1, 1],
  ],
  [
    [2, 3, 5, 7],
    [1, 1, 1, 7],
  ],
  [
    [2, 3, 5, 7],
    [1, 3, 5, 1],
  ],
  [
    [2, 3, 5, 7],
    [2, 1, 1, 1],
  ],
  [
    [2, 3, 5, 7],
    [1, 1, 1, 1],
  ],
  [
    [2, 3, 5, 7],
    [2, 3, 5, 7],
  ],
  [
    [2, 3, 5, 7],
    [2, 1, 1, 7],
  ], // not a contiguous run: the reference computes it
  [
    [64, 10],
    [1, 10],
  ], // a bias gradient
  [
    [4, 6, 5],
    [4, 6, 1],
  ], // trailing axis (global average pooling)
  [
    [4, 6, 5],
    [1, 6, 1],
  ],
  [
    [4, 6, 5],
    [1, 1, 5],
  ],
  [
    [4, 6, 5],
    [1, 1, 1],
  ],
  [
    [4, 6, 5],
    [4, 1, 5],
  ],
  [[120], [120]],
];

/** Element counts of elementwise cases: below and above the kernels' threading thresholds, ragged tails. */
export const elementwiseSizes: readonly number[] = [1, 7, 33, 1003, 70_001, 100_003];

/** Product of a shape's dimensions. */
export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((p, d) => p * d, 1);
}
