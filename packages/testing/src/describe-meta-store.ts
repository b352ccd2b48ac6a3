/**
 * The conformance suite every MetaStore backend runs: `describeMetaStore('sqlite', factory)`.
 * Each test gets a fresh, empty store from the factory; afterwards the suite closes the store and
 * then calls `cleanup` (so `close` must tolerate being called again by `cleanup`).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { UploadError } from '@ferry/protocol';
import {
  DuplicateIdError,
  type MetaStore,
  type OutboxEntry,
  type UploadRecord,
  VersionConflictError,
} from '@ferry/server';

export interface MetaStoreFixture {
  store: MetaStore;
  cleanup(): Promise<void>;
}

type NewRecord = Omit<UploadRecord, 'version' | 'updatedAt'>;

function newId(): string {
  return randomBytes(16).toString('base64url');
}

/** A plain tus upload, overridable field by field. */
export function sampleUploadRecord(overrides: Partial<NewRecord> = {}): NewRecord {
  const id = overrides.id ?? newId();
  return {
    id,
    namespace: '',
    protocol: 'tus',
    size: 1024,
    offset: 0,
    metadata: { filename: 'report.pdf' },
    concat: null,
    state: 'uploading',
    storageKey: `uploads/${id}`,
    sha256: null,
    createdAt: 1_700_000_000_000,
    expiresAt: null,
    finishedAt: null,
    partSize: null,
    expectedSha256: null,
    sniffedType: null,
    allowedTypes: null,
    ...overrides,
  };
}

function isNotFound(error: unknown): boolean {
  return error instanceof UploadError && error.code === 'ERR_NOT_FOUND';
}

