/**
 * Generated bad input (fast-check): more than 10,000 requests with arbitrary tus headers, parts API
 * JSON bodies and part numbers, upload ids and paths, and token strings. Every answer must be below
 * 500, the server must keep serving, and a normal upload must still work afterwards. The seeds are
 * fixed, so a failure is reproducible; fast-check prints the smallest failing request.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { bearer, SECRET, tokenFor } from './auth-helpers.ts';
import { createUpload, idOf, patch, send, sha256, startServer, type TestServer, TUS } from './tus-helpers.ts';

const agent = new Agent({ keepAlive: true, maxSockets: 8 });
let sent = 0;

interface Answer {
  status: number;
  body: string;
}

/** One request over a kept-alive connection; the whole answer. */
function call(
  url: string,
  method: string,
  headers: Record<string, string>,
  body: Buffer | string | undefined,
): Promise<Answer> {
  sent += 1;
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Printable ASCII, as a header value may carry (Node's client refuses control characters). */
const headerText = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
});
const numberish = fc.oneof(
  fc.integer({ min: -10, max: 2 ** 20 }).map(String),
  fc.constantFrom('0', '-0', '1e3', '0x10', ' 5', '5 ', '00', '9007199254740993', '1.5', '', 'NaN', '+1'),
  headerText,
);
const b64 = fc.uint8Array({ maxLength: 40 }).map((bytes) => Buffer.from(bytes).toString('base64'));
const metadata = fc
  .array(fc.tuple(fc.oneof(fc.stringMatching(/^[a-z]{1,8}$/), headerText), fc.oneof(b64, headerText)), {
    maxLength: 5,
  })
  .map((pairs) => pairs.map(([key, value]) => `${key} ${value}`).join(','));
const optional = <T>(arbitrary: fc.Arbitrary<T>) => fc.option(arbitrary, { nil: undefined });

function without(headers: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined) out[name] = value;
  return out;
}

function assertServed(answer: Answer, what: string): void {
  assert.ok(
    answer.status >= 200 && answer.status < 500,
    `${what} → ${answer.status} ${answer.body.slice(0, 300)}`,
  );
}

/** Path segments an attacker might try as upload ids. */
const idSegment = fc.oneof(
  fc.string({ maxLength: 40 }).map(encodeURIComponent),
  fc.constantFrom('..', '%2e%2e', '..%2f..%2fetc%2fpasswd', '%00', 'a'.repeat(300), '.', '%2F', 'files', '*'),
  fc.stringMatching(/^[A-Za-z0-9_-]{20,26}$/),
);

