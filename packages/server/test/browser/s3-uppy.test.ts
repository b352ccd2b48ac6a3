/**
 * The released Uppy `@uppy/aws-s3` plugin, unchanged, in Chromium on a page of its own origin,
 * signing through Ferry's `/s3/multipart…` routes (`companionEndpoint`) while the bytes go straight
 * to the project's Ceph RGW bucket. The upload is a Ferry upload: recorded and finished in the
 * metadata store and served at `/files/:id`; the object's bytes equal the file's.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand, PutBucketCorsCommand, S3Client } from '@aws-sdk/client-s3';
import {
  browserSkipReason,
  CHROMIUM_ARGS,
  chromiumPath,
  type PageServer,
  s3Service,
  s3StoreOptions,
  servePage,
  uniqueKeyPrefix,
} from '@ferry/testing';
import { build } from 'esbuild';
import { type Browser, chromium } from 'playwright-core';
import { createFerry, type Ferry } from '../../src/ferry.ts';
import { createS3DataStore, type S3DataStore } from '../../src/stores/s3/s3-data-store.ts';

const settings = await s3Service();
const skip = browserSkipReason() ?? (settings === undefined ? 'no S3 server' : undefined);
const pageScript = fileURLToPath(new URL('../../../../apps/web/uppy/uppy-s3-page.ts', import.meta.url));
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

type UppyS3PageEvent =
  | { type: 'success'; name: string; size: number; location: string; key: string }
  | { type: 'error'; name: string; message: string }
  | { type: 'part'; partNumber: number }
  | { type: 'complete'; successful: number; failed: number };

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Uppy S3 to Ferry</title><link rel="icon" href="data:,"></head>
<body><input type="file" id="file" aria-label="file"><script type="module" src="/assets/page.js"></script></body></html>`;

/** Bundles the page with esbuild and serves it on its own loopback port (its own origin). */
async function bundleAndServePage(dir: string): Promise<PageServer> {
  await build({
    entryPoints: [pageScript],
    outfile: join(dir, 'assets', 'page.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'chrome120',
    logLevel: 'error',
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  return servePage(PAGE, join(dir, 'assets'));
}

describe('Uppy @uppy/aws-s3 through Ferry signing routes (Chromium, real RGW)', { skip }, () => {
  const prefix = uniqueKeyPrefix('uppy-s3');
  let dir: string;
  let page: PageServer;
  let store: S3DataStore;
  let ferry: Ferry;
  let ferryUrl: string;
  let s3: S3Client;
  let browser: Browser;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-uppy-s3-'));
    s3 = new S3Client({
      endpoint: settings!.endpoint,
      region: settings!.region,
      forcePathStyle: true,
      credentials: { accessKeyId: settings!.accessKeyId, secretAccessKey: settings!.secretAccessKey },
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    // The rule Uppy's documentation asks for: browsers may PUT, and may read the ETag.
    await s3.send(
      new PutBucketCorsCommand({
        Bucket: settings!.bucket,
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
    page = await bundleAndServePage(dir);
    store = await createS3DataStore(s3StoreOptions(settings!, prefix));
    ferry = await createFerry({
      dataDir: join(dir, 'data'),
      dataStore: store,
      logLevel: 'silent',
      corsOrigins: [page.origin],
    });
    ({ url: ferryUrl } = await ferry.listen({ host: '127.0.0.1', port: 0 }));
    browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: CHROMIUM_ARGS });
  });
  after(async () => {
    await browser?.close();
    await ferry?.close();
    await store?.close();
    s3?.destroy();
    await page?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('uploads a 30 MB file; the Ferry upload is finished and its bytes match', async () => {
    const bytes = randomBytes(30_000_000);
    const path = join(dir, 'movie.bin');
    await writeFile(path, bytes);
    const received = async () => ((await ferry.metrics.bytesReceived.get()).values[0]?.value ?? 0) as number;
    const before = await received();

    const tab = await browser.newPage();
    await tab.goto(`${page.origin}/?ferry=${encodeURIComponent(ferryUrl)}`);
    await tab.locator('#file').setInputFiles(path);
    const deadline = Date.now() + 90_000;
    let events: UppyS3PageEvent[] = [];
    for (;;) {
      events = await tab.evaluate(
        () => (globalThis as unknown as { uppyEvents: UppyS3PageEvent[] }).uppyEvents,
      );
      if (events.some((event) => event.type === 'complete')) break;
      if (Date.now() > deadline) throw new Error(`Uppy did not complete: ${JSON.stringify(events)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await tab.close();
    assert.deepEqual(
      events.filter((event) => event.type === 'complete'),
      [{ type: 'complete', successful: 1, failed: 0 }],
      JSON.stringify(events),
    );
    assert.equal(events.filter((event) => event.type === 'part').length, 6, '6 parts of 5 MiB');
    const success = events.find((event) => event.type === 'success');
    assert.ok(success?.type === 'success');
    assert.equal(success.location, `${ferryUrl}/files/${success.key}`);
    assert.equal((await received()) - before, 0, 'no body byte through Ferry');

    const record = await ferry.parts.load(success.key, '');
    assert.equal(record.state, 'finished');
    assert.equal(record.size, bytes.length);
    assert.equal(record.metadata['filename'], 'movie.bin');
    const object = await s3.send(
      new GetObjectCommand({ Bucket: settings!.bucket, Key: prefix + success.key }),
    );
    assert.equal(sha256(await object.Body!.transformToByteArray()), sha256(bytes));
    const download = await fetch(success.location);
    assert.equal(download.status, 200);
    assert.equal(sha256(new Uint8Array(await download.arrayBuffer())), sha256(bytes));
  });
});
