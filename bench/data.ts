/**
 * Is data loading fast enough for training? Images per second, and CPU time per image, of
 *   - the first pass, which decodes every image once (sharp, or the plain-PNG path for small PNGs of
 *     the wanted size) and augments it: in this thread, and in 1 and 2 worker threads each taking a
 *     share; `tensile train` makes this pass before the first epoch (into memory, or into the
 *     decoded-pixel cache with --stream);
 *   - every later epoch: with --stream, reading the decoded pixels back from the cache
 *     (imageFolderDataset.get) and augmenting; in memory, augmenting only;
 * for
 *   - 28×28 gray PNGs (Fashion-MNIST images) with randomShift(2), against the seed CNN (32-64) on 1×28×28;
 *   - 224×224 RGB JPEGs resized to 64×64 with randomResizedCrop and horizontalFlip, against ResNet-18
 *     (small stem) on 3×64×64,
 * the training rates being samples per second of training steps measured in the same run. The
 * loading share is loading time per sample over training time per sample (wall clock, and CPU time
 * of all threads, since on a machine of few cores loading threads compete with the trainer's); the
 * target is at most 10%. Every row is timed on its second run (the first compiles the code). The images are written once into a temporary folder, removed at the end.
 *
 *   npm run build:ts && npm run bench:data [-- --png 4000 --jpeg 400]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { augmentAll, type DecodeJob, decodeJob } from './data-jobs.js';
import {
  AdamW,
  fit,
  imageFolderDataset,
  loadFashionMnist,
  manualSeed,
  type Module,
  Random,
  randomShift,
  horizontalFlip,
  randomResizedCrop,
  resnet18,
  seedCnn,
  type SampleTransform,
  Tensor,
  tensorDataset,
} from '../src/index.js';

const { values } = parseArgs({
  options: { png: { type: 'string', default: '4000' }, jpeg: { type: 'string', default: '400' } },
});
const sharp = (await import('sharp')).default;
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-bench-data-'));

/** Writes `count` images over 10 class folders; returns the folder and every file with its class. */
async function writeImages(
  name: string,
  count: number,
  image: (index: number) => { pixels: Buffer; side: number; channels: 1 | 3 },
  format: 'png' | 'jpeg',
): Promise<{ folder: string; files: [string, string][] }> {
  const folder = path.join(root, name);
  const files: [string, string][] = [];
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < count; i++) {
    const label = `class${i % 10}`;
    fs.mkdirSync(path.join(folder, label), { recursive: true });
    const { pixels, side, channels } = image(i);
    const file = path.join(folder, label, `${i}.${format === 'png' ? 'png' : 'jpg'}`);
    // Gray images as gray PNGs (colour type 0, as MNIST-style folders have them): sharp writes
    // one-channel input as RGB unless told the colour space.
    const raw = sharp(pixels, { raw: { width: side, height: side, channels } });
    const writer = channels === 1 ? raw.toColourspace('b-w') : raw;
    pending.push((format === 'png' ? writer.png() : writer.jpeg({ quality: 90 })).toFile(file));
    files.push([file, label]);
    if (pending.length >= 32) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  return { folder, files };
}

/** A loading rate: images per second (wall clock) and CPU microseconds per image, all threads. */
interface Rate {
  perSecond: number;
  cpuMicroseconds: number;
}

/** Times `work`, which handles `images` images, by the wall clock and by the process's CPU time. */
async function measure(work: () => Promise<number> | number): Promise<Rate> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  const images = await work();
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  return { perSecond: images / seconds, cpuMicroseconds: (used.user + used.system) / images };
}

/** The first pass in this thread: decoding and augmenting every image of `job`. */
function inProcess(job: DecodeJob): Promise<Rate> {
  return measure(async () => {
    const dataset = await decodeJob(job);
    augmentAll(dataset, job.augment, job.seed);
    return dataset.count;
  });
}

