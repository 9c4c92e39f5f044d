/**
 * The WebAssembly SIMD backend: the reference backend with its hot kernels (GEMM, convolution,
 * pooling, batch norm, channel affine and sums, ReLU, broadcast arithmetic, bias-gradient sums)
 * replaced by AssemblyScript kernels from assembly/, compiled to build/wasm/kernels.wasm by
 * `npm run build:wasm`, and run on all cores (./threads.ts).
 *
 * Each kernel copies its float32 inputs into the module's shared memory, splits its output into
 * chunks that the calling thread and the workers claim (./jobs.ts), and copies its outputs back;
 * scratch such as packed GEMM panels and im2col columns stays inside the module, one region per
 * thread. Calls with any Float64Array argument (gradient checks), and broadcast patterns the kernels
 * do not cover, go to the reference kernels.
 *
 * @example
 * const out = new Float32Array(4);
 * wasmBackend.matmul(new Float32Array([1, 2, 3, 4]), new Float32Array([1, 0, 0, 1]), out, 2, 2, 2, false, false, false);
 * // out is [1, 2, 3, 4]
 */
import { referenceBackend } from '../reference/index.js';
import type {
  ActivationKind,
  Backend,
  BatchNormGeometry,
  BinaryKind,
  Conv2dGeometry,
  Data,
  Pool2dGeometry,
} from '../types.js';
import { ARGUMENTS as A, chunkCount, JobKind, MAX_CHUNKS, Slot } from './jobs.js';
import { wasmRuntime, type Pointer } from './runtime.js';
import { getWasmThreads, jobParameters, runJob, wasmTuning, type JobStages } from './threads.js';

export { getWasmThreads, setWasmThreads, wasmTuning, type WasmTuning } from './threads.js';

function isFloat32(data: Data): data is Float32Array {
  return data instanceof Float32Array;
}

/** Rejects arrays too short for their shape, which would otherwise be read as garbage in wasm memory. */
function requireLength(name: string, data: Float32Array | Int32Array, count: number): void {
  if (data.length < count) {
    throw new RangeError(`wasm backend: ${name} has ${data.length} elements, the shape needs ${count}`);
  }
}

/** Element chunks are whole cache lines (16 floats), so two threads never write one line. */
const LINE_FLOATS = 16;

function roundUp(value: number, multiple: number): number {
  return Math.ceil(value / multiple) * multiple;
}

/**
 * How many chunks a job with `work` units should be split into: 1 on one thread, or below
 * `threshold` (waking a worker costs tens of microseconds, about what such a job takes); otherwise a
 * few per thread (wasmTuning.chunksPerThread), so that a thread the OS deschedules (the machine may be
 * shared) leaves its share to the others, but not many more, because each GEMM chunk packs its own
 * operand panels.
 */
function chunkTarget(work: number, threshold: number): number {
  const threads = getWasmThreads();
  return threads === 1 || work < threshold ? 1 : threads * wasmTuning.chunksPerThread;
}

/** Items per block so that `count` items make about `chunks` blocks, a multiple of `multiple`. */
function blockFor(count: number, chunks: number, multiple = 1): number {
  const blocks = Math.min(Math.max(chunks, 1), MAX_CHUNKS);
  return Math.max(roundUp(Math.ceil(count / blocks), multiple), 1);
}

/** The job's grid: `first` items in blocks of firstBlock, times `second` items in blocks of secondBlock. */
function setGrid(p: Float64Array, first: number, firstBlock: number, second = 1, secondBlock = 1): void {
  p[Slot.blockStride] = 0;
  p[Slot.first] = first;
  p[Slot.firstBlock] = firstBlock;
  p[Slot.second] = second;
  p[Slot.secondBlock] = secondBlock;
}

/**
 * Reserves `bytes` of scratch per thread that may run a chunk of the job (every thread when it has
 * several chunks) and records where. Returns the first thread's region.
 */
function reserveScratch(p: Float64Array, bytes: number): Pointer {
  const { arena } = wasmRuntime();
  const stride = roundUp(Math.max(bytes, 0), 64);
  const threads = chunkCount(p) > 1 ? getWasmThreads() : 1;
  p[Slot.scratch] = arena.allocate(stride * threads);
  p[Slot.scratchStride] = stride;
  return p[Slot.scratch];
}

/** Writes `values` into the parameter block from the first argument slot on. */
function setArguments(p: Float64Array, ...values: number[]): void {
  for (let i = 0; i < values.length; i++) p[A + i] = values[i]!;
}

/** An array staged by item: its region in wasm memory and the elements per item of the job's first axis. */
type ItemArray = readonly [data: Float32Array | Int32Array, at: Pointer, elementsPerItem: number];

/**
 * Stages for a job whose first-axis items (images, planes, rows, elements) are consecutive runs of
 * elements in every staged array: block b copies its items of each input in and of each output out.
 * Arrays every chunk needs (weights) are copied in before the job instead.
 */
function itemStages(p: Float64Array, inputs: readonly ItemArray[], outputs: readonly ItemArray[]): JobStages {
  const { arena } = wasmRuntime();
  const first = p[Slot.first]!;
  const firstBlock = p[Slot.firstBlock]!;
  const copy = (block: number, arrays: readonly ItemArray[], into: boolean) => {
    const start = block * firstBlock;
    const count = Math.min(first, start + firstBlock) - start;
    for (const [data, at, unit] of arrays) {
      if (into) arena.copyInRange(at, data, start * unit, count * unit);
      else arena.copyOutRange(at, data, start * unit, count * unit);
    }
  };
  return {
    stageIn: (block) => copy(block, inputs, true),
    stageOut: (block) => copy(block, outputs, false),
  };
}

