/**
 * Winograd F(2×2, 3×3) and F(4×4, 3×3) planning for the wasm backend's 3×3, stride-1, dilation-1,
 * pad-1 convolutions (the seed CNN's layers): conv2dForward, and conv2dBackwardInput as the same
 * convolution of gradOut with the transposed, flipped weights (tiles of 4 where winogradTile says).
 * The kernels are in assembly/winograd.ts; every other geometry keeps the im2col path of
 * ./convolution.ts. The weight gradient of the same geometry (winogradWeightGradientJob) is planned
 * by conv2dBackwardWeight there, which shares its fixed image blocks and the sum of their partial
 * gradients with im2col.
 */
import type { Conv2dGeometry } from '../types.js';
import { ARGUMENTS as A, scratchOf, Slot, type ChunkRunner, type KernelFileJobs } from './jobs.js';
import { blockFor, chunkTarget, itemStages, reserveScratch, setArguments, setGrid } from './plan.js';
import { wasmRuntime, type Pointer } from './runtime.js';
import { getWasmThreads, jobParameters, runJob, wasmTuning } from './threads.js';

/** Transform positions of F(2×2, 3×3)'s 4×4 patch (the weight gradient's). */
const POSITIONS = 16;

/** Tuning of the Winograd path; benchmarks set minChannels to Infinity to time im2col instead. */
export const winogradTuning = {
  /**
   * Fewest channels on either side for the Winograd path. Its GEMMs have depth = input channels and
   * rows = output channels, so with few of either the register tile is mostly padding and loop
   * overhead, and the input and output transforms (per channel, not per channel pair) outweigh the
   * multiply-adds saved; the seed CNN's first layer (1 input channel) stays on im2col. Measured (64
   * images, one thread, forward and input gradient): 4→16 and 6→32 channels 0.9× im2col's speed,
   * 8→8 to 8→64 0.9–1.3×, 12→12 and up 1.4–1.9×.
   */
  minChannels: 8,
  /**
   * The same for conv2dBackwardWeight (its GEMMs have rows = output channels, columns = input
   * channels and depth = tiles); a knob of its own so that benchmarks can time it alone. Measured
   * (64 images, one thread, against im2col): 4→8 and 4→16 at 28×28 0.9×, 6→32 1.0×, 8→8 and 8→16
   * 1.3×, 8→64 at 14×14 1.1×, 12→12 and 16→16 1.4–1.5×, 32→32 and up 1.4–1.7×.
   */
  weightGradientMinChannels: 8,
  /**
   * About how many GEMM columns (tiles) the forward and input-gradient products gather from several
   * small images (assembly/winograd.ts imagesPerProduct): a 4×4 image has 4 tiles, half a strip of
   * 8 columns, and each strip streams the packed weights (1 MiB a position at 512 channels) again.
   */
  productColumns: 64,
  /** Whether winogradTile may choose F(4×4, 3×3); benchmarks turn it off to time F(2×2, 3×3). */
  largeTiles: true,
};

/** True when the geometry is a 3×3, stride-1, dilation-1 convolution padded by 1 on every side. */
export function isWinogradGeometry(g: Conv2dGeometry): boolean {
  return (
    g.kernelHeight === 3 &&
    g.kernelWidth === 3 &&
    g.strideHeight === 1 &&
    g.strideWidth === 1 &&
    g.dilationHeight === 1 &&
    g.dilationWidth === 1 &&
    g.padTop === 1 &&
    g.padLeft === 1 &&
    g.outHeight === g.inHeight &&
    g.outWidth === g.inWidth &&
    g.inHeight > 0 &&
    g.inWidth > 0
  );
}

/**
 * True when conv2dForward and conv2dBackwardInput of `g` take the Winograd path. Both sides' channel
 * counts matter to both directions (they swap roles), so one test serves the two.
 */
export function usesWinograd(g: Conv2dGeometry): boolean {
  return (
    isWinogradGeometry(g) &&
    g.inChannels >= winogradTuning.minChannels &&
    g.outChannels >= winogradTuning.minChannels
  );
}

/**
 * Most bytes of the 16 [O, C] sums dU that each thread of the Winograd weight gradient keeps (64 MiB:
 * 1024 channels on both sides); past it, im2col, whose partial sums are 9 [O, C] per image block.
 */
const GRADIENT_SUM_BYTES = 64 * 2 ** 20;

/** True when conv2dBackwardWeight of `g` takes the Winograd path (winogradWeightGradientJob). */
export function usesWinogradWeightGradient(g: Conv2dGeometry): boolean {
  return (
    isWinogradGeometry(g) &&
    g.inChannels >= winogradTuning.weightGradientMinChannels &&
    g.outChannels >= winogradTuning.weightGradientMinChannels &&
    POSITIONS * g.inChannels * g.outChannels * 4 <= GRADIENT_SUM_BYTES
  );
}

