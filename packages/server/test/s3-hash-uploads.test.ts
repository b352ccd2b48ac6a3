/**
 * `hashUploads` on S3 storage (real RGW): every upload finishes with a server-computed SHA-256, as on
 * fs, though no SHA-256 is declared by the client. Bytes that pass through the server (tus PATCH,
 * parts PUT) are hashed as they stream; bytes that do not (presigned parts) are read back from the
 * completed object.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { PART_REPORT_CONTENT_TYPE } from '@ferry/protocol';
import { s3Service, s3StoreOptions, uniqueKeyPrefix } from '@ferry/testing';
import { createFerry, type Ferry } from '../src/ferry.ts';
import { createS3DataStore, type S3DataStore } from '../src/stores/s3/s3-data-store.ts';

const settings = await s3Service();
const MiB = 1024 * 1024;
const TUS = { 'tus-resumable': '1.0.0' };
const JSON_HEADERS = { 'content-type': 'application/json' };
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

interface Server {
  ferry: Ferry;
  url: string;
  store: S3DataStore;
  dataDir: string;
  prefix: string;
}

const servers: Server[] = [];
after(async () => {
  for (const server of servers) {
    await server.ferry.close();
    await server.store.close();
  }
  for (const dataDir of new Set(servers.map((server) => server.dataDir))) {
    await rm(dataDir, { recursive: true, force: true });
  }
});

async function startServer(reuse?: Server): Promise<Server> {
  const prefix = reuse?.prefix ?? uniqueKeyPrefix('s3-hash');
  const dataDir = reuse?.dataDir ?? (await mkdtemp(join(tmpdir(), 'ferry-s3-hash-')));
  const store = await createS3DataStore({ ...s3StoreOptions(settings!, prefix), partSize: 5 * MiB });
  const ferry = await createFerry({ dataDir, dataStore: store, logLevel: 'silent', hashUploads: true });
  const { url } = await ferry.listen({ host: '127.0.0.1', port: 0 });
  const server = { ferry, url, store, dataDir, prefix };
  servers.push(server);
  return server;
}

async function createTus(url: string, size: number): Promise<string> {
  const created = await fetch(`${url}/files/`, {
    method: 'POST',
    headers: { ...TUS, 'upload-length': String(size) },
  });
  assert.equal(created.status, 201);
  return new URL(created.headers.get('location')!).pathname;
}

function patch(url: string, offset: number, body: Uint8Array): Promise<Response> {
  return fetch(url, {
    method: 'PATCH',
    headers: { ...TUS, 'upload-offset': String(offset), 'content-type': 'application/offset+octet-stream' },
    body: new Uint8Array(body),
  });
}

async function createParts(url: string, size: number, partSize: number): Promise<string> {
  const created = await fetch(`${url}/uploads`, {
    method: 'POST',
    headers: JSON_HEADERS,
    body: JSON.stringify({ size, partSize }),
  });
  assert.equal(created.status, 201, await created.clone().text());
  return ((await created.json()) as { id: string }).id;
}

function putPart(url: string, id: string, n: number, bytes: Uint8Array): Promise<Response> {
  return fetch(`${url}/uploads/${id}/parts/${n}`, { method: 'PUT', body: new Uint8Array(bytes) });
}

async function complete(url: string, id: string): Promise<{ sha256: string | null; size: number }> {
  const completed = await fetch(`${url}/uploads/${id}/complete`, {
    method: 'POST',
    headers: JSON_HEADERS,
    body: '{}',
  });
  assert.equal(completed.status, 200, await completed.clone().text());
  return ((await completed.json()) as { file: { sha256: string | null; size: number } }).file;
}

describe('hashUploads on S3 storage', { skip: settings === undefined }, () => {
  it('records the SHA-256 of a tus upload sent in several PATCHes (tails kept as incomplete parts)', async () => {
    const server = await startServer();
    const source = randomBytes(13 * MiB + 11);
    const path = await createTus(server.url, source.length);
    const cuts = [0, 3 * MiB, 9 * MiB + 5, source.length];
    for (let i = 0; i < cuts.length - 1; i++) {
      const answer = await patch(`${server.url}${path}`, cuts[i]!, source.subarray(cuts[i], cuts[i + 1]));
      assert.equal(answer.status, 204);
    }
    const record = await server.ferry.service.get(path.split('/').pop()!, '');
    assert.equal(record.state, 'finished');
    assert.equal(record.sha256, sha256(source));
  });

  it('records the SHA-256 of a parts upload whose parts arrive out of order and in parallel', async () => {
    const server = await startServer();
    const source = randomBytes(17 * MiB + 3);
    const partSize = 5 * MiB;
    const id = await createParts(server.url, source.length, partSize);
    const part = (n: number) => source.subarray((n - 1) * partSize, n * partSize);
    const sent = await Promise.all([4, 2].map((n) => putPart(server.url, id, n, part(n))));
    for (const answer of sent) assert.equal(answer.status, 200);
    for (const n of [3, 1]) assert.equal((await putPart(server.url, id, n, part(n))).status, 200);
    const file = await complete(server.url, id);
    assert.equal(file.sha256, sha256(source));
  });

  it('records the SHA-256 of presigned parts by reading the completed object back', async () => {
    const server = await startServer();
    const source = randomBytes(11 * MiB + 1);
    const partSize = 5 * MiB;
    const id = await createParts(server.url, source.length, partSize);
    const signed = await fetch(`${server.url}/uploads/${id}/presign`, {
      method: 'POST',
      headers: JSON_HEADERS,
      body: JSON.stringify({ parts: [1, 2, 3] }),
    });
    assert.equal(signed.status, 200, await signed.clone().text());
    const { parts } = (await signed.json()) as { parts: Array<{ n: number; url: string }> };
    for (const { n, url } of parts) {
      const bytes = source.subarray((n - 1) * partSize, n * partSize);
      const put = await fetch(url, { method: 'PUT', body: new Uint8Array(bytes) });
      assert.equal(put.status, 200);
      const reported = await fetch(`${server.url}/uploads/${id}/parts/${n}`, {
        method: 'PUT',
        headers: { 'content-type': PART_REPORT_CONTENT_TYPE },
        body: JSON.stringify({ etag: put.headers.get('etag'), size: bytes.length }),
      });
      assert.equal(reported.status, 200, await reported.clone().text());
    }
    const file = await complete(server.url, id);
    assert.equal(file.sha256, sha256(source));
  });

  // The running hash lives in one process. After a restart S3 cannot read the stored prefix back
  // (an unfinished multipart upload has no readable bytes), so the hash comes from the completed
  // object, read back (S3DataStore.sha256Of) when the running hash cannot vouch for the file.
  it('records the SHA-256 of a tus upload continued by another process', async () => {
    const first = await startServer();
    const source = randomBytes(12 * MiB + 9);
    const path = await createTus(first.url, source.length);
    assert.equal((await patch(`${first.url}${path}`, 0, source.subarray(0, 6 * MiB))).status, 204);
    const second = await startServer(first);
    assert.equal((await patch(`${second.url}${path}`, 6 * MiB, source.subarray(6 * MiB))).status, 204);
    const record = await second.ferry.service.get(path.split('/').pop()!, '');
    assert.equal(record.state, 'finished');
    assert.equal(record.sha256, sha256(source));
  });

  it('records the SHA-256 of a parts upload continued by another process', async () => {
    const first = await startServer();
    const source = randomBytes(10 * MiB + 9);
    const partSize = 5 * MiB;
    const id = await createParts(first.url, source.length, partSize);
    assert.equal((await putPart(first.url, id, 1, source.subarray(0, partSize))).status, 200);
    const second = await startServer(first);
    for (const n of [2, 3]) {
      const bytes = source.subarray((n - 1) * partSize, n * partSize);
      assert.equal((await putPart(second.url, id, n, bytes)).status, 200);
    }
    const file = await complete(second.url, id);
    assert.equal(file.sha256, sha256(source));
  });
});
