/**
 * Bad input never costs more than the one request: every case below is answered with a 4xx and a
 * machine-readable JSON error code, nothing is appended, and the same server then carries a normal
 * upload from creation to download. Cases are hand-picked variations (no property-testing library
 * is installed): each header gets its malformed, negative, non-numeric, huge and repeated forms.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  createUpload,
  head,
  OCTETS,
  type Reply,
  send,
  startServer,
  type TestServer,
  TUS,
  uploadWhole,
} from './tus-helpers.ts';

const MAX_SIZE = 10 * 1024 * 1024;
const MAX_HEADER_BYTES = 8192;
const MAX_METADATA_BYTES = 1024;

let server: TestServer;
let port: number;

before(async () => {
  server = await startServer({
    maxSize: MAX_SIZE,
    maxHeaderBytes: MAX_HEADER_BYTES,
    maxMetadataBytes: MAX_METADATA_BYTES,
  });
  port = Number(new URL(server.url).port);
});
after(() => server.stop());

/** A whole normal upload, checked byte for byte: the server is still healthy. */
async function assertServesNormalUpload(): Promise<void> {
  const content = randomBytes(4096);
  const location = await uploadWhole(server.endpoint, content);
  const file = await send(location);
  assert.equal(file.status, 200);
  assert.deepEqual(file.body, content);
}

function assertClientError(reply: Pick<Reply, 'status' | 'code'>, status: number, code: string): void {
  assert.equal(reply.status, status, `status (code ${reply.code})`);
  assert.equal(reply.code, code);
}

interface RawReply {
  status: number;
  headers: Record<string, string>;
  code: string | undefined;
  text: string;
}

/** Sends bytes exactly as given on a fresh socket and reads until the server closes it. */
function rawRequest(bytes: Buffer | string): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(new Error('no answer within 5 s')), 5000);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (error) => {
      clearTimeout(timer);
      // The server may reset after answering (it closes while we still write): keep what came.
      if (chunks.length > 0) finish();
      else reject(error);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      finish();
    });
    let done = false;
    function finish(): void {
      if (done) return;
      done = true;
      const text = Buffer.concat(chunks).toString('latin1');
      const [head = '', body = ''] = text.split('\r\n\r\n', 2);
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      let code: string | undefined;
      try {
        code = (JSON.parse(body) as { error?: { code?: string } }).error?.code;
      } catch {
        code = undefined;
      }
      resolve({ status: Number(statusLine.split(' ')[1]), headers, code, text });
    }
    // No half-close: Node's server aborts a request whose client sent FIN. Every request here
    // says `Connection: close` or is one the server answers by closing.
    socket.write(bytes);
  });
}

describe('malformed Upload-Metadata', () => {
  const values: Array<[string, string, string]> = [
    ['bad base64 (wrong length)', 'filename abc', 'ERR_INVALID_METADATA'],
    ['bad base64 (characters)', 'filename ab$d', 'ERR_INVALID_METADATA'],
    ['bad base64 (too much padding)', 'filename a===', 'ERR_INVALID_METADATA'],
    [
      'base64url instead of base64',
      `filename ${Buffer.from([0xfb, 0xff]).toString('base64url')}A`,
      'ERR_INVALID_METADATA',
    ],
    ['duplicate key', 'name YQ==,name Yg==', 'ERR_INVALID_METADATA'],
    ['duplicate key, one empty', 'name,name Yg==', 'ERR_INVALID_METADATA'],
    ['empty key', ',name YQ==', 'ERR_INVALID_METADATA'],
    ['empty pair in the middle', 'a YQ==,,b Yg==', 'ERR_INVALID_METADATA'],
    ['trailing comma', 'name YQ==,', 'ERR_INVALID_METADATA'],
    ['two spaces inside the value', 'name YQ== Yg==', 'ERR_INVALID_METADATA'],
    ['a key with a slash is fine but one with a quote char is not', 'na"me YQ==', 'ERR_INVALID_METADATA'],
    ['larger than maxMetadataBytes', `big ${'QUFB'.repeat(300)}`, 'ERR_METADATA_TOO_LARGE'],
  ];
  for (const [name, value, code] of values) {
    it(`${name}: 400 ${code}`, async () => {
      const reply = await send(server.endpoint, {
        method: 'POST',
        headers: { ...TUS, 'upload-length': '5', 'upload-metadata': value },
      });
      assertClientError(reply, 400, code);
      assert.equal(reply.headers.location, undefined);
      await assertServesNormalUpload();
    });
  }

  it('the same refusal holds for creation-with-upload: no upload, no bytes', async () => {
    const reply = await send(server.endpoint, {
      method: 'POST',
      headers: { ...OCTETS, 'upload-length': '5', 'upload-metadata': 'k not-base64' },
      body: 'hello',
    });
    assertClientError(reply, 400, 'ERR_INVALID_METADATA');
    assert.equal(reply.headers.location, undefined);
    await assertServesNormalUpload();
  });
});

