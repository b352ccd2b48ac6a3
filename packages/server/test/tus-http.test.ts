/**
 * The HTTP around tus over real loopback: Location behind a proxy (only when trusted), CORS
 * preflight and exposed headers, X-Request-ID, and downloads of finished files (ETag, ranges,
 * safe Content-Type, Content-Disposition).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PNG_1X1 } from '@ferry/testing';
import {
  createUpload,
  metadataHeader,
  send,
  startServer,
  type TestServer,
  TUS,
  uploadWhole,
} from './tus-helpers.ts';

let server: TestServer;
let proxied: TestServer;

before(async () => {
  server = await startServer();
  proxied = await startServer({ trustProxy: true });
});
after(async () => {
  await server.stop();
  await proxied.stop();
});

function listed(header: string | string[] | undefined): string[] {
  return String(header ?? '')
    .split(',')
    .map((name) => name.trim().toLowerCase());
}

describe('Location behind a proxy', () => {
  const forwarded = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'uploads.example.com' };

  it('ignores X-Forwarded-* when trustProxy is off', async () => {
    const reply = await send(server.endpoint, {
      method: 'POST',
      headers: { ...TUS, 'upload-length': '1', ...forwarded },
    });
    assert.equal(reply.status, 201);
    assert.match(String(reply.headers.location), new RegExp(`^${server.endpoint}[A-Za-z0-9_-]+$`));
  });

  it('builds Location from X-Forwarded-Proto/Host when trustProxy is on', async () => {
    const reply = await send(proxied.endpoint, {
      method: 'POST',
      headers: { ...TUS, 'upload-length': '1', ...forwarded },
    });
    assert.equal(reply.status, 201);
    assert.match(String(reply.headers.location), /^https:\/\/uploads\.example\.com\/files\/[A-Za-z0-9_-]+$/);
  });

  it('builds Location from Forwarded when trustProxy is on', async () => {
    const reply = await send(proxied.endpoint, {
      method: 'POST',
      headers: { ...TUS, 'upload-length': '1', forwarded: 'for=10.0.0.1;proto=https;host="cdn.example.org"' },
    });
    assert.equal(reply.status, 201);
    assert.match(String(reply.headers.location), /^https:\/\/cdn\.example\.org\/files\/[A-Za-z0-9_-]+$/);
  });

  it('ignores a forged scheme or a host with bad characters', async () => {
    const reply = await send(proxied.endpoint, {
      method: 'POST',
      headers: {
        ...TUS,
        'upload-length': '1',
        'x-forwarded-proto': 'javascript',
        'x-forwarded-host': 'evil.example/<script>',
      },
    });
    assert.equal(reply.status, 201);
    assert.match(String(reply.headers.location), new RegExp(`^${proxied.endpoint}[A-Za-z0-9_-]+$`));
  });

  it('HEAD of a final upload names its partials with the forwarded origin too', async () => {
    const partial = await uploadWhole(proxied.endpoint, 'xy', { 'upload-concat': 'partial' });
    const created = await send(proxied.endpoint, {
      method: 'POST',
      headers: { ...TUS, 'upload-concat': `final;${partial}` },
    });
    assert.equal(created.status, 201, created.body.toString());
    const final = new URL(String(created.headers.location), proxied.endpoint).href;
    const state = await send(final, { method: 'HEAD', headers: { ...TUS, ...forwarded } });
    const partialPath = new URL(partial).pathname;
    assert.equal(state.headers['upload-concat'], `final;https://uploads.example.com${partialPath}`);
  });
});

describe('CORS', () => {
  const origin = 'https://app.example.com';

  it('answers a preflight with the tus request headers allowed', async () => {
    const reply = await send(server.endpoint, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'PATCH',
        'access-control-request-headers': 'upload-offset, tus-resumable',
      },
    });
    assert.ok(reply.status === 204 || reply.status === 200, `status ${reply.status}`);
    assert.equal(reply.headers['access-control-allow-origin'], origin);
    const methods = listed(reply.headers['access-control-allow-methods']);
    for (const method of ['post', 'head', 'patch', 'delete', 'get'])
      assert.ok(methods.includes(method), method);
    const allowed = listed(reply.headers['access-control-allow-headers']);
    for (const name of [
      'upload-offset',
      'upload-length',
      'upload-defer-length',
      'upload-metadata',
      'upload-concat',
      'upload-checksum',
      'tus-resumable',
      'content-type',
      'authorization',
      'x-request-id',
      'x-http-method-override',
    ]) {
      assert.ok(allowed.includes(name), `allow-headers lacks ${name}`);
    }
  });

  it('exposes the headers tus clients read on actual responses', async () => {
    const reply = await send(server.endpoint, {
      method: 'POST',
      headers: { ...TUS, origin, 'upload-length': '3' },
    });
    assert.equal(reply.status, 201);
    assert.equal(reply.headers['access-control-allow-origin'], origin);
    const exposed = listed(reply.headers['access-control-expose-headers']);
    for (const name of [
      'location',
      'upload-offset',
      'upload-length',
      'upload-expires',
      'upload-defer-length',
      'upload-metadata',
      'upload-concat',
      'tus-resumable',
      'tus-version',
      'tus-extension',
      'tus-max-size',
    ]) {
      assert.ok(exposed.includes(name), `expose-headers lacks ${name}`);
    }
  });

  it('exposes headers on error responses too (a browser must read the 409 offset)', async () => {
    const location = await createUpload(server.endpoint, 3);
    const reply = await send(location, {
      method: 'PATCH',
      headers: {
        ...TUS,
        origin,
        'content-type': 'application/offset+octet-stream',
        'upload-offset': '2',
      },
      body: 'x',
    });
    assert.equal(reply.status, 409);
    assert.equal(reply.headers['access-control-allow-origin'], origin);
  });

  it('a disallowed origin gets no CORS headers', async () => {
    const strict = await startServer({ corsOrigins: ['https://only.example'] });
    try {
      const reply = await send(strict.endpoint, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST' },
      });
      assert.equal(reply.headers['access-control-allow-origin'], undefined);
      const allowed = await send(strict.endpoint, {
        method: 'OPTIONS',
        headers: { origin: 'https://only.example', 'access-control-request-method': 'POST' },
      });
      assert.equal(allowed.headers['access-control-allow-origin'], 'https://only.example');
    } finally {
      await strict.stop();
    }
  });
});

describe('X-Request-ID', () => {
  it('echoes a sane X-Request-ID on success and on error', async () => {
    const ok = await send(server.endpoint, {
      method: 'POST',
      headers: { ...TUS, 'upload-length': '1', 'x-request-id': 'req-42.abc:1' },
    });
    assert.equal(ok.status, 201);
    assert.equal(ok.headers['x-request-id'], 'req-42.abc:1');
    const failed = await send(server.endpoint, {
      method: 'POST',
      headers: { 'upload-length': '1', 'x-request-id': 'req-43' },
    });
    assert.equal(failed.status, 412);
    assert.equal(failed.headers['x-request-id'], 'req-43');
  });

  it('replaces an unusable X-Request-ID with a fresh one, and makes one when absent', async () => {
    const bad = await send(server.endpoint, {
      method: 'POST',
      headers: { ...TUS, 'upload-length': '1', 'x-request-id': 'has spaces <and> "quotes"' },
    });
    const made = await send(server.endpoint, { method: 'POST', headers: { ...TUS, 'upload-length': '1' } });
    for (const reply of [bad, made]) {
      assert.match(String(reply.headers['x-request-id']), /^[A-Za-z0-9._:-]{8,128}$/);
    }
    assert.notEqual(bad.headers['x-request-id'], made.headers['x-request-id']);
  });
});

describe('downloads', () => {
  // Text, as declared: the type sniffed at finalization agrees with it (random bytes might not).
  const content = Buffer.from('0123456789'.repeat(100));
  let location: string;

  before(async () => {
    location = await uploadWhole(server.endpoint, content, {
      'upload-metadata': metadataHeader({ filename: 'data.bin', filetype: 'text/plain' }),
    });
  });

  it('GET of a finished file: 200, length, validators, safe headers', async () => {
    const reply = await send(location);
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.body, content);
    assert.equal(reply.headers['content-length'], '1000');
    assert.match(String(reply.headers.etag), /^"[^"]+"$/);
    assert.ok(!Number.isNaN(Date.parse(String(reply.headers['last-modified']))));
    assert.equal(reply.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(reply.headers['x-content-type-options'], 'nosniff');
    assert.equal(reply.headers['accept-ranges'], 'bytes');
    assert.match(String(reply.headers['content-disposition']), /^attachment; filename="data\.bin"/);
  });

  it('HEAD without Tus-Resumable is a download probe: headers, no body', async () => {
    const reply = await send(location, { method: 'HEAD' });
    assert.equal(reply.status, 200);
    assert.equal(reply.headers['content-length'], '1000');
    assert.equal(reply.body.length, 0);
    assert.ok(reply.headers.etag);
  });

  it('If-None-Match with the ETag answers 304', async () => {
    const etag = String((await send(location, { method: 'HEAD' })).headers.etag);
    const reply = await send(location, { headers: { 'if-none-match': etag } });
    assert.equal(reply.status, 304);
    assert.equal(reply.body.length, 0);
  });

  const ranges: Array<[string, number, number]> = [
    ['bytes=0-0', 0, 0],
    ['bytes=10-19', 10, 19],
    ['bytes=990-', 990, 999],
    ['bytes=-7', 993, 999],
    ['bytes=900-5000', 900, 999],
    ['bytes=-5000', 0, 999],
  ];
  for (const [range, start, end] of ranges) {
    it(`Range ${range} → 206 bytes ${start}-${end}/1000`, async () => {
      const reply = await send(location, { headers: { range } });
      assert.equal(reply.status, 206);
      assert.equal(reply.headers['content-range'], `bytes ${start}-${end}/1000`);
      assert.equal(reply.headers['content-length'], String(end - start + 1));
      assert.deepEqual(reply.body, content.subarray(start, end + 1));
    });
  }

  for (const range of ['bytes=1000-', 'bytes=5000-6000', 'bytes=-0']) {
    it(`Range ${range} → 416 with Content-Range bytes */1000`, async () => {
      const reply = await send(location, { headers: { range } });
      assert.equal(reply.status, 416);
      assert.equal(reply.code, 'ERR_RANGE_NOT_SATISFIABLE');
      assert.equal(reply.headers['content-range'], 'bytes */1000');
    });
  }

  it('an unfinished upload is 404 ERR_UPLOAD_NOT_FINISHED', async () => {
    const unfinished = await createUpload(server.endpoint, 10);
    const reply = await send(unfinished);
    assert.equal(reply.status, 404);
    assert.equal(reply.code, 'ERR_UPLOAD_NOT_FINISHED');
    assert.equal((await send(unfinished, { method: 'HEAD' })).status, 404);
  });

  // The type served is the one sniffed from the bytes (docs/security.md#content-checks), so each
  // safe type gets bytes of its format; active types are never served as themselves.
  const PNG = PNG_1X1;
  const PDF = Buffer.from('%PDF-1.7\n1 0 obj\n<<>>\nendobj\n');
  const MP4 = Buffer.from('\0\0\0\x18ftypmp42\0\0\0\0mp42isom', 'latin1');
  const types: Array<[string, Buffer | string, string]> = [
    ['text/html', '<p>x</p>', 'application/octet-stream'],
    ['image/svg+xml', '<svg xmlns="http://www.w3.org/2000/svg"/>', 'application/octet-stream'],
    ['application/javascript', 'alert(1)', 'application/octet-stream'],
    ['TEXT/HTML; charset=utf-8', '<p>x</p>', 'application/octet-stream'],
    ['image/png', PNG, 'image/png'],
    ['application/pdf', PDF, 'application/pdf'],
    ['video/mp4', MP4, 'video/mp4'],
    ['image/png', 'x', 'application/octet-stream'],
  ];
  for (const [declared, body, served] of types) {
    it(`filetype ${declared} with ${typeof body === 'string' ? 'text' : "its format's"} bytes is served as ${served}`, async () => {
      const file = await uploadWhole(server.endpoint, body, {
        'upload-metadata': metadataHeader({ filetype: declared }),
      });
      const reply = await send(file);
      assert.equal(reply.headers['content-type'], served);
      assert.equal(reply.headers['x-content-type-options'], 'nosniff');
    });
  }

  it('a unicode file name is sent as filename* (RFC 8187) with an ASCII fallback', async () => {
    const name = 'résumé 📄 final.txt';
    const file = await uploadWhole(server.endpoint, 'x', {
      'upload-metadata': metadataHeader({ filename: name }),
    });
    const disposition = String((await send(file)).headers['content-disposition']);
    const star = /filename\*=UTF-8''([^;]+)/.exec(disposition);
    assert.ok(star, disposition);
    assert.equal(decodeURIComponent(star[1] ?? ''), name);
    const plain = /filename="([^"]*)"/.exec(disposition);
    assert.ok(plain, disposition);
    assert.match(plain[1] ?? '', /^[\x20-\x7e]+$/);
  });

  it('quotes, slashes and control characters never break out of the header', async () => {
    const name = 'a"b/../c\\d;e%f\r\ng.txt';
    const file = await uploadWhole(server.endpoint, 'x', {
      'upload-metadata': metadataHeader({ filename: name }),
    });
    const reply = await send(file);
    assert.equal(reply.status, 200);
    const disposition = String(reply.headers['content-disposition']);
    const plain = /^attachment; filename="([^"]*)"; filename\*=UTF-8''(\S+)$/.exec(disposition);
    assert.ok(plain, disposition);
    assert.doesNotMatch(plain[1] ?? '', /[/\\"\r\n]/);
    const decoded = decodeURIComponent(plain[2] ?? '');
    assert.doesNotMatch(decoded, /[/\\\r\n]/);
    assert.ok(decoded.includes('a"b'), decoded);
  });

  it('a file without a name is a bare attachment', async () => {
    const file = await uploadWhole(server.endpoint, 'x');
    assert.equal((await send(file)).headers['content-disposition'], 'attachment');
  });
});
