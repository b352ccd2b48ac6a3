/** The process-wide bound on received-but-unwritten bytes across concurrent appends. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { it } from 'node:test';
import { randomUploadId } from '@ferry/testing';
import { heldBytesInProcess, PROCESS_HIGH_WATER_BYTES } from '../src/stores/fs/fs-append.ts';
import { createFsDataStore } from '../src/stores/fs/fs-data-store.ts';

const CHUNK = 64 * 1024;
const PER_UPLOAD = 16 * 1024 * 1024;

for (const directIo of ['on', 'off'] as const) {
  it(`keeps held bytes of 24 concurrent appends bounded and returns them all when done (directIo ${directIo})`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-budget-'));
    try {
      const store = createFsDataStore({ directory: dir, durability: 'none', directIo });
      const chunk = randomBytes(CHUNK);
      let peak = 0;
      const sampler = setInterval(() => {
        peak = Math.max(peak, heldBytesInProcess());
      }, 1);
      const uploads = Array.from({ length: 24 }, async () => {
        const id = randomUploadId();
        const key = await store.create({ id, size: PER_UPLOAD });
        let sent = 0;
        // A body that produces as fast as it is read, like a fast client on loopback.
        const body = new Readable({
          read() {
            peak = Math.max(peak, heldBytesInProcess());
            if (sent >= PER_UPLOAD) this.push(null);
            else {
              sent += CHUNK;
              this.push(chunk);
            }
          },
        });
        const result = await store.append(key, 0, body);
        assert.equal(result.bytesWritten, PER_UPLOAD);
      });
      await Promise.all(uploads);
      clearInterval(sampler);
      assert.equal(heldBytesInProcess(), 0, 'every held byte is given back');
      // The bound: the process limit plus one chunk per upload (a body may always queue one).
      assert.ok(peak <= PROCESS_HIGH_WATER_BYTES + 24 * CHUNK * 2, `peak ${peak}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}
