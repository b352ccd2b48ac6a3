/**
 * tus clients restart from zero after a 5xx on HEAD, so a storage failure there must not be a 5xx:
 * it is answered 423 ERR_STATE_UNAVAILABLE ("retry"), and the upload is intact afterwards.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { createFsDataStore, type DataStore } from '../src/index.ts';
import { createUpload, head, patch, startServer } from './tus-helpers.ts';

it('answers a HEAD whose storage read fails with 423 ERR_STATE_UNAVAILABLE, then serves it normally', async () => {
  const storeDir = await mkdtemp(join(tmpdir(), 'ferry-flaky-store-'));
  const fs = createFsDataStore({ directory: storeDir, durability: 'none' });
  let failing = false;
  // The fs store with every method bound, and getOffset failing on demand like a disk in trouble.
  const store = Object.fromEntries(
    ['create', 'append', 'finalize', 'truncate', 'remove', 'stat', 'read', 'concatenate'].map((name) => [
      name,
      (fs as unknown as Record<string, (...args: unknown[]) => unknown>)[name]!.bind(fs),
    ]),
  ) as unknown as DataStore;
  Object.assign(store, {
    kind: 'flaky-fs',
    deferredLength: true,
    getOffset: (key: string) =>
      failing ? Promise.reject(Object.assign(new Error('I/O error'), { code: 'EIO' })) : fs.getOffset(key),
  });
  const server = await startServer({ dataStore: store });
  try {
    const location = await createUpload(server.endpoint, 10);
    assert.equal((await patch(location, 0, 'abcd')).status, 204);
    failing = true;
    const during = await head(location);
    // A HEAD response has no body to carry the code; the status is what tus clients act on.
    assert.equal(during.status, 423);
    failing = false;
    const after = await head(location);
    assert.equal(after.status, 200);
    assert.equal(after.headers['upload-offset'], '4');
  } finally {
    await server.stop();
    await rm(storeDir, { recursive: true, force: true });
  }
});