/**
 * Output side of the tiles conv2dForward and conv2dBackwardInput take for a Winograd convolution
 * whose sums run over `depth` channels (input channels forward, output channels backward) to an
 * output of height × width: 4, F(4×4, 3×3), where the depth is at most 32 (its rounding error grows
 * with the depth of the sums; the native backend's rule, native/src/winograd.cc) and its tiles need
 * at most ¾ of F(2×2, 3×3)'s products (outputs from 7×7 on); 2 otherwise. Depends on the geometry
 * alone, so a sample gives the same bits in any batch and on any number of threads.
 */
export function winogradTile(depth: number, height: number, width: number): 2 | 4 {
  const tiles = (side: number) => Math.ceil(height / side) * Math.ceil(width / side);
  return winogradTuning.largeTiles && depth <= 32 && height >= 7 && width >= 7 && 3 * tiles(4) <= tiles(2)
    ? 4
    : 2;
}

/**
 * Output channels per chunk (whole register tiles) when a job has fewer image blocks than chunks
 * wanted. Each chunk transforms the whole input of its images, so a channel split repeats that work:
 * channels are split only as far as it takes to give every thread a chunk. (Measured on 2 threads, 1
 * and 2 images of 64→64 channels at 14×14: with im2col's finer split the input gradient was slower
 * than im2col's.)
 */
function channelBlock(count: number, imageBlocks: number, chunks: number, tileRows: number): number {
  if (imageBlocks >= chunks) return count;
  const blocks = Math.ceil(getWasmThreads() / imageBlocks);
  return Math.min(blockFor(count, blocks, tileRows), count);
}

/**
 * output [N, outChannels', H, W] = Winograd convolution of input [N, inChannels', H, W], where the
 * primed counts are g's (forward) or g's swapped (backward: input is gradOut, output gradX, and the
 * weight [O, C, 3, 3] is used transposed and flipped), on tiles of `tile` (winogradTile). Chunks
 * are blocks of images, and of output channels when there are few images; each chunk transforms its
 * images itself. Returns false, with output undefined, where tiles of 4 gave an infinite or NaN
 * output: a NaN or infinity in the input reaches every output of its F(4×4, 3×3) tiles (the
 * transforms mix a patch's 36 values, and NaN · 0 is NaN), where the direct sum and F(2×2, 3×3)
 * confine it to the outputs whose windows hold it, so the caller runs such calls again on tiles of 2.
 */
function winogradConvolution(
  input: Float32Array,
  weight: Float32Array,
  output: Float32Array,
  g: Conv2dGeometry,
  backward: boolean,
  tile: 2 | 4,
): boolean {
  const inChannels = backward ? g.outChannels : g.inChannels;
  const outChannels = backward ? g.inChannels : g.outChannels;
  const pixels = g.inHeight * g.inWidth;
  const inImage = inChannels * pixels;
  const outImage = outChannels * pixels;
  const weightSize = g.outChannels * g.inChannels * 9;
  const { kernels, arena } = wasmRuntime();
  arena.reset();
  const inputAt = arena.place(input, g.batch * inImage);
  const weightAt = arena.copyIn(weight, weightSize);
  const packedAt = arena.allocate(kernels.winogradPackedBytes(outChannels, inChannels, tile));
  const statusAt = arena.allocate(4);
  const status = arena.view(statusAt, 1);
  status[0] = 0;
  const outputAt = arena.place(output, g.batch * outImage);
  const tileRows = kernels.gemmTileRows();
  const p = jobParameters();
  // The weight transform (16 values per channel pair, 16 MiB for 512×512 channels) is split by rows
  // of U where it is large enough to pay for waking the workers.
  const weightChunks = chunkTarget(outChannels * inChannels, wasmTuning.parallelElements);
  setGrid(p, outChannels, weightChunks === 1 ? outChannels : blockFor(outChannels, weightChunks, tileRows));
  setArguments(p, weightAt, g.outChannels, g.inChannels, backward ? 1 : 0, packedAt, tile);
  runJob(winogradWeightsChunk);
  const chunks = chunkTarget(g.batch * outImage * inChannels * 9, wasmTuning.parallelMultiplyAdds);
  // Twice the usual chunks, as the im2col path does: images are small, self-contained tasks. But a
  // chunk takes at least the images that share one product (small images), while every thread still
  // gets two, so that a thread the OS deschedules does not hold the others up: 2-image chunks of 4×4
  // images gave products of 8 columns, which stream the packed weights once per 8 columns. (512→512
  // at 4×4, batch 32, two threads, 40 alternating calls: median 24.6 ms with one 16-image chunk per
  // thread, 24.0 with two 8-image ones, load 3.8.)
  const productColumns = winogradTuning.productColumns;
  const shared = kernels.winogradImagesPerProduct(g.inHeight, g.inWidth, productColumns, tile);
  const images =
    chunks === 1
      ? g.batch
      : Math.max(
          blockFor(g.batch, 2 * chunks),
          Math.min(shared, Math.ceil(g.batch / (2 * getWasmThreads()))),
        );
  const channels = channelBlock(outChannels, Math.ceil(g.batch / images), chunks, tileRows);
  setGrid(p, g.batch, images, outChannels, channels);
  reserveScratch(
    p,
    kernels.winogradScratchBytes(
      inChannels,
      g.inHeight,
      g.inWidth,
      outChannels,
      images,
      productColumns,
      tile,
    ),
  );
  setArguments(
    p,
    inputAt,
    packedAt,
    outputAt,
    g.batch,
    inChannels,
    g.inHeight,
    g.inWidth,
    outChannels,
    productColumns,
    tile,
    statusAt,
  );
  runJob(winogradConvChunk, itemStages(p, [[input, inputAt, inImage]], [[output, outputAt, outImage]]));
  return status[0] === 0;
}

