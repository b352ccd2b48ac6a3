/**
 * After a crash the record may lag behind storage: the offset and the finished state are recovered
 * from what storage holds, never guessed.
 */
import assert from 'node:assert/strict';
import { appendFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createUpload, head, idOf, patch, send, startServer, type TestServer } from './tus-helpers.ts';

describe('recovery from storage', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  it('reports bytes that reached storage but not the record (crash after the write)', async () => {
    const location = await createUpload(server.endpoint, 10);
    await appendFile(join(server.dataDir, 'uploads', idOf(location)), 'abcd');
    const reply = await head(location);
    assert.equal(reply.status, 200);
    assert.equal(reply.headers['upload-offset'], '4');
    assert.equal((await patch(location, 4, 'efghij')).status, 204);
    assert.equal((await send(location)).body.toString(), 'abcdefghij');
  });

  it('finishes an upload whose bytes were moved but whose record was not updated', async () => {
    const location = await createUpload(server.endpoint, 3);
    const id = idOf(location);
    await appendFile(join(server.dataDir, 'uploads', id), 'xyz');
    await rename(join(server.dataDir, 'uploads', id), join(server.dataDir, 'files', id));
    const reply = await head(location);
    assert.equal(reply.status, 200);
    assert.equal(reply.headers['upload-offset'], '3');
    assert.equal((await send(location)).body.toString(), 'xyz');
  });

  it('answers 404 when the bytes of an unfinished upload are gone', async () => {
    const location = await createUpload(server.endpoint, 3);
    await rm(join(server.dataDir, 'uploads', idOf(location)));
    assert.equal((await head(location)).status, 404);
  });
});
