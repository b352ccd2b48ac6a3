/**
 * The retry policy is data, not code: what is retried, how often and how long to wait. The
 * transports apply it; the scheduler never retries (a queue schedules, a transport knows which
 * server state to re-read before it sends again).
 *
 * Rules (docs/client.md "Retry policy"):
 * - An answer whose status is in `statusCodes`, and a network error, timeout or stall, is tried
 *   again; any other 4xx fails the upload at once (it will not get better).
 * - The wait is exponential with full jitter: a random time in [0, min(maxMs, initialMs·factorⁿ⁻¹)].
 * - `Retry-After` (seconds or an HTTP date), when present and `respectRetryAfter`, replaces the wait.
 * - `limit` counts failures in a row: whenever the server confirms new bytes, the count starts over,
 *   so a long upload over a flaky link is never given up while it still moves.
 * - After `limit` failures in a row the upload fails with `ERR_RETRY_LIMIT`, naming the last cause.
 * - Before anything is sent again the transport re-reads the server's state (tus HEAD, parts GET):
 *   a 409 or 423 means "someone else's view of the offset was wrong", never "start over".
 */
import { ClientError, isAbortError, isClientError } from './errors.ts';

export interface BackoffPolicy {
  /** Upper bound of the first wait, in ms. Default 500. */
  initialMs: number;
  /** Largest upper bound of a wait, in ms. Default 30000. */
  maxMs: number;
  /** Growth of the upper bound per failure. Default 2. */
  factor: number;
}

export interface RetryPolicy {
  /** Failures in a row before giving up (0 = never retry). Reset whenever bytes were confirmed. Default 8. */
  limit: number;
  /** HTTP statuses that are tried again. Default 408, 409, 423, 425, 429, 460, 500, 502, 503, 504. */
  statusCodes: readonly number[];
  backoff: BackoffPolicy;
  /** `full`: wait a random time up to the bound (spreads clients apart); `none`: wait the bound. Default `full`. */
  jitter: 'full' | 'none';
  /** Wait what a `Retry-After` header asks for instead of the backoff. Default true. */
  respectRetryAfter: boolean;
}

export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({
  limit: 8,
  statusCodes: Object.freeze([408, 409, 423, 425, 429, 460, 500, 502, 503, 504]),
  backoff: Object.freeze({ initialMs: 500, maxMs: 30_000, factor: 2 }),
  jitter: 'full',
  respectRetryAfter: true,
});

export type RetryPolicyOptions = Partial<Omit<RetryPolicy, 'backoff'>> & { backoff?: Partial<BackoffPolicy> };

export function normalizeRetryPolicy(options: RetryPolicyOptions = {}): RetryPolicy {
  const policy: RetryPolicy = {
    ...DEFAULT_RETRY_POLICY,
    ...options,
    backoff: { ...DEFAULT_RETRY_POLICY.backoff, ...options.backoff },
  };
  const { backoff } = policy;
  if (!Number.isInteger(policy.limit) || policy.limit < 0) {
    throw new ClientError('ERR_INVALID_OPTIONS', { message: 'retry.limit must be a non-negative integer' });
  }
  if (!(backoff.initialMs >= 0 && backoff.maxMs >= backoff.initialMs && backoff.factor >= 1)) {
    throw new ClientError('ERR_INVALID_OPTIONS', {
      message: 'retry.backoff needs 0 ≤ initialMs ≤ maxMs and factor ≥ 1',
    });
  }
  return policy;
}

/** Upper bound of the wait before attempt `failures + 1` (`failures` ≥ 1). */
export function backoffBound(backoff: BackoffPolicy, failures: number): number {
  return Math.min(backoff.maxMs, backoff.initialMs * backoff.factor ** Math.max(0, failures - 1));
}

/** The wait after the `failures`-th failure in a row, in ms. `random` returns [0, 1). */
export function backoffDelay(
  policy: RetryPolicy,
  failures: number,
  random: () => number = Math.random,
): number {
  const bound = backoffBound(policy.backoff, failures);
  return policy.jitter === 'full' ? Math.floor(random() * bound) : bound;
}

