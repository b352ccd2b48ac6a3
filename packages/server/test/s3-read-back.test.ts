/**
 * The in-order read of a finished S3 object from parallel ranges (s3-read-back.ts): order, the bound
 * on requests in flight, and failures. The ranges come from a function over a buffer here; the S3
 * store's use of it is tested on the RGW in s3-data-store.test.ts.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  RangeBuffers,
  type RangeFetcher,
  readInOrder,
  sha256InOrder,
} from '../src/stores/s3/s3-read-back.ts';

const KiB = 1024;

/** Ranges of `source`, each answered after the ones asked before it (the worst order for a reader). */
function reversed(source: Buffer) {
  const pending: Array<() => void> = [];
  let inFlight = 0;
  let most = 0;
  const asked: Array<[number, number]> = [];
  const fetchRange: RangeFetcher = (start, end) => {
    asked.push([start, end]);
    inFlight += 1;
    most = Math.max(most, inFlight);
    return new Promise((resolve) => {
      pending.push(() => {
        inFlight -= 1;
        resolve(source.subarray(start, end + 1));
      });
      // Answer the newest request first, once every request that can be in flight has been made.
      setImmediate(() => {
        while (pending.length > 0) pending.pop()!();
      });
    });
  };
  return { fetchRange, asked, most: () => most };
}

describe('readInOrder', () => {
  it('hands out ranges in order whatever order they arrive in, with at most inFlight requested at once', async () => {
    const source = randomBytes(1000 * KiB + 3);
    const peer = reversed(source);
    const chunks: Buffer[] = [];
    for await (const chunk of readInOrder(
      peer.fetchRange,
      { start: 0, end: source.length - 1 },
      { rangeBytes: 64 * KiB, inFlight: 3 },
    )) {
      chunks.push(Buffer.from(chunk));
    }
    assert.ok(Buffer.concat(chunks).equals(source));
    assert.equal(peer.asked.length, 16, '1000 KiB + 3 in 64 KiB ranges');
    assert.ok(peer.most() <= 3, `at most 3 in flight, saw ${peer.most()}`);
    assert.ok(peer.most() > 1, 'ranges are requested in parallel');
    assert.equal(
      await sha256InOrder(reversed(source).fetchRange, source.length, { rangeBytes: 64 * KiB, inFlight: 5 }),
      createHash('sha256').update(source).digest('hex'),
    );
  });

  it('requests the next range only when the reader takes one', async () => {
    const source = randomBytes(640 * KiB);
    const peer = reversed(source);
    const reading = readInOrder(
      peer.fetchRange,
      { start: 0, end: source.length - 1 },
      {
        rangeBytes: 64 * KiB,
        inFlight: 2,
      },
    );
    await reading.next();
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(peer.asked.length, 3, 'two in flight plus the one handed out');
    await reading.return(undefined);
  });

  it('fails on a short range and on a failed request, aborting the requests still in flight', async () => {
    const source = randomBytes(512 * KiB);
    const short: RangeFetcher = async (start, end) => source.subarray(start, end);
    await assert.rejects(
      sha256InOrder(short, source.length, { rangeBytes: 64 * KiB }),
      /65535 bytes read, 65536 expected/,
    );

    const aborted: number[] = [];
    const failing: RangeFetcher = (start, end, signal) =>
      new Promise((resolve, reject) => {
        if (start === 64 * KiB) {
          setImmediate(() => reject(new Error('S3 went away')));
          return;
        }
        const timer = setTimeout(() => resolve(source.subarray(start, end + 1)), start === 0 ? 1 : 10_000);
        signal.addEventListener('abort', () => {
          clearTimeout(timer);
          aborted.push(start);
          reject(signal.reason);
        });
      });
    await assert.rejects(
      sha256InOrder(failing, source.length, { rangeBytes: 64 * KiB, inFlight: 4 }),
      /S3 went away/,
    );
    assert.ok(aborted.length >= 2, `the ranges still in flight were aborted (${aborted.length})`);
  });

  it("stops at the caller's abort", async () => {
    const source = randomBytes(256 * KiB);
    const abort = new AbortController();
    abort.abort(new Error('stopped by the caller'));
    await assert.rejects(
      sha256InOrder(reversed(source).fetchRange, source.length, {
        rangeBytes: 64 * KiB,
        signal: abort.signal,
      }),
      /stopped by the caller/,
    );
    await assert.rejects(
      readInOrder(reversed(source).fetchRange, { start: 0, end: 1 }, { rangeBytes: 10 }).next(),
      /rangeBytes must be at least 65536/,
    );
  });
});

describe('RangeBuffers', () => {
  it('hands a hashed buffer out again instead of a new one', () => {
    const buffers = new RangeBuffers(64 * KiB);
    const first = buffers.take();
    const second = buffers.take();
    assert.notEqual(first.buffer, second.buffer);
    buffers.give(first.subarray(0, 10));
    assert.equal(buffers.take().buffer, first.buffer, 'the short view gives back its whole buffer');
    assert.notEqual(buffers.take().buffer, second.buffer, 'one not given back is not handed out');
  });
});
