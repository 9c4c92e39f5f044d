/**
 * One seeded training run of the seed CNN that runs unchanged on Node (through src/index.js) and in a
 * page (through the browser bundle, dist/browser/tensile.js): test/browser.test.ts runs it on both and
 * compares the resulting model files bit for bit. It imports nothing, so the page can load the
 * compiled file as it is; the library comes in as `api`.
 */
import type * as Tensile from '../../src/browser.js';

/** What the recipe uses of the library; both entry points provide it. */
export type RecipeApi = Pick<
  typeof Tensile,
  | 'manualSeed'
  | 'seedCnn'
  | 'Adam'
  | 'fit'
  | 'modelToBytes'
  | 'modelFromBytes'
  | 'Random'
  | 'Tensor'
  | 'predict'
>;

export interface RecipeOptions {
  seed: number;
  samples: number;
  batchSize: number;
}

/** Trains a small seed CNN on seeded random 28×28 images for one epoch; returns its model file's bytes. */
export function trainRecipe(api: RecipeApi, options: RecipeOptions): Uint8Array {
  api.manualSeed(options.seed);
  const model = api.seedCnn({ channels: [8, 16] });
  const random = new api.Random(options.seed + 1);
  const images = new Float32Array(options.samples * 784);
  for (let i = 0; i < images.length; i++) images[i] = random.uniform(0, 1);
  const labels = new Int32Array(options.samples);
  for (let i = 0; i < labels.length; i++) labels[i] = random.int(10);
  const dataset = {
    images,
    labels,
    count: options.samples,
    channels: 1,
    height: 28,
    width: 28,
    classes: 10,
    classNames: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
  };
  const optimizer = new api.Adam(model.parameters(), { lr: 1e-3 });
  api.fit(model, dataset, {
    optimizer,
    epochs: 1,
    batchSize: options.batchSize,
    seed: options.seed,
    progress: false,
  });
  return api.modelToBytes(model, { inputShape: [1, 28, 28] });
}

/** The logits of a model file's model for two seeded random images, as bytes (bit-exact comparison). */
export function predictRecipe(api: RecipeApi, modelFile: Uint8Array): Uint8Array {
  const { model } = api.modelFromBytes(modelFile);
  const random = new api.Random(99);
  const images = new Float32Array(2 * 784);
  for (let i = 0; i < images.length; i++) images[i] = random.uniform(0, 1);
  const logits = api.predict(model, new api.Tensor(images, [2, 1, 28, 28])).data as Float32Array;
  return new Uint8Array(logits.buffer.slice(logits.byteOffset, logits.byteOffset + logits.byteLength));
}
