import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer as createHttpServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { DeleteObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import {
  describeDataStore,
  randomUploadId,
  s3Service,
  s3StoreOptions,
  uniqueKeyPrefix,
} from '@ferry/testing';
import { COLLECTOR_KEY } from '../src/service/collect-garbage.ts';
import { createS3DataStore, type S3DataStore } from '../src/stores/s3/s3-data-store.ts';

const settings = await s3Service();
const MiB = 1024 * 1024;

/** Deletes every object under `prefix` (aborted uploads are reclaimed by the server itself). */
async function removePrefix(prefix: string): Promise<void> {
  if (!settings) return;
  const client = new S3Client({
    endpoint: settings.endpoint,
    region: settings.region,
    forcePathStyle: settings.forcePathStyle,
    credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey },
  });
  const listed = await client.send(new ListObjectsV2Command({ Bucket: settings.bucket, Prefix: prefix }));
  for (const object of listed.Contents ?? []) {
    await client.send(new DeleteObjectCommand({ Bucket: settings.bucket, Key: object.Key! }));
  }
  client.destroy();
}

if (settings === undefined) {
  describe('s3 data store', () => {
    it('needs an S3 server', (t) => t.skip('no S3 server: see the notice above'));
  });
} else {
  describeDataStore('s3', async () => {
    const prefix = uniqueKeyPrefix('conformance');
    const store = await createS3DataStore(s3StoreOptions(settings, prefix));
    return {
      store,
      cleanup: async () => {
        await removePrefix(prefix);
        await store.close();
      },
    };
  });
}

