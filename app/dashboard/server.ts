/**
 * The dashboard's web server (node:http, no framework): the page from dashboard/, a JSON API over the
 * run store and the study storage, and Server-Sent Events that tell the page when something changed.
 *
 * Live updates: the server polls the stores' change tokens (every half second while a page is
 * connected) and sends an event when one moves; the page then asks only for what is new (metric points
 * after the last id it holds). Polling the database rather than being told by the trainer is what lets
 * a training in another process (or on another machine, with PostgreSQL) show up live.
 *
 * API (all GET, JSON unless noted):
 *   /api/overview                    runs (newest first) and studies
 *   /api/runs/:id                    a run with its artifacts
 *   /api/runs/:id/metrics?after=N    metric points with ids above N, as columns per metric
 *                                    (&compact=1: positions and values only, rounded, as the page draws them;
 *                                    &maxPoints=N: each series thinned to about N points, spikes kept)
 *   /api/studies/:id                 a study as plot-ready columns: trials, parameters, every trial's
 *                                    reported values, and parameter importance (src/tune/importance.ts)
 *   /api/figures                     explain topics with their figures
 *   /api/artifacts/:id               an artifact's stored content (its media type)
 *   /api/events                      text/event-stream of {"runs": token, "studies": token}
 *
 * Security (the data is private: configurations, errors, paths; the page must not be readable from
 * another origin, and nothing stored may run in the page's origin):
 * - Host check: a request whose Host header is not one of this dashboard's names (localhost,
 *   127.0.0.1, [::1] or the bound address, with the bound port; the machine's interface addresses
 *   when bound to every interface; names given in `allowHosts`) is refused with 421. This is what
 *   stops DNS rebinding: a page on evil.example whose name is made to point at 127.0.0.1 still sends
 *   `Host: evil.example`.
 * - Every response carries a strict Content-Security-Policy (scripts, styles, images and connections
 *   from this origin only; no inline script or style, no plugins, no <base>, no framing),
 *   `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer` and
 *   `Cross-Origin-Resource-Policy: same-origin`.
 * - Artifacts are served with `Content-Security-Policy: sandbox` (an opaque origin, no script), and
 *   as a download (`Content-Disposition: attachment`) unless they are a raster image: an HTML or SVG
 *   artifact opened from the dashboard never runs in its origin. (The page's own <img> still shows SVG
 *   figures: an image element ignores Content-Disposition and never runs an SVG's script.)
 * - Bound beyond loopback, every request needs the access token (generated when none is given):
 *   `?token=` once (it sets an HttpOnly SameSite=Strict cookie), or `Authorization: Bearer`; 401
 *   otherwise. A dashboard on loopback needs one only when given one.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import {
  currentOutage,
  failLostRuns,
  isConnectionError,
  RunNotFoundError,
  StorageUnavailableError,
  type RunStore,
  type Storage,
} from '../../src/index.js';
import { compactMetrics, decimateMetrics, explainTopics, overview, studyView } from './data.js';

export interface DashboardOptions {
  runs: RunStore;
  /** Study storage (null: the studies tab stays empty). */
  studies?: Storage | null;
  /** Default 127.0.0.1: the dashboard is for this machine unless asked otherwise. */
  host?: string;
  /** Default 6006 (TensorBoard's); 0 picks a free port. */
  port?: number;
  /** Milliseconds between change checks while a page listens (default 500). */
  pollMilliseconds?: number;
  /** Folder with index.html and the page's scripts (default: the package's dashboard/). */
  dashboardDirectory?: string;
  /**
   * Further names the dashboard answers to (the Host header), besides localhost, 127.0.0.1, [::1]
   * and the bound address: 'dashboard.lan' (with any port: behind a reverse proxy the port is the
   * proxy's) or 'dashboard.lan:8080' (that port only).
   */
  allowHosts?: readonly string[];
  /**
   * The access token every request must carry (see the file's comment). Default: none on a loopback
   * address, a generated one (`DashboardServer.token`) when bound beyond loopback.
   */
  token?: string;
}

export interface DashboardServer {
  /** http://host:port/ */
  readonly url: string;
  readonly port: number;
  /** The token requests must carry, or null when none is needed. */
  readonly token: string | null;
  /** Whether it listens beyond loopback (on an address other machines may reach). */
  readonly exposed: boolean;
  close(): Promise<void>;
}

