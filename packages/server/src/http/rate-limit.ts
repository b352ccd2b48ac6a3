/**
 * Token buckets of the rate limit, in memory of this process: one bucket per key (a token subject,
 * or a client address). A bucket holds at most `burst` requests and refills at `perSecond`; a
 * request that finds it empty is refused with the whole seconds until one request is available
 * again. Idle buckets (full again) are forgotten, so memory follows the active clients only.
 */

export interface RateLimiter {
  /** Takes one request from `key`'s bucket: 0 when allowed, else the seconds to wait (≥ 1). */
  take(key: string): number;
  /** Buckets held now (tests, metrics). */
  readonly size: number;
}

export interface RateLimiterOptions {
  /** Requests per second a key may make, sustained (> 0). */
  perSecond: number;
  /** Requests a key may make at once after being idle (≥ 1). */
  burst: number;
  /** The clock in ms (tests). */
  now?: () => number;
  /** Buckets kept before full ones are dropped. Default 10,000. */
  pruneAbove?: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const { perSecond, burst } = options;
  const now = options.now ?? Date.now;
  const pruneAbove = options.pruneAbove ?? 10_000;
  const buckets = new Map<string, Bucket>();
  const refill = (bucket: Bucket, at: number) => {
    bucket.tokens = Math.min(burst, bucket.tokens + ((at - bucket.at) / 1000) * perSecond);
    bucket.at = at;
  };

  /** Drops every bucket that has refilled completely: such a key is as good as new. */
  function prune(at: number): void {
    for (const [key, bucket] of buckets) {
      refill(bucket, at);
      if (bucket.tokens >= burst) buckets.delete(key);
    }
  }

  return {
    take(key) {
      const at = now();
      let bucket = buckets.get(key);
      if (bucket === undefined) {
        if (buckets.size >= pruneAbove) prune(at);
        bucket = { tokens: burst, at };
        buckets.set(key, bucket);
      } else {
        refill(bucket, at);
      }
      if (bucket.tokens >= 1) {
        bucket.tokens -= 1;
        return 0;
      }
      return Math.max(1, Math.ceil((1 - bucket.tokens) / perSecond));
    },
    get size() {
      return buckets.size;
    },
  };
}

/**
 * The address a rate limit counts a request against. Behind a proxy (`trustProxy`), the address
 * the proxy in front of Ferry saw: the last entry of `Forwarded: for=` or `X-Forwarded-For` (the
 * entries before it are whatever the client sent, and can be forged). Otherwise the socket's peer.
 */
export function clientAddress(
  header: (name: string) => string | undefined,
  peer: string | undefined,
  trustProxy: boolean,
): string | undefined {
  if (trustProxy) {
    const forwarded = header('forwarded');
    if (forwarded !== undefined) {
      const last = forwarded.split(',').at(-1) ?? '';
      for (const part of last.split(';')) {
        const [key, raw] = part.split('=', 2).map((s) => s.trim());
        if (key?.toLowerCase() !== 'for' || !raw) continue;
        const value = raw.replace(/^"|"$/g, '');
        // `for="[2001:db8::1]:4711"` or `for=192.0.2.1:4711`: the port is not part of the client.
        const bracketed = /^\[([^\]]+)\]/.exec(value);
        if (bracketed?.[1]) return bracketed[1];
        return value.includes(':') && value.indexOf(':') === value.lastIndexOf(':')
          ? value.slice(0, value.indexOf(':'))
          : value;
      }
    }
    const xff = header('x-forwarded-for')?.split(',').at(-1)?.trim();
    if (xff) return xff;
  }
  if (peer === undefined) return undefined;
  // An IPv4 client of a dual-stack socket is the same client as over IPv4.
  return peer.startsWith('::ffff:') ? peer.slice(7) : peer;
}
