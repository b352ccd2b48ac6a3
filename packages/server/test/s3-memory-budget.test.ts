/**
 * The S3 store's memory budget on the RGW: concurrent tus PATCHes share `memoryBudgetBytes` of
 * part buffers (s3-part-buffers.ts). Measured with the store's own accounting: the bytes in part
 * buffers never pass the budget, PATCHes past it wait instead of failing (also when the budget
 * holds fewer parts than there are PATCHes), every file arrives whole, and a PATCH that is cut off
 * — even while it waits for a buffer — keeps what arrived and gives its buffers back.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { type ClientRequest, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { s3Service, s3StoreOptions, uniqueKeyPrefix } from '@ferry/testing';
import { createFerry, type Ferry } from '../src/ferry.ts';
import { createS3DataStore, type S3DataStore } from '../src/stores/s3/s3-data-store.ts';

const settings = await s3Service();
const MiB = 1024 * 1024;
const PART = 5 * MiB;
const TUS = { 'tus-resumable': '1.0.0' };
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('S3 store memory budget', { skip: settings === undefined }, () => {
  const prefix = uniqueKeyPrefix('s3-memory-budget');
  let dataDir: string;
  let server: { ferry: Ferry; store: S3DataStore; url: string } | undefined;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'ferry-s3-memory-'));
  });
  after(async () => {
    await server?.ferry.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  /** A server whose store has `budget` bytes for part buffers (replacing the previous one). */
  async function serve(budget: number, concurrency: number) {
    await server?.ferry.close();
    const store = await createS3DataStore({
      ...s3StoreOptions(settings!, prefix),
      partSize: PART,
      concurrency,
      memoryBudgetBytes: budget,
    });
    const ferry = await createFerry({
      dataDir: await mkdtemp(join(dataDir, 'run-')),
      dataStore: store,
      logLevel: 'silent',
    });
    const { url } = await ferry.listen({ host: '127.0.0.1', port: 0 });
    server = { ferry, store, url };
    return server;
  }

  async function create(url: string, size: number): Promise<string> {
    const created = await fetch(`${url}/files/`, {
      method: 'POST',
      headers: { ...TUS, 'upload-length': String(size) },
    });
    assert.equal(created.status, 201);
    return new URL(created.headers.get('location')!, url).href;
  }

  async function patch(location: string, offset: number, body: Buffer<ArrayBuffer>): Promise<void> {
    const answer = await fetch(location, {
      method: 'PATCH',
      headers: { ...TUS, 'upload-offset': String(offset), 'content-type': 'application/offset+octet-stream' },
      body,
    });
    assert.equal(answer.status, 204, await answer.text());
    assert.equal(answer.headers.get('upload-offset'), String(offset + body.byteLength));
  }

  async function offsetOf(location: string): Promise<number> {
    const head = await fetch(location, { method: 'HEAD', headers: TUS });
    assert.equal(head.status, 200);
    return Number(head.headers.get('upload-offset'));
  }

  async function downloaded(location: string): Promise<string> {
    const answer = await fetch(location);
    assert.equal(answer.status, 200);
    return sha256(new Uint8Array(await answer.arrayBuffer()));
  }

  /** Sends `uploads` concurrent uploads of `size` bytes, one PATCH each, and checks every file. */
  async function concurrentUploads(url: string, uploads: number, size: number): Promise<void> {
    const sources = Array.from({ length: uploads }, () => randomBytes(size));
    const locations = await Promise.all(sources.map((source) => create(url, source.length)));
    await Promise.all(locations.map((location, i) => patch(location, 0, sources[i]!)));
    for (const [i, location] of locations.entries()) {
      assert.equal(await downloaded(location), sha256(sources[i]!), `upload ${i} arrived whole`);
    }
  }

  it('keeps the part buffers of 8 concurrent PATCHes within the budget, and every file arrives whole', {
    timeout: 120_000,
  }, async () => {
    const { url, store } = await serve(3 * PART, 2);
    await concurrentUploads(url, 8, 2 * PART + 3 * MiB + 17);
    const stats = store.bufferStats();
    assert.ok(stats.peakInUseBytes <= 3 * PART, `peak ${stats.peakInUseBytes} within ${3 * PART}`);
    assert.ok(stats.peakInUseBytes >= 2 * PART, `PATCHes ran side by side (peak ${stats.peakInUseBytes})`);
    assert.ok(stats.waits > 0, 'PATCHes past the budget waited for a buffer');
    assert.equal(stats.inUseBytes, 0, 'every buffer came back');
    assert.equal(stats.waiting, 0);
  });

  it('finishes when the budget holds one part for 8 concurrent PATCHes (no deadlock)', {
    timeout: 120_000,
  }, async () => {
    const { url, store } = await serve(PART, 4);
    await concurrentUploads(url, 8, 2 * PART + MiB + 5);
    const stats = store.bufferStats();
    assert.equal(stats.peakInUseBytes, PART, 'one part buffer in the whole process');
    assert.ok(stats.waits >= 7, `PATCHes took turns (${stats.waits} waits)`);
    assert.equal(stats.inUseBytes, 0);
  });

  it('a PATCH cut off while holding or waiting for a buffer keeps what arrived and gives its buffers back', {
    timeout: 120_000,
  }, async () => {
    const { url, store } = await serve(PART, 2);
    const size = PART + 2 * MiB;
    const sources = [randomBytes(size), randomBytes(size)];
    const locations = await Promise.all(sources.map((source) => create(url, source.length)));
    const open: ClientRequest[] = [];
    const start = (location: string, bytes: Uint8Array) => {
      const req = request(location, {
        method: 'PATCH',
        headers: {
          ...TUS,
          'upload-offset': '0',
          'content-type': 'application/offset+octet-stream',
          'content-length': String(size),
        },
      });
      req.on('error', () => {});
      req.write(bytes);
      open.push(req);
      return req;
    };
    // The first PATCH takes the only buffer and keeps it while its body is unfinished.
    const holder = start(locations[0]!, sources[0]!.subarray(0, 3 * MiB));
    await until('the first PATCH holds the buffer', () => store.bufferStats().inUseBytes === PART);
    // The second has bytes and no buffer: it waits, its body unread.
    const waiter = start(locations[1]!, sources[1]!.subarray(0, MiB));
    await until('the second PATCH waits', () => store.bufferStats().waiting === 1);
    waiter.destroy();
    const kept = await offsetOf(locations[1]!);
    assert.ok(kept > 0 && kept <= MiB, `the waiting PATCH kept the bytes it had read (${kept})`);
    assert.equal(store.bufferStats().waiting, 0, 'its request for a buffer was withdrawn');
    assert.equal(store.bufferStats().inUseBytes, PART, 'the first PATCH still holds its buffer');
    holder.destroy();
    const held = await offsetOf(locations[0]!);
    assert.ok(held > 0 && held <= 3 * MiB, `the holder kept the bytes that arrived (${held})`);
    assert.equal(store.bufferStats().inUseBytes, 0, 'both PATCHes gave their buffers back');
    // Both uploads resume from what was kept and arrive whole.
    await patch(locations[0]!, held, sources[0]!.subarray(held));
    await patch(locations[1]!, kept, sources[1]!.subarray(kept));
    for (const [i, location] of locations.entries()) {
      assert.equal(await downloaded(location), sha256(sources[i]!));
    }
    assert.equal(store.bufferStats().inUseBytes, 0);
    assert.ok(store.bufferStats().peakInUseBytes <= PART);
  });
});
