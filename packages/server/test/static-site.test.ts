/**
 * The web app at `/` over real loopback HTTP: content types, ETag / 304, caching of hashed assets
 * and of index.html, security headers, HEAD, the SPA fallback (never over an API route),
 * path-traversal attempts (raw request targets, as an attacker sends them), and the page shown
 * while the app is not built.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { CONTENT_SECURITY_POLICY, IMMUTABLE } from '../src/web/static-site.ts';
import { send, startServer, type TestServer } from './tus-helpers.ts';

const SECRET = 'TOP-SECRET-OUTSIDE-THE-WEB-DIR';
const INDEX =
  '<!doctype html><html><head><title>Ferry</title></head><body><div id="root"></div></body></html>\n';
const SCRIPT = 'console.log("app");\n';
const BIG = randomBytes(600 * 1024);

let root: string;
let webDir: string;

before(() => {
  root = mkdtempSync(join(tmpdir(), 'ferry-web-'));
  webDir = join(root, 'dist');
  mkdirSync(join(webDir, 'assets'), { recursive: true });
  mkdirSync(join(webDir, 'docs'));
  // What a request must never get: files next to the web directory, and a link out of it.
  writeFileSync(join(root, 'secret.txt'), SECRET);
  writeFileSync(join(root, 'dist-secret.txt'), SECRET);
  symlinkSync(join(root, 'secret.txt'), join(webDir, 'leak.txt'));
  writeFileSync(join(webDir, '.env'), SECRET);
  writeFileSync(join(webDir, 'index.html'), INDEX);
  writeFileSync(join(webDir, 'assets', 'index-B3x9kQ.js'), SCRIPT);
  writeFileSync(join(webDir, 'assets', 'index-C1a2b3.css'), 'body{margin:0}\n');
  writeFileSync(join(webDir, 'assets', 'logo-9f8e7d.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>\n');
  writeFileSync(join(webDir, 'assets', 'hash-4d5e6f.wasm'), Buffer.from([0, 97, 115, 109]));
  writeFileSync(join(webDir, 'assets', 'video-1a2b3c.bin'), BIG);
  writeFileSync(join(webDir, 'favicon.ico'), Buffer.from([0, 0, 1, 0]));
  writeFileSync(join(webDir, 'manifest.webmanifest'), '{}');
  writeFileSync(join(webDir, 'docs', 'index.html'), '<!doctype html><p>docs</p>');
  // Files that share a name with an API route: the API must still answer those paths.
  writeFileSync(join(webDir, 'healthz'), SECRET);
  mkdirSync(join(webDir, 'files'));
  writeFileSync(join(webDir, 'files', 'AAAAAAAAAAAAAAAAAAAAAA'), SECRET);
});
after(() => rmSync(root, { recursive: true, force: true }));

interface RawReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** Sends `target` exactly as given (no URL normalisation of `..` or percent-escapes). */
function raw(
  base: string,
  target: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<RawReply> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: url.hostname, port: url.port, path: target, method, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const HTML = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };

