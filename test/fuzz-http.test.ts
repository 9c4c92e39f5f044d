/**
 * A seeded fuzz pass over the dashboard's HTTP server (127.0.0.1, a small store in memory): random
 * methods, paths (traversal attempts among them: `/..%2f..%2fetc/passwd`, `%00`, overlong UTF-8),
 * query strings, Host headers, credentials, huge headers, odd encodings and HTTP versions, sent as
 * raw bytes. Every request must get a well-formed HTTP answer within a few seconds; never a 5xx or a
 * stack trace; never a file outside the dashboard folder (a canary file lies next to it); a 200 only
 * for an allowed Host and, on the dashboard with a token, the right credential; and the server must
 * still answer afterwards. Bounded in count and in time; the seed makes any failure reproducible
 * (TENSILE_FUZZ_SEED=N, TENSILE_FUZZ_HTTP_CASES=N to run more).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Random } from '../src/index.js';
import { MemoryRunStore } from '../src/track/index.js';
import { defaultDashboardDirectory, startDashboard, type DashboardServer } from '../app/dashboard/index.js';
import { MemoryStorage, RandomSampler, Study } from '../src/tune/index.js';

const seed = Number(process.env.TENSILE_FUZZ_SEED ?? 20261206);
const cases = Number(process.env.TENSILE_FUZZ_HTTP_CASES ?? 300);
/** Longest wait for one answer: a server that takes longer has hung. */
const answerTimeout = 5000;
/** The whole pass must end within this (it takes a few seconds on a quiet machine). */
const passTimeout = 120_000;
const canary = 'CANARY-outside-the-dashboard-folder-7f3a';
const token = 'fuzz-token-0123456789abcdef';

interface Case {
  /** The raw request. */
  bytes: Buffer;
  /** For the report of a failure: the request as text, shortened. */
  summary: string;
  /** Whether a server must parse it as a request (standard method case, version, headers). */
  wellFormed: boolean;
  method: string;
  /** The request target, raw. */
  target: string;
  /** The Host header is one of the dashboard's names (false when absent, foreign or doubled). */
  hostAllowed: boolean;
  /** It carries the right token (query, Bearer or cookie). */
  credential: boolean;
  /** Which server: the plain one or the one with a token. */
  guarded: boolean;
}

interface Answer {
  status: number;
  headers: Map<string, string>;
  body: Buffer;
}

/** What the server's cookie holds: a hash of the token (its format is checked in dashboard-security.test.ts). */
const cookieValue = createHash('sha256').update(token).digest('hex');

/** The request target as the server reads it, or null when it is not one. */
function urlOf(target: string): URL | null {
  try {
    return new URL(target, 'http://localhost');
  } catch {
    return null;
  }
}

function pick<T>(random: Random, items: readonly T[]): T {
  return items[random.int(items.length)]!;
}

/** Path segments: the API's words, numbers good and bad, and traversal and encoding tricks. */
const segments = [
  '',
  'static',
  'api',
  'overview',
  'runs',
  'studies',
  'figures',
  'artifacts',
  'events',
  'metrics',
  'index.html',
  'app.js',
  'style.css',
  'secret.js',
  'tsconfig.json',
  '1',
  '2',
  '3',
  '999999',
  '-1',
  '1e3',
  '0x1',
  'NaN',
  '9007199254740993',
  '..',
  '.',
  '%2e%2e',
  '%2E%2E',
  '..%2f',
  '..%2F..%2F',
  '..%5c',
  '%2f',
  '%00',
  'app.js%00.png',
  '%',
  '%zz',
  '%c0%ae%c0%ae',
  '%e9t%C3%A9',
  '~root',
  'etc',
  'passwd',
  '*',
  ';',
  'a'.repeat(300),
];

