import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { gzipSync } from 'node:zlib';
import { Random } from '../src/tensor/random.js';
import {
  datasetStatistics,
  filterClasses,
  normalize,
  splitDataset,
  apportion,
  subset,
  takePerClass,
  validateDataset,
  type ImageDataset,
} from '../src/data/dataset.js';
import {
  IdxError,
  parseIdx,
  readIdx,
  readIdxImages,
  serializeIdx,
  writeIdx,
  type IdxArray,
} from '../src/data/idx.js';
import { loadMnist } from '../src/data/mnist.js';
import { FASHION_MNIST_CLASS_NAMES, loadFashionMnist } from '../src/data/fashion-mnist.js';
import { DataLoader } from '../src/data/loader.js';
import { horizontalFlip, normalizeTransform, randomShift } from '../src/data/transforms.js';

/** Absolute tolerance for float32 results computed from float64 references. */
const FLOAT32_TOLERANCE = 1e-6;

function assertClose(actual: number, expected: number, tolerance: number, message?: string): void {
  assert.ok(
    Math.abs(actual - expected) <= tolerance,
    `${message ?? ''} expected ${expected} ± ${tolerance}, got ${actual}`,
  );
}

const temporaryDirectories: string[] = [];

/** A fresh directory, removed after the file's tests even when a test fails midway. */
function temporaryDirectory(): string {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-data-'));
  temporaryDirectories.push(directory);
  return directory;
}

after(() => {
  for (const directory of temporaryDirectories) fs.rmSync(directory, { recursive: true, force: true });
});

/**
 * A dataset whose every pixel identifies its sample and channel: pixel = sample + channel / 10 +
 * position / 1000 (not in [0, 1], which nothing here relies on). Labels are sample % classes.
 */
function syntheticDataset(count: number, classes = 3, channels = 2, height = 3, width = 4): ImageDataset {
  const images = new Float32Array(count * channels * height * width);
  const plane = height * width;
  for (let sample = 0; sample < count; sample++) {
    for (let channel = 0; channel < channels; channel++) {
      for (let position = 0; position < plane; position++) {
        images[(sample * channels + channel) * plane + position] = sample + channel / 10 + position / 1000;
      }
    }
  }
  const labels = Int32Array.from({ length: count }, (_, i) => i % classes);
  const classNames = Array.from({ length: classes }, (_, i) => `class${i}`);
  return { images, labels, count, channels, height, width, classes, classNames };
}

/** The sample number encoded in a synthetic image (its first pixel). */
function sampleOf(images: Float32Array, index: number, size: number): number {
  return Math.round(images[index * size]!);
}