/** The first pass in `threads` workers, each decoding and augmenting its share (a listing). */
async function inWorkers(job: DecodeJob, files: readonly [string, string][], threads: number): Promise<Rate> {
  const workers: Worker[] = [];
  const ready: Promise<unknown>[] = [];
  for (let t = 0; t < threads; t++) {
    const listing = path.join(root, `${path.basename(job.source)}-share-${threads}-${t}.csv`);
    const rows = files.filter((_, i) => i % threads === t).map(([file, label]) => `${file},${label}`);
    fs.writeFileSync(listing, ['path,label', ...rows].join('\n'));
    const worker = new Worker(new URL('./data-worker.js', import.meta.url), {
      workerData: { ...job, source: listing, seed: job.seed + t },
    });
    workers.push(worker);
    ready.push(new Promise((resolve) => worker.once('message', resolve)));
  }
  // Module loading is not counted: every worker starts on the signal. The first round compiles the
  // code in each worker's own engine; the second is timed.
  await Promise.all(ready);
  const round = async () => {
    const done = workers.map(
      (worker) =>
        new Promise<number>((resolve, reject) => {
          worker.once('message', (message: { images: number }) => resolve(message.images));
          worker.once('error', reject);
        }),
    );
    for (const worker of workers) worker.postMessage('go');
    return (await Promise.all(done)).reduce((sum, n) => sum + n, 0);
  };
  await round();
  const rate = await measure(round);
  await Promise.all(workers.map((worker) => worker.terminate()));
  return rate;
}

function transformsOf(job: DecodeJob): SampleTransform[] {
  return job.augment === 'shift'
    ? [randomShift(2)]
    : [randomResizedCrop({ scale: [0.5, 1] }), horizontalFlip()];
}

/** The first pass with --stream: decoding every image into a new decoded-pixel cache. */
async function fillCache(job: DecodeJob, cacheDirectory: string): Promise<Rate> {
  return measure(async () => {
    const dataset = await imageFolderDataset(job.source, {
      imageSize: job.imageSize,
      color: job.color,
      cacheDirectory,
    });
    return dataset.length;
  });
}

/** A later epoch with --stream: reading every image back from the decoded-pixel cache, augmenting it. */
async function fromCache(job: DecodeJob, cacheDirectory: string): Promise<Rate> {
  const dataset = await imageFolderDataset(job.source, {
    imageSize: job.imageSize,
    color: job.color,
    cacheDirectory,
  });
  const transforms = transformsOf(job);
  const [channels, height, width] = dataset.shape;
  const random = new Random(job.seed);
  return measure(() => {
    for (let i = 0; i < dataset.length; i++) {
      const image = dataset.get(i).input as Float32Array;
      for (const transform of transforms) transform.apply(image, { channels, height, width }, random);
    }
    return dataset.length;
  });
}

/**
 * The second of two runs of `run`: the first compiles the code (V8's JIT) and warms the file
 * cache, costs paid once per process, not per image.
 */
async function warm(run: (attempt: number) => Promise<Rate>): Promise<Rate> {
  await run(0);
  return run(1);
}

/** A later epoch in memory: augmenting a copy of every decoded image (what fit's transforms do). */
async function inMemory(job: DecodeJob): Promise<Rate> {
  const dataset = await decodeJob(job);
  const transforms = transformsOf(job);
  const { channels, height, width } = dataset;
  const size = channels * height * width;
  const random = new Random(job.seed);
  return measure(() => {
    for (let i = 0; i < dataset.count; i++) {
      const image = dataset.images.slice(i * size, (i + 1) * size);
      for (const transform of transforms) transform.apply(image, { channels, height, width }, random);
    }
    return dataset.count;
  });
}

/** Samples per second of training steps (forward, backward, AdamW) on random inputs of `shape`. */
function trainingRate(
  model: Module,
  shape: [number, number, number],
  batchSize: number,
  steps: number,
): number {
  const random = new Random(1);
  const run = (batches: number) => {
    const count = batches * batchSize;
    const inputs = new Float32Array(count * shape[0] * shape[1] * shape[2]);
    for (let i = 0; i < inputs.length; i++) inputs[i] = random.next();
    const targets = Int32Array.from({ length: count }, (_, i) => i % 10);
    const started = performance.now();
    fit(model, tensorDataset(new Tensor(inputs, [count, ...shape]), targets), {
      optimizer: new AdamW(model.parameters(), { lr: 1e-3 }),
      epochs: 1,
      batchSize,
      progress: false,
    });
    return count / ((performance.now() - started) / 1000);
  };
  run(1); // warm-up: kernels, buffers
  return run(steps);
}