const BAD_NUMBERS: Array<[string, string]> = [
  ['negative', '-1'],
  ['negative zero', '-0'],
  ['non-numeric', 'abc'],
  ['a decimal', '1.0'],
  ['an exponent', '1e3'],
  ['hexadecimal', '0x10'],
  ['with a plus sign', '+5'],
  ['empty', ''],
  ['two numbers', '5, 5'],
  ['beyond 2^53', '9007199254740993'],
  ['twenty digits', '99999999999999999999'],
  ['a hundred digits', '9'.repeat(100)],
];

describe('bad Upload-Length at creation', () => {
  for (const [name, value] of BAD_NUMBERS) {
    it(`${name} (${JSON.stringify(value.slice(0, 24))}): 400 ERR_INVALID_LENGTH`, async () => {
      const reply = await send(server.endpoint, {
        method: 'POST',
        headers: { ...TUS, 'upload-length': value },
      });
      assertClientError(reply, 400, 'ERR_INVALID_LENGTH');
      await assertServesNormalUpload();
    });
  }

  for (const value of [String(MAX_SIZE + 1), String(Number.MAX_SAFE_INTEGER)]) {
    it(`above the maximum (${value}): 413 ERR_UPLOAD_TOO_LARGE`, async () => {
      const reply = await send(server.endpoint, {
        method: 'POST',
        headers: { ...TUS, 'upload-length': value },
      });
      assertClientError(reply, 413, 'ERR_UPLOAD_TOO_LARGE');
      await assertServesNormalUpload();
    });
  }

  it('a deferred length declared above the maximum on PATCH: 413, bytes kept', async () => {
    const location = await createUpload(server.endpoint, 'deferred');
    const reply = await send(location, {
      method: 'PATCH',
      headers: { ...OCTETS, 'upload-offset': '0', 'upload-length': String(MAX_SIZE + 1) },
      body: 'abc',
    });
    assertClientError(reply, 413, 'ERR_UPLOAD_TOO_LARGE');
    const state = await head(location);
    assert.equal(state.headers['upload-offset'], '0');
    assert.equal(state.headers['upload-defer-length'], '1');
    await assertServesNormalUpload();
  });
});

describe('bad Upload-Offset on PATCH', () => {
  for (const [name, value] of BAD_NUMBERS) {
    it(`${name} (${JSON.stringify(value.slice(0, 24))}): 400 ERR_INVALID_OFFSET, nothing appended`, async () => {
      const location = await createUpload(server.endpoint, 10);
      const reply = await send(location, {
        method: 'PATCH',
        headers: { ...OCTETS, 'upload-offset': value },
        body: 'hello',
      });
      assertClientError(reply, 400, 'ERR_INVALID_OFFSET');
      assert.equal((await head(location)).headers['upload-offset'], '0');
      await assertServesNormalUpload();
    });
  }

  it('an offset beyond the upload (but numeric) is 409', async () => {
    const location = await createUpload(server.endpoint, 10);
    const reply = await send(location, {
      method: 'PATCH',
      headers: { ...OCTETS, 'upload-offset': String(Number.MAX_SAFE_INTEGER) },
      body: 'hello',
    });
    assertClientError(reply, 409, 'ERR_OFFSET_MISMATCH');
    await assertServesNormalUpload();
  });
});

