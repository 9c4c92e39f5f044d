/** The CIFAR-10/100 readers against small files written here in the documented binary layout. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { CIFAR10_CLASS_NAMES, CifarError, loadCifar10, loadCifar100 } from '../src/index.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-cifar-'));

/** One record: label bytes, then 1,024 red, 1,024 green and 1,024 blue values (row-major 32×32). */
function record(labels: number[], pixel: (channel: number, y: number, x: number) => number): Uint8Array {
  const bytes = new Uint8Array(labels.length + 3072);
  bytes.set(labels);
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < 32; y++)
      for (let x = 0; x < 32; x++) bytes[labels.length + c * 1024 + y * 32 + x] = pixel(c, y, x);
  return bytes;
}

function writeRecords(file: string, records: Uint8Array[]): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, Buffer.concat(records));
}

describe('CIFAR readers', () => {
  const cifar10 = path.join(root, 'cifar-10-batches-bin');
  // Image i of batch b: label (b + i) % 10, pixel value (10·b + i + channel + y + x) % 256.
  for (let batch = 1; batch <= 5; batch++) {
    writeRecords(
      path.join(cifar10, `data_batch_${batch}.bin`),
      [0, 1].map((i) => record([(batch + i) % 10], (c, y, x) => (10 * batch + i + c + y + x) % 256)),
    );
  }
  writeRecords(path.join(cifar10, 'test_batch.bin'), [record([9], (c, y, x) => (c * 100 + y * 3 + x) % 256)]);

  it('reads CIFAR-10 in [C, H, W] with labels and scaled pixels, from the folder or its parent', () => {
    for (const directory of [root, cifar10]) {
      const train = loadCifar10(directory);
      assert.deepEqual(
        [train.count, train.channels, train.height, train.width, train.classes],
        [10, 3, 32, 32, 10],
      );
      assert.deepEqual(Array.from(train.labels), [1, 2, 2, 3, 3, 4, 4, 5, 5, 6]);
      assert.deepEqual(train.classNames, CIFAR10_CLASS_NAMES);
      // Image 3 is batch 2, record 1: green (channel 1) at y=5, x=7 is (20 + 1 + 1 + 5 + 7) / 255.
      assert.equal(train.images[3 * 3072 + 1 * 1024 + 5 * 32 + 7], Math.fround(34 / 255));
    }
    const test = loadCifar10(root, { split: 'test' });
    assert.equal(test.count, 1);
    assert.equal(test.labels[0], 9);
    assert.equal(test.images[2 * 1024 + 31 * 32 + 31], Math.fround(((200 + 93 + 31) % 256) / 255));
  });

  it('reads CIFAR-100 with fine or coarse labels, and its label names when the meta files are there', () => {
    const cifar100 = path.join(root, 'cifar-100-binary');
    writeRecords(path.join(cifar100, 'train.bin'), [record([3, 42], () => 255), record([19, 99], () => 0)]);
    writeRecords(path.join(cifar100, 'test.bin'), [record([0, 7], () => 128)]);
    const fine = loadCifar100(root);
    assert.equal(fine.classes, 100);
    assert.deepEqual(Array.from(fine.labels), [42, 99]);
    assert.equal(fine.images[0], 1);
    const coarse = loadCifar100(cifar100, { labels: 'coarse', split: 'test' });
    assert.equal(coarse.classes, 20);
    assert.deepEqual(Array.from(coarse.labels), [0]);
    fs.writeFileSync(
      path.join(cifar100, 'coarse_label_names.txt'),
      Array.from({ length: 20 }, (_, i) => `super${i}`).join('\n') + '\n',
    );
    assert.equal(loadCifar100(root, { labels: 'coarse' }).classNames[19], 'super19');
  });

  it('says where to get the data when it is missing, and refuses files not in the layout', () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-cifar-empty-'));
    assert.throws(
      () => loadCifar10(empty),
      (error: Error) =>
        error instanceof CifarError &&
        /CIFAR-10 not found in '.*': expected test_batch\.bin there or in cifar-10-batches-bin\/\. Download the binary version \(cifar-10-binary\.tar\.gz\) from https:\/\/www\.cs\.toronto\.edu\/~kriz\/cifar\.html/.test(
          error.message,
        ),
    );
    assert.throws(() => loadCifar100(empty), /CIFAR-100 not found .*cifar-100-binary\.tar\.gz/);

    const broken = path.join(empty, 'cifar-10-batches-bin');
    writeRecords(path.join(broken, 'test_batch.bin'), [record([1], () => 0).subarray(0, 3000)]);
    assert.throws(
      () => loadCifar10(empty, { split: 'test' }),
      /test_batch\.bin' has 3000 bytes, not a whole number of 3073-byte records/,
    );
    writeRecords(path.join(broken, 'test_batch.bin'), [record([10], () => 0)]);
    assert.throws(() => loadCifar10(empty, { split: 'test' }), /record 0 has label 10, outside \[0, 10\)/);
    assert.throws(() => loadCifar10(empty), /data_batch_1\.bin' is missing/);
  });
});
