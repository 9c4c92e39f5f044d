import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FileListing, imageFolderDataset } from '../src/index.js';

test('a FileListing gives back every path exactly: unicode, no folder, both separators, lone surrogates', () => {
  const paths = [
    '/data/cats/1.png',
    '/data/cats/2.png',
    'relative/ünïcödé/貓.jpg',
    'emoji/🐈‍⬛ night.webp',
    'no-folder.png',
    '',
    '/',
    'C:\\photos\\dog\\é.gif',
    'mixed/sep\\name.png',
    '/data/cats/3.png', // a folder seen before, after others
    'odd/\uD800lone-high.png',
    'odd/lone-low\uDC00.png',
    'odd/pair-\uD83D\uDE00.png',
    'trailing/',
  ];
  const listing = FileListing.from(paths);
  assert.equal(listing.length, paths.length);
  paths.forEach((file, i) => assert.equal(listing.at(i), file, `path ${i}`));
  assert.deepEqual([...listing], paths);
  listing.trim();
  assert.deepEqual([...listing], paths);
  assert.deepEqual([...listing.select([12, 0, 7, 0])], [paths[12], paths[0], paths[7], paths[0]]);
  assert.throws(() => listing.at(paths.length), /outside \[0, 14\)/);
  assert.throws(() => listing.at(-1), RangeError);
  assert.throws(() => listing.at(1.5), RangeError);
});

test('a FileListing of 100,000 paths in 10 folders takes about the names’ bytes plus 8 a file', () => {
  const listing = new FileListing();
  const expected: string[] = [];
  for (let i = 0; i < 100_000; i++) {
    const file = `/tmp/some/dataset/class${i % 10}/${i}.png`;
    listing.add(file);
    if (i % 997 === 0) expected.push(file);
  }
  listing.trim();
  for (let k = 0; k < expected.length; k++) assert.equal(listing.at(k * 997), expected[k]);
  // Names like '12345.png' average under 10 bytes: ≤ 18 bytes a file, where strings take ~100.
  assert.ok(listing.byteLength < 100_000 * 18, `${listing.byteLength} bytes`);
});

test('imageFolderDataset lists files with unicode names and reads them', async () => {
  const sharp = (await import('sharp')).default;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-file-listing-'));
  try {
    const names = ['chat noir', 'gatto', '猫'];
    const written: [string, number][] = [];
    for (const [label, name] of names.entries()) {
      fs.mkdirSync(path.join(root, 'images', name, 'ñested'), { recursive: true });
      // In sorted order within the class: 'été' before the folder 'ñested'.
      for (const [k, file] of [`été ${label}.png`, `ñested/😺${label}.png`].entries()) {
        const full = path.join(root, 'images', name, file);
        const level = 40 * label + 10 * k;
        await sharp(Buffer.alloc(16, level), { raw: { width: 4, height: 4, channels: 1 } })
          .toColourspace('b-w')
          .png()
          .toFile(full);
        written.push([full, level]);
      }
    }
    const dataset = await imageFolderDataset(path.join(root, 'images'), {
      imageSize: 4,
      color: 'grayscale',
      cacheDirectory: path.join(root, 'cache'),
    });
    assert.deepEqual(
      [...dataset.files],
      written.map(([file]) => file),
    );
    assert.deepEqual([...dataset.labels], [0, 0, 1, 1, 2, 2]);
    written.forEach(([, level], i) => {
      const input = dataset.get(i).input as Float32Array;
      assert.deepEqual(
        Array.from(input, (v) => Math.round(v * 255)),
        new Array(16).fill(level),
      );
    });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
