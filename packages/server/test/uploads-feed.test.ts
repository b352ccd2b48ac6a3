/**
 * The uploads feed over real loopback HTTP: `GET /uploads` (the uploads in progress) and
 * `GET /uploads/events` (Server-Sent Events) for tus and parts uploads sent by real request
 * sequences; live progress during one long PATCH and its rate; cleanup on disconnect and at
 * shutdown; namespaces. Then the stream's bounds against a client that does not read.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import type { PassThrough } from 'node:stream';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { UploadSummary } from '@ferry/protocol';
import type { UploadRecord } from '../src/meta/meta-store.ts';
import { openFeedStream } from '../src/protocols/feed/feed-stream.ts';
import { createUploadEvents, type UploadEventRecord } from '../src/service/upload-events.ts';
import { openSse } from './sse-client.ts';
import {
  createUpload,
  idOf,
  metadataHeader,
  OCTETS,
  patch,
  send,
  startServer,
  type TestServer,
  uploadWhole,
} from './tus-helpers.ts';

const MiB = 1024 * 1024;
const PART = 5 * MiB;

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

function postJson(url: string, value: unknown) {
  return send(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(value),
  });
}

async function createParts(base: string, value: Record<string, unknown>) {
  const reply = await postJson(`${base}/uploads`, value);
  assert.equal(reply.status, 201, reply.body.toString());
  return reply.json as { id: string; url: string; partCount: number };
}

function putPart(uploadUrl: string, n: number, bytes: Buffer) {
  return send(`${uploadUrl}/parts/${n}`, {
    method: 'PUT',
    headers: { 'content-length': bytes.length },
    body: bytes,
  });
}

async function list(base: string): Promise<{ uploads: UploadSummary[]; truncated: boolean }> {
  const reply = await send(`${base}/uploads`);
  assert.equal(reply.status, 200);
  return reply.json as { uploads: UploadSummary[]; truncated: boolean };
}

async function eventually(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A PATCH whose body arrives in `chunks` pieces of `chunk` bytes, one every 60 ms. */
function slowPatch(
  location: string,
  offset: number,
  chunk: number,
  chunks: number,
  headers: Record<string, string> = {},
) {
  const url = new URL(location);
  let answered = false;
  const status = new Promise<number>((resolve, reject) => {
    const req = httpRequest(
      { host: url.hostname, port: url.port, path: url.pathname, method: 'PATCH', agent: false },
      (res) => {
        res.resume();
        res.on('end', () => {
          answered = true;
          resolve(res.statusCode ?? 0);
        });
      },
    );
    req.on('error', reject);
    for (const [name, value] of Object.entries({ ...OCTETS, ...headers })) req.setHeader(name, value);
    req.setHeader('upload-offset', String(offset));
    req.setHeader('content-length', String(chunk * chunks));
    let sent = 0;
    const tick = setInterval(() => {
      req.write(Buffer.alloc(chunk, sent));
      sent += 1;
      if (sent === chunks) {
        clearInterval(tick);
        req.end();
      }
    }, 60);
  });
  return { status, answered: () => answered };
}

