/** The Node seams on their own: the node:http client's failures, the sources, the hasher. */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { rm, truncate, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SourceRange } from '../src/core/seams.ts';
import { BlobSource, BytesSource, type ClientError, ClientError as ClientErrorClass } from '../src/index.ts';
import {
  createNodeHasher,
  createNodeHttpClient,
  NodeFileSource,
  openNodeSource,
  StreamSource,
} from '../src/node-api.ts';
import { MiB, makeTempDir, sha256 } from './helpers.ts';

const request = (url: string, overrides: object = {}) => ({
  method: 'POST',
  url,
  headers: {},
  signal: new AbortController().signal,
  stallTimeoutMs: 2000,
  timeoutMs: 0,
  ...overrides,
});

describe('Node HTTP client', () => {
  let server: Server;
  let origin: string;
  /** Bytes the server got of the last request whose connection closed before its body's end. */
  let cut: number | undefined;
  const http = createNodeHttpClient();

  before(async () => {
    server = createServer((req, res) => {
      if (req.url === '/silent') return; // never answers
      if (req.url === '/refuse') {
        // Answers before reading the body, then reads and drops it.
        res.writeHead(413).end('too big');
        req.resume();
        return;
      }
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('close', () => {
        cut = req.complete ? undefined : Buffer.concat(chunks).length;
      });
      req.on('end', () => {
        const got = Buffer.concat(chunks);
        res.writeHead(201, { 'x-got': String(got.length), 'x-sha256': sha256(got) }).end('ok');
      });
      req.on('error', () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    http.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('sends a body in slices and reports every byte as sent', async () => {
    const body = randomBytes(3 * MiB + 5);
    let sent = 0;
    const response = await http.request(
      request(`${origin}/echo`, { body, onSent: (bytes: number) => (sent += bytes) }),
    );
    assert.equal(response.status, 201);
    assert.equal(response.headers['x-got'], String(body.length));
    assert.equal(response.body, 'ok');
    assert.equal(sent, body.length);
  });

  it('a Blob body is sent as its bytes (this seam does not send Blobs as they are)', async () => {
    assert.notEqual(http.sendsBlobs, true);
    const bytes = randomBytes(MiB + 3);
    let sent = 0;
    const response = await http.request(
      request(`${origin}/echo`, { body: new Blob([bytes]), onSent: (n: number) => (sent += n) }),
    );
    assert.equal(response.headers['x-got'], String(bytes.length));
    assert.equal(sent, bytes.length);
  });

  /** A `SourceRange` over `bytes` that records its reads and can fail at one offset. */
  function recordedRange(bytes: Buffer, failAt?: number, delayMs = 0) {
    const reads: { offset: number; length: number; buffer: ArrayBufferLike }[] = [];
    const range: SourceRange = {
      size: bytes.length,
      async readInto(into, offset) {
        reads.push({ offset, length: into.length, buffer: into.buffer });
        if (delayMs > 0) await sleep(delayMs);
        if (offset === failAt) {
          throw new ClientErrorClass('ERR_SOURCE_UNREADABLE', { message: 'the file went away' });
        }
        into.set(bytes.subarray(offset, offset + into.length));
      },
    };
    return { range, reads };
  }

  it('a SourceRange body is read as it goes out, 1 MiB at a time, into buffers the client reuses', async () => {
    assert.equal(http.sendsRanges, true);
    const bytes = randomBytes(3 * MiB + 5);
    const first = recordedRange(bytes);
    let sent = 0;
    const response = await http.request(
      request(`${origin}/echo`, { body: first.range, onSent: (n: number) => (sent += n) }),
    );
    assert.equal(response.headers['x-got'], String(bytes.length));
    assert.equal(response.headers['x-sha256'], sha256(bytes));
    assert.equal(sent, bytes.length);
    assert.deepEqual(
      first.reads.map(({ offset, length }) => [offset, length]),
      [
        [0, MiB],
        [MiB, MiB],
        [2 * MiB, MiB],
        [3 * MiB, 5],
      ],
    );
    const second = recordedRange(bytes);
    await http.request(request(`${origin}/echo`, { body: second.range }));
    const used = new Set(first.reads.map((read) => read.buffer));
    assert.ok(
      second.reads.every((read) => used.has(read.buffer)),
      'the second request reads into the buffers the first one freed',
    );
  });

  it('a SourceRange that fails mid-body rejects with its error; the connection is dropped, the client goes on', async () => {
    const bytes = randomBytes(3 * MiB);
    const failing = recordedRange(bytes, 2 * MiB);
    cut = undefined;
    await assert.rejects(http.request(request(`${origin}/echo`, { body: failing.range })), {
      code: 'ERR_SOURCE_UNREADABLE',
    });
    for (let waited = 0; cut === undefined && waited < 2000; waited += 10) await sleep(10);
    assert.ok(
      cut !== undefined && cut <= 2 * MiB,
      `the server saw the request cut after at most the 2 MiB read (${cut})`,
    );
    const response = await http.request(request(`${origin}/echo`, { body: recordedRange(bytes).range }));
    assert.equal(response.headers['x-sha256'], sha256(bytes));
  });

  it('a SourceRange stops being read and sent once the server answered early', async () => {
    const bytes = randomBytes(8 * MiB);
    const slow = recordedRange(bytes, undefined, 50);
    const response = await http.request(request(`${origin}/refuse`, { body: slow.range }));
    assert.equal(response.status, 413);
    assert.equal(response.body, 'too big');
    // Time enough to read every piece, had the sending gone on.
    await sleep(600);
    assert.ok(slow.reads.length < 8, `read ${slow.reads.length} of 8 pieces`);
    const after = await http.request(request(`${origin}/echo`, { body: recordedRange(bytes).range }));
    assert.equal(after.headers['x-sha256'], sha256(bytes));
  });

  it('a refused connection is ERR_NETWORK (retryable)', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await assert.rejects(http.request(request(`http://127.0.0.1:${port}/`)), (error: ClientError) => {
      assert.equal(error.code, 'ERR_NETWORK');
      assert.equal(error.retryable, true);
      return true;
    });
  });

  it('no answer: ERR_STALLED after stallTimeoutMs, ERR_TIMEOUT after timeoutMs', async () => {
    await assert.rejects(http.request(request(`${origin}/silent`, { stallTimeoutMs: 200 })), {
      code: 'ERR_STALLED',
    });
    await assert.rejects(
      http.request(request(`${origin}/silent`, { stallTimeoutMs: 5000, timeoutMs: 200 })),
      {
        code: 'ERR_TIMEOUT',
      },
    );
  });

  it('an abort rejects with the signal reason', async () => {
    const controller = new AbortController();
    const pending = http.request(request(`${origin}/silent`, { signal: controller.signal }));
    const reason = new Error('paused');
    setTimeout(() => controller.abort(reason), 50);
    await assert.rejects(pending, (error) => error === reason);
  });
});

describe('Node sources and hasher', () => {
  let dir: string;
  const hasher = createNodeHasher();
  before(async () => {
    dir = await makeTempDir();
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('a file source reads exactly the range asked for; the worker hashes the whole file', async () => {
    const bytes = randomBytes(5 * MiB + 3);
    const path = join(dir, 'file.bin');
    await writeFile(path, bytes);
    const source = await openNodeSource(path, hasher);
    assert.ok(source instanceof NodeFileSource);
    assert.equal(source.size, bytes.length);
    assert.equal(source.name, 'file.bin');
    assert.deepEqual(Buffer.from(await source.read(MiB, 2 * MiB + 7)), bytes.subarray(MiB, 2 * MiB + 7));
    assert.equal(await hasher.hashSource(source, new AbortController().signal), sha256(bytes));
    await source.close();
  });

  it('a file source reuses a buffer handed back by recycle, and never lends one twice', async () => {
    const bytes = randomBytes(3 * MiB);
    const path = join(dir, 'recycle.bin');
    await writeFile(path, bytes);
    const source = await openNodeSource(path, hasher);
    assert.ok(source instanceof NodeFileSource);
    const first = await source.read(0, MiB);
    const second = await source.read(MiB, 2 * MiB);
    assert.notEqual(second.buffer, first.buffer);
    source.recycle(first);
    source.recycle(first);
    const third = await source.read(2 * MiB, 3 * MiB);
    assert.equal(third.buffer, first.buffer, 'the recycled buffer is read into');
    assert.deepEqual(Buffer.from(third), bytes.subarray(2 * MiB));
    const fourth = await source.read(0, MiB);
    assert.notEqual(fourth.buffer, third.buffer, 'a buffer recycled twice is lent once');
    assert.deepEqual(Buffer.from(second), bytes.subarray(MiB, 2 * MiB), 'a lent buffer is left alone');
    const foreign = Buffer.alloc(MiB);
    source.recycle(foreign);
    assert.notEqual(
      (await source.read(0, MiB)).buffer,
      foreign.buffer,
      'a buffer it did not lend is not kept',
    );
    await source.close();
  });

  it('a file source gives ranges read only when asked, clipped at its end; a file cut short is ERR_SOURCE_UNREADABLE', async () => {
    const bytes = randomBytes(2 * MiB + 3);
    const path = join(dir, 'ranges.bin');
    await writeFile(path, bytes);
    const source = await openNodeSource(path, hasher);
    assert.ok(source instanceof NodeFileSource);
    const middle = source.range(MiB, 2 * MiB);
    assert.equal(middle.size, MiB);
    const into = Buffer.alloc(1000);
    await middle.readInto(into, 5);
    assert.deepEqual(into, bytes.subarray(MiB + 5, MiB + 1005));
    const last = source.range(2 * MiB, 3 * MiB);
    assert.equal(last.size, 3, 'the last range ends with the file');
    const tail = Buffer.alloc(3);
    await last.readInto(tail, 0);
    assert.deepEqual(tail, bytes.subarray(2 * MiB));
    await assert.rejects(last.readInto(Buffer.alloc(4), 0), RangeError);
    await truncate(path, MiB);
    await assert.rejects(middle.readInto(Buffer.alloc(10), 0), (error: ClientError) => {
      assert.equal(error.code, 'ERR_SOURCE_UNREADABLE');
      assert.match(error.message, /shorter than when the upload started/);
      return true;
    });
    await source.close();
  });

  it('a missing file is ERR_SOURCE_UNREADABLE, asking to re-select it', async () => {
    await assert.rejects(openNodeSource(join(dir, 'nope.bin'), hasher), (error: ClientError) => {
      assert.equal(error.code, 'ERR_SOURCE_UNREADABLE');
      assert.match(error.message, /re-select/);
      return true;
    });
  });

  it('bytes are read as views, hashed in steps', async () => {
    const bytes = randomBytes(9 * MiB);
    const source = await openNodeSource(bytes, hasher);
    assert.ok(source instanceof BytesSource);
    const view = await source.read(10, 20);
    assert.equal(view.buffer, bytes.buffer);
    assert.equal(await hasher.hashSource(source, new AbortController().signal), sha256(bytes));
  });

  it('a stream reads forward, keeps unconfirmed bytes for a resend, and knows its size and SHA-256 at the end', async () => {
    const bytes = randomBytes(300_000);
    const pieces = [bytes.subarray(0, 70_000), bytes.subarray(70_000, 250_000), bytes.subarray(250_000)];
    const source = await openNodeSource(Readable.from(pieces), hasher);
    assert.ok(source instanceof StreamSource);
    assert.equal(source.size, undefined);
    assert.deepEqual(Buffer.from(await source.read(0, 100_000)), bytes.subarray(0, 100_000));
    // The PATCH failed and the server kept 40,000 bytes: those after it are sent again.
    source.release(40_000);
    assert.deepEqual(Buffer.from(await source.read(40_000, 140_000)), bytes.subarray(40_000, 140_000));
    source.release(140_000);
    await assert.rejects(source.read(0, 10), { code: 'ERR_SOURCE_NOT_REWINDABLE' });
    assert.deepEqual(Buffer.from(await source.read(140_000, 400_000)), bytes.subarray(140_000));
    assert.equal(source.size, bytes.length);
    assert.equal(source.streamedSha256, createHash('sha256').update(bytes).digest('hex'));
  });

  it('a stream that fails is ERR_SOURCE_UNREADABLE', async () => {
    const failing = new Readable({
      read() {
        this.destroy(new Error('disk gone'));
      },
    });
    const source = await openNodeSource(failing, hasher);
    await assert.rejects(source.read(0, 10), { code: 'ERR_SOURCE_UNREADABLE' });
  });

  it('a Blob or File is read by slices, named by the File, and hashed whole', async () => {
    const bytes = randomBytes(5 * MiB + 9);
    const file = new File([bytes], 'photo.jpg');
    const source = await openNodeSource(file, hasher);
    assert.ok(source instanceof BlobSource);
    assert.equal(source.name, 'photo.jpg');
    assert.equal(source.size, bytes.length);
    assert.equal(source.file, file);
    assert.deepEqual(Buffer.from(await source.read(MiB, 2 * MiB + 1)), bytes.subarray(MiB, 2 * MiB + 1));
    assert.equal(await hasher.hashSource(source, new AbortController().signal), sha256(bytes));
    assert.equal((await openNodeSource(new Blob([bytes]), hasher)).name, undefined);
  });

  it('a Blob that can no longer be read is ERR_SOURCE_UNREADABLE, naming it and asking to re-select it', async () => {
    // What a browser does with a picked file that changed on disk.
    const gone = new File(['x'], 'report.pdf');
    gone.slice = () => {
      const blob = new Blob(['x']);
      blob.arrayBuffer = () => Promise.reject(new DOMException('the file changed', 'NotReadableError'));
      return blob;
    };
    const source = await openNodeSource(gone, hasher);
    await assert.rejects(source.read(0, 1), (error: ClientError) => {
      assert.equal(error.code, 'ERR_SOURCE_UNREADABLE');
      assert.match(error.message, /report\.pdf .*NotReadableError.*re-select the file/);
      return true;
    });
  });

  it('anything else is refused with ERR_INVALID_OPTIONS', async () => {
    await assert.rejects(openNodeSource(42, hasher), { code: 'ERR_INVALID_OPTIONS' });
  });
});
