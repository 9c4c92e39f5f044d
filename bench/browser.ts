/**
 * npm run bench:browser [-- --threads 1,2] [--channels 32,64] [--batch 64] [--warmup 3] [--steps 10]
 *                       [--engines node,page,tfjs] [--tasks train,predict] [--json]
 *
 * Throughput (samples/s) of the seed CNN (./browser-workload.ts), training (batch of 28×28 images,
 * Adam, cross-entropy, timed after warm-up steps) and predicting (inference mode, one batch per
 * call; TensorFlow.js's wasm backend cannot train this model, it has no convolution-gradient kernel,
 * but it can predict), on this machine:
 *   node     tensile's wasm backend in this Node process, per thread count
 *   page     tensile's browser bundle (dist/browser) in a Web Worker of a cross-origin isolated page
 *            in Debian's Chromium (playwright-core), per thread count
 *   tfjs     TensorFlow.js in the same Chromium, on the page's main thread: its wasm backend (SIMD,
 *            threaded at the same thread counts), its cpu backend (plain JavaScript, one thread) and
 *            its webgl backend, which in headless Chromium runs on a software rasteriser (reported,
 *            not a GPU figure; skipped when it does not start)
 * and the bundle's size, gzipped. Everything is served from 127.0.0.1; nothing is fetched beyond it.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import * as zlib from 'node:zlib';
import { chromium, type Browser } from 'playwright-core';
import * as tensile from '../src/index.js';
import { setWasmThreads } from '../src/backend/wasm/index.js';
import { tensileInference, tensileThroughput, type Workload } from './browser-workload.js';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '1,2' },
    channels: { type: 'string', default: '32,64' },
    batch: { type: 'string', default: '64' },
    warmup: { type: 'string', default: '3' },
    steps: { type: 'string', default: '10' },
    engines: { type: 'string', default: 'node,page,tfjs' },
    tasks: { type: 'string', default: 'train,predict' },
    json: { type: 'boolean', default: false },
  },
});
const engines = new Set(values.engines!.split(','));
const threadCounts = values.threads!.split(',').map(Number);
const channels = values.channels!.split(',').map(Number) as [number, number];
const workload: Workload = {
  channels,
  batchSize: Number(values.batch),
  warmupSteps: Number(values.warmup),
  steps: Number(values.steps),
};
/** TensorFlow.js's cpu backend is plain JavaScript: fewer steps keep the run short. */
const slowWorkload: Workload = { ...workload, warmupSteps: 1, steps: 1 };

