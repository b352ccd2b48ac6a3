import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand, type S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { PART_REPORT_CONTENT_TYPE } from '@ferry/protocol';
import { s3Service, s3StoreOptions, uniqueKeyPrefix } from '@ferry/testing';
import { createFerry, type Ferry } from '../src/ferry.ts';
import { createS3DataStore, type S3DataStore } from '../src/stores/s3/s3-data-store.ts';
import { testS3Client } from './s3-helpers.ts';

const settings = await s3Service();
const MiB = 1024 * 1024;
const JSON_HEADERS = { 'content-type': 'application/json' };
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

interface Presigned {
  n: number;
  url: string;
  headers: Record<string, string>;
  expiresAt: string;
}

describe('presigned parts with S3 storage (real RGW)', { skip: settings === undefined }, () => {
  const prefix = uniqueKeyPrefix('s3-presign');
  let dataDir: string;
  let store: S3DataStore;
  let ferry: Ferry;
  let url: string;
  let s3: S3Client;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'ferry-s3-presign-'));
    store = await createS3DataStore(s3StoreOptions(settings!, prefix));
    ferry = await createFerry({ dataDir, dataStore: store, logLevel: 'silent' });
    ({ url } = await ferry.listen({ host: '127.0.0.1', port: 0 }));
    s3 = testS3Client(settings!);
  });
  after(async () => {
    s3?.destroy();
    await ferry?.close();
    await store?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  async function create(body: Record<string, unknown>) {
    const answer = await fetch(`${url}/uploads`, {
      method: 'POST',
      headers: JSON_HEADERS,
      body: JSON.stringify(body),
    });
    assert.equal(answer.status, 201, await answer.clone().text());
    return (await answer.json()) as { id: string; url: string; partSize: number; partCount: number };
  }

  async function presign(id: string, parts: unknown[]): Promise<Presigned[]> {
    const answer = await fetch(`${url}/uploads/${id}/presign`, {
      method: 'POST',
      headers: JSON_HEADERS,
      body: JSON.stringify({ parts }),
    });
    assert.equal(answer.status, 200, await answer.clone().text());
    return ((await answer.json()) as { parts: Presigned[] }).parts;
  }

  async function putToBucket(part: Presigned, bytes: Uint8Array): Promise<string> {
    const answer = await fetch(part.url, {
      method: 'PUT',
      headers: part.headers,
      body: new Uint8Array(bytes),
    });
    assert.equal(answer.status, 200, await answer.clone().text());
    const etag = answer.headers.get('etag');
    assert.ok(etag);
    return etag;
  }

  function report(id: string, n: number, body: Record<string, unknown>) {
    return fetch(`${url}/uploads/${id}/parts/${n}`, {
      method: 'PUT',
      headers: { 'content-type': PART_REPORT_CONTENT_TYPE },
      body: JSON.stringify(body),
    });
  }

  /** Uploads every part of `source` straight to the bucket and reports it. */
  async function sendAll(id: string, source: Buffer, partSize: number, partCount: number) {
    const urls = await presign(id, [[1, partCount]]);
    assert.equal(urls.length, partCount);
    for (const part of urls) {
      const bytes = source.subarray((part.n - 1) * partSize, part.n * partSize);
      const etag = await putToBucket(part, bytes);
      const reported = await report(id, part.n, { etag, size: bytes.length });
      assert.equal(reported.status, 200, await reported.clone().text());
      assert.deepEqual(await reported.json(), { n: part.n, size: bytes.length });
    }
  }

  async function received(): Promise<number> {
    const metric = (await ferry.metrics.registry.getSingleMetric('ferry_received_bytes_total')?.get())
      ?.values;
    return metric?.reduce((sum, value) => sum + value.value, 0) ?? 0;
  }

  it('uploads straight to the bucket: Ferry receives no body byte, the object is the source', async () => {
    const before = await received();
    const source = randomBytes(12 * MiB + 5);
    const created = await create({
      size: source.length,
      partSize: 5 * MiB,
      sha256: sha256(source),
      name: 'd.bin',
    });
    assert.equal(created.partCount, 3);
    const urls = await presign(created.id, [1, 2, 3]);
    for (const part of urls) {
      assert.ok(Date.parse(part.expiresAt) > Date.now() + 800_000, 'default expiry about 15 min');
      assert.match(part.url, /X-Amz-Signature=/);
    }
    await sendAll(created.id, source, created.partSize, created.partCount);
    const status = (await (await fetch(`${url}/uploads/${created.id}`)).json()) as {
      received: unknown;
      parts: Array<{ digest?: string }>;
    };
    assert.deepEqual(status.received, [[1, 3]]);
    assert.ok(status.parts.every((part) => part.digest === undefined));
    const completed = await fetch(`${url}/uploads/${created.id}/complete`, { method: 'POST' });
    assert.equal(completed.status, 200, await completed.clone().text());
    const { file } = (await completed.json()) as { file: { sha256: string; size: number; url: string } };
    assert.equal(file.sha256, sha256(source));
    assert.equal(file.size, source.length);
    assert.equal(await received(), before, 'no body byte went through Ferry');
    const object = await s3.send(
      new GetObjectCommand({ Bucket: settings!.bucket, Key: prefix + created.id }),
    );
    assert.equal(sha256(Buffer.from(await object.Body!.transformToByteArray())), sha256(source));
    const download = Buffer.from(await (await fetch(file.url)).arrayBuffer());
    assert.ok(download.equals(source));
    // The verified digest feeds dedup like any other.
    const again = await fetch(`${url}/uploads`, {
      method: 'POST',
      headers: JSON_HEADERS,
      body: JSON.stringify({ size: source.length, sha256: sha256(source) }),
    });
    assert.equal(again.status, 200);
    assert.equal(((await again.json()) as { deduplicated: boolean }).deduplicated, true);
  });

  it('refuses a report whose ETag or size S3 does not list, and unknown parts', async () => {
    const source = randomBytes(6 * MiB);
    const created = await create({ size: source.length, partSize: 5 * MiB });
    const [first] = await presign(created.id, [1]);
    const etag = await putToBucket(first!, source.subarray(0, 5 * MiB));
    const wrongTag = await report(created.id, 1, {
      etag: '"0123456789abcdef0123456789abcdef"',
      size: 5 * MiB,
    });
    assert.equal(wrongTag.status, 409);
    assert.equal(((await wrongTag.json()) as { error: { code: string } }).error.code, 'ERR_PART_NOT_STORED');
    const notSent = await report(created.id, 2, { etag, size: MiB });
    assert.equal(notSent.status, 409);
    const wrongSize = await report(created.id, 1, { etag, size: 4 * MiB });
    assert.equal(wrongSize.status, 400);
    assert.equal(
      ((await wrongSize.json()) as { error: { code: string } }).error.code,
      'ERR_PART_SIZE_MISMATCH',
    );
    const unknownPart = await fetch(`${url}/uploads/${created.id}/presign`, {
      method: 'POST',
      headers: JSON_HEADERS,
      body: JSON.stringify({ parts: [3] }),
    });
    assert.equal(unknownPart.status, 400);
    assert.equal(
      ((await unknownPart.json()) as { error: { code: string } }).error.code,
      'ERR_INVALID_PART_NUMBER',
    );
    const tooMany = await fetch(`${url}/uploads/${created.id}/presign`, {
      method: 'POST',
      headers: JSON_HEADERS,
      body: JSON.stringify({ parts: [[1, 101]] }),
    });
    assert.equal(tooMany.status, 400);
  });

  it('complete refuses when the bucket no longer holds a reported part with its ETag', async () => {
    const source = randomBytes(10 * MiB + 1);
    const created = await create({ size: source.length, partSize: 5 * MiB });
    await sendAll(created.id, source, created.partSize, created.partCount);
    // Part 2 replaced in the bucket behind Ferry's back: S3 now lists another ETag.
    const { uploadId, key } = store.locate((await ferry.parts.load(created.id, '')).storageKey);
    await s3.send(
      new UploadPartCommand({
        Bucket: settings!.bucket,
        Key: key,
        UploadId: uploadId,
        PartNumber: 2,
        Body: randomBytes(5 * MiB),
        ContentLength: 5 * MiB,
      }),
    );
    const completed = await fetch(`${url}/uploads/${created.id}/complete`, { method: 'POST' });
    assert.equal(completed.status, 409);
    const body = (await completed.json()) as { error: { code: string; details: { missing: number[] } } };
    assert.equal(body.error.code, 'ERR_PARTS_MISSING');
    assert.deepEqual(body.error.details.missing, [2]);
    const status = (await (await fetch(`${url}/uploads/${created.id}`)).json()) as { received: unknown };
    assert.deepEqual(status.received, [
      [1, 1],
      [3, 3],
    ]);
  });

  it('refuses a wrong declared SHA-256 after reading the object back: deleted, upload reopened empty', async () => {
    const source = randomBytes(5 * MiB + 100);
    const created = await create({ size: source.length, partSize: 5 * MiB });
    await sendAll(created.id, source, created.partSize, created.partCount);
    const wrong = sha256(Buffer.from('something else'));
    const completed = await fetch(`${url}/uploads/${created.id}/complete`, {
      method: 'POST',
      headers: JSON_HEADERS,
      body: JSON.stringify({ sha256: wrong }),
    });
    assert.equal(completed.status, 422);
    const body = (await completed.json()) as { error: { code: string; details: { actual: string } } };
    assert.equal(body.error.code, 'ERR_SHA256_MISMATCH');
    assert.equal(body.error.details.actual, sha256(source));
    await assert.rejects(
      s3.send(new GetObjectCommand({ Bucket: settings!.bucket, Key: prefix + created.id })),
      (error: Error) => error.name === 'NoSuchKey',
    );
    assert.equal((await fetch(`${url}/files/${created.id}`)).status, 404);
    const status = (await (await fetch(`${url}/uploads/${created.id}`)).json()) as {
      received: unknown;
      state: string;
    };
    assert.equal(status.state, 'uploading');
    assert.deepEqual(status.received, []);
    // Sent again (to the new multipart upload) with the right digest, it completes.
    await sendAll(created.id, source, created.partSize, created.partCount);
    const retried = await fetch(`${url}/uploads/${created.id}/complete`, {
      method: 'POST',
      headers: JSON_HEADERS,
      body: JSON.stringify({ sha256: sha256(source) }),
    });
    assert.equal(retried.status, 200, await retried.clone().text());
  });

  it('refuses presigning a finished upload', async () => {
    const source = randomBytes(1000);
    const created = await create({ size: source.length });
    await sendAll(created.id, source, created.partSize, created.partCount);
    assert.equal((await fetch(`${url}/uploads/${created.id}/complete`, { method: 'POST' })).status, 200);
    const answer = await fetch(`${url}/uploads/${created.id}/presign`, {
      method: 'POST',
      headers: JSON_HEADERS,
      body: JSON.stringify({ parts: [1] }),
    });
    assert.equal(answer.status, 409);
    assert.equal(((await answer.json()) as { error: { code: string } }).error.code, 'ERR_UPLOAD_FINISHED');
  });
});