describe('Random', () => {
  test('matches the xoshiro128** reference implementation (C, with splitmix64 seeding)', () => {
    const expected: Array<[number, number[]]> = [
      [0, [3737715805, 2584255861, 2876756834, 3286328325, 1553311962, 1625202774]],
      [42, [1776835114, 4165204688, 17111135, 2317295270, 2792088233, 2554630222]],
      [-1, [477689756, 2493998634, 555695776, 607808419, 61340979, 301466976]],
    ];
    for (const [seed, outputs] of expected) {
      const random = new Random(seed);
      assert.deepEqual(
        outputs.map(() => random.nextUint32()),
        outputs,
        `seed ${seed}`,
      );
    }
    // The published test vector for the raw state {1, 2, 3, 4}.
    const raw = Random.fromState({ algorithm: 'xoshiro128**', words: [1, 2, 3, 4], spareNormal: null });
    assert.deepEqual(
      Array.from({ length: 6 }, () => raw.nextUint32()),
      [11520, 0, 5927040, 70819200, 2031721883, 1637235492],
    );
  });

  test('next() is uniform in [0, 1) and uses 53 bits', () => {
    const random = new Random(7);
    let sum = 0;
    let belowQuarter = 0;
    let usesLowBits = false;
    const draws = 100_000;
    for (let i = 0; i < draws; i++) {
      const value = random.next();
      assert.ok(value >= 0 && value < 1);
      sum += value;
      if (value < 0.25) belowQuarter++;
      if (!Number.isInteger(value * 2 ** 32)) usesLowBits = true;
    }
    // Standard errors: mean 0.0009, quarter fraction 0.0014; these bounds are about 5 of them.
    assertClose(sum / draws, 0.5, 0.005, 'mean');
    assertClose(belowQuarter / draws, 0.25, 0.007, 'P(x < 0.25)');
    assert.ok(usesLowBits, 'values should have more than 32 bits of resolution');
  });

  test('int(n) covers [0, n) evenly and rejects bad n', () => {
    const random = new Random(3);
    const counts = new Array<number>(7).fill(0);
    const draws = 70_000;
    for (let i = 0; i < draws; i++) counts[random.int(7)]! += 1;
    // Chi-square with 6 degrees of freedom: 22.5 is its 0.999 quantile.
    const expected = draws / 7;
    const chiSquare = counts.reduce((sum, count) => sum + (count - expected) ** 2 / expected, 0);
    assert.ok(chiSquare < 22.5, `chi-square ${chiSquare} for counts ${counts}`);
    assert.equal(random.int(1), 0);
    const big = 2 ** 40 + 3;
    for (let i = 0; i < 100; i++) {
      const value = random.int(big);
      assert.ok(Number.isInteger(value) && value >= 0 && value < big);
    }
    for (const bad of [0, -1, 1.5, NaN, 2 ** 60]) assert.throws(() => random.int(bad), RangeError);
  });

  test('normal() has mean 0 and standard deviation 1; shifted and scaled on request', () => {
    const random = new Random(11);
    const draws = 40_000;
    let sum = 0;
    let squares = 0;
    for (let i = 0; i < draws; i++) {
      const value = random.normal();
      sum += value;
      squares += value * value;
    }
    const mean = sum / draws;
    assertClose(mean, 0, 0.025, 'mean');
    assertClose(Math.sqrt(squares / draws - mean * mean), 1, 0.02, 'standard deviation');
    const scaled = new Random(5);
    const reference = new Random(5);
    assertClose(scaled.normal(3, 2), 3 + 2 * reference.normal(), 1e-12);
  });

  test('shuffle and permutation give permutations, reproducible per seed', () => {
    const permutation = new Random(1).permutation(1000);
    assert.deepEqual(
      Array.from(permutation).sort((a, b) => a - b),
      Array.from({ length: 1000 }, (_, i) => i),
    );
    assert.deepEqual(new Random(1).permutation(1000), permutation);
    assert.notDeepEqual(new Random(2).permutation(1000), permutation);
    const letters = ['a', 'b', 'c', 'd', 'e'];
    const shuffled = new Random(9).shuffle([...letters]);
    assert.deepEqual([...shuffled].sort(), letters);
    assert.deepEqual(new Random(0).permutation(0), new Int32Array(0));
    // Fisher–Yates is unbiased: each of the 6 orders of 3 items comes up about equally often.
    const random = new Random(4);
    const orders = new Map<string, number>();
    for (let i = 0; i < 6000; i++) {
      const key = random.permutation(3).join('');
      orders.set(key, (orders.get(key) ?? 0) + 1);
    }
    assert.equal(orders.size, 6);
    for (const [order, count] of orders) assert.ok(count > 880 && count < 1120, `${order}: ${count}`);
  });

  test('getState/setState resume exactly, including a waiting normal value, through JSON', () => {
    const random = new Random(123);
    random.next();
    random.normal(); // leaves the pair's second value waiting
    const saved = JSON.parse(JSON.stringify(random.getState())) as ReturnType<Random['getState']>;
    assert.notEqual(saved.spareNormal, null);
    const expected = [random.normal(), random.next(), random.int(1000), random.normal()];
    const resumed = Random.fromState(saved);
    assert.deepEqual([resumed.normal(), resumed.next(), resumed.int(1000), resumed.normal()], expected);
    const other = new Random(0);
    other.setState(saved);
    assert.equal(other.normal(), expected[0]);
  });

  test('fork gives a reproducible, different stream; bad seeds and states are rejected', () => {
    const a = new Random(5).fork();
    const b = new Random(5).fork();
    assert.equal(a.next(), b.next());
    assert.notEqual(new Random(5).fork().next(), new Random(5).next());
    assert.equal(new Random(2n ** 64n + 5n).next(), new Random(5).next());
    for (const bad of [1.5, NaN, Infinity, 2 ** 53]) assert.throws(() => new Random(bad), RangeError);
    assert.throws(
      () => Random.fromState({ algorithm: 'xoshiro128**', words: [0, 0, 0, 0], spareNormal: null }),
      RangeError,
    );
    assert.throws(
      () => Random.fromState({ algorithm: 'xoshiro128**', words: [1, 2, 3], spareNormal: null } as never),
      TypeError,
    );
    assert.throws(
      () => Random.fromState({ algorithm: 'mt19937', words: [1, 2, 3, 4], spareNormal: null } as never),
      TypeError,
    );
  });
});

