/**
 * The fault proxy's rules: the documented shape a test passes, its one normalization into frozen
 * active rules, and the per-request decisions (answer, stall or forward) taken from them.
 * docs/fault-proxy.md describes every field.
 */
import type { RequestHead } from './fault-proxy-http.ts';
import { type LaneSettings, TokenBucket } from './fault-proxy-lane.ts';

/** Which requests a rule applies to; an absent field matches every request. */
export interface RequestMatch {
  /** The method exactly as sent on the wire, e.g. `PATCH`. */
  method?: string;
  /** A prefix of the request target's path (query excluded), e.g. `/files/`. */
  pathPrefix?: string;
}

/** Selects matching requests by position: shared by injected responses and stalls. */
export interface RequestSelector {
  match?: RequestMatch;
  /** Fire on every Kth matching request (K, 2K, …). Default 1: every matching request. */
  every?: number;
  /** Fire at most this many times in all. Default: no limit. */
  count?: number;
}

/**
 * An HTTP response the proxy writes itself instead of forwarding the request; the connection is
 * closed afterwards (`Connection: close`) and the server never sees the request.
 */
export interface InjectedResponse extends RequestSelector {
  /** An error status, 400–599. */
  status: number;
  /** `Retry-After` value, sent as given (seconds or an HTTP date). Default: no header. */
  retryAfter?: string;
  /** Body sent as `text/plain`. Default: `{"error":{"code":"ERR_INJECTED","message":…}}` as JSON. */
  body?: string;
  /** Extra header fields; they replace the proxy's own fields of the same name. */
  headers?: Readonly<Record<string, string>>;
}

/** Stalls the link under a matching request: nothing more moves either way until someone closes. */
export interface InjectedStall extends RequestSelector {
  /** Body bytes of the request forwarded before the stall. Default: none, not even the head. */
  afterBodyBytes?: number;
}

export interface FaultRules {
  /** One-way delay added to each direction, in ms; the round trip grows by twice this. Default 0. */
  latencyMs?: number;
  /** Rate limit per connection and direction, in bytes/s. Default: none. */
  bandwidthBytesPerSec?: number;
  /** Rate limit shared by all connections, per direction, in bytes/s. Default: none. */
  totalBandwidthBytesPerSec?: number;
  /**
   * Window per connection and direction, in bytes: at most this many bytes sent but not yet
   * acknowledged, an acknowledgement arriving `2 × latencyMs` after its byte was sent. Default: none.
   */
  maxInFlightBytes?: number;
  /** Cut the connection whenever the client→server count across ALL connections passes another N. */
  cutEveryBytes?: number;
  /** Moves each `cutEveryBytes` boundary by a seeded random amount in ±this. Default 0. */
  cutJitterBytes?: number;
  /** Seed of the jitter's pseudo-random sequence. Default 1. */
  seed?: number;
  /** Cut each connection once it has carried this many client→server bytes. Default: never. */
  cutAfterBytes?: number;
  /** Stall each connection once it has carried this many client→server bytes. Default: never. */
  stallAfterBytes?: number;
  /**
   * Scopes the byte counting of `cutEveryBytes`, `cutAfterBytes` and `stallAfterBytes` to the heads
   * and bodies of matching requests. Default: every byte counts.
   */
  match?: RequestMatch;
  /** Responses to inject; the first rule that fires answers the request. */
  respond?: InjectedResponse | readonly InjectedResponse[];
  /** Stalls keyed to requests; consulted after `respond`. */
  stall?: InjectedStall | readonly InjectedStall[];
}

interface Selected<R extends RequestSelector> {
  readonly rule: R;
  seen: number;
  fired: number;
}

/** The normalized rules of one `setFaults` call; counters start at zero with each call. */
export interface ActiveRules {
  readonly up: LaneSettings;
  readonly down: LaneSettings;
  readonly cutEveryBytes: number | undefined;
  readonly cutAfterBytes: number | undefined;
  readonly stallAfterBytes: number | undefined;
  readonly match: RequestMatch | undefined;
  /** Where the next `cutEveryBytes` boundary lies after `previous`. */
  nextCutBoundary(previous: number): number;
  decide(head: RequestHead): Decision;
}

export type Decision =
  | { kind: 'forward' }
  | { kind: 'respond'; response: InjectedResponse }
  | { kind: 'stall'; afterBodyBytes: number | undefined };

const FORWARD: Decision = Object.freeze({ kind: 'forward' });
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const FIELD_VALUE = /^[^\r\n\0]*$/;

export function matches(match: RequestMatch | undefined, head: RequestHead): boolean {
  if (match === undefined) return true;
  if (match.method !== undefined && head.method !== match.method) return false;
  return match.pathPrefix === undefined || head.path.startsWith(match.pathPrefix);
}