describe('bad Upload-Checksum', () => {
  const values: Array<[string, string, string]> = [
    ['unknown algorithm', `blake3 ${randomBytes(32).toString('base64')}`, 'ERR_UNSUPPORTED_CHECKSUM'],
    ['upper-case algorithm', `SHA1 ${randomBytes(20).toString('base64')}`, 'ERR_UNSUPPORTED_CHECKSUM'],
    ['no digest', 'sha1', 'ERR_INVALID_CHECKSUM'],
    ['digest not base64', 'sha1 ****', 'ERR_INVALID_CHECKSUM'],
    ['digest of the wrong size', `sha256 ${randomBytes(20).toString('base64')}`, 'ERR_INVALID_CHECKSUM'],
    ['two spaces', `sha1  ${randomBytes(20).toString('base64')}`, 'ERR_INVALID_CHECKSUM'],
    ['three fields', `sha1 ${randomBytes(20).toString('base64')} extra`, 'ERR_INVALID_CHECKSUM'],
  ];
  for (const [name, value, code] of values) {
    it(`${name}: 400 ${code}, nothing appended`, async () => {
      const location = await createUpload(server.endpoint, 5);
      const reply = await send(location, {
        method: 'PATCH',
        headers: { ...OCTETS, 'upload-offset': '0', 'upload-checksum': value },
        body: 'hello',
      });
      assertClientError(reply, 400, code);
      assert.equal((await head(location)).headers['upload-offset'], '0');
      await assertServesNormalUpload();
    });
  }
});

describe('oversized headers', () => {
  it(`headers above maxHeaderBytes get 431 ERR_HEADERS_TOO_LARGE`, async () => {
    const reply = await rawRequest(
      'POST /files/ HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 5\r\n' +
        `X-Padding: ${'a'.repeat(MAX_HEADER_BYTES * 2)}\r\n\r\n`,
    );
    assertClientError(reply, 431, 'ERR_HEADERS_TOO_LARGE');
    await assertServesNormalUpload();
  });

  it('many small headers adding up above the limit get 431 too', async () => {
    let headers = '';
    for (let index = 0; headers.length < MAX_HEADER_BYTES * 2; index++)
      headers += `X-H${index}: ${'b'.repeat(60)}\r\n`;
    const reply = await rawRequest(
      `HEAD /files/AAAAAAAAAAAAAAAAAAAAAA HTTP/1.1\r\nHost: x\r\n${headers}\r\n`,
    );
    assertClientError(reply, 431, 'ERR_HEADERS_TOO_LARGE');
    await assertServesNormalUpload();
  });
});

