/**
 * Hints to V8 to collect garbage now, for loops that read many bytes they drop at once.
 *
 * Every chunk Node reads from a socket is a fresh Buffer outside V8's heap, held by a small object
 * in the young generation. V8 collects that generation when its objects fill it, and those chunks
 * fill it slowly: the memory behind them waits for a full collection started by the outside memory
 * it adds up to. Reading an object back from S3 (8 MiB ranges, 4 at a time) so left 100–190 MiB
 * of dropped chunks around. Young collections alone promote the chunks still in use at that moment,
 * which then wait in the old generation: the peak still grew over a 4 GiB read. A young collection
 * every 2 MiB and a full one every 256 MiB held the read at a flat 168–186 MiB for 1 and 4 GiB
 * (docs/operations.md). A young collection of dead chunks takes well under a millisecond, a full
 * one of this small heap a few.
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