describe('GET /uploads', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(async () => server.stop());

  it('lists the tus and parts uploads in progress, newest first, and nothing finished', async () => {
    assert.deepEqual(await list(server.url), { uploads: [], truncated: false });

    const tus = await createUpload(server.endpoint, 100, {
      'upload-metadata': metadataHeader({ filename: 'notes.txt', filetype: 'text/plain' }),
    });
    assert.equal((await patch(tus, 0, Buffer.alloc(40, 1))).status, 204);
    const parts = await createParts(server.url, {
      size: 2 * PART + 1,
      partSize: PART,
      name: 'movie.mp4',
      type: 'video/mp4',
    });
    assert.equal((await putPart(parts.url, 2, randomBytes(PART))).status, 200);
    await uploadWhole(server.endpoint, 'finished already');
    // Uppy's tus plugin names the file with `name` and `type`.
    const deferred = await createUpload(server.endpoint, 'deferred', {
      'upload-metadata': metadataHeader({ name: 'stream.log', type: 'text/plain' }),
    });

    const { uploads, truncated } = await list(server.url);
    assert.equal(truncated, false);
    assert.deepEqual(
      uploads.map((upload) => upload.id),
      [idOf(deferred), parts.id, idOf(tus)],
    );
    const [streamed, parallel, plain] = uploads as [UploadSummary, UploadSummary, UploadSummary];
    assert.deepEqual(
      { ...plain, createdAt: '', updatedAt: '', expiresAt: '' },
      {
        id: idOf(tus),
        protocol: 'tus',
        url: tus,
        size: 100,
        receivedBytes: 40,
        partsReceived: null,
        partCount: null,
        name: 'notes.txt',
        type: 'text/plain',
        createdAt: '',
        updatedAt: '',
        expiresAt: '',
      },
    );
    assert.ok(Date.parse(plain.createdAt) <= Date.parse(plain.updatedAt));
    assert.ok(Date.parse(plain.expiresAt ?? '') > Date.now());
    assert.equal(parallel.protocol, 'parts');
    assert.equal(parallel.url, parts.url);
    assert.equal(parallel.size, 2 * PART + 1);
    assert.equal(parallel.receivedBytes, PART);
    assert.equal(parallel.partsReceived, 1);
    assert.equal(parallel.partCount, 3);
    assert.equal(parallel.name, 'movie.mp4');
    assert.equal(parallel.type, 'video/mp4');
    assert.equal(streamed.size, null);
    assert.equal(streamed.name, 'stream.log');
  });

  it('answers HEAD without a body, other methods with 405, and carries CORS headers', async () => {
    const head = await send(`${server.url}/uploads`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.match(String(head.headers['content-type']), /^application\/json/);
    const put = await send(`${server.url}/uploads`, { method: 'PUT' });
    assert.equal(put.status, 405);
    assert.equal(put.code, 'ERR_METHOD_NOT_ALLOWED');
    assert.equal(put.headers.allow, 'GET, HEAD, POST');
    const cors = await send(`${server.url}/uploads`, { headers: { origin: 'https://app.example' } });
    assert.equal(cors.headers['access-control-allow-origin'], 'https://app.example');
  });
});

