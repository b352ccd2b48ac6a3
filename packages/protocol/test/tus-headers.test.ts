import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  formatMetadata,
  parseChecksum,
  parseConcat,
  parseMetadata,
  parseNonNegativeInteger,
  UploadError,
} from '../src/index.ts';

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof UploadError) return error.code;
    throw error;
  }
  return undefined;
}

describe('Upload-Metadata', () => {
  it('decodes pairs, key-only entries and empty values', () => {
    assert.deepEqual(parseMetadata('filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential,empty '), {
      filename: 'world_domination_plan.pdf',
      is_confidential: '',
      empty: '',
    });
  });
  it('round-trips through formatMetadata', () => {
    const metadata = { name: 'r\u00e9sum\u00e9 \u{1f4c4}.txt', type: 'text/plain', flag: '' };
    assert.deepEqual(parseMetadata(formatMetadata(metadata)), metadata);
  });
  const bad = ['key not-base64!', 'a YQ==,a YQ==', ',', 'k\u00e9y YQ==', 'key YQ== extra', 'key Y'];
  for (const header of bad) {
    it(`refuses ${JSON.stringify(header)}`, () => {
      assert.equal(
        code(() => parseMetadata(header)),
        'ERR_INVALID_METADATA',
      );
    });
  }
  it('refuses an oversized header', () => {
    assert.equal(
      code(() => parseMetadata(`k ${'QUFB'.repeat(2000)}`, 4096)),
      'ERR_METADATA_TOO_LARGE',
    );
  });
});

describe('integer headers', () => {
  const cases: Array<[string, number | string]> = [
    ['0', 0],
    ['1024', 1024],
    ['-1', 'ERR_INVALID_OFFSET'],
    ['1.5', 'ERR_INVALID_OFFSET'],
    ['abc', 'ERR_INVALID_OFFSET'],
    ['', 'ERR_INVALID_OFFSET'],
    ['99999999999999999', 'ERR_INVALID_OFFSET'],
    ['0x10', 'ERR_INVALID_OFFSET'],
  ];
  for (const [input, expected] of cases) {
    it(`Upload-Offset ${JSON.stringify(input)} → ${expected}`, () => {
      if (typeof expected === 'number')
        assert.equal(parseNonNegativeInteger(input, 'ERR_INVALID_OFFSET'), expected);
      else
        assert.equal(
          code(() => parseNonNegativeInteger(input, 'ERR_INVALID_OFFSET')),
          expected,
        );
    });
  }
});

describe('Upload-Checksum', () => {
  it('parses a sha1 digest', () => {
    const parsed = parseChecksum('sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=');
    assert.equal(parsed?.algorithm, 'sha1');
    assert.equal(parsed?.digest.length, 20);
  });
  it('refuses an unknown algorithm with its own code', () => {
    assert.equal(
      code(() => parseChecksum('sha512 AAAA')),
      'ERR_UNSUPPORTED_CHECKSUM',
    );
  });
  it('refuses a digest of the wrong length', () => {
    assert.equal(
      code(() => parseChecksum('sha256 AAAA')),
      'ERR_INVALID_CHECKSUM',
    );
  });
});

describe('Upload-Concat', () => {
  it('parses partial and final', () => {
    assert.deepEqual(parseConcat('partial'), { kind: 'partial' });
    assert.deepEqual(parseConcat('final;/files/a http://x/files/b'), {
      kind: 'final',
      urls: ['/files/a', 'http://x/files/b'],
    });
  });
  it('refuses anything else', () => {
    assert.equal(
      code(() => parseConcat('final;')),
      'ERR_INVALID_CONCAT',
    );
    assert.equal(
      code(() => parseConcat('whole')),
      'ERR_INVALID_CONCAT',
    );
  });
});