describe('path traversal and hostile ids', () => {
  const paths = [
    '/files/../../etc/passwd',
    '/files/..%2f..%2fetc%2fpasswd',
    '/files/%2e%2e%2f%2e%2e%2fetc%2fpasswd',
    '/files/%2E%2E/%2E%2E/etc/passwd',
    '/files/AAAAAAAAAAAAAAAAAAAAAA%00',
    '/files/AAAAAAAAAAAAAAAAAAAAAA%2f..',
    '/files/AAAAAAAAAAAAAAAAAAAAAA/../../ferry.db',
    '/files/..',
    '/files/.',
    '/files/short',
    `/files/${'A'.repeat(129)}`,
    '/files/AAAAAAAAAAAAAAAA.parts',
    '/files/%41AAAAAAAAAAAAAAAAAAAAA',
  ];
  for (const path of paths) {
    for (const method of ['GET', 'HEAD', 'PATCH', 'DELETE'] as const) {
      it(`${method} ${path.slice(0, 60)}: 404, no file served`, async () => {
        const headers =
          method === 'PATCH' ? { ...OCTETS, 'upload-offset': '0' } : method === 'GET' ? {} : { ...TUS };
        const reply = await rawRequest(
          `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n` +
            Object.entries(headers)
              .map(([name, value]) => `${name}: ${value}\r\n`)
              .join('') +
            (method === 'PATCH' ? 'Content-Length: 1\r\n\r\nx' : '\r\n'),
        );
        assert.equal(reply.status, 404, reply.text.slice(0, 300));
        if (method !== 'HEAD')
          assert.ok(reply.code === 'ERR_INVALID_ID' || reply.code === 'ERR_NOT_FOUND', reply.code);
        assert.doesNotMatch(reply.text, /root:|SQLite format/);
      });
    }
  }

  it('a literal NUL in the path (raw socket) is refused with 400 ERR_BAD_REQUEST', async () => {
    const reply = await rawRequest(
      Buffer.from('GET /files/AAAAAAAAAAAAAAAA\u0000AAAAAA HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 'latin1'),
    );
    assertClientError(reply, 400, 'ERR_BAD_REQUEST');
    await assertServesNormalUpload();
  });

  it('a literal NUL in a tus header (raw socket) is refused with 400 ERR_BAD_REQUEST', async () => {
    const reply = await rawRequest(
      Buffer.from(
        'POST /files/ HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 5\u0000\r\n\r\n',
        'latin1',
      ),
    );
    assertClientError(reply, 400, 'ERR_BAD_REQUEST');
    await assertServesNormalUpload();
  });

  it('the server still serves normal uploads after the traversal attempts', assertServesNormalUpload);
});

describe('PATCH past the declared length', () => {
  it('with Content-Length: 413 ERR_EXCEEDS_LENGTH, nothing appended', async () => {
    const location = await createUpload(server.endpoint, 5);
    const reply = await send(location, {
      method: 'PATCH',
      headers: { ...OCTETS, 'upload-offset': '0' },
      body: 'hello world',
    });
    assertClientError(reply, 413, 'ERR_EXCEEDS_LENGTH');
    assert.equal((await head(location)).headers['upload-offset'], '0');
    await assertServesNormalUpload();
  });

  it('chunked (no Content-Length): 413 and not one byte past the length is stored', async () => {
    const location = await createUpload(server.endpoint, 5);
    assert.equal(
      (await send(location, { method: 'PATCH', headers: { ...OCTETS, 'upload-offset': '0' }, body: 'ab' }))
        .status,
      204,
    );
    const reply = await rawRequest(
      `PATCH ${new URL(location).pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n` +
        'Content-Type: application/offset+octet-stream\r\nUpload-Offset: 2\r\nTransfer-Encoding: chunked\r\n' +
        'Connection: close\r\n\r\n3\r\ncde\r\n5\r\nfghij\r\n0\r\n\r\n',
    );
    assertClientError(reply, 413, 'ERR_EXCEEDS_LENGTH');
    const state = await head(location);
    assert.ok(Number(state.headers['upload-offset']) <= 5);
    const file = await send(location);
    if (file.status === 200) assert.equal(file.body.toString(), 'abcde');
    else assertClientError(file, 404, 'ERR_UPLOAD_NOT_FINISHED');
    await assertServesNormalUpload();
  });

  it('at the end of a finished upload: never a byte more', async () => {
    const location = await uploadWhole(server.endpoint, 'abc');
    const reply = await send(location, {
      method: 'PATCH',
      headers: { ...OCTETS, 'upload-offset': '3' },
      body: 'd',
    });
    // A body past the declared length is refused even at the end (tusd would answer 204 and
    // ignore it); an empty PATCH there is a harmless 204.
    assertClientError(reply, 413, 'ERR_EXCEEDS_LENGTH');
    const empty = await send(location, { method: 'PATCH', headers: { ...OCTETS, 'upload-offset': '3' } });
    assert.equal(empty.status, 204);
    assert.equal(empty.headers['upload-offset'], '3');
    assert.equal((await send(location)).body.toString(), 'abc');
    assert.equal((await head(location)).headers['upload-offset'], '3');
  });
});

describe('wrong Tus-Resumable', () => {
  for (const value of ['0.2.2', '1.0', '1.0.0 ', '1.0.0, 1.0.0', 'v1.0.0', '', '2.0.0']) {
    it(`${JSON.stringify(value)}: 412 ERR_UNSUPPORTED_VERSION with Tus-Version`, async () => {
      const location = await createUpload(server.endpoint, 5);
      for (const [method, url, extra, body] of [
        ['POST', server.endpoint, { 'upload-length': '5' }, undefined],
        [
          'PATCH',
          location,
          { 'content-type': 'application/offset+octet-stream', 'upload-offset': '0' },
          'hello',
        ],
        ['DELETE', location, {}, undefined],
      ] as const) {
        const reply = await send(url, {
          method,
          headers: { 'tus-resumable': value, ...extra },
          ...(body === undefined ? {} : { body }),
        });
        // '1.0.0 ' is trimmed by the HTTP parser (RFC 9110 strips surrounding whitespace).
        if (value === '1.0.0 ') {
          assert.ok(reply.status < 300, `${method} ${reply.status}`);
          continue;
        }
        assertClientError(reply, 412, 'ERR_UNSUPPORTED_VERSION');
        assert.equal(reply.headers['tus-version'], '1.0.0');
      }
      await assertServesNormalUpload();
    });
  }
});

describe('other odd requests', () => {
  it('repeated Upload-Offset headers: 400', async () => {
    const location = await createUpload(server.endpoint, 5);
    const reply = await rawRequest(
      `PATCH ${new URL(location).pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n` +
        'Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nUpload-Offset: 0\r\n' +
        'Content-Length: 5\r\nConnection: close\r\n\r\nhello',
    );
    assertClientError(reply, 400, 'ERR_INVALID_OFFSET');
    assert.equal((await head(location)).headers['upload-offset'], '0');
  });

  it('an unknown method on an upload: 405 with Allow', async () => {
    const location = await createUpload(server.endpoint, 5);
    const reply = await send(location, { method: 'PUT', headers: { ...TUS }, body: 'hello' });
    assertClientError(reply, 405, 'ERR_METHOD_NOT_ALLOWED');
    assert.ok(reply.headers.allow);
  });

  it('an override to an unsupported method leaves a POST on an upload: 405', async () => {
    const location = await createUpload(server.endpoint, 5);
    const reply = await send(location, {
      method: 'POST',
      headers: { ...TUS, 'x-http-method-override': 'TRACE' },
    });
    assertClientError(reply, 405, 'ERR_METHOD_NOT_ALLOWED');
  });

  it('Upload-Concat: final; without URLs, or naming garbage: 400', async () => {
    for (const [value, code] of [
      ['final;', 'ERR_INVALID_CONCAT'],
      ['final; ', 'ERR_INVALID_CONCAT'],
      ['final;http://[::1', 'ERR_INVALID_CONCAT'],
      ['final;/files/../../etc/passwd', 'ERR_CONCAT_PARTIAL_NOT_FOUND'],
      ['partial;x', 'ERR_INVALID_CONCAT'],
    ] as const) {
      const reply = await send(server.endpoint, {
        method: 'POST',
        headers: { ...TUS, 'upload-concat': value },
      });
      assertClientError(reply, 400, code);
    }
    await assertServesNormalUpload();
  });

  it('a malformed request line (raw socket): 400 ERR_BAD_REQUEST', async () => {
    const reply = await rawRequest('PATCH\r\n\r\n');
    assertClientError(reply, 400, 'ERR_BAD_REQUEST');
    await assertServesNormalUpload();
  });
});
