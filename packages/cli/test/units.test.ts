import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatDuration, formatSize, type OptionUnit, parseQuantity, UnitError } from '../src/units.ts';

describe('parseQuantity', () => {
  const good: Array<[string, OptionUnit, number]> = [
    ['0', 'bytes', 0],
    ['1048576', 'bytes', 1_048_576],
    ['5GiB', 'bytes', 5 * 1024 ** 3],
    ['10MB', 'bytes', 10_000_000],
    ['10mb', 'bytes', 10_000_000],
    ['1kB', 'bytes', 1000],
    ['1KiB', 'bytes', 1024],
    ['1.5KiB', 'bytes', 1536],
    ['1.5GiB', 'bytes', 1.5 * 1024 ** 3],
    ['5TiB', 'bytes', 5 * 1024 ** 4],
    ['2PB', 'bytes', 2 * 1000 ** 5],
    ['512 B', 'bytes', 512],
    [' 5 GiB ', 'bytes', 5 * 1024 ** 3],
    ['250', 'milliseconds', 250],
    ['250ms', 'milliseconds', 250],
    ['30s', 'milliseconds', 30_000],
    ['0.5s', 'milliseconds', 500],
    ['1.5m', 'milliseconds', 90_000],
    ['2h', 'milliseconds', 7_200_000],
    ['86400', 'seconds', 86_400],
    ['24h', 'seconds', 86_400],
    ['7d', 'seconds', 604_800],
    ['90s', 'seconds', 90],
    ['2000ms', 'seconds', 2],
    ['1080', 'count', 1080],
  ];
  for (const [text, unit, expected] of good) {
    it(`reads ${JSON.stringify(text)} as ${expected} ${unit}`, () => {
      assert.equal(parseQuantity(text, unit), expected);
    });
  }

  const bad: Array<[string, OptionUnit, RegExp]> = [
    ['', 'bytes', /is not a size/],
    ['-1', 'bytes', /is not a size/],
    ['lots', 'bytes', /is not a size/],
    ['1e6', 'bytes', /is not a size/],
    ['5XB', 'bytes', /unknown unit "XB".*KiB/],
    ['5s', 'bytes', /unknown unit "s"/],
    ['5GiB', 'milliseconds', /unknown unit "GiB".*duration/],
    ['5GB', 'count', /unknown unit "GB"/],
    ['1.5', 'bytes', /not a whole number/],
    ['1.3B', 'bytes', /not a whole number of bytes/],
    ['1500ms', 'seconds', /not a whole number of seconds/],
    ['0.5ms', 'milliseconds', /not a whole number of milliseconds/],
    ['99999999PiB', 'bytes', /too large/],
    ['12345678901234567890', 'count', /too large/],
  ];
  for (const [text, unit, message] of bad) {
    it(`refuses ${JSON.stringify(text)} as ${unit}`, () => {
      assert.throws(
        () => parseQuantity(text, unit),
        (error: unknown) => {
          assert.ok(error instanceof UnitError);
          assert.match(error.message, message);
          return true;
        },
      );
    });
  }
});

describe('formatSize and formatDuration', () => {
  it('use the largest unit that divides evenly', () => {
    assert.equal(formatSize(5 * 1024 ** 4), '5TiB');
    assert.equal(formatSize(16_384), '16KiB');
    assert.equal(formatSize(1000), '1000B');
    assert.equal(formatDuration(86_400_000), '1d');
    assert.equal(formatDuration(90_000), '90s');
    assert.equal(formatDuration(500), '500ms');
  });
  it('round-trip through parseQuantity', () => {
    for (const bytes of [1, 1024, 3 * 1024 ** 2, 5 * 1024 ** 4, 12_345])
      assert.equal(parseQuantity(formatSize(bytes), 'bytes'), bytes);
    for (const ms of [1, 1000, 60_000, 3_600_000, 86_400_000, 1234])
      assert.equal(parseQuantity(formatDuration(ms), 'milliseconds'), ms);
  });
});