describe('s3 data store', { skip: settings === undefined }, () => {
  const prefix = uniqueKeyPrefix('s3-store');
  let store: S3DataStore;
  let client: S3Client;

  before(async () => {
    store = await createS3DataStore({
      ...s3StoreOptions(settings!, prefix),
      partSize: 5 * MiB,
      concurrency: 2,
    });
    client = new S3Client({
      endpoint: settings!.endpoint,
      region: settings!.region,
      forcePathStyle: true,
      credentials: { accessKeyId: settings!.accessKeyId, secretAccessKey: settings!.secretAccessKey },
    });
  });
  after(async () => {
    await removePrefix(prefix);
    await store.close();
    client.destroy();
  });

  async function objectSize(key: string): Promise<number | undefined> {
    try {
      return (await client.send(new HeadObjectCommand({ Bucket: settings!.bucket, Key: key }))).ContentLength;
    } catch {
      return undefined;
    }
  }

  async function download(finishedKey: string, size: number): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of store.read(finishedKey, { start: 0, end: size - 1 }))
      chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  it('keeps a tail below 5 MiB in the bucket as the incomplete part and sends it ahead of the next PATCH', async () => {
    const data = randomBytes(12 * MiB + 5);
    const id = randomUploadId();
    const key = await store.create({ id, size: data.length });
    const location = store.locate(key);
    assert.equal(location.key, prefix + id);
    assert.ok(location.uploadId);

    await store.append(key, 0, Readable.from([data.subarray(0, 3 * MiB)]));
    assert.equal(await objectSize(`${prefix + id}.part`), 3 * MiB);
    assert.deepEqual((await store.listStoredParts(key)).parts, []);
    assert.equal(await store.getOffset(key), 3 * MiB);

    // 3 MiB kept + 4 MiB new: one 5 MiB part, 2 MiB left as the incomplete part.
    await store.append(key, 3 * MiB, Readable.from([data.subarray(3 * MiB, 7 * MiB)]));
    const parts = (await store.listStoredParts(key)).parts;
    assert.deepEqual(
      parts.map((part) => [part.n, part.size]),
      [[1, 5 * MiB]],
    );
    assert.equal(await objectSize(`${prefix + id}.part`), 2 * MiB);
    assert.equal(await store.getOffset(key), 7 * MiB);

    const result = await store.append(key, 7 * MiB, Readable.from([data.subarray(7 * MiB)]), {
      maxBytes: data.length - 7 * MiB,
    });
    assert.equal(result.bytesWritten, data.length - 7 * MiB);
    assert.equal(await store.getOffset(key), data.length);
    const finishedKey = await store.finalize(key, { id, size: data.length });
    assert.equal(await objectSize(`${prefix + id}.part`), undefined, 'no incomplete part is left');
    assert.ok((await download(finishedKey, data.length)).equals(data));
    // Finalizing again (a retry after a crash) recognises the completed object.
    assert.equal(await store.finalize(key, { id, size: data.length }), finishedKey);
    await assert.rejects(store.getOffset(key), { code: 'ERR_NOT_FOUND' });
  });

  it('recovers offsets from S3 alone: a fresh store (another node) continues the upload', async () => {
    const data = randomBytes(13 * MiB + 100);
    const id = randomUploadId();
    const key = await store.create({ id, size: null });
    await store.append(key, 0, Readable.from([data.subarray(0, 11 * MiB + 7)]));
    const other = await createS3DataStore({
      ...s3StoreOptions(settings!, 'another-prefix/'),
      partSize: 8 * MiB,
    });
    try {
      assert.equal(await other.getOffset(key), 11 * MiB + 7);
      await assert.rejects(other.append(key, 0, Readable.from([Buffer.from('x')])), {
        code: 'ERR_OFFSET_MISMATCH',
      });
      await other.append(key, 11 * MiB + 7, Readable.from([data.subarray(11 * MiB + 7)]));
      assert.equal(await other.getOffset(key), data.length);
      const finishedKey = await other.finalize(key, { id, size: data.length });
      assert.ok((await download(finishedKey, data.length)).equals(data));
    } finally {
      await other.close();
    }
  });

  it("asks S3 nothing before a PATCH that continues its own last one, and never trusts that over another node's writes", async () => {
    const data = randomBytes(16 * MiB + 3);
    const s3 = new S3Client({
      endpoint: settings!.endpoint,
      region: settings!.region,
      forcePathStyle: true,
      credentials: { accessKeyId: settings!.accessKeyId, secretAccessKey: settings!.secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
    });
    const asked: string[] = [];
    s3.middlewareStack.add(
      (next, context) => (args) => {
        asked.push(context.commandName ?? '?');
        return next(args);
      },
      { step: 'initialize' },
    );
    const options = { ...s3StoreOptions(settings!, prefix), partSize: 5 * MiB, concurrency: 2 };
    const mine = await createS3DataStore({ ...options, client: s3 });
    const other = await createS3DataStore(options);
    try {
      const id = randomUploadId();
      const key = await mine.create({ id, size: data.length });
      const slice = (from: number, to: number) => Readable.from([data.subarray(from, to)]);
      await mine.append(key, 0, slice(0, 7 * MiB));
      asked.length = 0;
      // Continues its own PATCH: 2 MiB kept in the bucket + 1 MiB, without ListParts or HeadObject.
      await mine.append(key, 7 * MiB, slice(7 * MiB, 8 * MiB));
      assert.deepEqual(asked, ['GetObjectCommand', 'PutObjectCommand']);

      // Another node continues the upload: 3 MiB kept + 5 MiB = part 2 and a new incomplete part,
      // of 3 MiB again but starting at 10 MiB.
      await other.append(key, 8 * MiB, slice(8 * MiB, 13 * MiB));
      // A PATCH at the offset this node remembers (as if the other node's PATCH was never recorded)
      // finds the incomplete part changed, and is refused as retryable; its retry reads S3 and is
      // told the offset.
      await assert.rejects(mine.append(key, 8 * MiB, slice(8 * MiB, 13 * MiB)), {
        code: 'ERR_UPLOAD_LOCKED',
      });
      await assert.rejects(mine.append(key, 8 * MiB, slice(8 * MiB, 13 * MiB)), {
        code: 'ERR_OFFSET_MISMATCH',
        details: { expected: 13 * MiB, received: 8 * MiB },
      });
      await mine.append(key, 13 * MiB, slice(13 * MiB, data.length), { maxBytes: data.length - 13 * MiB });
      assert.equal(await mine.getOffset(key), data.length);
      const finishedKey = await mine.finalize(key, { id, size: data.length });
      assert.ok((await download(finishedKey, data.length)).equals(data));
    } finally {
      await mine.close();
      await other.close();
      s3.destroy();
    }
  });

  it('never counts parts past a gap, and empties them before writing again', async () => {
    const data = randomBytes(16 * MiB);
    const id = randomUploadId();
    const key = await store.create({ id, size: data.length });
    // As if part 2 of three concurrent uploads failed while part 3 was stored.
    await store.putPart(key, { n: 1, start: 0, size: 5 * MiB }, Readable.from([data.subarray(0, 5 * MiB)]));
    await store.putPart(key, { n: 3, start: 10 * MiB, size: 5 * MiB }, Readable.from([randomBytes(5 * MiB)]));
    assert.equal(await store.getOffset(key), 5 * MiB);
    await store.append(key, 5 * MiB, Readable.from([data.subarray(5 * MiB, 11 * MiB)]));
    // Part 2 is now stored; the stale part 3 must not make the offset jump to 15 MiB.
    assert.equal(await store.getOffset(key), 11 * MiB);
    await store.append(key, 11 * MiB, Readable.from([data.subarray(11 * MiB)]));
    const finishedKey = await store.finalize(key, { id, size: data.length });
    assert.ok((await download(finishedKey, data.length)).equals(data));
  });

  it('pages through ListParts (offsets, completion and listStoredParts)', async () => {
    const paged = await createS3DataStore({
      ...s3StoreOptions(settings!, prefix),
      partSize: 5 * MiB,
      listPartsPageSize: 2,
    });
    try {
      const data = randomBytes(5 * 5 * MiB + 3);
      const id = randomUploadId();
      const key = await paged.create({ id, size: data.length });
      await paged.append(key, 0, Readable.from([data.subarray(0, 5 * 5 * MiB)]));
      assert.equal(await paged.getOffset(key), 5 * 5 * MiB);
      const first = await paged.listStoredParts(key);
      assert.deepEqual(
        first.parts.map((part) => part.n),
        [1, 2],
      );
      assert.equal(first.next, 2);
      const second = await paged.listStoredParts(key, { after: first.next! });
      assert.deepEqual(
        second.parts.map((part) => part.n),
        [3, 4],
      );
      const third = await paged.listStoredParts(key, { after: second.next! });
      assert.deepEqual(
        third.parts.map((part) => part.n),
        [5],
      );
      assert.equal(third.next, undefined);
      await paged.append(key, 5 * 5 * MiB, Readable.from([data.subarray(5 * 5 * MiB)]));
      const finishedKey = await paged.finalize(key, { id, size: data.length });
      assert.ok((await download(finishedKey, data.length)).equals(data));

      // The parts API: completion checks every part through the pages.
      const partsId = randomUploadId();
      const partsKey = await paged.create({ id: partsId, size: 5 * 5 * MiB });
      const stored = [];
      for (let n = 1; n <= 5; n++) {
        const bytes = data.subarray((n - 1) * 5 * MiB, n * 5 * MiB);
        const result = await paged.putPart(
          partsKey,
          { n, start: (n - 1) * 5 * MiB, size: 5 * MiB },
          Readable.from([bytes]),
        );
        stored.push({ n, size: 5 * MiB, etag: result.etag ?? null });
      }
      await assert.rejects(
        paged.completeParts(partsKey, {
          id: partsId,
          size: 6 * 5 * MiB,
          parts: [...stored, { n: 6, size: 5 * MiB, etag: null }],
        }),
        { code: 'ERR_PARTS_MISSING' },
      );
      const done = await paged.completeParts(partsKey, { id: partsId, size: 5 * 5 * MiB, parts: stored });
      assert.ok((await download(done, 5 * 5 * MiB)).equals(data.subarray(0, 5 * 5 * MiB)));
      assert.equal(
        await paged.completeParts(partsKey, { id: partsId, size: 5 * 5 * MiB, parts: stored }),
        done,
      );
    } finally {
      await paged.close();
    }
  });

  it('presigns UploadPart URLs that a plain fetch can use', async () => {
    const data = randomBytes(1234);
    const id = randomUploadId();
    const key = await store.create({ id, size: data.length });
    const url = await store.presignPart(key, 1, { expiresInSeconds: 60 });
    const response = await fetch(url, { method: 'PUT', body: data });
    assert.equal(response.status, 200);
    const etag = response.headers.get('etag');
    assert.ok(etag);
    const finishedKey = await store.completeParts(key, {
      id,
      size: data.length,
      parts: [{ n: 1, size: data.length, etag }],
    });
    assert.ok((await download(finishedKey, data.length)).equals(data));
  });

  it('concatenates by server-side copy when every partial but the last has 5 MiB, and streams otherwise', async () => {
    const pieces = [randomBytes(5 * MiB + 1), randomBytes(6 * MiB), randomBytes(100)];
    const keys: string[] = [];
    for (const piece of pieces) {
      const id = randomUploadId();
      const key = await store.create({ id, size: piece.length });
      await store.append(key, 0, Readable.from([piece]));
      keys.push(await store.finalize(key, { id, size: piece.length }));
    }
    const whole = Buffer.concat(pieces);
    const copied = await store.concatenate(randomUploadId(), keys);
    assert.ok((await download(copied, whole.length)).equals(whole));
    const reordered = Buffer.concat([pieces[2]!, pieces[0]!, pieces[1]!]);
    const streamed = await store.concatenate(randomUploadId(), [keys[2]!, keys[0]!, keys[1]!]);
    assert.ok((await download(streamed, reordered.length)).equals(reordered));
  });

  it('reads a range back through the SDK when its own connection gets an answer it does not take', async () => {
    // A gateway in front of the S3 server that refuses presigned requests (403) and passes the rest:
    // every range the plain reader asks for is refused, and the SDK's signed requests get through.
    const target = new URL(settings!.endpoint);
    const refusing = createHttpServer((request, response) => {
      if (request.url?.includes('X-Amz-Signature=')) {
        response.writeHead(403, { 'content-type': 'application/xml' });
        response.end('<Error><Code>AccessDenied</Code></Error>');
        return;
      }
      const forwarded = httpRequest(
        {
          host: target.hostname,
          port: target.port,
          method: request.method,
          path: request.url,
          headers: request.headers,
        },
        (answer) => {
          response.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(response);
        },
      );
      request.pipe(forwarded);
    });
    await new Promise<void>((resolve) => refusing.listen(0, '127.0.0.1', resolve));
    const reader = await createS3DataStore({
      ...s3StoreOptions(settings!, prefix),
      endpoint: `http://127.0.0.1:${(refusing.address() as AddressInfo).port}`,
      readBackRangeBytes: MiB,
      checkBucket: false,
    });
    try {
      const data = randomBytes(3 * MiB + 1);
      const id = randomUploadId();
      const key = await store.create({ id, size: data.length });
      await store.append(key, 0, Readable.from([data]), { maxBytes: data.length });
      const finishedKey = await store.finalize(key, { id, size: data.length });
      assert.equal(
        await reader.sha256Of(finishedKey, data.length),
        createHash('sha256').update(data).digest('hex'),
      );
      assert.deepEqual(reader.readBackStats, { overHttp: 0, throughSdk: 4 });
    } finally {
      await reader.close();
      refusing.closeAllConnections();
      refusing.close();
    }
  });

  for (const overHttp of [true, false]) {
    const way = overHttp ? 'over its own plain-HTTP connections' : 'through the SDK';
    it(`hashes a finished object with parallel ranged reads (sha256Of) ${way}, and refuses an upload in progress`, async () => {
      // 1 MiB ranges, 3 at a time: a 12 MiB + 7 object is read as 13 ranges, the last one short.
      const reader = await createS3DataStore({
        ...s3StoreOptions(settings!, prefix),
        partSize: 5 * MiB,
        readBackRangeBytes: MiB,
        readBackInFlight: 3,
        readBackOverHttp: overHttp,
        checkBucket: false,
      });
      try {
        const data = randomBytes(12 * MiB + 7);
        const id = randomUploadId();
        const key = await store.create({ id, size: data.length });
        await assert.rejects(reader.sha256Of(key, data.length), { code: 'ERR_METHOD_NOT_ALLOWED' });
        await store.append(key, 0, Readable.from([data]), { maxBytes: data.length });
        const finishedKey = await store.finalize(key, { id, size: data.length });
        // The `ferry` command registers a collection function. Through the SDK every socket read
        // is a new Buffer, dropped once copied: the read asks for a young collection after every
        // 2 MiB it dropped (a full one every 256 MiB), 6 times for 12 MiB + 7 bytes. Its own
        // connections read into reused buffers and drop nothing.
        const collections: unknown[] = [];
        const registry = globalThis as { [COLLECTOR_KEY]?: unknown };
        registry[COLLECTOR_KEY] = (options: unknown) => collections.push(options);
        try {
          assert.equal(
            await reader.sha256Of(finishedKey, data.length),
            createHash('sha256').update(data).digest('hex'),
          );
        } finally {
          delete registry[COLLECTOR_KEY];
        }
        assert.deepEqual(
          reader.readBackStats,
          overHttp ? { overHttp: 13, throughSdk: 0 } : { overHttp: 0, throughSdk: 13 },
        );
        assert.deepEqual(collections, overHttp ? [] : Array(6).fill({ type: 'minor' }));
        await assert.rejects(reader.sha256Of(finishedKey, data.length + 1), /bytes, \d+ expected/);
        const emptyId = randomUploadId();
        const empty = await store.finalize(await store.create({ id: emptyId, size: 0 }), {
          id: emptyId,
          size: 0,
        });
        assert.equal(await reader.sha256Of(empty, 0), createHash('sha256').digest('hex'));
      } finally {
        await reader.close();
      }
    });
  }

  it('refuses to read an unfinished upload back (S3 cannot), with a clear error', async () => {
    const key = await store.create({ id: randomUploadId(), size: 10 });
    assert.throws(() => store.read(key, { start: 0, end: 1 }), { code: 'ERR_METHOD_NOT_ALLOWED' });
    await assert.rejects(store.stat(key), { code: 'ERR_UPLOAD_NOT_FINISHED' });
  });

  it('refuses keys that are not its own', async () => {
    for (const key of ['', 'uploads/abc', 's3-upload:x:y:z', 's3-object:', 's3-upload:5242880:id:\u0000']) {
      await assert.rejects(store.getOffset(key), { code: 'ERR_INVALID_ID' }, key);
    }
    await assert.rejects(store.create({ id: '../../etc', size: 1 }), { code: 'ERR_INVALID_ID' });
  });

  it('answers a storage outage with ERR_STORAGE_UNAVAILABLE, and refused credentials with ERR_STORAGE_REFUSED', async () => {
    const key = await store.create({ id: randomUploadId(), size: 10 });
    const down = await createS3DataStore({
      ...s3StoreOptions({ ...settings!, endpoint: 'http://127.0.0.1:9' }, prefix),
      checkBucket: false,
    });
    await assert.rejects(down.getOffset(key), { code: 'ERR_STORAGE_UNAVAILABLE' });
    await assert.rejects(down.append(key, 0, Readable.from([Buffer.from('x')])), {
      code: 'ERR_STORAGE_UNAVAILABLE',
    });
    await down.close();
    const wrong = await createS3DataStore({
      ...s3StoreOptions({ ...settings!, secretAccessKey: 'not-the-secret' }, prefix),
      checkBucket: false,
    });
    await assert.rejects(wrong.getOffset(key), { code: 'ERR_STORAGE_REFUSED' });
    await wrong.close();
    await assert.rejects(
      createS3DataStore({ ...s3StoreOptions({ ...settings!, bucket: 'no-such-bucket-here' }, prefix) }),
      /cannot reach S3 bucket "no-such-bucket-here": it does not exist/,
    );
  });
});
