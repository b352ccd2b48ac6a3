/**
 * One direction of an emulated link. Bytes taken from the source wait in `pending` until the link
 * may send them (window room, bandwidth tokens, the receiver not pushing back), travel on the `wire`
 * for `latencyMs`, and are then written to the destination socket, in the order they came. Markers
 * (end of stream, cut, stall, …) travel in the same queue, so they happen exactly after the bytes
 * before them.
 *
 * Memory stays bounded: the source is paused while PENDING_LIMIT bytes wait, and sending stops while
 * the destination's socket pushes back or WIRE_LIMIT bytes are on the wire.
 */
import type { Socket } from 'node:net';

export interface LaneSettings {
  readonly latencyMs: number;
  readonly windowBytes: number | undefined;
  readonly bytesPerSec: number | undefined;
  /** A bucket shared by this direction of every connection. */
  readonly shared: TokenBucket | undefined;
}

export type LaneMarker = 'end' | 'cut' | 'stall' | 'answered';

export interface LaneOptions {
  source: Socket;
  dest: Socket;
  /** Read at every step, so new rules apply to open connections. */
  settings(): LaneSettings;
  onDelivered(bytes: number, body: boolean): void;
  /** A marker reached the destination end of the lane. */
  onMarker(marker: LaneMarker): void;
}

interface Entry {
  data: Buffer | undefined;
  readonly body: boolean;
  readonly marker: LaneMarker | undefined;
  /** When the entry reaches the destination (performance.now() time). */
  at: number;
}

/** The source is paused while this much waits to be sent. */
const PENDING_LIMIT = 256 * 1024;
/** At most this much is on the wire; with latency and no window it is what paces a fast sender. */
export const WIRE_LIMIT = 16 * 1024 * 1024;
/** Timers fire in whole milliseconds; an entry due within this is treated as due. */
const TIMER_SLACK_MS = 0.5;

export class Lane {
  readonly #options: LaneOptions;
  readonly #pending: Entry[] = [];
  #pendingBytes = 0;
  readonly #wire: Entry[] = [];
  #wireBytes = 0;
  #lastArrival = 0;
  readonly #acks: { at: number; bytes: number }[] = [];
  #inFlight = 0;
  #bucket: TokenBucket | undefined;
  #destBlocked = false;
  #sourcePaused = false;
  #controlsSource = true;
  #frozen = false;
  #disposed = false;
  #pumping = false;
  #again = false;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Number.POSITIVE_INFINITY;

  constructor(options: LaneOptions) {
    this.#options = options;
  }

