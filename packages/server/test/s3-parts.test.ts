/**
 * PartCutter (stores/s3/s3-parts.ts): a stream of chunks becomes parts of exactly the planned
 * size, uploaded `concurrency` at a time, each part's buffer used again only after its upload has
 * settled. The uploads are a function here; the store's use of it is tested on the RGW.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { PartBuffers } from '../src/stores/s3/s3-part-buffers.ts';
import { PartCutter } from '../src/stores/s3/s3-parts.ts';

const KiB = 1024;
const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('PartCutter', () => {
  it('cuts parts of the planned size, keeps each buffer untouched until its upload settles, then reuses it', async () => {
    const partSize = 64 * KiB;
    const source = randomBytes(10 * partSize + 123);
    const seen = new Map<number, { sent: string; atSettle: string; buffer: ArrayBufferLike }>();
    let inFlight = 0;
    let most = 0;
    const buffers = new PartBuffers(16 * partSize);
    const cutter = new PartCutter({
      firstPart: 1,
      plan: { size: partSize, grows: false },
      concurrency: 2,
      buffers,
      upload: async (n, body) => {
        inFlight += 1;
        most = Math.max(most, inFlight);
        const sent = sha(body);
        // Later parts are cut (and buffers possibly reused) while this one is "in flight".
        await new Promise((resolve) => setTimeout(resolve, n % 3 === 0 ? 15 : 2));
        seen.set(n, { sent, atSettle: sha(body), buffer: body.buffer });
        inFlight -= 1;
        return `etag-${n}`;
      },
    });
    // Chunks that do not line up with parts, fed with the reader's backpressure.
    for (let at = 0; at < source.length; at += 10_000) {
      cutter.push(source.subarray(at, Math.min(source.length, at + 10_000)));
      while (cutter.full) await new Promise<void>((resolve) => (cutter.onChange = resolve));
    }
    await cutter.settle();
    const rest = cutter.takeRest();
    assert.equal(rest.byteLength, 123);
    assert.ok(rest.equals(source.subarray(10 * partSize)));
    const parts = cutter.contiguous();
    assert.deepEqual(
      parts.map((part) => [part.n, part.size, part.etag]),
      Array.from({ length: 10 }, (_, i) => [i + 1, partSize, `etag-${i + 1}`]),
    );
    for (let n = 1; n <= 10; n++) {
      const part = seen.get(n)!;
      const expected = sha(source.subarray((n - 1) * partSize, n * partSize));
      assert.equal(part.sent, expected, `part ${n} was cut right`);
      assert.equal(part.atSettle, expected, `part ${n}'s buffer was not reused before its upload settled`);
    }
    assert.ok(most <= 2, `at most 2 uploads in flight, saw ${most}`);
    const distinct = new Set([...seen.values()].map((part) => part.buffer));
    assert.ok(distinct.size <= 4, `buffers are reused: ${distinct.size} for 10 parts`);
    assert.ok(
      buffers.stats().peakInUseBytes <= 3 * partSize,
      `2 parts in flight and 1 being filled at most: ${buffers.stats().peakInUseBytes}`,
    );
    cutter.close();
    assert.equal(buffers.stats().inUseBytes, 0, 'every buffer is back once the cutter is closed');
  });

  it('stops at the first failed upload and reports it', async () => {
    const buffers = new PartBuffers(64 * 64 * KiB);
    const cutter = new PartCutter({
      firstPart: 3,
      plan: { size: 64 * KiB, grows: false },
      concurrency: 2,
      buffers,
      upload: async (n) => {
        if (n === 4) throw new Error('S3 refused part 4');
        return `etag-${n}`;
      },
    });
    cutter.push(randomBytes(5 * 64 * KiB));
    await cutter.settle();
    assert.equal(cutter.failed, true);
    assert.match(String(cutter.failure), /S3 refused part 4/);
    assert.deepEqual(
      cutter.contiguous().map((part) => part.n),
      [3],
    );
    cutter.close();
    assert.equal(buffers.stats().inUseBytes, 0, 'the failed and the dropped parts gave their buffers back');
  });
});
