/**
 * The tus 1.0.0 status-code table, one row per answer the spec defines (and the ones Ferry adds
 * for bad input), over real loopback. Each row names the upload it starts from, the request, and
 * what must come back: the status, the JSON error code, the headers that must (and must not) be
 * there, and, where the spec says what happens to the data, a check of the state afterwards.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  createUpload,
  head,
  idOf,
  metadataHeader,
  OCTETS,
  type Reply,
  type SendOptions,
  send,
  startServer,
  type TestServer,
  TUS,
  uploadWhole,
} from './tus-helpers.ts';

const MAX_SIZE = 1024 * 1024;
const EXPIRY_SECONDS = 3600;
const HTTP_DATE = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;

let server: TestServer;
/** Added to the real clock: a row moves it past the expiry and puts it back. */
let clockShift = 0;

/** The upload a row starts from; `location` is absolute, `parts` are a final upload's partials. */
interface Fixture {
  location: string;
  parts?: string[];
}

type FixtureName =
  | 'none'
  | 'empty' // Upload-Length 10, nothing sent
  | 'half' // Upload-Length 10, 5 bytes sent
  | 'deferred' // Upload-Defer-Length: 1, nothing sent
  | 'withMetadata' // Upload-Length 10 with metadata, one value empty
  | 'partial' // a finished partial upload
  | 'final' // a final upload of two partials
  | 'expired'; // an upload whose expiry the clock has passed

const METADATA = { filename: 'report.pdf', empty: '' };

async function makeFixture(name: FixtureName): Promise<Fixture> {
  const endpoint = server.endpoint;
  switch (name) {
    case 'none':
      return { location: `${endpoint}AAAAAAAAAAAAAAAAAAAAAA` };
    case 'empty':
      return { location: await createUpload(endpoint, 10) };
    case 'half': {
      const location = await createUpload(endpoint, 10);
      await expectStatus(send(location, { method: 'PATCH', headers: chunk(0), body: 'hello' }), 204);
      return { location };
    }
    case 'deferred':
      return { location: await createUpload(endpoint, 'deferred') };
    case 'withMetadata':
      return {
        location: await createUpload(endpoint, 10, { 'upload-metadata': metadataHeader(METADATA) }),
      };
    case 'partial':
      return { location: await uploadWhole(endpoint, 'abc', { 'upload-concat': 'partial' }) };
    case 'final': {
      const parts = [
        await uploadWhole(endpoint, 'abc', { 'upload-concat': 'partial' }),
        await uploadWhole(endpoint, 'defg', { 'upload-concat': 'partial' }),
      ];
      const reply = await send(endpoint, {
        method: 'POST',
        headers: { ...TUS, 'upload-concat': `final;${parts.join(' ')}` },
      });
      assert.equal(reply.status, 201, reply.body.toString());
      return { location: new URL(String(reply.headers.location), endpoint).href, parts };
    }
    case 'expired': {
      const location = await createUpload(endpoint, 10);
      clockShift = (EXPIRY_SECONDS + 1) * 1000;
      return { location };
    }
  }
}

async function expectStatus(pending: Promise<Reply>, status: number): Promise<Reply> {
  const reply = await pending;
  assert.equal(reply.status, status, `expected ${status}, got ${reply.status}: ${reply.body.toString()}`);
  return reply;
}

function chunk(offset: number, extra: Record<string, string> = {}): Record<string, string> {
  return { ...OCTETS, 'upload-offset': String(offset), ...extra };
}

function digest(algorithm: string, data: string): string {
  return createHash(algorithm).update(data).digest('base64');
}

/** A header check: an exact value, a pattern, or a predicate that also sees the fixture. */
type HeaderExpectation = string | RegExp | ((value: string, fixture: Fixture) => boolean);

interface Case {
  name: string;
  fixture: FixtureName;
  /** Path relative to the fixture's Location, or `endpoint` for the creation URL. */
  target: 'upload' | 'endpoint';
  request: Omit<SendOptions, 'body'> & { body?: string | Buffer };
  status: number;
  code?: string;
  headers?: Record<string, HeaderExpectation>;
  absent?: string[];
  /** Headers that need an upload made first (for example a partial to name in Upload-Concat). */
  prepare?: () => Promise<Record<string, string>>;
  /** Runs after the request: what the spec says about the upload's state afterwards. */
  verify?: (fixture: Fixture, reply: Reply) => Promise<void>;
}

