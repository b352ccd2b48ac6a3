/** The retry policy's pure rules: backoff bounds with full jitter, Retry-After, reset on progress, the final error. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { seededRandom } from '@ferry/testing';
import { ClientError } from '../src/core/errors.ts';
import {
  backoffBound,
  backoffDelay,
  DEFAULT_RETRY_POLICY,
  isRetryable,
  normalizeRetryPolicy,
  parseRetryAfter,
  RetryBudget,
  retryDelay,
  withRetry,
} from '../src/core/retry.ts';

const policy = normalizeRetryPolicy({ backoff: { initialMs: 100, maxMs: 1000, factor: 2 } });
const status = (code: number, retryAfterMs?: number) =>
  new ClientError('ERR_HTTP_STATUS', {
    status: code,
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  });

describe('backoff with full jitter', () => {
  it('bounds grow by the factor from initialMs and stop at maxMs', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map((failures) => backoffBound(policy.backoff, failures)),
      [100, 200, 400, 800, 1000, 1000],
    );
  });

  it('every delay lies in [0, bound) and they spread over the range', () => {
    const random = seededRandom(7);
    for (let failures = 1; failures <= 8; failures++) {
      const bound = backoffBound(policy.backoff, failures);
      const delays = Array.from({ length: 200 }, () => backoffDelay(policy, failures, random));
      for (const delay of delays) assert.ok(delay >= 0 && delay < bound, `${delay} outside [0, ${bound})`);
      assert.ok(Math.min(...delays) < bound * 0.1, 'some delays are short');
      assert.ok(Math.max(...delays) > bound * 0.9, 'some delays are near the bound');
    }
  });

  it('jitter "none" waits exactly the bound', () => {
    const none = normalizeRetryPolicy({
      jitter: 'none',
      backoff: { initialMs: 100, maxMs: 1000, factor: 3 },
    });
    assert.deepEqual(
      [1, 2, 3, 4].map((failures) => backoffDelay(none, failures)),
      [100, 300, 900, 1000],
    );
  });

  it('refuses a policy that makes no sense', () => {
    assert.throws(() => normalizeRetryPolicy({ limit: -1 }), { code: 'ERR_INVALID_OPTIONS' });
    assert.throws(() => normalizeRetryPolicy({ backoff: { initialMs: 10, maxMs: 5 } }), {
      code: 'ERR_INVALID_OPTIONS',
    });
  });
});

describe('Retry-After', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');

  it('delay-seconds', () => {
    assert.equal(parseRetryAfter('0', now), 0);
    assert.equal(parseRetryAfter('7', now), 7000);
    assert.equal(parseRetryAfter(' 120 ', now), 120_000);
  });

  it('an HTTP date, relative to now, never negative', () => {
    assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now), 30_000);
    assert.equal(parseRetryAfter('Wed, 31 Dec 2025 23:59:00 GMT', now), 0);
  });

  it('absent or malformed → undefined (the backoff applies)', () => {
    for (const value of [undefined, '', '-1', '1.5', 'soon', '2026-01-01T00:00:30Z']) {
      assert.equal(parseRetryAfter(value, now), undefined, String(value));
    }
  });

  it('replaces the backoff when present, unless respectRetryAfter is false', () => {
    assert.equal(retryDelay(policy, 1, status(429, 5000)), 5000);
    assert.equal(retryDelay(policy, 1, status(503, 0)), 0);
    const ignoring = normalizeRetryPolicy({ respectRetryAfter: false, jitter: 'none' });
    assert.equal(retryDelay(ignoring, 1, status(429, 5000)), ignoring.backoff.initialMs);
  });
});

describe('what is retried', () => {
  it('the default status codes, network errors, timeouts and stalls; not other 4xx nor aborts', () => {
    for (const code of [408, 409, 423, 429, 460, 500, 502, 503, 504]) {
      assert.ok(isRetryable(DEFAULT_RETRY_POLICY, status(code)), String(code));
    }
    for (const code of [400, 401, 403, 404, 410, 413, 415]) {
      assert.ok(!isRetryable(DEFAULT_RETRY_POLICY, status(code)), String(code));
    }
    for (const code of ['ERR_NETWORK', 'ERR_TIMEOUT', 'ERR_STALLED'] as const) {
      assert.ok(isRetryable(DEFAULT_RETRY_POLICY, new ClientError(code)), code);
    }
    assert.ok(!isRetryable(DEFAULT_RETRY_POLICY, new ClientError('ERR_SOURCE_UNREADABLE')));
    assert.ok(!isRetryable(DEFAULT_RETRY_POLICY, new DOMException('stop', 'AbortError')));
    assert.ok(!isRetryable(DEFAULT_RETRY_POLICY, new Error('a bug')));
  });
});

describe('RetryBudget', () => {
  it('counts failures in a row and gives up after the limit, naming the last cause', () => {
    const budget = new RetryBudget(normalizeRetryPolicy({ limit: 3 }), () => 0);
    budget.failed(status(503));
    budget.failed(new ClientError('ERR_NETWORK'));
    budget.failed(status(502));
    assert.throws(
      () => budget.failed(status(500)),
      (error: ClientError) => {
        assert.equal(error.code, 'ERR_RETRY_LIMIT');
        assert.equal(error.status, 500);
        assert.match(error.message, /4 failed attempts/);
        assert.match(error.message, /last cause: ERR_HTTP_STATUS 500/);
        assert.ok(error.cause instanceof ClientError);
        return true;
      },
    );
  });

  it('starts over whenever bytes were confirmed', () => {
    const budget = new RetryBudget(normalizeRetryPolicy({ limit: 2 }), () => 0);
    for (let round = 0; round < 10; round++) {
      budget.failed(new ClientError('ERR_STALLED'));
      budget.failed(new ClientError('ERR_STALLED'));
      assert.equal(budget.failures, 2);
      budget.confirmed();
      assert.equal(budget.failures, 0);
    }
  });

  it('the backoff grows with failures in a row and falls back after a confirmation', () => {
    const budget = new RetryBudget(
      normalizeRetryPolicy({ jitter: 'none', backoff: { initialMs: 10, factor: 2 } }),
    );
    assert.deepEqual(
      [1, 2, 3].map(() => budget.failed(status(503))),
      [10, 20, 40],
    );
    budget.confirmed();
    assert.equal(budget.failed(status(503)), 10);
  });

  it('rethrows what must not be retried, unchanged', () => {
    const budget = new RetryBudget(DEFAULT_RETRY_POLICY);
    const forbidden = status(403);
    assert.throws(
      () => budget.failed(forbidden),
      (error) => error === forbidden,
    );
    assert.equal(budget.failures, 0);
  });

  it('limit 0 never retries', () => {
    const budget = new RetryBudget(normalizeRetryPolicy({ limit: 0 }));
    assert.throws(() => budget.failed(status(503)), { code: 'ERR_RETRY_LIMIT' });
  });
});

describe('withRetry', () => {
  it('retries until success and reports each retry', async () => {
    const events: number[] = [];
    let calls = 0;
    const value = await withRetry(
      'test',
      async () => {
        calls += 1;
        if (calls < 3) throw status(503, 1);
        return 'ok';
      },
      {
        budget: new RetryBudget(DEFAULT_RETRY_POLICY),
        signal: new AbortController().signal,
        onRetry: (event) => events.push(event.attempt),
      },
    );
    assert.equal(value, 'ok');
    assert.deepEqual(events, [1, 2]);
  });

  it('an abort during the wait ends it with the abort reason', async () => {
    const controller = new AbortController();
    const reason = new Error('paused');
    const run = withRetry(
      'test',
      async () => {
        throw status(503, 60_000);
      },
      { budget: new RetryBudget(DEFAULT_RETRY_POLICY), signal: controller.signal, onRetry: () => {} },
    );
    setTimeout(() => controller.abort(reason), 10);
    await assert.rejects(run, (error) => error === reason);
  });
});
