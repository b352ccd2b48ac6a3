/**
 * Hints to V8 to collect garbage now, for loops that read many bytes they drop at once.
 *
 * Every chunk Node reads from a socket is a fresh Buffer outside V8's heap, held by a small object
 * in the young generation. V8 collects that generation when its objects fill it, and those chunks
 * fill it slowly: the memory behind them waits for a full collection started by the outside memory
 * it adds up to. Reading an object back from S3 (8 MiB ranges, 4 at a time) so left 100–190 MiB
 * of dropped chunks around. Young collections alone promote the chunks still in use at that moment,
 * which then wait in the old generation: the peak still grew over a 4 GiB read. Hence
 * `droppedBytesCollector`: a young collection every 2 MiB and a full one every 256 MiB held the read
 * flat (docs/operations.md, and the measurements below).
 *
 * Node offers no collection call without `--expose-gc`. The `ferry` command registers one under
 * `COLLECTOR_KEY` when it starts; a process started with `--expose-gc` has `globalThis.gc`, which is
 * used otherwise. Without either this does nothing, and V8 collects as it would anyway.
 */

/** Where the `ferry` command keeps the collection function it made (`globalThis[COLLECTOR_KEY]`). */
export const COLLECTOR_KEY = Symbol.for('ferry.collectGarbage');

type Collector = (options: { type: 'minor' | 'major' }) => unknown;

function collector(): Collector | undefined {
  const registry = globalThis as { [COLLECTOR_KEY]?: unknown; gc?: unknown };
  const candidate = registry[COLLECTOR_KEY] ?? registry.gc;
  return typeof candidate === 'function' ? (candidate as Collector) : undefined;
}

/**
 * Collects V8's young generation (`minor`) or everything (`major`) when a collection function was
 * made available; else nothing.
 */
export function collectGarbage(type: 'minor' | 'major'): void {
  collector()?.({ type });
}

/**
 * Measured on a presigned upload's read-back from S3 (the server's peak RSS, 1 GiB / 4 GiB): left
 * to V8, 298–318 / 340 MiB; a young collection per 8 MiB, 216–237 / 238–243 MiB; one per 2 MiB,
 * 170–188 / 195–263 MiB, still growing during a long read (chunks in use at a young collection move
 * to the old generation and wait there); with a full collection every 64 MiB as well, 165–167 /
 * 179 MiB, but the read of 1 GiB took 4.0–4.7 s instead of 3.3–3.4 s; every 256 MiB, 168 / 186 MiB,
 * flat during the read, in 3.5–3.6 s.
 */
export const DROPPED_BYTES_PER_COLLECTION = 2 * 1024 * 1024;
export const COLLECTIONS_PER_FULL_COLLECTION = 128;

/**
 * For a loop that drops the bytes it read: `dropped(n)` after each chunk asks for a young
 * collection every `bytesPerCollection` bytes, and for a full one instead every
 * `collectionsPerFull`-th time.
 */
export function droppedBytesCollector(
  bytesPerCollection = DROPPED_BYTES_PER_COLLECTION,
  collectionsPerFull = COLLECTIONS_PER_FULL_COLLECTION,
): { dropped(bytes: number): void } {
  let uncollected = 0;
  let collections = 0;
  return {
    dropped(bytes) {
      uncollected += bytes;
      if (uncollected < bytesPerCollection) return;
      uncollected %= bytesPerCollection;
      collections += 1;
      collectGarbage(collections % collectionsPerFull === 0 ? 'major' : 'minor');
    },
  };
}
