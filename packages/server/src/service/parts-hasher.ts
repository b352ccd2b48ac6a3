/**
 * The whole-file SHA-256 of a parts upload, computed while its parts arrive, so `complete` does not
 * read the file back.
 *
 * Parts arrive in parallel and out of order, but SHA-256 takes bytes in order. Per upload, a running
 * hash covers parts 1..cursor-1. The part at the cursor, while it is being received, is hashed as its
 * chunks arrive (its "tap" is active). Parts after it keep their received chunks in memory until the
 * cursor reaches them, within one budget for the whole process; a part that does not fit is read back
 * from storage once the cursor reaches it (in the background, under the part's lock, which a writer
 * of that part can take back at once).
 *
 * A part write that fails after some of its bytes were hashed puts the hash back to the copy taken
 * at the part's start. `finish` (called by `complete` while it holds every part's lock) checks that
 * every hashed part is still the one recorded, by its `partIdentity` (the tag of the write that
 * stored it; its SHA-256 on records from before write tags); anything it cannot vouch
 * for (a restart, another node, a part re-sent after it was hashed) makes it answer `null`, and the
 * caller hashes the stored file from the start instead. The running state is never persisted.
 *
 * A store that cannot read an upload in progress back (S3: `readsInProgress: false`) makes a spilled
 * part fatal to the running hash: the caller would have to finish the object first and read it all
 * back. There the budget is not taken from other uploads (that would spoil them all); an upload whose
 * part does not fit, or whose state was lost, gives up its running hash and all its memory at once.
 */
import type { Lock, Locker } from '../meta/locker.ts';
import { NO_PART_SHA256, type PartRecord, partIdentity, type UploadRecord } from '../meta/meta-store.ts';
import type { DataStore, Downloadable } from '../stores/data-store.ts';
import type { DigestThread, ThreadDigest } from './digest-thread.ts';

export interface PartsHasherOptions {
  /** Storage to read parts back from; without it, parts that were not kept in memory cannot be hashed. */
  reader: (DataStore & Downloadable) | undefined;
  locker: Locker;
  /** Bytes of received chunks the whole process may keep for hashing in order. */
  retainBytes: number;
  lockWaitMs: number;
  /** False when `reader` cannot read parts of an upload in progress (S3). Default true. */
  readsInProgress?: boolean;
  /** Where the running hashes are computed (the hashing thread). */
  digests: DigestThread;
}

/** The geometry of a parts upload. */
export interface PartsLayout {
  id: string;
  storageKey: string;
  size: number;
  partSize: number;
  partCount: number;
}

/** One part write, as the hasher sees it. Exactly one of `stored` or `failed` must be called. */
export interface PartTap {
  chunk(chunk: Uint8Array): void;
  /** The part's bytes are recorded; `identity` is the record's `partIdentity`. */
  stored(identity: string): void;
  failed(): void;
}

interface Tap extends PartTap {
  readonly n: number;
  chunks: Uint8Array[] | undefined;
  retained: number;
  /** Its chunks go straight into the running hash. */
  active: boolean;
  /** Its chunks were dropped (over budget): it must be read back once stored. */
  spilled: boolean;
  ended: boolean;
}

interface Waiting {
  /** The recorded part's `partIdentity`. */
  identity: string;
  /** The part's bytes, kept in memory; undefined: read them back from storage. */
  chunks: Uint8Array[] | undefined;
  retained: number;
}

interface Running {
  layout: PartsLayout;
  hash: ThreadDigest;
  /** The part to hash next; parts below it are in `hash`. */
  cursor: number;
  /** The hash as it was at the start of the cursor's part, while that part's tap is active. */
  atPartStart: ThreadDigest | undefined;
  /** Each hashed part's own SHA-256, to check at the end that the parts did not change since. */
  hashed: Map<number, string>;
  waiting: Map<number, Waiting>;
  taps: Map<number, Tap>;
  /** Reading back from storage: one read at a time per upload. */
  reading: Promise<void> | undefined;
  readAbort: AbortController | undefined;
  readHoldsLock: boolean;
  finishing: boolean;
  /** The running hash was given up (a part that cannot be read back is missing from memory). */
  lost: boolean;
  usedAt: number;
}