/**
 * `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP date. Returns ms to wait (never
 * negative), or `undefined` when absent or malformed.
 */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // An HTTP date always names a weekday and GMT; Date.parse alone accepts far too much.
  if (!/^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(trimmed)) return undefined;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Whether another attempt may help. Aborts (pause, cancel) are never retried. */
export function isRetryable(policy: RetryPolicy, error: unknown): boolean {
  if (isAbortError(error) || !isClientError(error)) return false;
  // A refused token does not get better by sending it again (an expired one was renewed already),
  // nor does a refused file type: the same bytes are refused again.
  if (error.code === 'ERR_UNAUTHORIZED' || error.code === 'ERR_TYPE_NOT_ALLOWED') return false;
  if (error.status !== undefined) return policy.statusCodes.includes(error.status);
  return error.retryable;
}

/** The wait before the next attempt after `error`, the `failures`-th failure in a row. */
export function retryDelay(
  policy: RetryPolicy,
  failures: number,
  error: unknown,
  random: () => number = Math.random,
): number {
  if (policy.respectRetryAfter && isClientError(error) && error.retryAfterMs !== undefined) {
    return error.retryAfterMs;
  }
  return backoffDelay(policy, failures, random);
}

export function describeError(error: unknown): string {
  if (isClientError(error)) {
    const status = error.status === undefined ? '' : ` ${error.status}`;
    const server = error.serverCode === undefined ? '' : ` ${error.serverCode}`;
    return `${error.code}${status}${server}: ${error.message}`;
  }
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/**
 * Counts failures in a row for one stream of work (a tus upload, one part). `confirmed()` starts the
 * count over; `failed()` returns the wait before the next attempt, or throws the final error.
 */
export class RetryBudget {
  readonly #policy: RetryPolicy;
  readonly #random: () => number;
  #failures = 0;

  constructor(policy: RetryPolicy, random: () => number = Math.random) {
    this.#policy = policy;
    this.#random = random;
  }

  get failures(): number {
    return this.#failures;
  }

  /** The server confirmed new bytes: the next failure is the first again. */
  confirmed(): void {
    this.#failures = 0;
  }

  /** Records `error`; returns the wait in ms, or throws when it must not (or no longer) be retried. */
  failed(error: unknown): number {
    if (!isRetryable(this.#policy, error)) throw error;
    this.#failures += 1;
    if (this.#failures > this.#policy.limit) {
      throw new ClientError('ERR_RETRY_LIMIT', {
        message: `gave up after ${this.#failures} failed attempts in a row; last cause: ${describeError(error)}`,
        cause: error,
        ...(isClientError(error) && error.status !== undefined ? { status: error.status } : {}),
        ...(isClientError(error) && error.serverCode !== undefined ? { serverCode: error.serverCode } : {}),
      });
    }
    return retryDelay(this.#policy, this.#failures, error, this.#random);
  }
}

export interface RetryEvent {
  /** What was being done: `create`, `head`, `patch`, `part 3`, `complete`, … */
  operation: string;
  /** Failures in a row so far (1 for the first retry). */
  attempt: number;
  /** The wait before the next attempt, in ms. */
  delayMs: number;
  error: unknown;
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Runs `attempt` until it succeeds, under `budget`. For requests whose retry needs no re-read of
 * server state (creation, a part, completion); the tus transport runs its own loop around HEAD.
 */
export async function withRetry<T>(
  operation: string,
  attempt: () => Promise<T>,
  context: { budget: RetryBudget; signal: AbortSignal; onRetry: (event: RetryEvent) => void },
): Promise<T> {
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (context.signal.aborted) throw context.signal.reason;
      const delayMs = context.budget.failed(error);
      context.onRetry({ operation, attempt: context.budget.failures, delayMs, error });
      await sleep(delayMs, context.signal);
    }
  }
}
