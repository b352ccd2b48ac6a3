/** Server-side SHA-256 (`hashUploads`): recorded when an upload finishes, also across a restart. */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createFerry } from '../src/index.ts';
import { createUpload, idOf, patch, startServer } from './tus-helpers.ts';

describe('hashUploads', () => {
  it('records the SHA-256 of an upload sent in two PATCHes with a server restart between them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-hash-'));
    try {
      const source = randomBytes(3 * 1024 * 1024 + 17);
      const first = await createFerry({ dataDir: dir, logLevel: 'silent', hashUploads: true });
      const one = await first.listen({ host: '127.0.0.1', port: 0 });
      const path = new URL(await createUpload(`${one.url}/files/`, source.length)).pathname;
      assert.equal((await patch(`${one.url}${path}`, 0, source.subarray(0, 1_000_000))).status, 204);
      await first.close();

      // The running hash is gone with the process: the stored prefix is hashed again.
      const second = await createFerry({ dataDir: dir, logLevel: 'silent', hashUploads: true });
      const two = await second.listen({ host: '127.0.0.1', port: 0 });
      assert.equal((await patch(`${two.url}${path}`, 1_000_000, source.subarray(1_000_000))).status, 204);
      const record = await second.service.get(idOf(`${two.url}${path}`), '');
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
    const server = await startServer({ hashUploads: true });
    try {
      const source = randomBytes(300_000);
      const location = await createUpload(server.endpoint, source.length);
      const sha1 = (bytes: Buffer) => ({
        'upload-checksum': `sha1 ${createHash('sha1').update(bytes).digest('base64')}`,
      });
      const first = source.subarray(0, 100_000);
      const rest = source.subarray(100_000);
      assert.equal((await patch(location, 0, first, sha1(first))).status, 204);
      // A chunk whose checksum does not match is discarded; the running hash must not keep it.
      assert.equal((await patch(location, 100_000, rest, sha1(first))).status, 460);
      assert.equal((await patch(location, 100_000, rest, sha1(rest))).status, 204);
      const record = await server.ferry.service.get(idOf(location), '');
      assert.equal(record.sha256, createHash('sha256').update(source).digest('hex'));
    } finally {
      await server.stop();
    }
  });

  it('leaves sha256 empty when hashing is off', async () => {
    const server = await startServer();
    try {
      const location = await createUpload(server.endpoint, 3);
      assert.equal((await patch(location, 0, 'abc')).status, 204);
      const record = await server.ferry.service.get(idOf(location), '');
      assert.equal(record.state, 'finished');
      assert.equal(record.sha256, null);
    } finally {
      await server.stop();
    }
  });
});
