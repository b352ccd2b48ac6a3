/**
 * What the live region says: added, paused (and why), resumed, failed with the reason, finished,
 * and progress only when it passes a quarter — never once per percent.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { announcements, describeChange, progressStep } from '../src/announce.ts';
import {
  amountText,
  partsText,
  progressValueText,
  rateText,
  stateLabel,
  summaryText,
} from '../src/card-text.ts';
import { describeFailure } from '../src/failure.ts';
import { EMPTY_PROGRESS, type UploadItem } from '../src/snapshot.ts';

function item(patch: Partial<UploadItem> = {}, percent?: number): UploadItem {
  return {
    id: 'upload-1',
    name: 'report.pdf',
    size: 1000,
    type: 'application/pdf',
    file: undefined,
    state: 'uploading',
    offline: false,
    progress: { ...EMPTY_PROGRESS, totalBytes: 1000, percent, bytesConfirmed: (percent ?? 0) * 10 },
    error: undefined,
    result: undefined,
    uploadUrl: undefined,
    restored: false,
    ...patch,
  };
}

describe('progress steps', () => {
  it('are quarters', () => {
    assert.deepEqual(
      [undefined, 0, 1, 24, 25, 49, 50, 74, 75, 99, 100].map((p) => progressStep(p)),
      [0, 0, 0, 0, 25, 25, 50, 50, 75, 75, 100],
    );
  });

  it('a whole upload percent by percent is announced three times, then finished once', () => {
    const messages: string[] = [];
    let before = item({ state: 'creating' }, 0);
    for (let percent = 0; percent <= 100; percent++) {
      const after = percent === 100 ? item({ state: 'done' }, 100) : item({}, percent);
      messages.push(...announcements([before], [after]));
      before = after;
    }
    assert.deepEqual(messages, [
      'report.pdf: 25% uploaded.',
      'report.pdf: 50% uploaded.',
      'report.pdf: 75% uploaded.',
      'report.pdf finished uploading.',
    ]);
  });

  it('a jump over several steps is announced once, at the step reached', () => {
    assert.deepEqual(describeChange(item({}, 10), item({}, 80)), ['report.pdf: 75% uploaded.']);
  });

  it('no progress is announced while paused', () => {
    assert.deepEqual(describeChange(item({ state: 'paused' }, 10), item({ state: 'paused' }, 60)), []);
  });

  it('a resume that finds the server past a quarter says both, in order', () => {
    assert.deepEqual(describeChange(item({ state: 'paused' }, 45), item({ state: 'uploading' }, 52)), [
      'report.pdf resumed.',
      'report.pdf: 50% uploaded.',
    ]);
  });
});

describe('state changes', () => {
  const failure = describeFailure(Object.assign(new Error('x'), { code: 'ERR_RETRY_LIMIT' }), 'report.pdf');
  for (const [label, before, after, message] of [
    ['added', undefined, item({ state: 'idle' }), 'report.pdf added.'],
    ['paused', item(), item({ state: 'paused' }), 'report.pdf paused.'],
    [
      'paused offline',
      item(),
      item({ state: 'paused', offline: true }),
      'report.pdf paused: waiting for the network.',
    ],
    ['resumed', item({ state: 'paused' }), item({ state: 'uploading' }), 'report.pdf resumed.'],
    ['started', item({ state: 'idle' }), item({ state: 'creating' }), 'report.pdf started.'],
    ['failed', item(), item({ state: 'failed', error: failure }), `report.pdf failed. ${failure.message}`],
    ['retried', item({ state: 'failed' }), item({ state: 'creating' }), 'Retrying report.pdf.'],
    ['finished', item(), item({ state: 'done' }, 100), 'report.pdf finished uploading.'],
    ['cancelled', item(), item({ state: 'cancelled' }), 'report.pdf cancelled.'],
    [
      'waiting for its file after a reload',
      undefined,
      item({ state: 'needs-file', restored: true }),
      'report.pdf was not finished before the page reloaded. Choose it again to continue.',
    ],
    ['continued from a kept file', undefined, item({ restored: true }, 40), 'report.pdf continues from 40%.'],
    [
      're-attached to its earlier upload',
      item({ state: 'creating' }),
      item({ state: 'creating', restored: true }),
      'report.pdf continues where it stopped before the page reloaded.',
    ],
    ['unchanged', item({}, 30), item({}, 31), undefined],
  ] as const) {
    it(label, () => assert.deepEqual(describeChange(before, after), message === undefined ? [] : [message]));
  }

  it('an item that left the list says nothing; unchanged items are skipped by identity', () => {
    const a = item();
    const b = item({ id: 'upload-2', name: 'b.bin' });
    assert.deepEqual(announcements([a, b], [b]), []);
    assert.deepEqual(announcements([a], [a, b]), ['b.bin added.']);
    const list = [a];
    assert.deepEqual(announcements(list, list), []);
  });
});

describe('card text', () => {
  it('reads as a person would say it', () => {
    const uploading = item(
      {
        progress: {
          bytesConfirmed: 1_200_000_000,
          bytesInFlight: 8_000_000,
          totalBytes: 2_600_000_000,
          percent: 46,
          bytesPerSecond: 2_400_000,
          etaSeconds: 583.3,
          parts: { confirmed: 12, total: 40 },
        },
        size: 2_600_000_000,
      },
      46,
    );
    assert.deepEqual(amountText(uploading), { percent: '46%', bytes: '1.2 GB of 2.6 GB' });
    assert.equal(progressValueText(uploading), '46%, 1.2 GB of 2.6 GB');
    assert.deepEqual(rateText(uploading), { speed: '2.4 MB/s', eta: '9 min 44 s left' });
    assert.equal(partsText(uploading), 'Parts 12 of 40');
    assert.deepEqual(rateText({ ...uploading, state: 'paused' }), {}, 'no speed while paused');
    assert.equal(stateLabel({ state: 'paused', offline: true }), 'Waiting for the network');
    assert.equal(stateLabel({ state: 'needs-file', offline: false }), 'Waiting for the file');
    assert.equal(
      summaryText({ files: 3, done: 2, percent: 45, totalBytes: 2_600_000_000 }),
      '2 of 3 files uploaded · 45% of 2.6 GB',
    );
  });

  it('failures are explained in words, with the SDK error kept', () => {
    const error = Object.assign(new Error('create: the server answered 413'), {
      code: 'ERR_HTTP_STATUS',
      status: 413,
    });
    const failure = describeFailure(error, 'movie.mkv');
    assert.equal(failure.message, 'The server does not accept a file as large as movie.mkv.');
    assert.equal(failure.code, 'ERR_HTTP_STATUS');
    assert.equal(failure.error, error);
    assert.equal(failure.retryable, false, 'the same file gets the same answer');
    assert.equal(describeFailure({ code: 'ERR_RETRY_LIMIT' }, 'a').retryable, true);
    assert.equal(describeFailure({ code: 'ERR_HTTP_STATUS', status: 503 }, 'a').retryable, true);
    assert.equal(describeFailure({ code: 'ERR_VERIFICATION_FAILED' }, 'a').retryable, false);
    assert.equal(
      describeFailure(new TypeError('boom'), 'a.txt').message,
      'a.txt could not be uploaded. Retry, or add the file again.',
    );
    assert.match(describeFailure({ code: 'ERR_SOURCE_UNREADABLE' }, 'a.txt').message, /Choose it again/);
  });
});