describe('GET /uploads/events', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(async () => server.stop());

  it('opens with a snapshot, then follows a tus upload: created, progress, completed; and a removal', async () => {
    const before = await createUpload(server.endpoint, 10);
    const feed = await openSse(`${server.url}/uploads/events`, { origin: 'https://app.example' });
    try {
      assert.equal(feed.status, 200);
      assert.equal(feed.headers['content-type'], 'text/event-stream; charset=utf-8');
      assert.equal(feed.headers['cache-control'], 'no-store');
      assert.equal(feed.headers['access-control-allow-origin'], 'https://app.example');
      const snapshot = await feed.next('snapshot');
      assert.equal(feed.retry, 2000);
      assert.equal(snapshot.data.type, 'snapshot');
      assert.equal(snapshot.data.truncated, false);
      assert.deepEqual(
        snapshot.data.uploads.map((upload: UploadSummary) => upload.id),
        [idOf(before)],
      );

      const content = randomBytes(1000);
      const location = await createUpload(server.endpoint, content.length, {
        'upload-metadata': metadataHeader({ filename: 'a.bin', filetype: 'application/octet-stream' }),
      });
      const id = idOf(location);
      const created = await feed.next('created', (data) => data.upload.id === id);
      assert.equal(created.data.upload.receivedBytes, 0);
      assert.equal(created.data.upload.name, 'a.bin');
      assert.equal(created.data.upload.url, location);

      assert.equal((await patch(location, 0, content.subarray(0, 400))).status, 204);
      const progress = await feed.next(
        'progress',
        (data) => data.upload.id === id && data.upload.receivedBytes === 400,
      );
      assert.equal(progress.data.upload.size, 1000);

      assert.equal((await patch(location, 400, content.subarray(400))).status, 204);
      const completed = await feed.next('completed', (data) => data.upload.id === id);
      assert.equal(completed.data.upload.receivedBytes, 1000);
      assert.equal(completed.data.file.size, 1000);
      assert.equal(completed.data.file.name, 'a.bin');
      const download = await send(completed.data.file.url);
      assert.equal(download.status, 200);
      assert.deepEqual(download.body, content);

      assert.equal((await send(before, { method: 'DELETE', headers: OCTETS })).status, 204);
      const removed = await feed.next('removed', (data) => data.id === idOf(before));
      assert.deepEqual(removed.data, { type: 'removed', id: idOf(before) });
    } finally {
      feed.close();
    }
  });

  it('follows a parts upload: created, progress per stored part, failed on a wrong SHA-256, completed', async () => {
    const feed = await openSse(`${server.url}/uploads/events`);
    try {
      await feed.next('snapshot');
      const file = randomBytes(2 * PART + 100);
      const upload = await createParts(server.url, {
        size: file.length,
        partSize: PART,
        name: 'data.bin',
        sha256: sha256(file),
      });
      const created = await feed.next('created', (data) => data.upload.id === upload.id);
      assert.equal(created.data.upload.protocol, 'parts');
      assert.equal(created.data.upload.partCount, 3);
      assert.equal(created.data.upload.partsReceived, 0);
      assert.equal(created.data.upload.url, upload.url);

      assert.equal((await putPart(upload.url, 3, file.subarray(2 * PART))).status, 200);
      const first = await feed.next('progress', (data) => data.upload.id === upload.id);
      assert.equal(first.data.upload.partsReceived, 1);
      assert.equal(first.data.upload.receivedBytes, 100);

      await Promise.all([
        putPart(upload.url, 1, file.subarray(0, PART)),
        putPart(upload.url, 2, file.subarray(PART, 2 * PART)),
      ]);
      await feed.next('progress', (data) => data.upload.id === upload.id && data.upload.partsReceived === 3);

      const wrong = await postJson(`${upload.url}/complete`, { sha256: 'f'.repeat(64) });
      assert.equal(wrong.code, 'ERR_SHA256_MISMATCH');
      const failed = await feed.next('failed', (data) => data.upload.id === upload.id);
      assert.equal(failed.data.error.code, 'ERR_SHA256_MISMATCH');

      assert.equal((await postJson(`${upload.url}/complete`, {})).status, 200);
      const completed = await feed.next('completed', (data) => data.upload.id === upload.id);
      assert.equal(completed.data.file.sha256, sha256(file));
      assert.equal(completed.data.upload.partsReceived, 3);
      assert.ok(!(await list(server.url)).uploads.some((entry) => entry.id === upload.id));
    } finally {
      feed.close();
    }
  });

  it('shows progress while one long PATCH is still arriving, at most about 4 events a second', async () => {
    const feed = await openSse(`${server.url}/uploads/events`);
    try {
      await feed.next('snapshot');
      const chunk = 64 * 1024;
      const chunks = 16;
      const location = await createUpload(server.endpoint, chunk * chunks);
      const id = idOf(location);
      const started = performance.now();
      const patching = slowPatch(location, 0, chunk, chunks);
      await feed.next(
        'progress',
        (data) =>
          data.upload.id === id &&
          data.upload.receivedBytes > 0 &&
          data.upload.receivedBytes < chunk * chunks,
      );
      assert.equal(patching.answered(), false, 'the progress arrived while the PATCH was still being sent');
      assert.equal(await patching.status, 204);
      await feed.next('completed', (data) => data.upload.id === id);
      const elapsed = performance.now() - started;
      const progress = feed.events.filter(
        (event) => event.event === 'progress' && event.data.upload.id === id,
      );
      assert.ok(progress.length >= 2, `expected several progress events, got ${progress.length}`);
      assert.ok(
        progress.length <= Math.ceil(elapsed / 250) + 1,
        `${progress.length} progress events in ${Math.round(elapsed)} ms`,
      );
      const received = progress.map((event) => event.data.upload.receivedBytes as number);
      assert.deepEqual(
        received,
        [...received].sort((a, b) => a - b),
        'progress never goes backwards',
      );
    } finally {
      feed.close();
    }
  });

  it('takes back the progress it showed of a PATCH body refused by its checksum', async () => {
    const feed = await openSse(`${server.url}/uploads/events`);
    try {
      await feed.next('snapshot');
      const location = await createUpload(server.endpoint, 1024 * 1024);
      const id = idOf(location);
      const wrong = `sha1 ${Buffer.alloc(20).toString('base64')}`;
      const patching = slowPatch(location, 0, 64 * 1024, 8, { 'upload-checksum': wrong });
      await feed.next('progress', (data) => data.upload.id === id && data.upload.receivedBytes > 0);
      assert.equal(await patching.status, 460);
      await feed.next('progress', (data) => data.upload.id === id && data.upload.receivedBytes === 0);
      const listed = (await list(server.url)).uploads.find((upload) => upload.id === id);
      assert.equal(listed?.receivedBytes, 0);
    } finally {
      feed.close();
    }
  });

  it('coalesces the progress of many quick PATCHes', async () => {
    const feed = await openSse(`${server.url}/uploads/events`);
    try {
      await feed.next('snapshot');
      const location = await createUpload(server.endpoint, 60 * 1024);
      const id = idOf(location);
      const started = performance.now();
      for (let i = 0; i < 60; i++) {
        assert.equal((await patch(location, i * 1024, Buffer.alloc(1024, i))).status, 204);
      }
      await feed.next('completed', (data) => data.upload.id === id);
      const elapsed = performance.now() - started;
      const progress = feed.events.filter(
        (event) => event.event === 'progress' && event.data.upload.id === id,
      );
      assert.ok(
        progress.length <= Math.ceil(elapsed / 250) + 1,
        `${progress.length} progress events for 60 PATCHes in ${Math.round(elapsed)} ms`,
      );
    } finally {
      feed.close();
    }
  });

  it('is not an upload id: other methods answer 405, and deeper paths 404', async () => {
    const post = await send(`${server.url}/uploads/events`, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET');
    assert.equal((await send(`${server.url}/uploads/events/more`)).status, 404);
  });
});

