/**
 * tensile in a web page: the browser build's entry point (`tensile/browser`, bundled by
 * scripts/build-browser.mjs into dist/browser/tensile.js beside the kernels' .wasm files and
 * kernel-worker.js). It holds the core, layers, optimizers, the training loop, data transforms,
 * whole-model files as bytes, and the WebAssembly backend; nothing on its paths imports a `node:`
 * module (the build checks), and Node's globals are replaced at bundling (src/platform/).
 *
 * Before any computing, `await ready()`: it fetches and compiles the kernels and makes the wasm backend
 * current. Threads: in a Web Worker of a cross-origin isolated page (COOP: same-origin, COEP:
 * require-corp) the backend runs on every core through nested Web Workers sharing its
 * WebAssembly.Memory; elsewhere (a page's main thread, a page that is not isolated) on one thread.
 * The results are the same bits for every thread count, and the same as Node's wasm backend.
 *
 * @example
 * import { ready, seedCnn, fit, Adam, modelToBlob } from 'tensile/browser';
 * await ready();
 * const model = seedCnn();
 * // images: Float32Array of n·784 values in [0, 1]; labels: Int32Array of n digits
 * const digits = { images, labels, count: n, channels: 1, height: 28, width: 28, classes: 10, classNames };
 * fit(model, digits, { epochs: 1, optimizer: new Adam(model.parameters(), { lr: 1e-3 }), progress: false });
 * const blob = modelToBlob(model, { inputShape: [1, 28, 28] });
 */
import { setBackend, setDefaultBackendChooser } from './backend/index.js';
import { wasmBackend } from './backend/wasm/index.js';
import { wasmRuntime } from './backend/wasm/runtime.js';
import { getWasmThreads, setWasmThreads, wasmWorkersReady } from './backend/wasm/threads.js';

/** Chunks of kernel work the worker threads have run so far (for tests and benchmarks: proof that they took part). */
export { workerChunksRun } from './backend/wasm/threads.js';
import { type LoadedModel, type ModelExtras, modelFromBytes, modelToBytes } from './io/model-format.js';
import type { Module } from './nn/module.js';
import { Tensor } from './tensor/tensor.js';
import { availableCores, threadsPossible } from './platform/kernel-workers.browser.js';
import { type KernelBuild, provideKernels } from './platform/wasm-kernels.browser.js';

export { getBackend, referenceBackend, setBackend, withBackend } from './backend/index.js';
export { wasmBackend };
export type { Backend, Data, DType } from './backend/types.js';
export { Tensor };
export { tensor, zeros, ones, full, type NestedArray } from './tensor/tensor.js';
export { ShapeError, formatShape, shapesEqual, sizeOf, type Shape } from './tensor/shape.js';
export { Random, type RandomState } from './tensor/random.js';
export { noGrad, isGradientEnabled, backward } from './autograd/graph.js';
export * as ops from './ops/index.js';
export * from './ops/index.js';
export * from './nn/index.js';
export * from './optim/index.js';
export * from './models/seed-cnn.js';
export * from './models/resnet.js';
export * from './data/dataset.js';
export * from './data/transforms.js';
export {
  DataLoader,
  InProcessPrefetcher,
  type DataLoaderOptions,
  type ImageBatch,
  type Prefetcher,
} from './data/loader.js';
export * from './data/protocol.js';
export * from './train/events.js';
export * from './train/callbacks.js';
export * from './train/fit.js';
export * from './train/metrics.js';
export * from './train/clipping.js';
export * from './train/non-finite.js';
export * from './train/plateau.js';
export {
  describeModule,
  isModelFile,
  type LoadedModel,
  MODEL_FORMAT,
  MODEL_FORMAT_VERSION,
  type ModelExtras,
  ModelFileError,
  modelFromBytes,
  modelToBytes,
  moduleFromDescription,
  type ModuleDescription,
  registerModule,
} from './io/model-format.js';
export {
  parseSafetensors,
  serializeSafetensors,
  SafetensorsError,
  type SafetensorsFile,
} from './io/safetensors-format.js';

// --- What a page provides: the DOM types this module touches (tsconfig's lib has no DOM). ---------

