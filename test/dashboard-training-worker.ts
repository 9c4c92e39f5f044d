/**
 * A training for the dashboard's browser tests, run as a separate process (as `tensile train` in
 * another terminal would be): a tiny model on a toy dataset under a one-cycle learning-rate schedule,
 * recorded with RunTracker into the store
 * named on the command line, with a pause after each epoch so the page can be seen catching up.
 *
 *   node dist/test/dashboard-training-worker.js sqlite:/tmp/x/tensile.db RUN_NAME EPOCHS PAUSE_MS
 *
 * `node --test dist/test/` also runs every .js file under test/ as a test file; without arguments
 * this file does nothing.
 */
import {
  Adam,
  Dense,
  fit,
  Flatten,
  manualSeed,
  oneCycleSchedule,
  Random,
  Sequential,
  type ImageDataset,
} from '../src/index.js';
import { openRunStore, RunTracker } from '../src/track/index.js';

function toyDataset(count: number): ImageDataset {
  const random = new Random(5);
  const images = new Float32Array(count * 16);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    labels[i] = i % 2;
    for (let p = 0; p < 16; p++) {
      images[i * 16 + p] = (p < 8 === (labels[i] === 0) ? 0.7 : 0.3) + 0.35 * random.normal();
    }
  }
  return {
    images,
    labels,
    count,
    channels: 1,
    height: 4,
    width: 4,
    classes: 2,
    classNames: ['top', 'bottom'],
  };
}

const [url, name = 'browser-test-run', epochText = '8', pauseText = '400'] = process.argv.slice(2);
if (url !== undefined) {
  const store = await openRunStore(url);
  manualSeed(2);
  const model = new Sequential(new Flatten(), new Dense(16, 12, { activation: 'relu' }), new Dense(12, 2));
  const tracker = await RunTracker.start(store, {
    name,
    config: { lr: 0.01, purpose: 'dashboard browser test' },
    batchInterval: 0,
  });
  const pause = Number(pauseText);
  const epochs = Number(epochText);
  fit(model, toyDataset(256), {
    optimizer: new Adam(model.parameters(), { lr: 0.01 }),
    epochs,
    batchSize: 32,
    validationSplit: 0.25,
    progress: false,
    // 192 training samples in batches of 32: 6 steps an epoch. The page draws this schedule's rise
    // and fall from the per-batch learning rates the tracker records.
    schedule: oneCycleSchedule(epochs * 6),
    callbacks: [
      tracker,
      {
        // A real epoch takes seconds; this one takes `pause` milliseconds, so the curve grows visibly.
        handle: (event) => {
          if (event.type === 'epochEnd') Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, pause);
        },
      },
    ],
  });
  await tracker.close();
  await store.close();
}