/**
 * winogradConvolution on winogradTile's tiles, and on tiles of 2 again where those of 4 gave
 * outputs that are not all finite.
 */
function winogradConvolutionChecked(
  input: Float32Array,
  weight: Float32Array,
  output: Float32Array,
  g: Conv2dGeometry,
  backward: boolean,
): void {
  const tile = winogradTile(backward ? g.outChannels : g.inChannels, g.inHeight, g.inWidth);
  if (!winogradConvolution(input, weight, output, g, backward, tile) && tile === 4) {
    winogradConvolution(input, weight, output, g, backward, 2);
  }
}

/** out [N,O,H,W] = conv(x [N,C,H,W], weight [O,C,3,3]) when usesWinograd(g); lengths checked by the caller. */
export function winogradConv2dForward(
  x: Float32Array,
  weight: Float32Array,
  out: Float32Array,
  g: Conv2dGeometry,
): void {
  winogradConvolutionChecked(x, weight, out, g, false);
}

/**
 * gradX [N,C,H,W] from gradOut [N,O,H,W] and weight [O,C,3,3] when usesWinograd(g); overwritten;
 * lengths checked by the caller.
 */
export function winogradConv2dBackwardInput(
  gradOut: Float32Array,
  weight: Float32Array,
  gradX: Float32Array,
  g: Conv2dGeometry,
): void {
  winogradConvolutionChecked(gradOut, weight, gradX, g, true);
}

/** Tiles a 256-deep block of the weight gradient's GEMMs holds (assembly/winograd.ts GRADIENT_DEPTH). */
const GRADIENT_DEPTH = 256;

/**
 * Images per block of the Winograd weight gradient, from the im2col path's `images` (fixed by the
 * batch size): at least enough for one 256-deep block of tiles, where the batch has them. Small
 * images (7×7: 16 tiles) would otherwise give GEMMs so shallow that loading and storing dU costs
 * more than the multiply-adds. Depends on the geometry alone, so the sum stays the same on any
 * number of threads.
 */
export function winogradBlockImages(g: Conv2dGeometry, images: number): number {
  const tiles = Math.ceil(g.inHeight / 2) * Math.ceil(g.inWidth / 2);
  return Math.min(g.batch, Math.max(images, Math.ceil(GRADIENT_DEPTH / tiles)));
}

/**
 * Sets up `p` for winogradJobs.runners.winogradWeightGradient when usesWinogradWeightGradient(g): partial weight
 * gradients [O, C, 3, 3] of blocks of `images` images (fixed by the caller from the batch size alone) at
 * partialsAt, one per block; chunks are the image blocks, and blocks of output channels (whole
 * register tiles) when there are fewer image blocks than threads. The caller sets
 * Slot.blockStride and sums the partials in block order.
 */
export function winogradWeightGradientJob(
  p: Float64Array,
  g: Conv2dGeometry,
  images: number,
  xAt: Pointer,
  gradOutAt: Pointer,
  partialsAt: Pointer,
): void {
  const { kernels } = wasmRuntime();
  const blocks = Math.ceil(g.batch / images);
  const work = g.batch * g.outChannels * g.inHeight * g.inWidth * g.inChannels * 9;
  const chunks = chunkTarget(work, wasmTuning.parallelMultiplyAdds);
  const tileRows = kernels.gemmTileRows();
  // Each channel block transforms its images' input again, so (as channelBlock does for the other two
  // directions) channels are split only as far as it takes to give every thread a chunk.
  const channels = channelBlock(g.outChannels, blocks, chunks, tileRows);
  setGrid(p, g.batch, images, g.outChannels, channels);
  reserveScratch(p, kernels.winogradGradientScratchBytes(g.inChannels, g.inHeight, g.inWidth, g.outChannels));
  setArguments(p, xAt, gradOutAt, partialsAt, g.batch, g.inChannels, g.inHeight, g.inWidth, g.outChannels);
}

