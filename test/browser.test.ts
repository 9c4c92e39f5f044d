/**
 * The browser build in a real browser (Debian's Chromium through playwright-core), served from
 * 127.0.0.1 by a node:http server with the cross-origin isolation headers (COOP/COEP) where a test
 * wants threads: the bundle loads with no request beyond 127.0.0.1; the seeded training recipe of
 * ./helpers/browser-recipe.ts gives, in a Web Worker, the same model file bit for bit as Node's wasm
 * backend with the same thread count (1 thread in a page that is not isolated, 2 in one that is); a
 * model saved in the page loads in Node and the reverse, predicting the same bits. A screenshot goes
 * to test-artifacts/ (git-ignored).
 *
 * Builds dist/browser first (scripts/build-browser.mjs). Without /usr/bin/chromium the browser tests
 * skip with a message, unless the CI environment variable is set: in CI a missing browser is a failure.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { artifacts, chromiumPath, chromiumSkip, requireChromium } from './helpers/chromium.js';
import { chromium, type Browser, type Page } from 'playwright-core';
import * as tensile from '../src/index.js';
import { setWasmThreads, wasmKernelBuild } from '../src/backend/wasm/index.js';
import { predictRecipe, trainRecipe, type RecipeOptions } from './helpers/browser-recipe.js';

const skip = chromiumSkip;
const root = path.resolve('.');
const recipeFile = path.join(root, 'dist', 'test', 'helpers', 'browser-recipe.js');
const recipe: RecipeOptions = { seed: 7, samples: 48, batchSize: 16 };

/** The page's training worker: runs the recipe on the bundle and posts back the model file's bytes. */
const workerScript = `
import * as tensile from './tensile.js';
import { trainRecipe, predictRecipe } from './recipe.js';
self.onmessage = async ({ data }) => {
  try {
    const info = await tensile.ready({ threads: data.threads });
    const started = performance.now();
    const model = trainRecipe(tensile, data.recipe);
    const seconds = (performance.now() - started) / 1000;
    let logits = null;
    if (data.modelUrl) {
      const response = await fetch(data.modelUrl);
      logits = predictRecipe(tensile, new Uint8Array(await response.arrayBuffer()));
    }
    self.postMessage({ info, model: Array.from(model), logits: logits && Array.from(logits), seconds, workerChunks: tensile.workerChunksRun() });
  } catch (error) {
    self.postMessage({ error: String(error && error.stack || error) });
  }
};`;

/** The page: says where it stands; runTraining() drives the worker. */
const pageHtml = `<!doctype html><html><head><meta charset="utf-8"><title>tensile browser test</title></head>
<body style="font: 16px sans-serif; margin: 24px"><h1>tensile in the browser</h1><pre id="status">loading</pre>
<script type="module">
import * as tensile from './tensile.js';
const status = document.getElementById('status');
// The bundle on the main thread: one thread, a forward pass.
const info = await tensile.ready();
const x = tensile.zeros([1, 1, 28, 28]);
const model = tensile.seedCnn({ channels: [8, 16] });
const out = tensile.predict(model, x);
status.textContent = 'main thread: ' + JSON.stringify(info) + ' logits shape ' + JSON.stringify(out.shape) +
  '\\ncrossOriginIsolated: ' + crossOriginIsolated;
window.runTraining = (message) => new Promise((resolve) => {
  const worker = new Worker('./train-worker.js', { type: 'module' });
  worker.onmessage = ({ data }) => {
    worker.terminate();
    status.textContent += '\\nworker: ' + (data.error ?? JSON.stringify(data.info) + ' trained in ' + data.seconds.toFixed(2) + ' s');
    resolve(data);
  };
  worker.postMessage(message);
});
window.mainReady = true;
</script></body></html>`;

interface TrainingAnswer {
  info?: { build: string; threads: number; threadsPossible: boolean };
  model?: number[];
  logits?: number[] | null;
  seconds?: number;
  /** Chunks run by kernel workers (not the calling thread) during the run. */
  workerChunks?: number;
  error?: string;
}