describe('GET /uploads/events: connections', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(async () => server.stop());

  it('stops listening when the client goes away', async () => {
    const events = server.ferry.events;
    assert.equal(events.hasListeners('any-upload-id-000'), false);
    const feeds = await Promise.all([1, 2, 3].map(() => openSse(`${server.url}/uploads/events`)));
    for (const feed of feeds) await feed.next('snapshot');
    assert.equal(events.hasListeners('any-upload-id-000'), true);
    for (const feed of feeds) feed.close();
    await eventually(() => !events.hasListeners('any-upload-id-000'), 'the listeners to go');
    // The server still answers, and the next feed works.
    const again = await openSse(`${server.url}/uploads/events`);
    await again.next('snapshot');
    again.close();
  });

  it('never shows the uploads of another namespace', async () => {
    const feed = await openSse(`${server.url}/uploads/events`);
    try {
      await feed.next('snapshot');
      const heardByAlice: UploadEventRecord[] = [];
      const stop = server.ferry.events.subscribeNamespace('alice', (event) => heardByAlice.push(event));
      const tus = await server.ferry.service.create({ namespace: 'alice', size: 10, metadata: {} });
      const parts = await server.ferry.parts.create({ namespace: 'alice', size: 10, metadata: {} });
      await server.ferry.service.append(tus.id, {
        namespace: 'alice',
        offset: 0,
        body: Readable.from([Buffer.alloc(4)]),
      });
      stop();
      // The in-process listener of that namespace hears them (progress also while the body arrives).
      assert.deepEqual(
        heardByAlice.filter((event) => event.type !== 'progress').map((event) => event.type),
        ['created', 'created'],
      );
      assert.ok(heardByAlice.some((event) => event.type === 'progress'));
      // An upload of the feed's own namespace, after alice's: its event comes, theirs never did.
      const mine = idOf(await createUpload(server.endpoint, 5));
      await feed.next('created', (data) => data.upload.id === mine);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const ids = feed.events.map((event) => event.data.upload?.id ?? event.data.id);
      assert.ok(!ids.includes(tus.id) && !ids.includes(parts.record.id), `saw ${ids.join(', ')}`);
      const listed = (await list(server.url)).uploads.map((upload) => upload.id);
      assert.ok(listed.includes(mine));
      assert.ok(!listed.includes(tus.id) && !listed.includes(parts.record.id));
    } finally {
      feed.close();
    }
  });

  it('ends open feeds at shutdown at once (it does not wait for them)', async () => {
    const own = await startServer({ shutdownTimeoutMs: 20_000 });
    const feed = await openSse(`${own.url}/uploads/events`);
    await feed.next('snapshot');
    const started = performance.now();
    await own.stop();
    await feed.ended;
    assert.ok(performance.now() - started < 5000, 'close waited for the feed');
  });
});

