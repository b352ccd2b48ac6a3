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
 * The bucket key of a client address. An IPv6 client is usually given a whole /64 (RFC 4291 §2.5.1
 * interface ids; RFC 8981 temporary addresses change within it at will), so counting single
 * addresses would give it 2^64 fresh buckets: IPv6 addresses count by their /64, written
 * `a:b:c:d::/64` in lower-case hex without leading zeros. A link-local address (`fe80::/10`) is the
 * exception: every host on the link shares `fe80::/64`, so it counts whole (zone id included). IPv4
 * and IPv4-mapped IPv6 (`::ffff:192.0.2.1`) count as the IPv4 address. Anything that is not an IP
 * address (a proxy's `unknown`, an obfuscated `Forwarded` name) is its own key, as given.
 */
export function rateLimitKey(address: string): string {
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  if (ipv4Octets(bare) !== undefined) return bare;
  const zoneAt = bare.indexOf('%');
  const groups = ipv6Groups(zoneAt === -1 ? bare : bare.slice(0, zoneAt));
  if (groups === undefined) return address;
  const hex = groups.map((group) => group.toString(16));
  const mapped = groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff;
  if (mapped) {
    const [high = 0, low = 0] = groups.slice(6);
    return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
  }
  if (((groups[0] ?? 0) & 0xffc0) === 0xfe80) {
    return `${hex.join(':')}${zoneAt === -1 ? '' : bare.slice(zoneAt).toLowerCase()}`;
  }
  return `${hex.slice(0, 4).join(':')}::/64`;
}

/** The four octets of a dotted-quad IPv4 address (no leading zeros beyond a single 0); else undefined. */
function ipv4Octets(text: string): number[] | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const octets = parts.map((part) => (/^(?:0|[1-9][0-9]{0,2})$/.test(part) ? Number(part) : Number.NaN));
  return octets.every((octet) => octet <= 255) ? octets : undefined;
}

/** The eight 16-bit groups of an IPv6 address (without zone id), `::` and a dotted IPv4 tail expanded. */
function ipv6Groups(text: string): number[] | undefined {
  let rest = text;
  const tail: number[] = [];
  const lastColon = rest.lastIndexOf(':');
  if (lastColon === -1) return undefined;
  if (rest.includes('.', lastColon)) {
    const octets = ipv4Octets(rest.slice(lastColon + 1));
    if (octets === undefined) return undefined;
    tail.push(((octets[0] ?? 0) << 8) | (octets[1] ?? 0), ((octets[2] ?? 0) << 8) | (octets[3] ?? 0));
    // Keep the `::` of `::1.2.3.4`; drop the single separator of `::ffff:1.2.3.4`.
    rest = rest.endsWith('::', lastColon + 1) ? rest.slice(0, lastColon + 1) : rest.slice(0, lastColon);
  }
  const halves = rest.split('::');
  if (halves.length > 2) return undefined;
  const parse = (half: string | undefined): number[] | undefined => {
    if (half === undefined || half === '') return [];
    const groups: number[] = [];
    for (const group of half.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return undefined;
      groups.push(Number.parseInt(group, 16));
    }
    return groups;
  };
  const head = parse(halves[0]);
  const after = parse(halves[1]);
  if (head === undefined || after === undefined) return undefined;
  const given = head.length + after.length + tail.length;
  if (halves.length === 1) return given === 8 ? [...head, ...tail] : undefined;
  if (given > 7) return undefined;
  return [...head, ...new Array<number>(8 - given).fill(0), ...after, ...tail];
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
