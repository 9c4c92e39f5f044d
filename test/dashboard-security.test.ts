/**
 * The dashboard server's defences, over real HTTP on 127.0.0.1: a foreign Host is refused (DNS
 * rebinding), every kind of response carries the security headers, artifacts never render as a
 * document of the dashboard's origin, and a dashboard beyond loopback needs its access token (the
 * command line's plan for `--host 0.0.0.0` is applied to a server bound to 127.0.0.1).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MemoryRunStore } from '../src/track/index.js';
import {
  artifactSecurityPolicy,
  checkAllowedHost,
  checkDashboardToken,
  isLoopbackAddress,
  pageSecurityPolicy,
  startDashboard,
  type DashboardServer,
} from '../app/dashboard/index.js';
import { MemoryStorage } from '../src/tune/index.js';
import { dashboardToken, isDashboardHost } from '../app/dashboard/server.js';
import { dashboardAccess, dashboardStartLines } from '../cli/dashboard.js';

const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * One request to 127.0.0.1:port with the given Host header and headers. An event stream is answered
 * with its headers and the first chunk, then closed.
 */
function request(
  port: number,
  target: string,
  options: { host?: string; method?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const outgoing = http.request(
      {
        host: '127.0.0.1',
        port,
        path: target,
        method: options.method ?? 'GET',
        headers: { host: options.host ?? `127.0.0.1:${port}`, ...options.headers },
        agent: false,
        timeout: 10_000,
      },
      (response) => {
        let body = '';
        const done = () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body });
        response.on('data', (chunk: Buffer) => {
          body += chunk.toString();
          if (response.headers['content-type'] === 'text/event-stream') {
            done();
            outgoing.destroy();
          }
        });
        response.on('end', done);
      },
    );
    outgoing.on('timeout', () => outgoing.destroy(new Error(`no answer to ${target} in 10 s`)));
    outgoing.on('error', reject);
    outgoing.end();
  });
}

/** The headers every response must carry, whatever it is. */
function assertSecurityHeaders(answer: Answer, what: string): void {
  assert.equal(answer.headers['x-content-type-options'], 'nosniff', what);
  assert.equal(answer.headers['referrer-policy'], 'no-referrer', what);
  assert.equal(answer.headers['cross-origin-resource-policy'], 'same-origin', what);
  const policy = String(answer.headers['content-security-policy']);
  assert.match(policy, /frame-ancestors 'none'/, what);
  assert.doesNotMatch(policy, /unsafe-inline|unsafe-eval|\*/, what);
}

const svgWithScript =
  '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>parent.marker = 1</script></svg>';
/** The smallest PNG: one transparent pixel. */
const png = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=',
  'base64',
);