const root = path.resolve('.');
const bundleDirectory = path.join(root, 'dist', 'browser');
const tfjsDirectory = path.join(root, 'node_modules', '@tensorflow', 'tfjs', 'dist');
const tfjsWasmDirectory = path.join(root, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist');
const log = (line: string) => {
  if (!values.json) console.log(line);
};

type Task = 'train' | 'predict';
const tasks = values.tasks!.split(',').filter((task): task is Task => task === 'train' || task === 'predict');

interface Row {
  task: Task;
  engine: 'node' | 'page' | 'tfjs';
  backend: string;
  threads: number;
  samplesPerSecond: number | null;
  note?: string;
}
const rows: Row[] = [];

// --- Node: tensile's wasm backend ----------------------------------------------------------------
tensile.setBackend(tensile.backendByName('wasm'));
for (const task of tasks) {
  for (const threads of engines.has('node') ? threadCounts : []) {
    setWasmThreads(threads);
    const measure = task === 'train' ? tensileThroughput : tensileInference;
    const rate = measure(tensile, workload, () => performance.now());
    rows.push({ task, engine: 'node', backend: 'tensile wasm', threads, samplesPerSecond: rate });
    log(`${task}  node  tensile wasm, ${threads} thread(s): ${rate.toFixed(0)} samples/s`);
  }
}
setWasmThreads(1);

// --- The page ------------------------------------------------------------------------------------
const pageHtml = `<!doctype html><meta charset="utf-8"><title>tensile bench</title>
<script src="/tfjs/tf.min.js"></script><script src="/tfjs/tf-backend-wasm.min.js"></script><body>bench</body>`;
const workerScript = `
import * as tensile from '/tensile/tensile.js';
import { tensileInference, tensileThroughput } from '/workload.js';
self.onmessage = async ({ data }) => {
  try {
    const info = await tensile.ready({ threads: data.threads });
    const measure = data.task === 'train' ? tensileThroughput : tensileInference;
    const rate = measure(tensile, data.workload, () => performance.now());
    self.postMessage({ rate, info, workerChunks: tensile.workerChunksRun() });
  } catch (error) {
    self.postMessage({ error: String(error && error.stack || error) });
  }
};`;

function file(directory: string, name: string): Uint8Array | null {
  if (!/^[\w.-]+$/.test(name)) return null;
  const full = path.join(directory, name);
  return fs.existsSync(full) ? fs.readFileSync(full) : null;
}

const server = http.createServer((request, response) => {
  const pathname = new URL(request.url ?? '/', 'http://127.0.0.1').pathname;
  const send = (type: string, body: string | Uint8Array | null) => {
    response.writeHead(body === null ? 404 : 200, {
      'content-type': type,
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-embedder-policy': 'require-corp',
    });
    response.end(body ?? '');
  };
  const typeOf = (name: string) => (name.endsWith('.wasm') ? 'application/wasm' : 'text/javascript');
  const name = pathname.split('/').pop() ?? '';
  if (pathname === '/') return send('text/html', pageHtml);
  if (pathname === '/bench-worker.js') return send('text/javascript', workerScript);
  if (pathname === '/workload.js')
    return send('text/javascript', fs.readFileSync(path.join(root, 'dist', 'bench', 'browser-workload.js')));
  if (pathname.startsWith('/tensile/')) return send(typeOf(name), file(bundleDirectory, name));
  if (pathname === '/tfjs/tf.min.js') return send(typeOf(name), file(tfjsDirectory, name));
  if (pathname.startsWith('/tfjs/')) return send(typeOf(name), file(tfjsWasmDirectory, name));
  return send('text/plain', null);
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

let browser: Browser | undefined;
try {
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true });
  const outside: string[] = [];
  const openPage = async () => {
    const context = await browser!.newContext();
    await context.route('**/*', (route) => {
      if (route.request().url().startsWith(origin)) return route.continue();
      outside.push(route.request().url());
      return route.abort();
    });
    const page = await context.newPage();
    await page.goto(`${origin}/`);
    return page;
  };

  for (const [task, threads] of tasks.flatMap((task) =>
    (engines.has('page') ? threadCounts : []).map((threads) => [task, threads] as const),
  )) {
    const page = await openPage();
    const answer = (await page.evaluate(
      (message) =>
        new Promise<unknown>((resolve) => {
          const worker = new (
            globalThis as unknown as { Worker: new (u: string, o: object) => never }
          ).Worker('/bench-worker.js', { type: 'module' }) as unknown as {
            onmessage: (e: { data: unknown }) => void;
            postMessage(m: unknown): void;
          };
          worker.onmessage = ({ data }) => resolve(data);
          worker.postMessage(message);
        }),
      { threads, workload, task },
    )) as { rate?: number; error?: string; info?: { build: string; threads: number } };
    if (answer.error !== undefined) throw new Error(`the page failed: ${answer.error}`);
    rows.push({
      task,
      engine: 'page',
      backend: `tensile wasm (${answer.info!.build})`,
      threads,
      samplesPerSecond: answer.rate!,
    });
    log(`${task}  page  tensile wasm, ${threads} thread(s): ${answer.rate!.toFixed(0)} samples/s`);
    await page.context().close();
  }

  const tfjsRun = async (backend: 'wasm' | 'cpu' | 'webgl', threads: number, load: Workload, task: Task) => {
    const page = await openPage();
    try {
      return (await page.evaluate(
        async ({ backend, threads, load, task }) => {
          type Tf = {
            wasm: {
              setWasmPaths(prefix: string): void;
              setThreadsCount(n: number): void;
              getThreadsCount(): number;
            };
            setBackend(name: string): Promise<boolean>;
            ready(): Promise<void>;
            getBackend(): string;
            env(): { getAsync(flag: string): Promise<unknown> };
          };
          const tf = (globalThis as unknown as { tf: Tf }).tf;
          if (backend === 'wasm') {
            tf.wasm.setWasmPaths('/tfjs/');
            tf.wasm.setThreadsCount(threads);
          }
          if (!(await tf.setBackend(backend))) return { error: `tf.setBackend('${backend}') failed` };
          await tf.ready();
          let detail = tf.getBackend();
          if (backend === 'wasm') {
            const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
            const multithread = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
            detail += `${simd ? ' simd' : ''}${multithread ? ` threaded (${tf.wasm.getThreadsCount()})` : ''}`;
          }
          type Measure = (tf: unknown, w: unknown, now: () => number) => Promise<number>;
          const workloads = (await import('/workload.js' as string)) as {
            tfjsThroughput: Measure;
            tfjsInference: Measure;
          };
          const measure = task === 'train' ? workloads.tfjsThroughput : workloads.tfjsInference;
          const rate = await measure(tf, load, () => performance.now());
          return { rate, detail };
        },
        { backend, threads, load, task },
      )) as { rate?: number; detail?: string; error?: string };
    } catch (error) {
      return { error: (error as Error).message.split('\n')[0] };
    } finally {
      await page.context().close();
    }
  };

  for (const task of engines.has('tfjs') ? tasks : []) {
    const runs = [
      ...threadCounts.map((threads) => ({ backend: 'wasm' as const, threads, load: workload })),
      { backend: 'cpu' as const, threads: 1, load: slowWorkload },
      { backend: 'webgl' as const, threads: 1, load: slowWorkload },
    ];
    for (const { backend, threads, load } of runs) {
      const answer = await tfjsRun(backend, threads, load, task);
      const name = backend === 'webgl' ? 'webgl, software rasteriser' : (answer.detail ?? backend);
      rows.push({
        task,
        engine: 'tfjs',
        backend: `tfjs ${backend === 'wasm' ? name : backend}${backend === 'webgl' ? ' (software rasteriser)' : ''}`,
        threads,
        samplesPerSecond: answer.rate ?? null,
        ...(answer.error ? { note: answer.error } : {}),
      });
      log(`${task}  tfjs  ${name}, ${threads} thread(s): ${answer.rate?.toFixed(0) ?? answer.error}`);
    }
  }
  if (outside.length > 0) throw new Error(`requests beyond 127.0.0.1: ${outside.join(', ')}`);
} finally {
  await browser?.close();
  server.close();
}

// --- Report --------------------------------------------------------------------------------------
const shipped = fs.readdirSync(bundleDirectory).filter((name) => /\.(js|wasm)$/.test(name));
const gzipped = (name: string) =>
  zlib.gzipSync(fs.readFileSync(path.join(bundleDirectory, name)), { level: 9 }).byteLength;
const bundle = Object.fromEntries(shipped.map((name) => [name, gzipped(name)]));
const pageLoad = ['tensile.js', 'kernel-worker.js', 'kernels-relaxed.wasm'].reduce(
  (sum, name) => sum + (bundle[name] ?? 0),
  0,
);

if (values.json) {
  console.log(JSON.stringify({ workload, rows, bundleGzippedBytes: bundle }, null, 2));
} else {
  const node = (task: Task, threads: number) =>
    rows.find((row) => row.task === task && row.engine === 'node' && row.threads === threads)
      ?.samplesPerSecond;
  console.log('');
  console.log(
    `seed CNN training, channels ${channels.join(', ')}, batch ${workload.batchSize}, ` +
      `${workload.steps} timed steps after ${workload.warmupSteps} (tfjs cpu and webgl: ${slowWorkload.steps} after ${slowWorkload.warmupSteps}); Chromium ${browser?.version() ?? ''}`,
  );
  console.log('| task | engine | backend | threads | samples/s | ÷ Node wasm, same task and threads |');
  console.log('|---|---|---|---:|---:|---:|');
  for (const row of rows) {
    const base = node(row.task, row.threads);
    const ratio =
      row.samplesPerSecond !== null && base !== undefined && base !== null
        ? (row.samplesPerSecond / base).toFixed(2)
        : '';
    const rate =
      row.samplesPerSecond === null ? `did not run: ${row.note ?? ''}` : row.samplesPerSecond.toFixed(0);
    console.log(`| ${row.task} | ${row.engine} | ${row.backend} | ${row.threads} | ${rate} | ${ratio} |`);
  }
  console.log('');
  console.log(
    `bundle, gzipped: ${Object.entries(bundle)
      .map(([name, bytes]) => `${name} ${(bytes / 1024).toFixed(1)} KiB`)
      .join(
        ', ',
      )}; a page loads ${(pageLoad / 1024).toFixed(1)} KiB (tensile.js, kernel-worker.js, one kernels build)`,
  );
}
