/**
 * Content checks over real loopback HTTP: the type is sniffed from the finished file's magic bytes,
 * recorded, served by downloads, and matched against `allowTypes`. A refused file answers 403
 * ERR_TYPE_NOT_ALLOWED on the request that finished it (tus PATCH, creation-with-upload,
 * concatenation, parts `complete`, presigned `complete`), and its bytes and record are gone.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { PART_REPORT_CONTENT_TYPE } from '@ferry/protocol';
import { EXE_TYPE, exeBytes, PNG_1X1, s3Service, s3StoreOptions, uniqueKeyPrefix } from '@ferry/testing';
import { ConfigError, normalizeConfig } from '../src/config.ts';
import { SNIFF_BYTES, sniffSample, UNKNOWN_TYPE } from '../src/content/content-check.ts';
import { createS3DataStore, type S3DataStore } from '../src/stores/s3/s3-data-store.ts';
import { keysUnder, removeUnder, testS3Client } from './s3-helpers.ts';
import { openSse } from './sse-client.ts';
import {
  createUpload,
  head,
  idOf,
  metadataHeader,
  OCTETS,
  patch,
  send,
  startServer,
  type TestServer,
  TUS,
  uploadWhole,
} from './tus-helpers.ts';

const pngMeta = (name = 'cat.png') => metadataHeader({ filename: name, filetype: 'image/png' });

/** Every file under `directory` whose path names `id`. */
async function filesOf(directory: string, id: string): Promise<string[]> {
  const entries = await readdir(directory, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => join(entry.parentPath, entry.name).includes(id))
    .map((entry) => entry.name);
}

/** Every file under `directory` but the database's. */
async function allFiles(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile() && !/^ferry\.db(-wal|-shm)?$/.test(entry.name))
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
}

async function rejectedCount(server: TestServer): Promise<number> {
  const metric = await server.ferry.metrics.registry.getSingleMetric('ferry_uploads_rejected_total')?.get();
  return metric?.values.find((value) => value.labels['reason'] === 'type')?.value ?? 0;
}

function assertRefused(reply: { status: number; code: string | undefined; json: unknown }, declared: string) {
  assert.equal(reply.status, 403, JSON.stringify(reply.json));
  const error = (reply.json as { error: { code: string; message: string; details: Record<string, unknown> } })
    .error;
  assert.equal(reply.code ?? error.code, 'ERR_TYPE_NOT_ALLOWED');
  assert.deepEqual(error.details, { sniffed: EXE_TYPE, declared, allowed: ['image/*'] });
  assert.match(error.message, /application\/x-msdownload/);
  assert.match(error.message, /image\/\*/);
}

const postJson = (url: string, value: unknown) =>
  send(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(value),
  });

