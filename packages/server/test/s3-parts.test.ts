/**
 * PartCutter (stores/s3/s3-parts.ts): a stream of chunks becomes parts of exactly the planned
 * size, uploaded `concurrency` at a time, each part's buffer used again only after its upload has
 * settled. The uploads are a function here; the store's use of it is tested on the RGW.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { PartBuffers } from '../src/stores/s3/s3-part-buffers.ts';
import { PartCutter, type StreamedPart } from '../src/stores/s3/s3-parts.ts';

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

  /** A streamed UploadPart that collects its body; `fail` makes it fail once it has `failAfter` bytes. */
  function fakeStream(log: string[], options: { failPart?: number; failAfter?: number } = {}) {
    const bodies = new Map<number, Buffer[]>();
    const stream = (n: number, size: number): StreamedPart => {
      log.push(`stream ${n} ${size}`);
      const chunks: Buffer[] = [];
      bodies.set(n, chunks);
      let received = 0;
      let settle: { resolve: (etag: string) => void; reject: (error: Error) => void };
      const done = new Promise<string>((resolve, reject) => {
        settle = { resolve, reject };
      });
      done.catch(() => {});
      return {
        write: (bytes) => {
          // The cutter keeps these bytes unchanged until the upload settles: copy to check later.
          chunks.push(Buffer.from(bytes));
          received += bytes.byteLength;
          if (n === options.failPart && received >= (options.failAfter ?? 0)) {
            log.push(`fail ${n}`);
            setImmediate(() => settle.reject(new Error(`S3 dropped the streamed part ${n}`)));
          }
        },
        end: () => {
          log.push(`end ${n}`);
          setImmediate(() => settle.resolve(`streamed-${n}`));
        },
        abort: () => {
          log.push(`abort ${n}`);
          settle.reject(new Error('aborted'));
        },
        done,
      };
    };
    return { stream, bodies };
  }

  async function feed(cutter: PartCutter, source: Buffer, step = 10_000): Promise<void> {
    for (let at = 0; at < source.length; at += step) {
      cutter.push(source.subarray(at, Math.min(source.length, at + step)));
      while (cutter.full) await new Promise<void>((resolve) => (cutter.onChange = resolve));
    }
  }

  /** A cutter of 64 KiB parts from part 1 whose parts may be streamed; `upload` sends whole ones. */
  function streamingCutter(options: {
    concurrency: number;
    stream: (n: number, size: number) => StreamedPart;
    expectedBytes: number;
    upload?: (n: number, body: Buffer) => Promise<string>;
  }): { cutter: PartCutter; buffers: PartBuffers } {
    const buffers = new PartBuffers(16 * 64 * KiB);
    const cutter = new PartCutter({
      firstPart: 1,
      plan: { size: 64 * KiB, grows: false },
      buffers,
      upload: async (n) => `etag-${n}`,
      ...options,
    });
    return { cutter, buffers };
  }

  it('streams a part the body will fill while it arrives, within the same concurrency, and keeps the rest', async () => {
    const partSize = 64 * KiB;
    const source = randomBytes(3 * partSize + 500);
    const log: string[] = [];
    const { stream, bodies } = fakeStream(log);
    const uploaded: number[] = [];
    const { cutter, buffers } = streamingCutter({
      // One slot: the streamed part takes it, and must not stop the body that fills it.
      concurrency: 1,
      upload: async (n) => {
        uploaded.push(n);
        return `etag-${n}`;
      },
      stream,
      expectedBytes: source.length,
    });
    await feed(cutter, source);
    await cutter.settle();
    assert.ok(cutter.takeRest().equals(source.subarray(3 * partSize)));
    assert.deepEqual(
      cutter.contiguous().map((part) => [part.n, part.size]),
      [
        [1, partSize],
        [2, partSize],
        [3, partSize],
      ],
    );
    for (const part of cutter.contiguous()) {
      // A part is streamed when the slot is free as its buffer starts, else uploaded whole.
      const body = bodies.get(part.n);
      if (body === undefined) assert.ok(uploaded.includes(part.n), `part ${part.n} was sent one way`);
      else {
        assert.equal(part.etag, `streamed-${part.n}`);
        const expected = source.subarray((part.n - 1) * partSize, part.n * partSize);
        assert.ok(Buffer.concat(body).equals(expected), `part ${part.n} was streamed whole and in order`);
      }
    }
    assert.ok(bodies.has(1), 'the first part was streamed');
    assert.ok(
      !log.some((line) => line.startsWith('stream 4')),
      'the tail, which the body does not fill, is not',
    );
    cutter.close();
    assert.equal(buffers.stats().inUseBytes, 0);
  });

  it('aborts the streamed part of a body that ends short, and keeps its bytes', async () => {
    const partSize = 64 * KiB;
    const log: string[] = [];
    const { stream } = fakeStream(log);
    const { cutter, buffers } = streamingCutter({ concurrency: 2, stream, expectedBytes: 2 * partSize });
    const sent = randomBytes(partSize + 1000);
    await feed(cutter, sent);
    await cutter.settle();
    assert.equal(cutter.failed, false);
    assert.deepEqual(log, ['stream 1 65536', 'end 1', 'stream 2 65536', 'abort 2']);
    assert.deepEqual(
      cutter.contiguous().map((part) => part.etag),
      ['streamed-1'],
    );
    assert.ok(cutter.takeRest().equals(sent.subarray(partSize)));
    cutter.close();
    assert.equal(buffers.stats().inUseBytes, 0);
  });

  it('uploads a part whole when its streamed request fails', async () => {
    const partSize = 64 * KiB;
    const source = randomBytes(2 * partSize);
    const log: string[] = [];
    const { stream } = fakeStream(log, { failPart: 1, failAfter: 20_000 });
    const wholes: Array<[number, string]> = [];
    const { cutter, buffers } = streamingCutter({
      concurrency: 2,
      upload: async (n, body) => {
        wholes.push([n, sha(body)]);
        return `etag-${n}`;
      },
      stream,
      expectedBytes: source.length,
    });
    await feed(cutter, source, 5000);
    await cutter.settle();
    assert.equal(cutter.failed, false);
    assert.deepEqual(wholes, [[1, sha(source.subarray(0, partSize))]]);
    assert.deepEqual(
      cutter.contiguous().map((part) => part.etag),
      ['etag-1', 'streamed-2'],
    );
    cutter.close();
    assert.equal(buffers.stats().inUseBytes, 0);
  });
});