const locationOfUpload: HeaderExpectation = (value) =>
  new RegExp(`^${server.endpoint}[A-Za-z0-9_-]{22}$`).test(value);

async function offsetIs(fixture: Fixture, offset: number): Promise<void> {
  const state = await expectStatus(head(fixture.location), 200);
  assert.equal(state.headers['upload-offset'], String(offset));
}

const EXTENSIONS = [
  'creation',
  'creation-with-upload',
  'creation-defer-length',
  'expiration',
  'checksum',
  'termination',
  'concatenation',
];

const cases: Case[] = [
  // 201 Created
  {
    name: 'POST creates an upload: Location, Upload-Offset 0, Upload-Expires',
    fixture: 'none',
    target: 'endpoint',
    request: { method: 'POST', headers: { ...TUS, 'upload-length': '10' } },
    status: 201,
    headers: {
      location: locationOfUpload,
      'upload-offset': '0',
      'upload-expires': HTTP_DATE,
      'tus-resumable': '1.0.0',
    },
  },
  {
    name: 'POST with a body (creation-with-upload) stores it and reports the offset',
    fixture: 'none',
    target: 'endpoint',
    request: {
      method: 'POST',
      headers: { ...OCTETS, 'upload-length': '10' },
      body: 'hello',
    },
    status: 201,
    headers: { location: locationOfUpload, 'upload-offset': '5', 'upload-expires': HTTP_DATE },
  },
  // 204 PATCH
  {
    name: 'PATCH appends and answers 204 with the new Upload-Offset',
    fixture: 'half',
    target: 'upload',
    request: { method: 'PATCH', headers: chunk(5), body: 'world' },
    status: 204,
    headers: { 'upload-offset': '10', 'tus-resumable': '1.0.0' },
    verify: async (fixture) => {
      const file = await expectStatus(send(fixture.location), 200);
      assert.equal(file.body.toString(), 'helloworld');
    },
  },
  // 200 HEAD
  {
    name: 'HEAD reports offset, length, no-store and the expiry',
    fixture: 'half',
    target: 'upload',
    request: { method: 'HEAD', headers: { ...TUS } },
    status: 200,
    headers: {
      'upload-offset': '5',
      'upload-length': '10',
      'cache-control': 'no-store',
      'upload-expires': HTTP_DATE,
      'tus-resumable': '1.0.0',
    },
    absent: ['upload-defer-length'],
  },
  {
    name: 'HEAD of a deferred-length upload says Upload-Defer-Length: 1',
    fixture: 'deferred',
    target: 'upload',
    request: { method: 'HEAD', headers: { ...TUS } },
    status: 200,
    headers: { 'upload-offset': '0', 'upload-defer-length': '1', 'cache-control': 'no-store' },
    absent: ['upload-length'],
  },
  {
    name: 'HEAD echoes Upload-Metadata, a key with an empty value included',
    fixture: 'withMetadata',
    target: 'upload',
    request: { method: 'HEAD', headers: { ...TUS } },
    status: 200,
    headers: {
      'upload-metadata': (value) => {
        const pairs = value.split(',').sort();
        return (
          pairs.length === 2 &&
          pairs[0] === 'empty' &&
          pairs[1] === `filename ${Buffer.from('report.pdf').toString('base64')}`
        );
      },
    },
  },
  {
    name: 'HEAD of a partial upload says Upload-Concat: partial',
    fixture: 'partial',
    target: 'upload',
    request: { method: 'HEAD', headers: { ...TUS } },
    status: 200,
    headers: { 'upload-concat': 'partial', 'upload-offset': '3', 'upload-length': '3' },
  },
  {
    name: 'HEAD of a final upload echoes Upload-Concat with the partial URLs',
    fixture: 'final',
    target: 'upload',
    request: { method: 'HEAD', headers: { ...TUS } },
    status: 200,
    headers: {
      'upload-concat': (value, fixture) => value === `final;${fixture.parts?.join(' ')}`,
      'upload-offset': '7',
      'upload-length': '7',
    },
  },
  // 204 OPTIONS
  ...(['endpoint', 'upload'] as const).map(
    (target): Case => ({
      name: `OPTIONS on the ${target} advertises version, every extension, max size and checksums`,
      fixture: target === 'endpoint' ? 'none' : 'empty',
      target,
      // "The Client SHOULD NOT include the Tus-Resumable header in the request" for OPTIONS.
      request: { method: 'OPTIONS' },
      status: 204,
      headers: {
        'tus-version': '1.0.0',
        'tus-resumable': '1.0.0',
        'tus-extension': (value) => {
          const listed = value.split(',').map((name) => name.trim());
          return EXTENSIONS.every((name) => listed.includes(name));
        },
        'tus-max-size': String(MAX_SIZE),
        'tus-checksum-algorithm': (value) => {
          const listed = value.split(',').map((name) => name.trim());
          return ['sha1', 'md5', 'sha256', 'crc32'].every((name) => listed.includes(name));
        },
      },
    }),
  ),
  // 404 Not Found
  ...(['HEAD', 'PATCH', 'DELETE'] as const).map(
    (method): Case => ({
      name: `${method} of an unknown upload is 404`,
      fixture: 'none',
      target: 'upload',
      request:
        method === 'PATCH' ? { method, headers: chunk(0), body: 'x' } : { method, headers: { ...TUS } },
      status: 404,
      ...(method === 'HEAD' ? {} : { code: 'ERR_NOT_FOUND' }),
    }),
  ),
  // 409 Conflict
  {
    name: 'PATCH at the wrong offset is 409 and the upload is unchanged',
    fixture: 'half',
    target: 'upload',
    request: { method: 'PATCH', headers: chunk(3), body: 'xxxxx' },
    status: 409,
    code: 'ERR_OFFSET_MISMATCH',
    // The server's offset comes with the 409, so a client can resume without another HEAD.
    headers: { 'upload-offset': '5' },
    verify: (fixture) => offsetIs(fixture, 5),
  },
  {
    name: 'PATCH at offset 0 of a half-sent upload is 409',
    fixture: 'half',
    target: 'upload',
    request: { method: 'PATCH', headers: chunk(0), body: 'hello' },
    status: 409,
    code: 'ERR_OFFSET_MISMATCH',
    verify: (fixture) => offsetIs(fixture, 5),
  },
  // 410 Gone
  {
    name: 'HEAD of an expired upload is 410',
    fixture: 'expired',
    target: 'upload',
    request: { method: 'HEAD', headers: { ...TUS } },
    status: 410,
  },
  {
    name: 'PATCH of an expired upload is 410',
    fixture: 'expired',
    target: 'upload',
    request: { method: 'PATCH', headers: chunk(0), body: 'hello' },
    status: 410,
    code: 'ERR_UPLOAD_EXPIRED',
  },
  {
    name: 'DELETE of an expired upload still terminates it (204)',
    fixture: 'expired',
    target: 'upload',
    request: { method: 'DELETE', headers: { ...TUS } },
    status: 204,
    verify: async (fixture) => {
      await expectStatus(head(fixture.location), 404);
    },
  },
  // 412 Precondition Failed
  ...(
    [
      [
        'POST without Tus-Resumable',
        'none',
        'endpoint',
        { method: 'POST', headers: { 'upload-length': '1' } },
      ],
      [
        'POST with Tus-Resumable 0.2.2',
        'none',
        'endpoint',
        { method: 'POST', headers: { 'tus-resumable': '0.2.2', 'upload-length': '1' } },
      ],
      [
        'PATCH without Tus-Resumable',
        'empty',
        'upload',
        {
          method: 'PATCH',
          headers: { 'content-type': 'application/offset+octet-stream', 'upload-offset': '0' },
          body: 'x',
        },
      ],
      [
        'PATCH with Tus-Resumable 2.0.0',
        'empty',
        'upload',
        { method: 'PATCH', headers: chunk(0, { 'tus-resumable': '2.0.0' }), body: 'x' },
      ],
      [
        'HEAD with Tus-Resumable 0.1.0',
        'empty',
        'upload',
        { method: 'HEAD', headers: { 'tus-resumable': '0.1.0' } },
      ],
      ['DELETE without Tus-Resumable', 'empty', 'upload', { method: 'DELETE', headers: {} }],
    ] as const
  ).map(
    ([name, fixture, target, request]): Case => ({
      name: `${name} is 412 with Tus-Version`,
      fixture,
      target,
      request: { ...request, headers: { ...request.headers } },
      status: 412,
      ...(request.method === 'HEAD' ? {} : { code: 'ERR_UNSUPPORTED_VERSION' }),
      headers: { 'tus-version': '1.0.0' },
      ...(fixture === 'empty' ? { verify: (f: Fixture) => offsetIs(f, 0) } : {}),
    }),
  ),
  // 413 Request Entity Too Large
  {
    name: 'POST with Upload-Length above Tus-Max-Size is 413',
    fixture: 'none',
    target: 'endpoint',
    request: { method: 'POST', headers: { ...TUS, 'upload-length': String(MAX_SIZE + 1) } },
    status: 413,
    code: 'ERR_UPLOAD_TOO_LARGE',
  },
  {
    name: 'PATCH whose body goes past Upload-Length is 413 and nothing is appended',
    fixture: 'half',
    target: 'upload',
    request: { method: 'PATCH', headers: chunk(5), body: 'world!' },
    status: 413,
    code: 'ERR_EXCEEDS_LENGTH',
    verify: (fixture) => offsetIs(fixture, 5),
  },
  // 415 Unsupported Media Type
  ...['application/octet-stream', 'text/plain', undefined].map(
    (type): Case => ({
      name: `PATCH with Content-Type ${type ?? '(none)'} is 415`,
      fixture: 'empty',
      target: 'upload',
      request: {
        method: 'PATCH',
        headers: { ...TUS, 'upload-offset': '0', ...(type ? { 'content-type': type } : {}) },
        body: 'hello',
      },
      status: 415,
      code: 'ERR_INVALID_CONTENT_TYPE',
      verify: (fixture) => offsetIs(fixture, 0),
    }),
  ),
  // 460 Checksum Mismatch
  {
    name: 'PATCH whose Upload-Checksum does not match is 460 and the chunk is discarded',
    fixture: 'half',
    target: 'upload',
    request: {
      method: 'PATCH',
      headers: chunk(5, { 'upload-checksum': `sha1 ${digest('sha1', 'WORLD')}` }),
      body: 'world',
    },
    status: 460,
    code: 'ERR_CHECKSUM_MISMATCH',
    verify: async (fixture) => {
      await offsetIs(fixture, 5);
      // The discarded bytes must not surface later: finish with different bytes and download.
      await expectStatus(
        send(fixture.location, {
          method: 'PATCH',
          headers: chunk(5, { 'upload-checksum': `sha1 ${digest('sha1', 'there')}` }),
          body: 'there',
        }),
        204,
      );
      const file = await expectStatus(send(fixture.location), 200);
      assert.equal(file.body.toString(), 'hellothere');
    },
  },
  // 400 Bad Request
  ...(
    [
      ['POST without Upload-Length or Upload-Defer-Length', { ...TUS }, 'ERR_LENGTH_REQUIRED'],
      ['POST with Upload-Length abc', { ...TUS, 'upload-length': 'abc' }, 'ERR_INVALID_LENGTH'],
      ['POST with Upload-Length -1', { ...TUS, 'upload-length': '-1' }, 'ERR_INVALID_LENGTH'],
      ['POST with Upload-Length 1.5', { ...TUS, 'upload-length': '1.5' }, 'ERR_INVALID_LENGTH'],
      ['POST with Upload-Defer-Length 2', { ...TUS, 'upload-defer-length': '2' }, 'ERR_INVALID_DEFER_LENGTH'],
      [
        'POST with both Upload-Length and Upload-Defer-Length',
        { ...TUS, 'upload-length': '5', 'upload-defer-length': '1' },
        'ERR_INVALID_DEFER_LENGTH',
      ],
      [
        'POST with Upload-Concat bogus',
        { ...TUS, 'upload-length': '5', 'upload-concat': 'bogus' },
        'ERR_INVALID_CONCAT',
      ],
      [
        'POST with Upload-Metadata that is not base64',
        { ...TUS, 'upload-length': '5', 'upload-metadata': 'name !!!' },
        'ERR_INVALID_METADATA',
      ],
    ] as const
  ).map(
    ([name, headers, code]): Case => ({
      name: `${name} is 400`,
      fixture: 'none',
      target: 'endpoint',
      request: { method: 'POST', headers },
      status: 400,
      code,
    }),
  ),
  ...(
    [
      ['PATCH without Upload-Offset', { ...OCTETS }, 'ERR_INVALID_OFFSET'],
      ['PATCH with Upload-Offset -5', chunk(0, { 'upload-offset': '-5' }), 'ERR_INVALID_OFFSET'],
      ['PATCH with Upload-Offset x', chunk(0, { 'upload-offset': 'x' }), 'ERR_INVALID_OFFSET'],
      [
        'PATCH with a malformed Upload-Checksum',
        chunk(0, { 'upload-checksum': 'sha1' }),
        'ERR_INVALID_CHECKSUM',
      ],
      [
        'PATCH with an unknown checksum algorithm',
        chunk(0, { 'upload-checksum': `whirlpool ${digest('sha1', 'x')}` }),
        'ERR_UNSUPPORTED_CHECKSUM',
      ],
    ] as const
  ).map(
    ([name, headers, code]): Case => ({
      name: `${name} is 400 and nothing is appended`,
      fixture: 'empty',
      target: 'upload',
      request: { method: 'PATCH', headers, body: 'x' },
      status: 400,
      code,
      verify: (fixture) => offsetIs(fixture, 0),
    }),
  ),
  {
    name: 'POST of a final upload naming an unfinished partial is 400',
    fixture: 'none',
    target: 'endpoint',
    request: { method: 'POST', headers: { ...TUS } },
    prepare: async () => ({
      'upload-concat': `final;${await createUpload(server.endpoint, 10, { 'upload-concat': 'partial' })}`,
    }),
    status: 400,
    code: 'ERR_CONCAT_PARTIAL_UNFINISHED',
  },
  // 403 Forbidden
  {
    name: 'PATCH of a final upload is 403',
    fixture: 'final',
    target: 'upload',
    request: { method: 'PATCH', headers: chunk(7), body: 'x' },
    status: 403,
    code: 'ERR_MODIFY_FINAL',
  },
  // Termination
  {
    name: 'DELETE answers exactly 204; afterwards the upload is 404',
    fixture: 'half',
    target: 'upload',
    request: { method: 'DELETE', headers: { ...TUS } },
    status: 204,
    headers: { 'tus-resumable': '1.0.0' },
    verify: async (fixture) => {
      await expectStatus(head(fixture.location), 404);
      const again = await expectStatus(
        send(fixture.location, { method: 'DELETE', headers: { ...TUS } }),
        404,
      );
      assert.equal(again.code, 'ERR_NOT_FOUND');
      const patched = await expectStatus(
        send(fixture.location, { method: 'PATCH', headers: chunk(5), body: 'x' }),
        404,
      );
      assert.equal(patched.code, 'ERR_NOT_FOUND');
    },
  },
];