describe('feed stream bounds (a client that does not read)', () => {
  const record = (id: string, offset = 0): UploadRecord => ({
    id,
    namespace: '',
    protocol: 'tus',
    size: 1_000_000,
    offset,
    metadata: { filename: 'x'.repeat(200) },
    concat: null,
    state: 'uploading',
    storageKey: id,
    sha256: null,
    createdAt: 0,
    updatedAt: 0,
    expiresAt: null,
    finishedAt: null,
    partSize: null,
    expectedSha256: null,
    sniffedType: null,
    allowedTypes: null,
    version: 1,
  });
  const wire = (event: UploadEventRecord) =>
    event.type === 'removed'
      ? { type: 'removed' as const, id: event.id }
      : {
          type: event.type === 'progress' ? ('progress' as const) : ('created' as const),
          upload: {
            id: event.record.id,
            protocol: 'tus' as const,
            url: `/files/${event.record.id}`,
            size: event.record.size,
            receivedBytes: event.type === 'progress' ? event.receivedBytes : 0,
            partsReceived: null,
            partCount: null,
            name: event.record.metadata['filename'] ?? null,
            type: null,
            createdAt: '',
            updatedAt: '',
            expiresAt: null,
          },
        };

  async function open(limits: Parameters<typeof openFeedStream>[0]['limits']) {
    const events = createUploadEvents();
    const controller = new AbortController();
    const response = await openFeedStream({
      namespace: '',
      events,
      signal: controller.signal,
      snapshot: async () => ({ uploads: [], truncated: false }),
      snapshotEvent: () => ({ type: 'snapshot', uploads: [], truncated: false }),
      toWire: wire,
      ...(limits ? { limits } : {}),
    });
    return { events, controller, body: response.body as PassThrough };
  }

  it('cuts the stream instead of buffering without bound, and stops listening', async () => {
    const hardBytes = 64 * 1024;
    const { events, body } = await open({ softBytes: 4096, hardBytes });
    let most = 0;
    let emitted = 0;
    while (!body.destroyed && emitted < 100_000) {
      events.emit(`u${emitted}`, { type: 'created', record: record(`u${emitted}`) });
      emitted += 1;
      most = Math.max(most, body.writableLength + body.readableLength);
    }
    assert.equal(body.destroyed, true, 'the stream was cut');
    assert.ok(emitted < 1000, `cut after ${emitted} events`);
    assert.ok(most <= hardBytes + 2048, `buffered ${most} bytes`);
    assert.equal(events.hasListeners('u0'), false);
  });

  it('keeps one pending progress per upload while the client is behind, and sends the latest', async () => {
    const { events, body, controller } = await open({
      softBytes: 1024,
      hardBytes: 1024 * 1024,
      progressIntervalMs: 10,
    });
    for (const id of ['a', 'b', 'c']) events.emit(id, { type: 'created', record: record(id) });
    for (let i = 1; i <= 5000; i++) {
      for (const id of ['a', 'b', 'c']) {
        events.emit(id, { type: 'progress', record: record(id), receivedBytes: i, partsReceived: 0 });
      }
      if (i % 500 === 0) await new Promise((resolve) => setTimeout(resolve, 12));
    }
    assert.ok(body.writableLength + body.readableLength < 16 * 1024, 'progress did not pile up');
    let text = '';
    body.setEncoding('utf8');
    body.on('data', (chunk: string) => {
      text += chunk;
    });
    await eventually(() => (text.match(/"receivedBytes":5000/g) ?? []).length === 3, 'the latest progress');
    controller.abort();
    const progress = text.match(/event: progress/g) ?? [];
    assert.ok(progress.length <= 3 * 12, `${progress.length} progress events were written`);
  });
});