/** An array of a per-channel job over [batch, channels, spatial], or a [channels] vector (spatial 0). */
type ChannelArray = readonly [data: Float32Array, at: Pointer, perChannel: boolean];

/**
 * Stages for a job whose first axis is channels of x [batch, channels, spatial]: block b copies, for
 * every image, its run of channels of each full-size array, and its slice of each [channels] vector.
 */
function channelStages(
  p: Float64Array,
  g: BatchNormGeometry,
  inputs: readonly ChannelArray[],
  outputs: readonly ChannelArray[],
): JobStages {
  const { arena } = wasmRuntime();
  const firstBlock = p[Slot.firstBlock]!;
  const copy = (block: number, arrays: readonly ChannelArray[], into: boolean) => {
    const start = block * firstBlock;
    const count = Math.min(g.channels, start + firstBlock) - start;
    for (const [data, at, vector] of arrays) {
      if (vector) {
        if (into) arena.copyInRange(at, data, start, count);
        else arena.copyOutRange(at, data, start, count);
        continue;
      }
      for (let n = 0; n < g.batch; n++) {
        const offset = (n * g.channels + start) * g.spatial;
        if (into) arena.copyInRange(at, data, offset, count * g.spatial);
        else arena.copyOutRange(at, data, offset, count * g.spatial);
      }
    }
  };
  return {
    stageIn: (block) => copy(block, inputs, true),
    stageOut: (block) => copy(block, outputs, false),
  };
}

/**
 * Row and column block sizes that cut an M×N product into about `chunks` blocks: halves the larger
 * block (rows in multiples of the 4-row register tile, columns of the 8-column one) until there are
 * enough.
 */
function gemmBlocks(m: number, n: number, chunks: number): [rows: number, columns: number] {
  let rows = Math.max(m, 1);
  let columns = Math.max(n, 1);
  while (Math.ceil(m / rows) * Math.ceil(n / columns) < chunks) {
    if (rows >= columns && rows > 4) rows = roundUp(Math.ceil(rows / 2), 4);
    else if (columns > 8) columns = roundUp(Math.ceil(columns / 2), 8);
    else if (rows > 4) rows = roundUp(Math.ceil(rows / 2), 4);
    else break;
  }
  return [rows, columns];
}

/**
 * out[M,N] (+)= op(A)[M,K]·op(B)[K,N]; see Backend.matmul for the layouts.
 *
 * On one thread (or for a small product) this is one gemmStrided call. On several, the threads first
 * pack op(A) and op(B) once, in row and column pieces (job gemmPack), then share the blocks of C
 * (job gemmPackedBlocks), which read the packed panels: no panel is packed twice, so C can be cut
 * finely enough that no thread waits long for the last block. Each element is summed in the same
 * order either way, so the results are the same bits.
 */
function matmul(
  a: Data,
  b: Data,
  out: Data,
  m: number,
  n: number,
  k: number,
  transposeA: boolean,
  transposeB: boolean,
  accumulate: boolean,
): void {
  if (!isFloat32(a) || !isFloat32(b) || !isFloat32(out)) {
    referenceBackend.matmul(a, b, out, m, n, k, transposeA, transposeB, accumulate);
    return;
  }
  requireLength('a', a, m * k);
  requireLength('b', b, k * n);
  requireLength('out', out, m * n);
  const { kernels, arena } = wasmRuntime();
  arena.reset();
  const aAt = arena.copyIn(a, m * k);
  const bAt = arena.copyIn(b, k * n);
  const outAt = arena.allocate(m * n * 4);
  const p = jobParameters();
  const chunks = chunkTarget(m * n * k, wasmTuning.parallelMultiplyAdds);
  const stagesOfC = (): JobStages => itemStages(p, accumulate ? [[out, outAt, n]] : [], [[out, outAt, n]]);
  if (chunks === 1 || k === 0 || m === 0 || n === 0) {
    setGrid(p, m, Math.max(m, 1), n, Math.max(n, 1));
    reserveScratch(p, kernels.gemmWorkspaceBytes(m, n, k));
    setArguments(p, aAt, bAt, outAt, m, n, k, +transposeA, +transposeB, +accumulate);
    runJob(JobKind.matmul, stagesOfC());
    return;
  }
  const threads = getWasmThreads();
  const packedA = arena.allocate(kernels.gemmPackedFloats(m, k, 4) * 4);
  const packedB = arena.allocate(kernels.gemmPackedFloats(n, k, 8) * 4);
  const rowsPerPiece = blockFor(m, threads * 2, 4);
  const columnsPerPiece = blockFor(n, threads * 2, 8);
  const aPieces = Math.ceil(m / rowsPerPiece);
  const pieces = aPieces + Math.ceil(n / columnsPerPiece);
  setGrid(p, pieces, 1);
  setArguments(
    p,
    aAt,
    bAt,
    m,
    n,
    k,
    +transposeA,
    +transposeB,
    packedA,
    packedB,
    rowsPerPiece,
    columnsPerPiece,
    aPieces,
  );
  runJob(JobKind.gemmPack);
  // Four times the usual chunks: blocks of C pack nothing, so finer blocks cost little, and they even
  // out the end of the job, where a thread with nothing left to claim waits for the others.
  const [rows, columns] = gemmBlocks(m, n, chunks * 4);
  setGrid(p, m, rows, n, columns);
  reserveScratch(p, 4 * 8 * 4);
  setArguments(p, packedA, packedB, outAt, m, n, k, +accumulate);
  runJob(JobKind.gemmPackedBlocks, stagesOfC());
}

