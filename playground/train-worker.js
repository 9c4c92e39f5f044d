/* global fetch, postMessage, performance, AbortController, self */
/**
 * The playground's training worker: tensile's browser build trains the seed CNN (and, for the DL0009
 * and DL0011 comparisons, a twin with average pooling and a twin with a Flatten + FC head) on MNIST
 * with fitAsync, each model on the same batches in the same order (one seed), and posts every batch's
 * loss and accuracy to the page. Between batches it answers predictions for the page's drawing.
 *
 * It runs in a worker because the kernels' threads wait with Atomics.wait, which a page's main
 * thread may not do; the page is cross-origin isolated, so `threads` workers share the memory.
 */
import * as t from '/tensile/tensile.js';

/** @type {{ name: string, label: string, model: any, samplesPerSecond: number }[]} */
let entries = [];
let abort = null;
let data = null;
const SIDE = 28;

async function loadDigits() {
  const response = await fetch('/mnist.bin');
  if (!response.ok) throw new Error(`/mnist.bin: HTTP ${response.status}`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  const count = bytes.length / 785;
  const images = new Float32Array(count * 784);
  for (let i = 0; i < images.length; i++) images[i] = bytes[i] / 255;
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) labels[i] = bytes[count * 784 + i];
  const classNames = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
  const all = { images, labels, count, channels: 1, height: SIDE, width: SIDE, classes: 10, classNames };
  return t.splitDataset(all, 0.1, new t.Random(0));
}

/** The seed CNN's layout with average pooling in both pooling positions (DL0009's twin). */
function averagePoolingCnn(channels) {
  const layers = [];
  let inChannels = 1;
  for (const width of channels) {
    for (let repeat = 0; repeat < 2; repeat++) {
      layers.push(
        new t.Conv2d(inChannels, width, 3, { padding: 1, bias: false }),
        new t.BatchNorm(width),
        new t.ReLU(),
      );
      inChannels = width;
    }
    layers.push(new t.AvgPool2d(2));
  }
  layers.push(new t.GlobalAvgPool2d(), new t.Flatten(), new t.Dense(channels[1], 10));
  return new t.Sequential(...layers);
}

function headParameters(model) {
  const last = model.parameters().slice(-2);
  return last.reduce((sum, parameter) => sum + parameter.size, 0);
}

async function start(options) {
  const info = await t.ready({ threads: options.threads });
  data ??= await loadDigits();
  const channels = options.channels;
  const makers = [
    { name: 'seed', label: 'seed CNN (max pooling, GAP + FC)', make: () => t.seedCnn({ channels }) },
  ];
  if (options.variants) {
    makers.push(
      { name: 'average', label: 'average pooling (DL0009)', make: () => averagePoolingCnn(channels) },
      {
        name: 'flatten',
        label: 'Flatten + FC head (DL0011)',
        make: () => t.seedCnn({ channels, head: 'flatten', inputSize: SIDE }),
      },
    );
  }
  entries = makers.map(({ name, label, make }) => {
    t.manualSeed(1);
    const model = make();
    return { name, label, model, samplesPerSecond: 0, parameters: headParameters(model) };
  });
  postMessage({
    type: 'started',
    info,
    models: entries.map(({ name, label, parameters }) => ({ name, label, headParameters: parameters })),
    trainSamples: data.train.count,
    testSamples: data.test.count,
  });
  abort = new AbortController();
  const runs = entries.map((entry) => {
    let batchStarted = 0;
    const callback = {
      handle(event) {
        if (event.type === 'batchStart') batchStarted = performance.now();
        else if (event.type === 'batchEnd') {
          const seconds = (performance.now() - batchStarted) / 1000;
          const rate = options.batchSize / seconds;
          entry.samplesPerSecond =
            entry.samplesPerSecond === 0 ? rate : 0.9 * entry.samplesPerSecond + 0.1 * rate;
          postMessage({
            type: 'batch',
            model: entry.name,
            epoch: event.epoch,
            batch: event.batch,
            loss: event.loss,
            accuracy: event.epochAccuracy ?? null,
            samplesPerSecond: entry.samplesPerSecond,
          });
        } else if (event.type === 'epochEnd') {
          postMessage({
            type: 'epoch',
            model: entry.name,
            epoch: event.epoch,
            testAccuracy: event.logs.validationAccuracy ?? null,
          });
        }
      },
    };
    return t.fitAsync(entry.model, data.train, {
      optimizer: new t.Adam(entry.model.parameters(), { lr: options.lr }),
      epochs: 1000,
      batchSize: options.batchSize,
      seed: 1,
      validationData: data.test,
      progress: false,
      callbacks: [callback],
      signal: abort.signal,
    });
  });
  await Promise.all(runs);
  postMessage({ type: 'stopped' });
}

/** The drawing moved right and down by `pixels` (what DL0011 tests the two heads on). */
function shifted(pixels, by) {
  const out = new Float32Array(SIDE * SIDE);
  for (let y = by; y < SIDE; y++)
    for (let x = by; x < SIDE; x++) out[y * SIDE + x] = pixels[(y - by) * SIDE + (x - by)];
  return out;
}

function probabilities(model, pixels) {
  const logits = t.predict(model, new t.Tensor(pixels, [1, 1, SIDE, SIDE]));
  return Array.from(t.softmax(logits).data);
}

function predictDrawing(pixels) {
  const x = new t.Tensor(pixels, [1, 1, SIDE, SIDE]);
  const max14 = t.maxPool2d(x, { kernelSize: 2 });
  const average14 = t.avgPool2d(x, { kernelSize: 2 });
  const pooled = {
    max14: Array.from(max14.data),
    average14: Array.from(average14.data),
    max7: Array.from(t.maxPool2d(max14, { kernelSize: 2 }).data),
    average7: Array.from(t.avgPool2d(average14, { kernelSize: 2 }).data),
  };
  const shifts = [0, 2, 4];
  const models = entries.map(({ name, model }) => ({
    name,
    probabilities: probabilities(model, pixels),
    shifted: shifts.map((by) => {
      const p = probabilities(model, shifted(pixels, by));
      const best = p.indexOf(Math.max(...p));
      return { by, digit: best, probability: p[best] };
    }),
  }));
  return { pooled, models };
}

self.onmessage = async ({ data: message }) => {
  try {
    if (message.type === 'start') await start(message.options);
    else if (message.type === 'stop') abort?.abort();
    else if (message.type === 'predict') {
      if (entries.length === 0) await t.ready();
      postMessage({ type: 'prediction', ...predictDrawing(message.pixels), id: message.id });
    }
  } catch (error) {
    postMessage({ type: 'error', message: String(error?.stack ?? error) });
  }
};