describe('the dashboard on loopback', () => {
  const runs = new MemoryRunStore();
  let server: DashboardServer;
  let port = 0;
  let runId = 0;
  const artifactIds: Record<string, number> = {};

  before(async () => {
    const run = await runs.createRun({ name: 'secret-run', kind: 'fit', config: { password: 'hunter2' } });
    runId = run.id;
    await runs.logMetrics(run.id, [{ name: 'loss', step: 0, x: 1, value: 1 }]);
    for (const [name, mediaType, content] of [
      ['page', 'text/html', '<script>document.title = "ran"</script>'],
      ['figure', 'image/svg+xml', svgWithScript],
      ['pixel', 'image/png', png],
      ['typed', 'text/html; charset=utf-8', '<b>x</b>'],
    ] as const) {
      artifactIds[name] = (await runs.addArtifact(run.id, { name, kind: 'figure', mediaType, content })).id;
    }
    server = await startDashboard({
      runs,
      studies: new MemoryStorage(),
      port: 0,
      allowHosts: ['dashboard.test', 'pinned.test:1234'],
    });
    port = server.port;
  });

  after(async () => {
    await server.close();
  });

  test('needs no token and says it listens on this machine only', () => {
    assert.equal(server.token, null);
    assert.equal(server.exposed, false);
  });

  test('a foreign Host is refused with 421 and one line saying why, on every path', async () => {
    const paths = [
      '/',
      '/static/app.js',
      '/api/overview',
      `/api/runs/${runId}`,
      '/api/events',
      `/api/artifacts/${artifactIds.page}`,
    ];
    const foreign = [
      'evil.example',
      `evil.example:${port}`,
      `localhost.evil.example:${port}`,
      `127.0.0.1.evil.example:${port}`,
      `127.0.0.1:${port + 1}`,
      `localhost:${port}.evil.example`,
      'localhost',
      `other.test:${port}`,
      `pinned.test:${port}`,
      `0.0.0.0:${port}`,
    ];
    for (const target of paths) {
      for (const host of foreign) {
        const answer = await request(port, target, { host });
        assert.equal(answer.status, 421, `${host} ${target}`);
        assert.equal(answer.headers['content-type'], 'text/plain; charset=utf-8');
        assert.match(
          answer.body,
          /^refused: Host '.*' is not a name of this dashboard .*--allow-host NAME.*\n$/,
        );
        assert.equal(answer.body.split('\n').length, 2, 'one line');
        assert.doesNotMatch(answer.body, /secret-run|hunter2/);
        assertSecurityHeaders(answer, `421 for ${host}`);
      }
    }
  });

  test('a request without a Host, or with an empty one, is refused too', async () => {
    const raw = (text: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1', () => socket.end(text));
        let reply = '';
        socket.on('data', (chunk) => (reply += chunk.toString()));
        socket.on('end', () => resolve(reply));
        socket.on('error', reject);
      });
    for (const text of [
      'GET /api/overview HTTP/1.0\r\n\r\n',
      'GET /api/overview HTTP/1.1\r\nHost: \r\nConnection: close\r\n\r\n',
    ]) {
      const reply = await raw(text);
      assert.match(reply, /^HTTP\/1\.1 421 /, JSON.stringify(text));
      assert.doesNotMatch(reply, /secret-run/);
    }
  });

  test('localhost, 127.0.0.1, [::1] with the bound port and the allowed names are served', async () => {
    for (const host of [
      `localhost:${port}`,
      `LOCALHOST:${port}`,
      `127.0.0.1:${port}`,
      `[::1]:${port}`,
      `dashboard.test:${port}`,
      'dashboard.test',
      'dashboard.test:443',
      'pinned.test:1234',
    ]) {
      const answer = await request(port, '/api/overview', { host });
      assert.equal(answer.status, 200, host);
      assert.match(answer.body, /secret-run/);
    }
  });

  test('every kind of response carries the security headers', async () => {
    const answers: [string, Answer, number][] = [
      ['page', await request(port, '/'), 200],
      ['script', await request(port, '/static/app.js'), 200],
      ['stylesheet', await request(port, '/static/style.css'), 200],
      ['API', await request(port, '/api/overview'), 200],
      ['metrics', await request(port, `/api/runs/${runId}/metrics?after=0`), 200],
      ['event stream', await request(port, '/api/events'), 200],
      ['HEAD of the event stream', await request(port, '/api/events', { method: 'HEAD' }), 200],
      ['missing run', await request(port, '/api/runs/999'), 404],
      ['bad id', await request(port, '/api/runs/abc'), 400],
      ['missing page', await request(port, '/nothing'), 404],
      ['traversal', await request(port, '/static/..%2f..%2fpackage.json'), 404],
      ['POST', await request(port, '/api/overview', { method: 'POST' }), 405],
      ['foreign Host', await request(port, '/', { host: 'evil.example' }), 421],
      ['artifact', await request(port, `/api/artifacts/${artifactIds.pixel}`), 200],
    ];
    for (const [what, answer, status] of answers) {
      assert.equal(answer.status, status, what);
      assertSecurityHeaders(answer, what);
    }
    assert.equal(answers[0]![1].headers['content-security-policy'], pageSecurityPolicy);
    assert.equal(answers[6]![1].headers['content-type'], 'text/event-stream');
    assert.equal(answers[11]![1].headers.allow, 'GET, HEAD');
  });

  test("the page's policy is strict and the page needs nothing inline", async () => {
    for (const directive of [
      "default-src 'self'",
      "script-src 'self'",
      "style-src 'self'",
      "object-src 'none'",
      "base-uri 'none'",
      "frame-ancestors 'none'",
    ])
      assert.ok(pageSecurityPolicy.split('; ').includes(directive), directive);
    const page = (await request(port, '/')).body;
    // Every script has a source file; no <style> element, no style or event-handler attributes.
    for (const script of page.matchAll(/<script\b[^>]*>/g)) assert.match(script[0], /\ssrc="\/static\//);
    assert.doesNotMatch(page, /<style|\sstyle=|\son[a-z]+=/i);
  });

  test('artifacts are sandboxed, and downloaded unless they are raster images', async () => {
    const expectations: [string, string, boolean][] = [
      ['page', 'text/html', true],
      ['figure', 'image/svg+xml', true],
      ['pixel', 'image/png', false],
      // A media type with parameters is not trusted as given.
      ['typed', 'application/octet-stream', true],
    ];
    for (const [name, type, download] of expectations) {
      const answer = await request(port, `/api/artifacts/${artifactIds[name]}`);
      assert.equal(answer.status, 200, name);
      assert.equal(answer.headers['content-type'], type, name);
      assert.equal(answer.headers['content-security-policy'], artifactSecurityPolicy, name);
      assert.match(artifactSecurityPolicy, /^sandbox;/);
      assert.match(artifactSecurityPolicy, /default-src 'none'/);
      assert.equal(
        answer.headers['content-disposition'],
        download ? `attachment; filename="${name}"` : undefined,
        name,
      );
      assertSecurityHeaders(answer, name);
    }
  });
});

