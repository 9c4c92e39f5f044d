import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  colorJitter,
  compose,
  DataLoader,
  horizontalFlip,
  IMAGENET_MEAN,
  IMAGENET_STD,
  imagenetNormalize,
  type ImageDataset,
  type ImageShape,
  normalizeTransform,
  Random,
  randomErasing,
  randomResizedCrop,
  randomRotation,
  randomShift,
  resizeImage,
  type SampleTransform,
  verticalFlip,
} from '../src/index.js';

function randomImage(shape: ImageShape, seed: number): Float32Array {
  const random = new Random(seed);
  return Float32Array.from({ length: shape.channels * shape.height * shape.width }, () => random.next());
}

function applied(
  transform: SampleTransform,
  image: Float32Array,
  shape: ImageShape,
  seed: number,
): Float32Array {
  const copy = image.slice();
  transform.apply(copy, shape, new Random(seed));
  return copy;
}

const rgb: ImageShape = { channels: 3, height: 12, width: 10 };

describe('augmentation', () => {
  test('compose applies its transforms in order from one generator, as a list would', () => {
    const image = randomImage(rgb, 1);
    const steps = [
      randomShift(2),
      horizontalFlip(),
      colorJitter({ brightness: 0.3 }),
      randomErasing({ probability: 1 }),
    ];
    const composed = applied(compose(steps), image, rgb, 5);
    const byHand = image.slice();
    const random = new Random(5);
    for (const step of steps) step.apply(byHand, rgb, random);
    assert.deepEqual(composed, byHand);
    assert.notDeepEqual(composed, image);
    assert.match(
      compose(steps).description,
      /^compose\(\[randomShift\(2\), horizontalFlip\(0\.5\), colorJitter/,
    );
  });

  test('verticalFlip mirrors rows (twice is the identity) and draws once whatever the probability', () => {
    const image = randomImage(rgb, 2);
    const flipped = applied(verticalFlip(1), image, rgb, 1);
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < 12; y++)
        for (let x = 0; x < 10; x++)
          assert.equal(flipped[(c * 12 + y) * 10 + x], image[(c * 12 + (11 - y)) * 10 + x]);
    assert.deepEqual(applied(verticalFlip(1), flipped, rgb, 1), image);
    assert.deepEqual(applied(verticalFlip(0), image, rgb, 1), image);
    const a = new Random(3);
    const b = new Random(3);
    verticalFlip(0).apply(image.slice(), rgb, a);
    b.next();
    assert.equal(a.next(), b.next());
  });

  test('resizeImage matches PyTorch bilinear interpolation (align_corners=False)', () => {
    // torch.nn.functional.interpolate(torch.tensor([[[[0., 1.], [2., 3.]]]]), size=4, mode='bilinear')
    const resized = resizeImage(Float32Array.from([0, 1, 2, 3]), { channels: 1, height: 2, width: 2 }, 4, 4);
    assert.deepEqual(
      [...resized],
      [0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3],
    );
    const constant = resizeImage(
      new Float32Array(3 * 5 * 7).fill(0.3),
      { channels: 3, height: 5, width: 7 },
      9,
      2,
    );
    assert.equal(constant.length, 3 * 9 * 2);
    assert.ok(constant.every((v) => Math.abs(v - 0.3) < 1e-6));
  });

  test('randomResizedCrop: the full-scale square crop is the identity; crops are seeded and in range', () => {
    const square: ImageShape = { channels: 3, height: 8, width: 8 };
    const image = randomImage(square, 4);
    const whole = applied(randomResizedCrop({ scale: [1, 1], ratio: [1, 1] }), image, square, 1);
    for (let i = 0; i < image.length; i++) assert.ok(Math.abs(whole[i]! - image[i]!) < 1e-6);
    const crop = randomResizedCrop({ scale: [0.1, 0.3] });
    const first = applied(crop, image, square, 9);
    assert.deepEqual(applied(crop, image, square, 9), first);
    assert.notDeepEqual(applied(crop, image, square, 10), first);
    assert.ok(first.every((v) => v >= 0 && v <= 1));
    // A crop of a left-dark, right-bright image: the result's columns never get darker left to right.
    const ramp = Float32Array.from({ length: 64 }, (_, i) => (i % 8) / 7);
    const gray: ImageShape = { channels: 1, height: 8, width: 8 };
    for (let seed = 0; seed < 20; seed++) {
      const out = applied(crop, ramp, gray, seed);
      for (let i = 0; i < 64; i++) if (i % 8 > 0) assert.ok(out[i]! >= out[i - 1]! - 1e-6);
    }
    assert.throws(() => randomResizedCrop({ scale: [0.5, 2] }), /scale/);
  });

  test('randomRotation turns a point about the centre by the drawn angle', () => {
    const shape: ImageShape = { channels: 1, height: 21, width: 21 };
    const image = new Float32Array(21 * 21);
    image[10 * 21 + 18] = 1; // 8 pixels right of the centre
    for (const seed of [1, 2, 3]) {
      const out = applied(randomRotation(90), image, shape, seed);
      const angle = (new Random(seed).uniform(-90, 90) * Math.PI) / 180;
      let mass = 0;
      let y = 0;
      let x = 0;
      out.forEach((v, i) => {
        mass += v;
        y += v * Math.floor(i / 21);
        x += v * (i % 21);
      });
      // Counter-clockwise for a positive angle, as seen with y pointing down: a point right of the
      // centre moves up.
      const expectedY = 10 - 8 * Math.sin(angle);
      const expectedX = 10 + 8 * Math.cos(angle);
      assert.ok(Math.abs(y / mass - expectedY) < 0.3, `seed ${seed}: y ${y / mass} vs ${expectedY}`);
      assert.ok(Math.abs(x / mass - expectedX) < 0.3, `seed ${seed}: x ${x / mass} vs ${expectedX}`);
      assert.ok(Math.abs(mass - 1) < 0.05);
    }
    const rgbImage = randomImage(rgb, 6);
    assert.deepEqual(applied(randomRotation(0), rgbImage, rgb, 1), rgbImage);
  });

  test('colorJitter: brightness scales every value by one factor; saturation leaves gray alone; contrast keeps the mean', () => {
    const image = randomImage(rgb, 7).map((v) => v * 0.5);
    const brighter = applied(colorJitter({ brightness: 0.4 }), image, rgb, 2);
    const factor = brighter[0]! / image[0]!;
    assert.ok(factor >= 0.6 && factor <= 1.4 && factor !== 1);
    for (let i = 0; i < image.length; i++) assert.ok(Math.abs(brighter[i]! - image[i]! * factor) < 1e-6);

    const plane = 12 * 10;
    const gray = randomImage({ channels: 1, height: 12, width: 10 }, 8);
    const grayRgb = new Float32Array(3 * plane);
    for (let c = 0; c < 3; c++) grayRgb.set(gray, c * plane);
    const saturated = applied(colorJitter({ saturation: 1 }), grayRgb, rgb, 3);
    for (let i = 0; i < grayRgb.length; i++) assert.ok(Math.abs(saturated[i]! - grayRgb[i]!) < 1e-6);
    const colourful = applied(colorJitter({ saturation: 1 }), image, rgb, 3);
    assert.notDeepEqual(colourful, image);

    // Values in [0.25, 0.75] with a contrast factor ≤ 1.5 stay inside [0, 1]: nothing is clamped, so
    // the mean luma is unchanged.
    const middle = image.map((v) => 0.25 + v);
    const luma = (values: Float32Array) => {
      let sum = 0;
      for (let p = 0; p < plane; p++)
        sum += 0.299 * values[p]! + 0.587 * values[plane + p]! + 0.114 * values[2 * plane + p]!;
      return sum / plane;
    };
    const contrasted = applied(colorJitter({ contrast: 0.5 }), middle, rgb, 4);
    assert.notDeepEqual(contrasted, middle);
    assert.ok(Math.abs(luma(contrasted) - luma(middle)) < 1e-5);
    assert.throws(() => colorJitter({ brightness: 2 }), /brightness must be in \[0, 1\]/);
  });

  test('randomErasing blanks one rectangle of the stated area in every channel', () => {
    const shape: ImageShape = { channels: 2, height: 20, width: 20 };
    const ones = new Float32Array(2 * 400).fill(1);
    for (let seed = 0; seed < 10; seed++) {
      const out = applied(randomErasing({ probability: 1, scale: [0.1, 0.2] }), ones, shape, seed);
      const erased: number[] = [];
      out.forEach((v, i) => {
        if (v === 0) erased.push(i);
      });
      const perChannel = erased.filter((i) => i < 400);
      assert.deepEqual(
        erased.filter((i) => i >= 400).map((i) => i - 400),
        perChannel,
      );
      const rows = new Set(perChannel.map((i) => Math.floor(i / 20)));
      const columns = new Set(perChannel.map((i) => i % 20));
      // A rectangle: every (row, column) pair of its rows and columns is erased.
      assert.equal(perChannel.length, rows.size * columns.size);
      assert.ok(
        perChannel.length >= 0.1 * 400 * 0.7 && perChannel.length <= 0.2 * 400 * 1.3,
        `${perChannel.length}`,
      );
    }
    assert.deepEqual(applied(randomErasing({ probability: 0 }), ones, shape, 1), ones);
  });

  test("imagenetNormalize is normalizeTransform with ImageNet's constants", () => {
    assert.deepEqual(IMAGENET_MEAN, [0.485, 0.456, 0.406]);
    assert.deepEqual(IMAGENET_STD, [0.229, 0.224, 0.225]);
    const image = randomImage(rgb, 9);
    assert.deepEqual(
      applied(imagenetNormalize(), image, rgb, 1),
      applied(normalizeTransform(IMAGENET_MEAN, IMAGENET_STD), image, rgb, 1),
    );
    const out = applied(imagenetNormalize(), image, rgb, 1);
    assert.ok(Math.abs(out[0]! - (image[0]! - 0.485) / 0.229) < 1e-6);
    assert.ok(Math.abs(out[2 * 120]! - (image[2 * 120]! - 0.406) / 0.225) < 1e-6);
  });

  test('a loader applies a composed pipeline per sample, reproducibly by seed', () => {
    const count = 6;
    const dataset: ImageDataset = {
      images: randomImage({ channels: 3, height: 12, width: 10 * count }, 10),
      labels: Int32Array.from({ length: count }, (_, i) => i % 2),
      count,
      channels: 3,
      height: 12,
      width: 10,
      classes: 2,
      classNames: ['a', 'b'],
    };
    const pipeline = compose([
      randomResizedCrop({ scale: [0.5, 1] }),
      randomRotation(15),
      horizontalFlip(),
      verticalFlip(),
      colorJitter({ brightness: 0.2, contrast: 0.2, saturation: 0.2 }),
      imagenetNormalize(),
      randomErasing(),
    ]);
    const epoch = (seed: number) =>
      [...new DataLoader(dataset, { batchSize: 3, seed, transforms: [pipeline] })].map((batch) => [
        ...batch.images,
      ]);
    assert.deepEqual(epoch(4), epoch(4));
    assert.notDeepEqual(epoch(4), epoch(5));
    // The dataset itself is untouched.
    assert.deepEqual(dataset.images, randomImage({ channels: 3, height: 12, width: 10 * count }, 10));
  });
});
