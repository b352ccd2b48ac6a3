/**
 * The hot path of the fs store: streams a request body into an open file at a tracked position.
 *
 * Why it looks like this (measured in bench/fs-append.ts): an HTTP body arrives as many ~64 KiB
 * chunks. Writing each one with its own promise (or through `fs.createWriteStream`) spends more
 * time in the thread pool round trip than in copying bytes. Here chunks are queued as they arrive
 * (no copy) and one positional `writev` at a time takes everything queued — up to 1024 buffers or
 * 4 MiB — so the batch size grows by itself when the disk is slower than the network. The source is
 * paused while the queue is full, which bounds memory per upload to a few MiB.
 *
 * A body that breaks (error, premature close), an abort signal and the size limit all end the same
 * way: stop reading, write what already arrived, report why. Only a failing write (ENOSPC, EIO)
 * rejects, with the file system's error as-is.
 */
import { writev, writevSync } from 'node:fs';
import { type ChunkSink, readBody } from '../body-reader.ts';
import type { AppendOptions, AppendResult, ByteSource } from '../data-store.ts';
import { DirectWriter, type SlabPool } from './fs-direct.ts';
import { type BodyWriter, PROCESS_HIGH_WATER_BYTES, processBudget } from './fs-writer.ts';

/**
 * A body declared this small (`expectedBytes`) is collected and written with one synchronous
 * `writev` when it ends. Measured here for 64 KiB written to a new file: 68 µs of CPU synchronously,
 * 106–110 µs through the thread pool (waking a worker thread costs more than the write), and the
 * event loop is blocked for about as long as a page-cache copy of 256 KiB takes.
 */
export const SMALL_BODY_BYTES = 256 * 1024;

/** Most bytes handed to one `writev` call. */
const MAX_BATCH_BYTES = 4 * 1024 * 1024;
/** Linux's IOV_MAX: libuv would split a longer vector anyway. */
const MAX_BATCH_BUFFERS = 1024;
/** Pause the body once this much waits behind the write in flight. */
const HIGH_WATER_BYTES = 4 * 1024 * 1024;

export { PROCESS_HIGH_WATER_BYTES };

/**
 * Queues chunks and writes them at increasing positions with at most one `writev` in flight.
 * `written` only counts bytes the kernel accepted.
 */
class PositionalWriter implements BodyWriter {
  written = 0;
  failure: unknown;
  onRoom: (() => void) | undefined;
  onFail: (() => void) | undefined;

  #fd: number;
  #position: number;
  #queue: Uint8Array[] = [];
  #queuedBytes = 0;
  /** Queued plus in flight: what this writer counts in `processBudget.held`. */
  #heldBytes = 0;
  #writing = false;
  #onIdle: (() => void) | undefined;

  constructor(fd: number, position: number) {
    this.#fd = fd;
    this.#position = position;
  }

  get full(): boolean {
    return (
      this.#queuedBytes >= HIGH_WATER_BYTES ||
      (this.#queuedBytes > 0 && processBudget.held >= PROCESS_HIGH_WATER_BYTES)
    );
  }

  push(chunk: Uint8Array): void {
    if (this.failure !== undefined) return;
    this.#queue.push(chunk);
    this.#queuedBytes += chunk.byteLength;
    this.#heldBytes += chunk.byteLength;
    processBudget.held += chunk.byteLength;
    if (!this.#writing) this.#writeNext();
  }

  drain(callback: () => void): void {
    if (this.failure !== undefined || (!this.#writing && this.#queuedBytes === 0)) {
      callback();
      return;
    }
    this.#onIdle = callback;
  }

  #writeNext(): void {
    let batch: Uint8Array[];
    let bytes: number;
    if (this.#queue.length <= MAX_BATCH_BUFFERS && this.#queuedBytes <= MAX_BATCH_BYTES) {
      batch = this.#queue;
      bytes = this.#queuedBytes;
      this.#queue = [];
    } else {
      let count = 0;
      bytes = 0;
      // Always take at least one buffer, even one larger than the batch limit.
      while (count < this.#queue.length && count < MAX_BATCH_BUFFERS) {
        const size = this.#queue[count]!.byteLength;
        if (count > 0 && bytes + size > MAX_BATCH_BYTES) break;
        bytes += size;
        count++;
      }
      batch = this.#queue.splice(0, count);
    }
    this.#queuedBytes -= bytes;
    this.#writing = true;
    this.#write(batch, bytes);
  }

  #write(batch: Uint8Array[], bytes: number): void {
    writev(this.#fd, batch, this.#position, (error, count) => {
      if (error) {
        this.#fail(error);
        return;
      }
      this.#position += count;
      this.written += count;
      this.#heldBytes -= count;
      processBudget.held -= count;
      if (count < bytes) {
        // A short write (rare on regular files, possible near a full disk): write the rest.
        if (count === 0) {
          this.#fail(Object.assign(new Error('the file system accepted no bytes'), { code: 'EIO' }));
          return;
        }
        this.#write(skipBytes(batch, count), bytes - count);
        return;
      }
      this.#writing = false;
      if (this.#queuedBytes > 0) this.#writeNext();
      if (!this.full) this.onRoom?.();
      if (!this.#writing) this.#idle();
    });
  }

  #fail(error: unknown): void {
    this.failure = error;
    processBudget.held -= this.#heldBytes;
    this.#heldBytes = 0;
    this.#writing = false;
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#idle();
    this.onFail?.();
  }

  #idle(): void {
    const callback = this.#onIdle;
    this.#onIdle = undefined;
    callback?.();
  }
}