describe('content checks with an allow-list (fs storage)', () => {
  let server: TestServer;

  before(async () => {
    server = await startServer({ allowTypes: ['image/*'] });
  });
  after(async () => server.stop());

  it('a .png name with EXE bytes: the final PATCH is 403 ERR_TYPE_NOT_ALLOWED, the upload and its bytes are gone', async () => {
    const exe = exeBytes();
    const feed = await openSse(`${server.url}/uploads/events`);
    try {
      await feed.next('snapshot');
      const before = await rejectedCount(server);
      const location = await createUpload(server.endpoint, exe.length, { 'upload-metadata': pngMeta() });
      const id = idOf(location);
      // The first PATCH is not the last: nothing is checked yet.
      assert.equal((await patch(location, 0, exe.subarray(0, 1000))).status, 204);
      assert.deepEqual(await filesOf(server.dataDir, id), [`${id}`], 'the bytes so far are stored');
      const last = await patch(location, 1000, exe.subarray(1000));
      assertRefused(last, 'image/png');
      assert.equal((await head(location)).status, 404);
      assert.equal((await send(location)).status, 404);
      assert.deepEqual(await filesOf(server.dataDir, id), [], 'no byte of it is left on disk');
      assert.equal(await rejectedCount(server), before + 1);
      const failed = await feed.next('failed', (data) => data.upload?.id === id);
      assert.equal(failed.data.error.code, 'ERR_TYPE_NOT_ALLOWED');
      await feed.next('removed', (data) => data.id === id);
    } finally {
      feed.close();
    }
  });

  it('a real PNG passes, and its download is served as image/png', async () => {
    const location = await uploadWhole(server.endpoint, PNG_1X1, { 'upload-metadata': pngMeta() });
    const download = await send(location);
    assert.equal(download.status, 200);
    assert.equal(download.headers['content-type'], 'image/png');
    assert.ok(download.body.equals(PNG_1X1));
  });

  it('the sniffed type wins over the declared one: a PNG declared as octet-stream is served as image/png', async () => {
    const location = await uploadWhole(server.endpoint, PNG_1X1, {
      'upload-metadata': metadataHeader({ filename: 'blob.bin', filetype: 'application/octet-stream' }),
    });
    assert.equal((await send(location)).headers['content-type'], 'image/png');
  });

  it('creation-with-upload: a POST whose body finishes the upload is checked too (403, nothing left)', async () => {
    const exe = exeBytes();
    const before = await allFiles(server.dataDir);
    const reply = await send(server.endpoint, {
      method: 'POST',
      headers: { ...OCTETS, 'upload-length': exe.length, 'upload-metadata': pngMeta('photo.png') },
      body: exe,
    });
    assertRefused(reply, 'image/png');
    assert.equal(reply.headers.location, undefined);
    assert.deepEqual(await allFiles(server.dataDir), before, 'no file was added');
  });

  it('an empty file matches no image type: refused at creation (size 0 finishes it at once)', async () => {
    const reply = await send(server.endpoint, {
      method: 'POST',
      headers: { ...TUS, 'upload-length': '0', 'upload-metadata': pngMeta('empty.png') },
    });
    assert.equal(reply.status, 403);
    assert.equal(reply.code, 'ERR_TYPE_NOT_ALLOWED');
    assert.equal(
      (reply.json as { error: { details: { sniffed: string } } }).error.details.sniffed,
      UNKNOWN_TYPE,
    );
  });

  it('concatenation: partials are not checked, the final upload is (403, the partials stay)', async () => {
    const exe = exeBytes();
    const partial = { 'upload-concat': 'partial' };
    const first = await uploadWhole(server.endpoint, exe.subarray(0, 3000), partial);
    const second = await uploadWhole(server.endpoint, exe.subarray(3000), partial);
    const final = await send(server.endpoint, {
      method: 'POST',
      headers: {
        ...TUS,
        'upload-concat': `final;${new URL(first).pathname} ${new URL(second).pathname}`,
        'upload-metadata': pngMeta(),
      },
    });
    assertRefused(final, 'image/png');
    assert.equal((await head(first)).status, 200);
    const pngFirst = await uploadWhole(server.endpoint, PNG_1X1.subarray(0, 20), partial);
    const pngSecond = await uploadWhole(server.endpoint, PNG_1X1.subarray(20), partial);
    const accepted = await send(server.endpoint, {
      method: 'POST',
      headers: {
        ...TUS,
        'upload-concat': `final;${new URL(pngFirst).pathname} ${new URL(pngSecond).pathname}`,
        'upload-metadata': pngMeta(),
      },
    });
    assert.equal(accepted.status, 201);
    const download = await send(new URL(String(accepted.headers.location), server.endpoint).href);
    assert.equal(download.headers['content-type'], 'image/png');
    assert.ok(download.body.equals(PNG_1X1));
  });

  it('parts API: complete of EXE bytes named .png is 403, the upload and its file are gone; a PNG completes', async () => {
    const exe = exeBytes();
    const created = await postJson(`${server.url}/uploads`, {
      size: exe.length,
      name: 'a.png',
      type: 'image/png',
    });
    assert.equal(created.status, 201);
    const upload = created.json as { id: string; url: string };
    const put = await send(`${upload.url}/parts/1`, {
      method: 'PUT',
      headers: { 'content-length': exe.length },
      body: exe,
    });
    assert.equal(put.status, 200, put.body.toString());
    const complete = await postJson(`${upload.url}/complete`, {});
    assertRefused(complete, 'image/png');
    assert.equal((await send(upload.url)).status, 404);
    assert.equal((await send(`${server.endpoint}${upload.id}`)).status, 404);
    assert.deepEqual(await filesOf(server.dataDir, upload.id), []);

    const good = (await postJson(`${server.url}/uploads`, { size: PNG_1X1.length, name: 'b.png' })).json as {
      url: string;
    };
    await send(`${good.url}/parts/1`, {
      method: 'PUT',
      headers: { 'content-length': PNG_1X1.length },
      body: PNG_1X1,
    });
    const done = await postJson(`${good.url}/complete`, {});
    assert.equal(done.status, 200, done.body.toString());
    const file = (done.json as { file: { type: string | null; sniffedType: string } }).file;
    assert.equal(file.type, null);
    assert.equal(file.sniffedType, 'image/png');
  });
});