/** The package's dashboard/ folder (this file is app/dashboard/server.ts, compiled to dist/app/dashboard/server.js). */
export function defaultDashboardDirectory(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.resolve(here, '../../../dashboard'), path.resolve(here, '../../dashboard')];
  return candidates.find((candidate) => fs.existsSync(path.join(candidate, 'index.html'))) ?? candidates[0]!;
}

const mediaTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The page's policy: everything from this origin, nothing inline, no plugins, no framing. */
export const pageSecurityPolicy = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  // data: for the empty favicon (index.html) only; an image cannot run script.
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** An artifact's policy: an opaque origin with no script, no requests, not framed. */
export const artifactSecurityPolicy = "sandbox; default-src 'none'; img-src 'self'; frame-ancestors 'none'";

/** Media types shown in place (decoded as pixels, nothing in them can run); anything else downloads. */
const inlineArtifactTypes = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/avif']);

/** Whether `address` (an IP address or 'localhost') is this machine only. */
export function isLoopbackAddress(address: string): boolean {
  const plain = address.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (plain === 'localhost') return true;
  if (isIP(plain) === 4) return plain.startsWith('127.');
  if (isIP(plain) === 6) return plain === '::1' || /^::ffff:127\./.test(plain);
  return false;
}

/** A name and optional port from a Host header or an `allowHosts` entry; null when malformed. */
function parseHost(text: string): { name: string; port: number | null } | null {
  const match = /^(\[[0-9a-f:.]+\]|[a-z0-9._-]+)(?::(\d{1,5}))?$/i.exec(text);
  if (match === null) return null;
  const port = match[2] === undefined ? null : Number(match[2]);
  if (port !== null && port > 65535) return null;
  return { name: match[1]!.toLowerCase(), port };
}

/** An address as a Host header names it (IPv6 in brackets). */
function hostName(address: string): string {
  return isIP(address) === 6 ? `[${address.toLowerCase()}]` : address.toLowerCase();
}

/** A value from a request shown in a one-line message: printable ASCII, at most 100 characters. */
function shown(text: string): string {
  const clean = text.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > 100 ? `${clean.slice(0, 100)}…` : clean;
}

/** Where a dashboard listens, as the Host check needs it. */
export interface DashboardBinding {
  /** The bound address: '127.0.0.1', '::1', '0.0.0.0' (every interface), '192.168.1.5', ... */
  address: string;
  port: number;
  /** Further names (`DashboardOptions.allowHosts`): NAME with any port, or NAME:PORT. */
  allowHosts?: readonly string[];
}

/** This machine's interface addresses, as a Host header names them. */
function interfaceAddresses(): string[] {
  return Object.values(os.networkInterfaces())
    .flat()
    .flatMap((entry) => (entry === undefined ? [] : [hostName(entry.address)]));
}

/**
 * Whether a Host header names the dashboard at `binding`: localhost, 127.0.0.1, [::1] or the bound
 * address with the bound port (port 80 may be left out); bound to every interface, any of this
 * machine's addresses with that port (`addresses`, looked up at each call: they may change); or an
 * allowed name. Names compare without regard to case. A DNS-rebinding page sends its own name, so
 * it fails here.
 */
export function isDashboardHost(
  header: string | undefined,
  binding: DashboardBinding,
  addresses: () => string[] = interfaceAddresses,
): boolean {
  const host = header === undefined ? null : parseHost(header);
  if (host === null) return false;
  const port = host.port ?? 80;
  for (const entry of binding.allowHosts ?? []) {
    const allowed = parseHost(entry);
    if (allowed !== null && allowed.name === host.name && (allowed.port ?? port) === port) return true;
  }
  if (port !== binding.port) return false;
  if (['localhost', '127.0.0.1', '[::1]', hostName(binding.address)].includes(host.name)) return true;
  const everyInterface = binding.address === '0.0.0.0' || binding.address === '::';
  return everyInterface && addresses().includes(host.name);
}

/** The token a dashboard bound to `address` requires: the one given; else none on loopback, a generated one beyond. */
export function dashboardToken(address: string, given: string | undefined): string | null {
  return given ?? (isLoopbackAddress(address) ? null : generateDashboardToken());
}

/** A random access token: 32 characters of base64url (192 bits). */
export function generateDashboardToken(): string {
  return randomBytes(24).toString('base64url');
}

