import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { seededRandom } from '@ferry/testing';
import {
  type DigestAlgorithm,
  type DigestThread,
  inlineDigests,
  startDigestThread,
} from '../src/service/digest-thread.ts';

const KiB = 1024;

/** Pieces of `bytes` of sizes from 1 byte to 3× the batch size, as a network would deliver them. */
function pieces(bytes: Buffer, seed: number, maxPiece: number): Buffer[] {
  const random = seededRandom(seed);
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; ) {
    const size = Math.max(1, Math.floor(random() * maxPiece));
    out.push(bytes.subarray(at, at + size));
    at += size;
  }
  return out;
}

const threads: Array<[string, () => DigestThread]> = [
  ['worker thread', () => startDigestThread({ batchBytes: 64 * KiB, maxBufferBytes: 256 * KiB })],
  ['inline', () => inlineDigests()],
];

for (const [name, start] of threads) {
  describe(`digests (${name})`, () => {
    const thread = start();
    after(() => thread.close());

    for (const algorithm of ['sha256', 'sha1', 'md5'] as DigestAlgorithm[]) {
      it(`${algorithm} of pieces of every size equals node:crypto's`, async () => {
        const bytes = randomBytes(3 * 1024 * KiB + 17);
        const digest = thread.create(algorithm);
        for (const piece of pieces(bytes, 7, 200 * KiB)) digest.update(piece);
        assert.deepEqual(await digest.digest(), createHash(algorithm).update(bytes).digest());
      });
    }

    it('the same chunk given to two digests in a row counts for both', async () => {
      const bytes = randomBytes(2 * 1024 * KiB);
      const part = thread.create('sha256');
      const whole = thread.create('sha256');
      whole.update(Buffer.from('prefix'));
      for (const piece of pieces(bytes, 3, 70 * KiB)) {
        part.update(piece);
        whole.update(piece);
      }
      assert.deepEqual(await part.digest(), createHash('sha256').update(bytes).digest());
      assert.deepEqual(
        await whole.digest(),
        createHash('sha256').update(Buffer.from('prefix')).update(bytes).digest(),
      );
    });

    it('a chunk reused by the caller right after update does not change what was hashed', async () => {
      const chunk = Buffer.alloc(100 * KiB, 1);
      const digest = thread.create('sha256');
      digest.update(chunk);
      chunk.fill(2);
      digest.update(chunk);
      const expected = createHash('sha256')
        .update(Buffer.alloc(100 * KiB, 1))
        .update(Buffer.alloc(100 * KiB, 2))
        .digest();
      assert.deepEqual(await digest.digest(), expected);
    });

    it('copy continues from the state at the copy; the original goes on unchanged', async () => {
      const head = randomBytes(300 * KiB);
      const tailA = randomBytes(90 * KiB);
      const tailB = randomBytes(500 * KiB);
      const original = thread.create('sha256');
      original.update(head);
      const copy = original.copy();
      original.update(tailA);
      copy.update(tailB);
      const [a, b] = await Promise.all([original.digest(), copy.digest()]);
      assert.deepEqual(a, createHash('sha256').update(head).update(tailA).digest());
      assert.deepEqual(b, createHash('sha256').update(head).update(tailB).digest());
    });

    it('many digests interleaved, each correct', async () => {
      const sources = Array.from({ length: 12 }, (_, index) => randomBytes(64 * KiB * (index + 1) + index));
      const digests = sources.map(() => thread.create('sha256'));
      const lists = sources.map((source, index) => pieces(source, index + 11, 40 * KiB));
      for (let step = 0; lists.some((list) => step < list.length); step++) {
        lists.forEach((list, index) => {
          const piece = list[step];
          if (piece !== undefined) digests[index]!.update(piece);
        });
      }
      const results = await Promise.all(digests.map((digest) => digest.digest()));
      results.forEach((result, index) => {
        assert.deepEqual(result, createHash('sha256').update(sources[index]!).digest());
      });
    });

    it('a spent digest refuses more work; discard frees one without a result', async () => {
      const digest = thread.create('sha256');
      digest.update(Buffer.from('x'));
      await digest.digest();
      assert.throws(() => digest.update(Buffer.from('y')), /already finished/);
      await assert.rejects(digest.digest(), /already finished/);
      const dropped = thread.create('sha256');
      dropped.update(Buffer.from('z'));
      dropped.discard();
      assert.throws(() => dropped.copy(), /already finished/);
    });

    it('an empty digest is the digest of nothing', async () => {
      assert.deepEqual(await thread.create('sha256').digest(), createHash('sha256').digest());
    });
  });
}

describe('the hashing thread', () => {
  it('with a few small buffers, 16 MiB still hash right (update waits for the worker)', async () => {
    const thread = startDigestThread({ batchBytes: 16 * KiB, maxBufferBytes: 32 * KiB });
    try {
      const bytes = randomBytes(16 * 1024 * KiB);
      const digest = thread.create('sha256');
      for (const piece of pieces(bytes, 5, 64 * KiB)) digest.update(piece);
      assert.deepEqual(await digest.digest(), createHash('sha256').update(bytes).digest());
    } finally {
      await thread.close();
    }
  });

  it('close rejects what was not answered; the next digest starts a new worker', async () => {
    const thread = startDigestThread();
    const digest = thread.create('sha256');
    digest.update(randomBytes(64 * KiB));
    const closing = thread.close();
    await assert.rejects(digest.digest(), /hashing thread failed/);
    await closing;
    const next = thread.create('sha256');
    next.update(Buffer.from('again'));
    assert.deepEqual(await next.digest(), createHash('sha256').update('again').digest());
    await thread.close();
  });

  it('does not keep the process alive: a process that used it exits by itself', async () => {
    const module = new URL('../src/service/digest-thread.ts', import.meta.url).href;
    const script = `
      import { sharedDigestThread } from ${JSON.stringify(module)};
      const thread = sharedDigestThread();
      // Digests begun and never finished (an upload abandoned mid-way): nothing awaits them.
      const left = thread.create('sha256');
      left.update(new Uint8Array(300000));
      left.copy().update(new Uint8Array(10));
      console.log('started');
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
      timeout: 20_000,
      killSignal: 'SIGKILL',
    });
    assert.equal(stdout.trim(), 'started');
  });
});
