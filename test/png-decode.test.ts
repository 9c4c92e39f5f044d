import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { decodeImage, ImageDecodeError, Random } from '../src/index.js';
import { decodeImagePixels } from '../src/data/image-decode.js';
import { decodePlainPng } from '../src/data/png-decode.js';

const sharp = (await import('sharp')).default;
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-png-decode-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

/**
 * The same bytes decoded by sharp alone: decodeImagePixels tries the plain-PNG path only for files
 * named .png, so a copy named .bin goes to sharp (which detects the format from the content).
 */
async function bySharp(bytes: Uint8Array, options: Parameters<typeof decodeImagePixels>[1]) {
  const file = path.join(root, `sharp-${Math.random().toString(36).slice(2)}.bin`);
  fs.writeFileSync(file, bytes);
  try {
    return await decodeImagePixels(file, options);
  } finally {
    fs.rmSync(file);
  }
}

/** The same bytes through decodeImagePixels as a .png file (the plain path when it applies). */
async function byPlainPath(bytes: Uint8Array, options: Parameters<typeof decodeImagePixels>[1]) {
  const file = path.join(root, `plain-${Math.random().toString(36).slice(2)}.png`);
  fs.writeFileSync(file, bytes);
  try {
    return await decodeImagePixels(file, options);
  } finally {
    fs.rmSync(file);
  }
}

/** Outcome of a decode: its pixels and shape, or the error's message with the file name taken out. */
async function outcome(
  decode: () => Promise<{ pixels: Uint8Array; channels: number; height: number; width: number }>,
) {
  try {
    const { pixels, channels, height, width } = await decode();
    return { pixels: Buffer.from(pixels).toString('base64'), channels, height, width };
  } catch (error) {
    assert.ok(error instanceof ImageDecodeError);
    return { error: error.message.replace(/^\S+: /, '') };
  }
}

/** PNG bytes with random content (smooth and noisy parts, so every filter type gets chosen). */
async function randomPng(
  random: Random,
  width: number,
  height: number,
  channels: 1 | 2 | 3 | 4,
  compression = 6,
) {
  const pixels = Buffer.alloc(width * height * channels);
  for (let p = 0; p < pixels.length; p++)
    pixels[p] = p % 5 === 0 ? random.int(256) : (((p / channels) | 0) * 3 + random.int(4)) & 0xff;
  const image = sharp(pixels, { raw: { width, height, channels } });
  // sharp writes one- and two-channel input as RGB(A) unless told the colour space is gray.
  return (channels <= 2 ? image.toColourspace('b-w') : image)
    .png({ compressionLevel: compression, adaptiveFiltering: true })
    .toBuffer();
}

/** A chunk: length, type, data, CRC. */
function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** A PNG made chunk by chunk, for the cases sharp does not write (filters chosen here, split IDAT). */
function handMadePng(
  width: number,
  height: number,
  rows: Uint8Array,
  extra: Buffer[] = [],
  idatParts = 1,
): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 0; // gray
  const compressed = deflateSync(rows);
  const step = Math.ceil(compressed.length / idatParts);
  const idat = Array.from({ length: idatParts }, (_, i) =>
    chunk('IDAT', compressed.subarray(i * step, (i + 1) * step)),
  );
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    ...extra,
    ...idat,
    chunk('IEND', new Uint8Array(0)),
  ]);
}