/** Whole targets that try to leave the dashboard folder or confuse the router. */
const specialTargets = [
  '/..%2f..%2fetc/passwd',
  '/../../etc/passwd',
  '/static/../secret.js',
  '/static/..%2fsecret.js',
  '/static/%2e%2e/secret.js',
  '/static/%2e%2e%2fsecret.js',
  '/static/....//secret.js',
  '/static/..\\secret.js',
  '/static//etc/passwd',
  '//etc/passwd',
  '/static/app.js%00.html',
  '/static/app.js/',
  '/api/artifacts/1/../../../etc/passwd',
  'http://evil.example/api/overview',
  `http://127.0.0.1/static/..%2f..%2fsecret.js`,
  '*',
  '',
  'api/overview',
  '/static/%252e%252e%252fsecret.js',
];

const queryKeys = ['after', 'compact', 'maxPoints', 'token', 'x', '', '%00', 'after[]'];
const queryValues = [
  '0',
  '1',
  '-1',
  '1e308',
  'NaN',
  'Infinity',
  '',
  '%',
  '%00',
  '%ff%fe',
  '9'.repeat(400),
  token,
];

function randomTarget(random: Random): string {
  let target: string;
  if (random.next() < 0.25) {
    target = pick(random, specialTargets);
  } else {
    const count = random.int(5);
    target = `/${Array.from({ length: count }, () => pick(random, segments)).join('/')}`;
  }
  if (random.next() < 0.35) {
    const count = 1 + random.int(4);
    const pairs = Array.from({ length: count }, () =>
      random.next() < 0.1
        ? pick(random, queryKeys)
        : `${pick(random, queryKeys)}=${pick(random, queryValues)}`,
    );
    target += `?${pairs.join(random.next() < 0.9 ? '&' : ';')}`;
  }
  if (random.next() < 0.05) target += '#fragment';
  return target;
}

