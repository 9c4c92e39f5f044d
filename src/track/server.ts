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
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Storage } from '../tune/storage/storage.js';
import { failLostRuns } from './lost-runs.js';
import { compactMetrics, decimateMetrics, explainTopics, overview, studyView } from './dashboard-data.js';
import { RunNotFoundError, type RunStore } from './types.js';
import { currentOutage, isConnectionError, StorageUnavailableError } from '../tune/storage/retry.js';

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
}

export interface DashboardServer {
  /** http://host:port/ */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** The package's dashboard/ folder (this file is src/track/server.ts, compiled to dist/src/track/server.js). */
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

/**
 * Starts the dashboard. Resolves once it listens.
 *
 * @example
 * const server = await startDashboard({ runs: await openRunStore('sqlite:./tensile.db'), port: 0 });
 * console.log(server.url);
 */
/** How long an API request waits on a database that is down before it is answered 503. */
const unavailableAfterMilliseconds = 2000;

/** 503 with a JSON body saying the database is unavailable (the page shows it and tries again). */
function sendUnavailable(response: http.ServerResponse, message: string): void {
  response.writeHead(503, { 'content-type': 'application/json; charset=utf-8', 'retry-after': '2' });
  response.end(JSON.stringify({ error: `database unavailable: ${message}`, unavailable: true }));
}

export async function startDashboard(options: DashboardOptions): Promise<DashboardServer> {
  const runs = options.runs;
  const studies = options.studies ?? null;
  const directory = options.dashboardDirectory ?? defaultDashboardDirectory();
  const pollMilliseconds = options.pollMilliseconds ?? 500;
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

  const handle = async (request: http.IncomingMessage, response: http.ServerResponse) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const parts = url.pathname.split('/').filter((part) => part.length > 0);
    if (request.method !== 'GET' && request.method !== 'HEAD') throw new HttpError(405, 'only GET is served');
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
      response.writeHead(200, { 'content-type': artifact.mediaType, 'cache-control': 'no-cache' });
      response.end(Buffer.from(artifact.content));
      return;
    }
    if (resource === 'events') {
      response.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-store',
        connection: 'keep-alive',
      });
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
    // While the database is down the store retries (see ../tune/storage/retry.ts): a request
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
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 6006, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}/`,
    port: address.port,
    close: async () => {
      if (timer !== null) clearInterval(timer);
      for (const listener of listeners) listener.end();
      listeners.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