describe('the browser build in Chromium', { skip, timeout: 600_000 }, () => {
  let server: http.Server;
  let origin = '';
  let browser: Browser;
  let directory = '';
  let bundleDirectory = '';
  const outsideRequests: string[] = [];
  /** A model file Node wrote, served to the page as /node-model.safetensors. */
  let nodeModel: Uint8Array = new Uint8Array();

  before(async () => {
    requireChromium();
    directory = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-browser-'));
    // A bundle of its own, so that other tests building dist/browser at the same time do not race it.
    bundleDirectory = path.join(directory, 'bundle');
    execFileSync(
      process.execPath,
      [path.join(root, 'scripts', 'build-browser.mjs'), `--outdir=${bundleDirectory}`],
      {
        stdio: 'pipe',
      },
    );
    server = http.createServer((request, response) => {
      const url = new URL(request.url ?? '/', 'http://127.0.0.1');
      // Everything under /isolated/ is the same site with the isolation headers, workers and wasm too.
      const isolated = url.pathname.startsWith('/isolated/');
      const headers: Record<string, string> = { 'cache-control': 'no-store' };
      if (isolated) {
        headers['cross-origin-opener-policy'] = 'same-origin';
        headers['cross-origin-embedder-policy'] = 'require-corp';
      }
      const send = (type: string, body: string | Uint8Array) => {
        response.writeHead(200, { ...headers, 'content-type': type });
        response.end(body);
      };
      const name = url.pathname.replace(/^\/(isolated\/)?/, '');
      if (name === '' || name === 'index.html') return send('text/html', pageHtml);
      if (name === 'train-worker.js') return send('text/javascript', workerScript);
      if (name === 'recipe.js') return send('text/javascript', fs.readFileSync(recipeFile));
      if (name === 'node-model.safetensors') return send('application/octet-stream', nodeModel);
      if (/^[a-z-]+\.(js|wasm)$/.test(name) && fs.existsSync(path.join(bundleDirectory, name))) {
        const type = name.endsWith('.wasm') ? 'application/wasm' : 'text/javascript';
        return send(type, fs.readFileSync(path.join(bundleDirectory, name)));
      }
      response.writeHead(404, headers);
      response.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await chromium.launch({ executablePath: chromiumPath, headless: true });
  });

  after(async () => {
    await browser?.close();
    server?.close();
    setWasmThreads(1);
    if (directory !== '') fs.rmSync(directory, { recursive: true, force: true });
  });

  /** A page at origin (isolated or not) that refuses and records any request beyond 127.0.0.1. */
  async function openPage(isolated: boolean): Promise<Page> {
    const context = await browser.newContext();
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(origin)) return route.continue();
      outsideRequests.push(url);
      return route.abort();
    });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(`${origin}/${isolated ? 'isolated/' : ''}`);
    await page.waitForFunction('window.mainReady === true', undefined, { timeout: 60_000 }).catch(() => {
      throw new Error(`the page did not load the bundle: ${errors.join('; ')}`);
    });
    return page;
  }

  /** The recipe on Node's wasm backend with `threads` threads: the model file's bytes. */
  function trainInNode(threads: number): Uint8Array {
    const previous = tensile.getBackend();
    tensile.setBackend(tensile.backendByName('wasm'));
    setWasmThreads(threads);
    try {
      return trainRecipe(tensile, recipe);
    } finally {
      tensile.setBackend(previous);
    }
  }

  async function trainInPage(page: Page, threads: number, modelUrl?: string): Promise<TrainingAnswer> {
    const answer = (await page.evaluate(
      (message) =>
        (globalThis as unknown as { runTraining(m: unknown): Promise<unknown> }).runTraining(message),
      { threads, recipe, modelUrl },
    )) as TrainingAnswer;
    assert.equal(answer.error, undefined, answer.error);
    return answer;
  }

  test('loads with nothing fetched beyond 127.0.0.1, and trains on one thread in a page that is not isolated to the same bits as Node', async () => {
    const page = await openPage(false);
    assert.equal(await page.evaluate('crossOriginIsolated'), false);
    const answer = await trainInPage(page, 1);
    assert.equal(answer.workerChunks, 0);
    assert.deepEqual(answer.info, { build: wasmKernelBuild(), threads: 1, threadsPossible: false });
    const expected = trainInNode(1);
    assert.ok(
      Buffer.from(answer.model!).equals(Buffer.from(expected)),
      'the page trained other weights than Node',
    );
    await page.screenshot({ path: path.join(artifacts, 'browser-one-thread.png') });
    assert.deepEqual(outsideRequests, []);
    await page.context().close();
  });

  test('trains on two threads (Web Workers, cross-origin isolated) to the same bits as Node on two threads', async () => {
    const page = await openPage(true);
    assert.equal(await page.evaluate('crossOriginIsolated'), true);
    const answer = await trainInPage(page, 2);
    assert.equal(answer.info!.threads, 2);
    assert.equal(answer.info!.threadsPossible, true);
    assert.ok(answer.workerChunks! > 0, 'the kernel workers ran no chunk: the page trained on one thread');
    const expected = trainInNode(2);
    assert.ok(
      Buffer.from(answer.model!).equals(Buffer.from(expected)),
      'the page trained other weights than Node',
    );
    await page.screenshot({ path: path.join(artifacts, 'browser-two-threads.png') });
    assert.deepEqual(outsideRequests, []);
    await page.context().close();
  });

  test('images come in from a canvas, ImageData and an ImageBitmap (scaled, grey, inverted)', async () => {
    const page = await openPage(false);
    const result = await page.evaluate(async () => {
      type Api = {
        imageToTensor(
          image: unknown,
          options?: { width?: number; height?: number; channels?: 1 | 3; invert?: boolean },
        ): { shape: number[]; data: Float32Array };
      };
      const tensileModule = (await import('./tensile.js' as string)) as Api;
      type Context = {
        fillStyle: string;
        fillRect(x: number, y: number, w: number, h: number): void;
        getImageData(x: number, y: number, w: number, h: number): unknown;
      };
      const scope = globalThis as unknown as {
        OffscreenCanvas: new (w: number, h: number) => { getContext(kind: '2d'): Context };
        createImageBitmap(source: unknown): Promise<unknown>;
      };
      // 4×2: the left half white, the right half left transparent (black).
      const canvas = new scope.OffscreenCanvas(4, 2);
      const context = canvas.getContext('2d');
      context.fillStyle = '#fff';
      context.fillRect(0, 0, 2, 2);
      const grey = tensileModule.imageToTensor(canvas, { channels: 1 });
      const rgb = tensileModule.imageToTensor(context.getImageData(0, 0, 4, 2));
      const bitmap = await scope.createImageBitmap(canvas);
      const scaled = tensileModule.imageToTensor(bitmap, { width: 2, height: 1, channels: 1, invert: true });
      const plain = (t: { shape: number[]; data: Float32Array }) => ({
        shape: t.shape,
        data: Array.from(t.data),
      });
      return { grey: plain(grey), rgb: plain(rgb), scaled: plain(scaled) };
    });
    assert.deepEqual(result.grey, { shape: [1, 1, 2, 4], data: [1, 1, 0, 0, 1, 1, 0, 0] });
    assert.deepEqual(result.rgb.shape, [1, 3, 2, 4]);
    assert.deepEqual(
      result.rgb.data,
      [1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0],
    );
    assert.deepEqual(result.scaled, { shape: [1, 1, 1, 2], data: [0, 1] });
    await page.context().close();
  });

  test('a model saved in the page loads in Node, and one saved in Node loads in the page, predicting the same bits', async () => {
    // Node → page: a file written by saveModel, fetched and loaded by the page.
    const previous = tensile.getBackend();
    tensile.setBackend(tensile.backendByName('wasm'));
    setWasmThreads(1);
    try {
      const nodeFile = path.join(directory, 'node.safetensors');
      const { model } = tensile.modelFromBytes(trainInNode(1));
      tensile.saveModel(model, nodeFile, { inputShape: [1, 28, 28] });
      nodeModel = fs.readFileSync(nodeFile);
      const page = await openPage(false);
      const answer = await trainInPage(page, 1, `${origin}/node-model.safetensors`);
      const nodeLogits = predictRecipe(tensile, nodeModel);
      assert.ok(
        Buffer.from(answer.logits!).equals(Buffer.from(nodeLogits)),
        'the page predicts otherwise than Node',
      );
      // Page → Node: the page's model file, written to disk and read back with loadModel.
      const pageFile = path.join(directory, 'page.safetensors');
      fs.writeFileSync(pageFile, Uint8Array.from(answer.model!));
      const loaded = tensile.loadModel(pageFile);
      assert.deepEqual(loaded.extras, { inputShape: [1, 28, 28] });
      const pageLogits = predictRecipe(tensile, fs.readFileSync(pageFile));
      const trainedHere = predictRecipe(tensile, trainInNode(1));
      assert.ok(Buffer.from(pageLogits).equals(Buffer.from(trainedHere)));
      await page.context().close();
    } finally {
      tensile.setBackend(previous);
    }
  });
});
