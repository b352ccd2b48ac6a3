/**
 * In-process hooks over real loopback HTTP: `beforeCreate` refuses or decides, `beforeFinish` sees
 * the finished file and may refuse it, `onProgress` is throttled, and the `after*` notifications
 * arrive through the durable outbox — in order per upload, again after a failure, and after a
 * restart when the process that queued them is gone.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PNG_1X1, s3Service, s3StoreOptions, uniqueKeyPrefix } from '@ferry/testing';
import {
  createFerry,
  type Ferry,
  type FerryHooks,
  type FerryOptions,
  type HookEvent,
  HookRejection,
} from '../src/index.ts';
import { createS3DataStore, type S3DataStore } from '../src/stores/s3/s3-data-store.ts';
import {
  createUpload,
  head,
  idOf,
  metadataHeader,
  patch,
  send,
  startServer,
  type TestServer,
  TUS,
  uploadWhole,
} from './tus-helpers.ts';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** Polls `check` until it returns true (at most `ms`). */
async function until(
  check: () => boolean | Promise<boolean>,
  ms = 10_000,
  what = 'the condition',
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Records every `after*` call. */
function recorder(overrides: FerryHooks = {}): { hooks: FerryHooks; events: HookEvent[] } {
  const events: HookEvent[] = [];
  const push = (event: HookEvent) => {
    events.push(event);
  };
  return {
    events,
    hooks: {
      afterCreate: push,
      afterFinish: push,
      afterTerminate: push,
      afterExpire: push,
      afterReject: push,
      ...overrides,
    },
  };
}

const typesOf = (events: HookEvent[], id: string) =>
  events.filter((event) => event.upload.id === id).map((event) => event.type);

async function recordsIn(ferry: Ferry, id: string) {
  return ferry.service.get(id, '').catch(() => undefined);
}

describe('in-process hooks', () => {
  const servers: TestServer[] = [];
  after(async () => {
    for (const server of servers) await server.stop();
  });
  async function start(options: FerryOptions): Promise<TestServer> {
    const server = await startServer(options);
    servers.push(server);
    return server;
  }

  it('beforeCreate refuses with its status and message; nothing is created', async () => {
    const seen: unknown[] = [];
    const server = await start({
      hooks: {
        beforeCreate(request) {
          seen.push(request);
          throw new HookRejection('uploads are closed for maintenance', { status: 451 });
        },
      },
    });
    const tus = await send(server.endpoint, {
      method: 'POST',
      headers: { ...TUS, 'upload-length': '10', 'upload-metadata': metadataHeader({ filename: 'a.txt' }) },
    });
    assert.equal(tus.status, 451);
    assert.equal(tus.code, 'ERR_HOOK_REJECTED');
    assert.match(tus.body.toString(), /uploads are closed for maintenance/);
    const parts = await send(`${server.url}/uploads`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ size: 10, name: 'b.txt', type: 'text/plain' }),
    });
    assert.equal(parts.status, 451);
    assert.equal(parts.code, 'ERR_HOOK_REJECTED');
    assert.deepEqual(seen[0], {
      owner: '',
      protocol: 'tus',
      size: 10,
      name: 'a.txt',
      declaredType: null,
      metadata: { filename: 'a.txt' },
      concat: null,
    });
    assert.equal((seen[1] as { protocol: string; name: string }).protocol, 'parts');
    assert.equal((seen[1] as { name: string }).name, 'b.txt');
    assert.deepEqual(await readdir(join(server.dataDir, 'uploads')), []);
    assert.equal(
      (await server.ferry.metrics.registry.getSingleMetricAsString('ferry_uploads_created_total')).includes(
        ' 0',
      ),
      true,
    );
  });

  it('beforeCreate chooses the id and the metadata', async () => {
    const server = await start({
      hooks: {
        beforeCreate(request) {
          return {
            id: `app-chosen-${request.metadata['filename']?.replace(/\W/g, '')}-0123456789`,
            metadata: { ...request.metadata, reviewed: 'yes' },
          };
        },
      },
    });
    const location = await createUpload(server.endpoint, 5, {
      'upload-metadata': metadataHeader({ filename: 'x.bin' }),
    });
    assert.equal(idOf(location), 'app-chosen-xbin-0123456789');
    const reply = await head(location);
    assert.equal(reply.status, 200);
    assert.equal(reply.headers['upload-metadata'], metadataHeader({ filename: 'x.bin', reviewed: 'yes' }));
    // The same id again: the hook's choice is taken, so the second creation is refused, not merged.
    const again = await send(server.endpoint, {
      method: 'POST',
      headers: { ...TUS, 'upload-length': '5', 'upload-metadata': metadataHeader({ filename: 'x.bin' }) },
    });
    assert.equal(again.status, 503);
    assert.equal(again.code, 'ERR_HOOK_FAILED');
  });

  it('a failing or invalid beforeCreate answers 503 ERR_HOOK_FAILED with Retry-After', async () => {
    let mode: 'throw' | 'bad-id' | 'bad-metadata' = 'throw';
    const server = await start({
      hooks: {
        beforeCreate() {
          if (mode === 'throw') throw new Error('database down');
          if (mode === 'bad-id') return { id: '../../etc/passwd' };
          return { metadata: { count: 3 } as unknown as Record<string, string> };
        },
      },
    });
    for (const next of ['throw', 'bad-id', 'bad-metadata'] as const) {
      mode = next;
      const reply = await send(server.endpoint, {
        method: 'POST',
        headers: { ...TUS, 'upload-length': '1' },
      });
      assert.equal(reply.status, 503, next);
      assert.equal(reply.code, 'ERR_HOOK_FAILED', next);
      assert.equal(reply.headers['retry-after'], '5', next);
      assert.doesNotMatch(reply.body.toString(), /database down/, 'the hook error is not echoed');
    }
    assert.deepEqual(await readdir(join(server.dataDir, 'uploads')), []);
  });

  it('a beforeCreate that does not return within hookTimeoutMs answers 503 ERR_HOOK_FAILED', async () => {
    const server = await start({
      hookTimeoutMs: 200,
      hooks: { beforeCreate: () => new Promise<undefined>(() => {}) },
    });
    const reply = await send(server.endpoint, { method: 'POST', headers: { ...TUS, 'upload-length': '1' } });
    assert.equal(reply.status, 503);
    assert.equal(reply.code, 'ERR_HOOK_FAILED');
    assert.deepEqual(await readdir(join(server.dataDir, 'uploads')), []);
  });

  it('beforeFinish sees the stored file, its digest and sniffed type, and runs before it is visible', async () => {
    let seen: Parameters<NonNullable<FerryHooks['beforeFinish']>>[0] | undefined;
    let bytesAtHook: Buffer | undefined;
    let statusAtHook: number | undefined;
    let location = '';
    const server = await start({
      hashUploads: true,
      hooks: {
        async beforeFinish(upload) {
          seen = upload;
          assert.equal(upload.storage?.store, 'fs');
          bytesAtHook = await readFile((upload.storage as { path: string }).path);
          statusAtHook = (await send(location)).status;
        },
      },
    });
    location = await createUpload(server.endpoint, PNG_1X1.length, {
      'upload-metadata': metadataHeader({ filename: 'dot.png', filetype: 'image/png' }),
    });
    const reply = await patch(location, 0, PNG_1X1);
    assert.equal(reply.status, 204);
    assert.ok(seen);
    assert.equal(seen.id, idOf(location));
    assert.equal(seen.name, 'dot.png');
    assert.equal(seen.size, PNG_1X1.length);
    assert.equal(seen.sha256, sha256(PNG_1X1));
    assert.equal(seen.sniffedType, 'image/png');
    assert.equal(seen.declaredType, 'image/png');
    assert.equal(seen.state, 'finished');
    assert.deepEqual(bytesAtHook, PNG_1X1);
    assert.ok(statusAtHook !== undefined && statusAtHook >= 400, 'not downloadable while the hook runs');
    assert.equal((await send(location)).status, 200);
  });

  it('beforeFinish refusing deletes the file and record; afterReject tells why', async () => {
    const { hooks, events } = recorder({
      beforeFinish(upload) {
        if (upload.name === 'secret.txt')
          throw new HookRejection('this file name is reserved', { status: 422 });
      },
    });
    const server = await start({ hooks });
    const location = await createUpload(server.endpoint, 11, {
      'upload-metadata': metadataHeader({ filename: 'secret.txt' }),
    });
    const reply = await patch(location, 0, 'hello world');
    assert.equal(reply.status, 422);
    assert.equal(reply.code, 'ERR_HOOK_REJECTED');
    assert.match(reply.body.toString(), /this file name is reserved/);
    assert.equal((await head(location)).status, 404);
    assert.deepEqual(await readdir(join(server.dataDir, 'files')), []);
    assert.deepEqual(await readdir(join(server.dataDir, 'uploads')), []);
    const id = idOf(location);
    await until(() => typesOf(events, id).length === 2, 10_000, 'created and rejected');
    assert.deepEqual(typesOf(events, id), ['created', 'rejected']);
    const rejected = events.find((event) => event.type === 'rejected');
    assert.deepEqual(rejected?.reason, { code: 'ERR_HOOK_REJECTED', message: 'this file name is reserved' });
  });

  it('a beforeFinish that fails leaves the upload to be finished by a retry', async () => {
    let fail = true;
    const server = await start({
      hooks: {
        beforeFinish() {
          if (fail) throw new Error('review service down');
        },
      },
    });
    const location = await createUpload(server.endpoint, 5);
    const first = await patch(location, 0, 'abcde');
    assert.equal(first.status, 503);
    assert.equal(first.code, 'ERR_HOOK_FAILED');
    fail = false;
    // The bytes are kept: the client's HEAD finds them all, and the upload finishes.
    const status = await head(location);
    assert.equal(status.status, 200);
    assert.equal(status.headers['upload-offset'], '5');
    const file = await send(location);
    assert.equal(file.status, 200);
    assert.equal(file.body.toString(), 'abcde');
  });

  it('after* events arrive in order per upload with the finalization payload (tus and parts)', async () => {
    const { hooks, events } = recorder();
    const server = await start({ hooks, hashUploads: true });
    const tusLocation = await uploadWhole(server.endpoint, PNG_1X1, {
      'upload-metadata': metadataHeader({ filename: 'a.png', filetype: 'image/png', album: 'cats' }),
    });
    const tusId = idOf(tusLocation);
    // parts API with a declared SHA-256
    const content = Buffer.from('parts content here');
    const created = await send(`${server.url}/uploads`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        size: content.length,
        name: 'b.txt',
        type: 'text/plain',
        sha256: sha256(content),
      }),
    });
    assert.equal(created.status, 201);
    const partsUrl = (created.json as { url: string }).url;
    const put = await send(`${partsUrl}/parts/1`, {
      method: 'PUT',
      headers: { 'content-length': content.length },
      body: content,
    });
    assert.equal(put.status, 200, put.body.toString());
    const done = await send(`${partsUrl}/complete`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(done.status, 200, done.body.toString());
    const partsId = (created.json as { id: string }).id;
    // tus, then terminated
    const gone = await createUpload(server.endpoint, 100);
    assert.equal((await send(gone, { method: 'DELETE', headers: TUS })).status, 204);

    await until(
      () =>
        typesOf(events, tusId).length === 2 &&
        typesOf(events, partsId).length === 2 &&
        typesOf(events, idOf(gone)).length === 2,
      10_000,
      'six events',
    );
    assert.deepEqual(typesOf(events, tusId), ['created', 'finished']);
    assert.deepEqual(typesOf(events, partsId), ['created', 'finished']);
    assert.deepEqual(typesOf(events, idOf(gone)), ['created', 'terminated']);

    const finished = events.find((event) => event.type === 'finished' && event.upload.id === tusId)!;
    assert.match(finished.id, /^[0-9a-f-]{36}$/);
    assert.ok(!Number.isNaN(Date.parse(finished.time)));
    const upload = finished.upload;
    assert.equal(upload.owner, '');
    assert.equal(upload.protocol, 'tus');
    assert.equal(upload.name, 'a.png');
    assert.equal(upload.size, PNG_1X1.length);
    assert.equal(upload.sha256, sha256(PNG_1X1));
    assert.equal(upload.sniffedType, 'image/png');
    assert.deepEqual(upload.metadata, { filename: 'a.png', filetype: 'image/png', album: 'cats' });
    assert.equal(upload.state, 'finished');
    assert.ok(upload.finishedAt !== null);
    assert.equal(upload.storage?.store, 'fs');
    assert.deepEqual(await readFile((upload.storage as { path: string }).path), PNG_1X1);

    const partsFinished = events.find((event) => event.type === 'finished' && event.upload.id === partsId)!;
    assert.equal(partsFinished.upload.protocol, 'parts');
    assert.equal(partsFinished.upload.sha256, sha256(content));
    assert.equal(partsFinished.upload.name, 'b.txt');
    assert.deepEqual(await readFile((partsFinished.upload.storage as { path: string }).path), content);
    // Delivered: the outbox is empty.
    await server.ferry.outbox.idle();
    const metrics = await server.ferry.metrics.registry.metrics();
    assert.match(metrics, /ferry_hook_events_pending 0/);
    assert.match(metrics, /ferry_hook_deliveries_total\{sink="app",result="delivered"\} 6/);
  });

  it('a deduplicated upload is created and finished at once, and tells both', async () => {
    const { hooks, events } = recorder();
    const server = await start({ hooks });
    const content = Buffer.from('the same bytes twice');
    const body = JSON.stringify({ size: content.length, name: 'twice.txt', sha256: sha256(content) });
    const first = await send(`${server.url}/uploads`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    const firstUrl = (first.json as { url: string }).url;
    await send(`${firstUrl}/parts/1`, {
      method: 'PUT',
      headers: { 'content-length': content.length },
      body: content,
    });
    assert.equal(
      (
        await send(`${firstUrl}/complete`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{}',
        })
      ).status,
      200,
    );
    const second = await send(`${server.url}/uploads`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    const dedup = second.json as { id: string; deduplicated: boolean };
    assert.equal(dedup.deduplicated, true);
    await until(() => typesOf(events, dedup.id).length === 2, 10_000, 'the dedup events');
    assert.deepEqual(typesOf(events, dedup.id), ['created', 'finished']);
    assert.equal(
      events.find((e) => e.upload.id === dedup.id && e.type === 'finished')?.upload.sha256,
      sha256(content),
    );
  });

  it('expired uploads are told to afterExpire', async () => {
    let clock = Date.now();
    const { hooks, events } = recorder();
    const server = await start({ hooks, expirySeconds: 60, sweepIntervalSeconds: 0, now: () => clock });
    const location = await createUpload(server.endpoint, 10);
    clock += 61_000;
    assert.equal(await server.ferry.sweep(), 1);
    const id = idOf(location);
    await until(() => typesOf(events, id).length === 2, 10_000, 'created and expired');
    assert.deepEqual(typesOf(events, id), ['created', 'expired']);
  });

  it('an after* hook that throws is called again, and later events of that upload wait for it', async () => {
    const calls: string[] = [];
    let failures = 1;
    const server = await start({
      hookRetryMaxDelaySeconds: 1,
      hooks: {
        afterCreate(event) {
          calls.push(`created:${event.id}`);
          if (failures-- > 0) throw new Error('the app is busy');
        },
        afterFinish(event) {
          calls.push(`finished:${event.id}`);
        },
      },
    });
    await uploadWhole(server.endpoint, 'abc');
    await until(() => calls.length === 3, 10_000, 'three calls');
    assert.equal(calls[0], calls[1], 'the same event, twice');
    assert.ok(calls[0]?.startsWith('created:'));
    assert.ok(calls[2]?.startsWith('finished:'), 'finished only after created went through');
  });

  it('onProgress is throttled per upload and never blocks the write', async () => {
    const progress: number[] = [];
    const server = await start({
      hooks: {
        progressIntervalMs: 60_000,
        onProgress(info) {
          progress.push(info.receivedBytes);
          throw new Error('ignored');
        },
      },
    });
    const location = await createUpload(server.endpoint, 30);
    for (let offset = 0; offset < 30; offset += 10) {
      assert.equal((await patch(location, offset, Buffer.alloc(10, 1))).status, 204);
    }
    assert.equal(progress.length, 1, 'one call within the interval');
  });

  it('queued events survive a restart and reach the next process', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'ferry-hooks-restart-'));
    try {
      const first = await createFerry({
        dataDir,
        logLevel: 'silent',
        hookRetryMaxDelaySeconds: 1,
        hooks: {
          afterFinish() {
            throw new Error('not yet');
          },
        },
      });
      const { url } = await first.listen({ host: '127.0.0.1', port: 0 });
      const location = await uploadWhole(`${url}/files/`, 'kept across restarts');
      await first.close();
      const delivered: HookEvent[] = [];
      const second = await createFerry({
        dataDir,
        logLevel: 'silent',
        hooks: { afterFinish: (event) => void delivered.push(event) },
      });
      try {
        await until(() => delivered.length === 1, 15_000, 'the event queued by the first process');
        assert.equal(delivered[0]?.upload.id, idOf(location));
        assert.equal(delivered[0]?.upload.size, 'kept across restarts'.length);
      } finally {
        await second.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('without hooks, nothing is queued', async () => {
    const server = await start({});
    await uploadWhole(server.endpoint, 'plain');
    const metrics = await server.ferry.metrics.registry.metrics();
    assert.match(metrics, /ferry_hook_events_pending 0/);
    assert.equal(await recordsIn(server.ferry, 'nope'), undefined);
  });
});

