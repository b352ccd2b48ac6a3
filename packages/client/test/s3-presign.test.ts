/**
 * The parts transport with `presigned: true` against Ferry on S3 storage (the project's Ceph RGW):
 * parts go straight to the bucket (Ferry receives no body byte, and the bucket never sees the app's
 * Authorization header, which it would refuse next to a presigned signature), an expired URL is
 * asked for again, and an upload paused half-way resumes from the resume store.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createS3DataStore, mintUploadToken, type S3DataStore } from '@ferry/server';
import { s3Service, s3StoreOptions, uniqueKeyPrefix } from '@ferry/testing';
import { createUpload, type RetryEvent } from '../src/index.ts';
import {
  ferryBytesReceived,
  MiB,
  request,
  sha256,
  startFerry,
  type TestServer,
  tempResumeStore,
} from './helpers.ts';

const settings = await s3Service();

describe('presigned parts client against Ferry on S3', { skip: settings === undefined }, () => {
  const prefix = uniqueKeyPrefix('client-presign');
  let store: S3DataStore;
  let server: TestServer;
  let endpoint: string;
  let s3: S3Client;

  before(async () => {
    store = await createS3DataStore(s3StoreOptions(settings!, prefix));
    server = await startFerry({ dataStore: store });
    endpoint = `${server.origin}/uploads`;
    s3 = new S3Client({
      endpoint: settings!.endpoint,
      region: settings!.region,
      forcePathStyle: true,
      credentials: { accessKeyId: settings!.accessKeyId, secretAccessKey: settings!.secretAccessKey },
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  });
  after(async () => {
    s3?.destroy();
    await server?.stop();
    await store?.close();
  });

  async function objectDigest(id: string): Promise<string> {
    const object = await s3.send(new GetObjectCommand({ Bucket: settings!.bucket, Key: prefix + id }));
    return sha256(await object.Body!.transformToByteArray());
  }

  it('sends a multi-part file straight to the bucket: Ferry receives no body byte', async () => {
    const bytes = randomBytes(23 * MiB + 11);
    const before = await ferryBytesReceived(server);
    const upload = createUpload({
      endpoint,
      protocol: 'parts',
      presigned: true,
      source: bytes,
      name: 'direct.bin',
      chunkSize: 5 * MiB,
      parallel: 3,
      resumeStore: false,
      // Meant for Ferry only: a bucket refuses a request with both a presigned signature and this.
      headers: { authorization: 'Bearer for-ferry-only' },
    });
    const result = await upload.start();
    assert.equal(result.protocol, 'parts');
    assert.equal(result.sha256, sha256(bytes));
    assert.equal((await ferryBytesReceived(server)) - before, 0, 'no body byte through Ferry');
    assert.equal(await objectDigest(result.id), sha256(bytes));
    assert.deepEqual(await server.stored(result.url), { sha256: sha256(bytes), size: bytes.length });
    assert.equal(upload.progress.bytesConfirmed, bytes.length);
  });

  it('with an upload token: the token goes to Ferry (presign, ETag reports, complete), never to the bucket', async () => {
    const secret = 'client-presign-token-secret-0123456789abcdef';
    const guarded = await startFerry({ dataStore: store, authSecret: secret });
    try {
      const bytes = randomBytes(11 * MiB);
      let calls = 0;
      const upload = createUpload({
        endpoint: `${guarded.origin}/uploads`,
        protocol: 'parts',
        presigned: true,
        source: bytes,
        chunkSize: 5 * MiB,
        // The bucket refuses a request with both a presigned signature and an Authorization header:
        // any part that carried the token would fail, and `limit: 0` fails the upload at once.
        retry: { limit: 0 },
        token: () => {
          calls += 1;
          return mintUploadToken({ secret, subject: 'presigner', ttlSeconds: 60 });
        },
        resumeStore: false,
      });
      const result = await upload.start();
      assert.equal(calls, 1);
      assert.equal(await objectDigest(result.id), sha256(bytes));
      const unauthorized = await request(result.url, 'GET');
      assert.equal(unauthorized.status, 401);
    } finally {
      await guarded.ferry?.close();
    }
  });

  it('asks again for a URL the bucket refuses as expired, and completes', async () => {
    const shortLived = await startFerry({ dataStore: store, presignExpirySeconds: 1 });
    try {
      const bytes = randomBytes(15 * MiB);
      const retries: RetryEvent[] = [];
      const upload = createUpload({
        endpoint: `${shortLived.origin}/uploads`,
        protocol: 'parts',
        presigned: true,
        source: bytes,
        chunkSize: 5 * MiB,
        parallel: 1,
        adaptiveConcurrency: false,
        // About 1.7 s a part: the URLs presigned with the first one have expired before they are used.
        limitRate: 3 * MiB,
        resumeStore: false,
      });
      upload.on('retry', (event) => retries.push(event));
      const result = await upload.start();
      assert.ok(
        retries.some((event) => (event.error as { code?: string }).code === 'ERR_PRESIGNED_URL_REFUSED'),
        `an expired URL was refused and renewed (retries: ${retries.map((event) => event.operation).join(', ')})`,
      );
      assert.equal(await objectDigest(result.id), sha256(bytes));
    } finally {
      await shortLived.ferry?.close();
    }
  });

  it('pauses half-way and resumes from the resume store, sending only the missing parts', async () => {
    const bytes = randomBytes(30 * MiB);
    const { store: resumeStore } = await tempResumeStore();
    const options = {
      endpoint,
      protocol: 'parts' as const,
      presigned: true,
      source: bytes,
      name: 'resume-direct.bin',
      chunkSize: 5 * MiB,
      parallel: 2,
      adaptiveConcurrency: false,
      resumeStore,
    };
    const first = createUpload({ ...options, limitRate: 16 * MiB });
    void first.start().catch(() => {});
    while (first.progress.bytesConfirmed < 10 * MiB) await sleep(5);
    first.pause();
    await sleep(300);
    const status = JSON.parse((await request(first.uploadUrl as string, 'GET')).body) as {
      receivedBytes: number;
      received: [number, number][];
    };
    assert.ok(status.receivedBytes >= 10 * MiB);
    assert.equal((await resumeStore.list()).length, 1);

    const second = createUpload(options);
    const resumed: string[] = [];
    second.on('resumed', (event) => resumed.push(event.url));
    const result = await second.start();
    assert.deepEqual(resumed, [first.uploadUrl]);
    assert.equal(await objectDigest(result.id), sha256(bytes));
    assert.deepEqual(await resumeStore.list(), []);
  });
});
