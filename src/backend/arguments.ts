/**
 * The geometry arguments of the fast backends' kernels, declared once for both: the native addon
 * (native/src/addon.cc) and the wasm kernels (assembly/) take a geometry as positional numbers in
 * the orders listed here.
 */
import type { BatchNormGeometry, Conv2dGeometry, Pool2dGeometry } from './types.js';

/** One number per field of a field list: the positional arguments it stands for. */
type NumbersFor<Fields extends readonly string[]> = { -readonly [I in keyof Fields]: number };

/** Conv2dGeometry's fields in the order the convolution kernels take them. */
const convFields = [
  'batch',
  'inChannels',
  'inHeight',
  'inWidth',
  'outChannels',
  'kernelHeight',
  'kernelWidth',
  'strideHeight',
  'strideWidth',
  'padTop',
  'padLeft',
  'dilationHeight',
  'dilationWidth',
  'outHeight',
  'outWidth',
] as const satisfies readonly (keyof Conv2dGeometry)[];

/** A convolution's geometry as positional arguments (convFields' order). */
export type ConvArguments = NumbersFor<typeof convFields>;

/**
 * Pool2dGeometry's window fields (all but batch and channels), in the order the pooling kernels take
 * them after the planes (native: batch and channels; wasm: their product).
 */
const poolWindowFields = [
  'inHeight',
  'inWidth',
  'kernelHeight',
  'kernelWidth',
  'strideHeight',
  'strideWidth',
  'padTop',
  'padLeft',
  'outHeight',
  'outWidth',
] as const satisfies readonly (keyof Pool2dGeometry)[];

/** A pooling window as positional arguments (poolWindowFields' order). */
export type PoolWindowArguments = NumbersFor<typeof poolWindowFields>;

/** Per-channel kernels' geometry: [batch, channels, spatial]. */
export type ChannelArguments = [batch: number, channels: number, spatial: number];

/** g as the convolution kernels' positional arguments. */
export function convArguments(g: Conv2dGeometry): ConvArguments {
  return convFields.map((field) => g[field]) as ConvArguments;
}

/** Writes g's convolution arguments into target from index `at` (a wasm job's argument slots). */
export function writeConvArguments(target: Float64Array, at: number, g: Conv2dGeometry): void {
  for (let i = 0; i < convFields.length; i++) target[at + i] = g[convFields[i]!];
}

/** g's pooling window as positional arguments. */
export function poolWindowArguments(g: Pool2dGeometry): PoolWindowArguments {
  return poolWindowFields.map((field) => g[field]) as PoolWindowArguments;
}

/** Writes g's pooling window arguments into target from index `at`; returns the index after them. */
export function writePoolWindowArguments(target: Float64Array, at: number, g: Pool2dGeometry): number {
  for (let i = 0; i < poolWindowFields.length; i++) target[at + i] = g[poolWindowFields[i]!];
  return at + poolWindowFields.length;
}

/** g as the per-channel kernels' positional arguments. */
export function channelArguments(g: BatchNormGeometry): ChannelArguments {
  return [g.batch, g.channels, g.spatial];
}
