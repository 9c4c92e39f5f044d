/**
 * Peak memory of `tensile train --data DIR` over one epoch of 60,000 28×28 gray PNGs (Fashion-MNIST images,
 * evenly spaced over its 70,000 and written once into a temporary folder), in memory and with --stream (no
 * --image-cache: images are decoded once into a temporary folder and read back batch by batch).
 * Each run is its own process; its peak resident set (process.resourceUsage().maxRSS) is reported
 * next to the size of the decoded dataset as float32.
 *
 *   npm run build:ts && npm run bench:stream [-- --images N --channels 8,16]
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadFashionMnist } from '../src/index.js';

const { values } = parseArgs({
  options: {
    images: { type: 'string', default: '60000' },
    channels: { type: 'string', default: '32,64' },
  },
});
const count = Number(values.images);
const sharp = (await import('sharp')).default;
const main = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'main.js');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-bench-stream-'));
try {
  const fashion = loadFashionMnist();
  const total = Math.min(count, fashion.count);
  const folder = path.join(root, 'images');
  for (let c = 0; c < fashion.classes; c++) fs.mkdirSync(path.join(folder, `class${c}`), { recursive: true });
  const plane = 28 * 28;
  let written = performance.now();
  const pending: Promise<unknown>[] = [];
  for (let n = 0; n < total; n++) {
    // The package is sorted by class: take evenly spaced images, so every class is there.
    const i = Math.floor((n * fashion.count) / total);
    const pixels = Buffer.from(
      Array.from(fashion.images.subarray(i * plane, (i + 1) * plane), (v) => Math.round(v * 255)),
    );
    pending.push(
      sharp(pixels, { raw: { width: 28, height: 28, channels: 1 } })
        .png()
        .toFile(path.join(folder, `class${fashion.labels[i]}`, `${i}.png`)),
    );
    if (pending.length >= 64) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  written = (performance.now() - written) / 1000;
  // Reports the process's peak resident set on exit (maxRSS is in KiB).
  const preload = path.join(root, 'peak.cjs');
  fs.writeFileSync(
    preload,
    "process.on('exit', () => process.stderr.write(`peak RSS ${process.resourceUsage().maxRSS}\\n`));\n",
  );
  const decodedMiB = (total * plane * 4) / 2 ** 20;
  console.log(
    `${total} PNGs of 28×28 gray written in ${written.toFixed(0)} s; decoded as float32 they take ${decodedMiB.toFixed(0)} MiB ` +
      `(${os.availableParallelism()} cores, load ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')})`,
  );
  const common = ['train', '--data', folder, '--image-size', '28', '--grayscale', '--epochs', '1'];
  const runs: [string, string[]][] = [
    ['in memory', []],
    ['--stream', ['--stream']],
  ];
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
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