const s3Settings = await s3Service();

describe('hooks with S3 storage (real RGW)', { skip: s3Settings === undefined }, () => {
  const prefix = uniqueKeyPrefix('hooks');
  let server: TestServer;
  let store: S3DataStore;
  const { hooks, events } = recorder({
    beforeFinish(upload) {
      if (upload.name === 'refused.bin') throw new HookRejection('not this one');
    },
  });

  before(async () => {
    store = await createS3DataStore(s3StoreOptions(s3Settings!, prefix));
    server = await startServer({ dataStore: store, hooks, hashUploads: true });
  });
  after(async () => {
    await server?.stop();
    await store?.close();
  });

  it('the finalization payload names the bucket and key of the finished object', async () => {
    const content = Buffer.from('object bytes for the hook');
    const location = await uploadWhole(server.endpoint, content, {
      'upload-metadata': metadataHeader({ filename: 'obj.txt' }),
    });
    const id = idOf(location);
    await until(() => typesOf(events, id).length === 2, 15_000, 'created and finished');
    const finished = events.find((event) => event.upload.id === id && event.type === 'finished')!;
    assert.equal(finished.upload.sha256, sha256(content));
    const storage = finished.upload.storage;
    assert.equal(storage?.store, 's3');
    assert.equal((storage as { bucket: string }).bucket, s3Settings!.bucket);
    const key = (storage as { key: string }).key;
    assert.ok(key.startsWith(prefix) && key.includes(id), key);
    const object = store.read(`s3-object:${key}`, { start: 0, end: content.length });
    const chunks: Buffer[] = [];
    for await (const chunk of object) chunks.push(chunk as Buffer);
    assert.deepEqual(Buffer.concat(chunks), content);
  });

  it('a file refused by beforeFinish is deleted from the bucket', async () => {
    const location = await createUpload(server.endpoint, 10, {
      'upload-metadata': metadataHeader({ filename: 'refused.bin' }),
    });
    const reply = await patch(location, 0, Buffer.alloc(10, 3));
    assert.equal(reply.status, 403);
    assert.equal(reply.code, 'ERR_HOOK_REJECTED');
    const id = idOf(location);
    await until(() => typesOf(events, id).length === 2, 15_000, 'created and rejected');
    assert.deepEqual(typesOf(events, id), ['created', 'rejected']);
    const rejected = events.find((event) => event.upload.id === id && event.type === 'rejected');
    assert.ok(rejected);
    const key = (rejected.upload.storage as { key: string }).key;
    await assert.rejects(store.stat(`s3-object:${key}`));
  });
});
