import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { deflateSync } from 'node:zlib';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  AdamW,
  type Batch,
  DataLoader,
  fitAsync,
  imageFolderDataset,
  WorkerPrefetcher,
  evaluate,
  fit,
  type ImageDataset,
  imageFolder,
  ImageDecodeError,
  ImageFolderError,
  imageListing,
  loadFashionMnist,
  loadModel,
  manualSeed,
  Random,
  seedCnn,
  splitDataset,
  subset,
} from '../src/index.js';

const sharp = (await import('sharp')).default;

const main = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'main.js');

/** Runs the tensile command line in `root`. */
function tensile(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [main, ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 300_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-image-folder-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** A [1, 28, 28] image in [0, 1] as 8-bit gray pixels. */
function grayPixels(dataset: ImageDataset, index: number): Buffer {
  const size = dataset.height * dataset.width;
  return Buffer.from(
    Array.from(dataset.images.subarray(index * size, (index + 1) * size), (v) => Math.round(v * 255)),
  );
}

async function writeImage(
  file: string,
  pixels: Buffer,
  width: number,
  height: number,
  channels: 1 | 3,
): Promise<void> {
  const image = sharp(pixels, { raw: { width, height, channels } });
  await (
    file.endsWith('.png') ? image.png() : file.endsWith('.webp') ? image.webp() : image.jpeg({ quality: 95 })
  ).toFile(file);
}

/** A PNG whose header claims width × height gray pixels, with a few bytes of image data. */
function claimedPng(width: number, height: number): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (bytes: Buffer) => {
    let c = 0xffffffff;
    for (const byte of bytes) c = crcTable[(c ^ byte) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const check = Buffer.alloc(4);
    check.writeUInt32BE(crc(body));
    return Buffer.concat([length, body, check]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 0; // gray
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(Buffer.alloc(64))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

describe('imageFolder on Fashion-MNIST images written as PNG and JPEG files', () => {
  // Four classes, 75 images each: T-shirt, trouser, sneaker, bag.
  const chosen = [0, 1, 7, 8];
  const perClass = 75;
  const folder = path.join(root, 'fashion');
  let memory: ImageDataset;

  before(async () => {
    const fashion = loadFashionMnist();
    const indices: number[] = [];
    for (const label of chosen) {
      let taken = 0;
      for (let i = 0; i < fashion.count && taken < perClass; i++)
        if (fashion.labels[i] === label) {
          indices.push(i);
          taken++;
        }
    }
    // The in-memory twin: the same images in the folder's order (class folders sorted, files sorted),
    // labelled 0..3 like the folders.
    const picked = subset(fashion, indices);
    const names = chosen.map((label) => fashion.classNames[label]!.replace(/[^A-Za-z]/g, '').toLowerCase());
    const order = names.map((_, c) => c).sort((a, b) => (names[a]! < names[b]! ? -1 : 1));
    const sortedIndices: number[] = [];
    const labels: number[] = [];
    order.forEach((c, sortedLabel) => {
      for (let k = 0; k < perClass; k++) {
        sortedIndices.push(c * perClass + k);
        labels.push(sortedLabel);
      }
    });
    memory = {
      ...subset(picked, sortedIndices),
      labels: Int32Array.from(labels),
      classes: chosen.length,
      classNames: order.map((c) => names[c]!),
    };
    for (let c = 0; c < chosen.length; c++) {
      const classFolder = path.join(folder, names[c]!);
      fs.mkdirSync(classFolder, { recursive: true });
      for (let k = 0; k < perClass; k++) {
        // Odd images as JPEG (lossy), even ones as PNG (lossless); zero-padded names keep the order.
        const extension = k % 2 === 0 ? '.png' : '.jpg';
        await writeImage(
          path.join(classFolder, `${String(k).padStart(3, '0')}${extension}`),
          grayPixels(picked, c * perClass + k),
          28,
          28,
          1,
        );
      }
    }
    // Files that are not images are ignored.
    fs.writeFileSync(path.join(folder, names[0]!, 'notes.txt'), 'not an image');
    fs.writeFileSync(path.join(folder, 'README.md'), 'top-level file, not a class');
  });

  test('reads the classes sorted, PNGs exactly and JPEGs closely, and trains as the same images in memory', async (context) => {
    const read = await imageFolder(folder, {
      imageSize: 28,
      color: 'grayscale',
      validationSplit: 0.25,
      seed: 3,
    });
    assert.deepEqual(read.classNames, memory.classNames);
    assert.deepEqual(read.classNames, [...read.classNames].sort());
    assert.equal(read.all.count, chosen.length * perClass);
    assert.deepEqual([...read.all.labels], [...memory.labels]);
    assert.equal(read.all.channels, 1);
    const size = 28 * 28;
    let jpegError = 0;
    for (let i = 0; i < read.all.count; i++) {
      const a = read.all.images.subarray(i * size, (i + 1) * size);
      const b = memory.images.subarray(i * size, (i + 1) * size);
      if (read.files[i]!.endsWith('.png')) {
        // Lossless: the 8-bit values come back exactly (the originals are k/255).
        for (let p = 0; p < size; p++)
          assert.ok(Math.abs(a[p]! - b[p]!) < 1e-6, `${read.files[i]} pixel ${p}`);
      } else for (let p = 0; p < size; p++) jpegError += Math.abs(a[p]! - b[p]!);
    }
    const meanJpegError = jpegError / ((read.all.count / 2) * size);
    assert.ok(meanJpegError > 0 && meanJpegError < 0.03, `mean JPEG error ${meanJpegError}`);

    // The split is the one splitDataset makes of the same data with the same seed.
    const twin = splitDataset(memory, 0.25, new Random(3), { stratify: true });
    assert.equal(read.validation!.count, twin.test.count);
    assert.deepEqual([...read.validation!.labels], [...twin.test.labels]);

    // At a learning rate of 0.01 for 6 epochs this training was unsettled: the accuracy of one run
    // ranged 0.77–0.95 over seeds (batch norm's running statistics trailing the weights), and a change
    // in a kernel's rounding moved the seed used here from 0.92 to 0.77. At 0.003 for 10 epochs it
    // reads 0.88–0.96 over eight seeds.
    const train = (data: ImageDataset, validation: ImageDataset) => {
      manualSeed(7);
      const model = seedCnn({ inChannels: 1, channels: [8, 16], classes: chosen.length });
      fit(model, data, {
        optimizer: new AdamW(model.parameters(), { lr: 0.003 }),
        epochs: 10,
        batchSize: 32,
        seed: 7,
        progress: false,
      });
      return evaluate(model, validation).accuracy;
    };
    const fromFolder = train(read.train, read.validation!);
    const fromMemory = train(twin.train, twin.test);
    context.diagnostic(
      `validation accuracy: folder ${fromFolder}, memory ${fromMemory}; mean JPEG error ${meanJpegError}`,
    );
    // 75 validation images: one image is 1.3 points; JPEG noise moves a few.
    assert.ok(fromMemory > 0.8, `in memory: ${fromMemory}`);
    assert.ok(Math.abs(fromFolder - fromMemory) <= 0.08, `folder ${fromFolder} vs memory ${fromMemory}`);
  });

  test('RGB repeats the gray channel; a listing file reads the same images', async () => {
    const rgb = await imageFolder(folder, { imageSize: 14, fit: 'stretch' });
    assert.equal(rgb.all.channels, 3);
    assert.equal(rgb.all.height, 14);
    const plane = 14 * 14;
    for (let p = 0; p < plane; p += 17) {
      assert.equal(rgb.all.images[p], rgb.all.images[plane + p]);
      assert.equal(rgb.all.images[p], rgb.all.images[2 * plane + p]);
    }
    // Listed in reverse order, with paths relative to the listing's folder and quoted.
    const rows = rgb.files.map(
      (file, i) => `"${path.relative(root, file)}",${rgb.classNames[rgb.all.labels[i]!]}`,
    );
    const listing = path.join(root, 'listing.csv');
    fs.writeFileSync(listing, ['path,label', ...rows.reverse()].join('\n'));
    const listed = await imageListing(listing, { imageSize: 14, fit: 'stretch' });
    assert.deepEqual(listed.classNames, rgb.classNames);
    assert.equal(listed.all.count, rgb.all.count);
    // The listing is in reverse order: the first listed is the folder's last image.
    const size = 3 * plane;
    const last = rgb.all.count - 1;
    assert.deepEqual(
      listed.all.images.subarray(0, size),
      rgb.all.images.subarray(last * size, (last + 1) * size),
    );
    assert.equal(listed.all.labels[0], rgb.all.labels[last]);
  });

  test('tensile train --data, evaluate and finetune --data read the folder', (context) => {
    const trained = tensile([
      'train',
      '--data',
      folder,
      '--image-size',
      '28',
      '--grayscale',
      '--epochs',
      '4',
      '--batch-size',
      '16',
      '--seed',
      '1',
      '--no-track',
      '--quiet',
      '--save',
      'folder-model.safetensors',
    ]);
    assert.equal(trained.status, 0, trained.stderr);
    const accuracy = Number(/^test accuracy: ([\d.]+)% \((\d+)\/60\)/m.exec(trained.stdout)?.[1]);
    context.diagnostic(trained.stdout.trim());
    assert.ok(accuracy >= 75, trained.stdout);

    const evaluated = tensile(['evaluate', '--model', 'folder-model.safetensors', '--data', folder]);
    assert.equal(evaluated.status, 0, evaluated.stderr);
    assert.match(evaluated.stdout, /^accuracy: [\d.]+% \(\d+\/300\)/m);
    for (const name of memory.classNames)
      assert.match(evaluated.stdout, new RegExp(`^ +${name} +[\\d.]+ +[\\d.]+ +[\\d.]+ +75$`, 'm'));
    // The confusion matrix as a figure: its counts are the report's supports, row by row.
    assert.match(
      evaluated.stdout,
      /^confusion matrix: out\/evaluate\/confusion-matrix\.svg, out\/evaluate\/confusion-matrix\.png$/m,
    );
    const figure = fs.readFileSync(path.join(root, 'out', 'evaluate', 'confusion-matrix.svg'), 'utf8');
    for (const name of memory.classNames) assert.ok(figure.includes(`>${name}<`), name);
    assert.ok(fs.statSync(path.join(root, 'out', 'evaluate', 'confusion-matrix.png')).size > 1000);

    const tuned = tensile([
      'finetune',
      '--from',
      'folder-model.safetensors',
      '--data',
      folder,
      '--image-size',
      '28',
      '--grayscale',
      '--strategy',
      'headOnly',
      '--epochs',
      '1',
      '--no-track',
      '--quiet',
    ]);
    assert.equal(tuned.status, 0, tuned.stderr);
    assert.match(tuned.stdout, /^test accuracy: [\d.]+% \(\d+\/60\)/m);

    // ResNet-18 (small stem) on 16×16 RGB copies: one epoch, to show the path works, not to score.
    const resnet = tensile([
      'train',
      '--data',
      folder,
      '--model',
      'resnet18',
      '--image-size',
      '16',
      '--epochs',
      '1',
      '--batch-size',
      '32',
      '--no-track',
      '--quiet',
      '--save',
      'resnet.safetensors',
    ]);
    assert.equal(resnet.status, 0, resnet.stderr);
    assert.match(resnet.stdout, /^test accuracy: [\d.]+% \(\d+\/60\)/m);
    const resnetEvaluated = tensile(['evaluate', '--model', 'resnet.safetensors', '--data', folder]);
    assert.equal(resnetEvaluated.status, 0, resnetEvaluated.stderr);

    // Mistakes are usage errors (exit 2) before any work.
    const wrong = tensile(['train', '--data', folder, '--model', 'mlp', '--no-track']);
    assert.equal(wrong.status, 2);
    assert.match(wrong.stderr, /--model mlp is for tables/);
    const alone = tensile(['train', '--image-size', '28', '--no-track']);
    assert.equal(alone.status, 2);
    assert.match(alone.stderr, /--image-size goes with --data/);
  });

  test('tensile train --data --stream trains to the same weights as the in-memory path', () => {
    // 300 images, 60 held out: the streamed run reads them from a temporary cache batch by batch,
    // through the same stratified split and the same shuffled order, so every step sees the same batch.
    const options = [
      '--image-size',
      '28',
      '--grayscale',
      '--epochs',
      '2',
      '--batch-size',
      '16',
      '--seed',
      '3',
    ];
    const runs = [[], ['--stream']].map((extra, i) => {
      const run = tensile([
        'train',
        '--data',
        folder,
        ...options,
        ...extra,
        '--no-track',
        '--quiet',
        '--save',
        `stream-${i}.safetensors`,
      ]);
      assert.equal(run.status, 0, run.stderr);
      return run.stdout;
    });
    const result = (stdout: string) => /^test accuracy: .*, test loss [\d.]+/m.exec(stdout)?.[0];
    assert.ok(result(runs[0]!) !== undefined, runs[0]);
    assert.equal(result(runs[1]!), result(runs[0]!));
    const [memoryWeights, streamedWeights] = [0, 1].map((i) =>
      loadModel(path.join(root, `stream-${i}.safetensors`))
        .model.parameters()
        .map((p) => Array.from(p.data)),
    );
    assert.deepEqual(streamedWeights, memoryWeights);

    const wrong = tensile(['train', '--stream', '--no-track']);
    assert.equal(wrong.status, 2);
    assert.match(wrong.stderr, /--stream goes with --data/);
  });

  test('imageFolderDataset reads samples lazily from the cache, in worker threads as in this one', async () => {
    const cacheDirectory = path.join(root, 'lazy-cache');
    const lazy = await imageFolderDataset(folder, { imageSize: 28, color: 'grayscale', cacheDirectory });
    const eager = await imageFolder(folder, { imageSize: 28, color: 'grayscale' });
    assert.equal(lazy.length, eager.all.count);
    assert.deepEqual([...lazy.labels], [...eager.all.labels]);
    assert.deepEqual(lazy.shape, [1, 28, 28]);
    for (let i = 0; i < lazy.length; i += 7) {
      const sample = lazy.get(i);
      assert.deepEqual(sample.input, eager.all.images.subarray(i * 784, (i + 1) * 784));
      assert.equal(sample.target, eager.all.labels[i]);
    }
    assert.throws(() => lazy.get(lazy.length), /outside \[0, 300\)/);

    process.env.TENSILE_TEST_IMAGE_FOLDER = folder;
    process.env.TENSILE_TEST_IMAGE_CACHE = cacheDirectory;
    const prefetcher = new WorkerPrefetcher({
      module: new URL('./helpers/image-folder-worker.js', import.meta.url),
    });
    try {
      const plain = [...new DataLoader(lazy, { batchSize: 32, shuffle: true, seed: 4 })];
      const threaded: Batch[] = [];
      for await (const batch of new DataLoader(lazy, {
        batchSize: 32,
        shuffle: true,
        seed: 4,
        prefetch: 3,
        prefetcher,
      }))
        threaded.push(batch);
      assert.equal(threaded.length, 10);
      assert.deepEqual(
        threaded.map((batch) => [Array.from(batch.input.data), Array.from(batch.target as Int32Array)]),
        plain.map((batch) => [Array.from(batch.input.data), Array.from(batch.target as Int32Array)]),
      );
      manualSeed(7);
      const model = seedCnn({ inChannels: 1, channels: [8, 16], classes: chosen.length });
      await fitAsync(
        model,
        new DataLoader(lazy, { batchSize: 16, shuffle: true, seed: 4, prefetch: 2, prefetcher }),
        {
          optimizer: new AdamW(model.parameters(), { lr: 0.01 }),
          epochs: 3,
          progress: false,
        },
      );
      const accuracy = evaluate(model, eager.all).accuracy;
      assert.ok(accuracy > 0.8, `training accuracy ${accuracy}`);
    } finally {
      await prefetcher.close();
    }
  });

  test('the cache stores decoded pixels and a second read takes them from it', async () => {
    const cacheDirectory = path.join(root, 'cache');
    const first = await imageFolder(folder, { imageSize: 10, color: 'grayscale', cacheDirectory });
    const entries = fs.readdirSync(cacheDirectory).filter((name) => name.endsWith('.u8'));
    assert.equal(entries.length, first.all.count);
    const second = await imageFolder(folder, { imageSize: 10, color: 'grayscale', cacheDirectory });
    assert.deepEqual(second.all.images, first.all.images);
    // Proof that the second read used the cache: a rewritten entry comes back as written.
    for (const name of entries) fs.writeFileSync(path.join(cacheDirectory, name), Buffer.alloc(100, 255));
    const third = await imageFolder(folder, { imageSize: 10, color: 'grayscale', cacheDirectory });
    assert.ok(third.all.images.every((v) => v === 1));
    // Other options are other entries.
    await imageFolder(folder, { imageSize: 11, color: 'grayscale', cacheDirectory });
    assert.equal(fs.readdirSync(cacheDirectory).length, 2 * first.all.count);
  });
});

describe('imageFolder sizes', () => {
  test('crop fills the square, pad letterboxes with black, stretch fills', async () => {
    const folder = path.join(root, 'wide');
    fs.mkdirSync(path.join(folder, 'white'), { recursive: true });
    await writeImage(path.join(folder, 'white', 'a.png'), Buffer.alloc(40 * 20, 255), 40, 20, 1);
    const crop = await imageFolder(folder, { imageSize: 10, color: 'grayscale', fit: 'crop' });
    assert.ok(crop.all.images.every((v) => v === 1));
    const stretch = await imageFolder(folder, { imageSize: 10, color: 'grayscale', fit: 'stretch' });
    assert.ok(stretch.all.images.every((v) => v === 1));
    const pad = await imageFolder(folder, { imageSize: 10, color: 'grayscale', fit: 'pad' });
    // 40×20 fits a 10×10 square as 10×5: rows 0–1 and 8–9 are black padding, rows 3–6 the image.
    const row = (y: number) => [...pad.all.images.subarray(y * 10, (y + 1) * 10)];
    assert.deepEqual(row(0), Array(10).fill(0));
    assert.deepEqual(row(9), Array(10).fill(0));
    assert.deepEqual(row(4), Array(10).fill(1));
    const rectangle = await imageFolder(folder, { imageSize: [6, 12], color: 'grayscale' });
    assert.equal(rectangle.all.height, 6);
    assert.equal(rectangle.all.width, 12);
  });
});

describe('imageFolder with bad files', () => {
  const folder = path.join(root, 'bad');

  before(async () => {
    for (const name of ['cats', 'dogs']) fs.mkdirSync(path.join(folder, name, 'more'), { recursive: true });
    const pixels = Buffer.alloc(16 * 16 * 3, 128);
    await writeImage(path.join(folder, 'cats', 'good.png'), pixels, 16, 16, 3);
    await writeImage(path.join(folder, 'cats', 'more', 'nested.webp'), pixels, 16, 16, 3);
    await writeImage(path.join(folder, 'dogs', 'good.jpg'), pixels, 16, 16, 3);
    await sharp(pixels, { raw: { width: 16, height: 16, channels: 3 } })
      .gif()
      .toFile(path.join(folder, 'dogs', 'good.gif'));
    const jpeg = fs.readFileSync(path.join(folder, 'dogs', 'good.jpg'));
    fs.writeFileSync(
      path.join(folder, 'dogs', 'truncated.jpg'),
      jpeg.subarray(0, Math.floor(jpeg.length / 2)),
    );
    fs.writeFileSync(path.join(folder, 'dogs', 'empty.png'), Buffer.alloc(0));
    fs.writeFileSync(path.join(folder, 'cats', 'corrupt.png'), Buffer.from(new Random(1).permutation(200)));
    fs.writeFileSync(path.join(folder, 'cats', 'list.txt'), 'ignored');
    // A loop: dogs/more/up → dogs, and a link from cats to the top folder.
    fs.symlinkSync(path.join(folder, 'dogs'), path.join(folder, 'dogs', 'more', 'up'));
    fs.symlinkSync(folder, path.join(folder, 'cats', 'top'));
  });

  test('a bad image fails by default, naming the file', async () => {
    await assert.rejects(imageFolder(folder, { imageSize: 8 }), (error: unknown) => {
      assert.ok(error instanceof ImageDecodeError);
      assert.ok(/corrupt\.png|empty\.png|truncated\.jpg/.test(error.message), error.message);
      assert.ok(error.message.includes(error.path));
      return true;
    });
  });

  test("'skip' leaves bad images out with one warning each; symlink loops end; non-images ignored", async () => {
    const warnings: string[] = [];
    const read = await imageFolder(folder, {
      imageSize: 8,
      onBadImage: 'skip',
      warn: (line) => warnings.push(line),
    });
    assert.deepEqual(
      read.skipped.map((file) => path.basename(file)),
      ['corrupt.png', 'empty.png', 'truncated.jpg'],
    );
    assert.equal(warnings.length, 3);
    for (const file of read.skipped) assert.equal(warnings.filter((line) => line.includes(file)).length, 1);
    // The links back to the top folder and to dogs/ are loops: not followed, and no image counted twice.
    const names = read.files.map((file) => path.relative(folder, file));
    assert.deepEqual(names, [
      path.join('cats', 'good.png'),
      path.join('cats', 'more', 'nested.webp'),
      path.join('dogs', 'good.gif'),
      path.join('dogs', 'good.jpg'),
    ]);
    assert.deepEqual([...read.all.labels], [0, 0, 1, 1]);
    // Every format decodes to the same mid-gray (JPEG and GIF within their quantisation).
    for (let i = 0; i < 4; i++)
      for (const value of read.all.images.subarray(i * 192, (i + 1) * 192))
        assert.ok(Math.abs(value - 128 / 255) < 0.02, `${names[i]}: ${value}`);
  });

  test('an empty class folder and a folder without classes are errors naming the folder', async () => {
    const empty = path.join(root, 'empty-class');
    fs.mkdirSync(path.join(empty, 'a'), { recursive: true });
    fs.mkdirSync(path.join(empty, 'b'), { recursive: true });
    await writeImage(path.join(empty, 'a', 'x.png'), Buffer.alloc(4, 9), 2, 2, 1);
    fs.writeFileSync(path.join(empty, 'b', 'readme.txt'), 'no images here');
    await assert.rejects(imageFolder(empty), (error: unknown) => {
      assert.ok(error instanceof ImageFolderError);
      assert.ok(error.message.startsWith(path.join(empty, 'b')), error.message);
      return true;
    });
    const flat = path.join(root, 'flat');
    fs.mkdirSync(flat);
    fs.copyFileSync(path.join(empty, 'a', 'x.png'), path.join(flat, 'x.png'));
    await assert.rejects(imageFolder(flat), new RegExp(`${flat}: no class folders`));
    await assert.rejects(imageFolder(path.join(root, 'missing')), /cannot read the folder/);
  });

  test('a PNG claiming 100,000 × 100,000 pixels is refused from its header, with bounded memory', async () => {
    const huge = path.join(root, 'huge');
    fs.mkdirSync(path.join(huge, 'big'), { recursive: true });
    fs.writeFileSync(path.join(huge, 'big', 'bomb.png'), claimedPng(100_000, 100_000));
    const before = process.memoryUsage().rss;
    await assert.rejects(imageFolder(huge, { imageSize: 8 }), (error: unknown) => {
      assert.ok(error instanceof ImageDecodeError);
      assert.match(error.message, /bomb\.png: cannot read this image: .*pixel limit.*100,000,000 pixels/);
      return true;
    });
    // Decoding it would take 10 GB; refusing it takes next to nothing.
    const grown = (process.memoryUsage().rss - before) / 2 ** 20;
    assert.ok(grown < 200, `rss grew by ${grown.toFixed(0)} MB`);
    const warnings: string[] = [];
    await assert.rejects(
      imageFolder(huge, { imageSize: 8, onBadImage: 'skip', warn: (line) => warnings.push(line) }),
      /none of the 1 images could be read/,
    );
    assert.equal(warnings.length, 1);
  });
});