describe('web app: static files', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ webDir });
  });
  after(async () => server.stop());

  it('serves index.html at / with no-cache, an ETag and the security headers', async () => {
    const reply = await send(`${server.url}/`);
    assert.equal(reply.status, 200);
    assert.equal(reply.body.toString(), INDEX);
    assert.equal(reply.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(reply.headers['cache-control'], 'no-cache');
    assert.match(String(reply.headers.etag), /^"[0-9a-f]+-[0-9a-f]+"$/);
    assert.equal(reply.headers['x-content-type-options'], 'nosniff');
    assert.equal(reply.headers['referrer-policy'], 'no-referrer');
    const csp = String(reply.headers['content-security-policy']);
    assert.equal(csp, CONTENT_SECURITY_POLICY);
    for (const directive of [
      "default-src 'self'",
      "connect-src 'self'",
      "worker-src 'self' blob:",
      "img-src 'self' data: blob:",
      "style-src 'self' 'unsafe-inline'",
    ]) {
      assert.ok(csp.split('; ').includes(directive), `CSP has ${directive}`);
    }
    assert.equal((await send(`${server.url}/index.html`)).body.toString(), INDEX);
  });

  it('answers each file with its content type; hashed assets are immutable', async () => {
    const cases: [string, string][] = [
      ['/assets/index-B3x9kQ.js', 'text/javascript; charset=utf-8'],
      ['/assets/index-C1a2b3.css', 'text/css; charset=utf-8'],
      ['/assets/logo-9f8e7d.svg', 'image/svg+xml; charset=utf-8'],
      ['/assets/hash-4d5e6f.wasm', 'application/wasm'],
      ['/assets/video-1a2b3c.bin', 'application/octet-stream'],
      ['/favicon.ico', 'image/x-icon'],
      ['/manifest.webmanifest', 'application/manifest+json; charset=utf-8'],
    ];
    for (const [path, type] of cases) {
      const reply = await send(`${server.url}${path}`);
      assert.equal(reply.status, 200, path);
      assert.equal(reply.headers['content-type'], type, path);
      assert.equal(reply.headers['x-content-type-options'], 'nosniff', path);
      assert.equal(
        reply.headers['cache-control'],
        path.startsWith('/assets/') ? IMMUTABLE : 'no-cache',
        path,
      );
      assert.equal(reply.headers['content-security-policy'], undefined, `${path}: CSP only on HTML`);
    }
    const script = await send(`${server.url}/assets/index-B3x9kQ.js`);
    assert.equal(script.body.toString(), SCRIPT);
    assert.equal(script.headers['cache-control'], 'public, max-age=31536000, immutable');
    const big = await send(`${server.url}/assets/video-1a2b3c.bin`);
    assert.equal(big.headers['content-length'], String(BIG.length));
    assert.ok(big.body.equals(BIG), 'a large file is streamed whole');
    const nested = await send(`${server.url}/docs/`);
    assert.equal(nested.body.toString(), '<!doctype html><p>docs</p>');
  });

  it('answers a matching If-None-Match with 304 and no body, and HEAD with the headers only', async () => {
    for (const path of ['/', '/assets/index-B3x9kQ.js']) {
      const first = await send(`${server.url}${path}`);
      const etag = String(first.headers.etag);
      for (const condition of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
        const again = await send(`${server.url}${path}`, { headers: { 'if-none-match': condition } });
        assert.equal(again.status, 304, `${path} ${condition}`);
        assert.equal(again.body.length, 0);
        assert.equal(again.headers.etag, etag);
        assert.equal(again.headers['cache-control'], first.headers['cache-control']);
      }
      const changed = await send(`${server.url}${path}`, { headers: { 'if-none-match': '"stale"' } });
      assert.equal(changed.status, 200);
      const head = await send(`${server.url}${path}`, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(head.body.length, 0);
      assert.equal(head.headers['content-length'], String(first.body.length));
      assert.equal(head.headers.etag, etag);
    }
  });

  it('refuses other methods with 405', async () => {
    const reply = await send(`${server.url}/`, { method: 'POST', body: 'x' });
    assert.equal(reply.status, 405);
    assert.equal(reply.code, 'ERR_METHOD_NOT_ALLOWED');
    assert.equal(reply.headers.allow, 'GET, HEAD');
  });

  it('never serves a file outside the directory, however the path is written', async () => {
    const targets = [
      '/../secret.txt',
      '/../../../../../../etc/passwd',
      '/assets/../../secret.txt',
      '/%2e%2e/secret.txt',
      '/%2E%2E/%2E%2E/etc/passwd',
      '/assets/%2e%2e/%2e%2e/secret.txt',
      '/%2e%2e%2fsecret.txt',
      '/..%2fsecret.txt',
      '/..%5csecret.txt',
      '/%5c..%5csecret.txt',
      '/.%2e/secret.txt',
      '/%252e%252e/secret.txt',
      '/%c0%ae%c0%ae/secret.txt',
      '/%ff',
      '/index.html%00.js',
      '/%00',
      '//etc/passwd',
      '/etc/passwd',
      `/${root.slice(1)}/secret.txt`,
      `/${'..%2f'.repeat(8)}etc/passwd`,
      '/leak.txt',
      '/.env',
      '/assets/.%2e/.%2e/secret.txt',
      '/../dist-secret.txt',
      '/dist/../dist-secret.txt',
      'http://127.0.0.1/../secret.txt',
      '*',
    ];
    for (const target of targets) {
      for (const headers of [{}, HTML]) {
        const reply = await raw(server.url, target, headers);
        const body = reply.body.toString('latin1');
        assert.ok(!body.includes(SECRET) && !body.includes('root:'), `${target} leaked a file`);
        assert.ok(
          (reply.status >= 400 && reply.status < 500) || (reply.status === 200 && body === INDEX),
          `${target} (${headers === HTML ? 'html' : 'any'}) → ${reply.status} ${body.slice(0, 80)}`,
        );
      }
    }
    const dotted = await raw(server.url, '/%2e%2e/secret.txt');
    assert.equal(dotted.status, 400);
    assert.equal(JSON.parse(dotted.body.toString()).error.code, 'ERR_BAD_REQUEST');
    assert.equal((await raw(server.url, '/index.html%00.js')).status, 400);
    assert.equal((await raw(server.url, '/leak.txt')).status, 404);
    assert.equal((await raw(server.url, '/.env')).status, 404);
  });
});

