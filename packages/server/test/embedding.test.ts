/**
 * The mounting examples of docs/examples, run for real: each host framework serves a tus-js-client
 * upload through Ferry, the finished file downloads byte for byte, and the host's own routes still
 * answer. The Next.js route file is driven the way Next drives it: a web `Request` per call to the
 * exported method function.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { after, before, describe, it } from 'node:test';
import * as tus from 'tus-js-client';
import { createFerry, type FerryOptions } from '../src/index.ts';

interface Running {
  url: string;
  close(): Promise<void>;
}

/** The shape every server example exports. */
interface ServerExample {
  start(port: number, options: FerryOptions): Promise<Running>;
}

type RouteHandler = (request: Request) => Promise<Response>;

interface NextRouteExample {
  runtime: string;
  GET: RouteHandler;
  HEAD: RouteHandler;
  POST: RouteHandler;
  PATCH: RouteHandler;
  DELETE: RouteHandler;
  OPTIONS: RouteHandler;
}

const EXAMPLES = new URL('../../../docs/examples/', import.meta.url);

/** Imported by URL at run time: docs/ is its own TypeScript project, checked on its own. */
async function loadExample<T>(name: string): Promise<T> {
  return (await import(new URL(name, EXAMPLES).href)) as T;
}

const TUS = { 'tus-resumable': '1.0.0' };
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

function tusUpload(endpoint: string, file: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const upload = new tus.Upload(file, {
      endpoint,
      chunkSize: 64 * 1024,
      retryDelays: null,
      metadata: { filename: 'photo.bin', filetype: 'application/octet-stream' },
      onError: reject,
      onSuccess: () => {
        if (upload.url === null) reject(new Error('the upload has no URL'));
        else resolve(upload.url);
      },
    });
    upload.start();
  });
}

/** Runs the checks every mounting must pass, against a server whose base URL `base()` returns. */
function describeMount(base: () => string, hostRoute: { path: string; body: string }): void {
  it('carries a chunked tus-js-client upload, and the download matches byte for byte', async () => {
    const file = randomBytes(300 * 1024 + 123);
    const location = await tusUpload(`${base()}/files/`, file);
    assert.ok(location.startsWith(`${base()}/files/`), `upload URL ${location} is on the mount`);

    const head = await fetch(location, { method: 'HEAD', headers: TUS });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('upload-offset'), String(file.length));

    const download = await fetch(location);
    assert.equal(download.status, 200);
    assert.match(download.headers.get('content-disposition') ?? '', /filename="photo\.bin"/);
    const received = Buffer.from(await download.arrayBuffer());
    assert.equal(received.length, file.length);
    assert.equal(sha256(received), sha256(file));
  });

  it('takes a 2 MiB chunk in one PATCH (no body parser or body limit in the way)', async () => {
    const size = 2 * 1024 * 1024;
    const created = await fetch(`${base()}/files/`, {
      method: 'POST',
      headers: { ...TUS, 'upload-length': String(size) },
    });
    assert.equal(created.status, 201);
    const location = created.headers.get('location')!;
    const body = randomBytes(size);
    const patched = await fetch(location, {
      method: 'PATCH',
      headers: { ...TUS, 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' },
      body,
    });
    assert.equal(patched.status, 204);
    assert.equal(patched.headers.get('upload-offset'), String(size));
    const range = await fetch(location, { headers: { range: 'bytes=1000-1999' } });
    assert.equal(range.status, 206);
    assert.deepEqual(Buffer.from(await range.arrayBuffer()), body.subarray(1000, 2000));
  });

  it('creates at the endpoint without its trailing slash too', async () => {
    const created = await fetch(`${base()}/files`, {
      method: 'POST',
      headers: { ...TUS, 'upload-length': '3' },
    });
    assert.equal(created.status, 201);
    assert.ok(created.headers.get('location')?.startsWith(`${base()}/files/`));
  });

  it('answers a CORS preflight for the tus endpoint', async () => {
    const response = await fetch(`${base()}/files/`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'tus-resumable, upload-length',
      },
    });
    assert.equal(response.status, 204);
    assert.equal(response.headers.get('access-control-allow-origin'), 'https://app.example');
    assert.match(response.headers.get('access-control-allow-headers') ?? '', /Upload-Length/);
  });

  it('answers tus errors in Ferry’s JSON shape', async () => {
    const response = await fetch(`${base()}/files/`, { method: 'POST', headers: { 'upload-length': '1' } });
    assert.equal(response.status, 412);
    assert.equal((await response.json()).error.code, 'ERR_UNSUPPORTED_VERSION');
  });

  if (hostRoute.path !== '') {
    it(`leaves the host's own route ${hostRoute.path} working`, async () => {
      const response = await fetch(`${base()}${hostRoute.path}`);
      assert.equal(response.status, 200);
      assert.equal(await response.text(), hostRoute.body);
    });
  }
}

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'ferry-embed-'));
}