describe('a dashboard bound to another loopback address', () => {
  test('answers to that address as well as to the loopback names', async (t) => {
    let server: DashboardServer;
    try {
      server = await startDashboard({ runs: new MemoryRunStore(), port: 0, host: '127.0.0.2' });
    } catch (error) {
      // Linux routes all of 127.0.0.0/8 to loopback; other systems may not.
      t.skip(`cannot bind 127.0.0.2 here: ${(error as Error).message}`);
      return;
    }
    try {
      const answer = (host: string) =>
        new Promise<number>((resolve, reject) =>
          http
            .get({ host: '127.0.0.2', port: server.port, path: '/api/overview', headers: { host } }, (r) => {
              r.resume();
              resolve(r.statusCode ?? 0);
            })
            .on('error', reject),
        );
      assert.equal(server.url, `http://127.0.0.2:${server.port}/`);
      assert.equal(await answer(`127.0.0.2:${server.port}`), 200);
      assert.equal(await answer(`localhost:${server.port}`), 200);
      assert.equal(await answer(`127.0.0.3:${server.port}`), 421);
    } finally {
      await server.close();
    }
  });
});

describe('the access token', () => {
  const token = 'test-token-0123456789abcdef';
  const runs = new MemoryRunStore();
  let server: DashboardServer;
  let port = 0;

  before(async () => {
    const run = await runs.createRun({ name: 'guarded-run', kind: 'fit' });
    await runs.addArtifact(run.id, { name: 'pixel', kind: 'figure', mediaType: 'image/png', content: png });
    server = await startDashboard({ runs, port: 0, token });
    port = server.port;
  });

  after(async () => {
    await server.close();
  });

  test('without it every path is 401, with one line saying how to give it', async () => {
    for (const target of ['/', '/static/app.js', '/api/overview', '/api/events', '/api/artifacts/1']) {
      const answer = await request(port, target);
      assert.equal(answer.status, 401, target);
      assert.equal(answer.headers['www-authenticate'], 'Bearer realm="tensile dashboard"');
      assert.match(answer.body, /^this dashboard needs its access token: .*\?token=.*Authorization: Bearer/);
      assert.equal(answer.body.split('\n').length, 2);
      assert.doesNotMatch(answer.body, /guarded-run|test-token/);
      assertSecurityHeaders(answer, `401 ${target}`);
    }
  });

  test('a wrong token is refused however it is given', async () => {
    const wrong = `${token}x`;
    for (const answer of [
      await request(port, `/api/overview?token=${wrong}`),
      await request(port, '/api/overview', { headers: { authorization: `Bearer ${wrong}` } }),
      await request(port, '/api/overview', { headers: { cookie: `tensile-token-${port}=${wrong}` } }),
      await request(port, '/api/overview', { headers: { authorization: `Basic ${token}` } }),
    ]) {
      assert.equal(answer.status, 401);
      assert.equal(answer.headers['set-cookie'], undefined);
    }
  });

  test('a Bearer header is accepted', async () => {
    const answer = await request(port, '/api/overview', { headers: { authorization: `Bearer ${token}` } });
    assert.equal(answer.status, 200);
    assert.match(answer.body, /guarded-run/);
  });

  test('?token= once sets an HttpOnly SameSite=Strict cookie that then suffices, for the events too', async () => {
    const first = await request(port, `/?token=${token}`);
    assert.equal(first.status, 200);
    const cookie = first.headers['set-cookie']?.[0] ?? '';
    assert.match(
      cookie,
      new RegExp(`^tensile-token-${port}=[0-9a-f]{64}; HttpOnly; SameSite=Strict; Path=/$`),
    );
    assert.ok(!cookie.includes(token), 'the cookie does not hold the token itself');
    const pair = cookie.split(';')[0]!;
    const overview = await request(port, '/api/overview', { headers: { cookie: `other=1; ${pair}` } });
    assert.equal(overview.status, 200);
    assert.match(overview.body, /guarded-run/);
    const events = await request(port, '/api/events', { headers: { cookie: pair } });
    assert.equal(events.status, 200);
    assert.equal(events.headers['content-type'], 'text/event-stream');
    // A cookie for a dashboard on another port is not this one's.
    const elsewhere = pair.replace(`tensile-token-${port}=`, `tensile-token-${port + 1}=`);
    assert.equal((await request(port, '/api/overview', { headers: { cookie: elsewhere } })).status, 401);
  });

  test('the Host check comes first: the right token from a foreign Host is still refused', async () => {
    const answer = await request(port, '/api/overview', {
      host: 'evil.example',
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(answer.status, 421);
  });

  test('a weak token or a malformed --allow-host is refused before listening', async () => {
    assert.throws(() => checkDashboardToken('short'), /at least 16 characters/);
    assert.throws(() => checkDashboardToken('has spaces in it, long enough'), /without spaces/);
    assert.throws(() => checkAllowedHost('evil.example/path'), /not a host name/);
    assert.throws(() => checkAllowedHost('name:99999'), /not a host name/);
    checkAllowedHost('dashboard.lan:8080');
    checkAllowedHost('[fd00::5]');
    await assert.rejects(startDashboard({ runs, port: 0, token: 'short' }), /at least 16 characters/);
    await assert.rejects(startDashboard({ runs, port: 0, allowHosts: ['a b'] }), /not a host name/);
  });
});

describe('--host beyond loopback', () => {
  test('loopback addresses are told apart from the rest', () => {
    for (const address of ['127.0.0.1', '127.3.2.1', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1'])
      assert.equal(isLoopbackAddress(address), true, address);
    for (const address of ['0.0.0.0', '::', '192.168.1.5', 'fd00::5', '10.0.0.1', 'example.com', '128.0.0.1'])
      assert.equal(isLoopbackAddress(address), false, address);
  });

  test("bound to every interface, the Host may be any of the machine's addresses with the port, and nothing else", () => {
    const addresses = () => ['127.0.0.1', '192.168.1.5', '[fd00::5]'];
    for (const address of ['0.0.0.0', '::']) {
      const binding = { address, port: 6006, allowHosts: ['box.lan'] };
      for (const host of [
        '192.168.1.5:6006',
        '[fd00::5]:6006',
        'localhost:6006',
        '[::1]:6006',
        'box.lan',
        'BOX.lan:6006',
      ])
        assert.equal(isDashboardHost(host, binding, addresses), true, `${address} ${host}`);
      for (const host of [
        '192.168.1.5:6007',
        '192.168.1.6:6006',
        'evil.example:6006',
        '192.168.1.5',
        'other.lan:6006',
        undefined,
      ])
        assert.equal(isDashboardHost(host, binding, addresses), false, `${address} ${host}`);
    }
    // Bound to one LAN address: that address, and the loopback names; not the machine's other addresses.
    const one = { address: '192.168.1.5', port: 80 };
    assert.equal(isDashboardHost('192.168.1.5', one, addresses), true, 'port 80 may be left out');
    assert.equal(isDashboardHost('192.168.1.5:80', one, addresses), true);
    assert.equal(isDashboardHost('[fd00::5]:80', one, addresses), false);
    assert.equal(isDashboardHost('[::1]:80', { address: '::1', port: 80 }, addresses), true);
    assert.equal(isDashboardHost('[::1]:80', { address: '::1', port: 81 }, addresses), false);
  });

  test('a dashboard bound beyond loopback gets a generated token unless given one; loopback none', () => {
    for (const address of ['0.0.0.0', '::', '192.168.1.5', 'fd00::5'])
      assert.match(dashboardToken(address, undefined) ?? '', /^[A-Za-z0-9_-]{32}$/, address);
    assert.notEqual(dashboardToken('0.0.0.0', undefined), dashboardToken('0.0.0.0', undefined));
    assert.equal(dashboardToken('0.0.0.0', 'given-token-0123456789'), 'given-token-0123456789');
    for (const address of ['127.0.0.1', '::1']) assert.equal(dashboardToken(address, undefined), null);
    assert.equal(dashboardToken('127.0.0.1', 'given-token-0123456789'), 'given-token-0123456789');
  });

  test('0.0.0.0 warns and gets a generated token, which the server then requires', async () => {
    const access = dashboardAccess('0.0.0.0', undefined);
    assert.match(access.warning ?? '', /^warning: listening on every network interface.*access token/);
    assert.match(access.token ?? '', /^[A-Za-z0-9_-]{32}$/);
    assert.notEqual(dashboardAccess('0.0.0.0', undefined).token, access.token, 'a fresh token each start');
    // Bound in the test to 127.0.0.1 (nothing is exposed), with the access planned for 0.0.0.0.
    const runs = new MemoryRunStore();
    const server = await startDashboard({ runs, port: 0, host: '127.0.0.1', token: access.token! });
    try {
      assert.equal(server.token, access.token);
      assert.equal((await request(server.port, '/api/overview')).status, 401);
      const lines = dashboardStartLines(
        { url: `http://0.0.0.0:${server.port}/`, port: server.port, token: server.token },
        'sqlite:x.db',
        access,
      );
      assert.equal(lines[0], access.warning);
      // The address to open is on this machine and carries the token.
      const open = /(http:\/\/127\.0\.0\.1:\d+\/\?token=\S+)/.exec(lines[1]!)?.[1];
      assert.ok(open !== undefined, lines[1]);
      const url = new URL(open);
      assert.equal(Number(url.port), server.port);
      const answer = await request(server.port, `${url.pathname}${url.search}`);
      assert.equal(answer.status, 200);
      assert.match(lines[2]!, /from another machine: http:\/\/THIS-MACHINE-ADDRESS:\d+\/\?token=/);
    } finally {
      await server.close();
    }
  });

  test('a given token is kept, and other addresses warn too; loopback neither warns nor needs one', () => {
    const given = 'my-own-token-1234567890';
    assert.deepEqual(dashboardAccess('192.168.1.5', given).token, given);
    assert.match(dashboardAccess('192.168.1.5', undefined).warning ?? '', /listening on '192\.168\.1\.5'/);
    assert.match(dashboardAccess('::', undefined).warning ?? '', /every network interface/);
    for (const host of ['127.0.0.1', '::1', 'localhost'])
      assert.deepEqual(dashboardAccess(host, undefined), { token: null, warning: null });
    // On loopback a given token is still required.
    assert.deepEqual(dashboardAccess('127.0.0.1', given), { token: given, warning: null });
    const lines = dashboardStartLines(
      { url: 'http://127.0.0.1:6006/', port: 6006, token: null },
      'sqlite:x.db',
      dashboardAccess('127.0.0.1', undefined),
    );
    assert.deepEqual(lines, [
      'tensile dashboard: http://127.0.0.1:6006/ (runs and studies from sqlite:x.db); Ctrl-C stops it',
    ]);
  });

  test('the command refuses a weak --token and a malformed --allow-host before it listens (exit 2)', () => {
    const main = path.join(repositoryRoot, 'dist', 'cli', 'main.js');
    const run = (args: string[]) =>
      spawnSync(process.execPath, [main, 'dashboard', ...args], { encoding: 'utf8', timeout: 30_000 });
    const weak = run(['--host', '0.0.0.0', '--port', '0', '--token', 'short']);
    assert.equal(weak.status, 2, weak.stderr);
    assert.match(weak.stderr, /tensile dashboard: the dashboard token must have at least 16 characters/);
    const malformed = run(['--port', '0', '--allow-host', 'evil.example/x']);
    assert.equal(malformed.status, 2, malformed.stderr);
    assert.match(malformed.stderr, /not a host name/);
  });
});