/** One random request to the server on `port`. */
function randomCase(random: Random, port: number, guarded: boolean, forcedTarget?: string): Case {
  if (forcedTarget !== undefined) {
    const text = `GET ${forcedTarget} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`;
    return {
      bytes: Buffer.from(text, 'latin1'),
      summary: text,
      wellFormed: true,
      method: 'GET',
      target: forcedTarget,
      hostAllowed: true,
      credential: false,
      guarded,
    };
  }
  let wellFormed = true;
  const methods = ['GET', 'GET', 'GET', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE'];
  let method = pick(random, methods);
  const oddMethod = random.next();
  if (oddMethod < 0.03) method = 'CONNECT';
  else if (oddMethod < 0.06) {
    method = pick(random, ['get', 'G\u00c9T', 'FOO', 'GET GET', '']);
    wellFormed = false;
  }
  const target = method === 'CONNECT' ? `127.0.0.1:${port}` : randomTarget(random);
  let version = 'HTTP/1.1';
  if (random.next() < 0.08) version = 'HTTP/1.0';
  else if (random.next() < 0.04) {
    version = pick(random, ['HTTP/9.9', 'HTTP/1', 'HTTP/1.1x', 'ICY']);
    wellFormed = false;
  }

  const headers: string[] = [];
  // The Host header: allowed names, foreign ones, none, or two.
  const allowed = [
    `127.0.0.1:${port}`,
    `localhost:${port}`,
    `[::1]:${port}`,
    'dashboard.test',
    `LocalHost:${port}`,
  ];
  const foreign = [
    'evil.example',
    `evil.example:${port}`,
    `127.0.0.1:${port + 1}`,
    `localhost.evil.example:${port}`,
    `${port}`,
    `127.0.0.1:${port}@evil.example`,
    'localhost',
    `[::1]`,
    `[::ffff:127.0.0.1]:${port}`,
    'h'.repeat(2000),
    `127.0.0.1:${port} evil`,
  ];
  let hostAllowed = false;
  const hostChoice = random.next();
  if (hostChoice < 0.55) {
    headers.push(`Host: ${pick(random, allowed)}`);
    hostAllowed = true;
  } else if (hostChoice < 0.85) {
    headers.push(`Host: ${pick(random, foreign)}`);
  } else if (hostChoice < 0.92) {
    // No Host: allowed by HTTP/1.0, refused (400 by node, or 421) with 1.1.
  } else {
    headers.push(`Host: ${pick(random, allowed)}`, `Host: ${pick(random, foreign)}`);
    // Node keeps the first Host of several; the check sees that one.
    hostAllowed = true;
    wellFormed = false;
  }

  // The token: right or wrong, by query, Bearer or cookie (whichever server; only the guarded checks
  // it). As documented: a ?token= decides by itself; else a Bearer header; else the cookie.
  let bearer = false;
  let cookie = false;
  const credentialChoice = random.next();
  if (credentialChoice < 0.2) {
    headers.push(`Authorization: Bearer ${token}`);
    bearer = true;
  } else if (credentialChoice < 0.3) {
    headers.push(
      pick(random, [
        `Authorization: Bearer ${token}x`,
        `Authorization: Basic ${token}`,
        'Authorization: Bearer',
      ]),
    );
  } else if (credentialChoice < 0.4) {
    const right = random.next() < 0.5;
    const value = right ? cookieValue : pick(random, ['0'.repeat(64), token, 'x;y', '']);
    headers.push(`Cookie: a=b; tensile-token-${port}=${value}`);
    cookie = right;
  }
  const queryToken = urlOf(target)?.searchParams.get('token') ?? null;
  const credential = queryToken !== null ? queryToken === token : bearer || cookie;

  // Odd and oversized headers, encodings and bodies.
  let body = '';
  const extras = random.int(4);
  for (let e = 0; e < extras; e++) {
    switch (random.int(12)) {
      case 0:
        // Past node's 16 KiB header limit: 431.
        headers.push(`X-Huge: ${'x'.repeat(17_000 + random.int(20_000))}`);
        wellFormed = false;
        break;
      case 1:
        headers.push(`X-Long: ${'y'.repeat(random.int(8000))}`);
        break;
      case 2:
        headers.push(
          pick(random, [
            'Accept-Encoding: gzip, deflate, br',
            'Accept-Encoding: *;q=0',
            'Accept-Charset: utf-7',
          ]),
        );
        break;
      case 3:
        headers.push('Transfer-Encoding: chunked');
        body = '5\r\nhello\r\n0\r\n\r\n';
        break;
      case 4:
        headers.push(`Content-Length: ${random.int(20)}`);
        body = 'z'.repeat(random.int(20));
        break;
      case 5:
        headers.push(pick(random, ['Content-Length: abc', 'Content-Length: -1', 'Content-Length: 1, 2']));
        wellFormed = false;
        break;
      case 6:
        headers.push(pick(random, ['X-Bad\u0000: 1', 'Bad Header: 1', ': empty', 'X-Ctl: a\u0001b']));
        wellFormed = false;
        break;
      case 7:
        headers.push(
          pick(random, [
            'Range: bytes=0-10',
            'Range: bytes=-999999999',
            'If-None-Match: *',
            'If-Modified-Since: yesterday',
          ]),
        );
        break;
      case 8:
        headers.push(pick(random, ['Upgrade: websocket', 'Upgrade: h2c']), 'Connection: Upgrade');
        break;
      case 9:
        headers.push('Expect: 100-continue');
        break;
      case 10:
        headers.push(
          `Referer: http://evil.example/${'%00'.repeat(random.int(50))}`,
          'Origin: http://evil.example',
        );
        break;
      default:
        headers.push(`X-Latin1: caf\u00e9 ${pick(random, ['\u00ff', '\u00c3\u00a9', '\u0080'])}`);
    }
  }
  headers.push('Connection: close');
  // A header block that ends with bare newlines instead of CRLF, now and then.
  const newline = random.next() < 0.03 ? '\n' : '\r\n';
  const text = `${method} ${target} ${version}${newline}${headers.join(newline)}${newline}${newline}${body}`;
  return {
    bytes: Buffer.from(text, 'latin1'),
    summary: text.length > 400 ? `${text.slice(0, 400)}… (${text.length} characters)` : text,
    wellFormed,
    method,
    target,
    hostAllowed,
    credential,
    guarded,
  };
}

/**
 * Sends `bytes` and reads the answer until the server closes, or until the headers of an event stream
 * (which stays open). Null when nothing well-formed came back; rejects after `answerTimeout`.
 */
function send(port: number, bytes: Buffer): Promise<Answer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect(port, '127.0.0.1', () => socket.end(bytes));
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer in ${answerTimeout} ms`));
    }, answerTimeout);
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(parse(Buffer.concat(chunks)));
    };
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      const answer = parse(Buffer.concat(chunks));
      if (answer !== null && answer.headers.get('content-type') === 'text/event-stream') finish();
    });
    socket.on('close', finish);
    // A reset after the answer (node closes on a request it could not parse) is not a failure.
    socket.on('error', () => {});
  });
}

/** The final answer in `data` (after any 100 Continue), or null when it is not a complete header block. */
function parse(data: Buffer): Answer | null {
  let text = data.toString('latin1');
  for (;;) {
    const end = text.indexOf('\r\n\r\n');
    if (end < 0) return null;
    const head = text.slice(0, end).split('\r\n');
    const match = /^HTTP\/1\.[01] (\d{3}) [^\r\n]*$/.exec(head[0]!);
    if (match === null) return null;
    const status = Number(match[1]);
    if (status >= 100 && status < 200) {
      text = text.slice(end + 4);
      continue;
    }
    const headers = new Map<string, string>();
    for (const line of head.slice(1)) {
      const colon = line.indexOf(':');
      if (colon <= 0) return null;
      headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
    }
    let body: Buffer = Buffer.from(text.slice(end + 4), 'latin1');
    if (headers.get('transfer-encoding') === 'chunked') body = dechunk(body);
    return { status, headers, body };
  }
}

/** The data of a chunked body (as far as it is complete: an event stream is cut off). */
function dechunk(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd < 0) break;
    const size = parseInt(data.subarray(at, lineEnd).toString('latin1'), 16);
    if (!Number.isInteger(size) || size === 0) break;
    parts.push(data.subarray(lineEnd + 2, Math.min(data.length, lineEnd + 2 + size)));
    at = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

describe('HTTP fuzz of the dashboard server', { timeout: passTimeout + 30_000 }, () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-fuzz-http-'));
  const site = path.join(root, 'dashboard');
  const files = new Map<string, Buffer>();
  let plain: DashboardServer;
  let guarded: DashboardServer;

  before(async () => {
    // A copy of the page's folder, with canaries beside it that a traversal would reach.
    fs.mkdirSync(site);
    for (const name of fs.readdirSync(defaultDashboardDirectory())) {
      const content = fs.readFileSync(path.join(defaultDashboardDirectory(), name));
      fs.writeFileSync(path.join(site, name), content);
      files.set(name, content);
    }
    for (const name of ['secret.js', 'secret.html', 'passwd'])
      fs.writeFileSync(path.join(root, name), canary);
    const runs = new MemoryRunStore();
    for (const name of ['alpha', 'beta']) {
      const run = await runs.createRun({ name, kind: 'fit', config: { lr: 0.1 } });
      await runs.logMetrics(
        run.id,
        Array.from({ length: 20 }, (_, step) => ({ name: 'loss', step, x: step, value: 1 / (step + 1) })),
      );
      await runs.addArtifact(run.id, {
        name: 'page',
        kind: 'figure',
        mediaType: 'text/html',
        content: '<script>x</script>',
      });
      await runs.addArtifact(run.id, {
        name: 'plot',
        kind: 'figure',
        mediaType: 'image/svg+xml',
        content: '<svg/>',
      });
      await runs.finishRun(run.id, 'complete');
    }
    const studies = new MemoryStorage();
    const study = await Study.create({
      storage: studies,
      name: 'fuzz',
      sampler: new RandomSampler({ seed: 1 }),
    });
    await study.optimize((trial) => trial.suggestFloat('x', 0, 1), { nTrials: 5 });
    const common = { runs, studies, port: 0, dashboardDirectory: site, allowHosts: ['dashboard.test'] };
    plain = await startDashboard(common);
    guarded = await startDashboard({ ...common, token });
  });

  after(async () => {
    await plain?.close();
    await guarded?.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it(`answers ${cases} random requests well, leaks nothing and stays up (seed ${seed})`, async () => {
    const random = new Random(seed);
    const started = Date.now();
    const statuses = new Map<number, number>();
    for (let index = 0; index < cases; index++) {
      assert.ok(Date.now() - started < passTimeout, `the pass ran past ${passTimeout} ms at case ${index}`);
      // First each traversal and router trick once, as a plain GET with an allowed Host; then at random.
      const forced = index < specialTargets.length ? specialTargets[index] : undefined;
      const isGuarded = forced === undefined && random.next() < 0.3;
      const server = isGuarded ? guarded : plain;
      const request = randomCase(random, server.port, isGuarded, forced);
      const where = `case ${index} (seed ${seed}) to the ${isGuarded ? 'guarded' : 'plain'} server:\n${JSON.stringify(request.summary)}`;
      let answer: Answer | null;
      try {
        answer = await send(server.port, request.bytes);
      } catch (error) {
        assert.fail(`${(error as Error).message}; ${where}`);
      }
      assert.ok(answer !== null, `no well-formed HTTP answer; ${where}`);
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      const length = answer.headers.get('content-length');
      if (length !== undefined && request.method !== 'HEAD')
        assert.equal(answer.body.length, Number(length), `a body of another length than announced; ${where}`);
      const body = answer.body.toString('latin1');
      assert.ok(
        answer.status >= 200 && answer.status < 500,
        `status ${answer.status}: ${body.slice(0, 300)}; ${where}`,
      );
      assert.doesNotMatch(
        body,
        /\n\s+at .*:\d+:\d+|Error: .*\n\s+at /,
        `a stack trace in the body; ${where}`,
      );
      assert.ok(
        !body.includes(canary) && !/root:.*:0:0:/.test(body),
        `a file outside the dashboard folder; ${where}`,
      );

      // Our own answers (not node's refusals of what it cannot parse) carry the security headers.
      if (answer.headers.has('content-security-policy') || answer.status !== 400) {
        if (![400, 413, 414, 431, 505].includes(answer.status))
          assert.equal(answer.headers.get('x-content-type-options'), 'nosniff', `no nosniff; ${where}`);
      }
      if (answer.status === 200) {
        assert.ok(request.hostAllowed, `200 for a Host that is not allowed; ${where}`);
        if (isGuarded) assert.ok(request.credential, `200 without the token; ${where}`);
        // Outside the API, a 200 is exactly one of the dashboard's files.
        const pathname = urlOf(request.target)?.pathname ?? '';
        if (!/^\/+api\//.test(pathname) && request.method === 'GET') {
          const served = [...files.values()].some((content) => content.equals(answer.body));
          assert.ok(served, `a 200 outside the API that is no dashboard file; ${where}`);
        }
      }
      if (request.wellFormed && request.method !== 'CONNECT') {
        if (!request.hostAllowed)
          assert.ok([400, 421].includes(answer.status), `foreign Host got ${answer.status}; ${where}`);
        else if (isGuarded && !request.credential)
          assert.ok([400, 401].includes(answer.status), `no token got ${answer.status}; ${where}`);
      }
      if (request.method === 'CONNECT') assert.ok([400, 405, 431].includes(answer.status), where);
    }
    // Each kind of outcome happened: the fuzz reached the pages, the refusals and node's own checks.
    for (const status of [200, 400, 401, 404, 405, 421, 431])
      assert.ok((statuses.get(status) ?? 0) > 0, `no ${status} among ${JSON.stringify([...statuses])}`);
    // And the servers still answer.
    for (const server of [plain, guarded]) {
      const answer = await send(
        server.port,
        Buffer.from(
          `GET /api/overview HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`,
        ),
      );
      assert.equal(answer?.status, 200);
      assert.match(answer!.body.toString(), /"alpha"/);
    }
  });
});