interface FetchResponse {
  ok: boolean;
  status: number;
  url: string;
  arrayBuffer(): Promise<ArrayBuffer>;
}
/** A Blob or a File (a File is a Blob with a name). */
export interface BlobLike {
  arrayBuffer(): Promise<ArrayBuffer>;
  readonly name?: string;
}
declare function fetch(input: string | URL): Promise<FetchResponse>;
declare const Blob: new (parts: Uint8Array[], options: { type: string }) => BlobLike;
interface BrowserWebAssembly {
  compile(bytes: ArrayBuffer | Uint8Array): Promise<object>;
  compileStreaming?(source: Promise<FetchResponse>): Promise<object>;
}
declare const WebAssembly: BrowserWebAssembly;

// --- Loading --------------------------------------------------------------------------------------

export interface ReadyOptions {
  /**
   * Where the kernels' .wasm files are (a folder URL ending in '/'): by default beside this bundle
   * (new URL('./', import.meta.url)), as `npm run build:browser` lays them out.
   */
  wasmBase?: string | URL;
  /** 'relaxed-simd' (default where the engine has it, as on Node) or 'simd'. */
  build?: KernelBuild;
  /** Kernel threads, the calling thread included (default: see threads()). */
  threads?: number;
}

export interface ReadyInfo {
  /** Which kernels build runs. */
  build: KernelBuild;
  /** Kernel threads in use, the calling thread included. */
  threads: number;
  /** Whether this thread may use more than one (a worker of a cross-origin isolated page). */
  threadsPossible: boolean;
}

let loading: Promise<ReadyInfo> | null = null;

async function compileFrom(url: URL): Promise<object> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`tensile: fetching ${url.href} failed (HTTP ${response.status})`);
  return WebAssembly.compile(await response.arrayBuffer());
}

async function load(options: ReadyOptions): Promise<ReadyInfo> {
  const base = new URL(String(options.wasmBase ?? './'), import.meta.url);
  let module: object | null = null;
  let build: KernelBuild = options.build ?? 'relaxed-simd';
  if (build === 'relaxed-simd') {
    try {
      module = await compileFrom(new URL('kernels-relaxed.wasm', base));
    } catch (error) {
      // An engine without relaxed SIMD refuses to compile it: fall back to the plain build, as Node does.
      if (!(error instanceof Error && error.name === 'CompileError')) throw error;
      build = 'simd';
    }
  }
  module ??= await compileFrom(new URL('kernels.wasm', base));
  provideKernels(module, build);
  wasmRuntime();
  setDefaultBackendChooser(() => wasmBackend);
  setBackend(wasmBackend);
  if (options.threads !== undefined) setThreads(options.threads);
  else setWasmThreads(Math.min(getWasmThreads(), availableCores()));
  await wasmWorkersReady();
  return { build, threads: getWasmThreads(), threadsPossible: threadsPossible() };
}

/**
 * Fetches and compiles the wasm kernels, makes the wasm backend current and starts its worker threads;
 * call it (once; later calls return the first answer) before creating tensors.
 */
export function ready(options: ReadyOptions = {}): Promise<ReadyInfo> {
  loading ??= load(options);
  return loading;
}

/**
 * Sets the kernel threads, the calling thread included. More than one needs a Web Worker of a
 * cross-origin isolated page; elsewhere asking for more throws, saying why.
 */
export function setThreads(count: number): void {
  if (count > 1 && !threadsPossible()) {
    throw new Error(
      `tensile: ${count} threads need a Web Worker in a cross-origin isolated page ` +
        '(COOP: same-origin, COEP: require-corp); here the wasm backend runs on one thread',
    );
  }
  setWasmThreads(count);
}

/** Kernel threads in use, the calling thread included. */
export function threads(): number {
  return getWasmThreads();
}

/** Resolves when every kernel worker has started (after setThreads, before timing). */
export function threadsReady(): Promise<void> {
  return wasmWorkersReady();
}

// --- Model files ----------------------------------------------------------------------------------

/** The whole-model file of model (the format saveModel writes on Node) as a Blob to download or store. */
export function modelToBlob(
  model: Module,
  extras: ModelExtras = {},
  metadata: Record<string, string> = {},
): BlobLike {
  return new Blob([modelToBytes(model, extras, metadata)], { type: 'application/octet-stream' });
}