/** The 15 geometry numbers in the order the conv kernels take them. */
function convGeometryArguments(p: Float64Array, g: Conv2dGeometry): void {
  const values = [
    g.batch,
    g.inChannels,
    g.inHeight,
    g.inWidth,
    g.outChannels,
    g.kernelHeight,
    g.kernelWidth,
    g.strideHeight,
    g.strideWidth,
    g.padTop,
    g.padLeft,
    g.dilationHeight,
    g.dilationWidth,
    g.outHeight,
    g.outWidth,
  ];
  for (let i = 0; i < values.length; i++) p[A + 3 + i] = values[i]!;
}

/** Element counts of a convolution's x [N,C,H,W], weight [O,C,kh,kw] and out [N,O,oh,ow]. */
function convSizes(g: Conv2dGeometry): { x: number; weight: number; out: number } {
  return {
    x: g.batch * g.inChannels * g.inHeight * g.inWidth,
    weight: g.outChannels * g.inChannels * g.kernelHeight * g.kernelWidth,
    out: g.batch * g.outChannels * g.outHeight * g.outWidth,
  };
}

/** im2col bytes for `channels` input channels of the convolution (0 for the 1×1 shortcut). */
function columnBytes(g: Conv2dGeometry, channels: number): number {
  const { kernels } = wasmRuntime();
  return kernels.convColumnBytes(
    channels,
    g.kernelHeight,
    g.kernelWidth,
    g.strideHeight,
    g.strideWidth,
    g.padTop,
    g.padLeft,
    g.outHeight,
    g.outWidth,
  );
}

/**
 * Per-thread scratch of a convolution job: im2col columns for `channels` input channels, then the
 * workspace of an M×N×K GEMM.
 */
function reserveConvScratch(
  p: Float64Array,
  g: Conv2dGeometry,
  channels: number,
  m: number,
  n: number,
  k: number,
): void {
  const { kernels } = wasmRuntime();
  const cols = roundUp(columnBytes(g, channels), 64);
  p[Slot.workOffset] = cols;
  reserveScratch(p, cols + kernels.gemmWorkspaceBytes(m, n, k));
}

/** Blocks of `count` channels, in multiples of `multiple`, that bring a job of `otherBlocks` blocks to `chunks`. */
function channelBlock(count: number, otherBlocks: number, chunks: number, multiple: number): number {
  if (otherBlocks >= chunks) return count;
  return Math.min(blockFor(count, Math.ceil(chunks / otherBlocks), multiple), count);
}

/**
 * out [N,O,oh,ow] = conv(x [N,C,H,W], weight [O,C,kh,kw]). Chunks are images (each does its own
 * im2col); with fewer images than chunks wanted, blocks of output channels too.
 */
function conv2dForward(x: Data, weight: Data, out: Data, g: Conv2dGeometry): void {
  if (!isFloat32(x) || !isFloat32(weight) || !isFloat32(out)) {
    referenceBackend.conv2dForward(x, weight, out, g);
    return;
  }
  const sizes = convSizes(g);
  requireLength('x', x, sizes.x);
  requireLength('weight', weight, sizes.weight);
  requireLength('out', out, sizes.out);
  const { arena } = wasmRuntime();
  arena.reset();
  const xAt = arena.allocate(sizes.x * 4);
  const weightAt = arena.copyIn(weight, sizes.weight);
  const outAt = arena.allocate(sizes.out * 4);
  const depth = g.inChannels * g.kernelHeight * g.kernelWidth;
  const pixels = g.outHeight * g.outWidth;
  const chunks = chunkTarget(sizes.out * depth, wasmTuning.parallelMultiplyAdds);
  const p = jobParameters();
  // Twice the usual chunks: an image is a small, self-contained task, and finer chunks even out the end.
  const images = chunks === 1 ? g.batch : blockFor(g.batch, 2 * chunks);
  const outChannels = channelBlock(g.outChannels, Math.ceil(g.batch / images), chunks, 4);
  setGrid(p, g.batch, images, g.outChannels, outChannels);
  reserveConvScratch(p, g, g.inChannels, outChannels, pixels, depth);
  setArguments(p, xAt, weightAt, outAt);
  convGeometryArguments(p, g);
  const inImage = g.inChannels * g.inHeight * g.inWidth;
  runJob(JobKind.conv2dForward, itemStages(p, [[x, xAt, inImage]], [[out, outAt, g.outChannels * pixels]]));
}

/**
 * gradX [N,C,H,W] = ∂L/∂x from gradOut [N,O,oh,ow] and weight [O,C,kh,kw]; overwritten. Chunks are
 * images; with fewer images than chunks wanted, blocks of input channels too (col2im of one channel
 * touches only that channel's plane).
 */
