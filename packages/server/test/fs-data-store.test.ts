import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { link, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { describeDataStore, randomUploadId } from '@ferry/testing';
import { createFsDataStore, type FsDataStore } from '../src/stores/fs/fs-data-store.ts';

for (const directIo of ['on', 'off'] as const) {
  for (const durability of ['none', 'fsync'] as const) {
    describeDataStore(`fs (durability ${durability}, directIo ${directIo})`, async () => {
      const directory = await mkdtemp(join(tmpdir(), 'ferry-fs-store-'));
      return {
        store: createFsDataStore({ directory, durability, directIo }),
        cleanup: () => rm(directory, { recursive: true, force: true }),
      };
    });
  }
}

describe('fs data store', () => {
  let directory: string;
  let store: FsDataStore;

  before(async () => {
    directory = await mkdtemp(join(tmpdir(), 'ferry-fs-store-'));
    store = createFsDataStore({ directory, durability: 'none' });
  });
  after(() => rm(directory, { recursive: true, force: true }));

  it('lays bytes out as uploads/<id>, then files/<id>', async () => {
    const id = randomUploadId();
    const key = await store.create({ id, size: 5 });
    assert.equal(key, `uploads/${id}`);
    await store.append(key, 0, Readable.from([Buffer.from('hello')]));
    assert.equal(await readFile(join(directory, 'uploads', id), 'utf8'), 'hello');
    assert.equal(await store.finalize(key, { id, size: 5 }), `files/${id}`);
    assert.equal(existsSync(join(directory, 'uploads', id)), false);
    assert.equal(await readFile(join(directory, 'files', id), 'utf8'), 'hello');
  });

  it('refuses keys and ids that are not its own (no path traversal)', async () => {
    const outside = join(directory, 'outside-secret');
    await writeFile(outside, 'secret');
    const bad = [
      '../outside-secret',
      'uploads/../outside-secret',
      'uploads/../../etc/passwd',
      `uploads/${'a'.repeat(20)}/../../outside-secret`,
      '/etc/passwd',
      `files/${'a'.repeat(20)}.parts/000001`,
      `uploads/${'a'.repeat(20)}.parts`,
      'uploads/short',
      `uploads/${'a'.repeat(129)}`,
      `uploads/${'a'.repeat(19)}.`,
      `uploads\\${'a'.repeat(20)}`,
      '',
    ];
    for (const key of bad) {
      await assert.rejects(store.getOffset(key), { code: 'ERR_INVALID_ID' }, key);
      await assert.rejects(store.append(key, 0, Readable.from([])), { code: 'ERR_INVALID_ID' }, key);
      await assert.rejects(store.remove(key), { code: 'ERR_INVALID_ID' }, key);
      await assert.rejects(store.stat(key), { code: 'ERR_INVALID_ID' }, key);
      assert.throws(() => store.read(key, { start: 0, end: 1 }), { code: 'ERR_INVALID_ID' }, key);
    }
    for (const id of ['../../outside-secret', 'a/b/c/d/e/f/g/h/i/j', 'short', 'x'.repeat(129)]) {
      await assert.rejects(store.create({ id, size: 1 }), { code: 'ERR_INVALID_ID' }, id);
      await assert.rejects(store.concatenate(id, []), { code: 'ERR_INVALID_ID' }, id);
    }
    assert.equal(await readFile(outside, 'utf8'), 'secret');
  });

  it('refuses to write a finished file and to stat an unfinished one, but reads its stored prefix', async () => {
    const id = randomUploadId();
    const key = await store.create({ id, size: 3 });
    await store.append(key, 0, Readable.from([Buffer.from('ab')]));
    const chunks: Buffer[] = [];
    for await (const chunk of store.read(key, { start: 0, end: 1 })) chunks.push(chunk as Buffer);
    assert.equal(Buffer.concat(chunks).toString(), 'ab');
    await assert.rejects(store.stat(key), { code: 'ERR_UPLOAD_NOT_FINISHED' });
    await store.truncate(key, 0);
    const finishedKey = await store.finalize(key, { id, size: 0 });
    await assert.rejects(store.append(finishedKey, 0, Readable.from([Buffer.from('x')])));
    assert.equal(await store.getOffset(finishedKey), 0);
  });

  it('refuses to finalize an upload whose stored size differs from its length', async () => {
    const id = randomUploadId();
    const key = await store.create({ id, size: 10 });
    await store.append(key, 0, Readable.from([Buffer.from('12345')]));
    await assert.rejects(store.finalize(key, { id, size: 10 }));
    assert.equal(await store.getOffset(key), 5);
  });

  it('treats a repeated finalize after the rename as done', async () => {
    const id = randomUploadId();
    const key = await store.create({ id, size: 2 });
    await store.append(key, 0, Readable.from([Buffer.from('ok')]));
    const first = await store.finalize(key, { id, size: 2 });
    assert.equal(await store.finalize(key, { id, size: 2 }), first);
  });

  it('pauses a fast body while writes catch up, and loses nothing', { timeout: 30_000 }, async () => {
    // Far more than the store queues (4 MiB) before it pauses the body, from sources that never wait.
    const data = randomBytes(24 * 1024 * 1024 + 5);
    const chunks: Buffer[] = [];
    for (let start = 0; start < data.length; start += 64 * 1024)
      chunks.push(data.subarray(start, start + 64 * 1024));
    async function* iterable() {
      yield* chunks;
    }
    for (const source of [() => Readable.from(chunks), () => iterable()]) {
      const id = randomUploadId();
      const key = await store.create({ id, size: data.length });
      assert.deepEqual(await store.append(key, 0, source()), { bytesWritten: data.length });
      const written = await readFile(join(directory, 'uploads', id));
      assert.equal(
        createHash('sha256').update(written).digest('hex'),
        createHash('sha256').update(data).digest('hex'),
      );
      await store.remove(key);
    }
  });

  it('stops at a chunk that is not bytes, keeping what came before', async () => {
    const key = await store.create({ id: randomUploadId(), size: 10 });
    const result = await store.append(key, 0, Readable.from([Buffer.from('ab'), 42, Buffer.from('cd')]));
    assert.equal(result.bytesWritten, 2);
    assert.ok(result.interruption instanceof TypeError);
    assert.equal(await store.getOffset(key), 2);
  });

  it('reports the size on disk as the offset after a crash', async () => {
    const id = randomUploadId();
    const key = await store.create({ id, size: 1_000_000 });
    // What a killed process leaves behind: bytes in the file, nothing else recorded.
    await writeFile(join(directory, 'uploads', id), Buffer.alloc(123_457, 7));
    assert.equal(await store.getOffset(key), 123_457);
    await assert.rejects(store.append(key, 0, Readable.from([Buffer.from('x')])), {
      code: 'ERR_OFFSET_MISMATCH',
    });
    assert.deepEqual(await store.append(key, 123_457, Readable.from([Buffer.from('more')])), {
      bytesWritten: 4,
    });
    assert.equal((await stat(join(directory, 'uploads', id))).size, 123_461);
  });

  it('answers ERR_NOT_FOUND for a well-formed key with no data', async () => {
    const key = `uploads/${randomUploadId()}`;
    await assert.rejects(store.getOffset(key), { code: 'ERR_NOT_FOUND' });
    await assert.rejects(store.append(key, 0, Readable.from([])), { code: 'ERR_NOT_FOUND' });
    await assert.rejects(store.stat(`files/${randomUploadId()}`), { code: 'ERR_NOT_FOUND' });
    await assert.rejects(store.concatenate(randomUploadId(), [`files/${randomUploadId()}`]), {
      code: 'ERR_NOT_FOUND',
    });
  });

  it('concatenates with hard links, not copies, and flattens a concatenation used as a part', async () => {
    const keys: string[] = [];
    for (const text of ['ab', 'cd']) {
      const id = randomUploadId();
      const key = await store.create({ id, size: 2 });
      await store.append(key, 0, Readable.from([Buffer.from(text)]));
      keys.push(await store.finalize(key, { id, size: 2 }));
    }
    const finalId = randomUploadId();
    const finalKey = await store.concatenate(finalId, keys);
    assert.equal(finalKey, `files/${finalId}.parts`);
    const partsDir = join(directory, 'files', `${finalId}.parts`);
    assert.deepEqual(await readdir(partsDir), ['000001', '000002']);
    const [partInfo, sourceInfo] = await Promise.all([
      stat(join(partsDir, '000001')),
      stat(join(directory, keys[0]!)),
    ]);
    assert.equal(partInfo.ino, sourceInfo.ino, 'the part is a hard link to the partial file');
    const nested = await store.concatenate(randomUploadId(), [finalKey, keys[0]!]);
    const read = async (key: string, start: number, end: number) => {
      const chunks: Buffer[] = [];
      for await (const chunk of store.read(key, { start, end })) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString();
    };
    assert.equal(await read(nested, 0, 5), 'abcdab');
    assert.equal(await read(nested, 1, 4), 'bcda');
    assert.equal((await store.stat(nested)).size, 6);
  });

  it('removes leftover temporary directories at startup and keeps finished ones', async () => {
    const root = await mkdtemp(join(tmpdir(), 'ferry-fs-store-'));
    try {
      const first = createFsDataStore({ directory: root, durability: 'none' });
      const id = randomUploadId();
      await first.create({ id, size: 0 });
      const done = await first.finalize(`uploads/${id}`, { id, size: 0 });
      const kept = await first.concatenate(randomUploadId(), [done]);
      // A concatenation interrupted by a crash before its rename.
      const leftover = join(root, 'files', `${randomUploadId()}.parts.tmp`);
      await mkdir(leftover);
      await link(join(root, done), join(leftover, '000001'));
      createFsDataStore({ directory: root, durability: 'fsync' });
      assert.equal(existsSync(leftover), false);
      assert.equal(existsSync(join(root, kept)), true);
      assert.equal(existsSync(join(root, done)), true);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('rejects an invalid durability setting', () => {
    assert.throws(() => createFsDataStore({ directory, durability: 'sometimes' as unknown as 'none' }));
  });

  it('passes a failing write (ENOSPC) through as-is', async () => {
    // /dev/full refuses every write with ENOSPC: the store must pass that error through as-is.
    if (!existsSync('/dev/full')) return;
    const id = randomUploadId();
    const key = await store.create({ id, size: 100 });
    const path = join(directory, 'uploads', id);
    await rm(path);
    await symlink('/dev/full', path);
    try {
      await assert.rejects(store.append(key, 0, Readable.from([Buffer.alloc(64 * 1024)])), {
        code: 'ENOSPC',
      });
    } finally {
      await rm(path);
    }
  });
});