describe('content checks without an allow-list', () => {
  let server: TestServer;

  before(async () => {
    server = await startServer();
  });
  after(async () => server.stop());

  it('accepts every type and records what it sniffed', async () => {
    const exe = exeBytes();
    const location = await uploadWhole(server.endpoint, exe, { 'upload-metadata': pngMeta() });
    const download = await send(location);
    assert.equal(download.status, 200);
    // Not an image, whatever its name says; and an executable is never served as itself.
    assert.equal(download.headers['content-type'], 'application/octet-stream');
    const record = await server.ferry.service.get(idOf(location), '');
    assert.equal(record.sniffedType, EXE_TYPE);

    const created = (
      await postJson(`${server.url}/uploads`, { size: exe.length, name: 'a.png', type: 'image/png' })
    ).json as { url: string };
    await send(`${created.url}/parts/1`, {
      method: 'PUT',
      headers: { 'content-length': exe.length },
      body: exe,
    });
    const done = await postJson(`${created.url}/complete`, {});
    assert.equal(done.status, 200);
    const status = await send(created.url);
    assert.equal((status.json as { file: { sniffedType: string } }).file.sniffedType, EXE_TYPE);
  });

  it('text: believed where declared and the bytes are UTF-8, else octet-stream', async () => {
    const text = await uploadWhole(server.endpoint, 'name,size\nä,1\n', {
      'upload-metadata': metadataHeader({ filename: 'a.csv', filetype: 'text/csv' }),
    });
    assert.equal((await server.ferry.service.get(idOf(text), '')).sniffedType, 'text/csv');
    assert.equal((await send(text)).headers['content-type'], 'text/csv; charset=utf-8');
    const binary = await uploadWhole(server.endpoint, Buffer.from([0x41, 0x80, 0x00, 0x42, 0xc3]), {
      'upload-metadata': metadataHeader({ filename: 'a.txt', filetype: 'text/plain' }),
    });
    assert.equal((await server.ferry.service.get(idOf(binary), '')).sniffedType, UNKNOWN_TYPE);
    assert.equal((await send(binary)).headers['content-type'], 'application/octet-stream');
    // Active content declared as such is still never served inline.
    const html = await uploadWhole(server.endpoint, '<html><script>alert(1)</script></html>', {
      'upload-metadata': metadataHeader({ filename: 'a.html', filetype: 'text/html' }),
    });
    assert.equal((await server.ferry.service.get(idOf(html), '')).sniffedType, 'text/html');
    assert.equal((await send(html)).headers['content-type'], 'application/octet-stream');
  });
});

describe('content check rules', () => {
  it('sniffs magic bytes, and text only where text was declared', async () => {
    assert.equal(await sniffSample(PNG_1X1, 'text/plain', true), 'image/png');
    assert.equal(await sniffSample(exeBytes(200), 'image/png', true), EXE_TYPE);
    assert.equal(await sniffSample(Buffer.from('hello'), null, true), UNKNOWN_TYPE);
    assert.equal(await sniffSample(Buffer.from('hello'), 'image/png', true), UNKNOWN_TYPE);
    assert.equal(await sniffSample(Buffer.from('{"a":1}'), 'application/json', true), 'application/json');
    assert.equal(await sniffSample(Buffer.from('a\0b'), 'text/plain', true), UNKNOWN_TYPE);
    // A character cut at the end of the sample is not an error; at the end of the file it is.
    const cut = Buffer.concat([Buffer.alloc(SNIFF_BYTES - 1, 0x61), Buffer.from('ä').subarray(0, 1)]);
    assert.equal(await sniffSample(cut, 'text/plain', false), 'text/plain');
    assert.equal(await sniffSample(cut, 'text/plain', true), UNKNOWN_TYPE);
  });

  it('allowTypes is normalized, and a malformed entry is a ConfigError naming the option', () => {
    assert.deepEqual(
      normalizeConfig({ allowTypes: ['Image/*', 'application/pdf; x=1', 'image/*'] }).allowTypes,
      ['image/*', 'application/pdf'],
    );
    assert.deepEqual(normalizeConfig({}).allowTypes, []);
    assert.throws(
      () => normalizeConfig({ allowTypes: ['images'] }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, /allowTypes/);
        return true;
      },
    );
  });
});

const settings = await s3Service();