describe('dataset helpers', () => {
  const size = 2 * 3 * 4;

  test('subset copies the chosen samples in order and checks indices', () => {
    const dataset = syntheticDataset(10);
    const picked = subset(dataset, [7, 2, 2]);
    assert.equal(picked.count, 3);
    assert.deepEqual(
      [0, 1, 2].map((i) => sampleOf(picked.images, i, size)),
      [7, 2, 2],
    );
    assert.deepEqual(Array.from(picked.labels), [1, 2, 2]);
    assert.deepEqual(picked.images.subarray(0, size), dataset.images.subarray(7 * size, 8 * size));
    picked.images[0] = -1;
    assert.notEqual(dataset.images[7 * size], -1, 'subset must copy');
    assert.throws(() => subset(dataset, [10]), /index 0 is 10, outside \[0, 10\)/);
    validateDataset(picked);
  });

  test('splitDataset: disjoint, complete, seeded, by fraction or count', () => {
    const dataset = syntheticDataset(100);
    const { train, test } = splitDataset(dataset, 0.2, new Random(1));
    assert.equal(test.count, 20);
    assert.equal(train.count, 80);
    const trainSamples = Array.from({ length: train.count }, (_, i) => sampleOf(train.images, i, size));
    const testSamples = Array.from({ length: test.count }, (_, i) => sampleOf(test.images, i, size));
    assert.deepEqual(
      [...trainSamples, ...testSamples].sort((a, b) => a - b),
      Array.from({ length: 100 }, (_, i) => i),
    );
    trainSamples.forEach((sample, i) => assert.equal(train.labels[i], sample % 3));
    assert.deepEqual(splitDataset(dataset, 0.2, new Random(1)).test.images, test.images);
    assert.notDeepEqual(splitDataset(dataset, 0.2, new Random(2)).test.images, test.images);
    assert.equal(splitDataset(dataset, 33, new Random(1)).test.count, 33);
    assert.equal(splitDataset(dataset, 0, new Random(1)).train.count, 100);
    for (const bad of [-0.5, 1.5, 101, NaN])
      assert.throws(() => splitDataset(dataset, bad, new Random(1)), RangeError);
  });

  test('splitDataset with stratify keeps class proportions and the exact requested size', () => {
    // Classes of 60, 30 and 10 samples; a quarter of each is 15, 7.5 and 2.5. Rounding each would
    // give 26 for 25 requested; the two half-samples left over go one to the lower class index.
    const dataset = syntheticDataset(100);
    dataset.labels = Int32Array.from({ length: 100 }, (_, i) => (i < 60 ? 0 : i < 90 ? 1 : 2));
    const { train, test } = splitDataset(dataset, 0.25, new Random(5), { stratify: true });
    const countClass = (labels: Int32Array, label: number): number =>
      labels.filter((l) => l === label).length;
    assert.deepEqual(
      [0, 1, 2].map((label) => countClass(test.labels, label)),
      [15, 8, 2],
    );
    assert.deepEqual(
      [0, 1, 2].map((label) => countClass(train.labels, label)),
      [45, 22, 8],
    );
  });

  test('splitDataset with stratify: every requested count and fraction is met exactly', () => {
    // Ten uneven classes (sizes 37..127), where per-class rounding misses the total for many counts.
    const sizes = [37, 41, 53, 59, 67, 71, 83, 97, 113, 127];
    const total = sizes.reduce((a, b) => a + b, 0);
    const dataset = syntheticDataset(total, 10);
    let next = 0;
    dataset.labels = Int32Array.from({ length: total }, () => 0);
    sizes.forEach((classSize, label) => dataset.labels.fill(label, next, (next += classSize)));
    for (let count = 0; count <= total; count += 7) {
      const { train, test } = splitDataset(dataset, count, new Random(count), { stratify: true });
      assert.equal(test.count, count, `asked for ${count}`);
      assert.equal(train.count, total - count);
      for (let label = 0; label < 10; label++) {
        const share = (sizes[label]! * count) / total;
        const got = test.labels.filter((l) => l === label).length;
        assert.ok(Math.abs(got - share) < 1, `class ${label}: ${got} for a share of ${share}`);
      }
    }
    for (const fraction of [0.1, 0.25, 1 / 3, 0.6])
      assert.equal(
        splitDataset(dataset, fraction, new Random(1), { stratify: true }).test.count,
        Math.round(total * fraction),
      );
    assert.deepEqual(apportion([600, 300, 100], 1000), [600, 300, 100]);
    assert.deepEqual(apportion([1, 1, 1], 2), [1, 1, 0]);
    assert.deepEqual(apportion([0, 0], 0), [0, 0]);
  });

  test('filterClasses keeps or renumbers labels', () => {
    const dataset = syntheticDataset(30, 5);
    const kept = filterClasses(dataset, [3, 1]);
    assert.equal(kept.count, 12);
    assert.ok(kept.labels.every((label) => label === 1 || label === 3));
    assert.equal(kept.classes, 5);
    const relabelled = filterClasses(dataset, [3, 1], { relabel: true });
    assert.equal(relabelled.classes, 2);
    assert.deepEqual(relabelled.classNames, ['class3', 'class1']);
    for (let i = 0; i < relabelled.count; i++) {
      const original = sampleOf(relabelled.images, i, size) % 5;
      assert.equal(relabelled.labels[i], original === 3 ? 0 : 1);
    }
    validateDataset(relabelled);
    assert.throws(() => filterClasses(dataset, [5]), /class 5 is outside \[0, 5\)/);
    assert.throws(() => filterClasses(dataset, [1, 1]), /listed twice/);
  });

  test('takePerClass takes n random samples of each class, reproducibly', () => {
    const dataset = syntheticDataset(30, 3);
    const few = takePerClass(dataset, 4, new Random(8));
    assert.equal(few.count, 12);
    assert.deepEqual(Array.from(few.labels), [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
    const samples = Array.from({ length: 12 }, (_, i) => sampleOf(few.images, i, size));
    assert.equal(new Set(samples).size, 12);
    samples.forEach((sample, i) => assert.equal(sample % 3, few.labels[i]));
    assert.deepEqual(takePerClass(dataset, 4, new Random(8)).images, few.images);
    assert.throws(
      () => takePerClass(dataset, 11, new Random(8)),
      /class 0 \('class0'\) has 10 samples, fewer than the 11 requested/,
    );
  });

  test('datasetStatistics matches a naive computation; normalize standardises each channel', () => {
    const dataset = syntheticDataset(20, 2, 3, 2, 2);
    const statistics = datasetStatistics(dataset);
    for (let channel = 0; channel < 3; channel++) {
      const values: number[] = [];
      for (let sample = 0; sample < 20; sample++) {
        for (let p = 0; p < 4; p++) values.push(dataset.images[(sample * 3 + channel) * 4 + p]!);
      }
      const mean = values.reduce((a, b) => a + b, 0) / values.length;
      const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
      assertClose(statistics.mean[channel]!, mean, 1e-9, `mean ${channel}`);
      assertClose(statistics.standardDeviation[channel]!, Math.sqrt(variance), 1e-9, `std ${channel}`);
    }
    const standardised = normalize(dataset, statistics.mean, statistics.standardDeviation);
    const after = datasetStatistics(standardised);
    after.mean.forEach((mean) => assertClose(mean, 0, 1e-5));
    after.standardDeviation.forEach((deviation) => assertClose(deviation, 1, 1e-5));
    assert.notEqual(standardised.images, dataset.images);
    const scalar = normalize(dataset, 1, 2);
    assertClose(scalar.images[5]!, (dataset.images[5]! - 1) / 2, FLOAT32_TOLERANCE);
    assert.throws(
      () => normalize(dataset, [0, 0], [1, 1, 1]),
      /mean has 2 values, expected one per channel \(3\)/,
    );
    assert.throws(() => normalize(dataset, 0, 0), /must be positive/);
  });

  test('validateDataset reports inconsistent datasets', () => {
    const dataset = syntheticDataset(4);
    assert.throws(() => validateDataset({ ...dataset, count: 5 }), /images has 96 values, expected/);
    assert.throws(
      () => validateDataset({ ...dataset, labels: Int32Array.from([0, 1, 2, 3]) }),
      /label 3 is 3, outside \[0, 3\)/,
    );
    assert.throws(
      () => validateDataset({ ...dataset, classNames: ['a'] }),
      /classNames has 1 names, expected classes = 3/,
    );
  });
});

describe('IDX files', () => {
  const arrays: IdxArray[] = [
    { dtype: 'uint8', shape: [2, 3], data: Uint8Array.from([0, 1, 2, 127, 128, 255]) },
    { dtype: 'int8', shape: [3], data: Int8Array.from([-128, 0, 127]) },
    { dtype: 'int16', shape: [2], data: Int16Array.from([-32768, 258]) },
    { dtype: 'int32', shape: [1, 2], data: Int32Array.from([-2147483648, 16909060]) },
    { dtype: 'float32', shape: [2], data: Float32Array.from([1.5, -0.25]) },
    { dtype: 'float64', shape: [2], data: Float64Array.from([Math.PI, -1e300]) },
  ];

  test('every dtype round-trips, plain and gzip-compressed', () => {
    const directory = temporaryDirectory();
    for (const array of arrays) {
      for (const gzip of [false, true]) {
        const filePath = path.join(directory, `${array.dtype}${gzip ? '.gz' : ''}`);
        writeIdx(filePath, array, { gzip });
        const bytes = fs.readFileSync(filePath);
        assert.equal(bytes[0] === 0x1f && bytes[1] === 0x8b, gzip);
        assert.deepEqual(readIdx(filePath), array);
      }
    }
    fs.rmSync(directory, { recursive: true });
  });

  test('the byte layout is big-endian as in the MNIST distribution', () => {
    const bytes = serializeIdx({ dtype: 'int32', shape: [1, 2], data: Int32Array.from([1, 258]) });
    assert.deepEqual(Array.from(bytes), [0, 0, 0x0c, 2, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 1, 2]);
    assert.deepEqual(
      parseIdx(Uint8Array.from([0, 0, 8, 1, 0, 0, 0, 2, 9, 250])).data,
      Uint8Array.from([9, 250]),
    );
  });

  test('malformed files get errors that name the file and the field', () => {
    const good = serializeIdx(arrays[0]!);
    const bad = (edit: (bytes: Uint8Array) => Uint8Array): Uint8Array => edit(good.slice());
    const cases: Array<[Uint8Array, RegExp]> = [
      [good.subarray(0, 3), /x\.idx: file has 3 bytes, shorter than the 4-byte IDX magic/],
      [
        bad((b) => ((b[1] = 8), b)),
        /x\.idx: bad magic: expected the first two bytes to be 0x00 0x00, got 0x00 0x08/,
      ],
      [bad((b) => ((b[2] = 0x0a), b)), /x\.idx: bad magic: dtype byte 0x0a is not one of/],
      [
        good.subarray(0, 9),
        /header declares 2 dimensions \(12 header bytes\) but the file has only 9 bytes — the file is truncated/,
      ],
      [
        good.subarray(0, 15),
        /shape \[2, 3\] of uint8 needs 6 data bytes, but the file has only 3 after the header — the file is truncated/,
      ],
      [Uint8Array.from([...good, 0]), /trailing data/],
      [gzipSync(good).subarray(0, 12), /x\.idx: gzip data is corrupt/],
    ];
    for (const [bytes, pattern] of cases) {
      assert.throws(
        () => parseIdx(bytes, 'x.idx'),
        (error: unknown) => error instanceof IdxError && pattern.test(error.message),
        String(pattern),
      );
    }
  });

  test('hostile IDX files are refused within bounded memory: decompression bombs, huge shapes, huge labels', () => {
    // A header declaring 6 bytes followed by 64 MiB of zeros, gzip-compressed to about 64 KiB.
    const header = Uint8Array.from([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3]);
    const zeros = new Uint8Array(2 ** 26);
    const bomb = gzipSync(Buffer.concat([header, zeros]), { level: 9 });
    assert.ok(bomb.byteLength < 2 ** 17, `bomb is ${bomb.byteLength} bytes`);
    const before = process.memoryUsage().rss;
    assert.throws(
      () => parseIdx(bomb, 'bomb.idx.gz'),
      /bomb\.idx\.gz: gzip data inflates to more than the 18 bytes its header declares/,
    );
    assert.ok(process.memoryUsage().rss - before < 2 ** 25, 'the bomb was not inflated whole');
    // A shape no buffer can hold is refused from the header alone.
    const huge = Uint8Array.from([0, 0, 0x0e, 3, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0]);
    assert.throws(
      () => parseIdx(huge, 'huge.idx'),
      /huge\.idx: shape \[65536, 65536, 65536\] of float64 declares .* more than one buffer can hold/,
    );
    // A valid file larger than the header prefix still reads (several rounds of the header probe).
    const large = {
      dtype: 'uint8' as const,
      shape: [64, 1024],
      data: Uint8Array.from({ length: 65536 }, (_, i) => (i * 7919) % 251),
    };
    assert.deepEqual(parseIdx(gzipSync(serializeIdx(large))), large);

    // One label of 2,147,483,647 in a 1-sample file: an error naming it, not two billion classes.
    const directory = temporaryDirectory();
    const imagesPath = path.join(directory, 'images');
    const labelsPath = path.join(directory, 'labels');
    writeIdx(imagesPath, { dtype: 'uint8', shape: [1, 2, 2], data: new Uint8Array(4) });
    writeIdx(labelsPath, { dtype: 'int32', shape: [1], data: Int32Array.from([2147483647]) });
    assert.throws(
      () => readIdxImages(imagesPath, labelsPath),
      /labels: label 0 is 2147483647, which would make 2147483648 classes \(the limit is 65536; pass classNames or maxClasses/,
    );
    writeIdx(labelsPath, { dtype: 'int32', shape: [1], data: Int32Array.from([70000]) });
    assert.equal(readIdxImages(imagesPath, labelsPath, { maxClasses: 100_000 }).classes, 70001);
    // A file over 2 GiB (sparse: no disk used) is refused by name, not with Node's RangeError.
    const huge2 = path.join(directory, 'huge-idx3-ubyte');
    fs.writeFileSync(huge2, Uint8Array.from([0, 0, 8, 3, 0, 1, 0, 0, 0, 0, 0x80, 0, 0, 0, 0, 1]));
    fs.truncateSync(huge2, 2 ** 31 + 16);
    assert.throws(
      () => readIdx(huge2),
      /huge-idx3-ubyte: the file has 2147483664 bytes; tensile reads IDX files of up to 2 GiB/,
    );
    fs.rmSync(directory, { recursive: true });
  });

  test('readIdxImages makes a one-channel dataset from gzip files and checks that they match', () => {
    const directory = temporaryDirectory();
    const imagesPath = path.join(directory, 'images-idx3-ubyte.gz');
    const labelsPath = path.join(directory, 'labels-idx1-ubyte.gz');
    const pixels = Uint8Array.from({ length: 3 * 2 * 2 }, (_, i) => i * 20);
    writeIdx(imagesPath, { dtype: 'uint8', shape: [3, 2, 2], data: pixels }, { gzip: true });
    writeIdx(labelsPath, { dtype: 'uint8', shape: [3], data: Uint8Array.from([2, 0, 1]) }, { gzip: true });
    const dataset = readIdxImages(imagesPath, labelsPath);
    assert.deepEqual(
      { count: dataset.count, channels: dataset.channels, height: dataset.height, width: dataset.width },
      { count: 3, channels: 1, height: 2, width: 2 },
    );
    assert.deepEqual(dataset.classNames, ['0', '1', '2']);
    assert.deepEqual(Array.from(dataset.labels), [2, 0, 1]);
    dataset.images.forEach((value, i) => assertClose(value, pixels[i]! / 255, FLOAT32_TOLERANCE));
    const named = readIdxImages(imagesPath, labelsPath, { classNames: ['a', 'b', 'c', 'd'] });
    assert.equal(named.classes, 4);

    const shortLabels = path.join(directory, 'short-labels');
    writeIdx(shortLabels, { dtype: 'uint8', shape: [2], data: Uint8Array.from([0, 1]) });
    assert.throws(
      () => readIdxImages(imagesPath, shortLabels),
      /count mismatch: .*images-idx3-ubyte\.gz holds 3 images but .*short-labels holds 2 labels/,
    );
    assert.throws(
      () => readIdxImages(labelsPath, labelsPath),
      /images must have 3 dimensions \[count, height, width\], got \[3\]/,
    );
    assert.throws(() => readIdxImages(imagesPath, imagesPath), /labels must have 1 dimension/);
    assert.throws(
      () => readIdxImages(imagesPath, labelsPath, { classNames: ['a'] }),
      /label 2 has no class name/,
    );
    const truncated = path.join(directory, 'truncated');
    fs.writeFileSync(
      truncated,
      serializeIdx({ dtype: 'uint8', shape: [3, 2, 2], data: pixels }).subarray(0, 20),
    );
    assert.throws(() => readIdxImages(truncated, labelsPath), /truncated: .*the file is truncated/);
    fs.rmSync(directory, { recursive: true });
  });
});

describe('packaged datasets', () => {
  test('loadMnist converts the mnist package once, then loads the same data from the cache', () => {
    const cacheDirectory = temporaryDirectory();
    const first = loadMnist({ cacheDirectory });
    const cacheFiles = fs.readdirSync(cacheDirectory);
    assert.equal(cacheFiles.length, 1);
    const cachePath = path.join(cacheDirectory, cacheFiles[0]!);
    const modified = fs.statSync(cachePath).mtimeMs;
    const second = loadMnist({ cacheDirectory });
    assert.equal(fs.statSync(cachePath).mtimeMs, modified, 'the second load must not rewrite the cache');
    assert.deepEqual(second, first);

    assert.deepEqual(
      {
        count: first.count,
        channels: first.channels,
        height: first.height,
        width: first.width,
        classes: first.classes,
      },
      { count: 10000, channels: 1, height: 28, width: 28, classes: 10 },
    );
    assert.deepEqual(first.classNames, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    const perClass = new Array<number>(10).fill(0);
    first.labels.forEach((label) => (perClass[label]! += 1));
    assert.deepEqual(perClass, [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]);
    for (let i = 1; i < first.count; i++)
      assert.ok(first.labels[i]! >= first.labels[i - 1]!, 'ordered by class');

    // The first "7" equals the package's values to the package's 3-decimal rounding.
    const require = createRequire(import.meta.url);
    const packageDirectory = path.dirname(require.resolve('mnist/package.json'));
    const sevens = (
      JSON.parse(fs.readFileSync(path.join(packageDirectory, 'src/digits/7.json'), 'utf8')) as {
        data: number[];
      }
    ).data;
    const firstSeven = first.labels.indexOf(7);
    for (let i = 0; i < 784; i++) {
      assertClose(first.images[firstSeven * 784 + i]!, sevens[i]!, 0.0005 + FLOAT32_TOLERANCE, `pixel ${i}`);
    }

    // A damaged cache is rebuilt rather than trusted.
    fs.writeFileSync(cachePath, fs.readFileSync(cachePath).subarray(0, 5000));
    assert.deepEqual(loadMnist({ cacheDirectory }).images, first.images);
    assert.equal(fs.statSync(cachePath).size > 5000, true);
    fs.rmSync(cacheDirectory, { recursive: true });
  });

  /** A stand-in for the fashion-mnist package: two tiny images per class plus the empty arrays of 0.json. */
  function fakeFashionPackage(edit?: (classes: unknown[][]) => void): string {
    const directory = temporaryDirectory();
    fs.mkdirSync(path.join(directory, 'src', 'clothes'), { recursive: true });
    fs.writeFileSync(
      path.join(directory, 'package.json'),
      JSON.stringify({ name: 'fashion-mnist', version: '9.9.9' }),
    );
    const classes: unknown[][] = Array.from({ length: 10 }, (_, label) =>
      [0, 1].map((image) => Array.from({ length: 784 }, (_, i) => (label * 20 + image * 7 + i) % 256)),
    );
    classes[0]!.splice(1, 0, []);
    classes[0]!.push([]);
    edit?.(classes);
    classes.forEach((images, label) =>
      fs.writeFileSync(
        path.join(directory, 'src', 'clothes', `${label}.json`),
        JSON.stringify({ data: images }),
      ),
    );
    return directory;
  }

  test('loadFashionMnist converts the package format, skipping empty entries, with the standard class names', () => {
    const packageDirectory = fakeFashionPackage();
    const cacheDirectory = temporaryDirectory();
    const dataset = loadFashionMnist({ packageDirectory, cacheDirectory });
    assert.equal(dataset.count, 20);
    assert.deepEqual(
      Array.from(dataset.labels),
      [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9],
    );
    assert.deepEqual(dataset.classNames, [...FASHION_MNIST_CLASS_NAMES]);
    assert.equal(dataset.classNames[1], 'Trouser');
    assert.equal(dataset.classNames[9], 'Ankle boot');
    for (let sample = 0; sample < 20; sample++) {
      const label = Math.floor(sample / 2);
      const image = sample % 2;
      for (const i of [0, 100, 783]) {
        assertClose(
          dataset.images[sample * 784 + i]!,
          ((label * 20 + image * 7 + i) % 256) / 255,
          FLOAT32_TOLERANCE,
        );
      }
    }
    assert.deepEqual(loadFashionMnist({ packageDirectory, cacheDirectory }), dataset);

    // A changed package (here: another version) invalidates the cache.
    fs.writeFileSync(
      path.join(packageDirectory, 'package.json'),
      JSON.stringify({ name: 'fashion-mnist', version: '10.0.0' }),
    );
    fs.writeFileSync(
      path.join(packageDirectory, 'src', 'clothes', '3.json'),
      JSON.stringify({ data: [new Array(784).fill(255)] }),
    );
    const updated = loadFashionMnist({ packageDirectory, cacheDirectory });
    assert.equal(updated.count, 19);
    fs.rmSync(packageDirectory, { recursive: true });
    fs.rmSync(cacheDirectory, { recursive: true });
  });

  test('loadFashionMnist reports malformed package files by file, image and pixel', () => {
    const cases: Array<[(classes: unknown[][]) => void, RegExp]> = [
      [
        (classes) => (classes[4]![1] = new Array(783).fill(0)),
        /clothes[/\\]4\.json: image 1 has 783 values, expected 784/,
      ],
      [
        (classes) => ((classes[2]![0] as number[])[5] = 256),
        /clothes[/\\]2\.json: pixel 5 of image 0 is 256, expected 0–255/,
      ],
      [(classes) => ((classes[2]![0] as number[])[5] = 0.5), /pixel 5 of image 0 is 0\.5/],
    ];
    for (const [edit, pattern] of cases) {
      const packageDirectory = fakeFashionPackage(edit);
      const cacheDirectory = temporaryDirectory();
      assert.throws(() => loadFashionMnist({ packageDirectory, cacheDirectory }), pattern);
      assert.deepEqual(fs.readdirSync(cacheDirectory), [], 'no cache is written for a bad package');
      fs.rmSync(packageDirectory, { recursive: true });
      fs.rmSync(cacheDirectory, { recursive: true });
    }
    const missing = temporaryDirectory();
    fs.writeFileSync(path.join(missing, 'package.json'), '{"version": "1.0.0"}');
    assert.throws(
      () => loadFashionMnist({ packageDirectory: missing, cacheDirectory: missing }),
      /data file .*0\.json is missing/,
    );
    fs.rmSync(missing, { recursive: true });
  });
});

describe('DataLoader', () => {
  const size = 2 * 3 * 4;

  function samplesOf(loader: DataLoader): number[][] {
    return Array.from(loader, (batch) =>
      Array.from({ length: batch.size }, (_, i) => sampleOf(batch.images, i, size)),
    );
  }

  test('without shuffling, batches follow dataset order; the last batch is partial unless dropped', () => {
    const dataset = syntheticDataset(10);
    const loader = new DataLoader(dataset, { batchSize: 4 });
    assert.equal(loader.batchCount, 3);
    assert.deepEqual(samplesOf(loader), [
      [0, 1, 2, 3],
      [4, 5, 6, 7],
      [8, 9],
    ]);
    const batches = Array.from(loader);
    assert.deepEqual(batches[2]!.shape, [2, 2, 3, 4]);
    assert.equal(batches[2]!.images.length, 2 * size);
    assert.deepEqual(Array.from(batches[0]!.labels), [0, 1, 2, 0]);
    assert.deepEqual(batches[1]!.images, dataset.images.subarray(4 * size, 8 * size));

    const dropping = new DataLoader(dataset, { batchSize: 4, dropLast: true });
    assert.equal(dropping.batchCount, 2);
    assert.deepEqual(samplesOf(dropping), [
      [0, 1, 2, 3],
      [4, 5, 6, 7],
    ]);
    assert.equal(new DataLoader(dataset, { batchSize: 5, dropLast: true }).batchCount, 2);
    assert.throws(() => new DataLoader(dataset, { batchSize: 0 }), /batchSize must be a positive integer/);
  });

  test('shuffling visits every sample once per epoch, in a new seeded order each epoch', () => {
    const dataset = syntheticDataset(50);
    const loader = new DataLoader(dataset, { batchSize: 8, shuffle: true, seed: 3 });
    const epoch1 = samplesOf(loader).flat();
    const epoch2 = samplesOf(loader).flat();
    const sorted = Array.from({ length: 50 }, (_, i) => i);
    assert.deepEqual(
      [...epoch1].sort((a, b) => a - b),
      sorted,
    );
    assert.deepEqual(
      [...epoch2].sort((a, b) => a - b),
      sorted,
    );
    assert.notDeepEqual(epoch1, epoch2);
    const again = new DataLoader(dataset, { batchSize: 8, shuffle: true, seed: 3 });
    assert.deepEqual(samplesOf(again).flat(), epoch1);
    // Labels travel with their images.
    for (const batch of loader) {
      for (let i = 0; i < batch.size; i++) assert.equal(batch.labels[i], sampleOf(batch.images, i, size) % 3);
    }
  });

  test('a saved generator state resumes the same epoch order', () => {
    const dataset = syntheticDataset(30);
    const loader = new DataLoader(dataset, { batchSize: 7, shuffle: true, seed: 9 });
    samplesOf(loader);
    const state = loader.random.getState();
    const next = samplesOf(loader);
    const resumed = new DataLoader(dataset, { batchSize: 7, shuffle: true, random: Random.fromState(state) });
    assert.deepEqual(samplesOf(resumed), next);
  });

  test('reuseBuffers fills the same arrays every batch, with correct contents', () => {
    const dataset = syntheticDataset(10);
    const loader = new DataLoader(dataset, { batchSize: 4, reuseBuffers: true });
    const buffers = new Set<ArrayBufferLike>();
    const seen: number[] = [];
    for (const batch of loader) {
      buffers.add(batch.images.buffer);
      for (let i = 0; i < batch.size; i++) seen.push(sampleOf(batch.images, i, size));
      assert.equal(batch.images.length, batch.size * size);
      assert.equal(batch.labels.length, batch.size);
    }
    assert.equal(buffers.size, 1);
    assert.deepEqual(
      seen,
      Array.from({ length: 10 }, (_, i) => i),
    );
  });

  test('transforms apply per sample and never touch the dataset', () => {
    const dataset = syntheticDataset(6, 3, 1, 2, 2);
    const original = dataset.images.slice();
    const loader = new DataLoader(dataset, { batchSize: 6, transforms: [normalizeTransform(1, 2)] });
    const [batch] = Array.from(loader);
    batch!.images.forEach((value, i) => assertClose(value, (original[i]! - 1) / 2, FLOAT32_TOLERANCE));
    assert.deepEqual(dataset.images, original);
  });
});

describe('transforms', () => {
  const shape = { channels: 2, height: 5, width: 6 };
  const makeImage = (): Float32Array => Float32Array.from({ length: 60 }, (_, i) => i + 1);

  /** The plain definition: out[c, y, x] = in[c, y − dy, x − dx], zero outside. */
  function shiftedReference(image: Float32Array, dy: number, dx: number): Float32Array {
    const out = new Float32Array(image.length);
    for (let c = 0; c < shape.channels; c++) {
      for (let y = 0; y < shape.height; y++) {
        for (let x = 0; x < shape.width; x++) {
          const sy = y - dy;
          const sx = x - dx;
          if (sy >= 0 && sy < shape.height && sx >= 0 && sx < shape.width) {
            out[(c * shape.height + y) * shape.width + x] =
              image[(c * shape.height + sy) * shape.width + sx]!;
          }
        }
      }
    }
    return out;
  }

  test('randomShift equals the plain definition for the offsets it draws, and covers them all', () => {
    const transform = randomShift(2);
    const random = new Random(17);
    const offsets = new Set<string>();
    for (let trial = 0; trial < 300; trial++) {
      // Replay the two draws randomShift makes: dy, then dx, each uniform in [−2, 2].
      const replay = Random.fromState(random.getState());
      const dy = replay.int(5) - 2;
      const dx = replay.int(5) - 2;
      offsets.add(`${dy},${dx}`);
      const image = makeImage();
      transform.apply(image, shape, random);
      assert.deepEqual(image, shiftedReference(makeImage(), dy, dx), `shift ${dy},${dx}`);
    }
    assert.equal(offsets.size, 25);
    // Shifts larger than the image leave nothing.
    const image = makeImage();
    const far = randomShift(10);
    const farRandom = new Random(1);
    let emptied = false;
    for (let trial = 0; trial < 50 && !emptied; trial++) {
      image.set(makeImage());
      far.apply(image, shape, farRandom);
      emptied = image.every((value) => value === 0);
    }
    assert.ok(emptied, 'a shift beyond the image should zero it');
    const unchanged = makeImage();
    randomShift(0).apply(unchanged, shape, new Random(1));
    assert.deepEqual(unchanged, makeImage());
    assert.throws(() => randomShift(-1), RangeError);
  });

  test('horizontalFlip mirrors rows with the given probability', () => {
    const image = makeImage();
    horizontalFlip(1).apply(image, shape, new Random(1));
    assert.deepEqual(Array.from(image.subarray(0, 6)), [6, 5, 4, 3, 2, 1]);
    assert.deepEqual(Array.from(image.subarray(54, 60)), [60, 59, 58, 57, 56, 55]);
    const untouched = makeImage();
    horizontalFlip(0).apply(untouched, shape, new Random(1));
    assert.deepEqual(untouched, makeImage());
    const random = new Random(2);
    const half = horizontalFlip(0.5);
    let flipped = 0;
    for (let i = 0; i < 2000; i++) {
      const sample = makeImage();
      half.apply(sample, shape, random);
      if (sample[0] === 6) flipped++;
    }
    assert.ok(flipped > 900 && flipped < 1100, `flipped ${flipped} of 2000`);
    assert.throws(() => horizontalFlip(1.5), RangeError);
  });

  test('normalizeTransform standardises each channel with its own constants', () => {
    const image = makeImage();
    normalizeTransform([10, 20], [2, 4]).apply(image, shape, new Random(0));
    assertClose(image[0]!, (1 - 10) / 2, FLOAT32_TOLERANCE);
    assertClose(image[59]!, (60 - 20) / 4, FLOAT32_TOLERANCE);
    assert.throws(
      () => normalizeTransform([0, 0, 0], 1).apply(makeImage(), shape, new Random(0)),
      /one per channel/,
    );
    assert.throws(() => normalizeTransform(0, [1, -1]), /must be positive/);
  });
});
