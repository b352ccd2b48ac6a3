/**
 * The browser build in Chromium with `presigned: true`: the page (one origin) creates the upload at
 * Ferry (another origin), whose storage is the project's Ceph RGW, and PUTs every part straight to
 * the bucket (a third origin), reading the `ETag` the bucket's CORS rule exposes. Ferry receives no
 * body byte; the object's SHA-256 equals the bytes made in the page.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand, PutBucketCorsCommand, S3Client } from '@aws-sdk/client-s3';
import { createS3DataStore, type S3DataStore } from '@ferry/server';
import { s3Service, s3StoreOptions, uniqueKeyPrefix } from '@ferry/testing';
import type { Page } from 'playwright-core';
import { ferryBytesReceived, MiB, sha256, startFerry, type TestServer } from '../helpers.ts';
import { type BrowserHarness, browserSkipReason, startBrowserHarness } from './harness.ts';
import type { TestApi, UploadSpec, UploadStatus } from './page-entry.ts';

const settings = await s3Service();
const skip = browserSkipReason() ?? (settings === undefined ? 'no S3 server' : undefined);

/** The CORS rule presigned mode needs on the bucket (docs/parts-api.md). */
export async function allowBrowserPuts(s3: S3Client, bucket: string): Promise<void> {
  await s3.send(
    new PutBucketCorsCommand({
      Bucket: bucket,
      CORSConfiguration: {
        CORSRules: [
          {
            AllowedOrigins: ['*'],
            AllowedMethods: ['GET', 'PUT', 'POST', 'HEAD'],
            AllowedHeaders: ['*'],
            ExposeHeaders: ['ETag', 'Location'],
            MaxAgeSeconds: 3000,
          },
        ],
      },
    }),
  );
}

async function status(page: Page, id: string): Promise<UploadStatus> {
  return page.evaluate((id) => (globalThis as unknown as { testApi: TestApi }).testApi.status(id), id);
}

describe('presigned parts from Chromium to the bucket', { skip }, () => {
  const prefix = uniqueKeyPrefix('browser-presign');
  let harness: BrowserHarness;
  let store: S3DataStore;
  let ferry: TestServer;
  let s3: S3Client;

  before(async () => {
    s3 = new S3Client({
      endpoint: settings!.endpoint,
      region: settings!.region,
      forcePathStyle: true,
      credentials: { accessKeyId: settings!.accessKeyId, secretAccessKey: settings!.secretAccessKey },
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    await allowBrowserPuts(s3, settings!.bucket);
    harness = await startBrowserHarness();
    store = await createS3DataStore(s3StoreOptions(settings!, prefix));
    ferry = await startFerry({ dataStore: store, corsOrigins: [harness.origin] });
  });
  after(async () => {
    await harness?.close();
    await ferry?.stop();
    await store?.close();
    s3?.destroy();
  });

  it('sends a multi-part file straight to the bucket across origins', async () => {
    const { page, context } = await harness.open();
    try {
      const before = await ferryBytesReceived(ferry);
      const size = 17 * MiB + 3;
      const spec: UploadSpec = {
        endpoint: `${ferry.origin}/uploads/`,
        protocol: 'parts',
        presigned: true,
        chunkSize: 5 * MiB,
        parallel: 3,
      };
      const expected = await page.evaluate(
        ([spec, size]) =>
          (globalThis as unknown as { testApi: TestApi }).testApi.beginRandom('direct', spec, size),
        [spec, size] as const,
      );
      const deadline = Date.now() + 60_000;
      let last: UploadStatus;
      for (;;) {
        last = await status(page, 'direct');
        if (last.result !== undefined) break;
        if (last.error !== undefined) throw new Error(`upload failed: ${JSON.stringify(last.error)}`);
        if (Date.now() > deadline) throw new Error(`timed out: ${JSON.stringify(last)}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.equal(last.result.sha256, expected);
      assert.equal(last.result.size, size);
      assert.equal(last.progressHonest, true);
      assert.equal((await ferryBytesReceived(ferry)) - before, 0, 'no body byte through Ferry');
      const id = new URL(last.result.url).pathname.split('/').pop()!;
      const object = await s3.send(new GetObjectCommand({ Bucket: settings!.bucket, Key: prefix + id }));
      assert.equal(sha256(await object.Body!.transformToByteArray()), expected);
      assert.deepEqual(await ferry.stored(last.result.url), { sha256: expected, size });
    } finally {
      await context.close();
    }
  });
});
