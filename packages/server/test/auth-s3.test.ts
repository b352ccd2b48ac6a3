/**
 * Upload tokens on the routes only S3 storage serves, against the real RGW: presigned parts
 * (`POST /uploads/:id/presign`, ETag reports) and Uppy's `/s3/multipart` signing routes. Every
 * route needs a token; another owner gets 404; the token's types apply when Uppy creates, its
 * maxSize when Uppy completes (the size is first known there).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PART_REPORT_CONTENT_TYPE } from '@ferry/protocol';
import { s3Service, s3StoreOptions, uniqueKeyPrefix } from '@ferry/testing';
import { createFerry, type Ferry } from '../src/ferry.ts';
import { createS3DataStore, type S3DataStore } from '../src/stores/s3/s3-data-store.ts';
import { bearer, SECRET, tokenFor } from './auth-helpers.ts';

const settings = await s3Service();
const JSON_TYPE = { 'content-type': 'application/json' };

describe('upload tokens on the S3 routes (real RGW)', { skip: settings === undefined }, () => {
  const prefix = uniqueKeyPrefix('auth-s3');
  let dataDir: string;
  let store: S3DataStore;
  let ferry: Ferry;
  let url: string;
  let alice: string;
  let bob: string;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'ferry-auth-s3-'));
    store = await createS3DataStore(s3StoreOptions(settings!, prefix));
    ferry = await createFerry({ dataDir, dataStore: store, logLevel: 'silent', authSecret: SECRET });
    ({ url } = await ferry.listen({ host: '127.0.0.1', port: 0 }));
    alice = await tokenFor('alice');
    bob = await tokenFor('bob');
  });
  after(async () => {
    await ferry?.close();
    await store?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  function call(path: string, method: string, token: string | undefined, body?: unknown) {
    return fetch(`${url}${path}`, {
      method,
      headers: { ...(token === undefined ? {} : bearer(token)), ...(body === undefined ? {} : JSON_TYPE) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  }

  async function codeOf(answer: Response): Promise<string | undefined> {
    return ((await answer.json()) as { error?: { code?: string } }).error?.code;
  }

  it('presign and ETag reports: 401 without a token, 404 for another owner, 200 for the owner', async () => {
    const created = await call('/uploads', 'POST', alice, { size: 100 });
    assert.equal(created.status, 201);
    const { id } = (await created.json()) as { id: string };
    const missing = await call(`/uploads/${id}/presign`, 'POST', undefined, { parts: [1] });
    assert.equal(missing.status, 401);
    assert.equal(await codeOf(missing), 'ERR_TOKEN_MISSING');
    const stranger = await call(`/uploads/${id}/presign`, 'POST', bob, { parts: [1] });
    assert.equal(stranger.status, 404);
    const own = await call(`/uploads/${id}/presign`, 'POST', alice, { parts: [1] });
    assert.equal(own.status, 200, await own.clone().text());
    const [part] = ((await own.json()) as { parts: Array<{ url: string; headers: Record<string, string> }> })
      .parts;
    const bytes = randomBytes(100);
    const put = await fetch(part!.url, {
      method: 'PUT',
      headers: part!.headers,
      body: new Uint8Array(bytes),
    });
    assert.equal(put.status, 200);
    const report = (token: string) =>
      fetch(`${url}/uploads/${id}/parts/1`, {
        method: 'PUT',
        headers: { ...bearer(token), 'content-type': PART_REPORT_CONTENT_TYPE },
        body: JSON.stringify({ etag: put.headers.get('etag'), size: bytes.length }),
      });
    assert.equal((await report(bob)).status, 404);
    assert.equal((await report(alice)).status, 200);
    assert.equal((await call(`/uploads/${id}/complete`, 'POST', bob, {})).status, 404);
    const done = await call(`/uploads/${id}/complete`, 'POST', alice, {});
    assert.equal(done.status, 200, await done.clone().text());
  });

  it("Uppy's routes: 401 without a token on each, 404 for another owner on each, the owner's flow works", async () => {
    const unauthenticated = await call('/s3/multipart', 'POST', undefined, { filename: 'a.bin' });
    assert.equal(unauthenticated.status, 401);
    assert.equal(await codeOf(unauthenticated), 'ERR_TOKEN_MISSING');
    const created = await call('/s3/multipart', 'POST', alice, { filename: 'a.bin', type: 'image/png' });
    assert.equal(created.status, 200, await created.clone().text());
    const { key, uploadId } = (await created.json()) as { key: string; uploadId: string };
    const base = `/s3/multipart/${encodeURIComponent(uploadId)}`;
    const q = `key=${encodeURIComponent(key)}`;
    const routes: Array<[string, string, unknown?]> = [
      [`${base}?${q}`, 'GET'],
      [`${base}/batch?${q}&partNumbers=1`, 'GET'],
      [`${base}/1?${q}`, 'GET'],
      [`${base}/complete?${q}`, 'POST', { parts: [{ PartNumber: 1, ETag: '"x"' }] }],
      [`${base}?${q}`, 'DELETE'],
    ];
    for (const [path, method, body] of routes) {
      const none = await call(path, method, undefined, body);
      assert.equal(none.status, 401, `${method} ${path}`);
      const stranger = await call(path, method, bob, body);
      assert.equal(stranger.status, 404, `${method} ${path}: ${await stranger.clone().text()}`);
    }
    const signed = await call(`${base}/1?${q}`, 'GET', alice);
    assert.equal(signed.status, 200);
    const part = randomBytes(2000);
    const put = await fetch(((await signed.json()) as { url: string }).url, {
      method: 'PUT',
      body: new Uint8Array(part),
    });
    const done = await call(`${base}/complete?${q}`, 'POST', alice, {
      parts: [{ PartNumber: 1, ETag: put.headers.get('etag') }],
    });
    assert.equal(done.status, 200, await done.clone().text());
    const { location } = (await done.json()) as { location: string };
    assert.equal((await fetch(location, { headers: bearer(bob) })).status, 404);
    const file = await fetch(location, { headers: bearer(alice) });
    assert.deepEqual(Buffer.from(await file.arrayBuffer()), part);
  });

  it("Uppy's routes apply the token's types at creation and its maxSize at completion", async () => {
    const images = await tokenFor('alice', { types: ['image/*'] });
    const wrong = await call('/s3/multipart', 'POST', images, { filename: 'a.html', type: 'text/html' });
    assert.equal(wrong.status, 403);
    assert.equal(await codeOf(wrong), 'ERR_TYPE_NOT_ALLOWED');

    const small = await tokenFor('alice', { maxSize: 1000 });
    const created = await call('/s3/multipart', 'POST', small, { filename: 'big.bin' });
    const { key, uploadId } = (await created.json()) as { key: string; uploadId: string };
    const base = `/s3/multipart/${encodeURIComponent(uploadId)}`;
    const q = `key=${encodeURIComponent(key)}`;
    const signed = (await (await call(`${base}/1?${q}`, 'GET', small)).json()) as { url: string };
    const put = await fetch(signed.url, { method: 'PUT', body: new Uint8Array(randomBytes(1001)) });
    const done = await call(`${base}/complete?${q}`, 'POST', small, {
      parts: [{ PartNumber: 1, ETag: put.headers.get('etag') }],
    });
    assert.equal(done.status, 413);
    assert.equal(await codeOf(done), 'ERR_TOKEN_MAX_SIZE');
    // The oversized file is gone, not served.
    assert.equal((await fetch(`${url}/files/${key}`, { headers: bearer(small) })).status, 404);
  });
});
