/** Server-side SHA-256 (`hashUploads`): recorded when an upload finishes, also across a restart. */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createFerry } from '../src/index.ts';

const TUS = { 'tus-resumable': '1.0.0' };

function patch(location: string, offset: number, body: Uint8Array<ArrayBuffer>) {
  return fetch(location, {
    method: 'PATCH',
    headers: { ...TUS, 'upload-offset': String(offset), 'content-type': 'application/offset+octet-stream' },
    body,
  });
}

describe('hashUploads', () => {
  it('records the SHA-256 of an upload sent in two PATCHes with a server restart between them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-hash-'));
    try {
      const source = randomBytes(3 * 1024 * 1024 + 17);
      const first = await createFerry({ dataDir: dir, logLevel: 'silent', hashUploads: true });
      const one = await first.listen({ host: '127.0.0.1', port: 0 });
      const created = await fetch(`${one.url}/files/`, {
        method: 'POST',
        headers: { ...TUS, 'upload-length': String(source.length) },
      });
      const path = new URL(created.headers.get('location')!).pathname;
      assert.equal((await patch(`${one.url}${path}`, 0, source.subarray(0, 1_000_000))).status, 204);
      await first.close();

      // The running hash is gone with the process: the stored prefix is hashed again.
      const second = await createFerry({ dataDir: dir, logLevel: 'silent', hashUploads: true });
      const two = await second.listen({ host: '127.0.0.1', port: 0 });
      assert.equal((await patch(`${two.url}${path}`, 1_000_000, source.subarray(1_000_000))).status, 204);
      const id = path.split('/').pop()!;
      const record = await second.service.get(id, '');
      assert.equal(record.sha256, createHash('sha256').update(source).digest('hex'));
      const download = await fetch(`${two.url}${path}`);
      assert.equal(download.headers.get('etag'), `"${record.sha256}"`);
      assert.ok(Buffer.from(await download.arrayBuffer()).equals(source));
      await second.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('records the SHA-256 when chunks carry Upload-Checksum, including a discarded one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-hash-checksum-'));
    try {
      const source = randomBytes(300_000);
      const ferry = await createFerry({ dataDir: dir, logLevel: 'silent', hashUploads: true });
      const { url } = await ferry.listen({ host: '127.0.0.1', port: 0 });
      const created = await fetch(`${url}/files/`, {
        method: 'POST',
        headers: { ...TUS, 'upload-length': String(source.length) },
      });
      const location = created.headers.get('location')!;
      const send = (offset: number, body: Buffer<ArrayBuffer>, digestOf: Buffer) =>
        fetch(location, {
          method: 'PATCH',
          headers: {
            ...TUS,
            'upload-offset': String(offset),
            'content-type': 'application/offset+octet-stream',
            'upload-checksum': `sha1 ${createHash('sha1').update(digestOf).digest('base64')}`,
          },
          body,
        });
      const first = source.subarray(0, 100_000);
      const rest = source.subarray(100_000);
      assert.equal((await send(0, first, first)).status, 204);
      // A chunk whose checksum does not match is discarded; the running hash must not keep it.
      assert.equal((await send(100_000, rest, first)).status, 460);
      assert.equal((await send(100_000, rest, rest)).status, 204);
      const record = await ferry.service.get(location.split('/').pop()!, '');
      assert.equal(record.sha256, createHash('sha256').update(source).digest('hex'));
      await ferry.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('leaves sha256 empty when hashing is off', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-hash-off-'));
    try {
      const ferry = await createFerry({ dataDir: dir, logLevel: 'silent' });
      const { url } = await ferry.listen({ host: '127.0.0.1', port: 0 });
      const created = await fetch(`${url}/files/`, {
        method: 'POST',
        headers: { ...TUS, 'upload-length': '3' },
      });
      const location = created.headers.get('location')!;
      assert.equal((await patch(location, 0, Buffer.from('abc'))).status, 204);
      const record = await ferry.service.get(location.split('/').pop()!, '');
      assert.equal(record.state, 'finished');
      assert.equal(record.sha256, null);
      await ferry.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
