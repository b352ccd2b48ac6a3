/**
 * Honest progress: what the server confirmed is reported apart from what is on the wire.
 *
 * - `bytesConfirmed` only grows (a restart from zero after the server lost the upload keeps showing
 *   the highest value until the new upload passes it) and never exceeds `totalBytes`.
 * - `bytesInFlight` is what was handed to the network and not yet confirmed; it drops when a
 *   request fails (those bytes will be sent again). `bytesConfirmed + bytesInFlight ≤ totalBytes`.
 * - `bytesPerSecond` is an exponential moving average (time constant 3 s) of the bytes sent, so
 *   resumed bytes the server already had never inflate it.
 * - `etaSeconds` = bytes not yet confirmed / `bytesPerSecond`.
 * - `parts` (parts protocol only): how many parts the server holds, of how many.
 * Events are throttled to one per `intervalMs`; the last state is always delivered. While a
 * request is in flight an event also comes every `heartbeatMs` even when no byte moves, so the
 * speed falls (and the ETA grows) on a stalled link instead of showing the last good rate.
 */

export interface UploadProgress {
  /** Bytes the server confirmed it stored. Never decreases. */
  bytesConfirmed: number;
  /** Bytes sent and not yet confirmed. */
  bytesInFlight: number;
  /** Size of the source; `undefined` while a stream of unknown length has not ended. */
  totalBytes: number | undefined;
  /** `bytesConfirmed / totalBytes` in [0, 1]; never decreases; `undefined` while the size is unknown. */
  fraction: number | undefined;
  /** Send rate, bytes per second (exponential moving average). */
  bytesPerSecond: number;
  /** Seconds until every byte is confirmed at the current rate; `undefined` when unknown. */
  etaSeconds: number | undefined;
  /** Parts protocol: parts the server confirmed, of the upload's total. Absent for tus. */
  parts?: PartsProgress;
}

export interface PartsProgress {
  /** Parts the server holds. */
  confirmed: number;
  /** Parts the upload has. */
  total: number;
}

/** The bytes of one request on the wire. */
export interface Flight {
  /** `bytes` more were handed to the network. */
  sent(bytes: number): void;
  /** The request ended (confirmed or failed): its bytes leave the in-flight count. */
  end(): void;
}

const EMA_TIME_CONSTANT_MS = 3000;
const SPEED_SAMPLE_MS = 200;

export class ProgressTracker {
  readonly #now: () => number;
  readonly #emit: (progress: UploadProgress) => void;
  readonly #intervalMs: number;
  #total: number | undefined;
  #confirmed = 0;
  #flights = new Set<{ bytes: number }>();
  #sentTotal = 0;
  #speed = 0;
  #sampleAt: number | undefined;
  #sampleSent = 0;
  #lastEmitAt = Number.NEGATIVE_INFINITY;
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #heartbeatMs: number;
  #heartbeat: ReturnType<typeof setTimeout> | undefined;
  #lastEmitted: UploadProgress | undefined;
  #parts: PartsProgress | undefined;

  constructor(options: {
    totalBytes: number | undefined;
    onProgress: (progress: UploadProgress) => void;
    intervalMs?: number;
    /** An event at least this often while a request is in flight, in ms. Default 1000. */
    heartbeatMs?: number;
    now?: () => number;
  }) {
    this.#total = options.totalBytes;
    this.#emit = options.onProgress;
    this.#intervalMs = options.intervalMs ?? 100;
    this.#heartbeatMs = options.heartbeatMs ?? 1000;
    this.#now = options.now ?? (() => performance.now());
  }

  get bytesConfirmed(): number {
    return this.#confirmed;
  }

