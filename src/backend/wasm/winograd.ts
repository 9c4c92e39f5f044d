/**
 * Winograd F(2×2, 3×3) planning for the wasm backend's 3×3, stride-1, dilation-1, pad-1
 * convolutions (the seed CNN's layers): conv2dForward, and conv2dBackwardInput as the same
 * convolution of gradOut with the transposed, flipped weights. The kernels are in
 * assembly/winograd.ts; every other geometry, and conv2dBackwardWeight, keeps the im2col path of
 * ./convolution.ts.
 */
import type { Conv2dGeometry } from '../types.js';
import { JobKind } from './jobs.js';
import { blockFor, chunkTarget, itemStages, reserveScratch, setArguments, setGrid } from './plan.js';
import { wasmRuntime } from './runtime.js';
import { getWasmThreads, jobParameters, runJob, wasmTuning } from './threads.js';

/** Transform positions of a 4×4 Winograd tile. */
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
 * weight [O, C, 3, 3] is used transposed and flipped). Chunks are blocks of images, and of output
 * channels when there are few images; each chunk transforms its images itself.
 */
function winogradConvolution(
  input: Float32Array,
  weight: Float32Array,
  output: Float32Array,
  g: Conv2dGeometry,
  backward: boolean,
): void {
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
  const packedAt = arena.allocate(POSITIONS * kernels.winogradWeightFloats(outChannels, inChannels) * 4);
  const transformedAt = arena.allocate(kernels.winogradTransformedBytes(g.outChannels, g.inChannels));
  const outputAt = arena.place(output, g.batch * outImage);
  // The weight transform is small (16 values per channel pair), so the calling thread does it alone.
  kernels.winogradWeights(weightAt, g.outChannels, g.inChannels, backward, transformedAt, packedAt);
  const chunks = chunkTarget(g.batch * outImage * inChannels * 9, wasmTuning.parallelMultiplyAdds);
  const p = jobParameters();
  // Twice the usual chunks, as the im2col path does: images are small, self-contained tasks.
  const images = chunks === 1 ? g.batch : blockFor(g.batch, 2 * chunks);
  const tileRows = kernels.gemmTileRows();
  const channels = channelBlock(outChannels, Math.ceil(g.batch / images), chunks, tileRows);
  setGrid(p, g.batch, images, outChannels, channels);
  reserveScratch(p, kernels.winogradScratchBytes(inChannels, g.inHeight, g.inWidth, outChannels));
  setArguments(p, inputAt, packedAt, outputAt, g.batch, inChannels, g.inHeight, g.inWidth, outChannels);
  runJob(JobKind.winogradConv, itemStages(p, [[input, inputAt, inImage]], [[output, outputAt, outImage]]));
}

/** out [N,O,H,W] = conv(x [N,C,H,W], weight [O,C,3,3]) when usesWinograd(g); lengths checked by the caller. */
export function winogradConv2dForward(
  x: Float32Array,
  weight: Float32Array,
  out: Float32Array,
  g: Conv2dGeometry,
): void {
  winogradConvolution(x, weight, out, g, false);
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
  winogradConvolution(gradOut, weight, gradX, g, true);
}
