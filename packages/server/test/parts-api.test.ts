/**
 * The parts API over real loopback HTTP: creation, parts in any order and in parallel, idempotent
 * and replaced parts, digests, completion with missing parts, whole-file verification, dedup,
 * abort, events, and bad input (each a 4xx with its error code while the server keeps serving).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PART_LIMITS } from '@ferry/protocol';
import { createFsDataStore } from '../src/stores/fs/fs-data-store.ts';
import { type Reply, send, startServer, type TestServer } from './tus-helpers.ts';

const MiB = 1024 * 1024;
const PART = PART_LIMITS.minPartSize;

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const digestOf = (bytes: Uint8Array) => `sha-256=:${createHash('sha256').update(bytes).digest('base64')}:`;

interface Created {
  id: string;
  url: string;
  partSize: number;
  partCount: number;
  expiresAt: string | null;
}

describe('parts API', () => {
  let server: TestServer;
  let uploads: string;

  before(async () => {
    server = await startServer();
    uploads = `${server.url}/uploads`;
  });
  after(async () => server.stop());

  const postJson = (url: string, value: unknown, headers: Record<string, string> = {}) =>
    send(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(value),
    });

  async function create(value: Record<string, unknown>): Promise<Created> {
    const reply = await postJson(uploads, value);
    assert.equal(reply.status, 201, reply.body.toString());
    return reply.json as Created;
  }

  const putPart = (url: string, n: number | string, bytes: Buffer, headers: Record<string, string> = {}) =>
    send(`${url}/parts/${n}`, {
      method: 'PUT',
      headers: { 'content-length': bytes.length, ...headers },
      body: bytes,
    });

  const partOf = (file: Buffer, n: number, partSize = PART) =>
    file.subarray((n - 1) * partSize, n * partSize);

  async function download(url: string): Promise<Reply> {
    return send(url);
  }

  it('creates an upload with the server-chosen part size and its URLs', async () => {
    const reply = await postJson(uploads, { size: 20 * MiB, name: 'movie.mp4', type: 'video/mp4' });
    assert.equal(reply.status, 201);
    const body = reply.json as Created;
    assert.equal(body.partSize, 8 * MiB);
    assert.equal(body.partCount, 3);
    assert.equal(body.url, `${uploads}/${body.id}`);
    assert.equal(reply.headers.location, body.url);
    assert.ok(body.expiresAt !== null && Date.parse(body.expiresAt) > Date.now());
  });

  it('takes parts in any order and in parallel; completes into a file equal to the source', async () => {
    const file = randomBytes(2 * PART + 12345);
    const upload = await create({ size: file.length, partSize: PART, name: 'data.bin' });
    assert.equal(upload.partCount, 3);
    const replies = await Promise.all(
      [3, 1, 2].map((n) =>
        putPart(upload.url, n, partOf(file, n), { 'content-digest': digestOf(partOf(file, n)) }),
      ),
    );
    for (const [i, n] of [3, 1, 2].entries()) {
      assert.equal(replies[i]?.status, 200, replies[i]?.body.toString());
      assert.deepEqual(replies[i]?.json, {
        n,
        size: partOf(file, n).length,
        digest: digestOf(partOf(file, n)),
      });
    }
    const status = await send(upload.url);
    assert.equal(status.status, 200);
    const state = status.json as {
      received: number[][];
      receivedBytes: number;
      state: string;
      parts: unknown[];
    };
    assert.deepEqual(state.received, [[1, 3]]);
    assert.equal(state.receivedBytes, file.length);
    assert.equal(state.state, 'uploading');
    assert.equal(state.parts.length, 3);

    const done = await postJson(`${upload.url}/complete`, { sha256: sha256(file) });
    assert.equal(done.status, 200, done.body.toString());
    const info = (done.json as { file: { url: string; size: number; sha256: string; name: string } }).file;
    assert.equal(info.size, file.length);
    assert.equal(info.sha256, sha256(file));
    assert.equal(info.name, 'data.bin');
    const got = await download(info.url);
    assert.equal(got.status, 200);
    assert.equal(sha256(got.body), sha256(file));
    assert.match(String(got.headers['content-disposition']), /data\.bin/);
    // The verified digest of the whole file, on whole and ranged downloads (RFC 9530 Repr-Digest).
    assert.equal(got.headers['repr-digest'], digestOf(file));
    const ranged = await send(info.url, { headers: { range: 'bytes=10-19' } });
    assert.equal(ranged.status, 206);
    assert.equal(ranged.headers['repr-digest'], digestOf(file));

    // Completing again answers the same file; a part after completion is refused.
    const again = await postJson(`${upload.url}/complete`, {});
    assert.equal(again.status, 200);
    const late = await putPart(upload.url, 1, partOf(file, 1));
    assert.equal(late.status, 409);
    assert.equal(late.code, 'ERR_UPLOAD_FINISHED');
  });

  it('reports the SHA-256 its running hash computed when none was declared (hashUploads off)', async () => {
    const file = randomBytes(2 * PART + 999);
    const upload = await create({ size: file.length, partSize: PART });
    // Out of order: parts after the hash's position wait in memory until it reaches them.
    for (const n of [2, 3, 1]) {
      const reply = await putPart(upload.url, n, partOf(file, n), {
        'content-digest': digestOf(partOf(file, n)),
      });
      assert.equal(reply.status, 200, reply.body.toString());
    }
    const done = await postJson(`${upload.url}/complete`, {});
    assert.equal(done.status, 200, done.body.toString());
    const info = (done.json as { file: { url: string; sha256: string | null } }).file;
    assert.equal(info.sha256, sha256(file));
    assert.equal((await download(info.url)).headers['repr-digest'], digestOf(file));
    // A digest the server computed itself serves dedup.
    const again = await postJson(uploads, { size: file.length, sha256: sha256(file) });
    assert.equal(again.status, 200, again.body.toString());
    assert.equal((again.json as { deduplicated: boolean }).deduplicated, true);
  });

  describe('parts whose client declines their digest (Want-Content-Digest: sha-256=0)', () => {
    const decline = { 'want-content-digest': 'sha-256=0' };
    interface Status {
      parts?: Array<{ n: number; size: number; digest?: string }>;
    }

    it('answers and lists them without a digest; complete still verifies the whole file', async () => {
      const file = randomBytes(2 * PART + 5);
      const upload = await create({ size: file.length, partSize: PART });
      for (const n of [3, 1, 2]) {
        const reply = await putPart(upload.url, n, partOf(file, n), decline);
        assert.equal(reply.status, 200, reply.body.toString());
        assert.deepEqual(reply.json, { n, size: partOf(file, n).length });
      }
      const listed = ((await send(upload.url)).json as Status).parts ?? [];
      assert.deepEqual(
        listed.map((part) => part.digest),
        [undefined, undefined, undefined],
      );
      // A wrong declared SHA-256 is still refused: the running hash covers every part.
      const wrong = await postJson(`${upload.url}/complete`, { sha256: sha256(randomBytes(4)) });
      assert.equal(wrong.code, 'ERR_SHA256_MISMATCH');
      const done = await postJson(`${upload.url}/complete`, { sha256: sha256(file) });
      assert.equal(done.status, 200, done.body.toString());
      assert.equal((done.json as { file: { sha256: string } }).file.sha256, sha256(file));
    });

    it('other weights, other algorithms and a malformed field still get the digest', async () => {
      const file = randomBytes(100);
      const upload = await create({ size: file.length });
      for (const want of ['sha-256=1', 'sha-512=0', 'sha-256=zero', 'sha-256']) {
        const reply = await putPart(upload.url, 1, file, { 'want-content-digest': want });
        assert.equal((reply.json as { digest?: string }).digest, digestOf(file), want);
      }
    });

    it('a Content-Digest sent along is still checked, and answered', async () => {
      const file = randomBytes(100);
      const upload = await create({ size: file.length });
      const bad = await putPart(upload.url, 1, file, {
        ...decline,
        'content-digest': digestOf(randomBytes(3)),
      });
      assert.equal(bad.code, 'ERR_DIGEST_MISMATCH');
      const good = await putPart(upload.url, 1, file, { ...decline, 'content-digest': digestOf(file) });
      assert.equal((good.json as { digest?: string }).digest, digestOf(file));
    });

    it("a part re-sent with other bytes after it was hashed: never the first bytes' SHA-256", async () => {
      const file = randomBytes(2 * PART);
      const upload = await create({ size: file.length, partSize: PART });
      assert.equal((await putPart(upload.url, 1, randomBytes(PART), decline)).status, 200);
      assert.equal((await putPart(upload.url, 2, partOf(file, 2), decline)).status, 200);
      assert.equal((await putPart(upload.url, 1, partOf(file, 1), decline)).status, 200);
      const done = await postJson(`${upload.url}/complete`, {});
      assert.equal(done.status, 200, done.body.toString());
      // Only its write tag tells the hashed part 1 from the stored one (no digests): the running hash
      // must not vouch for the file, so it gets no SHA-256 rather than the first bytes' one.
      const info = (done.json as { file: { url: string; sha256: string | null } }).file;
      assert.ok(info.sha256 === null || info.sha256 === sha256(file), `wrong SHA-256 ${info.sha256}`);
      assert.ok((await download(info.url)).body.equals(file));
    });

    it("after a refused whole-file SHA-256, the status lists every part's digest", async () => {
      const file = randomBytes(2 * PART + 7);
      const upload = await create({ size: file.length, partSize: PART });
      for (let n = 1; n <= 3; n++) await putPart(upload.url, n, partOf(file, n), decline);
      const refused = await postJson(`${upload.url}/complete`, { sha256: sha256(randomBytes(4)) });
      assert.equal(refused.code, 'ERR_SHA256_MISMATCH');
      const listed = ((await send(upload.url)).json as Status).parts ?? [];
      assert.deepEqual(
        listed.map((part) => part.digest),
        [1, 2, 3].map((n) => digestOf(partOf(file, n))),
      );
    });
  });

  it('accepts a part sent twice, and a re-sent part replaces the earlier bytes', async () => {
    const file = randomBytes(PART + 10);
    const upload = await create({ size: file.length, partSize: PART });
    const wrong = randomBytes(PART);
    assert.equal((await putPart(upload.url, 1, wrong)).status, 200);
    const twice = await Promise.all([
      putPart(upload.url, 1, partOf(file, 1)),
      putPart(upload.url, 1, partOf(file, 1)),
    ]);
    for (const reply of twice) assert.ok(reply.status === 200 || reply.status === 423, String(reply.status));
    if (twice.some((reply) => reply.status !== 200))
      assert.equal((await putPart(upload.url, 1, partOf(file, 1))).status, 200);
    assert.equal((await putPart(upload.url, 2, partOf(file, 2))).status, 200);
    const done = await postJson(`${upload.url}/complete`, { sha256: sha256(file) });
    assert.equal(done.status, 200, done.body.toString());
  });

  it('refuses a part whose Content-Digest does not match, and does not store it', async () => {
    const file = randomBytes(PART + 10);
    const upload = await create({ size: file.length, partSize: PART });
    assert.equal((await putPart(upload.url, 2, partOf(file, 2))).status, 200);
    const reply = await putPart(upload.url, 2, partOf(file, 2), {
      'content-digest': digestOf(randomBytes(10)),
    });
    assert.equal(reply.status, 400);
    assert.equal(reply.code, 'ERR_DIGEST_MISMATCH');
    // The copy stored before under that number is dropped too: its bytes were overwritten.
    const state = (await send(upload.url)).json as { received: number[][] };
    assert.deepEqual(state.received, []);
  });

  it('refuses to complete while parts are missing, listing them', async () => {
    const file = randomBytes(3 * PART + 1);
    const upload = await create({ size: file.length, partSize: PART });
    assert.equal(upload.partCount, 4);
    assert.equal((await putPart(upload.url, 2, partOf(file, 2))).status, 200);
    const reply = await postJson(`${upload.url}/complete`, {});
    assert.equal(reply.status, 409);
    assert.equal(reply.code, 'ERR_PARTS_MISSING');
    assert.deepEqual(
      (reply.json as { error: { details: { missing: number[] } } }).error.details.missing,
      [1, 3, 4],
    );
    const fileUrl = `${server.endpoint}${upload.id}`;
    assert.equal((await send(fileUrl)).status, 404, 'a partial file is never visible');
  });

  it('refuses a wrong declared SHA-256: the file stays invisible and the upload open', async () => {
    const file = randomBytes(PART + 99);
    const upload = await create({ size: file.length, partSize: PART });
    await putPart(upload.url, 1, partOf(file, 1));
    await putPart(upload.url, 2, partOf(file, 2));
    const reply = await postJson(`${upload.url}/complete`, { sha256: sha256(randomBytes(8)) });
    assert.equal(reply.status, 422);
    assert.equal(reply.code, 'ERR_SHA256_MISMATCH');
    assert.equal(
      (reply.json as { error: { details: { actual: string } } }).error.details.actual,
      sha256(file),
    );
    assert.equal((await send(`${server.endpoint}${upload.id}`)).status, 404);
    assert.equal(((await send(upload.url)).json as { state: string }).state, 'uploading');
    const right = await postJson(`${upload.url}/complete`, { sha256: sha256(file) });
    assert.equal(right.status, 200);
  });

  it('refuses completion when the digest declared at creation does not match', async () => {
    const file = randomBytes(1000);
    const upload = await create({ size: file.length, sha256: sha256(randomBytes(3)) });
    assert.equal((await putPart(upload.url, 1, file)).status, 200);
    const reply = await postJson(`${upload.url}/complete`, {});
    assert.equal(reply.status, 422);
    assert.equal(reply.code, 'ERR_SHA256_MISMATCH');
  });

  describe('dedup', () => {
    it('completes at once, without a byte sent, when the same verified file exists', async () => {
      const file = randomBytes(300_000);
      const first = await create({ size: file.length, sha256: sha256(file), name: 'a.bin' });
      assert.equal((await putPart(first.url, 1, file)).status, 200);
      assert.equal((await postJson(`${first.url}/complete`, {})).status, 200);

      const reply = await postJson(uploads, { size: file.length, sha256: sha256(file), name: 'b.bin' });
      assert.equal(reply.status, 200, reply.body.toString());
      const body = reply.json as {
        id: string;
        deduplicated: boolean;
        file: { url: string; name: string; sha256: string };
      };
      assert.equal(body.deduplicated, true);
      assert.notEqual(body.id, first.id);
      assert.equal(body.file.name, 'b.bin');
      assert.equal(body.file.sha256, sha256(file));
      const got = await download(body.file.url);
      assert.equal(sha256(got.body), sha256(file));
      // The copy shares bytes but not fate: deleting the first keeps the second.
      await send(`${server.endpoint}${first.id}`, {
        method: 'DELETE',
        headers: { 'tus-resumable': '1.0.0' },
      });
      assert.equal(sha256((await download(body.file.url)).body), sha256(file));
    });

    it('records no digest that the server did not verify (no poisoning)', async () => {
      const real = randomBytes(5000);
      const claimed = sha256(randomBytes(5000));
      const liar = await create({ size: real.length, sha256: claimed });
      await putPart(liar.url, 1, real);
      assert.equal((await postJson(`${liar.url}/complete`, {})).status, 422);
      const victim = await postJson(uploads, { size: real.length, sha256: claimed });
      assert.equal(victim.status, 201, 'not deduplicated against unverified bytes');
    });

    it('does not match a different size', async () => {
      const file = randomBytes(4000);
      const first = await create({ size: file.length, sha256: sha256(file) });
      await putPart(first.url, 1, file);
      await postJson(`${first.url}/complete`, {});
      const other = await postJson(uploads, { size: file.length + 1, sha256: sha256(file) });
      assert.equal(other.status, 201);
    });
  });

  it('aborts an upload: 204, then it and its bytes are gone', async () => {
    const file = randomBytes(PART + 1);
    const upload = await create({ size: file.length, partSize: PART });
    await putPart(upload.url, 1, partOf(file, 1));
    const reply = await send(upload.url, { method: 'DELETE' });
    assert.equal(reply.status, 204);
    assert.equal((await send(upload.url)).status, 404);
    assert.equal(existsSync(join(server.dataDir, 'uploads', upload.id)), false);
    assert.equal((await putPart(upload.url, 2, partOf(file, 2))).status, 404);
  });

  it('completes an empty file without any part', async () => {
    const upload = await create({ size: 0 });
    assert.equal(upload.partCount, 1);
    const done = await postJson(`${upload.url}/complete`, { sha256: sha256(Buffer.alloc(0)) });
    assert.equal(done.status, 200, done.body.toString());
    const got = await download((done.json as { file: { url: string } }).file.url);
    assert.equal(got.status, 200);
    assert.equal(got.body.length, 0);
  });

  it('streams progress and completion as Server-Sent Events', async () => {
    const file = randomBytes(PART + 500);
    const upload = await create({ size: file.length, partSize: PART });
    const events: { event: string; data: { type: string; receivedBytes?: number } }[] = [];
    const ended = new Promise<void>((resolve, reject) => {
      const req = httpRequest(`${upload.url}/events`, { agent: false }, (res) => {
        assert.equal(res.statusCode, 200);
        assert.match(String(res.headers['content-type']), /^text\/event-stream/);
        let buffer = '';
        res.setEncoding('utf8');
        res.on('data', (text: string) => {
          buffer += text;
          let end = buffer.indexOf('\n\n');
          while (end !== -1) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const event = /^event: (.*)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (event !== undefined && data !== undefined) events.push({ event, data: JSON.parse(data) });
            end = buffer.indexOf('\n\n');
          }
        });
        res.on('end', resolve);
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    while (events.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    await putPart(upload.url, 2, partOf(file, 2));
    await putPart(upload.url, 1, partOf(file, 1));
    await postJson(`${upload.url}/complete`, {});
    await ended;
    assert.deepEqual(
      events.map((event) => event.event),
      ['progress', 'progress', 'progress', 'completed'],
    );
    assert.deepEqual(
      events.slice(0, 3).map((event) => event.data.receivedBytes),
      [0, 500, file.length],
    );
  });

  it('keeps tus and parts uploads apart (409 ERR_WRONG_PROTOCOL)', async () => {
    const upload = await create({ size: 10 });
    const head = await send(`${server.endpoint}${upload.id}`, {
      method: 'HEAD',
      headers: { 'tus-resumable': '1.0.0' },
    });
    assert.equal(head.status, 409);
    const created = await send(server.endpoint, {
      method: 'POST',
      headers: { 'tus-resumable': '1.0.0', 'upload-length': '5' },
    });
    const tusId = String(created.headers.location).split('/').pop();
    const status = await send(`${uploads}/${tusId}`);
    assert.equal(status.status, 409);
    assert.equal(status.code, 'ERR_WRONG_PROTOCOL');
  });

  describe('bad input: a 4xx with an error code, and the server keeps serving', () => {
    let upload: Created;
    before(async () => {
      upload = await create({ size: PART + 10, partSize: PART });
    });

    for (const n of ['0', '-1', '1.5', 'abc', '10001', '01', '99999999999']) {
      it(`refuses part number ${JSON.stringify(n)}`, async () => {
        const reply = await putPart(upload.url, n, Buffer.alloc(10));
        assert.equal(reply.status, 400);
        assert.equal(reply.code, 'ERR_INVALID_PART_NUMBER');
      });
    }

    it('refuses a part number past partCount', async () => {
      const reply = await putPart(upload.url, 3, Buffer.alloc(10));
      assert.equal(reply.status, 400);
      assert.equal(reply.code, 'ERR_INVALID_PART_NUMBER');
    });

    it('refuses a part of the wrong size (too short and too long)', async () => {
      for (const bytes of [Buffer.alloc(PART - 1), Buffer.alloc(11)]) {
        const n = bytes.length === 11 ? 2 : 1;
        const reply = await putPart(upload.url, n, bytes);
        assert.equal(reply.status, 400);
        assert.equal(reply.code, 'ERR_PART_SIZE_MISMATCH');
      }
    });

    it('refuses a part without Content-Length (chunked)', async () => {
      const reply = await send(`${upload.url}/parts/2`, {
        method: 'PUT',
        headers: { 'transfer-encoding': 'chunked' },
        body: Buffer.alloc(10),
      });
      assert.equal(reply.status, 411);
      assert.equal(reply.code, 'ERR_CONTENT_LENGTH_REQUIRED');
    });

    it('refuses a malformed Content-Digest', async () => {
      const reply = await putPart(upload.url, 2, Buffer.alloc(10), { 'content-digest': 'sha-256=nope' });
      assert.equal(reply.status, 400);
      assert.equal(reply.code, 'ERR_INVALID_DIGEST');
    });

    const cases: [string, unknown, number, string][] = [
      ['an unknown field', { size: 1, colour: 'red' }, 400, 'ERR_UNKNOWN_FIELD'],
      ['a misspelt sha256', { size: 1, sha265: 'x' }, 400, 'ERR_UNKNOWN_FIELD'],
      ['a missing size', { name: 'x' }, 400, 'ERR_INVALID_FIELD'],
      ['a negative size', { size: -1 }, 400, 'ERR_INVALID_FIELD'],
      ['a fractional size', { size: 1.5 }, 400, 'ERR_INVALID_FIELD'],
      ['a size as a string', { size: '10' }, 400, 'ERR_INVALID_FIELD'],
      ['a size above the maximum', { size: 2 ** 52 }, 413, 'ERR_UPLOAD_TOO_LARGE'],
      [
        'a part size below 5 MiB for many parts',
        { size: 20 * MiB, partSize: MiB },
        400,
        'ERR_INVALID_PART_SIZE',
      ],
      ['more than 10,000 parts', { size: 60_000 * MiB, partSize: 5 * MiB }, 400, 'ERR_INVALID_PART_SIZE'],
      ['a bad sha256', { size: 1, sha256: 'xyz' }, 400, 'ERR_INVALID_FIELD'],
      ['metadata that is not strings', { size: 1, metadata: { a: 1 } }, 400, 'ERR_INVALID_FIELD'],
      ['a name that is not a string', { size: 1, name: 7 }, 400, 'ERR_INVALID_FIELD'],
      ['an array', [1, 2], 400, 'ERR_INVALID_JSON'],
      ['a string', 'hello', 400, 'ERR_INVALID_JSON'],
    ];
    for (const [what, body, status, code] of cases) {
      it(`refuses a creation with ${what}`, async () => {
        const reply = await postJson(uploads, body);
        assert.equal(reply.status, status, reply.body.toString());
        assert.equal(reply.code, code);
      });
    }

    it('refuses malformed JSON, a wrong content type and an oversized body', async () => {
      const malformed = await send(uploads, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"size": ',
      });
      assert.equal(malformed.status, 400);
      assert.equal(malformed.code, 'ERR_INVALID_JSON');
      const wrongType = await send(uploads, {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: '{"size":1}',
      });
      assert.equal(wrongType.status, 415);
      assert.equal(wrongType.code, 'ERR_UNSUPPORTED_MEDIA_TYPE');
      const huge = await postJson(uploads, { size: 1, metadata: { big: 'x'.repeat(100_000) } });
      assert.equal(huge.status, 413);
      assert.equal(huge.code, 'ERR_JSON_TOO_LARGE');
      const unknownOnComplete = await postJson(`${upload.url}/complete`, {
        sha256: 'a'.repeat(64),
        force: true,
      });
      assert.equal(unknownOnComplete.status, 400);
      assert.equal(unknownOnComplete.code, 'ERR_UNKNOWN_FIELD');
    });

    it('refuses bad ids and unknown routes', async () => {
      assert.equal((await send(`${uploads}/..%2f..%2fetc`)).code, 'ERR_INVALID_ID');
      assert.equal((await send(`${upload.url}/nothing`)).status, 404);
      assert.equal((await send(`${upload.url}/parts/1`)).status, 405);
      assert.equal((await send(uploads, { method: 'PUT' })).status, 405);
    });

    it('still serves after all of that', async () => {
      const reply = await send(upload.url);
      assert.equal(reply.status, 200);
      assert.equal((await send(`${server.url}/healthz`)).status, 200);
    });
  });
});

describe('parts API: namespaces', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(async () => server.stop());

  it('never deduplicates across namespaces, and never shows an upload to another namespace', async () => {
    const { Readable } = await import('node:stream');
    const parts = server.ferry.parts;
    const file = randomBytes(4096);
    const digest = sha256(file);
    const mine = await parts.create({ namespace: 'alice', size: file.length, metadata: {}, sha256: digest });
    await parts.putPart(mine.record.id, {
      namespace: 'alice',
      n: 1,
      body: Readable.from([file]),
      contentLength: file.length,
    });
    const finished = await parts.complete(mine.record.id, { namespace: 'alice' });
    assert.equal(finished.sha256, digest);

    const sameNamespace = await parts.create({
      namespace: 'alice',
      size: file.length,
      metadata: {},
      sha256: digest,
    });
    assert.equal(sameNamespace.deduplicated, true);
    const otherNamespace = await parts.create({
      namespace: 'bob',
      size: file.length,
      metadata: {},
      sha256: digest,
    });
    assert.equal(otherNamespace.deduplicated, false, 'dedup must not reveal that alice has this file');
    await assert.rejects(parts.status(mine.record.id, 'bob'), { code: 'ERR_NOT_FOUND' });
  });
});

describe('parts API: a storage that cannot read files back', () => {
  let server: TestServer;
  let directory: string;
  before(async () => {
    directory = await mkdtemp(join(tmpdir(), 'ferry-noread-'));
    const fs = createFsDataStore({ directory, durability: 'none' });
    // Everything but Downloadable (`stat`, `read`).
    const store = {
      kind: 'fs-without-reads',
      create: fs.create.bind(fs),
      getOffset: fs.getOffset.bind(fs),
      append: fs.append.bind(fs),
      finalize: fs.finalize.bind(fs),
      remove: fs.remove.bind(fs),
      putPart: fs.putPart.bind(fs),
      completeParts: fs.completeParts.bind(fs),
    };
    server = await startServer({ dataStore: store });
  });
  after(async () => {
    await server.stop();
    await rm(directory, { recursive: true, force: true });
  });

  it('refuses to complete with a declared SHA-256 it cannot check, and completes without one', async () => {
    const bytes = randomBytes(1000);
    const post = (body: unknown) =>
      send(`${server.url}/uploads`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const declared = (await post({ size: bytes.length, sha256: sha256(bytes) })).json as { url: string };
    const put = (url: string) =>
      send(`${url}/parts/1`, { method: 'PUT', headers: { 'content-length': bytes.length }, body: bytes });
    assert.equal((await put(declared.url)).status, 200);
    const refused = await send(`${declared.url}/complete`, { method: 'POST' });
    assert.equal(refused.status, 405);
    assert.equal(((await send(declared.url)).json as { state: string }).state, 'uploading');

    const plain = (await post({ size: bytes.length })).json as { url: string };
    assert.equal((await put(plain.url)).status, 200);
    assert.equal((await send(`${plain.url}/complete`, { method: 'POST' })).status, 200);
  });
});
