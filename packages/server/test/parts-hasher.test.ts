/**
 * The running whole-file SHA-256 of parts uploads: parts in any order and in parallel give the
 * file's digest, reading back from storage only what did not fit in memory; a failed part write
 * puts the hash back; a part replaced after it was hashed, or parts recorded before this process
 * knew the upload, make `finish` answer null or read the parts back.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { createMemoryLocker } from '../src/meta/memory-locker.ts';
import { NO_PART_SHA256, type PartRecord, partIdentity, type UploadRecord } from '../src/meta/meta-store.ts';
import { sharedDigestThread } from '../src/service/digest-thread.ts';
import { PartsHasher, type PartsLayout, type PartTap } from '../src/service/parts-hasher.ts';
import type { DataStore, Downloadable } from '../src/stores/data-store.ts';

const PART = 64 * 1024;

/** Storage holding one upload's bytes in memory, counting the bytes read back. */
function memoryReader(file: Buffer) {
  const counter = { bytesRead: 0 };
  const reader = {
    read(_key: string, range: { start: number; end: number }) {
      const slice = file.subarray(range.start, range.end + 1);
      counter.bytesRead += slice.byteLength;
      // Small chunks, as a file stream would give.
      const chunks: Buffer[] = [];
      for (let at = 0; at < slice.length; at += 16 * 1024) chunks.push(slice.subarray(at, at + 16 * 1024));
      return Readable.from(chunks, { objectMode: false });
    },
  } as unknown as DataStore & Downloadable;
  return { reader, counter };
}

function setup(size: number, retainBytes: number, readsInProgress = true) {
  const file = randomBytes(size);
  const { reader, counter } = memoryReader(file);
  const hasher = new PartsHasher({
    reader,
    locker: createMemoryLocker(),
    retainBytes,
    lockWaitMs: 1000,
    readsInProgress,
    digests: sharedDigestThread(),
  });
  const partCount = Math.max(1, Math.ceil(size / PART));
  const layout: PartsLayout = { id: 'u1', storageKey: 'k1', size, partSize: PART, partCount };
  const record = { id: 'u1', storageKey: 'k1', size } as UploadRecord;
  const recorded = new Map<number, PartRecord>();
  const bytesOf = (n: number) => file.subarray((n - 1) * PART, Math.min(size, n * PART));
  const partRecord = (n: number): PartRecord => ({
    n,
    size: bytesOf(n).byteLength,
    sha256: createHash('sha256').update(bytesOf(n)).digest('hex'),
    etag: null,
    storedAt: 0,
  });
  /** Starts writing part n; `send(fraction)` delivers that share of its bytes in 4 KiB chunks. */
  async function begin(n: number) {
    const tap: PartTap = await hasher.begin(layout, n, async () => [...recorded.values()]);
    const bytes = bytesOf(n);
    let sent = 0;
    return {
      send(fraction: number) {
        const until = Math.round(bytes.byteLength * fraction);
        for (; sent < until; sent += 4096) tap.chunk(bytes.subarray(sent, Math.min(until, sent + 4096)));
        sent = Math.min(sent, until);
      },
      store() {
        this.send(1);
        const part = partRecord(n);
        recorded.set(n, part);
        tap.stored(partIdentity(part));
      },
      /** Stored as a client that declined the part's digest leaves it: no SHA-256, a write tag. */
      storeWithoutDigest() {
        this.send(1);
        const part: PartRecord = {
          ...partRecord(n),
          sha256: NO_PART_SHA256,
          writeTag: randomBytes(12).toString('base64url'),
        };
        recorded.set(n, part);
        tap.stored(partIdentity(part));
      },
      fail() {
        tap.failed();
      },
    };
  }
  const finish = () => hasher.finish(record, [...recorded.values()]);
  const expected = createHash('sha256').update(file).digest('hex');
  return { hasher, counter, begin, finish, expected, partCount, recorded, partRecord };
}