function conv2dBackwardInput(gradOut: Data, weight: Data, gradX: Data, g: Conv2dGeometry): void {
  if (!isFloat32(gradOut) || !isFloat32(weight) || !isFloat32(gradX)) {
    referenceBackend.conv2dBackwardInput(gradOut, weight, gradX, g);
    return;
  }
  const sizes = convSizes(g);
  requireLength('gradOut', gradOut, sizes.out);
  requireLength('weight', weight, sizes.weight);
  requireLength('gradX', gradX, sizes.x);
  const { arena } = wasmRuntime();
  arena.reset();
  const gradOutAt = arena.allocate(sizes.out * 4);
  const weightAt = arena.copyIn(weight, sizes.weight);
  const gradXAt = arena.allocate(sizes.x * 4);
  const taps = g.kernelHeight * g.kernelWidth;
  const pixels = g.outHeight * g.outWidth;
  const chunks = chunkTarget(sizes.out * g.inChannels * taps, wasmTuning.parallelMultiplyAdds);
  const p = jobParameters();
  // Twice the usual chunks: an image is a small, self-contained task, and finer chunks even out the end.
  const images = chunks === 1 ? g.batch : blockFor(g.batch, 2 * chunks);
  const channels = channelBlock(g.inChannels, Math.ceil(g.batch / images), chunks, 1);
  setGrid(p, g.batch, images, g.inChannels, channels);
  reserveConvScratch(p, g, channels, channels * taps, pixels, g.outChannels);
  setArguments(p, gradOutAt, weightAt, gradXAt);
  convGeometryArguments(p, g);
  const inImage = g.inChannels * g.inHeight * g.inWidth;
  const stages = itemStages(p, [[gradOut, gradOutAt, g.outChannels * pixels]], [[gradX, gradXAt, inImage]]);
  runJob(JobKind.conv2dBackwardInput, stages);
}

/** Most image blocks the weight gradient is summed in, and the most memory their partial sums may take. */
const WEIGHT_GRADIENT_BLOCKS = 8;
const PARTIAL_SUM_BYTES = 64 * 2 ** 20;

/**
 * gradWeight [O,C,kh,kw] = ∂L/∂weight from x [N,C,H,W] and gradOut [N,O,oh,ow]; overwritten. The
 * batch is cut into at most 8 blocks of images, fixed by the batch size alone; each block sums its
 * images into its own partial gradient (chunks: image blocks, and blocks of output channels when there
 * are few images), and the partials are added in block order. The result is therefore the same for
 * any thread count, and every chunk runs full-width GEMMs with no im2col repeated.
 */
function conv2dBackwardWeight(x: Data, gradOut: Data, gradWeight: Data, g: Conv2dGeometry): void {
  if (!isFloat32(x) || !isFloat32(gradOut) || !isFloat32(gradWeight)) {
    referenceBackend.conv2dBackwardWeight(x, gradOut, gradWeight, g);
    return;
  }
  const sizes = convSizes(g);
  requireLength('x', x, sizes.x);
  requireLength('gradOut', gradOut, sizes.out);
  requireLength('gradWeight', gradWeight, sizes.weight);
  if (g.batch === 0) {
    // An empty sum: there is no image block to write the zeros.
    gradWeight.fill(0, 0, sizes.weight);
    return;
  }
  const { kernels, arena } = wasmRuntime();
  arena.reset();
  const xAt = arena.allocate(sizes.x * 4);
  const gradOutAt = arena.allocate(sizes.out * 4);
  const gradWeightAt = arena.allocate(sizes.weight * 4);
  const weightBytes = roundUp(sizes.weight * 4, 64);
  const blockCount = Math.max(
    1,
    Math.min(g.batch, WEIGHT_GRADIENT_BLOCKS, Math.floor(PARTIAL_SUM_BYTES / weightBytes)),
  );
  const images = Math.max(1, Math.ceil(g.batch / blockCount));
  const blocks = Math.max(1, Math.ceil(g.batch / images));
  const partialsAt = blocks > 1 ? arena.allocate(blocks * weightBytes) : gradWeightAt;
  const depth = g.inChannels * g.kernelHeight * g.kernelWidth;
  const chunks = chunkTarget(sizes.out * depth, wasmTuning.parallelMultiplyAdds);
  const outChannels = channelBlock(g.outChannels, blocks, chunks, 4);
  const p = jobParameters();
  setGrid(p, g.batch, images, g.outChannels, outChannels);
  reserveConvScratch(p, g, g.inChannels, outChannels, depth, g.outHeight * g.outWidth);
  p[Slot.blockStride] = weightBytes;
  setArguments(p, xAt, gradOutAt, partialsAt);
  convGeometryArguments(p, g);
  const inImage = g.inChannels * g.inHeight * g.inWidth;
  const outImage = g.outChannels * g.outHeight * g.outWidth;
  runJob(
    JobKind.conv2dBackwardWeight,
    itemStages(
      p,
      [
        [x, xAt, inImage],
        [gradOut, gradOutAt, outImage],
      ],
      [],
    ),
  );
  if (blocks > 1) kernels.sumBlocks(partialsAt, blocks, weightBytes / 4, gradWeightAt, 0, sizes.weight);
  arena.copyOut(gradWeightAt, gradWeight, sizes.weight);
}

/** Pooling arguments after the three pointers: the geometry with planes first, then countIncludePad. */
function setPoolArguments(p: Float64Array, g: Pool2dGeometry, countIncludePad: boolean): void {
  const values = [
    g.batch * g.channels,
    g.inHeight,
    g.inWidth,
    g.kernelHeight,
    g.kernelWidth,
    g.strideHeight,
    g.strideWidth,
    g.padTop,
    g.padLeft,
    g.outHeight,
    g.outWidth,
    +countIncludePad,
  ];
  for (let i = 0; i < values.length; i++) p[A + 3 + i] = values[i]!;
}

