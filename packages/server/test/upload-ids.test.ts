import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newUploadId } from '../src/service/upload-service.ts';

describe('upload ids', () => {
  it('are 128 random bits in 22 base64url characters, distinct across refills of the random pool', () => {
    // 1,000 ids draw the pool (256 ids) four times over.
    const ids = Array.from({ length: 1000 }, () => newUploadId());
    for (const id of ids) {
      assert.match(id, /^[A-Za-z0-9_-]{22}$/);
      assert.equal(Buffer.from(id, 'base64url').length, 16);
    }
    // A pool that was not refilled would repeat itself 256 ids later.
    assert.equal(new Set(ids).size, ids.length);
  });
});
