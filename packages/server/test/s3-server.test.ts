import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { s3Service, s3StoreOptions, uniqueKeyPrefix } from '@ferry/testing';
import { createFerry, type Ferry } from '../src/ferry.ts';
import { createS3DataStore } from '../src/stores/s3/s3-data-store.ts';

const settings = await s3Service();
const MiB = 1024 * 1024;
const TUS = { 'tus-resumable': '1.0.0' };

/** Every file under `directory`, recursively, relative to it. */
async function filesUnder(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(directory.length + 1));
}

describe('ferry with S3 storage', { skip: settings === undefined }, () => {
  const prefix = uniqueKeyPrefix('s3-server');
  let dataDir: string;
  let ferry: Ferry;
  let url: string;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'ferry-s3-server-'));
    const dataStore = await createS3DataStore({ ...s3StoreOptions(settings!, prefix), partSize: 5 * MiB });
    ferry = await createFerry({ dataDir, dataStore, logLevel: 'silent' });
    ({ url } = await ferry.listen({ host: '127.0.0.1', port: 0 }));
  });
  after(async () => {
    await ferry?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('writes no upload byte to the local disk: the data directory holds only the database', async () => {
    const source = randomBytes(13 * MiB + 7);
    const created = await fetch(`${url}/files/`, {
      method: 'POST',
      headers: { ...TUS, 'upload-length': String(source.length) },
    });
    assert.equal(created.status, 201);
    const location = new URL(created.headers.get('location')!, url).href;
    // Three PATCHes: a tail below 5 MiB is left after each of the first two (kept in the bucket).
    for (const [start, end] of [
      [0, 3 * MiB],
      [3 * MiB, 9 * MiB + 1],
      [9 * MiB + 1, source.length],
    ] as const) {
      const patched = await fetch(location, {
        method: 'PATCH',
        headers: {
          ...TUS,
          'upload-offset': String(start),
          'content-type': 'application/offset+octet-stream',
        },
        body: source.subarray(start, end),
      });
      assert.equal(patched.status, 204, await patched.text());
      assert.deepEqual(
        (await filesUnder(dataDir)).filter((name) => !/^ferry\.db(-wal|-shm)?$/.test(name)),
        [],
        `after bytes ${start}-${end}`,
      );
    }
    const head = await fetch(location, { method: 'HEAD', headers: TUS });
    assert.equal(head.headers.get('upload-offset'), String(source.length));
    const download = await fetch(location);
    assert.equal(download.status, 200);
    assert.ok(Buffer.from(await download.arrayBuffer()).equals(source));
    assert.deepEqual(
      (await filesUnder(dataDir)).filter((name) => !/^ferry\.db(-wal|-shm)?$/.test(name)),
      [],
    );
  });

  it('answers PATCH 503 ERR_STORAGE_UNAVAILABLE and HEAD 423 (retry, keep the upload) while S3 is unreachable', async () => {
    const created = await fetch(`${url}/files/`, {
      method: 'POST',
      headers: { ...TUS, 'upload-length': '100' },
    });
    const location = new URL(created.headers.get('location')!, url).href;
    await ferry.close();
    // The same records, a store whose S3 does not answer (as in an outage).
    const down = await createS3DataStore({
      ...s3StoreOptions({ ...settings!, endpoint: 'http://127.0.0.1:9' }, prefix),
      checkBucket: false,
    });
    ferry = await createFerry({ dataDir, dataStore: down, logLevel: 'silent' });
    const base = (await ferry.listen({ host: '127.0.0.1', port: 0 })).url;
    const moved = location.replace(url, base);
    // tus clients start over after a 5xx on HEAD: the server answers 423 ("retry") there instead.
    const head = await fetch(moved, { method: 'HEAD', headers: TUS });
    assert.equal(head.status, 423);
    const patched = await fetch(moved, {
      method: 'PATCH',
      headers: { ...TUS, 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' },
      body: Buffer.alloc(100),
    });
    assert.equal(patched.status, 503);
    assert.equal(
      ((await patched.json()) as { error: { code: string } }).error.code,
      'ERR_STORAGE_UNAVAILABLE',
    );
    const again = await fetch(moved, { method: 'HEAD', headers: TUS });
    assert.equal(again.status, 423, 'still answering');
  });

  it('refuses to start when the bucket cannot be reached, saying so', async () => {
    await assert.rejects(
      createFerry({
        dataDir,
        storage: 's3',
        s3Endpoint: settings!.endpoint,
        s3Bucket: 'no-such-bucket-for-ferry',
        s3ForcePathStyle: true,
        logLevel: 'silent',
      }),
      /cannot reach S3 bucket "no-such-bucket-for-ferry"/,
    );
    await assert.rejects(createFerry({ dataDir, storage: 's3', logLevel: 'silent' }), /needs a bucket/);
  });
});