/** Splits the planes of a pooling job, by the larger of its input and output sizes. */
function setPlaneGrid(p: Float64Array, g: Pool2dGeometry): void {
  const planes = g.batch * g.channels;
  const planeSize = Math.max(g.inHeight * g.inWidth, g.outHeight * g.outWidth);
  const chunks = chunkTarget(planes * planeSize, wasmTuning.parallelElements);
  setGrid(p, planes, blockFor(planes, chunks));
}

/** out and argmax [N,C,oh,ow] from x [N,C,H,W]; argmax indexes within each (n, c) input plane. */
function maxPool2dForward(x: Data, out: Data, argmax: Int32Array, g: Pool2dGeometry): void {
  if (!isFloat32(x) || !isFloat32(out)) {
    referenceBackend.maxPool2dForward(x, out, argmax, g);
    return;
  }
  const inCount = g.batch * g.channels * g.inHeight * g.inWidth;
  const outCount = g.batch * g.channels * g.outHeight * g.outWidth;
  requireLength('x', x, inCount);
  requireLength('out', out, outCount);
  requireLength('argmax', argmax, outCount);
  const { arena } = wasmRuntime();
  arena.reset();
  const xAt = arena.allocate(inCount * 4);
  const outAt = arena.allocate(outCount * 4);
  const argmaxAt = arena.allocate(outCount * 4);
  const p = jobParameters();
  setPlaneGrid(p, g);
  setArguments(p, xAt, outAt, argmaxAt);
  setPoolArguments(p, g, false);
  const planeIn = g.inHeight * g.inWidth;
  const planeOut = g.outHeight * g.outWidth;
  const stages = itemStages(
    p,
    [[x, xAt, planeIn]],
    [
      [out, outAt, planeOut],
      [argmax, argmaxAt, planeOut],
    ],
  );
  runJob(JobKind.maxPool2dForward, stages);
}

/** gradX [N,C,H,W] (overwritten) from gradOut and argmax [N,C,oh,ow]. */
function maxPool2dBackward(gradOut: Data, argmax: Int32Array, gradX: Data, g: Pool2dGeometry): void {
  if (!isFloat32(gradOut) || !isFloat32(gradX)) {
    referenceBackend.maxPool2dBackward(gradOut, argmax, gradX, g);
    return;
  }
  const planes = g.batch * g.channels;
  const planeIn = g.inHeight * g.inWidth;
  const planeOut = g.outHeight * g.outWidth;
  requireLength('gradOut', gradOut, planes * planeOut);
  requireLength('argmax', argmax, planes * planeOut);
  requireLength('gradX', gradX, planes * planeIn);
  const { arena } = wasmRuntime();
  arena.reset();
  const gradOutAt = arena.allocate(planes * planeOut * 4);
  const argmaxAt = arena.allocate(planes * planeOut * 4);
  const gradXAt = arena.allocate(planes * planeIn * 4);
  const p = jobParameters();
  setPlaneGrid(p, g);
  setArguments(p, gradOutAt, argmaxAt, gradXAt, planeIn, planeOut);
  const stages = itemStages(
    p,
    [
      [gradOut, gradOutAt, planeOut],
      [argmax, argmaxAt, planeOut],
    ],
    [[gradX, gradXAt, planeIn]],
  );
  runJob(JobKind.maxPool2dBackward, stages);
}

/** out [N,C,oh,ow] = window means of x [N,C,H,W]; see Backend.avgPool2dForward for the divisor. */
function avgPool2dForward(x: Data, out: Data, g: Pool2dGeometry, countIncludePad: boolean): void {
  if (!isFloat32(x) || !isFloat32(out)) {
    referenceBackend.avgPool2dForward(x, out, g, countIncludePad);
    return;
  }
  const inCount = g.batch * g.channels * g.inHeight * g.inWidth;
  const outCount = g.batch * g.channels * g.outHeight * g.outWidth;
  requireLength('x', x, inCount);
  requireLength('out', out, outCount);
  const { arena } = wasmRuntime();
  arena.reset();
  const xAt = arena.allocate(inCount * 4);
  const outAt = arena.allocate(outCount * 4);
  const p = jobParameters();
  setPlaneGrid(p, g);
  setArguments(p, xAt, outAt, 0);
  setPoolArguments(p, g, countIncludePad);
  const planeIn = g.inHeight * g.inWidth;
  const planeOut = g.outHeight * g.outWidth;
  runJob(JobKind.avgPool2dForward, itemStages(p, [[x, xAt, planeIn]], [[out, outAt, planeOut]]));
}

/** gradX [N,C,H,W] (overwritten) from gradOut [N,C,oh,ow]. */
function avgPool2dBackward(gradOut: Data, gradX: Data, g: Pool2dGeometry, countIncludePad: boolean): void {
  if (!isFloat32(gradOut) || !isFloat32(gradX)) {
    referenceBackend.avgPool2dBackward(gradOut, gradX, g, countIncludePad);
    return;
  }
  const inCount = g.batch * g.channels * g.inHeight * g.inWidth;
  const outCount = g.batch * g.channels * g.outHeight * g.outWidth;
  requireLength('gradOut', gradOut, outCount);
  requireLength('gradX', gradX, inCount);
  const { arena } = wasmRuntime();
  arena.reset();
  const gradOutAt = arena.allocate(outCount * 4);
  const gradXAt = arena.allocate(inCount * 4);
  const p = jobParameters();
  setPlaneGrid(p, g);
  setArguments(p, gradOutAt, gradXAt, 0);
  setPoolArguments(p, g, countIncludePad);
  const planeIn = g.inHeight * g.inWidth;
  const planeOut = g.outHeight * g.outWidth;
  const stages = itemStages(p, [[gradOut, gradOutAt, planeOut]], [[gradX, gradXAt, planeIn]]);
  runJob(JobKind.avgPool2dBackward, stages);
}