describe('presigned parts on local-disk storage', () => {
  let dataDir: string;
  let ferry: Ferry;
  let url: string;
  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'ferry-fs-presign-'));
    ferry = await createFerry({ dataDir, logLevel: 'silent' });
    ({ url } = await ferry.listen({ host: '127.0.0.1', port: 0 }));
  });
  after(async () => {
    await ferry?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('answers 405 ERR_METHOD_NOT_ALLOWED to presign and to a part report', async () => {
    const created = (await (
      await fetch(`${url}/uploads`, {
        method: 'POST',
        headers: JSON_HEADERS,
        body: JSON.stringify({ size: 10 }),
      })
    ).json()) as { id: string };
    const answer = await fetch(`${url}/uploads/${created.id}/presign`, {
      method: 'POST',
      headers: JSON_HEADERS,
      body: JSON.stringify({ parts: [1] }),
    });
    assert.equal(answer.status, 405);
    assert.equal(((await answer.json()) as { error: { code: string } }).error.code, 'ERR_METHOD_NOT_ALLOWED');
    const reported = await fetch(`${url}/uploads/${created.id}/parts/1`, {
      method: 'PUT',
      headers: { 'content-type': PART_REPORT_CONTENT_TYPE },
      body: JSON.stringify({ etag: '"x"', size: 10 }),
    });
    assert.equal(reported.status, 405);
  });
});
