/** File rules and the words they are explained in: each message names the file and the rule. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatBytes, formatBytesApart, formatDuration, formatRate } from '../src/format.ts';
import { checkFiles, describeAccept, describeRules, isAccepted } from '../src/validate.ts';

const GB = 1000 ** 3;

function file(name: string, size: number, type = '', lastModified = 1): File {
  // A File whose size is claimed, not allocated (3.2 GB of zeros would not fit the test).
  return { name, size, type, lastModified } as File;
}

describe('formatBytes', () => {
  for (const [bytes, text] of [
    [0, '0 bytes'],
    [1, '1 byte'],
    [999, '999 bytes'],
    [1000, '1 kB'],
    [1500, '1.5 kB'],
    [99_949, '99.9 kB'],
    [999_499, '999 kB'],
    [999_500, '1 MB'],
    [12_500_000, '12.5 MB'],
    [240_400_000, '240 MB'],
    [3.2 * GB, '3.2 GB'],
    [2 * GB, '2 GB'],
    [5 * 1000 ** 4, '5 TB'],
  ] as const) {
    it(`${bytes} → ${text}`, () => assert.equal(formatBytes(bytes), text));
  }

  it('two sizes that would read the same are given in bytes', () => {
    assert.deepEqual(formatBytesApart(2_147_483_649, 2_147_483_648), [
      '2,147,483,649 bytes',
      '2,147,483,648 bytes',
    ]);
    assert.deepEqual(formatBytesApart(3.2 * GB, 2 * GB), ['3.2 GB', '2 GB']);
  });

  it('rates and durations', () => {
    assert.equal(formatRate(2_400_000), '2.4 MB/s');
    for (const [seconds, text] of [
      [0.4, 'less than a second'],
      [44.2, '45 s'],
      [60, '1 min'],
      [200, '3 min 20 s'],
      [3600, '1 h'],
      [3900, '1 h 5 min'],
      [100_000, '1 d 4 h'],
      [Number.NaN, 'unknown'],
    ] as const) {
      assert.equal(formatDuration(seconds), text, String(seconds));
    }
  });
});

describe('accept', () => {
  it('matches extensions, media types and wildcards like a file chooser, ignoring case', () => {
    const accept = 'image/*, .PDF,application/zip';
    assert.equal(isAccepted({ name: 'photo.jpg', type: 'image/jpeg' }, accept), true);
    assert.equal(isAccepted({ name: 'report.pdf', type: '' }, accept), true);
    assert.equal(isAccepted({ name: 'bundle.bin', type: 'application/zip' }, accept), true);
    assert.equal(isAccepted({ name: 'notes.exe', type: 'application/x-msdownload' }, accept), false);
    assert.equal(isAccepted({ name: 'anything', type: '' }, undefined), true);
    assert.equal(isAccepted({ name: 'anything', type: '' }, ' , '), true);
  });

  it('is described in words', () => {
    assert.equal(describeAccept('image/*,.pdf'), 'images and .pdf files');
    assert.equal(describeAccept('.pdf,.docx,application/pdf'), '.pdf, .docx or PDF files');
    assert.equal(describeAccept('video/*,audio/*'), 'videos and audio files');
    assert.equal(describeAccept('application/vnd.ms-excel'), 'application/vnd.ms-excel files');
  });
});

describe('checkFiles', () => {
  it('names the file and the rule it broke', () => {
    const { accepted, rejected } = checkFiles(
      [
        file('report.pdf', 3.2 * GB, 'application/pdf'),
        file('notes.exe', 10, 'application/x-msdownload'),
        file('photo.jpg', 2_000_000, 'image/jpeg'),
      ],
      { accept: 'image/*,.pdf', maxSize: 2 * GB },
    );
    assert.deepEqual(
      accepted.map((f) => f.name),
      ['photo.jpg'],
    );
    assert.deepEqual(
      rejected.map(({ reason, message }) => [reason, message]),
      [
        ['size', 'report.pdf is 3.2 GB; the limit is 2 GB.'],
        ['type', "notes.exe can't be uploaded here: only images and .pdf files are accepted."],
      ],
    );
  });

  it('counts the files already listed against maxFiles, and refuses duplicates', () => {
    const listed = [file('a.txt', 1)];
    const { accepted, rejected } = checkFiles(
      [file('a.txt', 1), file('b.txt', 2), file('b.txt', 2), file('c.txt', 3)],
      { maxFiles: 2 },
      listed,
    );
    assert.deepEqual(
      accepted.map((f) => f.name),
      ['b.txt'],
    );
    assert.deepEqual(
      rejected.map(({ message }) => message),
      [
        'a.txt is already in the list.',
        'b.txt is already in the list.',
        'c.txt was not added: the limit is 2 files.',
      ],
    );
    assert.equal(
      checkFiles([file('x', 1), file('y', 1)], { maxFiles: 1 }).rejected[0]?.message,
      'y was not added: the limit is one file.',
    );
  });

  it('a file of another modification time is not a duplicate; a size at the limit passes', () => {
    const { accepted } = checkFiles([file('a.txt', 5, '', 2), file('b', 2 * GB)], { maxSize: 2 * GB }, [
      file('a.txt', 5, '', 1),
    ]);
    assert.equal(accepted.length, 2);
  });

  it('the rules as a hint', () => {
    assert.equal(
      describeRules({ accept: 'image/*,.pdf', maxSize: 2 * GB, maxFiles: 5 }),
      'Images and .pdf files; up to 2 GB each; at most 5 files.',
    );
    assert.equal(describeRules({ maxSize: 50_000_000 }), 'Up to 50 MB each.');
    assert.equal(describeRules({}), '');
  });
});
