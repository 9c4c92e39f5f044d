import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { imageFolder, imageFolderDataset, ImageDecodeError } from '../src/index.js';

const sharp = (await import('sharp')).default;
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-image-pack-'));
const folder = path.join(root, 'images');
after(() => fs.rmSync(root, { recursive: true, force: true }));

before(async () => {
  for (const [c, name] of ['a', 'b', 'c'].entries()) {
    fs.mkdirSync(path.join(folder, name), { recursive: true });
    for (let i = 0; i < 5; i++) {
      const pixels = Buffer.alloc(6 * 6, 0);
      for (let p = 0; p < pixels.length; p++) pixels[p] = (p * (c + 2) + i * 17) & 0xff;
      // One JPEG per class: the pack holds whatever sharp decodes, not only plain PNGs.
      const image = sharp(pixels, { raw: { width: 6, height: 6, channels: 1 } }).toColourspace('b-w');
      if (i === 4) await image.jpeg().toFile(path.join(folder, name, `${i}.jpg`));
      else await image.png().toFile(path.join(folder, name, `${i}.png`));
    }
  }
});

function samples(dataset: Awaited<ReturnType<typeof imageFolderDataset>>): [number[], number][] {
  return Array.from({ length: dataset.length }, (_, i) => {
    const { input, target } = dataset.get(i);
    return [Array.from(input as Float32Array), target as number];
  });
}

describe('the decoded-image cache file of imageFolderDataset', () => {
  test('holds the images of the in-memory read, in order, and a second open reads it without decoding', async () => {
    const cacheDirectory = path.join(root, 'cache-reuse');
    const options = { imageSize: 6, color: 'grayscale' as const, cacheDirectory };
    const first = await imageFolderDataset(folder, options);
    const eager = await imageFolder(folder, { imageSize: 6, color: 'grayscale' });
    assert.deepEqual(
      samples(first),
      Array.from({ length: eager.all.count }, (_, i) => [
        Array.from(eager.all.images.subarray(i * 36, (i + 1) * 36)),
        eager.all.labels[i],
      ]),
    );
    assert.deepEqual([...first.files], eager.files);
    assert.deepEqual(fs.readdirSync(cacheDirectory), [path.basename(first.cacheFile)]);
    first.close();
    // Proof that a second open reads the file: pixels overwritten there come back as written.
    const bytes = fs.readFileSync(first.cacheFile);
    bytes.fill(255, bytes.length - 15 * 36);
    fs.writeFileSync(first.cacheFile, bytes);
    const second = await imageFolderDataset(folder, options);
    assert.equal(second.cacheFile, first.cacheFile);
    assert.ok(samples(second).every(([input]) => input.every((v) => v === 1)));
    // Reads go on after close (the file is opened again).
    second.close();
    assert.equal(second.get(3).input.length, 36);
    second.close();
  });

  test('a changed file, other options or a damaged cache file make a new one', async () => {
    const cacheDirectory = path.join(root, 'cache-change');
    const options = { imageSize: 6, color: 'grayscale' as const, cacheDirectory };
    const first = await imageFolderDataset(folder, options);
    const other = await imageFolderDataset(folder, { ...options, imageSize: 5 });
    assert.notEqual(other.cacheFile, first.cacheFile);
    assert.deepEqual(other.shape, [1, 5, 5]);
    const touched = path.join(folder, 'b', '1.png');
    const time = new Date(Date.now() + 5000);
    fs.utimesSync(touched, time, time);
    const changed = await imageFolderDataset(folder, options);
    assert.notEqual(changed.cacheFile, first.cacheFile);
    assert.deepEqual(samples(changed), samples(first));
    // Cut short: rebuilt (same name), not trusted.
    fs.truncateSync(changed.cacheFile, 100);
    const rebuilt = await imageFolderDataset(folder, options);
    assert.equal(rebuilt.cacheFile, changed.cacheFile);
    assert.deepEqual(samples(rebuilt), samples(first));
    for (const dataset of [first, other, changed, rebuilt]) dataset.close();
  });

  test('bad images are skipped, or fail by path, on the first open and on later ones alike', async () => {
    const withBad = path.join(root, 'with-bad');
    fs.cpSync(folder, withBad, { recursive: true });
    const corrupt = path.join(withBad, 'a', 'corrupt.png');
    const empty = path.join(withBad, 'c', 'empty.png');
    fs.writeFileSync(corrupt, Buffer.from('not an image at all'));
    fs.writeFileSync(empty, Buffer.alloc(0));
    const cacheDirectory = path.join(root, 'cache-bad');
    for (let open = 0; open < 2; open++) {
      const warnings: string[] = [];
      const dataset = await imageFolderDataset(withBad, {
        imageSize: 6,
        color: 'grayscale',
        cacheDirectory,
        onBadImage: 'skip',
        warn: (message) => warnings.push(message),
      });
      assert.equal(dataset.length, 15, `open ${open}`);
      assert.deepEqual(dataset.skipped, [corrupt, empty]);
      assert.equal(warnings.length, 2);
      assert.ok(![...dataset.files].includes(corrupt));
      assert.deepEqual([...dataset.labels], [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2]);
      dataset.close();
      await assert.rejects(
        imageFolderDataset(withBad, { imageSize: 6, color: 'grayscale', cacheDirectory }),
        (error: unknown) =>
          error instanceof ImageDecodeError && (error.path === corrupt || error.path === empty),
      );
    }
    assert.equal(fs.readdirSync(cacheDirectory).filter((name) => name.endsWith('.tmp')).length, 0);
  });
});
