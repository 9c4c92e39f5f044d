/**
 * How long imageFolder takes to read a folder of photographs: 500 JPEGs of 320×240 (4 classes of
 * synthetic textures, written once into a temporary folder) resized to 3×64×64, without a cache,
 * filling the decoded-pixel cache, and from it.
 *
 *   npm run build:ts && node dist/bench/image-folder.js
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { imageFolder, type ImageFolderOptions, Random } from '../src/index.js';

const sharp = (await import('sharp')).default;
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-bench-images-'));
try {
  const random = new Random(1);
  const [width, height] = [320, 240];
  for (const name of ['a', 'b', 'c', 'd']) {
    fs.mkdirSync(path.join(root, 'photos', name), { recursive: true });
    for (let i = 0; i < 125; i++) {
      const pixels = Buffer.alloc(width * height * 3);
      for (let p = 0; p < pixels.length; p++) pixels[p] = (p % 97) * 2 + random.int(40);
      await sharp(pixels, { raw: { width, height, channels: 3 } })
        .jpeg({ quality: 90 })
        .toFile(path.join(root, 'photos', name, `${i}.jpg`));
    }
  }
  const cacheDirectory = path.join(root, 'cache');
  const runs: [string, ImageFolderOptions][] = [
    ['no cache', {}],
    ['filling the cache', { cacheDirectory }],
    ['from the cache', { cacheDirectory }],
  ];
  console.log(`imageFolder, 500 JPEGs of ${width}×${height} → 3×64×64 (${os.availableParallelism()} cores)`);
  for (const [label, options] of runs) {
    const started = performance.now();
    const read = await imageFolder(path.join(root, 'photos'), { imageSize: 64, ...options });
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `  ${label.padEnd(18)} ${seconds.toFixed(2)} s (${(read.all.count / seconds).toFixed(0)} images/s)`,
    );
  }
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
