/**
 * A token bucket that caps the send rate (`limitRate`). Tokens are bytes, refilled at `bytesPerSecond`
 * up to a burst of a quarter second's worth (at least 64 KiB), so the rate holds over any window
 * longer than that. One bucket may be shared by many uploads (the CLI caps its whole run).
 */
import { sleep } from './retry.ts';

export interface RateLimiter {
  /** Resolves when `bytes` may be sent; rejects when `signal` aborts first. */
  take(bytes: number, signal?: AbortSignal): Promise<void>;
}

export function createRateLimiter(
  bytesPerSecond: number,
  now: () => number = () => performance.now(),
): RateLimiter {
  if (!(bytesPerSecond > 0) || !Number.isFinite(bytesPerSecond)) {
    throw new RangeError('limitRate must be a positive number of bytes per second');
  }
  const burst = Math.max(65_536, bytesPerSecond / 4);
  let tokens = burst;
  let refilledAt = now();
  // Waiters are served in order so one large request cannot starve small ones forever.
  let queue: Promise<void> = Promise.resolve();

  const refill = () => {
    const at = now();
    tokens = Math.min(burst, tokens + ((at - refilledAt) / 1000) * bytesPerSecond);
    refilledAt = at;
  };

  async function takeInOrder(bytes: number, signal?: AbortSignal): Promise<void> {
    let left = bytes;
    while (left > 0) {
      refill();
      const portion = Math.min(left, burst);
      if (tokens >= portion) {
        tokens -= portion;
        left -= portion;
        continue;
      }
      await sleep(Math.ceil(((portion - tokens) / bytesPerSecond) * 1000), signal);
    }
  }

  return {
    take(bytes, signal) {
      const turn = queue.then(() => takeInOrder(bytes, signal));
      queue = turn.catch(() => {});
      return turn;
    },
  };
}
