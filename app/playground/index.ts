/**
 * The playground: a page that trains the seed CNN on MNIST in the browser tab with tensile's browser
 * build (dist/browser, `npm run build:browser`), draws live loss and accuracy curves with samples/s,
 * and predicts a digit drawn by hand, with the DL0009 (max against average pooling) and DL0011
 * (Flatten + FC against GAP + FC heads) comparisons computed on the drawing.
 *
 * This server only hands out files: the page (playground/ at the package root), the bundle, and the bundled MNIST digits
 * as bytes (/mnist.bin: 784 pixel bytes per image, then one label byte per image). Every response is
 * cross-origin isolated (COOP/COEP), so the page's training worker can run the wasm kernels on
 * several threads, and the page loads nothing from beyond this server (a CSP of 'self' says so).
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { loadMnist } from '../../src/index.js';

export interface PlaygroundOptions {
  /** Address to listen on (default 127.0.0.1; only loopback addresses are accepted). */
  host?: string;
  /** Port (default 0: a free one). */
  port?: number;
  /** Where the browser build is (default dist/browser of this package). */
  bundleDirectory?: string;
}

export interface PlaygroundServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** dist/app/playground/index.js → the package root. */
const packageRoot = fileURLToPath(new URL('../../../', import.meta.url));
/** The page's own files, beside dashboard/ at the package root (shipped as they are, not compiled). */
const staticDirectory = `${packageRoot}playground/`;
const defaultBundleDirectory = `${packageRoot}dist/browser/`;

/** The files served, by path: nothing else of the disk is reachable. */
const staticFiles: Record<string, string> = {
  '/': 'index.html',
  '/index.html': 'index.html',
  '/playground.js': 'playground.js',
  '/playground.css': 'playground.css',
  '/train-worker.js': 'train-worker.js',
};
const bundleFiles = ['tensile.js', 'kernel-worker.js', 'kernels.wasm', 'kernels-relaxed.wasm'];

const contentTypes: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  wasm: 'application/wasm',
};

/** Cross-origin isolation (for threads) and a policy that allows this server alone. */
const securityHeaders: Record<string, string> = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'cross-origin-resource-policy': 'same-origin',
  'content-security-policy':
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; img-src 'self' data:; " +
    "style-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

const loopback = new Set(['127.0.0.1', '::1', 'localhost']);

/** MNIST as the page reads it: n·784 pixel bytes, then n label bytes (made once per server). */
function mnistBytes(): Uint8Array {
  const { images, labels, count } = loadMnist();
  const bytes = new Uint8Array(count * 785);
  for (let i = 0; i < count * 784; i++) bytes[i] = Math.round(images[i]! * 255);
  for (let i = 0; i < count; i++) bytes[count * 784 + i] = labels[i]!;
  return bytes;
}

/** Starts the playground's server; resolves once it listens. */
export async function startPlayground(options: PlaygroundOptions = {}): Promise<PlaygroundServer> {
  const host = options.host ?? '127.0.0.1';
  if (!loopback.has(host)) {
    throw new Error(
      `the playground listens on this machine only (127.0.0.1, ::1 or localhost), not '${host}'`,
    );
  }
  const bundleDirectory = options.bundleDirectory ?? defaultBundleDirectory;
  for (const file of bundleFiles) {
    if (!fs.existsSync(`${bundleDirectory}/${file}`))
      throw new Error(`${bundleDirectory}/${file} is missing; run \`npm run build:browser\` to build it`);
  }
  let mnist: Uint8Array | null = null;
  const server = http.createServer((request, response) => {
    const send = (status: number, type: string, body: string | Uint8Array) => {
      response.writeHead(status, { ...securityHeaders, 'content-type': type });
      response.end(request.method === 'HEAD' ? undefined : body);
    };
    // A page from elsewhere that renamed itself to this address (DNS rebinding) gets nothing.
    const hostName = (request.headers.host ?? '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
    if (!loopback.has(hostName)) return send(403, 'text/plain', 'forbidden host\n');
    if (request.method !== 'GET' && request.method !== 'HEAD') return send(405, 'text/plain', 'GET only\n');
    const pathname = new URL(request.url ?? '/', 'http://127.0.0.1').pathname;
    try {
      const staticFile = staticFiles[pathname];
      if (staticFile !== undefined) {
        const type = contentTypes[staticFile.split('.').pop()!]!;
        return send(200, type, fs.readFileSync(`${staticDirectory}${staticFile}`));
      }
      const bundleFile = pathname.startsWith('/tensile/') ? pathname.slice('/tensile/'.length) : '';
      if (bundleFiles.includes(bundleFile)) {
        const type = contentTypes[bundleFile.split('.').pop()!]!;
        return send(200, type, fs.readFileSync(`${bundleDirectory}/${bundleFile}`));
      }
      if (pathname === '/mnist.bin') {
        mnist ??= mnistBytes();
        return send(200, 'application/octet-stream', mnist);
      }
      return send(404, 'text/plain', 'not found\n');
    } catch (error) {
      return send(500, 'text/plain', `${(error as Error).message}\n`);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host === '::1' ? '[::1]' : host;
  return {
    url: `http://${urlHost}:${port}/`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
