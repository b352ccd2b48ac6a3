/** The direct-I/O (O_DIRECT) write path of the fs store: alignment, tails, fallbacks. */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, statfsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { describeDataStore, randomUploadId } from '@ferry/testing';
import { heldBytesInProcess } from '../src/stores/fs/fs-append.ts';
import { createFsDataStore, type FsDataStore } from '../src/stores/fs/fs-data-store.ts';

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** A deterministic generator (xorshift32), so a failure can be replayed. */
function random(seed: number): (below: number) => number {
  let state = seed || 1;
  return (below) => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) % below;
  };
}

/** `data` cut into chunks of 1 B … 200 KiB. */
function randomChunks(data: Buffer, next: (below: number) => number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let start = 0; start < data.length; ) {
    const size = 1 + next(200 * 1024);
    chunks.push(data.subarray(start, start + size));
    start += size;
  }
  return chunks;
}

describe('fs data store with direct I/O', () => {
  let directory: string;
  let store: FsDataStore;

  before(async () => {
    directory = await mkdtemp(join(tmpdir(), 'ferry-fs-direct-'));
    store = createFsDataStore({ directory, durability: 'none', directIo: 'on' });
  });
  after(() => rm(directory, { recursive: true, force: true }));

  it('uses O_DIRECT on this file system', () => {
    assert.equal(store.directIo, true);
  });

  for (const start of [1, 4095, 4096, 4097, 8191]) {
    it(`appends from offset ${start} in random chunks, byte for byte, the size right after each append`, async () => {
      const next = random(start);
      const id = randomUploadId();
      const key = await store.create({ id, size: null });
      const path = join(directory, 'uploads', id);
      const expected: Buffer[] = [];
      let size = 0;
      // The first append puts the upload at the unaligned offset; the next ones start wherever the
      // previous one ended (a few bytes, a few slabs).
      const sizes = [
        start,
        3 * 1024 * 1024 + 17,
        5,
        4096,
        2 * 1024 * 1024,
        70_001,
        0,
        4 * 1024 * 1024 + 4095,
      ];
      for (const length of sizes) {
        const data = randomBytes(length);
        const chunks = randomChunks(data, next);
        const seen: Buffer[] = [];
        const result = await store.append(key, size, Readable.from(chunks), {
          onChunk: (chunk) => seen.push(Buffer.from(chunk)),
        });
        assert.deepEqual(result, { bytesWritten: length });
        assert.equal(sha256(Buffer.concat(seen)), sha256(data), 'onChunk sees the body bytes');
        expected.push(data);
        size += length;
        assert.equal((await stat(path)).size, size);
        assert.equal(await store.getOffset(key), size);
      }
      assert.equal(sha256(await readFile(path)), sha256(Buffer.concat(expected)));
    });
  }

  it('keeps exactly the bytes received when a body breaks mid-slab, from an unaligned offset', async () => {
    const id = randomUploadId();
    const key = await store.create({ id, size: null });
    const path = join(directory, 'uploads', id);
    const head = randomBytes(4097);
    await store.append(key, 0, Readable.from([head]));
    const data = randomBytes(5 * 1024 * 1024 + 777);
    const chunks = randomChunks(data, random(7));
    let index = 0;
    const body = new Readable({
      read() {
        if (index < chunks.length) this.push(chunks[index++]);
        else this.destroy(new Error('connection reset'));
      },
    });
    const result = await store.append(key, head.length, body);
    assert.equal(result.bytesWritten, data.length);
    assert.equal((result.interruption as Error).message, 'connection reset');
    assert.equal((await stat(path)).size, head.length + data.length);
    assert.equal(sha256(await readFile(path)), sha256(Buffer.concat([head, data])));
  });

  it('stops at maxBytes inside a block and at an abort signal, keeping what arrived', async () => {
    const id = randomUploadId();
    const key = await store.create({ id, size: null });
    const path = join(directory, 'uploads', id);
    const data = randomBytes(3 * 1024 * 1024);
    const limit = 2 * 1024 * 1024 + 1234;
    const limited = await store.append(key, 0, Readable.from(randomChunks(data, random(3))), {
      maxBytes: limit,
    });
    assert.equal(limited.bytesWritten, limit);
    assert.equal((limited.interruption as { code?: string }).code, 'ERR_EXCEEDS_LENGTH');
    assert.equal((await stat(path)).size, limit);

    const controller = new AbortController();
    const more = randomBytes(1024 * 1024 + 99);
    let sent = 0;
    const body = new Readable({
      read() {
        if (sent < more.length) {
          const chunk = more.subarray(sent, sent + 64 * 1024);
          sent += chunk.length;
          this.push(chunk);
        }
      },
    });
    // Abort once every byte was taken in (a paused body may still hold chunks it never delivered).
    let seen = 0;
    const aborted = await store.append(key, limit, body, {
      signal: controller.signal,
      onChunk: (chunk) => {
        seen += chunk.byteLength;
        if (seen === more.length) setImmediate(() => controller.abort(new Error('stop')));
      },
    });
    assert.equal(aborted.bytesWritten, more.length);
    assert.equal((aborted.interruption as Error).message, 'stop');
    assert.equal((await stat(path)).size, limit + more.length);
    assert.equal(sha256(await readFile(path)), sha256(Buffer.concat([data.subarray(0, limit), more])));
  });

  it('writes many concurrent appends correctly when slabs run out, and gives every byte back', async () => {
    // More appends than slabs: some write without a second slab, some buffered, all correctly.
    const uploads = Array.from({ length: 20 }, async (_, n) => {
      const id = randomUploadId();
      const key = await store.create({ id, size: null });
      const head = randomBytes(n * 613);
      await store.append(key, 0, Readable.from([head]));
      const data = randomBytes(3 * 1024 * 1024 + n * 1001);
      const result = await store.append(key, head.length, Readable.from(randomChunks(data, random(n + 1))));
      assert.deepEqual(result, { bytesWritten: data.length });
      const written = await readFile(join(directory, 'uploads', id));
      assert.equal(sha256(written), sha256(Buffer.concat([head, data])), `upload ${n}`);
    });
    await Promise.all(uploads);
    assert.equal(heldBytesInProcess(), 0);
  });

  it('rejects an invalid directIo setting', () => {
    assert.throws(() =>
      createFsDataStore({ directory, durability: 'none', directIo: 'yes' as unknown as 'on' }),
    );
  });
});

