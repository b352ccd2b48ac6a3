/**
 * The conformance suite every DataStore runs (fs, s3, …): the behaviour the upload service relies
 * on, stated once. Tests of optional capabilities skip when `capabilitiesOf` says the store lacks
 * them, so a store passes by implementing what it claims and nothing more.
 *
 * Usage (node:test):
 *   describeDataStore('fs', async () => {
 *     const directory = await mkdtemp(...);
 *     return { store: createFsDataStore({ directory, durability: 'none' }), cleanup: () => rm(directory, ...) };
 *   });
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, it, type TestContext } from 'node:test';
import { capabilitiesOf, type DataStore, type DataStoreCapabilities } from '@ferry/server';

export interface DataStoreFixture {
  store: DataStore;
  cleanup(): Promise<void>;
}

const KiB = 1024;
const MiB = 1024 * KiB;

/** A fresh upload id in the shape the server makes (base64url, 22 characters). */
export function randomUploadId(): string {
  return randomBytes(16).toString('base64url');
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Splits `bytes` into chunks of `size` (views, like an HTTP body's chunks). */
function chunksOf(bytes: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let start = 0; start < bytes.length; start += size) chunks.push(bytes.subarray(start, start + size));
  return chunks;
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

/** Waits until `predicate` holds (polling the event loop), failing after `timeoutMs`. */
async function until(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for a condition');
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

export function describeDataStore(name: string, factory: () => Promise<DataStoreFixture>): void {
  describe(`DataStore conformance: ${name}`, () => {
    let fixture: DataStoreFixture;
    let store: DataStore;
    let caps: DataStoreCapabilities;

    before(async () => {
      fixture = await factory();
      store = fixture.store;
      caps = capabilitiesOf(store);
    });
    after(async () => {
      await fixture?.cleanup();
    });

    /** Creates an upload and writes `bytes` to it in one append. */
    async function uploadWith(bytes: Buffer, size: number | null = bytes.length) {
      const id = randomUploadId();
      const key = await store.create({ id, size });
      if (bytes.length > 0) {
        const result = await store.append(key, 0, Readable.from(chunksOf(bytes, 64 * KiB)));
        assert.equal(result.bytesWritten, bytes.length);
        assert.equal(result.interruption, undefined);
      }
      return { id, key };
    }

    async function finished(bytes: Buffer) {
      const { id, key } = await uploadWith(bytes);
      return { id, finishedKey: await store.finalize(key, { id, size: bytes.length }) };
    }

    function downloadable(t: TestContext) {
      if (caps.downloadable === undefined) t.skip('the store is not Downloadable');
      return caps.downloadable;
    }

    async function readAll(finishedKey: string, size: number): Promise<Buffer> {
      return collect(caps.downloadable!.read(finishedKey, { start: 0, end: size - 1 }));
    }

    it('has a kind', () => {
      assert.equal(typeof store.kind, 'string');
      assert.ok(store.kind.length > 0);
    });

    it('creates an upload at offset 0', async () => {
      const key = await store.create({ id: randomUploadId(), size: 1000 });
      assert.equal(typeof key, 'string');
      assert.equal(await store.getOffset(key), 0);
    });

    it('creates an upload of deferred length when LengthDeferrable', async (t) => {
      if (!caps.deferrable) return t.skip('the store is not LengthDeferrable');
      const key = await store.create({ id: randomUploadId(), size: null });
      const result = await store.append(key, 0, Readable.from([Buffer.from('deferred')]));
      assert.equal(result.bytesWritten, 8);
      assert.equal(await store.getOffset(key), 8);
    });

    it('appends in several calls at exact offsets and keeps the bytes in order', async (t) => {
      const data = randomBytes(300 * KiB + 17);
      const id = randomUploadId();
      const key = await store.create({ id, size: data.length });
      const cuts = [0, 100 * KiB, 100 * KiB + 1, 250 * KiB, data.length];
      for (let i = 0; i + 1 < cuts.length; i++) {
        const piece = data.subarray(cuts[i], cuts[i + 1]);
        const result = await store.append(key, cuts[i]!, Readable.from(chunksOf(piece, 16 * KiB)));
        assert.deepEqual(result, { bytesWritten: piece.length });
        assert.equal(await store.getOffset(key), cuts[i + 1]);
      }
      const finishedKey = await store.finalize(key, { id, size: data.length });
      if (!downloadable(t)) return;
      assert.equal(sha256(await readAll(finishedKey, data.length)), sha256(data));
    });

    it('accepts any async iterable as a body', async () => {
      const { key } = await uploadWith(Buffer.alloc(0), 10);
      async function* body() {
        yield new Uint8Array([1, 2, 3]);
        yield new Uint8Array([4, 5, 6, 7]);
      }
      assert.deepEqual(await store.append(key, 0, body()), { bytesWritten: 7 });
      assert.equal(await store.getOffset(key), 7);
    });

    it('refuses an append at the wrong offset with ERR_OFFSET_MISMATCH and writes nothing', async () => {
      const { key } = await uploadWith(Buffer.from('hello'), 20);
      for (const offset of [0, 4, 6, 100]) {
        await assert.rejects(store.append(key, offset, Readable.from([Buffer.from('x')])), {
          code: 'ERR_OFFSET_MISMATCH',
        });
      }
      assert.equal(await store.getOffset(key), 5);
    });

    it('keeps every byte before a stream body errors, and reports the error', async () => {
      const { key } = await uploadWith(Buffer.alloc(0), 10 * MiB);
      const body = new PassThrough();
      const sent = randomBytes(700 * KiB);
      let seen = 0;
      const failure = new Error('connection reset');
      const pending = store.append(key, 0, body, {
        onChunk: (chunk) => {
          seen += chunk.byteLength;
        },
      });
      for (const chunk of chunksOf(sent, 64 * KiB)) body.write(chunk);
      await until(() => seen === sent.length);
      body.destroy(failure);
      const result = await pending;
      assert.equal(result.bytesWritten, sent.length);
      assert.equal(result.interruption, failure);
      assert.equal(await store.getOffset(key), sent.length);
    });

    it('treats expectedBytes as a hint: a body of that length, a shorter and a longer one', async (t) => {
      for (const [declared, actual] of [
        [3000, 3000],
        [200 * KiB, 200 * KiB + 5],
        [3 * MiB, 3 * MiB],
        [100, 1 * MiB + 3],
        [5000, 1200],
      ] as const) {
        const data = randomBytes(actual);
        const id = randomUploadId();
        const key = await store.create({ id, size: actual });
        const result = await store.append(key, 0, Readable.from(chunksOf(data, 16 * KiB)), {
          expectedBytes: declared,
        });
        assert.deepEqual(result, { bytesWritten: actual }, `declared ${declared}, sent ${actual}`);
        assert.equal(await store.getOffset(key), actual);
        const finishedKey = await store.finalize(key, { id, size: actual });
        if (!downloadable(t)) return;
        assert.equal(sha256(await readAll(finishedKey, actual)), sha256(data));
      }
    });

    it('keeps every byte of a small declared body that breaks off, and reports it', async () => {
      const { key } = await uploadWith(Buffer.alloc(0), 10 * KiB);
      const body = new PassThrough();
      let seen = 0;
      const pending = store.append(key, 0, body, {
        expectedBytes: 10 * KiB,
        onChunk: (chunk) => {
          seen += chunk.byteLength;
        },
      });
      body.write(randomBytes(3000));
      await until(() => seen === 3000);
      const failure = new Error('connection reset');
      body.destroy(failure);
      const result = await pending;
      assert.equal(result.bytesWritten, 3000);
      assert.equal(result.interruption, failure);
      assert.equal(await store.getOffset(key), 3000);
    });

    it('keeps every byte before a stream body closes prematurely, and reports it', async () => {
      const { key } = await uploadWith(Buffer.alloc(0), 10 * MiB);
      const body = new PassThrough();
      let seen = 0;
      const pending = store.append(key, 0, body, {
        onChunk: (chunk) => {
          seen += chunk.byteLength;
        },
      });
      body.write(randomBytes(3000));
      await until(() => seen === 3000);
      body.destroy();
      const result = await pending;
      assert.equal(result.bytesWritten, 3000);
      assert.ok(result.interruption, 'a premature close is reported as an interruption');
      assert.equal(await store.getOffset(key), 3000);
    });

    it('keeps every byte before an iterable body throws, and reports the error', async (t) => {
      const data = randomBytes(200 * KiB);
      const { id, key } = await uploadWith(Buffer.alloc(0), 10 * MiB);
      const failure = new Error('socket hang up');
      async function* body() {
        yield* chunksOf(data, 64 * KiB);
        throw failure;
      }
      const result = await store.append(key, 0, body());
      assert.equal(result.bytesWritten, data.length);
      assert.equal(result.interruption, failure);
      assert.equal(await store.getOffset(key), data.length);
      const finishedKey = await store.finalize(key, { id, size: data.length });
      if (!downloadable(t)) return;
      assert.ok((await readAll(finishedKey, data.length)).equals(data));
    });

    it('stops at an abort signal, keeps what arrived and reports the reason', async () => {
      const { key } = await uploadWith(Buffer.alloc(0), 10 * MiB);
      const body = new PassThrough();
      const controller = new AbortController();
      const reason = new Error('lock release requested');
      let seen = 0;
      const pending = store.append(key, 0, body, {
        signal: controller.signal,
        onChunk: (chunk) => {
          seen += chunk.byteLength;
        },
      });
      const sent = randomBytes(500 * KiB);
      for (const chunk of chunksOf(sent, 64 * KiB)) body.write(chunk);
      await until(() => seen === sent.length);
      controller.abort(reason);
      // The body never ends: the append must resolve anyway.
      const result = await pending;
      assert.equal(result.bytesWritten, sent.length);
      assert.equal(result.interruption, reason);
      assert.equal(await store.getOffset(key), sent.length);
      body.destroy();
    });

    it('stops an iterable body at an abort signal while it waits for the next chunk', async () => {
      const { key } = await uploadWith(Buffer.alloc(0), 10 * MiB);
      const controller = new AbortController();
      let release = () => {};
      let waiting = false;
      async function* body() {
        yield Buffer.from('first bytes');
        await new Promise<void>((resolve) => {
          release = resolve;
          waiting = true;
        });
        yield Buffer.from('never written');
      }
      const pending = store.append(key, 0, body(), { signal: controller.signal });
      // A remote store may take a while before it reads the body: abort only once it waits.
      await until(() => waiting);
      setTimeout(() => controller.abort(new Error('stop')), 20);
      const result = await pending;
      release();
      assert.equal(result.bytesWritten, 11);
      assert.equal((result.interruption as Error).message, 'stop');
      assert.equal(await store.getOffset(key), 11);
    });

    it('writes nothing for an already aborted signal', async () => {
      const { key } = await uploadWith(Buffer.alloc(0), 100);
      const controller = new AbortController();
      controller.abort(new Error('gone'));
      const result = await store.append(key, 0, Readable.from([Buffer.from('abc')]), {
        signal: controller.signal,
      });
      assert.equal(result.bytesWritten, 0);
      assert.ok(result.interruption);
      assert.equal(await store.getOffset(key), 0);
    });

    it('stops at exactly maxBytes with ERR_EXCEEDS_LENGTH', async (t) => {
      const data = randomBytes(3000);
      const { id, key } = await uploadWith(Buffer.alloc(0), 2500);
      const seen: Buffer[] = [];
      const result = await store.append(key, 0, Readable.from(chunksOf(data, 1000)), {
        maxBytes: 2500,
        onChunk: (chunk) => void seen.push(Buffer.from(chunk)),
      });
      assert.equal(result.bytesWritten, 2500);
      assert.equal((result.interruption as { code?: string }).code, 'ERR_EXCEEDS_LENGTH');
      assert.equal(await store.getOffset(key), 2500);
      assert.ok(Buffer.concat(seen).equals(data.subarray(0, 2500)), 'onChunk saw exactly the kept bytes');
      const finishedKey = await store.finalize(key, { id, size: 2500 });
      if (!downloadable(t)) return;
      assert.ok((await readAll(finishedKey, 2500)).equals(data.subarray(0, 2500)));
    });

    it('accepts a body of exactly maxBytes without an interruption', async () => {
      const { key } = await uploadWith(Buffer.alloc(0), 2000);
      const result = await store.append(key, 0, Readable.from(chunksOf(randomBytes(2000), 700)), {
        maxBytes: 2000,
      });
      assert.deepEqual(result, { bytesWritten: 2000 });
    });

    it('handles empty bodies', async () => {
      const { key } = await uploadWith(Buffer.from('abc'), 10);
      assert.deepEqual(await store.append(key, 3, Readable.from([])), { bytesWritten: 0 });
      const ended = new PassThrough();
      ended.end();
      assert.deepEqual(await store.append(key, 3, ended), { bytesWritten: 0 });
      async function* nothing(): AsyncGenerator<Uint8Array> {}
      assert.deepEqual(await store.append(key, 3, nothing()), { bytesWritten: 0 });
      assert.equal(await store.getOffset(key), 3);
    });

    it('finalizes a 0-byte upload', async (t) => {
      const id = randomUploadId();
      const key = await store.create({ id, size: 0 });
      const finishedKey = await store.finalize(key, { id, size: 0 });
      assert.equal(await store.getOffset(finishedKey), 0);
      const reader = downloadable(t);
      if (!reader) return;
      assert.equal((await reader.stat(finishedKey)).size, 0);
    });

    it('serves a finished file whole and by range (sha256 of a few MiB)', async (t) => {
      const data = randomBytes(3 * MiB + 12345);
      const before = Date.now();
      const { finishedKey } = await finished(data);
      const reader = downloadable(t);
      if (!reader) return;
      const info = await reader.stat(finishedKey);
      assert.equal(info.size, data.length);
      assert.ok(info.modifiedAt instanceof Date);
      assert.ok(info.modifiedAt.getTime() >= before - 2000 && info.modifiedAt.getTime() <= Date.now() + 2000);
      assert.equal(sha256(await readAll(finishedKey, data.length)), sha256(data));
      const last = data.length - 1;
      for (const [start, end] of [
        [0, 0],
        [last, last],
        [1 * MiB - 3, 2 * MiB + 5],
        [12345, 12345],
        [0, last],
      ] as const) {
        const got = await collect(reader.read(finishedKey, { start, end }));
        assert.ok(got.equals(data.subarray(start, end + 1)), `range ${start}-${end}`);
      }
    });

    it('truncates an upload in progress', async (t) => {
      const truncatable = caps.truncatable;
      if (!truncatable) return t.skip('the store is not Truncatable');
      const data = randomBytes(3000);
      const { id, key } = await uploadWith(data.subarray(0, 2000), 3000);
      await truncatable.truncate(key, 1200);
      assert.equal(await store.getOffset(key), 1200);
      await assert.rejects(store.append(key, 2000, Readable.from([data.subarray(2000)])), {
        code: 'ERR_OFFSET_MISMATCH',
      });
      await store.append(key, 1200, Readable.from([data.subarray(1200)]));
      const finishedKey = await store.finalize(key, { id, size: 3000 });
      if (!downloadable(t)) return;
      assert.ok((await readAll(finishedKey, 3000)).equals(data));
    });

    it('removes uploads in progress and finished files, idempotently', async (t) => {
      const terminatable = caps.terminatable;
      if (!terminatable) return t.skip('the store is not Terminatable');
      const { key } = await uploadWith(randomBytes(1000), 2000);
      await terminatable.remove(key);
      await assert.rejects(store.getOffset(key));
      await terminatable.remove(key);

      const { finishedKey } = await finished(randomBytes(1000));
      await terminatable.remove(finishedKey);
      await terminatable.remove(finishedKey);
      await assert.rejects(store.getOffset(finishedKey));
      if (caps.downloadable) await assert.rejects(caps.downloadable.stat(finishedKey));
    });

    it('calls onChunk with exactly the bytes written', async (t) => {
      const data = randomBytes(1 * MiB + 3);
      const { id, key } = await uploadWith(Buffer.alloc(0), data.length);
      const hash = createHash('sha256');
      let bytes = 0;
      const result = await store.append(key, 0, Readable.from(chunksOf(data, 64 * KiB)), {
        onChunk: (chunk) => {
          hash.update(chunk);
          bytes += chunk.byteLength;
        },
      });
      assert.equal(result.bytesWritten, data.length);
      assert.equal(bytes, data.length);
      assert.equal(hash.digest('hex'), sha256(data));
      const finishedKey = await store.finalize(key, { id, size: data.length });
      if (!downloadable(t)) return;
      assert.equal(sha256(await readAll(finishedKey, data.length)), sha256(data));
    });

    describe('concatenation', () => {
      const parts = [randomBytes(1 * MiB + 7), Buffer.alloc(0), randomBytes(300 * KiB + 1)];
      const whole = Buffer.concat(parts);
      let partKeys: string[] = [];
      let finalKey = '';

      before(async () => {
        if (!caps.concatenatable) return;
        partKeys = [];
        for (const part of parts) partKeys.push((await finished(part)).finishedKey);
        finalKey = await caps.concatenatable.concatenate(randomUploadId(), partKeys);
      });

      it('joins finished partials (one of them empty) in order', async (t) => {
        if (!caps.concatenatable) return t.skip('the store is not Concatenatable');
        assert.equal(await store.getOffset(finalKey), whole.length);
        const reader = downloadable(t);
        if (!reader) return;
        assert.equal((await reader.stat(finalKey)).size, whole.length);
        assert.equal(sha256(await readAll(finalKey, whole.length)), sha256(whole));
      });

      it('reads ranges across part boundaries', async (t) => {
        if (!caps.concatenatable) return t.skip('the store is not Concatenatable');
        const reader = downloadable(t);
        if (!reader) return;
        const boundary = parts[0]!.length;
        const last = whole.length - 1;
        for (const [start, end] of [
          [0, 0],
          [last, last],
          [boundary - 1, boundary],
          [boundary - 10, boundary + 10],
          [boundary, boundary],
          [5, last - 5],
          [boundary + 100, last],
        ] as const) {
          const got = await collect(reader.read(finalKey, { start, end }));
          assert.ok(got.equals(whole.subarray(start, end + 1)), `range ${start}-${end}`);
        }
      });

      it('keeps the final file intact when the partials are removed', async (t) => {
        if (!caps.concatenatable) return t.skip('the store is not Concatenatable');
        if (!caps.terminatable) return t.skip('the store is not Terminatable');
        for (const key of partKeys) await caps.terminatable.remove(key);
        assert.equal(await store.getOffset(finalKey), whole.length);
        if (caps.downloadable) {
          assert.equal(sha256(await readAll(finalKey, whole.length)), sha256(whole));
        }
        await caps.terminatable.remove(finalKey);
        await caps.terminatable.remove(finalKey);
        await assert.rejects(store.getOffset(finalKey));
      });
    });

    describe('parts', () => {
      // S3's smallest part is 5 MiB; the store must not care, so the suite uses odd sizes too.
      const partSize = 5 * MiB + 3;
      const whole = randomBytes(2 * partSize + 1234);
      const place = (n: number) => {
        const start = (n - 1) * partSize;
        return { n, start, size: Math.min(whole.length, start + partSize) - start };
      };
      const bytesOf = (n: number) => whole.subarray(place(n).start, place(n).start + place(n).size);

      function partStore(t: TestContext) {
        if (!caps.partStore) t.skip('the store is not a PartStore');
        return caps.partStore;
      }

      it('stores parts sent in any order and in parallel, and completes them into the file', async (t) => {
        const parts = partStore(t);
        if (!parts) return;
        const id = randomUploadId();
        const key = await store.create({ id, size: whole.length });
        const results = await Promise.all(
          [3, 1, 2].map((n) => parts.putPart(key, place(n), Readable.from(chunksOf(bytesOf(n), 64 * KiB)))),
        );
        for (const [i, n] of [3, 1, 2].entries()) {
          assert.equal(results[i]!.bytesWritten, place(n).size);
          assert.equal(results[i]!.interruption, undefined);
        }
        const stored = [1, 2, 3].map((n) => ({
          n,
          size: place(n).size,
          etag: results[[3, 1, 2].indexOf(n)]!.etag ?? null,
        }));
        const finishedKey = await parts.completeParts(key, { id, size: whole.length, parts: stored });
        if (!downloadable(t)) return;
        assert.equal(sha256(await readAll(finishedKey, whole.length)), sha256(whole));
      });

      it('replaces a part written again, and never writes past a part', async (t) => {
        const parts = partStore(t);
        if (!parts) return;
        const id = randomUploadId();
        const key = await store.create({ id, size: whole.length });
        const first = await parts.putPart(key, place(1), Readable.from([randomBytes(place(1).size)]));
        assert.equal(first.bytesWritten, place(1).size);
        // A body longer than the part stops at the part's end.
        const long = await parts.putPart(key, place(2), Readable.from([bytesOf(2), randomBytes(100)]));
        assert.equal(long.bytesWritten, place(2).size);
        assert.equal((long.interruption as { code?: string } | undefined)?.code, 'ERR_EXCEEDS_LENGTH');
        const again = await parts.putPart(key, place(1), Readable.from(chunksOf(bytesOf(1), 100 * KiB)));
        assert.equal(again.bytesWritten, place(1).size);
        await parts.putPart(key, place(3), Readable.from([bytesOf(3)]));
        const stored = [1, 2, 3].map((n) => ({ n, size: place(n).size, etag: null }));
        const finishedKey = await parts.completeParts(key, { id, size: whole.length, parts: stored });
        if (!downloadable(t)) return;
        assert.equal(sha256(await readAll(finishedKey, whole.length)), sha256(whole));
      });

      it('reports the bytes of a part whose body breaks, and the interruption', async (t) => {
        const parts = partStore(t);
        if (!parts) return;
        const key = await store.create({ id: randomUploadId(), size: whole.length });
        const body = new PassThrough();
        const pending = parts.putPart(key, place(1), body);
        body.write(bytesOf(1).subarray(0, 100 * KiB));
        await new Promise((resolve) => setTimeout(resolve, 20));
        body.destroy(new Error('connection reset'));
        const result = await pending;
        assert.ok(result.bytesWritten <= 100 * KiB);
        assert.ok(result.interruption instanceof Error);
      });

      it('completes an empty file from its one empty part', async (t) => {
        const parts = partStore(t);
        if (!parts) return;
        const id = randomUploadId();
        const key = await store.create({ id, size: 0 });
        const result = await parts.putPart(key, { n: 1, start: 0, size: 0 }, Readable.from([]));
        assert.equal(result.bytesWritten, 0);
        const finishedKey = await parts.completeParts(key, {
          id,
          size: 0,
          parts: [{ n: 1, size: 0, etag: null }],
        });
        if (caps.downloadable) assert.equal((await caps.downloadable.stat(finishedKey)).size, 0);
      });
    });

    describe('duplicate', () => {
      it('gives a finished file a second id that survives removing the first', async (t) => {
        if (!caps.duplicable) return t.skip('the store is not Duplicable');
        const bytes = randomBytes(300 * KiB + 5);
        const original = await finished(bytes);
        const copyKey = await caps.duplicable.duplicate(original.finishedKey, randomUploadId());
        assert.notEqual(copyKey, original.finishedKey);
        if (caps.terminatable) await caps.terminatable.remove(original.finishedKey);
        if (!downloadable(t)) return;
        assert.equal(sha256(await readAll(copyKey, bytes.length)), sha256(bytes));
      });

      it('refuses a finished key that does not exist', async (t) => {
        if (!caps.duplicable) return t.skip('the store is not Duplicable');
        const gone = await finished(randomBytes(10));
        await caps.terminatable?.remove(gone.finishedKey);
        if (!caps.terminatable) return;
        await assert.rejects(caps.duplicable.duplicate(gone.finishedKey, randomUploadId()));
      });
    });
  });
}