/** Splits the channels of a per-channel job over [batch, channels, spatial]. */
function setChannelGrid(p: Float64Array, g: BatchNormGeometry): void {
  const chunks = chunkTarget(g.batch * g.channels * g.spatial, wasmTuning.parallelElements);
  setGrid(p, g.channels, blockFor(g.channels, chunks));
}

/** out [N,C,S] = batch-normalised x; mean and invStd [C] are saved for backward. */
function batchNormTrainForward(
  x: Data,
  gamma: Data,
  beta: Data,
  out: Data,
  mean: Data,
  invStd: Data,
  eps: number,
  g: BatchNormGeometry,
): void {
  if (
    !isFloat32(x) ||
    !isFloat32(gamma) ||
    !isFloat32(beta) ||
    !isFloat32(out) ||
    !isFloat32(mean) ||
    !isFloat32(invStd)
  ) {
    referenceBackend.batchNormTrainForward(x, gamma, beta, out, mean, invStd, eps, g);
    return;
  }
  const count = g.batch * g.channels * g.spatial;
  requireLength('x', x, count);
  requireLength('out', out, count);
  requireLength('gamma', gamma, g.channels);
  requireLength('beta', beta, g.channels);
  requireLength('mean', mean, g.channels);
  requireLength('invStd', invStd, g.channels);
  const { arena } = wasmRuntime();
  arena.reset();
  const xAt = arena.allocate(count * 4);
  const gammaAt = arena.allocate(g.channels * 4);
  const betaAt = arena.allocate(g.channels * 4);
  const outAt = arena.allocate(count * 4);
  const meanAt = arena.allocate(g.channels * 4);
  const invStdAt = arena.allocate(g.channels * 4);
  const p = jobParameters();
  setChannelGrid(p, g);
  setArguments(p, xAt, gammaAt, betaAt, outAt, meanAt, invStdAt, eps, g.batch, g.channels, g.spatial);
  const stages = channelStages(
    p,
    g,
    [
      [x, xAt, false],
      [gamma, gammaAt, true],
      [beta, betaAt, true],
    ],
    [
      [out, outAt, false],
      [mean, meanAt, true],
      [invStd, invStdAt, true],
    ],
  );
  runJob(JobKind.batchNormTrainForward, stages);
}

/** gradX [N,C,S], gradGamma and gradBeta [C] (all overwritten) of training-mode batch norm. */
function batchNormTrainBackward(
  x: Data,
  gradOut: Data,
  gamma: Data,
  mean: Data,
  invStd: Data,
  gradX: Data,
  gradGamma: Data,
  gradBeta: Data,
  g: BatchNormGeometry,
): void {
  if (
    !isFloat32(x) ||
    !isFloat32(gradOut) ||
    !isFloat32(gamma) ||
    !isFloat32(mean) ||
    !isFloat32(invStd) ||
    !isFloat32(gradX) ||
    !isFloat32(gradGamma) ||
    !isFloat32(gradBeta)
  ) {
    referenceBackend.batchNormTrainBackward(x, gradOut, gamma, mean, invStd, gradX, gradGamma, gradBeta, g);
    return;
  }
  const count = g.batch * g.channels * g.spatial;
  requireLength('x', x, count);
  requireLength('gradOut', gradOut, count);
  requireLength('gradX', gradX, count);
  requireLength('gamma', gamma, g.channels);
  requireLength('mean', mean, g.channels);
  requireLength('invStd', invStd, g.channels);
  requireLength('gradGamma', gradGamma, g.channels);
  requireLength('gradBeta', gradBeta, g.channels);
  const { arena } = wasmRuntime();
  arena.reset();
  const xAt = arena.allocate(count * 4);
  const gradOutAt = arena.allocate(count * 4);
  const gammaAt = arena.allocate(g.channels * 4);
  const meanAt = arena.allocate(g.channels * 4);
  const invStdAt = arena.allocate(g.channels * 4);
  const gradXAt = arena.allocate(count * 4);
  const gradGammaAt = arena.allocate(g.channels * 4);
  const gradBetaAt = arena.allocate(g.channels * 4);
  const p = jobParameters();
  setChannelGrid(p, g);
  setArguments(
    p,
    xAt,
    gradOutAt,
    gammaAt,
    meanAt,
    invStdAt,
    gradXAt,
    gradGammaAt,
    gradBetaAt,
    g.batch,
    g.channels,
    g.spatial,
  );
  const stages = channelStages(
    p,
    g,
    [
      [x, xAt, false],
      [gradOut, gradOutAt, false],
      [gamma, gammaAt, true],
      [mean, meanAt, true],
      [invStd, invStdAt, true],
    ],
    [
      [gradX, gradXAt, false],
      [gradGamma, gradGammaAt, true],
      [gradBeta, gradBetaAt, true],
    ],
  );
  runJob(JobKind.batchNormTrainBackward, stages);
}