declare module './runtime.js' {
  /** The exports of assembly/winograd.ts (see there for the semantics). */
  interface KernelExports {
    winogradWeightFloats(rows: number, depth: number): number;
    winogradPackedBytes(rows: number, depth: number, tile: number): number;
    winogradImagesPerProduct(height: number, width: number, productColumns: number, tile: number): number;
    winogradScratchBytes(
      inChannels: number,
      height: number,
      width: number,
      outChannels: number,
      images: number,
      productColumns: number,
      tile: number,
    ): number;
    winogradWeights(
      weight: Pointer,
      outChannels: number,
      inChannels: number,
      backward: boolean,
      rowStart: number,
      rowEnd: number,
      packed: Pointer,
      tile: number,
    ): void;
    winogradConv(
      x: Pointer,
      packed: Pointer,
      out: Pointer,
      batch: number,
      inChannels: number,
      height: number,
      width: number,
      outChannels: number,
      imageStart: number,
      imageEnd: number,
      channelStart: number,
      channelEnd: number,
      productColumns: number,
      scratch: Pointer,
      tile: number,
      status: Pointer,
    ): void;
    winogradGradientScratchBytes(
      inChannels: number,
      height: number,
      width: number,
      outChannels: number,
    ): number;
    winogradWeightGradient(
      x: Pointer,
      gradOut: Pointer,
      gradWeight: Pointer,
      batch: number,
      inChannels: number,
      height: number,
      width: number,
      outChannels: number,
      imageStart: number,
      imageEnd: number,
      channelStart: number,
      channelEnd: number,
      scratch: Pointer,
    ): void;
  }
}

/**
 * winogradWeights: arguments weight, outChannels, inChannels, backward (0 or 1), packed, tile;
 * first = rows of U (output channels of this direction).
 */
const winogradWeightsChunk: ChunkRunner = (kernels, p, chunk) => {
  kernels.winogradWeights(
    p[A]!,
    p[A + 1]!,
    p[A + 2]!,
    p[A + 3]! !== 0,
    chunk.firstStart,
    chunk.firstEnd,
    p[A + 4]!,
    p[A + 5]!,
  );
};

/**
 * winogradConv: arguments x, packed transformed weights, out, batch, inChannels, height, width,
 * outChannels, productColumns, tile, status; first = images, second = output channels.
 */
const winogradConvChunk: ChunkRunner = (kernels, p, chunk, thread) => {
  kernels.winogradConv(
    p[A]!,
    p[A + 1]!,
    p[A + 2]!,
    p[A + 3]!,
    p[A + 4]!,
    p[A + 5]!,
    p[A + 6]!,
    p[A + 7]!,
    chunk.firstStart,
    chunk.firstEnd,
    chunk.secondStart,
    chunk.secondEnd,
    p[A + 8]!,
    scratchOf(p, thread),
    p[A + 9]!,
    p[A + 10]!,
  );
};

/**
 * winogradWeightGradient: arguments x, gradOut, gradWeight (partial sums), batch, inChannels, height,
 * width, outChannels; first = images (each block writes its own partial sum, Slot.blockStride
 * apart), second = output channels.
 */
const winogradWeightGradientChunk: ChunkRunner = (kernels, p, chunk, thread) => {
  kernels.winogradWeightGradient(
    p[A]!,
    p[A + 1]!,
    p[A + 2]! + chunk.firstIndex * p[Slot.blockStride]!,
    p[A + 3]!,
    p[A + 4]!,
    p[A + 5]!,
    p[A + 6]!,
    p[A + 7]!,
    chunk.firstStart,
    chunk.firstEnd,
    chunk.secondStart,
    chunk.secondEnd,
    scratchOf(p, thread),
  );
};

/** This file's part of the job table (./index.ts). */
export const winogradJobs = {
  exports: {
    winogradWeightFloats: true,
    winogradPackedBytes: true,
    winogradImagesPerProduct: true,
    winogradScratchBytes: true,
    winogradWeights: true,
    winogradConv: true,
    winogradGradientScratchBytes: true,
    winogradWeightGradient: true,
  },
  runners: {
    winogradWeights: winogradWeightsChunk,
    winogradConv: winogradConvChunk,
    winogradWeightGradient: winogradWeightGradientChunk,
  },
} satisfies KernelFileJobs;