/** Throws unless `token` can be typed in a URL and a header and is long enough to guess badly. */
export function checkDashboardToken(token: string): void {
  if (!/^[\x21-\x7e]+$/.test(token))
    throw new Error('the dashboard token must be printable ASCII without spaces');
  if (token.length < 16)
    throw new Error(
      `the dashboard token must have at least 16 characters (got ${token.length}); leave it out to have one generated`,
    );
}

/** Throws unless `name` is a host name, an IP address (IPv6 in brackets), either with a port. */
export function checkAllowedHost(name: string): void {
  if (parseHost(name) === null)
    throw new Error(
      `'${shown(name)}' is not a host name: give a name or address as the browser's address bar shows it (dashboard.lan, 192.168.1.5:6006, [fd00::5])`,
    );
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** A one-line text answer (the refusals: 401, 405, 421). */
function sendText(response: http.ServerResponse, status: number, text: string): void {
  response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  response.end(`${text}\n`);
}

function sendJson(response: http.ServerResponse, value: unknown): void {
  const body = JSON.stringify(value);
  response.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  response.end(body);
}

function idFrom(text: string | undefined, what: string): number {
  const id = Number(text);
  if (!Number.isSafeInteger(id) || id < 0) throw new HttpError(400, `bad ${what} id '${text}'`);
  return id;
}

async function studiesToken(studies: Storage | null): Promise<string> {
  if (studies === null) return '';
  const list = await studies.listStudies();
  return JSON.stringify(list.map((s) => [s.id, s.trialCounts, s.bestValue]));
}

/** How long an API request waits on a database that is down before it is answered 503. */
const unavailableAfterMilliseconds = 2000;

/** 503 with a JSON body saying the database is unavailable (the page shows it and tries again). */
function sendUnavailable(response: http.ServerResponse, message: string): void {
  response.writeHead(503, { 'content-type': 'application/json; charset=utf-8', 'retry-after': '2' });
  response.end(JSON.stringify({ error: `database unavailable: ${message}`, unavailable: true }));
}

/**
 * Starts the dashboard. Resolves once it listens.
 *
 * @example
 * const server = await startDashboard({ runs: await openRunStore('sqlite:./tensile.db'), port: 0 });
 * console.log(server.url);
 */
export async function startDashboard(options: DashboardOptions): Promise<DashboardServer> {
  const runs = options.runs;
  const studies = options.studies ?? null;
  const directory = options.dashboardDirectory ?? defaultDashboardDirectory();
  const pollMilliseconds = options.pollMilliseconds ?? 500;
  for (const name of options.allowHosts ?? []) checkAllowedHost(name);
  if (options.token !== undefined) checkDashboardToken(options.token);
  // Known once listening (see the listen callback below).
  let boundPort = 0;
  let boundName = '';
  let binding: DashboardBinding = { address: '', port: 0 };
  let token: string | null = null;
  let cookieName = '';
  const listeners = new Set<http.ServerResponse>();
  let tokens = { runs: '', studies: '' };
  let timer: NodeJS.Timeout | null = null;
  let polling = false;
  let tick = 0;
  // Runs whose process was killed end as failed (src/track/lost-runs.ts): checked at most every few seconds.
  let lastLostCheck = 0;
  const endLostRuns = async () => {
    if (Date.now() - lastLostCheck < 5000) return;
    lastLostCheck = Date.now();
    await failLostRuns(runs).catch(() => []);
  };

  const currentTokens = async () => ({
    runs: await runs.changeToken(),
    // Study listings cost more (they count trials): every other tick.
    studies: tick++ % 2 === 0 || tokens.studies === '' ? await studiesToken(studies) : tokens.studies,
  });

  const poll = async () => {
    if (polling) return;
    polling = true;
    try {
      await endLostRuns();
      const next = await currentTokens();
      if (next.runs !== tokens.runs || next.studies !== tokens.studies) {
        tokens = next;
        const message = `data: ${JSON.stringify(tokens)}\n\n`;
        for (const listener of listeners) listener.write(message);
      }
    } catch {
      // A busy database answers next time; the page keeps what it has.
    } finally {
      polling = false;
    }
  };

  const serveStatic = (name: string, response: http.ServerResponse) => {
    if (!/^[a-z][a-z0-9-]*\.(html|js|css|svg)$/.test(name))
      throw new HttpError(404, `no such file '${name}'`);
    const file = path.join(directory, name);
    if (!fs.existsSync(file)) throw new HttpError(404, `no such file '${name}'`);
    response.writeHead(200, { 'content-type': mediaTypes[path.extname(name)]!, 'cache-control': 'no-cache' });
    response.end(fs.readFileSync(file));
  };

  /** Compares in constant time (both sides hashed to the same length first). */
  const same = (a: string, b: string) => timingSafeEqual(digest(a), digest(b));

  /**
   * Whether the request carries the token: `?token=` (then a cookie remembers it: the page's own
   * requests and its event stream send it), `Authorization: Bearer`, or that cookie.
   */
  const authorized = (request: http.IncomingMessage, url: URL, response: http.ServerResponse): boolean => {
    if (token === null) return true;
    // The cookie holds a hash of the token rather than the token itself.
    const cookieValue = digest(token).toString('hex');
    const query = url.searchParams.get('token');
    if (query !== null) {
      if (!same(query, token)) return false;
      response.setHeader('set-cookie', `${cookieName}=${cookieValue}; HttpOnly; SameSite=Strict; Path=/`);
      return true;
    }
    const bearer = /^Bearer +(\S+) *$/i.exec(request.headers.authorization ?? '')?.[1];
    if (bearer !== undefined) return same(bearer, token);
    const cookie = (request.headers.cookie ?? '')
      .split(';')
      .map((part) => part.trim())
      .find((part) => part.startsWith(`${cookieName}=`));
    return cookie !== undefined && same(cookie.slice(cookieName.length + 1), cookieValue);
  };

  const handle = async (request: http.IncomingMessage, response: http.ServerResponse) => {
    if (!isDashboardHost(request.headers.host, binding)) {
      return sendText(
        response,
        421,
        `refused: Host '${shown(request.headers.host ?? '')}' is not a name of this dashboard ` +
          `(${[...new Set(['localhost', '127.0.0.1', '[::1]', boundName])].map((name) => `${name}:${boundPort}`).join(', ')}); ` +
          'start it with --allow-host NAME to add one',
      );
    }
    let url: URL;
    try {
      url = new URL(request.url ?? '/', 'http://localhost');
    } catch {
      return sendText(response, 400, `bad request target '${shown(request.url ?? '')}'`);
    }
    if (!authorized(request, url, response)) {
      response.setHeader('www-authenticate', 'Bearer realm="tensile dashboard"');
      return sendText(
        response,
        401,
        'this dashboard needs its access token: open the address it printed at start (ending in ?token=...), ' +
          "or send 'Authorization: Bearer TOKEN'",
      );
    }
    const parts = url.pathname.split('/').filter((part) => part.length > 0);
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('allow', 'GET, HEAD');
      return sendText(response, 405, `method ${shown(request.method ?? '')} not allowed: only GET is served`);
    }
    if (parts.length === 0) return serveStatic('index.html', response);
    if (parts[0] === 'static' && parts.length === 2) return serveStatic(parts[1]!, response);
    if (parts[0] !== 'api') throw new HttpError(404, `no page at ${url.pathname}`);
    const [, resource, id, sub] = parts;
    if (resource === 'overview' && id === undefined) {
      await endLostRuns();
      return sendJson(response, await overview(runs, studies));
    }
    if (resource === 'runs' && id !== undefined && sub === undefined) {
      const runId = idFrom(id, 'run');
      const [run, artifacts] = await Promise.all([runs.getRun(runId), runs.listArtifacts(runId)]);
      return sendJson(response, { run, artifacts });
    }
    if (resource === 'runs' && id !== undefined && sub === 'metrics') {
      const after = Number(url.searchParams.get('after') ?? 0);
      const metrics = await runs.getMetrics(idFrom(id, 'run'), {
        afterPointId: Number.isFinite(after) ? after : 0,
      });
      const maxPoints = Number(url.searchParams.get('maxPoints') ?? 0);
      const thinned =
        Number.isInteger(maxPoints) && maxPoints > 0 ? decimateMetrics(metrics, maxPoints) : metrics;
      return sendJson(response, url.searchParams.get('compact') === '1' ? compactMetrics(thinned) : thinned);
    }
    if (resource === 'studies' && id !== undefined) {
      if (studies === null) throw new HttpError(404, 'this dashboard has no study storage');
      try {
        return sendJson(response, await studyView(studies, idFrom(id, 'study')));
      } catch (error) {
        if (error instanceof Error && /not found/.test(error.message))
          throw new HttpError(404, error.message);
        throw error;
      }
    }
    if (resource === 'figures') {
      return sendJson(response, await explainTopics(runs, (artifact) => `/api/artifacts/${artifact.id}`));
    }
    if (resource === 'artifacts' && id !== undefined) {
      const artifact = await runs.getArtifact(idFrom(id, 'artifact'));
      if (artifact.content === null)
        throw new HttpError(404, `artifact ${artifact.id} keeps no content (file ${artifact.path})`);
      const mediaType = /^[\w.+-]+\/[\w.+-]+$/.test(artifact.mediaType)
        ? artifact.mediaType.toLowerCase()
        : 'application/octet-stream';
      const headers: http.OutgoingHttpHeaders = {
        'content-type': mediaType,
        'cache-control': 'no-cache',
        'content-security-policy': artifactSecurityPolicy,
      };
      if (!inlineArtifactTypes.has(mediaType)) {
        const name = artifact.name.replace(/[^\w.-]/g, '_').slice(0, 100) || 'artifact';
        headers['content-disposition'] = `attachment; filename="${name}"`;
      }
      response.writeHead(200, headers);
      response.end(Buffer.from(artifact.content));
      return;
    }
    if (resource === 'events') {
      response.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-store',
        connection: 'keep-alive',
      });
      // A HEAD has its answer: no stream to hold open.
      if (request.method === 'HEAD') return void response.end();
      // The page reconnects by itself after a second if the server restarts.
      response.write('retry: 1000\n\n');
      if (tokens.runs !== '') response.write(`data: ${JSON.stringify(tokens)}\n\n`);
      listeners.add(response);
      timer ??= setInterval(() => void poll(), pollMilliseconds);
      void poll();
      request.on('close', () => {
        listeners.delete(response);
        if (listeners.size === 0 && timer !== null) {
          clearInterval(timer);
          timer = null;
        }
      });
      return;
    }
    throw new HttpError(404, `no API at ${url.pathname}`);
  };

  const server = http.createServer((request, response) => {
    // On every response, the refusals and errors included.
    response.setHeader('content-security-policy', pageSecurityPolicy);
    response.setHeader('x-content-type-options', 'nosniff');
    response.setHeader('referrer-policy', 'no-referrer');
    response.setHeader('cross-origin-resource-policy', 'same-origin');
    response.setHeader('cross-origin-opener-policy', 'same-origin');
    response.setHeader('x-frame-options', 'DENY');
    // While the database is down the store retries (see src/sql/retry.ts): a request
    // waiting on it is answered 503 after a moment rather than held for the whole retry time.
    const unavailableTimer = setTimeout(() => {
      const outage = currentOutage();
      if (outage === null || response.headersSent) return;
      sendUnavailable(response, `${outage.what} unavailable (${outage.reason}); retrying`);
    }, unavailableAfterMilliseconds);
    handle(request, response)
      .catch((error: unknown) => {
        if (isConnectionError(error) || error instanceof StorageUnavailableError) {
          if (!response.headersSent)
            sendUnavailable(response, error instanceof Error ? error.message : String(error));
          return;
        }
        const status =
          error instanceof HttpError ? error.status : error instanceof RunNotFoundError ? 404 : 500;
        const message = error instanceof Error ? error.message : String(error);
        if (response.headersSent) {
          response.end();
          return;
        }
        response.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
        response.end(JSON.stringify({ error: message }));
      })
      .finally(() => clearTimeout(unavailableTimer));
  });
  // CONNECT asks a proxy for a tunnel: answered, where node would drop the connection unanswered.
  server.on('connect', (_request: http.IncomingMessage, socket: Duplex) => {
    const body = 'method CONNECT not allowed: only GET is served\n';
    socket.on('error', () => {});
    socket.end(
      'HTTP/1.1 405 Method Not Allowed\r\nallow: GET, HEAD\r\ncontent-type: text/plain; charset=utf-8\r\n' +
        `x-content-type-options: nosniff\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 6006, options.host ?? '127.0.0.1', () => {
      // Set before the first request can be read.
      const address = server.address() as AddressInfo;
      boundPort = address.port;
      boundName = hostName(address.address);
      binding = { address: address.address, port: boundPort, allowHosts: options.allowHosts ?? [] };
      token = dashboardToken(address.address, options.token);
      // Per port: cookies do not tell ports apart, and two dashboards may run side by side.
      cookieName = `tensile-token-${boundPort}`;
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://${boundName}:${address.port}/`,
    port: address.port,
    token,
    exposed: !isLoopbackAddress(address.address),
    close: async () => {
      if (timer !== null) clearInterval(timer);
      for (const listener of listeners) listener.end();
      listeners.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