/** out [N,C,S] = x·scale[c] + shift[c]. */
function channelAffine(x: Data, scale: Data, shift: Data, out: Data, g: BatchNormGeometry): void {
  if (!isFloat32(x) || !isFloat32(scale) || !isFloat32(shift) || !isFloat32(out)) {
    referenceBackend.channelAffine(x, scale, shift, out, g);
    return;
  }
  const count = g.batch * g.channels * g.spatial;
  requireLength('x', x, count);
  requireLength('out', out, count);
  requireLength('scale', scale, g.channels);
  requireLength('shift', shift, g.channels);
  const { arena } = wasmRuntime();
  arena.reset();
  const xAt = arena.allocate(count * 4);
  const scaleAt = arena.copyIn(scale, g.channels);
  const shiftAt = arena.copyIn(shift, g.channels);
  const outAt = arena.allocate(count * 4);
  const planes = g.batch * g.channels;
  const p = jobParameters();
  setGrid(p, planes, blockFor(planes, chunkTarget(count, wasmTuning.parallelElements)));
  setArguments(p, xAt, scaleAt, shiftAt, outAt, g.channels, g.spatial);
  runJob(JobKind.channelAffine, itemStages(p, [[x, xAt, g.spatial]], [[out, outAt, g.spatial]]));
}

/** out [C] = Σ over batch and spatial of x [N,C,S] (in float64, as the reference backend). */
function channelSum(x: Data, out: Data, g: BatchNormGeometry): void {
  if (!isFloat32(x) || !isFloat32(out)) {
    referenceBackend.channelSum(x, out, g);
    return;
  }
  const count = g.batch * g.channels * g.spatial;
  requireLength('x', x, count);
  requireLength('out', out, g.channels);
  const { arena } = wasmRuntime();
  arena.reset();
  const xAt = arena.allocate(count * 4);
  const outAt = arena.allocate(g.channels * 4);
  const p = jobParameters();
  // Four channels per chunk at least: the [batch, channels] case sums four columns per vector.
  setGrid(p, g.channels, blockFor(g.channels, chunkTarget(count, wasmTuning.parallelElements), 4));
  setArguments(p, xAt, outAt, g.batch, g.channels, g.spatial);
  runJob(JobKind.channelSum, channelStages(p, g, [[x, xAt, false]], [[out, outAt, true]]));
}

/** Splits `count` elements into cache-line chunks. */
function setElementGrid(p: Float64Array, count: number): void {
  setGrid(p, count, blockFor(count, chunkTarget(count, wasmTuning.parallelElements), LINE_FLOATS));
}

/** out = f(x); ReLU and leaky ReLU run in wasm, the other kinds in the reference backend. */
function activationForward(kind: ActivationKind, x: Data, out: Data, alpha: number): void {
  if ((kind !== 'relu' && kind !== 'leaky_relu') || !isFloat32(x) || !isFloat32(out)) {
    referenceBackend.activationForward(kind, x, out, alpha);
    return;
  }
  const count = x.length;
  requireLength('out', out, count);
  const { arena } = wasmRuntime();
  arena.reset();
  const xAt = arena.allocate(count * 4);
  const outAt = arena.allocate(count * 4);
  const p = jobParameters();
  setElementGrid(p, count);
  setArguments(p, xAt, outAt, alpha);
  const stages = itemStages(p, [[x, xAt, 1]], [[out, outAt, 1]]);
  runJob(kind === 'relu' ? JobKind.reluForward : JobKind.leakyReluForward, stages);
}

/** gradX = gradOut·f'(x); ReLU and leaky ReLU run in wasm, the other kinds in the reference backend. */
function activationBackward(
  kind: ActivationKind,
  x: Data,
  y: Data,
  gradOut: Data,
  gradX: Data,
  alpha: number,
): void {
  if (
    (kind !== 'relu' && kind !== 'leaky_relu') ||
    !isFloat32(x) ||
    !isFloat32(gradOut) ||
    !isFloat32(gradX)
  ) {
    referenceBackend.activationBackward(kind, x, y, gradOut, gradX, alpha);
    return;
  }
  const count = x.length;
  requireLength('gradOut', gradOut, count);
  requireLength('gradX', gradX, count);
  const { arena } = wasmRuntime();
  arena.reset();
  const xAt = arena.allocate(count * 4);
  const gradOutAt = arena.allocate(count * 4);
  const gradXAt = arena.allocate(count * 4);
  const p = jobParameters();
  setElementGrid(p, count);
  setArguments(p, xAt, gradOutAt, gradXAt, alpha);
  const stages = itemStages(
    p,
    [
      [x, xAt, 1],
      [gradOut, gradOutAt, 1],
    ],
    [[gradX, gradXAt, 1]],
  );
  runJob(kind === 'relu' ? JobKind.reluBackward : JobKind.leakyReluBackward, stages);
}

/** Operation codes of assembly/elementwise.ts. */
const BINARY_CODES: Record<BinaryKind, number> = {
  add: 0,
  sub: 1,
  mul: 2,
  div: 3,
  maximum: 4,
  minimum: 5,
};

/** Product of shape[from, to). */
function product(shape: readonly number[], from: number, to: number): number {
  let size = 1;
  for (let axis = from; axis < to; axis++) size *= shape[axis]!;
  return size;
}

/**
 * Where the axes marked `inRun` form one contiguous run, ignoring axes of size 1 (which take no
 * room), returns the shape read as [outer, run, inner]; null when the marked axes are split apart.
 */
function contiguousRun(
  shape: readonly number[],
  inRun: (axis: number) => boolean,
): [outer: number, run: number, inner: number] | null {
  let first = -1;
  let last = -1;
  for (let axis = 0; axis < shape.length; axis++) {
    if (shape[axis] === 1 || !inRun(axis)) continue;
    // A gap is an axis of size > 1 outside the run, between two axes inside it.
    if (last >= 0 && product(shape, last + 1, axis) !== 1) return null;
    if (first < 0) first = axis;
    last = axis;
  }
  if (first < 0) return [product(shape, 0, shape.length), 1, 1];
  return [product(shape, 0, first), product(shape, first, last + 1), product(shape, last + 1, shape.length)];
}

