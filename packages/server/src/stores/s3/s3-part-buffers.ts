/**
 * The S3 store's memory budget for part buffers, shared by every PATCH (and streamed
 * concatenation) of one store — one per server process. A tus body is copied into part-sized
 * buffers taken from here; when the budget is spent, a writer waits for a buffer, its body is
 * not read meanwhile, and TCP pushes back on the client: many concurrent PATCHes slow down
 * instead of growing the process without limit (64 concurrent uploads once took 1.25 GiB).
 *
 * Why it cannot deadlock: a writer asks for a buffer only when it has none being filled, so
 * every buffer a waiting writer holds is a part queued for or in its UploadPart, which returns
 * the buffer when it settles without needing another one. Buffers being filled belong to writers
 * that are reading their bodies; those end (or are stopped by the body timeouts) by themselves.
 * Waiters are served in arrival order, so a large part is not starved by small ones, and a
 * request is granted whenever nothing is in use, so a part larger than the budget still goes
 * through — alone.
 *
 * Buffers that come back are kept, up to a quarter of the budget, for the next part of the same
 * size, instead of allocating (and garbage-collecting) 8 MiB for every part.
 */

export interface PartBufferStats {
  /** The budget, in bytes. */
  budgetBytes: number;
  /** Bytes in buffers handed out and not yet given back. */
  inUseBytes: number;
  /** Bytes in buffers kept for reuse. */
  idleBytes: number;
  /** The most `inUseBytes` has been since the store was made. */
  peakInUseBytes: number;
  /** Requests waiting for a buffer now. */
  waiting: number;
  /** Requests that had to wait for a buffer since the store was made. */
  waits: number;
}

interface Waiter {
  size: number;
  granted: (buffer: Buffer) => void;
  /** Set once a buffer is set aside for this waiter (handed over in a microtask). */
  buffer?: Buffer;
  /** Withdrawn, or the buffer handed over: nothing more happens. */
  settled?: boolean;
}

export class PartBuffers {
  readonly budgetBytes: number;
  #inUse = 0;
  #peak = 0;
  #idle: ArrayBuffer[] = [];
  #idleBytes = 0;
  #waiters: Waiter[] = [];
  #waits = 0;

  constructor(budgetBytes: number) {
    if (!Number.isSafeInteger(budgetBytes) || budgetBytes < 1) {
      throw new RangeError(`the part buffer budget must be a positive number of bytes, got ${budgetBytes}`);
    }
    this.budgetBytes = budgetBytes;
  }

  stats(): PartBufferStats {
    return {
      budgetBytes: this.budgetBytes,
      inUseBytes: this.#inUse,
      idleBytes: this.#idleBytes,
      peakInUseBytes: this.#peak,
      waiting: this.#waiters.length,
      waits: this.#waits,
    };
  }

  /** A buffer of `size` bytes now, or undefined when the budget has no room or others wait first. */
  tryTake(size: number): Buffer | undefined {
    if (this.#waiters.length > 0 || !this.#fits(size)) return undefined;
    return this.#grant(size);
  }

  /**
   * Calls `granted` (never synchronously) with a buffer of `size` bytes once the budget has room
   * and the earlier waiters are served. The returned function withdraws the request; a buffer
   * already set aside for it goes back.
   */
  wait(size: number, granted: (buffer: Buffer) => void): () => void {
    const waiter: Waiter = { size, granted };
    this.#waiters.push(waiter);
    this.#waits += 1;
    this.#serve();
    return () => {
      if (waiter.settled) return;
      waiter.settled = true;
      const index = this.#waiters.indexOf(waiter);
      if (index >= 0) {
        this.#waiters.splice(index, 1);
        this.#serve();
      } else if (waiter.buffer !== undefined) this.give(waiter.buffer);
    };
  }

  /** Returns a buffer from `tryTake` or `wait`; nothing may read or write it any more. */
  give(buffer: Buffer): void {
    const whole = buffer.buffer;
    this.#inUse -= whole.byteLength;
    if (
      whole instanceof ArrayBuffer &&
      this.#idleBytes + whole.byteLength <= this.budgetBytes / 4 &&
      this.#inUse + this.#idleBytes + whole.byteLength <= this.budgetBytes
    ) {
      this.#idle.push(whole);
      this.#idleBytes += whole.byteLength;
    }
    this.#serve();
  }

  #fits(size: number): boolean {
    return this.#inUse === 0 || this.#inUse + size <= this.budgetBytes;
  }

  #grant(size: number): Buffer {
    let whole: ArrayBuffer | undefined;
    const index = this.#idle.findIndex((buffer) => buffer.byteLength === size);
    if (index >= 0) {
      whole = this.#idle.splice(index, 1)[0]!;
      this.#idleBytes -= size;
    } else {
      // Kept buffers of other sizes make room for a new one rather than push past the budget.
      while (this.#idle.length > 0 && this.#inUse + this.#idleBytes + size > this.budgetBytes) {
        this.#idleBytes -= this.#idle.pop()!.byteLength;
      }
    }
    this.#inUse += size;
    this.#peak = Math.max(this.#peak, this.#inUse);
    return whole === undefined ? Buffer.allocUnsafeSlow(size) : Buffer.from(whole, 0, size);
  }

  #serve(): void {
    while (this.#waiters.length > 0 && this.#fits(this.#waiters[0]!.size)) {
      const waiter = this.#waiters.shift()!;
      const buffer = this.#grant(waiter.size);
      waiter.buffer = buffer;
      // Handed over later: the waiter's code must not run inside whoever gave a buffer back.
      queueMicrotask(() => {
        if (waiter.settled) return;
        waiter.settled = true;
        waiter.granted(buffer);
      });
    }
  }
}
