/**
 * Reading a finished object back in order, faster than one GetObject: the bytes are fetched as
 * ranges of `rangeBytes`, `inFlight` ranged GetObject requests at a time, and handed out strictly
 * in order (to one SHA-256, which takes bytes only in order). A range is held whole until its turn,
 * so memory is at most `inFlight × rangeBytes` per read, whatever the object's size; the next range
 * is requested only when the reader takes one, so a slow reader holds no more than that.
 *
 * Why: S3 cannot read back the parts of an unfinished multipart upload, so where a SHA-256 must be
 * checked against bytes Ferry did not see in order (presigned parts, a lost running hash) the only
 * way is to complete the object and read it back whole; with one stream that read took about as
 * long as the upload itself. A range that comes back shorter than asked means the object changed
 * under the read (or S3 cut the answer): the read fails rather than hash the wrong bytes.
 */
import { createHash } from 'node:crypto';

/** Default bytes per ranged GetObject. */
export const DEFAULT_READ_BACK_RANGE_BYTES = 8 * 1024 * 1024;
/** Default ranged GetObject requests in flight per read. */
export const DEFAULT_READ_BACK_IN_FLIGHT = 4;

export interface ReadBackOptions {
  /** Bytes per ranged request (at least 64 KiB). Default 8 MiB. */
  rangeBytes?: number;
  /** Ranged requests in flight at once (at least 1). Default 4. */
  inFlight?: number;
  signal?: AbortSignal;
}

/** Fetches bytes `start..end` (inclusive) whole; `signal` aborts the request. */
export type RangeFetcher = (start: number, end: number, signal: AbortSignal) => Promise<Uint8Array>;

/** Bytes `start..end` (inclusive) as in-order chunks of at most `rangeBytes`. */
export async function* readInOrder(
  fetchRange: RangeFetcher,
  range: { start: number; end: number },
  options: ReadBackOptions = {},
): AsyncGenerator<Uint8Array> {
  const rangeBytes = options.rangeBytes ?? DEFAULT_READ_BACK_RANGE_BYTES;
  const inFlight = options.inFlight ?? DEFAULT_READ_BACK_IN_FLIGHT;
  if (!Number.isSafeInteger(rangeBytes) || rangeBytes < 64 * 1024) {
    throw new RangeError(`rangeBytes must be at least 65536, got ${rangeBytes}`);
  }
  if (!Number.isSafeInteger(inFlight) || inFlight < 1) {
    throw new RangeError(`inFlight must be a positive integer, got ${inFlight}`);
  }
  const { start, end } = range;
  if (end < start) return;
  // One controller for every request of this read: a failure, the caller's abort or an early
  // return stops them all.
  const abort = new AbortController();
  const onAbort = () => abort.abort(options.signal?.reason);
  if (options.signal?.aborted) throw options.signal.reason;
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const queue: Array<Promise<Uint8Array>> = [];
  let next = start;
  const launch = () => {
    if (next > end || abort.signal.aborted) return;
    const from = next;
    const to = Math.min(end, from + rangeBytes - 1);
    next = to + 1;
    const fetched = fetchRange(from, to, abort.signal).then((bytes) => {
      if (bytes.byteLength !== to - from + 1) {
        throw new Error(`bytes ${from}-${to}: ${bytes.byteLength} bytes read, ${to - from + 1} expected`);
      }
      return bytes;
    });
    // Settled later in order, or dropped by the finally below: never an unhandled rejection.
    fetched.catch(() => {});
    queue.push(fetched);
  };
  try {
    for (let i = 0; i < inFlight; i++) launch();
    while (queue.length > 0) {
      const bytes = await queue.shift()!;
      launch();
      yield bytes;
    }
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    if (queue.length > 0) abort.abort(new Error('the read back stopped'));
  }
}

/**
 * The SHA-256 (hex) of bytes `0..size-1`, read as `readInOrder` does. `hashed` is told of each range
 * once the hash has taken it, so its buffer can be used again.
 */
export async function sha256InOrder(
  fetchRange: RangeFetcher,
  size: number,
  options: ReadBackOptions & { hashed?: (bytes: Uint8Array) => void } = {},
): Promise<string> {
  const hash = createHash('sha256');
  for await (const bytes of readInOrder(fetchRange, { start: 0, end: size - 1 }, options)) {
    hash.update(bytes);
    options.hashed?.(bytes);
  }
  return hash.digest('hex');
}

/**
 * Range buffers used again once hashed: a read holds at most `inFlight + 1` of them, instead of
 * leaving one garbage buffer per range for the collector (which let the process's peak memory
 * grow with the object's size).
 */
export class RangeBuffers {
  readonly #size: number;
  readonly #free: ArrayBuffer[] = [];

  constructor(size: number) {
    this.#size = size;
  }

  /** A buffer of the range size (contents undefined). */
  take(): Buffer {
    const free = this.#free.pop();
    return free === undefined ? Buffer.allocUnsafeSlow(this.#size) : Buffer.from(free, 0, this.#size);
  }

  /** Gives back the buffer a view was taken from. */
  give(view: Uint8Array): void {
    const buffer = view.buffer;
    if (buffer instanceof ArrayBuffer && buffer.byteLength === this.#size) this.#free.push(buffer);
  }
}