/**
 * For small bodies: keeps the chunks (no copy) and writes them synchronously in one `writev` when
 * the body ends, or as soon as `SMALL_BODY_BYTES` are held (a body longer than it said it was).
 */
class SmallBodyWriter implements BodyWriter {
  written = 0;
  failure: unknown;
  onRoom: (() => void) | undefined;
  onFail: (() => void) | undefined;
  readonly full = false;

  #fd: number;
  #position: number;
  #queue: Uint8Array[] = [];
  #queuedBytes = 0;

  constructor(fd: number, position: number) {
    this.#fd = fd;
    this.#position = position;
  }

  push(chunk: Uint8Array): void {
    if (this.failure !== undefined) return;
    this.#queue.push(chunk);
    this.#queuedBytes += chunk.byteLength;
    processBudget.held += chunk.byteLength;
    if (this.#queuedBytes >= SMALL_BODY_BYTES) this.#flush();
  }

  drain(callback: () => void): void {
    this.#flush();
    callback();
  }

  #flush(): void {
    let batch = this.#queue;
    let bytes = this.#queuedBytes;
    this.#queue = [];
    this.#queuedBytes = 0;
    try {
      while (bytes > 0) {
        const count = writevSync(this.#fd, batch, this.#position);
        if (count === 0) throw Object.assign(new Error('the file system accepted no bytes'), { code: 'EIO' });
        this.#position += count;
        this.written += count;
        processBudget.held -= count;
        bytes -= count;
        if (bytes > 0) batch = skipBytes(batch, count);
      }
    } catch (error) {
      processBudget.held -= bytes;
      this.failure = error;
      this.onFail?.();
    }
  }
}

/** The buffers of `batch` after its first `count` bytes (views, no copies). */
function skipBytes(batch: Uint8Array[], count: number): Uint8Array[] {
  let index = 0;
  while (count >= batch[index]!.byteLength) {
    count -= batch[index]!.byteLength;
    index++;
  }
  const rest = batch.slice(index);
  if (count > 0) rest[0] = rest[0]!.subarray(count);
  return rest;
}

/** Where an append may write with direct I/O: the data file's path and the store's aligned memory. */
export interface DirectTarget {
  path: string;
  pool: SlabPool;
}

/**
 * Writes `body` into `fd` from `position`. Resolves with the bytes written and, if the body ended
 * early, why: `signal.reason`, the body's error, an error with code `ERR_STREAM_PREMATURE_CLOSE`,
 * an `UploadError` `ERR_EXCEEDS_LENGTH`, an error thrown by `onChunk`, or a `TypeError` for a chunk
 * that is not bytes. Rejects only when a write fails. Never closes `fd`.
 *
 * A body declared at most `SMALL_BODY_BYTES` long is written synchronously when it ends. Otherwise,
 * with `direct`, the bulk of the body goes to disk with O_DIRECT (fs-direct.ts) when the store has
 * an aligned slab to spare; otherwise, and for the part of the last block the body does not fill,
 * through `fd`.
 */
export function writeBody(
  fd: number,
  position: number,
  body: ByteSource,
  options: AppendOptions = {},
  direct?: DirectTarget,
): Promise<AppendResult> {
  let writer: BodyWriter;
  if (options.expectedBytes !== undefined && options.expectedBytes <= SMALL_BODY_BYTES) {
    writer = new SmallBodyWriter(fd, position);
  } else {
    const slab = direct?.pool.acquire(false);
    writer =
      direct !== undefined && slab !== undefined
        ? new DirectWriter({ fd, path: direct.path, position, pool: direct.pool, slab })
        : new PositionalWriter(fd, position);
  }
  return readBody(body, options, sinkOf(writer)).then(async ({ interruption }) => {
    // Whatever arrived is written before the answer: no received byte is lost.
    await new Promise<void>((resolve) => writer.drain(resolve));
    if (writer.failure !== undefined) throw writer.failure;
    return interruption === undefined
      ? { bytesWritten: writer.written }
      : { bytesWritten: writer.written, interruption };
  });
}

/** The shared body reader's view of a writer: room again and a failed write both wake it. */
function sinkOf(writer: BodyWriter): ChunkSink {
  const sink: ChunkSink = {
    push: (chunk) => writer.push(chunk),
    get full() {
      return writer.full;
    },
    get failed() {
      return writer.failure !== undefined;
    },
    onChange: undefined,
  };
  writer.onRoom = () => sink.onChange?.();
  writer.onFail = () => sink.onChange?.();
  return sink;
}

/** Bytes received by appends in this process and not yet written (for tests and metrics). */
export function heldBytesInProcess(): number {
  return processBudget.held;
}