export function describeMetaStore(name: string, factory: () => Promise<MetaStoreFixture>): void {
  describe(`MetaStore conformance: ${name}`, () => {
    let fixture: MetaStoreFixture;
    let store: MetaStore;
    beforeEach(async () => {
      fixture = await factory();
      store = fixture.store;
    });
    afterEach(async () => {
      await fixture.store.close();
      await fixture.cleanup();
    });

    describe('create and get', () => {
      it('round-trips every field of a deferred-length upload with awkward metadata', async () => {
        const input = sampleUploadRecord({
          namespace: 'tenant-ä',
          size: null,
          offset: 0,
          metadata: { filename: 'Ünïcödé 文件 🚀.txt', empty: '', 'with space': 'a,b;c "q"', zero: '0' },
          expiresAt: 1_700_000_086_400_000,
        });
        const created = await store.create(input);
        assert.deepEqual(created, { ...input, version: 1, updatedAt: created.updatedAt });
        assert.equal(typeof created.updatedAt, 'number');
        assert.deepEqual(await store.get(input.id), created);
      });

      it('round-trips a finished final concatenation with a hash and large numbers', async () => {
        const partIds = [newId(), newId(), newId()];
        const input = sampleUploadRecord({
          protocol: 'parts',
          size: 2 ** 53 - 1,
          offset: 2 ** 53 - 1,
          metadata: {},
          concat: { kind: 'final', partIds },
          state: 'finished',
          storageKey: 'files/final-object',
          sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
          expiresAt: null,
          finishedAt: 1_700_000_000_500,
        });
        const created = await store.create(input);
        const read = await store.get(input.id);
        assert.deepEqual(read, created);
        assert.deepEqual(read?.concat, { kind: 'final', partIds });
        assert.equal(read?.size, 2 ** 53 - 1);
      });

      it('round-trips a partial upload', async () => {
        const input = sampleUploadRecord({ concat: { kind: 'partial' }, size: 0 });
        await store.create(input);
        const read = await store.get(input.id);
        assert.deepEqual(read?.concat, { kind: 'partial' });
        assert.equal(read?.size, 0);
      });

      it('starts at version 1', async () => {
        const created = await store.create(sampleUploadRecord());
        assert.equal(created.version, 1);
      });

      it('returns undefined for an unknown id', async () => {
        assert.equal(await store.get(newId()), undefined);
      });

      it('refuses a duplicate id and keeps the first record', async () => {
        const first = await store.create(sampleUploadRecord());
        await assert.rejects(
          store.create(sampleUploadRecord({ id: first.id, storageKey: 'other' })),
          DuplicateIdError,
        );
        assert.deepEqual(await store.get(first.id), first);
      });

      it('hands out copies: mutating a returned record does not change the store', async () => {
        const created = await store.create(sampleUploadRecord({ metadata: { a: '1' } }));
        created.metadata['a'] = 'changed';
        created.offset = 99;
        const read = await store.get(created.id);
        assert.ok(read);
        // (a copy is compared so that the assertion does not narrow the type of `read.metadata`)
        assert.deepEqual({ ...read.metadata }, { a: '1' });
        assert.equal(read.offset, 0);
        read.metadata['b'] = 'x';
        assert.deepEqual((await store.get(created.id))?.metadata, { a: '1' });
      });
    });

    describe('update', () => {
      it('applies the patch, keeps other fields and bumps the version', async () => {
        const created = await store.create(sampleUploadRecord({ size: null, expiresAt: 1_700_000_100_000 }));
        const updated = await store.update(created.id, 1, { offset: 512, size: 2048 });
        assert.equal(updated.version, 2);
        assert.equal(updated.offset, 512);
        assert.equal(updated.size, 2048);
        assert.ok(updated.updatedAt >= created.updatedAt);
        assert.deepEqual(
          {
            ...updated,
            offset: created.offset,
            size: created.size,
            version: 1,
            updatedAt: created.updatedAt,
          },
          created,
        );
        assert.deepEqual(await store.get(created.id), updated);
      });

      it('sets every patchable field, including back to null', async () => {
        const created = await store.create(
          sampleUploadRecord({ expiresAt: 1_700_000_100_000, sha256: null }),
        );
        const patch = {
          size: 10,
          offset: 10,
          metadata: { filename: 'renamed.bin', note: '' },
          state: 'finished' as const,
          storageKey: 'files/done',
          sha256: 'ab'.repeat(32),
          expiresAt: null,
          finishedAt: 1_700_000_000_900,
        };
        const updated = await store.update(created.id, 1, patch);
        assert.deepEqual({ ...updated, ...patch }, updated);
        assert.deepEqual(await store.get(created.id), updated);
        const again = await store.update(created.id, 2, { sha256: null, finishedAt: null, size: null });
        assert.equal(again.sha256, null);
        assert.equal(again.finishedAt, null);
        assert.equal(again.size, null);
        assert.equal(again.storageKey, 'files/done');
      });

      it('bumps the version on an empty patch', async () => {
        const created = await store.create(sampleUploadRecord());
        assert.equal((await store.update(created.id, 1, {})).version, 2);
        assert.equal((await store.get(created.id))?.version, 2);
      });

      it('rejects a stale version with VersionConflictError and changes nothing', async () => {
        const created = await store.create(sampleUploadRecord());
        const current = await store.update(created.id, 1, { offset: 100 });
        await assert.rejects(store.update(created.id, 1, { offset: 50 }), VersionConflictError);
        await assert.rejects(store.update(created.id, 3, { offset: 50 }), VersionConflictError);
        assert.deepEqual(await store.get(created.id), current);
      });

      it('lets exactly one of two concurrent updates from the same version win', async () => {
        const created = await store.create(sampleUploadRecord());
        const results = await Promise.allSettled([
          store.update(created.id, 1, { offset: 10 }),
          store.update(created.id, 1, { offset: 20 }),
        ]);
        const won = results.filter((r) => r.status === 'fulfilled');
        const lost = results.filter((r) => r.status === 'rejected');
        assert.equal(won.length, 1);
        assert.equal(lost.length, 1);
        assert.ok(lost[0]?.reason instanceof VersionConflictError);
        const winner = (won[0] as PromiseFulfilledResult<UploadRecord>).value;
        const stored = await store.get(created.id);
        assert.equal(stored?.version, 2);
        assert.equal(stored?.offset, winner.offset);
      });

      it('lets exactly one of many concurrent updates win', async () => {
        const created = await store.create(sampleUploadRecord());
        const results = await Promise.allSettled(
          Array.from({ length: 20 }, (_, i) => store.update(created.id, 1, { offset: i + 1 })),
        );
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
        for (const r of results) {
          if (r.status === 'rejected') assert.ok(r.reason instanceof VersionConflictError);
        }
        assert.equal((await store.get(created.id))?.version, 2);
      });

      it('fails with ERR_NOT_FOUND for a missing id', async () => {
        await assert.rejects(store.update(newId(), 1, { offset: 1 }), isNotFound);
      });
    });

    describe('delete', () => {
      it('removes a record and reports whether it existed', async () => {
        const created = await store.create(sampleUploadRecord());
        const other = await store.create(sampleUploadRecord());
        assert.equal(await store.delete(created.id), true);
        assert.equal(await store.get(created.id), undefined);
        assert.equal(await store.delete(created.id), false);
        assert.deepEqual(await store.get(other.id), other);
        await assert.rejects(store.update(created.id, 1, { offset: 1 }), isNotFound);
      });

      it('frees the id for a new record', async () => {
        const created = await store.create(sampleUploadRecord());
        await store.delete(created.id);
        const again = await store.create(sampleUploadRecord({ id: created.id, offset: 7 }));
        assert.equal(again.version, 1);
        assert.equal((await store.get(created.id))?.offset, 7);
      });
    });

    describe('listExpired', () => {
      const now = 1_700_000_500_000;
      async function seed(): Promise<Record<string, UploadRecord>> {
        const make = (overrides: Partial<NewRecord>) => store.create(sampleUploadRecord(overrides));
        return {
          // Ids and creation times run against the expiry order, so only ordering by expiry passes.
          oldest: await make({ expiresAt: now - 3000, id: `c-${newId()}`, createdAt: now - 10 }),
          atNow: await make({ expiresAt: now, id: `a-${newId()}`, createdAt: now - 30 }),
          middle: await make({
            expiresAt: now - 2000,
            id: `b-${newId()}`,
            createdAt: now - 20,
            namespace: 'x',
          }),
          future: await make({ expiresAt: now + 1 }),
          never: await make({ expiresAt: null }),
          finished: await make({ expiresAt: now - 5000, state: 'finished', finishedAt: now - 6000 }),
        };
      }

      it('lists only unfinished uploads expired at or before now, oldest first', async () => {
        const r = await seed();
        const expired = await store.listExpired(now, 100);
        assert.deepEqual(
          expired.map((x) => x.id),
          [r['oldest']!.id, r['middle']!.id, r['atNow']!.id],
        );
        assert.deepEqual(expired[0], r['oldest']);
      });

      it('respects the limit', async () => {
        const r = await seed();
        assert.deepEqual(
          (await store.listExpired(now, 2)).map((x) => x.id),
          [r['oldest']!.id, r['middle']!.id],
        );
        assert.deepEqual(await store.listExpired(now, 0), []);
      });

      it('follows updates and deletes', async () => {
        const r = await seed();
        await store.update(r['oldest']!.id, 1, { expiresAt: now + 10_000 });
        await store.update(r['middle']!.id, 1, { state: 'finished', finishedAt: now });
        await store.update(r['future']!.id, 1, { expiresAt: now - 1 });
        await store.delete(r['atNow']!.id);
        assert.deepEqual(
          (await store.listExpired(now, 100)).map((x) => x.id),
          [r['future']!.id],
        );
      });

      it('is empty on an empty store', async () => {
        assert.deepEqual(await store.listExpired(now, 10), []);
      });
    });

    describe('parts', () => {
      const hex = (c: string) => c.repeat(64);
      const partsUpload = (overrides: Partial<NewRecord> = {}) =>
        sampleUploadRecord({
          protocol: 'parts',
          size: 12 * 1024 * 1024,
          partSize: 5 * 1024 * 1024,
          ...overrides,
        });

      it('keeps the parts-API fields of a record', async () => {
        const input = partsUpload({ expectedSha256: hex('a') });
        const created = await store.create(input);
        assert.equal(created.partSize, 5 * 1024 * 1024);
        assert.equal(created.expectedSha256, hex('a'));
        assert.deepEqual(await store.get(input.id), created);
      });

      it('defaults the parts-API fields to null when left out', async () => {
        const { partSize: _p, expectedSha256: _e, ...input } = sampleUploadRecord();
        const created = await store.create(input);
        assert.equal(created.partSize, null);
        assert.equal(created.expectedSha256, null);
        assert.equal((await store.get(input.id))?.partSize, null);
      });

      it('keeps a sniffed type given at creation or by an update, and defaults it to null', async () => {
        const { sniffedType: _s, ...input } = sampleUploadRecord();
        const created = await store.create(input);
        assert.equal(created.sniffedType, null);
        const finished = await store.update(created.id, created.version, {
          state: 'finished',
          finishedAt: 5,
          sniffedType: 'image/png',
        });
        assert.equal(finished.sniffedType, 'image/png');
        assert.deepEqual(await store.get(created.id), finished);
        const copy = await store.create(
          sampleUploadRecord({ state: 'finished', sniffedType: 'application/pdf' }),
        );
        assert.equal(copy.sniffedType, 'application/pdf');
        assert.deepEqual(await store.get(copy.id), copy);
      });

      it('keeps the allowed types given at creation, defaults them to null, and lists them in progress', async () => {
        const { allowedTypes: _a, ...input } = sampleUploadRecord();
        const plain = await store.create(input);
        assert.equal(plain.allowedTypes, null);
        assert.equal((await store.get(plain.id))?.allowedTypes, null);
        const limited = await store.create(
          sampleUploadRecord({ namespace: 'typed', allowedTypes: ['image/*', 'application/pdf'] }),
        );
        assert.deepEqual(limited.allowedTypes, ['image/*', 'application/pdf']);
        assert.deepEqual(await store.get(limited.id), limited);
        const updated = await store.update(limited.id, limited.version, { offset: 10 });
        assert.deepEqual(updated.allowedTypes, ['image/*', 'application/pdf']);
        const [listed] = await store.listInProgress('typed', 0, 10);
        assert.deepEqual(listed?.record, updated);
        assert.equal(listed?.receivedBytes, 10);
        assert.equal(listed?.partsReceived, 0);
      });

      it('records parts in number order, replaces a re-sent part, and forgets one', async () => {
        const upload = await store.create(partsUpload());
        assert.equal(
          await store.putPart(upload.id, { n: 3, size: 10, sha256: hex('3'), etag: null, storedAt: 3 }, 99),
          true,
        );
        assert.equal(
          await store.putPart(upload.id, { n: 1, size: 5, sha256: hex('1'), etag: 'e1', storedAt: 1 }, 100),
          true,
        );
        assert.equal(
          await store.putPart(upload.id, { n: 3, size: 11, sha256: hex('4'), etag: null, storedAt: 4 }, 101),
          true,
        );
        assert.deepEqual(await store.listParts(upload.id), [
          { n: 1, size: 5, sha256: hex('1'), etag: 'e1', storedAt: 1 },
          { n: 3, size: 11, sha256: hex('4'), etag: null, storedAt: 4 },
        ]);
        assert.equal(await store.deletePart(upload.id, 3), true);
        assert.equal(await store.deletePart(upload.id, 3), false);
        assert.deepEqual(
          (await store.listParts(upload.id)).map((part) => part.n),
          [1],
        );
      });

      it("keeps a part's write tag, and an empty SHA-256, and a re-sent part's new tag", async () => {
        const upload = await store.create(partsUpload());
        const tagged = { n: 2, size: 7, sha256: '', etag: null, storedAt: 2, writeTag: 'tag-a' };
        assert.equal(await store.putPart(upload.id, tagged, null), true);
        assert.deepEqual(await store.listParts(upload.id), [tagged]);
        assert.equal(
          await store.putPart(upload.id, { ...tagged, sha256: hex('2'), writeTag: 'tag-b' }, null),
          true,
        );
        assert.deepEqual(await store.listParts(upload.id), [
          { ...tagged, sha256: hex('2'), writeTag: 'tag-b' },
        ]);
        // A part recorded without a tag (reported from S3) lists without one, not with a stale one.
        const { writeTag: _dropped, ...untagged } = tagged;
        assert.equal(await store.putPart(upload.id, untagged, null), true);
        assert.deepEqual(await store.listParts(upload.id), [untagged]);
      });

      it('moves the expiry and the version with each part', async () => {
        const upload = await store.create(partsUpload({ expiresAt: 10 }));
        await store.putPart(upload.id, { n: 1, size: 5, sha256: hex('1'), etag: null, storedAt: 1 }, 5000);
        const after = await store.get(upload.id);
        assert.equal(after?.expiresAt, 5000);
        assert.equal(after?.version, 2);
        await assert.rejects(store.update(upload.id, 1, { offset: 1 }), VersionConflictError);
      });

      it('records no part for a finished or missing upload', async () => {
        const finished = await store.create(partsUpload({ state: 'finished', finishedAt: 1 }));
        const part = { n: 1, size: 5, sha256: hex('1'), etag: null, storedAt: 1 };
        assert.equal(await store.putPart(finished.id, part, null), false);
        assert.deepEqual(await store.listParts(finished.id), []);
        assert.equal(await store.putPart(newId(), part, null), false);
      });

      it('deletes the parts with their upload', async () => {
        const upload = await store.create(partsUpload());
        await store.putPart(upload.id, { n: 1, size: 5, sha256: hex('1'), etag: null, storedAt: 1 }, null);
        await store.delete(upload.id);
        assert.deepEqual(await store.listParts(upload.id), []);
        // The same id again starts with no parts.
        await store.create(partsUpload({ id: upload.id }));
        assert.deepEqual(await store.listParts(upload.id), []);
      });
    });

    describe('findFinished', () => {
      const digest = 'ab'.repeat(32);

      it('finds a finished upload by namespace, verified SHA-256 and size only', async () => {
        const match = await store.create(
          sampleUploadRecord({
            namespace: 'n1',
            state: 'finished',
            finishedAt: 5,
            sha256: digest,
            size: 1024,
          }),
        );
        await store.create(
          sampleUploadRecord({ namespace: 'n2', state: 'finished', finishedAt: 6, sha256: digest }),
        );
        await store.create(sampleUploadRecord({ namespace: 'n1', state: 'uploading', sha256: digest }));
        await store.create(
          sampleUploadRecord({ namespace: 'n1', state: 'finished', finishedAt: 7, sha256: digest, size: 1 }),
        );
        assert.equal((await store.findFinished('n1', digest, 1024))?.id, match.id);
        assert.equal(await store.findFinished('n3', digest, 1024), undefined, 'never across namespaces');
        assert.equal(await store.findFinished('n1', 'cd'.repeat(32), 1024), undefined);
        assert.equal(await store.findFinished('n1', digest, 2048), undefined);
      });

      it('does not match a declared but unverified digest', async () => {
        await store.create(
          sampleUploadRecord({ state: 'finished', finishedAt: 5, sha256: null, expectedSha256: digest }),
        );
        assert.equal(await store.findFinished('', digest, 1024), undefined);
      });
    });

    describe('listInProgress', () => {
      const at = (createdAt: number, overrides: Partial<NewRecord> = {}) =>
        sampleUploadRecord({ createdAt, ...overrides });

      it('lists the unfinished, unexpired uploads of one namespace only, newest first', async () => {
        const older = await store.create(at(1000, { offset: 10 }));
        const newer = await store.create(at(2000, { expiresAt: 10_000 }));
        await store.create(at(3000, { state: 'finished', offset: 1024, finishedAt: 3000 }));
        await store.create(at(4000, { expiresAt: 5000 }));
        await store.create(at(5000, { namespace: 'other' }));
        const listed = await store.listInProgress('', 5000, 10);
        assert.deepEqual(
          listed.map((entry) => entry.record.id),
          [newer.id, older.id],
        );
        assert.deepEqual(listed[1], { record: older, receivedBytes: 10, partsReceived: 0 });
        assert.deepEqual(
          (await store.listInProgress('other', 5000, 10)).map((entry) => entry.record.namespace),
          ['other'],
        );
        assert.deepEqual(await store.listInProgress('nobody', 5000, 10), []);
      });

      it('counts the recorded parts and their bytes of a parts upload', async () => {
        const upload = await store.create(
          at(1000, { protocol: 'parts', size: 12 * 1024 * 1024, partSize: 5 * 1024 * 1024 }),
        );
        const part = (n: number, size: number) => ({
          n,
          size,
          sha256: 'a'.repeat(64),
          etag: null,
          storedAt: n,
        });
        await store.putPart(upload.id, part(1, 5 * 1024 * 1024), null);
        await store.putPart(upload.id, part(3, 2 * 1024 * 1024), null);
        const [entry] = await store.listInProgress('', 2000, 10);
        assert.equal(entry?.record.id, upload.id);
        assert.equal(entry?.record.version, 3);
        assert.equal(entry?.receivedBytes, 7 * 1024 * 1024);
        assert.equal(entry?.partsReceived, 2);
      });

      it('respects the limit and follows finishing and deleting', async () => {
        const first = await store.create(at(1000));
        const second = await store.create(at(2000));
        const third = await store.create(at(3000));
        assert.deepEqual(
          (await store.listInProgress('', 0, 2)).map((entry) => entry.record.id),
          [third.id, second.id],
        );
        await store.update(third.id, third.version, { state: 'finished', offset: 1024, finishedAt: 4000 });
        await store.delete(second.id);
        assert.deepEqual(
          (await store.listInProgress('', 0, 2)).map((entry) => entry.record.id),
          [first.id],
        );
      });
    });

    describe('countByState', () => {
      it('counts zero for both states on an empty store', async () => {
        assert.deepEqual(await store.countByState(), { uploading: 0, finished: 0 });
      });

      it('follows creates, updates and deletes', async () => {
        const a = await store.create(sampleUploadRecord());
        await store.create(sampleUploadRecord());
        const c = await store.create(sampleUploadRecord({ state: 'finished', finishedAt: 1 }));
        assert.deepEqual(await store.countByState(), { uploading: 2, finished: 1 });
        await store.update(a.id, 1, { state: 'finished' });
        assert.deepEqual(await store.countByState(), { uploading: 1, finished: 2 });
        await store.delete(c.id);
        assert.deepEqual(await store.countByState(), { uploading: 1, finished: 1 });
      });
    });
    describe('hook outbox', () => {
      const entry = (uploadId: string, type: string, sink = 'webhook'): OutboxEntry => ({
        sink,
        uploadId,
        eventId: `${uploadId}-${type}-${sink}`,
        type,
        payload: JSON.stringify({ type, uploadId }),
        createdAt: 1000,
      });
      const claimTypes = async (now: number, limit = 100, leaseUntil = now + 60_000) =>
        (await store.claimOutbox(now, limit, leaseUntil)).map(
          (item) => `${item.uploadId}:${item.type}:${item.sink}`,
        );

      it('queues with the write that tells of it, and not when the write fails', async () => {
        const record = sampleUploadRecord();
        const created = await store.create(record, { outbox: [entry(record.id, 'created')] });
        // A duplicate create, a stale update and a delete of nothing queue nothing.
        await assert.rejects(store.create(record, { outbox: [entry(record.id, 'dup')] }), DuplicateIdError);
        await assert.rejects(
          store.update(
            record.id,
            created.version + 5,
            { offset: 1 },
            { outbox: [entry(record.id, 'stale')] },
          ),
          VersionConflictError,
        );
        assert.equal(await store.delete(newId(), { outbox: [entry('nobody', 'terminated')] }), false);
        await store.update(
          record.id,
          created.version,
          { state: 'finished' },
          { outbox: [entry(record.id, 'finished')] },
        );
        assert.deepEqual(await store.outboxBacklog(), { pending: 2, oldestCreatedAt: 1000 });
        assert.deepEqual(await claimTypes(2000), [`${record.id}:created:webhook`]);
      });

      it('hands out the oldest entry per sink and upload, in queue order, and holds it until settled', async () => {
        await store.enqueue([entry('a', 'created'), entry('a', 'finished'), entry('b', 'created')]);
        await store.enqueue([entry('a', 'created', 'app'), entry('a', 'finished', 'app')]);
        const first = await store.claimOutbox(2000, 100, 5000);
        assert.deepEqual(
          first.map((item) => `${item.uploadId}:${item.type}:${item.sink}`),
          ['a:created:webhook', 'b:created:webhook', 'a:created:app'],
        );
        assert.ok(first.every((item) => item.attempts === 0));
        assert.deepEqual(JSON.parse(first[0]!.payload), { type: 'created', uploadId: 'a' });
        // Held: nothing more until one is settled, or until the lease ends.
        assert.deepEqual(await claimTypes(2000), []);
        await store.settleOutbox(first[0]!.seq);
        assert.deepEqual(await claimTypes(2000), ['a:finished:webhook']);
        assert.deepEqual(await claimTypes(6000), ['b:created:webhook', 'a:created:app']);
        assert.equal((await store.outboxBacklog()).pending, 4);
      });

      it('a failed entry comes back when due, counted, and keeps the ones behind it waiting', async () => {
        await store.enqueue([entry('a', 'created'), entry('a', 'finished'), entry('b', 'created')]);
        const [a] = await store.claimOutbox(2000, 1, 5000);
        assert.equal(a?.type, 'created');
        await store.retryOutbox(a!.seq, 10_000, 'the receiver answered 500');
        assert.deepEqual(await claimTypes(3000), ['b:created:webhook'], 'a waits, b does not');
        const again = await store.claimOutbox(10_000, 100, 20_000);
        assert.deepEqual(
          again.map((item) => [item.type, item.attempts]),
          [['created', 1]],
        );
        await store.settleOutbox(again[0]!.seq);
        assert.deepEqual(await claimTypes(10_000), ['a:finished:webhook']);
      });

      it('reports an empty backlog', async () => {
        assert.deepEqual(await store.outboxBacklog(), { pending: 0, oldestCreatedAt: null });
        assert.deepEqual(await store.claimOutbox(Date.now(), 10, Date.now() + 1000), []);
      });
    });
  });
}
