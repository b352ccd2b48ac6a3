/**
 * A sliding-window task pool: as soon as one task ends the next starts, so a slow part never holds
 * the others back the way batch-and-wait does. Tasks take an `AbortSignal`; the pool schedules and
 * never retries (each task applies the retry policy itself).
 *
 * Concurrency is adaptive (AIMD, like TCP's congestion window but per window of tasks):
 * - start at half the maximum (rounded up);
 * - after every window (as many finished tasks as the current concurrency), compare its throughput
 *   with the window before: not worse → one more task (up to the maximum); more than 20 % worse right
 *   after a raise → undo that raise and stop raising;
 * - a failed attempt (reported by the task's retry) halves the concurrency (at least `min`) and
 *   starts the measurement over.
 * With `adaptive: false` the concurrency stays at the maximum.
 */
import { abortReason } from './errors.ts';

export interface ConcurrencyOptions {
  /** Most tasks at once. */
  max: number;
  /** Fewest tasks at once after backing off. Default 1. */
  min?: number;
  /** Adapt to throughput and errors. Default true. */
  adaptive?: boolean;
}

export class ConcurrencyController {
  readonly max: number;
  readonly min: number;
  readonly adaptive: boolean;
  #current: number;
  /** When the window being measured began: the first task's start, then the previous window's end. */
  #windowStart: number | undefined;
  #windowBytes = 0;
  #windowTasks = 0;
  #previous: number | undefined;
  #raisedLast = false;
  #holding = false;
  readonly #now: () => number;

  constructor(options: ConcurrencyOptions, now: () => number = () => performance.now()) {
    this.max = Math.max(1, Math.floor(options.max));
    this.min = Math.min(this.max, Math.max(1, Math.floor(options.min ?? 1)));
    this.adaptive = options.adaptive ?? true;
    this.#current = this.adaptive ? Math.max(this.min, Math.ceil(this.max / 2)) : this.max;
    this.#now = now;
  }

  get current(): number {
    return this.#current;
  }

  /** A task starts. The first one opens the first measuring window. */
  started(): void {
    if (this.adaptive && this.#windowStart === undefined) this.#windowStart = this.#now();
  }

  /** A task finished after moving `bytes`. */
  succeeded(bytes: number): void {
    if (!this.adaptive) return;
    const now = this.#now();
    this.#windowStart ??= now;
    this.#windowBytes += bytes;
    this.#windowTasks += 1;
    if (this.#windowTasks < this.#current) return;
    const throughput = this.#windowBytes / Math.max(1, now - this.#windowStart);
    const previous = this.#previous;
    if (previous !== undefined && this.#raisedLast && throughput < previous * 0.8) {
      this.#current = Math.max(this.min, this.#current - 1);
      this.#holding = true;
      this.#raisedLast = false;
    } else if (
      !this.#holding &&
      (previous === undefined || throughput >= previous) &&
      this.#current < this.max
    ) {
      this.#current += 1;
      this.#raisedLast = true;
    } else {
      this.#raisedLast = false;
    }
    this.#previous = throughput;
    this.#windowStart = now;
    this.#windowBytes = 0;
    this.#windowTasks = 0;
  }

  /** An attempt failed (it will be retried): back off. */
  failed(): void {
    if (!this.adaptive) return;
    this.#current = Math.max(this.min, Math.ceil(this.#current / 2));
    this.#previous = undefined;
    this.#raisedLast = false;
    this.#holding = false;
    this.#windowStart = this.#now();
    this.#windowBytes = 0;
    this.#windowTasks = 0;
  }
}

/**
 * Runs `task` for every item, at most `concurrency.current` at once, in a sliding window. Resolves
 * when all succeeded. On the first failure the others are aborted, and the pool rejects with that
 * failure once every running task has settled (no request outlives the pool).
 * `task` resolves with the bytes it moved (for the adaptive concurrency).
 */
export function runPool<T>(
  items: Iterable<T>,
  task: (item: T, signal: AbortSignal) => Promise<number>,
  options: {
    concurrency: ConcurrencyController;
    signal: AbortSignal;
    /**
     * At most this many items from the first unfinished one, in the items' order, are started: a
     * slow item holds the pool back instead of letting it run arbitrarily far ahead.
     */
    window?: number;
  },
): Promise<void> {
  const { concurrency, signal, window = Number.POSITIVE_INFINITY } = options;
  const iterator = items[Symbol.iterator]();
  const stop = new AbortController();
  const onAbort = () => stop.abort(abortReason(signal));
  signal.addEventListener('abort', onAbort, { once: true });
  if (signal.aborted) onAbort();

  return new Promise<void>((resolve, reject) => {
    let running = 0;
    let exhausted = false;
    let failure: { error: unknown } | undefined;
    /** Positions of the items in flight; the next item's position. */
    const unfinished = new Set<number>();
    let position = 0;

    const finish = () => {
      signal.removeEventListener('abort', onAbort);
      if (failure !== undefined) reject(failure.error);
      else if (stop.signal.aborted) reject(abortReason(stop.signal));
      else resolve();
    };

    const fill = () => {
      while (failure === undefined && !stop.signal.aborted && !exhausted && running < concurrency.current) {
        if (unfinished.size > 0 && position - Math.min(...unfinished) >= window) break;
        const next = iterator.next();
        if (next.done) {
          exhausted = true;
          break;
        }
        const at = position++;
        unfinished.add(at);
        running += 1;
        concurrency.started();
        task(next.value, stop.signal).then(
          (bytes) => {
            unfinished.delete(at);
            running -= 1;
            concurrency.succeeded(bytes);
            fill();
          },
          (error: unknown) => {
            unfinished.delete(at);
            running -= 1;
            if (failure === undefined && !stop.signal.aborted) {
              failure = { error };
              stop.abort(error);
            }
            fill();
          },
        );
      }
      if (running === 0 && (exhausted || failure !== undefined || stop.signal.aborted)) finish();
    };
    fill();
  });
}