/**
 * Loads a whole-model file (written by saveModel on Node or modelToBlob here) from a URL (fetched), a
 * File or Blob, or bytes.
 */
export async function loadModelFrom(
  source: string | URL | BlobLike | Uint8Array | ArrayBuffer,
): Promise<LoadedModel> {
  if (source instanceof Uint8Array) return modelFromBytes(source);
  if (source instanceof ArrayBuffer) return modelFromBytes(new Uint8Array(source));
  if (typeof source === 'string' || source instanceof URL) {
    const response = await fetch(source);
    if (!response.ok) throw new Error(`tensile: fetching ${String(source)} failed (HTTP ${response.status})`);
    return modelFromBytes(new Uint8Array(await response.arrayBuffer()), response.url || String(source));
  }
  return modelFromBytes(new Uint8Array(await source.arrayBuffer()), source.name ?? '<blob>');
}

// --- Images ---------------------------------------------------------------------------------------

/** RGBA pixels as ImageData holds them (an ImageData, or what a canvas's getImageData returns). */
export interface RgbaImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8ClampedArray;
}

/** A canvas (HTMLCanvasElement or OffscreenCanvas) to read pixels from. */
export interface CanvasLike {
  readonly width: number;
  readonly height: number;
  getContext(
    kind: '2d',
  ): { getImageData(x: number, y: number, width: number, height: number): RgbaImage } | null;
}

/** An ImageBitmap (or an image element) drawn through an OffscreenCanvas. */
export interface BitmapLike {
  readonly width: number;
  readonly height: number;
}

interface DrawingContext {
  drawImage(image: BitmapLike, x: number, y: number, width: number, height: number): void;
  getImageData(x: number, y: number, width: number, height: number): RgbaImage;
}
declare const OffscreenCanvas: new (
  width: number,
  height: number,
) => { getContext(kind: '2d'): DrawingContext | null };

export interface ImageToTensorOptions {
  /** Output width and height (default the image's); a bitmap or canvas is scaled by the browser. */
  width?: number;
  height?: number;
  /** 1 (grey: mean of R, G, B) or 3 (RGB; default). Alpha is ignored. */
  channels?: 1 | 3;
  /** 1 − value, for dark strokes on a light ground turned into MNIST's light-on-dark. */
  invert?: boolean;
}

function isRgba(image: unknown): image is RgbaImage {
  return (image as RgbaImage).data instanceof Uint8ClampedArray;
}
function isCanvas(image: unknown): image is CanvasLike {
  return typeof (image as CanvasLike).getContext === 'function';
}

/**
 * Pixels of an ImageData, a canvas or an ImageBitmap as a float32 tensor [1, channels, height, width]
 * in [0, 1], the layout tensile's image models take.
 */
export function imageToTensor(
  image: RgbaImage | CanvasLike | BitmapLike,
  options: ImageToTensorOptions = {},
): Tensor {
  const width = options.width ?? image.width;
  const height = options.height ?? image.height;
  let rgba: RgbaImage;
  if (isRgba(image) && image.width === width && image.height === height) rgba = image;
  else if (isCanvas(image) && image.width === width && image.height === height) {
    rgba = image.getContext('2d')!.getImageData(0, 0, width, height);
  } else {
    const context = new OffscreenCanvas(width, height).getContext('2d');
    if (context === null) throw new Error('imageToTensor: no 2D canvas context available');
    if (isRgba(image))
      throw new Error('imageToTensor: resize ImageData through a canvas or createImageBitmap first');
    context.drawImage(image, 0, 0, width, height);
    rgba = context.getImageData(0, 0, width, height);
  }
  const channels = options.channels ?? 3;
  const plane = width * height;
  const out = new Float32Array(channels * plane);
  for (let pixel = 0; pixel < plane; pixel++) {
    const r = rgba.data[pixel * 4]!;
    const g = rgba.data[pixel * 4 + 1]!;
    const b = rgba.data[pixel * 4 + 2]!;
    const values = channels === 1 ? [(r + g + b) / 3] : [r, g, b];
    for (let channel = 0; channel < channels; channel++) {
      const value = values[channel]! / 255;
      out[channel * plane + pixel] = options.invert === true ? 1 - value : value;
    }
  }
  return new Tensor(out, [1, channels, height, width]);
}
