/**
 * An upload token's `types` claim applies to the sniffed content as well as to the declared type:
 * an upload created under a token with `types` is refused with 403 ERR_TYPE_NOT_ALLOWED on the
 * request that finishes it when the bytes are of another type, and its bytes and record are
 * deleted — as the server's `allowTypes` does. The claim is recorded with the upload at creation:
 * a later request of the same subject with a token without `types` does not lift it.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { PART_REPORT_CONTENT_TYPE } from '@ferry/protocol';
import { EXE_TYPE, exeBytes, PNG_1X1, s3Service, s3StoreOptions, uniqueKeyPrefix } from '@ferry/testing';
import { createS3DataStore, type S3DataStore } from '../src/stores/s3/s3-data-store.ts';
import { bearer, createAs, jsonAs, patchAs, SECRET, tokenFor } from './auth-helpers.ts';
import { keysUnder, removeUnder, testS3Client } from './s3-helpers.ts';
import {
  head,
  idOf,
  metadataHeader,
  OCTETS,
  send,
  startServer,
  type TestServer,
  TUS,
} from './tus-helpers.ts';

const TYPES = ['image/*'];
const pngMeta = (name = 'cat.png') => ({
  'upload-metadata': metadataHeader({ filename: name, filetype: 'image/png' }),
});

interface ErrorBody {
  error: { code: string; message: string; details: Record<string, unknown> };
}

function assertRefusedByToken(
  reply: { status: number; json: unknown },
  allowed: readonly string[] = TYPES,
  declared: string | null = 'image/png',
): void {
  assert.equal(reply.status, 403, JSON.stringify(reply.json));
  const { error } = reply.json as ErrorBody;
  assert.equal(error.code, 'ERR_TYPE_NOT_ALLOWED');
  assert.deepEqual(error.details, { sniffed: EXE_TYPE, declared, allowed });
  assert.match(error.message, /application\/x-msdownload/);
  assert.match(error.message, /this upload's token allows only/);
}

async function filesOf(directory: string, id: string): Promise<string[]> {
  const entries = await readdir(directory, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => join(entry.parentPath, entry.name).includes(id))
    .map((entry) => entry.name);
}

async function rejectedCount(server: TestServer): Promise<number> {
  const metric = await server.ferry.metrics.registry.getSingleMetric('ferry_uploads_rejected_total')?.get();
  return metric?.values.find((value) => value.labels['reason'] === 'type')?.value ?? 0;
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe("a token's types apply to the sniffed type (fs storage)", () => {
  let server: TestServer;
  let images: string;
  let anything: string;

  before(async () => {
    server = await startServer({ authSecret: SECRET });
    images = await tokenFor('alice', { types: TYPES });
    anything = await tokenFor('alice');
  });
  after(() => server?.stop());

  it('tus: EXE bytes declared image/png are refused at the final PATCH; bytes and record are gone', async () => {
    const exe = exeBytes();
    const before = await rejectedCount(server);
    const location = await createAs(server.endpoint, images, exe.length, pngMeta());
    const id = idOf(location);
    assert.equal((await patchAs(location, images, 0, exe.subarray(0, 1000))).status, 204);
    // The claim was recorded at creation: the same subject's token without types does not lift it.
    assertRefusedByToken(await patchAs(location, anything, 1000, exe.subarray(1000)));
    assert.equal((await head(location, bearer(anything))).status, 404);
    assert.deepEqual(await filesOf(server.dataDir, id), []);
    assert.equal(await rejectedCount(server), before + 1);
  });

  it('tus: a PNG under the same token passes, and the same EXE without types is kept', async () => {
    const png = await createAs(server.endpoint, images, PNG_1X1.length, pngMeta());
    assert.equal((await patchAs(png, images, 0, PNG_1X1)).status, 204);
    const exe = exeBytes();
    const free = await createAs(server.endpoint, anything, exe.length, pngMeta());
    assert.equal((await patchAs(free, anything, 0, exe)).status, 204);
    // A token with types reaches it (same subject), and its limit was never part of the upload.
    const download = await send(free, { headers: bearer(images) });
    assert.equal(download.status, 200);
    assert.equal(download.headers['content-type'], 'application/octet-stream');
  });

  it('tus creation-with-upload: a POST whose body finishes the upload is refused with nothing left', async () => {
    const exe = exeBytes();
    const reply = await send(server.endpoint, {
      method: 'POST',
      headers: { ...OCTETS, ...bearer(images), 'upload-length': exe.length, ...pngMeta() },
      body: exe,
    });
    assertRefusedByToken(reply);
    assert.equal(reply.headers.location, undefined);
  });

  it('tus concatenation: the final upload carries the claim of the token that created it', async () => {
    const exe = exeBytes();
    const partial = { 'upload-concat': 'partial' };
    const first = await createAs(server.endpoint, anything, 3000, partial);
    const second = await createAs(server.endpoint, anything, exe.length - 3000, partial);
    assert.equal((await patchAs(first, anything, 0, exe.subarray(0, 3000))).status, 204);
    assert.equal((await patchAs(second, anything, 0, exe.subarray(3000))).status, 204);
    const concat = `final;${new URL(first).pathname} ${new URL(second).pathname}`;
    const final = await send(server.endpoint, {
      method: 'POST',
      headers: { ...TUS, ...bearer(images), 'upload-concat': concat, ...pngMeta() },
    });
    assertRefusedByToken(final);
    assert.equal((await head(first, bearer(anything))).status, 200, 'the partials stay');
    const free = await send(server.endpoint, {
      method: 'POST',
      headers: { ...TUS, ...bearer(anything), 'upload-concat': concat, ...pngMeta() },
    });
    assert.equal(free.status, 201);
  });

  it('parts API: complete of EXE bytes is refused, with the claim of the creating token', async () => {
    const exe = exeBytes();
    const created = await jsonAs(`${server.url}/uploads`, images, 'POST', {
      size: exe.length,
      name: 'a.png',
      type: 'image/png',
    });
    assert.equal(created.status, 201);
    const { id, url } = created.json as { id: string; url: string };
    const put = await send(`${url}/parts/1`, { method: 'PUT', headers: bearer(images), body: exe });
    assert.equal(put.status, 200, put.body.toString());
    assertRefusedByToken(await jsonAs(`${url}/complete`, anything, 'POST', {}));
    assert.equal((await jsonAs(url, anything, 'GET')).status, 404);
    assert.deepEqual(await filesOf(server.dataDir, id), []);
  });

  it('dedup: a file the token does not allow is not copied; its bytes are uploaded and refused', async () => {
    const exe = exeBytes(6000, 0x41);
    const digest = sha256(exe);
    const original = await jsonAs(`${server.url}/uploads`, anything, 'POST', {
      size: exe.length,
      sha256: digest,
    });
    const { url } = original.json as { url: string };
    await send(`${url}/parts/1`, { method: 'PUT', headers: bearer(anything), body: exe });
    assert.equal((await jsonAs(`${url}/complete`, anything, 'POST', {})).status, 200);
    const again = await jsonAs(`${server.url}/uploads`, anything, 'POST', {
      size: exe.length,
      sha256: digest,
    });
    assert.equal((again.json as { deduplicated?: boolean }).deduplicated, true, 'dedup works without types');

    const typed = await jsonAs(`${server.url}/uploads`, images, 'POST', {
      size: exe.length,
      sha256: digest,
      type: 'image/png',
    });
    assert.equal(typed.status, 201, 'not deduplicated: the copy would skip the check');
    const upload = typed.json as { url: string };
    await send(`${upload.url}/parts/1`, { method: 'PUT', headers: bearer(images), body: exe });
    assertRefusedByToken(await jsonAs(`${upload.url}/complete`, images, 'POST', {}));
  });

  it("with the server's allow-list too: the one that refuses is named", async () => {
    const both = await startServer({
      authSecret: SECRET,
      allowTypes: ['image/*', 'application/x-msdownload'],
    });
    try {
      const exe = exeBytes();
      const pngOnly = await tokenFor('alice', { types: ['image/png'] });
      const byToken = await createAs(both.endpoint, pngOnly, exe.length, pngMeta());
      assertRefusedByToken(await patchAs(byToken, pngOnly, 0, exe), ['image/png']);
      const pdf = Buffer.from(
        '%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n',
        'latin1',
      );
      const pdfToken = await tokenFor('alice', { types: ['application/pdf'] });
      const byServer = await createAs(both.endpoint, pdfToken, pdf.length, {
        'upload-metadata': metadataHeader({ filename: 'a.pdf', filetype: 'application/pdf' }),
      });
      const reply = await patchAs(byServer, pdfToken, 0, pdf);
      assert.equal(reply.status, 403);
      const { error } = reply.json as ErrorBody;
      assert.equal(error.details['sniffed'], 'application/pdf');
      assert.deepEqual(error.details['allowed'], ['image/*', 'application/x-msdownload']);
      assert.match(error.message, /this server accepts only/);
    } finally {
      await both.stop();
    }
  });
});

const settings = await s3Service();

describe("a token's types apply to the sniffed type (S3 storage, real RGW)", {
  skip: settings === undefined,
}, () => {
  const prefix = uniqueKeyPrefix('token-content-types');
  let server: TestServer;
  let store: S3DataStore;
  let s3: S3Client;
  let images: string;

  before(async () => {
    store = await createS3DataStore(s3StoreOptions(settings!, prefix));
    server = await startServer({ dataStore: store, authSecret: SECRET });
    images = await tokenFor('alice', { types: TYPES });
    s3 = testS3Client(settings!);
  });
  after(async () => {
    if (s3 !== undefined) await removeUnder(s3, settings!.bucket, prefix);
    s3?.destroy();
    await server?.stop();
    await store?.close();
  });

  async function objectsOf(id: string): Promise<string[]> {
    return (await keysUnder(s3, settings!.bucket, prefix)).filter((key) => key.includes(id));
  }

  it('tus: the final PATCH is refused and the object deleted', async () => {
    const exe = exeBytes();
    const location = await createAs(server.endpoint, images, exe.length, pngMeta());
    assertRefusedByToken(await patchAs(location, images, 0, exe));
    assert.deepEqual(await objectsOf(idOf(location)), []);
  });

  it('presigned parts: complete refuses the object S3 assembled, and deletes it and the upload', async () => {
    const exe = exeBytes();
    const created = await jsonAs(`${server.url}/uploads`, images, 'POST', {
      size: exe.length,
      name: 'a.png',
      type: 'image/png',
    });
    const { id, url } = created.json as { id: string; url: string };
    const presigned = await jsonAs(`${url}/presign`, images, 'POST', { parts: [1] });
    assert.equal(presigned.status, 200, presigned.body.toString());
    const [part] = (presigned.json as { parts: { url: string; headers: Record<string, string> }[] }).parts;
    const sent = await fetch(part!.url, { method: 'PUT', headers: part!.headers, body: new Uint8Array(exe) });
    assert.equal(sent.status, 200);
    const reported = await send(`${url}/parts/1`, {
      method: 'PUT',
      headers: { ...bearer(images), 'content-type': PART_REPORT_CONTENT_TYPE },
      body: JSON.stringify({ etag: sent.headers.get('etag'), size: exe.length }),
    });
    assert.equal(reported.status, 200, reported.body.toString());
    assertRefusedByToken(await jsonAs(`${url}/complete`, images, 'POST', {}));
    assert.equal((await jsonAs(url, images, 'GET')).status, 404);
    assert.deepEqual(await objectsOf(id), []);
  });

  it("Uppy's S3 routes: complete refuses the object, and deletes it and the upload", async () => {
    const exe = exeBytes();
    const headers = { ...bearer(images), 'content-type': 'application/json' };
    const created = await fetch(`${server.url}/s3/multipart`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ filename: 'a.png', type: 'image/png', metadata: {} }),
    });
    assert.equal(created.status, 200, await created.clone().text());
    const { key, uploadId } = (await created.json()) as { key: string; uploadId: string };
    const q = `key=${encodeURIComponent(key)}`;
    const base = `${server.url}/s3/multipart/${encodeURIComponent(uploadId)}`;
    const batch = (await (await fetch(`${base}/batch?${q}&partNumbers=1`, { headers })).json()) as {
      presignedUrls: Record<string, string>;
    };
    const sent = await fetch(batch.presignedUrls['1']!, { method: 'PUT', body: new Uint8Array(exe) });
    assert.equal(sent.status, 200);
    const complete = await fetch(`${base}/complete?${q}`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ parts: [{ PartNumber: 1, ETag: sent.headers.get('etag') }] }),
    });
    assertRefusedByToken({ status: complete.status, json: await complete.json() });
    assert.equal((await send(`${server.endpoint}${key}`, { headers: bearer(images) })).status, 404);
    assert.deepEqual(await objectsOf(key), []);
  });
});