try {
  const load = () =>
    os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ');
  console.log(
    `bench:data on ${os.availableParallelism()} cores, ${os.cpus()[0]?.model ?? 'unknown CPU'}, load ${load()}, ${new Date().toISOString()}`,
  );
  const fashion = loadFashionMnist();
  const plane = 28 * 28;
  const pngCount = Number(values.png);
  const png = await writeImages(
    'png28',
    pngCount,
    (n) => {
      const i = Math.floor((n * fashion.count) / pngCount);
      const pixels = Buffer.from(
        Array.from(fashion.images.subarray(i * plane, (i + 1) * plane), (v) => Math.round(v * 255)),
      );
      return { pixels, side: 28, channels: 1 };
    },
    'png',
  );
  const textures = new Random(2);
  const jpeg = await writeImages(
    'jpeg224',
    Number(values.jpeg),
    (i) => {
      const pixels = Buffer.alloc(224 * 224 * 3);
      for (let p = 0; p < pixels.length; p++) pixels[p] = ((p * (i % 7)) % 97) * 2 + textures.int(40);
      return { pixels, side: 224, channels: 3 };
    },
    'jpeg',
  );

  manualSeed(1);
  const cases = [
    {
      label: '28×28 gray PNG, randomShift',
      job: { source: png.folder, imageSize: 28, color: 'grayscale', augment: 'shift', seed: 1 } as DecodeJob,
      files: png.files,
      model: 'seed CNN 32-64, 1×28×28, batch 64',
      train: () => trainingRate(seedCnn({ inChannels: 1, classes: 10 }), [1, 28, 28], 64, 8),
    },
    {
      label: '224×224 RGB JPEG → 64×64, crop+flip',
      job: { source: jpeg.folder, imageSize: 64, color: 'rgb', augment: 'crop-flip', seed: 1 } as DecodeJob,
      files: jpeg.files,
      model: 'ResNet-18 (small stem), 3×64×64, batch 32',
      train: () => trainingRate(resnet18({ inChannels: 3, classes: 10, stem: 'small' }), [3, 64, 64], 32, 3),
    },
  ];
  for (const { label, job, files, model, train } of cases) {
    // Training is timed before and after the loading rows and averaged: the machine's load drifts.
    const before = train();
    console.log(`\n${label} (${files.length} images); training: ${model}`);
    console.log(
      `  ${'what is measured'.padEnd(48)} ${'images/s'.padStart(9)} ${'CPU µs/img'.padStart(11)}   loading / training step (wall, CPU)`,
    );
    const cacheRoot = path.join(root, `cache-${path.basename(job.source)}`);
    const rows: [string, Rate][] = [
      ['first pass: decode + augment, this thread', await warm(() => inProcess(job))],
      ['first pass: decode + augment, 1 worker', await inWorkers(job, files, 1)],
      ['first pass: decode + augment, 2 workers', await inWorkers(job, files, 2)],
      [
        'first pass, --stream: decode into the cache',
        await warm((attempt) => fillCache(job, path.join(cacheRoot, `fill-${attempt}`))),
      ],
      [
        'later epochs, --stream: cache read + augment',
        await warm(() => fromCache(job, path.join(cacheRoot, 'fill-1'))),
      ],
      ['later epochs, in memory: augment', await warm(() => inMemory(job))],
    ];
    const trained = (before + train()) / 2;
    console.log(
      `  training: ${trained.toFixed(0)} samples/s, ${(1e6 / trained).toFixed(0)} µs a sample ` +
        `(before and after the loading rows: ${before.toFixed(0)}, ${(2 * trained - before).toFixed(0)})`,
    );
    for (const [name, rate] of rows) {
      const wallShare = (trained / rate.perSecond) * 100;
      const cpuShare = (rate.cpuMicroseconds / (1e6 / trained)) * 100;
      console.log(
        `  ${name.padEnd(48)} ${rate.perSecond.toFixed(0).padStart(9)} ${rate.cpuMicroseconds.toFixed(0).padStart(11)}   ` +
          `${wallShare.toFixed(1).padStart(5)}%, ${cpuShare.toFixed(1).padStart(5)}%${Math.max(wallShare, cpuShare) <= 10 ? '' : '  (over the 10% target)'}`,
      );
    }
  }
  console.log(`\nload at the end ${load()}`);
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
