/**
 * The workload of `npm run bench:browser`, written once for every engine it runs on: seed-CNN
 * training steps (batch of 28×28 grey images, Adam, softmax cross-entropy) on seeded random data,
 * timed after warm-up steps. tensileThroughput runs on Node (src/index.js) and in a page (the browser
 * bundle); tfjsThroughput runs TensorFlow.js's equivalent model in a page. The *Inference twins time
 * prediction (forward passes in inference mode) of the same model, a workload every engine can run. The file imports nothing,
 * so the page loads the compiled file as it is.
 */
import type * as Tensile from '../src/browser.js';

export interface Workload {
  channels: [number, number];
  batchSize: number;
  warmupSteps: number;
  steps: number;
}

type TensileApi = Pick<
  typeof Tensile,
  'manualSeed' | 'seedCnn' | 'Adam' | 'fit' | 'Random' | 'Tensor' | 'predict'
>;

/** Random images and labels for `count` samples (the same on every engine). */
function randomData(count: number): { images: Float32Array; labels: Int32Array } {
  // A small linear congruential generator: no library needed, identical everywhere.
  let state = 12345;
  const next = () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state / 2 ** 32;
  };
  const images = new Float32Array(count * 784);
  for (let i = 0; i < images.length; i++) images[i] = next();
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) labels[i] = Math.floor(next() * 10);
  return { images, labels };
}

/** Training samples per second of tensile's seed CNN (its fit loop), after the warm-up steps. */
export function tensileThroughput(api: TensileApi, workload: Workload, now: () => number): number {
  const count = workload.batchSize * (workload.warmupSteps + workload.steps);
  const { images, labels } = randomData(count);
  api.manualSeed(1);
  const model = api.seedCnn({ channels: workload.channels });
  const dataset = {
    images,
    labels,
    count,
    channels: 1,
    height: 28,
    width: 28,
    classes: 10,
    classNames: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
  };
  let started = 0;
  let finished = 0;
  let batches = 0;
  api.fit(model, dataset, {
    optimizer: new api.Adam(model.parameters(), { lr: 1e-3 }),
    epochs: 1,
    batchSize: workload.batchSize,
    shuffle: false,
    progress: false,
    callbacks: [
      {
        handle(event) {
          if (event.type !== 'batchEnd') return;
          batches++;
          if (batches === workload.warmupSteps) started = now();
          if (batches === workload.warmupSteps + workload.steps) finished = now();
        },
      },
    ],
  });
  return (workload.steps * workload.batchSize * 1000) / (finished - started);
}

/** Predicted samples per second of tensile's seed CNN (inference mode, one batch per call). */
export function tensileInference(api: TensileApi, workload: Workload, now: () => number): number {
  const { images } = randomData(workload.batchSize);
  api.manualSeed(1);
  const model = api.seedCnn({ channels: workload.channels });
  const input = new api.Tensor(images, [workload.batchSize, 1, 28, 28]);
  let started = 0;
  for (let step = 0; step < workload.warmupSteps + workload.steps; step++) {
    if (step === workload.warmupSteps) started = now();
    api.predict(model, input, { batchSize: workload.batchSize });
  }
  return (workload.steps * workload.batchSize * 1000) / (now() - started);
}

/** What tfjsThroughput uses of TensorFlow.js (the `tf` global of tf.min.js). */
interface TfApi {
  sequential(config: { layers: unknown[] }): {
    compile(config: { optimizer: unknown; loss: string }): void;
    trainOnBatch(x: unknown, y: unknown): Promise<unknown>;
    predict(x: unknown): { data(): Promise<unknown>; dispose(): void };
  };
  layers: Record<string, (config?: Record<string, unknown>) => unknown>;
  train: { adam(learningRate: number): unknown };
  tensor4d(values: Float32Array, shape: number[]): unknown;
  oneHot(indices: unknown, depth: number): unknown;
  tensor1d(values: Int32Array, dtype: string): unknown;
  tidy<T>(fn: () => T): T;
}

/** The seed CNN as TensorFlow.js Keras layers (channels-last, as its convolutions want). */
function tfjsSeedCnn(tf: TfApi, workload: Workload): ReturnType<TfApi['sequential']> {
  const [first, second] = workload.channels;
  const layers = [];
  let shaped = false;
  for (const width of [first, second]) {
    for (let repeat = 0; repeat < 2; repeat++) {
      layers.push(
        tf.layers.conv2d!({
          filters: width,
          kernelSize: 3,
          padding: 'same',
          useBias: false,
          ...(shaped ? {} : { inputShape: [28, 28, 1] }),
        }),
        tf.layers.batchNormalization!({ momentum: 0.9, epsilon: 1e-5 }),
        tf.layers.reLU!(),
      );
      shaped = true;
    }
    layers.push(tf.layers.maxPooling2d!({ poolSize: 2 }));
  }
  layers.push(tf.layers.globalAveragePooling2d!({}), tf.layers.dense!({ units: 10, activation: 'softmax' }));
  return tf.sequential({ layers });
}

/**
 * Training samples per second of the same model in TensorFlow.js on its current backend:
 * trainOnBatch per step.
 */
export async function tfjsThroughput(tf: TfApi, workload: Workload, now: () => number): Promise<number> {
  const model = tfjsSeedCnn(tf, workload);
  model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy' });
  const { images, labels } = randomData(workload.batchSize);
  const x = tf.tensor4d(images, [workload.batchSize, 28, 28, 1]);
  const y = tf.oneHot(tf.tensor1d(labels, 'int32'), 10);
  let started = 0;
  for (let step = 0; step < workload.warmupSteps + workload.steps; step++) {
    if (step === workload.warmupSteps) started = now();
    // trainOnBatch resolves once the step's loss has been read back: the step is done.
    await model.trainOnBatch(x, y);
  }
  return (workload.steps * workload.batchSize * 1000) / (now() - started);
}

/** Predicted samples per second of the same model in TensorFlow.js (model.predict, read back). */
export async function tfjsInference(tf: TfApi, workload: Workload, now: () => number): Promise<number> {
  const model = tfjsSeedCnn(tf, workload);
  const { images } = randomData(workload.batchSize);
  const x = tf.tensor4d(images, [workload.batchSize, 28, 28, 1]);
  let started = 0;
  for (let step = 0; step < workload.warmupSteps + workload.steps; step++) {
    if (step === workload.warmupSteps) started = now();
    const y = model.predict(x);
    await y.data();
    y.dispose();
  }
  return (workload.steps * workload.batchSize * 1000) / (now() - started);
}