describe('content checks with S3 storage (real RGW)', { skip: settings === undefined }, () => {
  const prefix = uniqueKeyPrefix('content-checks');
  let server: TestServer;
  let store: S3DataStore;
  let s3: S3Client;

  before(async () => {
    store = await createS3DataStore(s3StoreOptions(settings!, prefix));
    server = await startServer({ dataStore: store, allowTypes: ['image/*'] });
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

  it('parts through the server: a rejected upload leaves no object; a PNG is kept and served as image/png', async () => {
    const exe = exeBytes();
    const created = (
      await postJson(`${server.url}/uploads`, { size: exe.length, name: 'a.png', type: 'image/png' })
    ).json as { id: string; url: string };
    const put = await send(`${created.url}/parts/1`, {
      method: 'PUT',
      headers: { 'content-length': exe.length },
      body: exe,
    });
    assert.equal(put.status, 200, put.body.toString());
    assertRefused(await postJson(`${created.url}/complete`, {}), 'image/png');
    assert.equal((await send(created.url)).status, 404);
    assert.deepEqual(await objectsOf(created.id), []);

    const location = await uploadWhole(server.endpoint, PNG_1X1, { 'upload-metadata': pngMeta() });
    assert.equal((await objectsOf(idOf(location))).length, 1);
    const download = await send(location);
    assert.equal(download.headers['content-type'], 'image/png');
    assert.ok(download.body.equals(PNG_1X1));
  });

  it('tus: the final PATCH of EXE bytes is refused and the object deleted', async () => {
    const exe = exeBytes();
    const location = await createUpload(server.endpoint, exe.length, { 'upload-metadata': pngMeta() });
    assertRefused(await patch(location, 0, exe), 'image/png');
    assert.equal((await head(location)).status, 404);
    assert.deepEqual(await objectsOf(idOf(location)), []);
  });

  it('Uppy S3 routes: complete refuses the object S3 assembled, and deletes it and the upload', async () => {
    const exe = exeBytes();
    const json = { 'content-type': 'application/json' };
    const created = await fetch(`${server.url}/s3/multipart`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ filename: 'a.png', type: 'image/png', metadata: { name: 'a.png' } }),
    });
    assert.equal(created.status, 200, await created.clone().text());
    const { key, uploadId } = (await created.json()) as { key: string; uploadId: string };
    const q = `key=${encodeURIComponent(key)}`;
    const batch = (await (
      await fetch(`${server.url}/s3/multipart/${encodeURIComponent(uploadId)}/batch?${q}&partNumbers=1`)
    ).json()) as { presignedUrls: Record<string, string> };
    const sent = await fetch(batch.presignedUrls['1']!, { method: 'PUT', body: new Uint8Array(exe) });
    assert.equal(sent.status, 200);
    const complete = await fetch(`${server.url}/s3/multipart/${encodeURIComponent(uploadId)}/complete?${q}`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ parts: [{ PartNumber: 1, ETag: sent.headers.get('etag') }] }),
    });
    assertRefused({ status: complete.status, code: undefined, json: await complete.json() }, 'image/png');
    assert.equal((await send(`${server.endpoint}${key}`)).status, 404);
    assert.deepEqual(await objectsOf(key), []);
  });

  it('presigned parts: complete refuses the object S3 assembled, and deletes it and the upload', async () => {
    const exe = exeBytes();
    const created = (
      await postJson(`${server.url}/uploads`, { size: exe.length, name: 'a.png', type: 'image/png' })
    ).json as { id: string; url: string };
    const presigned = await postJson(`${created.url}/presign`, { parts: [1] });
    assert.equal(presigned.status, 200, presigned.body.toString());
    const [part] = (presigned.json as { parts: { url: string; headers: Record<string, string> }[] }).parts;
    const sent = await fetch(part!.url, { method: 'PUT', headers: part!.headers, body: new Uint8Array(exe) });
    assert.equal(sent.status, 200);
    const reported = await send(`${created.url}/parts/1`, {
      method: 'PUT',
      headers: { 'content-type': PART_REPORT_CONTENT_TYPE },
      body: JSON.stringify({ etag: sent.headers.get('etag'), size: exe.length }),
    });
    assert.equal(reported.status, 200, reported.body.toString());
    assertRefused(await postJson(`${created.url}/complete`, {}), 'image/png');
    assert.equal((await send(created.url)).status, 404);
    assert.deepEqual(await objectsOf(created.id), []);
  });
});