  push(data: Buffer, body: boolean): void {
    if (this.#disposed || data.length === 0) return;
    this.#pending.push({ data, body, marker: undefined, at: 0 });
    this.#pendingBytes += data.length;
    this.pump();
  }

  mark(marker: LaneMarker): void {
    if (this.#disposed) return;
    this.#pending.push({ data: undefined, body: false, marker, at: 0 });
    this.pump();
  }

  /** Stops reading from the source for good (what is already queued still travels). */
  holdSource(): void {
    this.#controlsSource = false;
    this.#options.source.pause();
  }

  /** Hands the source back to its owner, flowing: it will read and discard. */
  releaseSource(): void {
    this.#controlsSource = false;
    this.#options.source.resume();
  }

  /** A stalled link: nothing more moves until the lane is disposed. */
  freeze(): void {
    this.#frozen = true;
    this.#clearTimer();
  }

  dispose(): void {
    this.#disposed = true;
    this.#clearTimer();
    this.#options.dest.off('drain', this.#onDrain);
    this.#pending.length = 0;
    this.#wire.length = 0;
    this.#acks.length = 0;
  }

  pump(): void {
    if (this.#disposed || this.#frozen) return;
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    let wake = Number.POSITIVE_INFINITY;
    try {
      do {
        this.#again = false;
        wake = this.#step();
      } while (this.#again && !this.#disposed && !this.#frozen);
    } finally {
      this.#pumping = false;
    }
    if (this.#disposed || this.#frozen) return;
    this.#controlSource();
    this.#schedule(wake);
  }

  /** Sends and delivers what it can now; returns when it must look again (or Infinity). */
  #step(): number {
    const settings = this.#options.settings();
    let wake = Number.POSITIVE_INFINITY;
    for (;;) {
      const now = performance.now();
      while (this.#acks.length > 0 && this.#acks[0]!.at <= now + TIMER_SLACK_MS) {
        this.#inFlight -= this.#acks.shift()!.bytes;
      }
      wake = this.#send(settings, now);
      const delivered = this.#deliver(now);
      if (this.#disposed || this.#frozen) return Number.POSITIVE_INFINITY;
      const head = this.#wire[0];
      if (head !== undefined && !this.#destBlocked) wake = Math.min(wake, head.at);
      // Delivering may have made room on the wire for bytes that are still pending.
      if (!delivered || this.#pending.length === 0 || this.#destBlocked) return wake;
    }
  }

  /** Moves pending entries onto the wire as far as window, tokens and back-pressure allow. */
  #send(settings: LaneSettings, now: number): number {
    const pending = this.#pending;
    while (pending.length > 0 && !this.#destBlocked && this.#wireBytes < WIRE_LIMIT) {
      const entry = pending[0]!;
      if (entry.data === undefined) {
        pending.shift();
        this.#toWire(entry, settings, now);
        continue;
      }
      let n = entry.data.length;
      if (settings.windowBytes !== undefined) {
        const room = settings.windowBytes - this.#inFlight;
        if (room <= 0) return this.#acks[0]?.at ?? now; // the next acknowledgement opens the window
        n = Math.min(n, room);
      }
      const buckets = this.#buckets(settings, now);
      if (buckets.length > 0) {
        let available = Number.POSITIVE_INFINITY;
        let quantum = n;
        for (const bucket of buckets) {
          available = Math.min(available, bucket.available(now));
          quantum = Math.min(quantum, bucket.quantum);
        }
        if (available < quantum) {
          let wait = 0;
          for (const bucket of buckets) wait = Math.max(wait, bucket.msUntil(quantum));
          return now + wait;
        }
        n = Math.min(n, Math.floor(available));
        for (const bucket of buckets) bucket.take(n);
      }
      let data = entry.data;
      if (n < data.length) {
        entry.data = data.subarray(n);
        data = data.subarray(0, n);
      } else {
        pending.shift();
      }
      this.#pendingBytes -= n;
      this.#toWire({ data, body: entry.body, marker: undefined, at: 0 }, settings, now);
      if (settings.windowBytes !== undefined) {
        this.#inFlight += n;
        this.#acks.push({ at: now + 2 * settings.latencyMs, bytes: n });
      }
    }
    return Number.POSITIVE_INFINITY;
  }

  #buckets(settings: LaneSettings, now: number): TokenBucket[] {
    if (settings.bytesPerSec === undefined) {
      this.#bucket = undefined;
    } else if (this.#bucket === undefined) {
      this.#bucket = new TokenBucket(settings.bytesPerSec, now);
    } else {
      this.#bucket.setRate(settings.bytesPerSec, now);
    }
    const buckets: TokenBucket[] = [];
    if (this.#bucket !== undefined) buckets.push(this.#bucket);
    if (settings.shared !== undefined) buckets.push(settings.shared);
    return buckets;
  }

  #toWire(entry: Entry, settings: LaneSettings, now: number): void {
    // Never earlier than the entry before it: a latency lowered at run time must not reorder bytes.
    entry.at = Math.max(this.#lastArrival, now + settings.latencyMs);
    this.#lastArrival = entry.at;
    this.#wire.push(entry);
    this.#wireBytes += entry.data?.length ?? 0;
  }

  /** Writes every entry that has arrived; true when at least one was delivered. */
  #deliver(now: number): boolean {
    let delivered = false;
    const dest = this.#options.dest;
    while (this.#wire.length > 0 && !this.#destBlocked) {
      const entry = this.#wire[0]!;
      if (entry.at > now + TIMER_SLACK_MS) break;
      this.#wire.shift();
      delivered = true;
      if (entry.data === undefined) {
        this.#options.onMarker(entry.marker!);
        if (this.#disposed || this.#frozen) return delivered;
        continue;
      }
      this.#wireBytes -= entry.data.length;
      // A destination that is gone drops what still arrives, as a dead peer would.
      if (dest.destroyed || !dest.writable) continue;
      const flowing = dest.write(entry.data);
      this.#options.onDelivered(entry.data.length, entry.body);
      if (!flowing) {
        this.#destBlocked = true;
        dest.once('drain', this.#onDrain);
      }
    }
    return delivered;
  }

  readonly #onDrain = (): void => {
    this.#destBlocked = false;
    this.pump();
  };

  #controlSource(): void {
    if (!this.#controlsSource) return;
    const full = this.#pendingBytes >= PENDING_LIMIT;
    if (full && !this.#sourcePaused) {
      this.#sourcePaused = true;
      this.#options.source.pause();
    } else if (!full && this.#sourcePaused) {
      this.#sourcePaused = false;
      this.#options.source.resume();
    }
  }

  #schedule(wake: number): void {
    if (wake === Number.POSITIVE_INFINITY || wake >= this.#timerAt) return;
    this.#clearTimer();
    this.#timerAt = wake;
    const delay = Math.max(0, Math.ceil(wake - performance.now()));
    this.#timer = setTimeout(this.#onTimer, delay);
    // Open sockets keep the process alive; a lane's timer alone must not.
    this.#timer.unref();
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
    this.pump();
  };

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
  }
}

/**
 * A token bucket in bytes. It holds at most 20 ms worth of tokens (at least one quantum), so a rate
 * limit shows within tens of milliseconds and bursts stay small. Bytes are granted in quanta of
 * about 10 ms worth (1 byte to 16 KiB), so a slow link still moves in small steps.
 */
export class TokenBucket {
  #rate: number;
  #capacity: number;
  #quantum: number;
  #tokens: number;
  #last: number;

  constructor(bytesPerSec: number, now = performance.now()) {
    this.#rate = bytesPerSec;
    this.#quantum = quantumFor(bytesPerSec);
    this.#capacity = Math.max(this.#quantum, bytesPerSec / 50);
    this.#tokens = this.#capacity;
    this.#last = now;
  }

  get quantum(): number {
    return this.#quantum;
  }

  setRate(bytesPerSec: number, now: number): void {
    if (bytesPerSec === this.#rate) return;
    this.available(now);
    this.#rate = bytesPerSec;
    this.#quantum = quantumFor(bytesPerSec);
    this.#capacity = Math.max(this.#quantum, bytesPerSec / 50);
    this.#tokens = Math.min(this.#tokens, this.#capacity);
  }

  available(now: number): number {
    if (now > this.#last) {
      this.#tokens = Math.min(this.#capacity, this.#tokens + ((now - this.#last) * this.#rate) / 1000);
      this.#last = now;
    }
    return this.#tokens;
  }

  take(bytes: number): void {
    this.#tokens -= bytes;
  }

  /** Milliseconds until `bytes` tokens are there (call `available` first). */
  msUntil(bytes: number): number {
    return Math.max(0, ((bytes - this.#tokens) * 1000) / this.#rate);
  }
}

function quantumFor(bytesPerSec: number): number {
  return Math.min(16 * 1024, Math.max(1, Math.floor(bytesPerSec / 100)));
}
