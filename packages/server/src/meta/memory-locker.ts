/**
 * The Locker for one process: a map from key to the current holder, each holder carrying the
 * FIFO queue of requests waiting for it. An uncontended acquire allocates one object and touches
 * no timer; timers and abort listeners exist only while a request actually waits.
 *
 * Release requests: every request that starts waiting calls the holder's `onReleaseRequested`
 * once, and a request that is handed the lock while others still wait is asked at once too — the
 * newest connection for an upload is the one the client is still using, so older writers yield.
 */
import { UploadError } from '@ferry/protocol';
import { type AcquireOptions, type Lock, type Locker, LockTimeoutError } from './locker.ts';

const WAITING = 0;
const HELD = 1;
const DONE = 2;

/** setTimeout clamps longer delays to 1 ms (with a warning); longer waits run without a timer. */
const MAX_TIMER_MS = 2 ** 31 - 1;

const RESOLVED: Promise<void> = Promise.resolve();

/**
 * One acquire call: first a place in a queue, then the lock. Not exported, so its fields are
 * reachable only from this module even though they are not `#private` (the locker needs them).
 */
class Ticket implements Lock {
  readonly key: string;
  readonly locker: MemoryLocker;
  readonly onReleaseRequested: (() => void) | undefined;
  state: typeof WAITING | typeof HELD | typeof DONE = WAITING;
  // Links while waiting (doubly linked so a timeout or abort leaves the middle in O(1)).
  prev: Ticket | undefined = undefined;
  next: Ticket | undefined = undefined;
  // The queue waiting for this ticket, while it holds the lock.
  head: Ticket | undefined = undefined;
  tail: Ticket | undefined = undefined;
  resolve: ((lock: Lock) => void) | undefined = undefined;
  reject: ((reason: unknown) => void) | undefined = undefined;
  timer: NodeJS.Timeout | undefined = undefined;
  signal: AbortSignal | undefined = undefined;
  onAbort: (() => void) | undefined = undefined;

  constructor(locker: MemoryLocker, key: string, onReleaseRequested: (() => void) | undefined) {
    this.locker = locker;
    this.key = key;
    this.onReleaseRequested = onReleaseRequested;
  }

  release(): Promise<void> {
    this.locker.release(this);
    return RESOLVED;
  }
}

function requestRelease(holder: Ticket): void {
  const callback = holder.onReleaseRequested;
  if (callback === undefined) return;
  try {
    callback();
  } catch {
    // A failing callback is the holder's bug; the waiter still waits (and times out if need be).
  }
}

/** Stops the timer and the abort listener of a ticket that leaves the queue. */
function stopWaiting(ticket: Ticket): void {
  if (ticket.timer !== undefined) clearTimeout(ticket.timer);
  if (ticket.onAbort !== undefined) ticket.signal?.removeEventListener('abort', ticket.onAbort);
  ticket.timer = undefined;
  ticket.signal = undefined;
  ticket.onAbort = undefined;
}

class MemoryLocker implements Locker {
  #held = new Map<string, Ticket>();
  #closed = false;
  /** One function for every timer (the ticket is the timer's argument): no closure per wait. */
  #onTimeout = (ticket: Ticket): void => {
    ticket.timer = undefined;
    this.#abandon(ticket, new LockTimeoutError(ticket.key));
  };

  acquire(key: string, options: AcquireOptions): Promise<Lock> {
    if (this.#closed) return Promise.reject(new UploadError('ERR_SHUTTING_DOWN'));
    const { signal, timeoutMs } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (!(timeoutMs >= 0)) return Promise.reject(new TypeError(`timeoutMs must be >= 0, got ${timeoutMs}`));
    const ticket = new Ticket(this, key, options.onReleaseRequested);
    const holder = this.#held.get(key);
    if (holder === undefined) {
      ticket.state = HELD;
      this.#held.set(key, ticket);
      return Promise.resolve(ticket);
    }
    return new Promise<Lock>((resolve, reject) => {
      ticket.resolve = resolve;
      ticket.reject = reject;
      ticket.prev = holder.tail;
      if (holder.tail === undefined) holder.head = ticket;
      else holder.tail.next = ticket;
      holder.tail = ticket;
      if (timeoutMs <= MAX_TIMER_MS) ticket.timer = setTimeout(this.#onTimeout, timeoutMs, ticket);
      if (signal !== undefined) {
        ticket.signal = signal;
        ticket.onAbort = () => this.#abandon(ticket, signal.reason);
        signal.addEventListener('abort', ticket.onAbort, { once: true });
      }
      // Last, because the holder may release synchronously from its callback, which grants this
      // ticket: everything above must be in place by then.
      requestRelease(holder);
    });
  }

  /** Called by `Ticket.release`: hands the lock to the first waiter, or frees the key. */
  release(ticket: Ticket): void {
    if (ticket.state !== HELD) return;
    ticket.state = DONE;
    const next = ticket.head;
    if (next === undefined) {
      this.#held.delete(ticket.key);
      return;
    }
    const rest = next.next;
    next.head = rest;
    next.tail = rest === undefined ? undefined : ticket.tail;
    if (rest !== undefined) rest.prev = undefined;
    next.next = undefined;
    ticket.head = undefined;
    ticket.tail = undefined;
    this.#held.set(ticket.key, next);
    stopWaiting(next);
    next.state = HELD;
    next.resolve?.(next);
    if (rest !== undefined) requestRelease(next);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const holders = [...this.#held.values()];
    this.#held.clear();
    for (const holder of holders) {
      // The holders keep running; their release becomes a no-op. Waiters are told to come back.
      holder.state = DONE;
      for (let waiter = holder.head; waiter !== undefined; waiter = waiter.next) {
        stopWaiting(waiter);
        waiter.state = DONE;
        waiter.reject?.(new UploadError('ERR_SHUTTING_DOWN'));
      }
      holder.head = undefined;
      holder.tail = undefined;
    }
  }

  /** Takes a waiting ticket out of its queue and fails it (timeout or abort). */
  #abandon(ticket: Ticket, reason: unknown): void {
    if (ticket.state !== WAITING) return;
    const holder = this.#held.get(ticket.key);
    if (holder !== undefined) {
      if (ticket.prev === undefined) holder.head = ticket.next;
      else ticket.prev.next = ticket.next;
      if (ticket.next === undefined) holder.tail = ticket.prev;
      else ticket.next.prev = ticket.prev;
    }
    ticket.prev = undefined;
    ticket.next = undefined;
    stopWaiting(ticket);
    ticket.state = DONE;
    ticket.reject?.(reason);
  }
}

/**
 * A Locker for a single process. Not reentrant: acquiring a key you already hold waits for
 * yourself until `timeoutMs`. `close()` fails every waiter with ERR_SHUTTING_DOWN and every later
 * acquire too; current holders finish normally.
 */
export function createMemoryLocker(): Locker {
  return new MemoryLocker();
}