describe('web app: SPA fallback and API routes', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ webDir });
  });
  after(async () => server.stop());

  it('answers an unknown path that accepts HTML with index.html, anything else with 404', async () => {
    for (const path of ['/uploads-in-progress', '/some/deep/route', '/file/abc', '/route.with.dots']) {
      const reply = await send(`${server.url}${path}`, { headers: HTML });
      assert.equal(reply.status, 200, path);
      assert.equal(reply.body.toString(), INDEX, path);
      assert.equal(reply.headers['cache-control'], 'no-cache', path);
      assert.equal(reply.headers['content-security-policy'], CONTENT_SECURITY_POLICY, path);
    }
    for (const path of ['/assets/missing-123.js', '/missing.css', '/some/route']) {
      const reply = await send(`${server.url}${path}`, { headers: { accept: '*/*' } });
      assert.equal(reply.status, 404, path);
      assert.equal(reply.code, 'ERR_NOT_FOUND', path);
    }
  });

  it('never shadows an API route, even with a file of the same name or an HTML Accept', async () => {
    const health = await send(`${server.url}/healthz`, { headers: HTML });
    assert.deepEqual(health.json, { status: 'ok' });
    assert.deepEqual((await send(`${server.url}/readyz`, { headers: HTML })).json, { status: 'ready' });
    const metrics = await send(`${server.url}/metrics`, { headers: HTML });
    assert.match(String(metrics.headers['content-type']), /^text\/plain/);
    const uploads = await send(`${server.url}/uploads`, { headers: HTML });
    assert.deepEqual(uploads.json, { uploads: [], truncated: false });
    const unknownFile = await send(`${server.url}/files/AAAAAAAAAAAAAAAAAAAAAA`, { headers: HTML });
    assert.equal(unknownFile.status, 404);
    assert.equal(unknownFile.code, 'ERR_NOT_FOUND');
    const badId = await send(`${server.url}/files/..%2f..%2fsecret.txt`, { headers: HTML });
    assert.equal(badId.code, 'ERR_INVALID_ID');
    const tusRoot = await send(`${server.url}/files`, { headers: HTML });
    assert.equal(tusRoot.status, 405);
    const partsRoute = await send(`${server.url}/uploads/nope/what`, { headers: HTML });
    assert.equal(partsRoute.status, 404);
    assert.equal(partsRoute.code, 'ERR_INVALID_ID');
    const postHealth = await send(`${server.url}/healthz`, { method: 'POST', headers: HTML });
    assert.equal(postHealth.status, 404);
    assert.equal(postHealth.code, 'ERR_NOT_FOUND');
    const feed = await raw(server.url, '/uploads/events', HTML, 'POST');
    assert.equal(feed.status, 405);
  });

  it('answers a CORS preflight for the app paths like any other', async () => {
    const reply = await send(`${server.url}/`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'GET' },
    });
    assert.equal(reply.status, 204);
    assert.equal(reply.headers['access-control-allow-origin'], 'https://app.example');
  });

  it('also serves through the fetch adapter', async () => {
    const page = await server.ferry.fetch(new Request(`${server.url}/`));
    assert.equal(page.status, 200);
    assert.equal(await page.text(), INDEX);
    const head = await server.ferry.fetch(
      new Request(`${server.url}/assets/index-B3x9kQ.js`, { method: 'HEAD' }),
    );
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('cache-control'), IMMUTABLE);
    const fallback = await server.ferry.fetch(new Request(`${server.url}/a/route`, { headers: HTML }));
    assert.equal(await fallback.text(), INDEX);
  });
});

describe('web app: not built', () => {
  it('shows how to build it on / and on HTML requests, logs one warning, and serves the app once built', async () => {
    const missing = join(root, 'not-built-yet');
    const lines: string[] = [];
    const logger = pino(
      { level: 'info' },
      new Writable({
        write(chunk, _encoding, done) {
          lines.push(String(chunk));
          done();
        },
      }),
    );
    const server = await startServer({ webDir: missing, logger });
    try {
      const warnings = lines.map((line) => JSON.parse(line)).filter((entry) => entry.level === 40);
      assert.equal(warnings.length, 1);
      assert.match(warnings[0].msg, /npm run build -w apps\/web/);
      assert.equal(warnings[0].webDir, missing);

      for (const path of ['/', '/index.html', '/some/route']) {
        const reply = await send(`${server.url}${path}`, { headers: path === '/' ? {} : HTML });
        assert.equal(reply.status, 200, path);
        assert.equal(reply.headers['content-type'], 'text/html; charset=utf-8');
        assert.equal(reply.headers['cache-control'], 'no-store');
        assert.match(reply.body.toString(), /npm run build -w apps\/web/);
      }
      assert.equal((await send(`${server.url}/assets/index.js`)).status, 404);
      assert.equal((await send(`${server.url}/healthz`)).status, 200);
      const head = await send(`${server.url}/`, { method: 'HEAD' });
      assert.equal(head.body.length, 0);

      // Built while the server runs: the next request gets the app.
      mkdirSync(missing);
      writeFileSync(join(missing, 'index.html'), INDEX);
      assert.equal((await send(`${server.url}/`)).body.toString(), INDEX);
    } finally {
      await server.stop();
    }
  });

  it('without a web directory, / stays a 404 of the API', async () => {
    const server = await startServer();
    try {
      const reply = await send(`${server.url}/`, { headers: HTML });
      assert.equal(reply.status, 404);
      assert.equal(reply.code, 'ERR_NOT_FOUND');
    } finally {
      await server.stop();
    }
  });
});