  setTotal(totalBytes: number): void {
    if (this.#total === totalBytes) return;
    this.#total = totalBytes;
    this.#update();
  }

  /** The server confirmed `bytes` in total (absolute, not a delta). Lower values are ignored. */
  confirmed(bytes: number): void {
    if (bytes <= this.#confirmed) return;
    this.#confirmed = this.#total === undefined ? bytes : Math.min(bytes, this.#total);
    this.#update();
  }

  /** Parts protocol: `confirmed` of `total` parts are on the server. Sent with the next event. */
  setParts(confirmed: number, total: number): void {
    this.#parts = { confirmed: Math.min(confirmed, total), total };
  }

  startFlight(): Flight {
    const flight = { bytes: 0 };
    this.#flights.add(flight);
    return {
      sent: (bytes) => {
        if (!this.#flights.has(flight)) return;
        flight.bytes += bytes;
        this.#sentTotal += bytes;
        this.#update();
      },
      end: () => {
        if (this.#flights.delete(flight)) this.#update();
      },
    };
  }

  /** The current progress (also what the last event carried, once flushed). */
  snapshot(): UploadProgress {
    this.#sampleSpeed(this.#now());
    let inFlight = 0;
    for (const flight of this.#flights) inFlight += flight.bytes;
    const total = this.#total;
    const confirmed = total === undefined ? this.#confirmed : Math.min(this.#confirmed, total);
    if (total !== undefined) inFlight = Math.min(inFlight, total - confirmed);
    let fraction = total === undefined ? undefined : total === 0 ? 1 : confirmed / total;
    const previous = this.#lastEmitted?.fraction;
    if (fraction !== undefined && previous !== undefined) fraction = Math.max(fraction, previous);
    const remaining = total === undefined ? undefined : total - confirmed;
    return {
      bytesConfirmed: confirmed,
      bytesInFlight: inFlight,
      totalBytes: total,
      fraction,
      bytesPerSecond: Math.round(this.#speed),
      etaSeconds:
        remaining === undefined
          ? undefined
          : remaining === 0
            ? 0
            : this.#speed > 0
              ? remaining / this.#speed
              : undefined,
      ...(this.#parts !== undefined ? { parts: { ...this.#parts } } : {}),
    };
  }

  /** Emits the current state now (at the end of an upload, on pause). */
  flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#lastEmitAt = this.#now();
    this.#lastEmitted = this.snapshot();
    this.#beat();
    this.#emit(this.#lastEmitted);
  }

  /** Schedules the next heartbeat while a request is in flight; stops it otherwise. */
  #beat(): void {
    if (this.#heartbeat !== undefined) clearTimeout(this.#heartbeat);
    this.#heartbeat = undefined;
    if (this.#flights.size === 0) return;
    this.#heartbeat = setTimeout(() => {
      this.#heartbeat = undefined;
      this.flush();
    }, this.#heartbeatMs);
    // A heartbeat alone never keeps a Node process alive.
    (this.#heartbeat as { unref?: () => void }).unref?.();
  }

  /** Stops the pending trailing event, if any. */
  dispose(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (this.#heartbeat !== undefined) clearTimeout(this.#heartbeat);
    this.#timer = undefined;
    this.#heartbeat = undefined;
  }

  #sampleSpeed(now: number): void {
    if (this.#sampleAt === undefined) {
      this.#sampleAt = now;
      this.#sampleSent = this.#sentTotal;
      return;
    }
    const elapsed = now - this.#sampleAt;
    if (elapsed < SPEED_SAMPLE_MS) return;
    const instant = ((this.#sentTotal - this.#sampleSent) / elapsed) * 1000;
    const alpha = this.#speed === 0 ? 1 : 1 - Math.exp(-elapsed / EMA_TIME_CONSTANT_MS);
    this.#speed += alpha * (instant - this.#speed);
    this.#sampleAt = now;
    this.#sampleSent = this.#sentTotal;
  }

  #update(): void {
    const now = this.#now();
    if (now - this.#lastEmitAt >= this.#intervalMs) {
      this.flush();
      return;
    }
    if (this.#timer === undefined) {
      this.#timer = setTimeout(
        () => {
          this.#timer = undefined;
          this.flush();
        },
        this.#intervalMs - (now - this.#lastEmitAt),
      );
    }
  }
}
