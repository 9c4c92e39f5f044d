/**
 * Peak memory of `tensile train --data DIR` over one epoch of 28×28 gray PNGs (Fashion-MNIST images,
 * evenly spaced over its 70,000 and repeated beyond that, written once into a temporary folder as
 * 8-bit gray PNGs), in memory and with --stream (no --image-cache: images are decoded once into a
 * temporary folder and read back batch by batch). Each run is its own process; its peak resident
 * set (process.resourceUsage().maxRSS) is reported next to the size of the decoded dataset as
 * float32. Several sizes (e.g. 60000,600000) show how memory grows with the number of images.
 *
 *   npm run build:ts && npm run bench:stream [-- --images 60000,600000 --modes stream --channels 8,16]
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { crc32, deflateSync } from 'node:zlib';
import { loadFashionMnist } from '../src/index.js';

const { values } = parseArgs({
  options: {
    images: { type: 'string', default: '60000' },
    modes: { type: 'string', default: 'memory,stream' },
    channels: { type: 'string', default: '32,64' },
  },
});
const counts = values.images.split(',').map(Number);
const modes = values.modes.split(',');
const main = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'main.js');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-bench-stream-'));

/** One PNG chunk: length, type, data, CRC. */
function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/**
 * An 8-bit gray PNG (colour type 0, every row filtered with Up) of `pixels`: written here rather than
 * by sharp, which takes ten times longer and writes gray images as RGB, to make 600,000 in a minute.
 */
function grayPng(pixels: Uint8Array, width: number, height: number): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8;
  const rows = new Uint8Array(height * (width + 1));
  for (let y = 0; y < height; y++) {
    rows[y * (width + 1)] = 2;
    for (let x = 0; x < width; x++)
      rows[y * (width + 1) + 1 + x] =
        (pixels[y * width + x]! - (y > 0 ? pixels[(y - 1) * width + x]! : 0)) & 0xff;
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(rows)),
    chunk('IEND', new Uint8Array(0)),
  ]);
}

try {
  const fashion = loadFashionMnist();
  const plane = 28 * 28;
  // Reports the process's peak resident set on exit (maxRSS is in KiB).
  const preload = path.join(root, 'peak.cjs');
  fs.writeFileSync(
    preload,
    "process.on('exit', () => process.stderr.write(`peak RSS ${process.resourceUsage().maxRSS}\\n`));\n",
  );
  const load = () =>
    os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ');
  console.log(
    `bench:stream on ${os.availableParallelism()} cores, load ${load()}, ${new Date().toISOString()}; ` +
      `tensile train --epochs 1 --channels ${values.channels}, seed CNN, 20% held out`,
  );
  for (const total of counts) {
    const folder = path.join(root, `images-${total}`);
    for (let c = 0; c < fashion.classes; c++)
      fs.mkdirSync(path.join(folder, `class${c}`), { recursive: true });
    let written = performance.now();
    const pixels = new Uint8Array(plane);
    for (let n = 0; n < total; n++) {
      // The package is sorted by class: take evenly spaced images, so every class is there.
      const i = Math.floor((n * fashion.count) / total) % fashion.count;
      for (let p = 0; p < plane; p++) pixels[p] = Math.round(fashion.images[i * plane + p]! * 255);
      fs.writeFileSync(path.join(folder, `class${fashion.labels[i]}`, `${n}.png`), grayPng(pixels, 28, 28));
    }
    written = (performance.now() - written) / 1000;
    const decodedMiB = (total * plane * 4) / 2 ** 20;
    console.log(
      `\n${total} PNGs of 28×28 gray written in ${written.toFixed(0)} s; decoded as float32 they take ${decodedMiB.toFixed(0)} MiB (load ${load()})`,
    );
    const common = ['train', '--data', folder, '--image-size', '28', '--grayscale', '--epochs', '1'];
    const runs: [string, string[]][] = [];
    if (modes.includes('memory')) runs.push(['in memory', []]);
    if (modes.includes('stream')) runs.push(['--stream', ['--stream']]);
    for (const [label, extra] of runs) {
      const started = performance.now();
      const run = spawnSync(
        process.execPath,
        [
          '--require',
          preload,
          main,
          ...common,
          '--channels',
          values.channels,
          ...extra,
          '--no-track',
          '--quiet',
        ],
        { encoding: 'utf8', maxBuffer: 1 << 26 },
      );
      const seconds = (performance.now() - started) / 1000;
      if (run.status !== 0) throw new Error(`${label} failed: ${run.stderr}`);
      const peak = Number(/peak RSS (\d+)/.exec(run.stderr)?.[1]) / 1024;
      console.log(
        `  ${label.padEnd(10)} peak RSS ${peak.toFixed(0).padStart(5)} MiB (${(peak / decodedMiB).toFixed(2)}× the decoded data), ` +
          `${seconds.toFixed(0)} s; ${run.stdout.trim().split('\n').at(-1)}`,
      );
    }
    fs.rmSync(folder, { recursive: true, force: true });
  }
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
