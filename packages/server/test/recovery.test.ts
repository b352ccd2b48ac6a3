/**
 * After a crash the record may lag behind storage: the offset and the finished state are recovered
 * from what storage holds, never guessed.
 */
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createFerry, type Ferry } from '../src/index.ts';

const TUS = { 'tus-resumable': '1.0.0' };

describe('recovery from storage', () => {
  let dir: string;
  let ferry: Ferry;
  let base: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-recovery-'));
    ferry = await createFerry({ dataDir: dir, logLevel: 'silent' });
    base = (await ferry.listen({ host: '127.0.0.1', port: 0 })).url;
  });
  after(async () => {
    await ferry.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function create(size: number): Promise<{ location: string; id: string }> {
    const response = await fetch(`${base}/files/`, {
      method: 'POST',
      headers: { ...TUS, 'upload-length': String(size) },
    });
    assert.equal(response.status, 201);
    const location = response.headers.get('location')!;
    return { location, id: location.split('/').pop()! };
  }

  it('reports bytes that reached storage but not the record (crash after the write)', async () => {
    const { location, id } = await create(10);
    await appendFile(join(dir, 'uploads', id), 'abcd');
    const head = await fetch(location, { method: 'HEAD', headers: TUS });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('upload-offset'), '4');
    const rest = await fetch(location, {
      method: 'PATCH',
      headers: { ...TUS, 'upload-offset': '4', 'content-type': 'application/offset+octet-stream' },
      body: 'efghij',
    });
    assert.equal(rest.status, 204);
    assert.equal(await (await fetch(location)).text(), 'abcdefghij');
  });

  it('finishes an upload whose bytes were moved but whose record was not updated', async () => {
    const { location, id } = await create(3);
    await appendFile(join(dir, 'uploads', id), 'xyz');
    await rename(join(dir, 'uploads', id), join(dir, 'files', id));
    const head = await fetch(location, { method: 'HEAD', headers: TUS });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('upload-offset'), '3');
    assert.equal(await (await fetch(location)).text(), 'xyz');
  });

  it('answers 404 when the bytes of an unfinished upload are gone', async () => {
    const { location, id } = await create(3);
    await rm(join(dir, 'uploads', id));
    const head = await fetch(location, { method: 'HEAD', headers: TUS });
    assert.equal(head.status, 404);
  });
});
