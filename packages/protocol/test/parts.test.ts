import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  acceptsSha256Digest,
  base64ToUtf8,
  bytesToBase64,
  defaultPartSize,
  formatSha256Digest,
  fromRanges,
  NO_PART_DIGEST,
  PART_LIMITS,
  parseSha256Digest,
  partCountOf,
  partRange,
  partSizeProblem,
  toRanges,
  utf8ToBase64,
} from '../src/index.ts';

const MiB = 1024 * 1024;

describe('part arithmetic', () => {
  it('cuts a size into parts whose last one holds the rest', () => {
    assert.equal(partCountOf(20 * MiB + 1, 5 * MiB), 5);
    assert.deepEqual(partRange(5, 20 * MiB + 1, 5 * MiB), { start: 20 * MiB, end: 20 * MiB + 1 });
    assert.deepEqual(partRange(2, 20 * MiB + 1, 5 * MiB), { start: 5 * MiB, end: 10 * MiB });
  });

  it('gives an empty file one empty part', () => {
    assert.equal(partCountOf(0, 8 * MiB), 1);
    assert.deepEqual(partRange(1, 0, 8 * MiB), { start: 0, end: 0 });
  });

  it('picks 8 MiB by default and doubles it to stay within 10,000 parts', () => {
    assert.equal(defaultPartSize(1), 8 * MiB);
    assert.equal(defaultPartSize(80_000 * MiB), 8 * MiB);
    assert.equal(defaultPartSize(80_000 * MiB + 1), 16 * MiB);
    const huge = 40 * 1024 * 1024 * MiB; // 40 TiB
    assert.ok(partCountOf(huge, defaultPartSize(huge)) <= PART_LIMITS.maxParts);
  });

  it('enforces S3 limits on a chosen part size', () => {
    assert.equal(partSizeProblem(10 * MiB, 5 * MiB), undefined);
    assert.equal(partSizeProblem(3 * MiB, 4 * MiB), undefined, 'one small part is fine');
    assert.match(partSizeProblem(10 * MiB, 4 * MiB) ?? '', /at least 5 MiB/);
    assert.match(partSizeProblem(60_000 * MiB, 5 * MiB) ?? '', /10,000/);
    assert.match(partSizeProblem(10, 0) ?? '', /positive integer/);
    assert.match(partSizeProblem(10, 1.5) ?? '', /positive integer/);
    assert.match(partSizeProblem(10 * 1024 * MiB, 6 * 1024 * MiB) ?? '', /5 GiB/);
  });

  it('turns part numbers into ranges and back', () => {
    assert.deepEqual(toRanges([1, 2, 3, 5, 7, 8]), [
      [1, 3],
      [5, 5],
      [7, 8],
    ]);
    assert.deepEqual(toRanges([]), []);
    assert.deepEqual(fromRanges(toRanges([1, 2, 3, 5, 7, 8])), [1, 2, 3, 5, 7, 8]);
  });
});

describe('RFC 9530 digests', () => {
  const digest = createHash('sha256').update('hello').digest();

  it('formats and parses sha-256', () => {
    const field = formatSha256Digest(digest);
    assert.equal(field, `sha-256=:${digest.toString('base64')}:`);
    assert.deepEqual(Buffer.from(parseSha256Digest(field) ?? []), digest);
  });

  it('finds sha-256 among other algorithms and ignores the others', () => {
    const field = `sha-512=:${Buffer.alloc(64).toString('base64')}:, SHA-256=:${digest.toString('base64')}:`;
    assert.deepEqual(Buffer.from(parseSha256Digest(field) ?? []), digest);
    assert.equal(parseSha256Digest(`sha-512=:${Buffer.alloc(64).toString('base64')}:`), undefined);
  });

  it('Want-Content-Digest declines sha-256 only with the weight 0', () => {
    assert.equal(acceptsSha256Digest(NO_PART_DIGEST), false);
    assert.equal(acceptsSha256Digest('sha-512=3, SHA-256=0'), false);
    for (const field of [
      undefined,
      '',
      'sha-256=1',
      'sha-256=10',
      'sha-512=0',
      'sha-256',
      'sha-256=0.5',
      'x',
    ]) {
      assert.equal(acceptsSha256Digest(field), true, String(field));
    }
  });

  it('refuses malformed values', () => {
    assert.throws(() => parseSha256Digest('sha-256=abc'), SyntaxError);
    assert.throws(() => parseSha256Digest('sha-256=:AAAA:'), SyntaxError, 'wrong length');
    assert.throws(() => parseSha256Digest('garbage'), SyntaxError);
  });
});

describe('base64 without Buffer', () => {
  it('round-trips UTF-8 text and matches Buffer', () => {
    for (const text of ['', 'a', 'Grüße, 世界 🚀', 'x'.repeat(100_000)]) {
      const encoded = utf8ToBase64(text);
      assert.equal(encoded, Buffer.from(text, 'utf8').toString('base64'));
      assert.equal(base64ToUtf8(encoded), text);
    }
    const bytes = new Uint8Array(70_000).map((_, i) => i % 256);
    assert.equal(bytesToBase64(bytes), Buffer.from(bytes).toString('base64'));
  });
});