describe('fuzzing (fast-check)', () => {
  let server: TestServer;
  let authServer: TestServer;
  let known: string;
  let partsId: string;
  let alice: string;

  before(async () => {
    server = await startServer({ maxSize: 64 * 1024 * 1024 });
    authServer = await startServer({ authSecret: SECRET });
    known = await createUpload(server.endpoint, 1000);
    const created = await call(
      `${server.url}/uploads`,
      'POST',
      { 'content-type': 'application/json' },
      JSON.stringify({ size: 20_000_000, partSize: 5 * 1024 * 1024 }),
    );
    partsId = (JSON.parse(created.body) as { id: string }).id;
    // Valid for the whole run, however slow the machine.
    alice = await tokenFor('alice', { ttlSeconds: 3600 });
  });

  after(async () => {
    agent.destroy();
    await server?.stop();
    await authServer?.stop();
    assert.ok(sent >= 10_000, `only ${sent} requests were sent`);
  });

  it('tus: any method, path and headers — never a 5xx', async () => {
    const tusRequest = fc.record({
      method: fc.constantFrom('POST', 'HEAD', 'PATCH', 'DELETE', 'OPTIONS', 'GET'),
      target: fc.oneof(fc.constant('endpoint'), fc.constant('known'), idSegment),
      headers: fc.record({
        'tus-resumable': optional(fc.oneof(fc.constant('1.0.0'), headerText)),
        'upload-length': optional(numberish),
        'upload-offset': optional(numberish),
        'upload-defer-length': optional(numberish),
        'upload-metadata': optional(metadata),
        'upload-checksum': optional(
          fc.oneof(
            b64.map((value) => `sha1 ${value}`),
            headerText,
          ),
        ),
        'upload-concat': optional(
          fc.oneof(
            fc.constant('partial'),
            idSegment.map((id) => `final;/files/${id}`),
            headerText,
          ),
        ),
        'content-type': optional(fc.oneof(fc.constant('application/offset+octet-stream'), headerText)),
        'x-http-method-override': optional(fc.constantFrom('PATCH', 'DELETE', 'HEAD', 'GET', 'TRACE', '')),
      }),
      body: optional(fc.uint8Array({ maxLength: 2048 })),
    });
    await fc.assert(
      fc.asyncProperty(tusRequest, async ({ method, target, headers, body }) => {
        const url =
          target === 'endpoint'
            ? server.endpoint
            : target === 'known'
              ? known
              : `${server.endpoint}${target}`;
        const payload =
          body === undefined || method === 'GET' || method === 'HEAD' ? undefined : Buffer.from(body);
        const answer = await call(url, method, without(headers), payload);
        assertServed(answer, `${method} ${url} ${JSON.stringify(headers)}`);
      }),
      { numRuns: 4000, seed: 1 },
    );
  });

  it('parts: any JSON at creation and completion, any part number and body — never a 5xx', async () => {
    const json = fc.oneof(
      fc.jsonValue().map((value) => JSON.stringify(value)),
      fc
        .record({
          size: optional(
            fc.oneof(fc.integer({ min: -5, max: 2 ** 40 }), fc.double(), fc.string(), fc.constant(null)),
          ),
          partSize: optional(fc.oneof(fc.integer({ min: -5, max: 2 ** 34 }), fc.string(), fc.double())),
          sha256: optional(fc.oneof(fc.stringMatching(/^[0-9a-f]{64}$/), fc.string())),
          metadata: optional(fc.oneof(fc.dictionary(fc.string(), fc.string()), fc.jsonValue())),
          parts: optional(fc.jsonValue()),
        })
        .map((value) => JSON.stringify(value)),
      headerText,
    );
    const partsRequest = fc.oneof(
      fc.record({ kind: fc.constant('create' as const), body: json }),
      fc.record({
        kind: fc.constant('complete' as const),
        body: json,
        id: fc.oneof(fc.constant(''), idSegment),
      }),
      fc.record({
        kind: fc.constant('put' as const),
        id: fc.oneof(fc.constant(''), idSegment),
        n: fc.oneof(fc.integer({ min: -2, max: 10_001 }).map(String), headerText.map(encodeURIComponent)),
        body: fc.uint8Array({ maxLength: 4096 }),
        digest: optional(
          fc.oneof(
            b64.map((value) => `sha-256=:${value}:`),
            headerText,
          ),
        ),
        length: optional(numberish),
      }),
      fc.record({
        kind: fc.constantFrom('status' as const, 'delete' as const, 'events' as const),
        id: idSegment,
      }),
    );
    await fc.assert(
      fc.asyncProperty(partsRequest, async (input) => {
        const base = `${server.url}/uploads`;
        let answer: Answer;
        if (input.kind === 'create') {
          answer = await call(base, 'POST', { 'content-type': 'application/json' }, input.body);
        } else if (input.kind === 'complete') {
          const id = input.id === '' ? partsId : input.id;
          answer = await call(
            `${base}/${id}/complete`,
            'POST',
            { 'content-type': 'application/json' },
            input.body,
          );
        } else if (input.kind === 'put') {
          const id = input.id === '' ? partsId : input.id;
          const headers = without({ 'content-digest': input.digest });
          answer = await call(`${base}/${id}/parts/${input.n}`, 'PUT', headers, Buffer.from(input.body));
        } else if (input.kind === 'status') {
          answer = await call(`${base}/${input.id}`, 'GET', {}, undefined);
        } else if (input.kind === 'delete') {
          answer = await call(`${base}/${input.id}`, 'DELETE', {}, undefined);
        } else {
          // An event stream of an unknown id is refused at once; a known one would stay open.
          answer = await call(`${base}/${input.id}x/events`, 'GET', {}, undefined);
        }
        assertServed(answer, JSON.stringify(input).slice(0, 500));
      }),
      { numRuns: 4000, seed: 2 },
    );
  });

  it('tokens and ids against a server with an auth secret — 401/403/404, never a 5xx', async () => {
    const [header, payload, signature] = alice.split('.') as [string, string, string];
    const tokenText = fc.oneof(
      headerText,
      fc
        .tuple(
          fc.oneof(fc.constant(header), b64),
          fc.oneof(fc.constant(payload), b64),
          fc.oneof(fc.constant(signature), b64),
        )
        .map((parts) => parts.join('.')),
      fc
        .jsonValue()
        .map(
          (value) =>
            `${Buffer.from('{"alg":"HS256"}').toString('base64url')}.${Buffer.from(JSON.stringify(value)).toString('base64url')}.${signature}`,
        ),
    );
    const authorization = fc.oneof(
      tokenText.map((token) => `Bearer ${token}`),
      headerText,
      fc.constantFrom('Bearer', 'Bearer ', 'bearer x', 'Basic YTpi', `Bearer ${alice} extra`),
    );
    const probe = fc.record({
      authorization: optional(authorization),
      path: fc.oneof(
        idSegment.map((id) => `/files/${id}`),
        idSegment.map((id) => `/uploads/${id}`),
        idSegment.map((id) => `/files/${id}?token=${encodeURIComponent(id)}`),
        fc.constantFrom('/files/', '/uploads', '/uploads/events', '/s3/multipart', '/metrics', '/healthz'),
      ),
      method: fc.constantFrom('GET', 'HEAD', 'POST', 'PATCH', 'DELETE'),
    });
    await fc.assert(
      fc.asyncProperty(probe, async ({ authorization: auth, path, method }) => {
        const headers = without({
          ...TUS,
          authorization: auth,
          'upload-length': method === 'POST' ? '10' : undefined,
        });
        const answer = await call(
          `${authServer.url}${path}`,
          method,
          headers,
          method === 'PATCH' ? 'x' : undefined,
        );
        assertServed(answer, `${method} ${path} ${auth ?? '(no token)'}`);
        if (path.startsWith('/uploads/events') && answer.status === 200) {
          throw new Error('an event stream opened without a valid token');
        }
      }),
      { numRuns: 2500, seed: 3 },
    );
  });

  it('after all of that, the servers still carry normal uploads', async () => {
    const bytes = randomBytes(100_000);
    const location = await createUpload(server.endpoint, bytes.length);
    assert.equal((await patch(location, 0, bytes)).status, 204);
    const file = await send(`${server.url}/files/${idOf(location)}`);
    assert.equal(file.status, 200);
    assert.equal(sha256(file.body), sha256(bytes));
    const owned = await createUpload(authServer.endpoint, 10, bearer(await tokenFor('alice')));
    assert.ok(owned.startsWith(authServer.endpoint));
  });
});