export function activateRules(rules: FaultRules): ActiveRules {
  const latencyMs = optionalNumber(rules, 'latencyMs', 0) ?? 0;
  const bytesPerSec = optionalNumber(rules, 'bandwidthBytesPerSec', 1);
  const totalBytesPerSec = optionalNumber(rules, 'totalBandwidthBytesPerSec', 1);
  const windowBytes = optionalNumber(rules, 'maxInFlightBytes', 1);
  const cutEveryBytes = optionalNumber(rules, 'cutEveryBytes', 1);
  const jitter = optionalNumber(rules, 'cutJitterBytes', 0) ?? 0;
  if (cutEveryBytes !== undefined && jitter * 2 >= cutEveryBytes) {
    throw new RangeError('fault proxy: cutJitterBytes must be less than half of cutEveryBytes');
  }
  const random = seededRandom(optionalNumber(rules, 'seed', 0) ?? 1);
  const lane = (): LaneSettings =>
    Object.freeze({
      latencyMs,
      windowBytes,
      bytesPerSec,
      shared: totalBytesPerSec === undefined ? undefined : new TokenBucket(totalBytesPerSec),
    });
  const respond = listOf(rules.respond).map((rule) => selected(checkResponse(rule)));
  const stall = listOf(rules.stall).map((rule) => {
    optionalNumber(rule, 'afterBodyBytes', 0);
    return selected(checkSelector(rule, 'stall'));
  });
  return Object.freeze({
    up: lane(),
    down: lane(),
    cutEveryBytes,
    cutAfterBytes: optionalNumber(rules, 'cutAfterBytes', 1),
    stallAfterBytes: optionalNumber(rules, 'stallAfterBytes', 1),
    match: checkMatch(rules.match, 'match'),
    nextCutBoundary(previous: number): number {
      const every = cutEveryBytes ?? Number.POSITIVE_INFINITY;
      return previous + every + Math.round((random() * 2 - 1) * jitter);
    },
    decide(head: RequestHead): Decision {
      for (const entry of respond) {
        if (fires(entry, head)) return { kind: 'respond', response: entry.rule };
      }
      for (const entry of stall) {
        if (fires(entry, head)) return { kind: 'stall', afterBodyBytes: entry.rule.afterBodyBytes };
      }
      return FORWARD;
    },
  });
}

const REASONS: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Content Too Large',
  423: 'Locked',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** The complete response for `response`, written in place of the server's answer to `method`. */
export function injectedResponseBytes(response: InjectedResponse, method: string): Buffer {
  const body = Buffer.from(
    response.body ??
      JSON.stringify({
        error: { code: 'ERR_INJECTED', message: `Injected ${response.status} response from the fault proxy` },
      }),
  );
  const fields = new Map<string, [string, string]>();
  const set = (name: string, value: string) => fields.set(name.toLowerCase(), [name, value]);
  set('Content-Type', response.body === undefined ? 'application/json' : 'text/plain; charset=utf-8');
  set('Content-Length', String(body.length));
  set('Connection', 'close');
  if (response.retryAfter !== undefined) set('Retry-After', response.retryAfter);
  for (const [name, value] of Object.entries(response.headers ?? {})) set(name, value);
  const lines = [`HTTP/1.1 ${response.status} ${REASONS[response.status] ?? 'Injected Fault'}`];
  for (const [name, value] of fields.values()) lines.push(`${name}: ${value}`);
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  // A response to HEAD has no content (RFC 9110 §9.3.2), whatever its Content-Length says.
  return method === 'HEAD' ? head : Buffer.concat([head, body]);
}

function fires<R extends RequestSelector>(entry: Selected<R>, head: RequestHead): boolean {
  if (!matches(entry.rule.match, head)) return false;
  entry.seen += 1;
  if (entry.seen % (entry.rule.every ?? 1) !== 0) return false;
  if (entry.rule.count !== undefined && entry.fired >= entry.rule.count) return false;
  entry.fired += 1;
  return true;
}

function selected<R extends RequestSelector>(rule: R): Selected<R> {
  return { rule: Object.freeze({ ...rule }), seen: 0, fired: 0 };
}

function listOf<T>(value: T | readonly T[] | undefined): readonly T[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? (value as readonly T[]) : [value as T];
}

function checkResponse(rule: InjectedResponse): InjectedResponse {
  checkSelector(rule, 'respond');
  if (!Number.isInteger(rule.status) || rule.status < 400 || rule.status > 599) {
    throw new RangeError(`fault proxy: respond.status must be an error status (400-599), got ${rule.status}`);
  }
  if (rule.retryAfter !== undefined && !FIELD_VALUE.test(rule.retryAfter)) {
    throw new TypeError('fault proxy: respond.retryAfter must be a single-line header value');
  }
  for (const [name, value] of Object.entries(rule.headers ?? {})) {
    if (!TOKEN.test(name) || typeof value !== 'string' || !FIELD_VALUE.test(value)) {
      throw new TypeError(`fault proxy: respond.headers has an invalid field ${JSON.stringify(name)}`);
    }
  }
  return rule;
}

function checkSelector<R extends RequestSelector>(rule: R, where: string): R {
  optionalNumber(rule, 'every', 1);
  optionalNumber(rule, 'count', 0);
  checkMatch(rule.match, `${where}.match`);
  return rule;
}

function checkMatch(match: RequestMatch | undefined, where: string): RequestMatch | undefined {
  if (match === undefined) return undefined;
  if (match.method !== undefined && !TOKEN.test(match.method)) {
    throw new TypeError(`fault proxy: ${where}.method must be an HTTP method token`);
  }
  if (match.pathPrefix !== undefined && typeof match.pathPrefix !== 'string') {
    throw new TypeError(`fault proxy: ${where}.pathPrefix must be a string`);
  }
  return Object.freeze({ ...match });
}

/** A whole number ≥ `min` (latency may be fractional), or undefined when absent. */
function optionalNumber<T extends object>(owner: T, key: keyof T & string, min: number): number | undefined {
  const value = owner[key] as unknown;
  if (value === undefined) return undefined;
  const whole = key !== 'latencyMs';
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    value < min ||
    (whole && !Number.isInteger(value))
  ) {
    throw new RangeError(
      `fault proxy: ${key} must be a ${whole ? 'whole ' : ''}number ≥ ${min}, got ${value}`,
    );
  }
  return value;
}

/** mulberry32: a small, fast, reproducible [0, 1) sequence (cut positions, test schedules). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
