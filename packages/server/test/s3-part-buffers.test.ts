/**
 * PartBuffers (stores/s3/s3-part-buffers.ts): the S3 store's budget for part buffers, shared by
 * every cutter. The budget is never exceeded, waiters are served in order, a part larger than the
 * budget still goes through alone, and cutters that share a budget too small for all of them
 * finish without a deadlock. The store's use of it is tested on the RGW (s3-memory-budget.test.ts).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { PartBuffers } from '../src/stores/s3/s3-part-buffers.ts';
import { PartCutter } from '../src/stores/s3/s3-parts.ts';

const KiB = 1024;
const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const tick = () => new Promise((resolve) => setTimeout(resolve, 1));

describe('PartBuffers', () => {
  it('grants within the budget, then serves waiters in arrival order as buffers come back', async () => {
    const buffers = new PartBuffers(100);
    const a = buffers.tryTake(60)!;
    assert.equal(a.byteLength, 60);
    assert.equal(buffers.tryTake(50), undefined, '60 + 50 is past the budget');
    const order: string[] = [];
    const granted: Buffer[] = [];
    buffers.wait(50, (buffer) => {
      order.push('first (50)');
      granted.push(buffer);
    });
    buffers.wait(10, (buffer) => {
      order.push('second (10)');
      granted.push(buffer);
    });
    assert.equal(buffers.tryTake(10), undefined, 'no one jumps the queue, even when the bytes would fit');
    await tick();
    assert.deepEqual(order, [], 'nothing is granted before a buffer comes back');
    buffers.give(a);
    await tick();
    assert.deepEqual(order, ['first (50)', 'second (10)']);
    assert.deepEqual(
      granted.map((buffer) => buffer.byteLength),
      [50, 10],
    );
    const stats = buffers.stats();
    assert.equal(stats.inUseBytes, 60);
    assert.equal(stats.peakInUseBytes, 60);
    assert.equal(stats.waits, 2);
    assert.equal(stats.waiting, 0);
  });

  it('keeps returned buffers for reuse, and grants a part larger than the budget when nothing else is in use', async () => {
    const buffers = new PartBuffers(100);
    const first = buffers.tryTake(20)!;
    buffers.give(first);
    const small = buffers.tryTake(20)!;
    assert.equal(small.buffer, first.buffer, 'a returned buffer of the same size is used again');
    assert.equal(buffers.tryTake(150), undefined);
    let big: Buffer | undefined;
    buffers.wait(150, (buffer) => {
      big = buffer;
    });
    buffers.give(small);
    await tick();
    assert.equal(big?.byteLength, 150, 'alone, a part past the budget still goes through');
    buffers.give(big!);
    assert.equal(buffers.stats().inUseBytes, 0);
    assert.equal(buffers.stats().idleBytes, 0, 'a buffer past a quarter of the budget is not kept');
  });

  it('a withdrawn request takes nothing, even when its buffer was already set aside', async () => {
    const buffers = new PartBuffers(100);
    const held = buffers.tryTake(100)!;
    let called = false;
    const cancel = buffers.wait(100, () => {
      called = true;
    });
    buffers.give(held); // sets a buffer aside for the waiter, handed over in a microtask
    cancel();
    await tick();
    assert.equal(called, false);
    assert.equal(buffers.stats().inUseBytes, 0);
    assert.equal(buffers.stats().waiting, 0);
  });

  it('cutters sharing a budget smaller than their needs all finish, with correct parts, within it', {
    timeout: 20_000,
  }, async () => {
    const partSize = 64 * KiB;
    const buffers = new PartBuffers(partSize); // one part for the whole process
    const sources = Array.from({ length: 6 }, (_, i) => randomBytes(5 * partSize + 1000 * i));
    const results = await Promise.all(
      sources.map(async (source, index) => {
        const sent = new Map<number, string>();
        const cutter = new PartCutter({
          firstPart: 1,
          plan: { size: partSize, grows: false },
          concurrency: 3,
          buffers,
          upload: async (n, body) => {
            await new Promise((resolve) => setTimeout(resolve, 1 + ((n + index) % 3)));
            sent.set(n, sha(body));
            return `etag-${n}`;
          },
        });
        // Chunks that straddle parts: a part fills up with bytes left over for the next one.
        for (let at = 0; at < source.length; at += 10_000) {
          cutter.push(source.subarray(at, at + 10_000));
          while (cutter.full) await new Promise<void>((resolve) => (cutter.onChange = resolve));
        }
        await cutter.settle();
        const rest = Buffer.from(cutter.takeRest());
        const parts = cutter.contiguous();
        cutter.close();
        return { source, sent, parts, rest };
      }),
    );
    for (const { source, sent, parts, rest } of results) {
      assert.equal(parts.length, 5);
      for (const part of parts) {
        assert.equal(sent.get(part.n), sha(source.subarray((part.n - 1) * partSize, part.n * partSize)));
      }
      assert.ok(rest.equals(source.subarray(5 * partSize)));
    }
    const stats = buffers.stats();
    assert.equal(stats.peakInUseBytes, partSize, 'never more than the budget');
    assert.ok(stats.waits > 0, 'cutters had to wait for the budget');
    assert.equal(stats.inUseBytes, 0);
    assert.equal(stats.waiting, 0);
  });

  it('a cutter that stops while waiting for a buffer keeps its bytes as the rest and gives everything back', async () => {
    const partSize = 64 * KiB;
    const buffers = new PartBuffers(partSize);
    const holder = buffers.tryTake(partSize)!;
    const cutter = new PartCutter({
      firstPart: 1,
      plan: { size: partSize, grows: false },
      concurrency: 2,
      buffers,
      upload: async (n) => `etag-${n}`,
    });
    const chunk = randomBytes(1000);
    cutter.push(chunk);
    assert.equal(cutter.full, true, 'the reader must wait: no buffer for these bytes');
    assert.equal(buffers.stats().waiting, 1);
    await cutter.settle();
    const rest = cutter.takeRest();
    assert.ok(rest.equals(chunk));
    cutter.close();
    assert.equal(buffers.stats().waiting, 0);
    buffers.give(holder);
    await tick();
    assert.equal(buffers.stats().inUseBytes, 0, 'the withdrawn request took no buffer');
  });
});