// tmpfs: since Linux 6.6 it accepts O_DIRECT but has no cache to bypass (unaligned writes succeed),
// so the store must write buffered there.
const shm = '/dev/shm';
const shmIsTmpfs = existsSync(shm) && statfsSync(shm).type === 0x01021994;

describe('fs data store on a file system without direct I/O', {
  skip: !shmIsTmpfs && 'no tmpfs at /dev/shm',
}, () => {
  it('falls back to buffered writes with directIo auto', async () => {
    const directory = await mkdtemp(join(shm, 'ferry-fs-direct-'));
    try {
      const store = createFsDataStore({ directory, durability: 'none', directIo: 'auto' });
      assert.equal(store.directIo, false);
      const key = await store.create({ id: randomUploadId(), size: null });
      const data = randomBytes(3 * 1024 * 1024 + 5);
      assert.deepEqual(await store.append(key, 0, Readable.from([data])), { bytesWritten: data.length });
      assert.equal(await store.getOffset(key), data.length);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('refuses to start with directIo on, saying why', async () => {
    const directory = await mkdtemp(join(shm, 'ferry-fs-direct-'));
    try {
      assert.throws(() => createFsDataStore({ directory, durability: 'none', directIo: 'on' }), /O_DIRECT/);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});

if (shmIsTmpfs) {
  describeDataStore('fs on tmpfs (directIo auto, falls back to buffered)', async () => {
    const directory = await mkdtemp(join(shm, 'ferry-fs-direct-'));
    return {
      store: createFsDataStore({ directory, durability: 'fsync', directIo: 'auto' }),
      cleanup: () => rm(directory, { recursive: true, force: true }),
    };
  });
}