/** Upload states kept at most; the least recently used beyond this are forgotten. */
const MAX_RUNNING = 4096;

export class PartsHasher {
  readonly #reader: (DataStore & Downloadable) | undefined;
  readonly #locker: Locker;
  readonly #budget: number;
  readonly #lockWaitMs: number;
  readonly #readsInProgress: boolean;
  readonly #digests: DigestThread;
  readonly #running = new Map<string, Running>();
  #retained = 0;

  constructor(options: PartsHasherOptions) {
    this.#reader = options.reader;
    this.#locker = options.locker;
    this.#budget = options.retainBytes;
    this.#lockWaitMs = options.lockWaitMs;
    this.#readsInProgress = options.readsInProgress ?? true;
    this.#digests = options.digests;
  }

  /** Bytes of part chunks held in memory right now. */
  get retainedBytes(): number {
    return this.#retained;
  }

  /**
   * A part write of `layout` begins. `recorded` lists the parts already stored, consulted only
   * when this process has no state for the upload yet.
   */
  begin(layout: PartsLayout, n: number, recorded: () => Promise<PartRecord[]>): Promise<PartTap> {
    const running = this.#running.get(layout.id);
    if (running !== undefined && n >= running.cursor) return Promise.resolve(this.#tap(running, n));
    // A part already in the running hash is being replaced (or there is no state yet): start over.
    if (running !== undefined) this.forget(layout.id);
    return recorded().then((parts) => {
      const state = this.#running.get(layout.id) ?? this.#start(layout, parts);
      return this.#tap(state, n);
    });
  }

  /**
   * The whole file's SHA-256 (hex), or null when the running state cannot vouch for it. The caller
   * holds every part's lock and passes the parts as recorded. With `readBack: false` a part that
   * waits in storage, not in memory, makes it answer null instead of being read.
   */
  async finish(
    record: UploadRecord,
    parts: PartRecord[],
    options: { signal?: AbortSignal; readBack?: boolean } = {},
  ): Promise<string | null> {
    const { signal, readBack = true } = options;
    const state = this.#running.get(record.id);
    if (state === undefined) return null;
    if (state.lost) {
      this.forget(record.id);
      return null;
    }
    state.finishing = true;
    // A read waiting for a part's lock would wait for the caller, who holds them all; one that
    // holds its lock finishes its part.
    if (!state.readHoldsLock) state.readAbort?.abort();
    await state.reading;
    try {
      const recorded = new Map(parts.map((part) => [part.n, partIdentity(part)]));
      for (const [n, identity] of state.hashed) {
        if (identity === NO_PART_SHA256 || recorded.get(n) !== identity) return null;
      }
      const { partCount } = state.layout;
      for (let n = state.cursor; n <= partCount; n++) {
        const identity = recorded.get(n);
        if (identity === undefined || identity === NO_PART_SHA256) return null;
        const waiting = state.waiting.get(n);
        if (waiting?.chunks !== undefined && waiting.identity === identity) {
          for (const chunk of waiting.chunks) state.hash.update(chunk);
        } else if (!readBack || !(await this.#readPart(state, n, signal).catch(() => false))) {
          // The caller hashes the stored file itself, and reports what storage says.
          return null;
        }
      }
      return (await state.hash.digest()).toString('hex');
    } finally {
      this.forget(record.id);
    }
  }

  /** Stops every read from storage and forgets every upload (the server is shutting down). */
  close(): void {
    for (const id of [...this.#running.keys()]) this.forget(id);
  }

  /** Drops an upload's state (completed elsewhere, deleted, expired). */
  forget(id: string): void {
    const state = this.#running.get(id);
    if (state === undefined) return;
    this.#running.delete(id);
    // Its taps still in use stop adding to the hash, which is freed now.
    state.lost = true;
    state.readAbort?.abort();
    // A read in progress still adds to its hash; it is dropped when that read ends.
    if (state.reading === undefined) state.hash.discard();
    state.atPartStart?.discard();
    state.atPartStart = undefined;
    for (const waiting of state.waiting.values()) this.#release(waiting.retained);
    for (const tap of state.taps.values()) this.#drop(tap);
    state.waiting.clear();
  }

  #start(layout: PartsLayout, parts: PartRecord[]): Running {
    if (this.#running.size >= MAX_RUNNING) this.#evictOldest();
    const state: Running = {
      layout,
      hash: this.#digests.create('sha256'),
      cursor: 1,
      atPartStart: undefined,
      hashed: new Map(),
      waiting: new Map(),
      taps: new Map(),
      reading: undefined,
      readAbort: undefined,
      readHoldsLock: false,
      finishing: false,
      lost: false,
      usedAt: Date.now(),
    };
    for (const part of parts) {
      if (part.n <= layout.partCount)
        state.waiting.set(part.n, { identity: partIdentity(part), chunks: undefined, retained: 0 });
    }
    this.#running.set(layout.id, state);
    // Parts stored before this process knew the upload cannot be hashed without reading them back.
    if (!this.#readsInProgress && state.waiting.size > 0) this.#giveUp(state);
    return state;
  }

  #tap(state: Running, n: number): PartTap {
    state.usedAt = Date.now();
    const previous = state.taps.get(n);
    if (previous !== undefined) this.#end(state, previous, false);
    const stale = state.waiting.get(n);
    if (stale !== undefined) {
      this.#release(stale.retained);
      state.waiting.delete(n);
    }
    const tap: Tap = {
      n,
      chunks: [],
      retained: 0,
      active: false,
      spilled: false,
      ended: false,
      chunk: (chunk) => {
        if (tap.ended || state.lost) return;
        if (tap.active) {
          state.hash.update(chunk);
          return;
        }
        if (tap.spilled || tap.chunks === undefined) return;
        if (!this.#reserve(chunk.byteLength, state)) {
          if (!this.#readsInProgress) {
            this.#giveUp(state);
            return;
          }
          this.#drop(tap);
          tap.spilled = true;
          return;
        }
        tap.chunks.push(chunk);
        tap.retained += chunk.byteLength;
      },
      stored: (identity) => this.#end(state, tap, true, identity),
      failed: () => this.#end(state, tap, false),
    };
    state.taps.set(n, tap);
    if (n === state.cursor) this.#activate(state, tap);
    return tap;
  }

  /** Frees everything an upload holds; its `finish` answers null. Its state stays, marked lost. */
  #giveUp(state: Running): void {
    state.lost = true;
    state.readAbort?.abort();
    for (const waiting of state.waiting.values()) this.#release(waiting.retained);
    state.waiting.clear();
    for (const tap of state.taps.values()) {
      this.#drop(tap);
      tap.spilled = true;
    }
    state.atPartStart?.discard();
    state.atPartStart = undefined;
  }

  /** The tap's part is next: hash what it kept, then hash its chunks as they arrive. */
  #activate(state: Running, tap: Tap): void {
    if (tap.spilled || state.lost) return;
    state.atPartStart = state.hash.copy();
    for (const chunk of tap.chunks ?? []) state.hash.update(chunk);
    this.#drop(tap);
    tap.active = true;
  }

  #end(state: Running, tap: Tap, stored: boolean, identity: string = NO_PART_SHA256): void {
    if (tap.ended) return;
    tap.ended = true;
    if (state.taps.get(tap.n) === tap) state.taps.delete(tap.n);
    if (this.#running.get(state.layout.id) !== state) {
      this.#drop(tap);
      return;
    }
    if (tap.active) {
      const atStart = state.atPartStart;
      state.atPartStart = undefined;
      if (stored) {
        atStart?.discard();
        state.hashed.set(tap.n, identity);
        state.cursor = tap.n + 1;
      } else if (atStart !== undefined) {
        state.hash.discard();
        state.hash = atStart;
      }
    } else if (stored && !state.lost) {
      const chunks = tap.spilled ? undefined : tap.chunks;
      state.waiting.set(tap.n, { identity, chunks, retained: chunks === undefined ? 0 : tap.retained });
      tap.chunks = undefined;
      tap.retained = 0;
    } else {
      this.#drop(tap);
    }
    this.#advance(state);
  }

  /** Moves the cursor over every part that can be hashed now. */
  #advance(state: Running): void {
    const { partCount } = state.layout;
    while (!state.finishing && !state.lost && state.cursor <= partCount && state.reading === undefined) {
      const n = state.cursor;
      const tap = state.taps.get(n);
      if (tap !== undefined) {
        if (!tap.active) this.#activate(state, tap);
        return;
      }
      const waiting = state.waiting.get(n);
      if (waiting === undefined) return;
      if (waiting.chunks === undefined) {
        if (!this.#readsInProgress) this.#giveUp(state);
        else this.#readInBackground(state, n);
        return;
      }
      for (const chunk of waiting.chunks) state.hash.update(chunk);
      this.#release(waiting.retained);
      state.waiting.delete(n);
      state.hashed.set(n, waiting.identity);
      state.cursor = n + 1;
    }
  }

  #readInBackground(state: Running, n: number): void {
    if (this.#reader === undefined) return;
    const abort = new AbortController();
    state.readAbort = abort;
    state.reading = (async () => {
      let lock: Lock | undefined;
      let hashed = false;
      try {
        lock = await this.#locker.acquire(`${state.layout.id}/parts/${n}`, {
          timeoutMs: this.#lockWaitMs,
          signal: abort.signal,
          onReleaseRequested: () => abort.abort(),
        });
        state.readHoldsLock = true;
        const waiting = state.waiting.get(n);
        if (abort.signal.aborted || waiting === undefined || state.cursor !== n || state.taps.has(n)) return;
        const before = state.hash.copy();
        let complete = false;
        try {
          complete = await this.#readPart(state, n, abort.signal);
        } finally {
          if (complete && !abort.signal.aborted) {
            before.discard();
            state.waiting.delete(n);
            state.hashed.set(n, waiting.identity);
            state.cursor = n + 1;
            hashed = true;
          } else {
            state.hash.discard();
            state.hash = before;
          }
        }
      } catch {
        // A writer took the part back, or storage failed: `finish` reads it, or hashes from the start.
      } finally {
        state.readHoldsLock = false;
        await lock?.release();
        if (state.readAbort === abort) state.readAbort = undefined;
        state.reading = undefined;
      }
      // Only after a part was hashed: a failed read is not retried here (`finish` reads what is
      // left), and a part taken back by its writer is hashed as it arrives again.
      if (hashed) this.#advance(state);
    })();
  }

  /** Adds part `n`'s stored bytes to the running hash; false if they could not all be read. */
  async #readPart(state: Running, n: number, signal?: AbortSignal): Promise<boolean> {
    if (this.#reader === undefined) return false;
    const { storageKey, size, partSize } = state.layout;
    const start = (n - 1) * partSize;
    const end = Math.min(size, start + partSize);
    if (end <= start) return true;
    let read = 0;
    for await (const chunk of this.#reader.read(storageKey, { start, end: end - 1 }, signal)) {
      state.hash.update(chunk as Uint8Array);
      read += (chunk as Uint8Array).byteLength;
    }
    return read === end - start;
  }

  /** Takes `bytes` from the budget, first making room by sending other waiting parts to storage. */
  #reserve(bytes: number, current: Running): boolean {
    if (this.#retained + bytes > this.#budget && this.#readsInProgress) {
      for (const state of this.#running.values()) {
        if (state === current) continue;
        for (const waiting of state.waiting.values()) {
          if (waiting.chunks === undefined) continue;
          this.#release(waiting.retained);
          waiting.chunks = undefined;
          waiting.retained = 0;
          if (this.#retained + bytes <= this.#budget) break;
        }
        if (this.#retained + bytes <= this.#budget) break;
      }
    }
    if (this.#retained + bytes > this.#budget) return false;
    this.#retained += bytes;
    return true;
  }

  #drop(tap: Tap): void {
    this.#release(tap.retained);
    tap.chunks = undefined;
    tap.retained = 0;
  }

  #release(bytes: number): void {
    this.#retained -= bytes;
  }

  #evictOldest(): void {
    let oldest: Running | undefined;
    for (const state of this.#running.values()) {
      if (state.taps.size > 0 || state.finishing) continue;
      if (oldest === undefined || state.usedAt < oldest.usedAt) oldest = state;
    }
    if (oldest !== undefined) this.forget(oldest.layout.id);
  }
}