describe('tus status codes', () => {
  before(async () => {
    server = await startServer({
      maxSize: MAX_SIZE,
      expirySeconds: EXPIRY_SECONDS,
      now: () => Date.now() + clockShift,
    });
  });
  after(() => server.stop());

  for (const row of cases) {
    it(`${row.status}: ${row.name}`, async () => {
      clockShift = 0;
      try {
        const fixture = await makeFixture(row.fixture);
        const request = { ...row.request, headers: { ...row.request.headers, ...(await row.prepare?.()) } };
        const url = row.target === 'endpoint' ? server.endpoint : fixture.location;
        const reply = await send(url, request);
        assert.equal(reply.status, row.status, `status (body: ${reply.body.toString()})`);
        if (row.code !== undefined) {
          assert.equal(reply.code, row.code, `error code (body: ${reply.body.toString()})`);
          const error = (reply.json as { error: { message: unknown } }).error;
          assert.equal(typeof error.message, 'string');
        } else if (row.status >= 400 && row.request.method !== 'HEAD') {
          assert.fail('an error row must name its code');
        }
        if (row.request.method === 'HEAD' || row.status === 204) assert.equal(reply.body.length, 0);
        for (const [name, expected] of Object.entries(row.headers ?? {})) {
          const value = reply.headers[name];
          assert.equal(typeof value, 'string', `header ${name} is missing`);
          const text = value as string;
          if (typeof expected === 'string') assert.equal(text, expected, `header ${name}`);
          else if (expected instanceof RegExp) assert.match(text, expected, `header ${name}`);
          else assert.ok(expected(text, fixture), `header ${name}: ${text}`);
        }
        for (const name of row.absent ?? []) {
          assert.equal(reply.headers[name], undefined, `header ${name} must be absent`);
        }
        clockShift = 0;
        await row.verify?.(fixture, reply);
      } finally {
        clockShift = 0;
      }
    });
  }

  it('the creation Location is the id of a real upload', async () => {
    const location = await createUpload(server.endpoint, 3);
    assert.match(idOf(location), /^[A-Za-z0-9_-]{22}$/);
    const state = await expectStatus(head(location), 200);
    assert.equal(state.headers['upload-length'], '3');
  });
});
