/**
 * Uploads of 200 MB through the fault proxy, which cuts the connection every ~10 MB: each one
 * completes with the right SHA-256, and the bytes sent again per cut stay within one chunk (tus)
 * or one part (parts) — measured from what reached the server.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startFaultProxy } from '@ferry/testing';
import { createUpload } from '../src/index.ts';
import {
  ferryBytesReceived,
  fileDigest,
  MiB,
  makeTempDir,
  startFerry,
  type TestServer,
  writeRandomFile,
} from './helpers.ts';

const SIZE = 200_000_000;
const CHUNK = 8 * MiB;
const quickRetry = { limit: 20, backoff: { initialMs: 10, maxMs: 200, factor: 2 } };

describe('uploads through a link cut every ~10 MB', () => {
  let server: TestServer;
  let dir: string;
  let path: string;
  let source: { sha256: string; size: number };

  before(async () => {
    server = await startFerry();
    dir = await makeTempDir();
    path = join(dir, 'big.bin');
    await writeRandomFile(path, SIZE);
    source = await fileDigest(path);
  });
  after(async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  for (const protocol of ['tus', 'parts'] as const) {
    it(`${protocol}: completes, SHA-256 matches, at most one ${protocol === 'tus' ? 'chunk' : 'part'} re-sent per cut`, async () => {
      const method = protocol === 'tus' ? 'PATCH' : 'PUT';
      const proxy = await startFaultProxy({
        target: server.origin,
        faults: { cutEveryBytes: 10_000_000, cutJitterBytes: 1_000_000, seed: 7, match: { method } },
      });
      try {
        const receivedBefore = await ferryBytesReceived(server);
        const upload = createUpload({
          endpoint: protocol === 'tus' ? `${proxy.url}/files/` : `${proxy.url}/uploads`,
          protocol,
          source: path,
          chunkSize: CHUNK,
          parallel: 4,
          retry: quickRetry,
          resumeStore: false,
        });
        const result = await upload.start();
        const stored = await server.stored(`${server.origin}/files/${result.id}`);
        assert.equal(stored.sha256, source.sha256);
        assert.equal(stored.size, SIZE);
        const { cuts, bodyBytesToServer } = proxy.stats;
        const received = (await ferryBytesReceived(server)) - receivedBefore;
        assert.ok(cuts >= 15, `the proxy cut ${cuts} times`);
        const resentPerCut = (bodyBytesToServer - SIZE) / cuts;
        const storedAgainPerCut = (received - SIZE) / cuts;
        const limit = protocol === 'tus' ? CHUNK : 8 * MiB;
        process.stdout.write(
          `# ${protocol}: ${cuts} cuts, ${Math.round(resentPerCut)} body bytes re-sent per cut, ` +
            `${Math.round(storedAgainPerCut)} stored again per cut\n`,
        );
        assert.ok(resentPerCut <= limit, `re-sent ${resentPerCut} bytes per cut`);
        assert.ok(storedAgainPerCut <= limit, `stored again ${storedAgainPerCut} bytes per cut`);
      } finally {
        await proxy.close();
      }
    });
  }
});
