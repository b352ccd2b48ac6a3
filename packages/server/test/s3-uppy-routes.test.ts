/**
 * The Uppy `@uppy/aws-s3` signing routes over HTTP against the real RGW, for what the browser test
 * does not reach: ListParts over several pages, batch signing, a wrong ETag or uploadId at
 * completion, abort, and the routes Ferry refuses.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { s3Service, s3StoreOptions, uniqueKeyPrefix } from '@ferry/testing';
import { createFerry, type Ferry } from '../src/ferry.ts';
import { createS3DataStore, type S3DataStore } from '../src/stores/s3/s3-data-store.ts';

const settings = await s3Service();
const JSON_HEADERS = { 'content-type': 'application/json' };

describe('Uppy signing routes (real RGW)', { skip: settings === undefined }, () => {
  const prefix = uniqueKeyPrefix('s3-uppy-routes');
  let dataDir: string;
  let store: S3DataStore;
  let ferry: Ferry;
  let url: string;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'ferry-s3-uppy-'));
    // One part per ListParts page: listing must follow the pages.
    store = await createS3DataStore({ ...s3StoreOptions(settings!, prefix), listPartsPageSize: 1 });
    ferry = await createFerry({ dataDir, dataStore: store, logLevel: 'silent' });
    ({ url } = await ferry.listen({ host: '127.0.0.1', port: 0 }));
  });
  after(async () => {
    await ferry?.close();
    await store?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  async function createUpload(): Promise<{ key: string; uploadId: string; bucket: string }> {
    const answer = await fetch(`${url}/s3/multipart`, {
      method: 'POST',
      headers: JSON_HEADERS,
      body: JSON.stringify({
        filename: 'a.bin',
        type: 'application/octet-stream',
        metadata: { name: 'a.bin', relativePath: null },
      }),
    });
    assert.equal(answer.status, 200, await answer.clone().text());
    return (await answer.json()) as { key: string; uploadId: string; bucket: string };
  }

  it('signs in batches, lists every page, completes, and refuses a wrong ETag or uploadId', async () => {
    const { key, uploadId, bucket } = await createUpload();
    assert.equal(bucket, settings!.bucket);
    const q = `key=${encodeURIComponent(key)}`;
    const batch = (await (
      await fetch(`${url}/s3/multipart/${encodeURIComponent(uploadId)}/batch?${q}&partNumbers=1,2`)
    ).json()) as { presignedUrls: Record<string, string> };
    assert.deepEqual(Object.keys(batch.presignedUrls).sort(), ['1', '2']);
    const parts = [randomBytes(5 * 1024 * 1024), randomBytes(1234)];
    const etags: string[] = [];
    for (const [index, bytes] of parts.entries()) {
      const put = await fetch(batch.presignedUrls[String(index + 1)]!, {
        method: 'PUT',
        body: new Uint8Array(bytes),
      });
      assert.equal(put.status, 200);
      etags.push(put.headers.get('etag')!);
    }
    const listed = (await (
      await fetch(`${url}/s3/multipart/${encodeURIComponent(uploadId)}?${q}`)
    ).json()) as Array<{
      PartNumber: number;
      Size: number;
      ETag: string;
    }>;
    assert.deepEqual(
      listed.map((part) => [part.PartNumber, part.Size, part.ETag]),
      [
        [1, parts[0]!.length, etags[0]],
        [2, parts[1]!.length, etags[1]],
      ],
    );
    const complete = (body: unknown, id = uploadId) =>
      fetch(`${url}/s3/multipart/${encodeURIComponent(id)}/complete?${q}`, {
        method: 'POST',
        headers: JSON_HEADERS,
        body: JSON.stringify(body),
      });
    const wrongTag = await complete({
      parts: [
        { PartNumber: 1, ETag: etags[0] },
        { PartNumber: 2, ETag: '"00"' },
      ],
    });
    assert.equal(wrongTag.status, 409);
    const wrongUpload = await complete({ parts: [{ PartNumber: 1, ETag: etags[0] }] }, 'not-the-upload-id');
    assert.equal(wrongUpload.status, 404);
    const done = await complete({ parts: etags.map((ETag, index) => ({ PartNumber: index + 1, ETag })) });
    assert.equal(done.status, 200, await done.clone().text());
    const body = (await done.json()) as { location: string; key: string };
    assert.equal(body.location, `${url}/files/${key}`);
    const file = Buffer.from(await (await fetch(body.location)).arrayBuffer());
    assert.equal(
      createHash('sha256').update(file).digest('hex'),
      createHash('sha256').update(Buffer.concat(parts)).digest('hex'),
    );
    const record = await ferry.parts.load(key, '');
    assert.equal(record.metadata['filename'], 'a.bin');
    assert.equal(record.size, file.length);
  });

  it('abort removes the Ferry upload; params and sts answer 405', async () => {
    const { key, uploadId } = await createUpload();
    const feed = (await (await fetch(`${url}/uploads`)).json()) as { uploads: Array<{ id: string }> };
    assert.ok(
      feed.uploads.some((upload) => upload.id === key),
      'listed in the uploads feed',
    );
    const aborted = await fetch(`${url}/s3/multipart/${encodeURIComponent(uploadId)}?key=${key}`, {
      method: 'DELETE',
    });
    assert.equal(aborted.status, 200);
    await assert.rejects(ferry.parts.load(key, ''), { code: 'ERR_NOT_FOUND' });
    assert.equal((await fetch(`${url}/s3/params?filename=a&type=b`)).status, 405);
    assert.equal((await fetch(`${url}/s3/sts`)).status, 405);
  });
});