describe('plain PNG decoding (the fast path for small images)', () => {
  test('gives sharp’s pixels bit for bit: gray, gray+alpha, RGB, RGBA, in both colour modes', async () => {
    const random = new Random(3);
    for (const channels of [1, 2, 3, 4] as const) {
      for (const [width, height] of [
        [28, 28],
        [32, 17],
        [1, 1],
        [5, 64],
      ] as const) {
        const bytes = await randomPng(random, width, height, channels, channels === 3 ? 9 : 6);
        assert.equal(decodePlainPng(bytes, { maxPixels: 1e8 })?.channels, channels);
        for (const color of ['grayscale', 'rgb'] as const) {
          const options = { size: [height, width] as [number, number], color };
          assert.deepEqual(
            await outcome(() => byPlainPath(bytes, options)),
            await outcome(() => bySharp(bytes, options)),
            `${channels} channels ${width}×${height} as ${color}`,
          );
        }
      }
    }
  });

  test('colour PNGs whose pixels are all gray read as gray exactly as sharp converts them (all 256 levels)', async () => {
    for (const channels of [3, 4] as const) {
      const pixels = Buffer.alloc(256 * channels);
      for (let level = 0; level < 256; level++) {
        pixels.fill(level, level * channels, level * channels + 3);
        if (channels === 4) pixels[level * channels + 3] = (level * 37) & 0xff;
      }
      const neutral = await sharp(pixels, { raw: { width: 16, height: 16, channels } })
        .png()
        .toBuffer();
      const options = { size: 16, color: 'grayscale' as const };
      const plain = await byPlainPath(neutral, options);
      assert.deepEqual(
        Array.from(plain.pixels),
        Array.from({ length: 256 }, (_, level) => level),
      );
      assert.deepEqual(await outcome(async () => plain), await outcome(() => bySharp(neutral, options)));
    }
  });

  test('every row filter and split IDAT chunks decode as sharp decodes them', async () => {
    const random = new Random(4);
    const [width, height] = [9, 10];
    const rows = new Uint8Array(height * (width + 1));
    for (let y = 0; y < height; y++) {
      rows[y * (width + 1)] = y % 5; // None, Sub, Up, Average, Paeth, twice
      for (let x = 1; x <= width; x++) rows[y * (width + 1) + x] = random.int(256);
    }
    const text = chunk('tEXt', Buffer.from('Comment\0made by hand', 'latin1'));
    for (const parts of [1, 3]) {
      const bytes = handMadePng(width, height, rows, [text], parts);
      assert.ok(decodePlainPng(bytes, { maxPixels: 1e8 }) !== undefined);
      const options = { size: [height, width] as [number, number], color: 'grayscale' as const };
      assert.deepEqual(
        await outcome(() => byPlainPath(bytes, options)),
        await outcome(() => bySharp(bytes, options)),
      );
    }
  });

  test('anything but a plain PNG of the wanted size is left to sharp', async () => {
    const random = new Random(5);
    const plain = await randomPng(random, 8, 8, 1);
    const limits = { size: [8, 8] as [number, number], maxPixels: 1e8 };
    assert.ok(decodePlainPng(plain, limits) !== undefined);
    // Another size (resizing is sharp's), the pixel limit, 16-bit, palette, interlaced, a profile.
    assert.equal(decodePlainPng(plain, { ...limits, size: [8, 9] }), undefined);
    assert.equal(decodePlainPng(plain, { ...limits, maxPixels: 63 }), undefined);
    const sixteen = await sharp(Buffer.alloc(8 * 8 * 2), { raw: { width: 8, height: 8, channels: 1 } })
      .toColourspace('grey16')
      .png()
      .toBuffer();
    assert.equal(decodePlainPng(sixteen, limits), undefined);
    const palette = await sharp(Buffer.alloc(8 * 8 * 3, 7), { raw: { width: 8, height: 8, channels: 3 } })
      .png({ palette: true })
      .toBuffer();
    assert.equal(decodePlainPng(palette, limits), undefined);
    const interlaced = await sharp(plain).png({ progressive: true }).toBuffer();
    assert.equal(decodePlainPng(interlaced, limits), undefined);
    const rows = new Uint8Array(8 * 9);
    const gamma = chunk('gAMA', Buffer.from([0, 0, 0xb1, 0x8f]));
    assert.equal(decodePlainPng(handMadePng(8, 8, rows, [gamma]), limits), undefined);
    assert.ok(decodePlainPng(handMadePng(8, 8, rows), limits) !== undefined);
    // A bad filter type, trailing bytes after IEND or after the zlib stream, a chunk between IDATs.
    const badFilter = rows.slice();
    badFilter[9] = 5;
    assert.equal(decodePlainPng(handMadePng(8, 8, badFilter), limits), undefined);
    assert.equal(
      decodePlainPng(Buffer.concat([handMadePng(8, 8, rows), Buffer.from([0])]), limits),
      undefined,
    );
    const split = handMadePng(8, 8, rows, [], 2);
    const firstIdat = 8 + 25;
    const firstLength = split.readUInt32BE(firstIdat);
    const between = Buffer.concat([
      split.subarray(0, firstIdat + 12 + firstLength),
      chunk('tEXt', Buffer.from('a\0b', 'latin1')),
      split.subarray(firstIdat + 12 + firstLength),
    ]);
    assert.equal(decodePlainPng(between, limits), undefined);
  });

  test('a bomb is refused before inflating past the size the header claims', () => {
    // 64×64 gray claims 4,160 filtered bytes; the stream inflates to 10 MB of zeros.
    const bytes = handMadePng(64, 64, new Uint8Array(10_000_000));
    const before = process.memoryUsage().arrayBuffers;
    assert.equal(decodePlainPng(bytes, { size: [64, 64], maxPixels: 1e8 }), undefined);
    assert.ok(process.memoryUsage().arrayBuffers - before < 1_000_000);
    // Too few bytes is no more accepted than too many.
    assert.equal(decodePlainPng(handMadePng(64, 64, new Uint8Array(100)), { maxPixels: 1e8 }), undefined);
  });

  test('corrupt, truncated and zero-byte files fail by path as with sharp alone; flipped bytes agree with sharp', async () => {
    const random = new Random(6);
    const bytes = await randomPng(random, 28, 28, 1);
    const options = { size: 28, color: 'grayscale' as const };
    for (const [name, broken] of [
      ['empty', new Uint8Array(0)],
      ['truncated', bytes.subarray(0, bytes.length - 30)],
    ] as const) {
      const file = path.join(root, `${name}.png`);
      fs.writeFileSync(file, broken);
      await assert.rejects(decodeImage(file, options), (error: unknown) => {
        assert.ok(error instanceof ImageDecodeError);
        assert.equal(error.path, file);
        assert.ok(error.message.startsWith(`${file}: cannot read this image`), error.message);
        return true;
      });
    }
    await assert.rejects(decodeImage(path.join(root, 'missing.png'), options), ImageDecodeError);
    // sharp reads a PNG that lacks its IEND chunk; the plain path leaves it to sharp, same pixels.
    const noEnd = bytes.subarray(0, bytes.length - 12);
    assert.equal(decodePlainPng(noEnd, { maxPixels: 1e8 }), undefined);
    assert.deepEqual(
      await outcome(() => byPlainPath(noEnd, options)),
      await outcome(() => bySharp(noEnd, options)),
    );
    // Every single-byte corruption either decodes to sharp's pixels or fails where sharp fails.
    for (let trial = 0; trial < 60; trial++) {
      const corrupt = Buffer.from(bytes);
      const at = trial < 40 ? random.int(corrupt.length) : 8 + random.int(33);
      corrupt[at] = (corrupt[at]! + 1 + random.int(255)) & 0xff;
      const plainOutcome = await outcome(() => byPlainPath(corrupt, options));
      const sharpOutcome = await outcome(() => bySharp(corrupt, options));
      if ('error' in sharpOutcome)
        assert.ok('error' in plainOutcome, `byte ${at}: sharp fails, the plain path must too`);
      else assert.deepEqual(plainOutcome, sharpOutcome, `byte ${at}`);
    }
  });
});