describe('PartsHasher', () => {
  it('parts in order: the digest of the file, nothing read back', async () => {
    const t = setup(5 * PART + 100, 1024 * 1024);
    for (let n = 1; n <= t.partCount; n++) (await t.begin(n)).store();
    assert.equal(await t.finish(), t.expected);
    assert.equal(t.counter.bytesRead, 0);
    assert.equal(t.hasher.retainedBytes, 0);
  });

  it('parts in parallel and in reverse order: held in memory, nothing read back', async () => {
    const t = setup(8 * PART, 1024 * 1024);
    const writes = [];
    for (let n = 1; n <= t.partCount; n++) writes.push(await t.begin(n));
    // Interleaved halves, then stored last part first.
    for (const write of writes) write.send(0.5);
    for (const write of [...writes].reverse()) write.store();
    assert.equal(await t.finish(), t.expected);
    assert.equal(t.counter.bytesRead, 0);
    assert.equal(t.hasher.retainedBytes, 0, 'every held chunk is released');
  });

  it('without memory to spare, the parts out of order are read back from storage', async () => {
    const t = setup(6 * PART, 0);
    const writes = [];
    for (let n = 1; n <= t.partCount; n++) writes.push(await t.begin(n));
    for (const write of [...writes].reverse()) write.store();
    assert.equal(await t.finish(), t.expected);
    // Part 1 was hashed as it arrived; the other five came back from storage.
    assert.equal(t.counter.bytesRead, 5 * PART);
  });

  it('a part write that fails midway puts the hash back; the re-sent part completes it', async () => {
    const t = setup(4 * PART, 1024 * 1024);
    (await t.begin(1)).store();
    const broken = await t.begin(2);
    broken.send(0.6);
    broken.fail();
    (await t.begin(3)).store();
    (await t.begin(2)).store();
    (await t.begin(4)).store();
    assert.equal(await t.finish(), t.expected);
    assert.equal(t.counter.bytesRead, 0);
  });

  it('a part replaced after it was hashed: the parts are read back from storage', async () => {
    const t = setup(3 * PART, 1024 * 1024);
    for (let n = 1; n <= 3; n++) (await t.begin(n)).store();
    (await t.begin(2)).store();
    assert.equal(await t.finish(), t.expected);
    assert.ok(t.counter.bytesRead > 0);
  });

  it('a hashed part whose record changed since (another node wrote it): null, the caller re-reads', async () => {
    const t = setup(3 * PART, 1024 * 1024);
    for (let n = 1; n <= 3; n++) (await t.begin(n)).store();
    const changed = t.partRecord(2);
    t.recorded.set(2, { ...changed, sha256: '0'.repeat(64) });
    assert.equal(await t.finish(), null);
  });

  it('parts without a digest, in parallel and out of order: their write tags vouch for them, nothing read back', async () => {
    const t = setup(6 * PART + 1, 1024 * 1024);
    const writes = [];
    for (let n = 1; n <= t.partCount; n++) writes.push(await t.begin(n));
    for (const write of writes) write.send(0.5);
    for (const write of [...writes].reverse()) write.storeWithoutDigest();
    assert.equal(await t.finish(), t.expected);
    assert.equal(t.counter.bytesRead, 0);
  });

  it('a part without a digest written again elsewhere (another write tag): null, the caller re-reads', async () => {
    const t = setup(3 * PART, 1024 * 1024);
    for (let n = 1; n <= 3; n++) (await t.begin(n)).storeWithoutDigest();
    const before = t.recorded.get(2) as PartRecord;
    // Same size, same (absent) digest: only the write tag tells the new bytes from the hashed ones.
    t.recorded.set(2, { ...before, writeTag: randomBytes(12).toString('base64url') });
    assert.equal(await t.finish(), null);
  });

  it('a part with neither digest nor write tag (reported from S3) vouches for nothing: null', async () => {
    const t = setup(3 * PART, 1024 * 1024);
    t.recorded.set(1, { ...t.partRecord(1), sha256: NO_PART_SHA256 });
    (await t.begin(2)).store();
    (await t.begin(3)).store();
    assert.equal(await t.finish(), null);
  });

  it('parts stored before this process knew the upload are read back', async () => {
    const t = setup(4 * PART, 1024 * 1024);
    t.recorded.set(1, t.partRecord(1));
    t.recorded.set(2, t.partRecord(2));
    (await t.begin(4)).store();
    (await t.begin(3)).store();
    assert.equal(await t.finish(), t.expected);
    assert.equal(t.counter.bytesRead, 2 * PART);
  });

  it('a missing part: null', async () => {
    const t = setup(3 * PART, 1024 * 1024);
    (await t.begin(1)).store();
    (await t.begin(3)).store();
    assert.equal(await t.finish(), null);
  });

  it('keeps within its memory budget and releases everything on forget', async () => {
    const t = setup(10 * PART, 3 * PART);
    const writes = [];
    for (let n = 1; n <= t.partCount; n++) writes.push(await t.begin(n));
    for (const write of writes) write.send(1);
    assert.ok(t.hasher.retainedBytes <= 3 * PART, `${t.hasher.retainedBytes} bytes held`);
    t.hasher.forget('u1');
    for (const write of writes) write.fail();
    assert.equal(t.hasher.retainedBytes, 0);
  });

  it('storage that fails to read: no retry loop in the background, and finish answers null', async () => {
    let reads = 0;
    const failing = {
      read() {
        reads += 1;
        return Readable.from(
          (async function* () {
            yield Buffer.alloc(0);
            throw new Error('EIO');
          })(),
        );
      },
    } as unknown as DataStore & Downloadable;
    const hasher = new PartsHasher({
      reader: failing,
      locker: createMemoryLocker(),
      retainBytes: 0,
      lockWaitMs: 1000,
      digests: sharedDigestThread(),
    });
    const size = 3 * PART;
    const layout: PartsLayout = { id: 'u2', storageKey: 'k2', size, partSize: PART, partCount: 3 };
    const file = randomBytes(size);
    const parts: PartRecord[] = [];
    for (const n of [3, 2, 1]) {
      const tap = await hasher.begin(layout, n, async () => []);
      tap.chunk(file.subarray((n - 1) * PART, n * PART));
      const sha256 = createHash('sha256')
        .update(file.subarray((n - 1) * PART, n * PART))
        .digest('hex');
      parts.push({ n, size: PART, sha256, etag: null, storedAt: 0 });
      tap.stored(sha256);
    }
    // Timers still run: the event loop is not starved by a loop of failing reads.
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(reads, 1, 'one background read, not retried');
    assert.equal(await hasher.finish({ id: 'u2', storageKey: 'k2', size } as UploadRecord, parts), null);
  });

  describe('on storage that cannot read an upload in progress (S3)', () => {
    it('parts out of order within the budget: the digest, nothing read back', async () => {
      const t = setup(6 * PART, 6 * PART, false);
      const writes = [];
      for (let n = 1; n <= t.partCount; n++) writes.push(await t.begin(n));
      for (const write of [...writes].reverse()) write.store();
      assert.equal(await t.finish(), t.expected);
      assert.equal(t.counter.bytesRead, 0);
    });

    it('a part that does not fit: the upload gives up its running hash and all its memory at once', async () => {
      const t = setup(6 * PART, 2 * PART, false);
      const writes = [];
      for (let n = 1; n <= t.partCount; n++) writes.push(await t.begin(n));
      writes[5]!.store();
      writes[4]!.store();
      assert.equal(t.hasher.retainedBytes, 2 * PART, 'two parts held');
      writes[3]!.send(0.5);
      assert.equal(t.hasher.retainedBytes, 0, 'given up: nothing held');
      for (const write of writes.slice(0, 4)) write.store();
      assert.equal(t.hasher.retainedBytes, 0);
      assert.equal(await t.finish(), null, 'the caller verifies another way');
      assert.equal(t.counter.bytesRead, 0, 'no read of the unfinished upload is tried');
    });

    it('parts stored before this process knew the upload: null at once, no read tried', async () => {
      const t = setup(3 * PART, 1024 * 1024, false);
      t.recorded.set(1, t.partRecord(1));
      const write2 = await t.begin(2);
      write2.store();
      (await t.begin(3)).store();
      assert.equal(await t.finish(), null);
      assert.equal(t.counter.bytesRead, 0);
      assert.equal(t.hasher.retainedBytes, 0);
    });
  });
});