/**
 * An operand shape against the broadcast shape: 'full' when it has every element of it; [outer,
 * middle, inner] when its axes of size > 1 are one contiguous run of the broadcast shape's, so that
 * it reads as a [middle] vector repeated over outer and inner (a bias, a per-channel factor, a
 * scalar); null for any other pattern.
 */
function broadcastLayout(
  shape: readonly number[],
  outShape: readonly number[],
): 'full' | [outer: number, middle: number, inner: number] | null {
  const offset = outShape.length - shape.length;
  const layout = contiguousRun(outShape, (axis) => axis >= offset && shape[axis - offset] !== 1);
  if (layout === null) return null;
  return layout[0] === 1 && layout[2] === 1 ? 'full' : layout;
}

/**
 * out = a ∘ b with broadcasting. Same-shape operands, and one full operand with the other a bias,
 * per-channel vector or scalar, run in wasm; other patterns go to the reference backend.
 */
function binary(
  kind: BinaryKind,
  a: Data,
  aShape: readonly number[],
  b: Data,
  bShape: readonly number[],
  out: Data,
  outShape: readonly number[],
): void {
  const aLayout = broadcastLayout(aShape, outShape);
  const bLayout = broadcastLayout(bShape, outShape);
  if (
    !isFloat32(a) ||
    !isFloat32(b) ||
    !isFloat32(out) ||
    aLayout === null ||
    bLayout === null ||
    (aLayout !== 'full' && bLayout !== 'full')
  ) {
    referenceBackend.binary(kind, a, aShape, b, bShape, out, outShape);
    return;
  }
  const count = product(outShape, 0, outShape.length);
  requireLength('out', out, count);
  const { arena } = wasmRuntime();
  arena.reset();
  const p = jobParameters();
  if (aLayout === 'full' && bLayout === 'full') {
    requireLength('a', a, count);
    requireLength('b', b, count);
    const aAt = arena.allocate(count * 4);
    const bAt = arena.allocate(count * 4);
    const outAt = arena.allocate(count * 4);
    setElementGrid(p, count);
    setArguments(p, BINARY_CODES[kind], aAt, bAt, outAt);
    const stages = itemStages(
      p,
      [
        [a, aAt, 1],
        [b, bAt, 1],
      ],
      [[out, outAt, 1]],
    );
    runJob(JobKind.binarySameShape, stages);
    return;
  }
  const fullIsLeft = aLayout === 'full';
  const full = fullIsLeft ? a : b;
  const vector = fullIsLeft ? b : a;
  const layout = fullIsLeft ? bLayout : aLayout;
  if (layout === 'full') throw new Error('unreachable: both operands full is handled above');
  const [outer, middle, inner] = layout;
  requireLength(fullIsLeft ? 'a' : 'b', full, count);
  requireLength(fullIsLeft ? 'b' : 'a', vector, middle);
  const fullAt = arena.allocate(count * 4);
  const vectorAt = arena.copyIn(vector, middle);
  const outAt = arena.allocate(count * 4);
  const rows = outer * middle;
  // Rows of `inner` elements; when rows are short, blocks of rows keep chunks to whole cache lines.
  setGrid(
    p,
    rows,
    blockFor(rows, chunkTarget(count, wasmTuning.parallelElements), inner === 1 ? LINE_FLOATS : 1),
  );
  setArguments(p, BINARY_CODES[kind], fullAt, vectorAt, outAt, +fullIsLeft, middle, inner);
  runJob(JobKind.binaryBroadcast, itemStages(p, [[full, fullAt, inner]], [[out, outAt, inner]]));
}

/**
 * Sum x down to outShape. Where the kept axes are one contiguous run (x read as [outer, kept, inner]:
 * bias gradients [N, F] → [1, F] and [N, C, H, W] → [1, C, 1, 1], or a full sum) this is channelSum;
 * other patterns go to the reference backend.
 */
function reduceSum(x: Data, xShape: readonly number[], out: Data, outShape: readonly number[]): void {
  const layout = isFloat32(x) && isFloat32(out) ? keptRun(xShape, outShape) : null;
  if (layout === null) {
    referenceBackend.reduceSum(x, xShape, out, outShape);
    return;
  }
  const [outer, kept, inner] = layout;
  channelSum(x, out, { batch: outer, channels: kept, spatial: inner });
}

/** [outer, kept, inner] when outShape keeps one contiguous run of xShape's axes and reduces the rest. */
function keptRun(
  xShape: readonly number[],
  outShape: readonly number[],
): [outer: number, kept: number, inner: number] | null {
  if (xShape.length !== outShape.length) return null;
  for (let axis = 0; axis < xShape.length; axis++) {
    if (outShape[axis] !== 1 && outShape[axis] !== xShape[axis]) return null;
  }
  return contiguousRun(xShape, (axis) => outShape[axis] !== 1);
}

export const wasmBackend: Backend = {
  ...referenceBackend,
  name: 'wasm',
  matmul,
  conv2dForward,
  conv2dBackwardInput,
  conv2dBackwardWeight,
  maxPool2dForward,
  maxPool2dBackward,
  avgPool2dForward,
  avgPool2dBackward,
  batchNormTrainForward,
  batchNormTrainBackward,
  channelAffine,
  channelSum,
  activationForward,
  activationBackward,
  binary,
  reduceSum,
};