for (const [name, hello] of [
  ['express', 'hello from express'],
  ['fastify', 'hello from fastify'],
  ['hono', 'hello from hono'],
] as const) {
  describe(`docs/examples/${name}.ts`, () => {
    let dir: string;
    let running: Running;

    before(async () => {
      dir = await tempDir();
      const example = await loadExample<ServerExample>(`${name}.ts`);
      running = await example.start(0, { dataDir: dir, logLevel: 'silent' });
    });
    after(async () => {
      await running?.close();
      await rm(dir, { recursive: true, force: true });
    });

    describeMount(() => running.url, { path: '/hello', body: hello });

    if (name === 'express') {
      it('still parses JSON for the app routes after Ferry', async () => {
        const response = await fetch(`${running.url}/echo`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ a: 1 }),
        });
        assert.equal(response.status, 200);
        assert.deepEqual(await response.json(), { a: 1 });
      });
    }
  });
}

/**
 * What Next.js does for an App Router route file, reduced to the part Ferry depends on: build a web
 * `Request` (streamed body, abort signal) and call the function exported under the method's name.
 */
function serveRouteFile(route: NextRouteExample) {
  const handlers: Record<string, RouteHandler> = {
    GET: route.GET,
    HEAD: route.HEAD,
    POST: route.POST,
    PATCH: route.PATCH,
    DELETE: route.DELETE,
    OPTIONS: route.OPTIONS,
  };
  return createServer({ requestTimeout: 0 }, (req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '/';
    const handler = handlers[req.method ?? 'GET'];
    if (!(path === '/files' || path.startsWith('/files/')) || handler === undefined) {
      res.writeHead(404).end();
      return;
    }
    const headers = new Headers();
    for (const [key, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(', ') : value);
    }
    const aborted = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) aborted.abort();
    });
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
    const request = new Request(`http://${req.headers.host}${path}`, {
      method: req.method ?? 'GET',
      headers,
      signal: aborted.signal,
      ...(hasBody ? { body: Readable.toWeb(req) as ReadableStream<Uint8Array>, duplex: 'half' } : {}),
    });
    handler(request)
      .then(
        async (response) => {
          res.writeHead(response.status, Object.fromEntries(response.headers));
          if (response.body === null) res.end();
          else await pipeline(Readable.fromWeb(response.body as NodeReadableStream<Uint8Array>), res);
        },
        (error: unknown) => {
          res.writeHead(500).end(String(error));
        },
      )
      // A client that leaves before the whole response was sent ends the pipeline early.
      .catch(() => res.destroy());
  });
}

describe('docs/examples/next-route.ts', () => {
  let dir: string;
  let route: NextRouteExample;
  let server: ReturnType<typeof serveRouteFile>;
  let url: string;

  before(async () => {
    dir = await tempDir();
    // The app module reads its settings from the environment, as a Next app would.
    process.env['FERRY_DATA_DIR'] = dir;
    process.env['FERRY_LOG_LEVEL'] = 'silent';
    route = await loadExample<NextRouteExample>('next-route.ts');
    server = serveRouteFile(route);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    const { ferry } = await loadExample<{ ferry: { close(): Promise<void> } }>('next-ferry.ts');
    server?.close();
    server?.closeAllConnections();
    await ferry.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('exports a handler for every method tus uses, on the Node.js runtime', () => {
    assert.equal(route.runtime, 'nodejs');
    for (const method of ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE', 'OPTIONS'] as const) {
      assert.equal(typeof route[method], 'function', method);
    }
  });

  it('answers Request objects directly: create, write, read back, terminate', async () => {
    const created = await route.POST(
      new Request('http://next.test/files', { method: 'POST', headers: { ...TUS, 'upload-length': '5' } }),
    );
    assert.equal(created.status, 201);
    const location = created.headers.get('location')!;
    assert.match(location, /^http:\/\/next\.test\/files\/[A-Za-z0-9_-]{16,}$/);
    const patched = await route.PATCH(
      new Request(location, {
        method: 'PATCH',
        headers: { ...TUS, 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' },
        body: 'hello',
      }),
    );
    assert.equal(patched.status, 204);
    assert.equal(patched.headers.get('upload-offset'), '5');
    const head = await route.HEAD(new Request(location, { method: 'HEAD', headers: TUS }));
    assert.equal(head.headers.get('upload-length'), '5');
    assert.equal(await (await route.GET(new Request(location))).text(), 'hello');
    const options = await route.OPTIONS(new Request('http://next.test/files/', { method: 'OPTIONS' }));
    assert.equal(options.headers.get('tus-version'), '1.0.0');
    const deleted = await route.DELETE(new Request(location, { method: 'DELETE', headers: TUS }));
    assert.equal(deleted.status, 204);
    assert.equal((await route.GET(new Request(location))).status, 404);
  });

  describeMount(() => url, { path: '', body: '' });
});

describe('docs/operations.md', () => {
  it('lists exactly the metrics a Ferry instance registers', async () => {
    const doc = await readFile(new URL('../../../docs/operations.md', import.meta.url), 'utf8');
    const documented = [...doc.matchAll(/^\|\s*`(ferry_[a-z_]+)`\s*\|/gm)].map((match) => match[1]);
    const dir = await tempDir();
    try {
      const ferry = await createFerry({ dataDir: dir, logLevel: 'silent', sweepIntervalSeconds: 0 });
      const registered = (await ferry.metrics.registry.getMetricsAsJSON()).map((metric) => metric.name);
      await ferry.close();
      assert.ok(registered.length > 0);
      assert.deepEqual([...documented].sort(), [...registered].sort());
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
