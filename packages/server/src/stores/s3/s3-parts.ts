/**
 * Cuts a stream of chunks into S3 parts and uploads them with bounded concurrency. Each chunk is
 * copied, as it arrives, into a part-sized buffer from the store's budget (s3-part-buffers.ts);
 * a full buffer is queued for UploadPart and goes back to the budget once its upload has settled.
 * Memory: the buffer being filled plus at most `concurrency` parts queued or in flight, so at most
 * (concurrency + 1) parts per append — and the reader is paused (the body is not read) while
 * every upload slot is busy or the budget has no buffer to give.
 *
 * A part the body will fill (its declared length says so) is also streamed to S3 while it is being
 * received, when an upload slot is free: its UploadPart then ends with its last byte instead of
 * starting after it (for a client that sends one part per PATCH, the part's whole upload time was
 * added to every PATCH). The buffer still takes every byte: if the body ends short, the streamed
 * request is aborted and the bytes are kept as before; if the streamed request fails, the full
 * buffer is uploaded the usual way.
 */
import type { ChunkSink } from '../body-reader.ts';
import type { PartBuffers } from './s3-part-buffers.ts';
import { type PartPlan, partSizeOf } from './s3-part-size.ts';

export interface UploadedPart {
  n: number;
  size: number;
  etag: string;
}

/** One part's UploadPart whose body is written while it arrives. */
export interface StreamedPart {
  /** Adds bytes to the body; the caller keeps them unchanged until `done` settles. */
  write(bytes: Uint8Array): void;
  /** The body is complete. */
  end(): void;
  /** Stops the request (the body ended short); `done` then rejects. */
  abort(): void;
  /** The part's ETag. */
  done: Promise<string>;
}

export interface PartCutterOptions {
  /** Number of the first part this cutter writes. */
  firstPart: number;
  plan: PartPlan;
  concurrency: number;
  /** Where part buffers come from and go back to. */
  buffers: PartBuffers;
  /** Uploads one part; resolves with its ETag. */
  upload(n: number, body: Buffer): Promise<string>;
  /** Bytes that go before the first chunk (the incomplete part of an earlier append). */
  initial?: Buffer;
  /** Starts an UploadPart of `size` bytes whose body is streamed (see above). */
  stream?(n: number, size: number): StreamedPart;
  /** Bytes the body is expected to bring (its declared length, within its limit). */
  expectedBytes?: number;
}

export class PartCutter implements ChunkSink {
  onChange: (() => void) | undefined;
  /** The first upload error; once set, nothing more is uploaded. */
  failure: unknown;

  #options: PartCutterOptions;
  /** The part being filled, and how many of its bytes are. */
  #current: Buffer | undefined;
  #filled = 0;
  /** Chunks (or what is left of them) waiting for a buffer. */
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  /** Withdraws the request for a buffer while one is waited for. */
  #cancelWait: (() => void) | undefined;
  #closed = false;
  #next: number;
  #queue: Array<{ n: number; body: Buffer }> = [];
  #inFlight = 0;
  /** The part being filled is also being streamed (it holds an upload slot until it settles). */
  #streaming: { n: number; part: StreamedPart; failed: boolean } | undefined;
  /** Bytes of the body still expected after those pushed so far. */
  #expected: number;
  #uploaded = new Map<number, UploadedPart>();
  #settled: Array<() => void> = [];

  constructor(options: PartCutterOptions) {
    this.#options = options;
    this.#next = options.firstPart;
    this.#expected = options.expectedBytes ?? 0;
    if (options.initial !== undefined && options.initial.byteLength > 0) this.#push(options.initial);
  }

  get full(): boolean {
    // A part being streamed holds a slot, but it is the one more bytes go into.
    const streaming = this.#streaming !== undefined && !this.#streaming.failed ? 1 : 0;
    return (
      this.#pendingBytes > 0 || this.#inFlight - streaming + this.#queue.length >= this.#options.concurrency
    );
  }

  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** Number of the next part to be cut. */
  get nextPart(): number {
    return this.#next;
  }

  push(chunk: Uint8Array): void {
    this.#expected = Math.max(0, this.#expected - chunk.byteLength);
    this.#push(chunk);
  }

  #push(chunk: Uint8Array): void {
    if (this.failed || this.#closed) return;
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.byteLength;
    this.#fill();
  }

  /**
   * Waits until every part cut so far is uploaded or failed. Bytes that wait for a buffer and
   * make less than a part stop waiting: `takeRest` returns them.
   */
  settle(): Promise<void> {
    // The body has ended: a part being streamed that it did not fill never will be.
    this.#expected = 0;
    this.#stopStreaming();
    if (this.#cancelWait !== undefined && this.#pendingBytes < partSizeOf(this.#options.plan, this.#next)) {
      this.#cancelWait();
      this.#cancelWait = undefined;
    }
    if (this.#idle()) return Promise.resolve();
    return new Promise((resolve) => this.#settled.push(resolve));
  }

  /**
   * The bytes not yet cut into a part (fewer than one part), after `settle`. They may lie in a
   * buffer of the budget: use them before `close`.
   */
  takeRest(): Buffer {
    if (this.#current !== undefined) return this.#current.subarray(0, this.#filled);
    const rest = Buffer.concat(this.#pending, this.#pendingBytes);
    this.#pending = [];
    this.#pendingBytes = 0;
    return rest;
  }

  /** Gives every buffer not in an upload back to the budget; uploads in flight give theirs when they settle. */
  close(): void {
    this.#closed = true;
    this.#stopStreaming();
    this.#cancelWait?.();
    this.#cancelWait = undefined;
    if (this.#current !== undefined) this.#options.buffers.give(this.#current);
    this.#current = undefined;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#drop();
  }

  /** Parts uploaded without a gap from the first part, in order. */
  contiguous(): UploadedPart[] {
    const parts: UploadedPart[] = [];
    for (let n = this.#options.firstPart; this.#uploaded.has(n); n++) parts.push(this.#uploaded.get(n)!);
    return parts;
  }

  /** Copies pending chunks into buffers, queueing each full one; asks for a buffer when it has none. */
  #fill(): void {
    while (this.#pendingBytes > 0 && !this.failed && !this.#closed) {
      if (this.#current === undefined) {
        if (this.#cancelWait !== undefined) break;
        const size = partSizeOf(this.#options.plan, this.#next);
        const buffer = this.#options.buffers.tryTake(size);
        if (buffer === undefined) {
          this.#cancelWait = this.#options.buffers.wait(size, (granted) => this.#granted(granted));
          break;
        }
        this.#begin(buffer);
      }
      const current = this.#current!;
      const chunk = this.#pending[0]!;
      const room = current.byteLength - this.#filled;
      const length = Math.min(chunk.byteLength, room);
      current.set(length === chunk.byteLength ? chunk : chunk.subarray(0, length), this.#filled);
      if (this.#streaming !== undefined && !this.#streaming.failed) {
        this.#streaming.part.write(current.subarray(this.#filled, this.#filled + length));
      }
      this.#filled += length;
      if (length === chunk.byteLength) this.#pending.shift();
      else this.#pending[0] = chunk.subarray(length);
      this.#pendingBytes -= length;
      if (this.#filled === current.byteLength) this.#cut(current);
    }
    this.#pump();
  }

  #granted(buffer: Buffer): void {
    this.#cancelWait = undefined;
    this.#begin(buffer);
    this.#fill();
    this.#changed();
  }

  /** A buffer for the next part; its upload starts now when the body will fill it and a slot is free. */
  #begin(buffer: Buffer): void {
    this.#current = buffer;
    this.#filled = 0;
    const { stream, concurrency } = this.#options;
    const coming = this.#pendingBytes + this.#expected;
    if (
      stream === undefined ||
      coming < buffer.byteLength ||
      this.#inFlight + this.#queue.length >= concurrency
    ) {
      return;
    }
    const n = this.#next;
    const streaming = { n, part: stream(n, buffer.byteLength), failed: false };
    this.#streaming = streaming;
    this.#inFlight += 1;
    streaming.part.done.then(
      (etag) => {
        // Aborted (#stopStreaming gave its slot back; the buffer is still being used).
        if (streaming.failed) return;
        this.#uploaded.set(n, { n, size: buffer.byteLength, etag });
        this.#options.buffers.give(buffer);
        this.#done();
      },
      () => {
        if (streaming.failed) return;
        streaming.failed = true;
        if (this.#streaming === streaming) {
          // Still being filled: its slot is free again, and once full the buffer is queued (#cut).
          this.#inFlight -= 1;
          this.#pump();
          this.#changed();
        } else if (this.#closed || this.failed) {
          this.#options.buffers.give(buffer);
          this.#done();
        } else {
          // Full already: the buffer is uploaded the usual way, in this slot.
          this.#queue.push({ n, body: buffer });
          this.#done();
        }
      },
    );
  }

  /** The part in `buffer` is full: its streamed upload ends, or it is queued for upload. */
  #cut(buffer: Buffer): void {
    const streaming = this.#streaming;
    const n = this.#next;
    this.#streaming = undefined;
    this.#current = undefined;
    this.#next += 1;
    if (streaming !== undefined && !streaming.failed) streaming.part.end();
    else this.#queue.push({ n, body: buffer });
  }

  /** Aborts the streamed upload of a part that will not be filled; its bytes stay in the buffer. */
  #stopStreaming(): void {
    const streaming = this.#streaming;
    if (streaming === undefined) return;
    this.#streaming = undefined;
    if (!streaming.failed) {
      streaming.failed = true;
      this.#inFlight -= 1;
      streaming.part.abort();
      this.#changed();
    }
  }

  /** Queued parts that will not be uploaded (a failure, or closed): their buffers go back. */
  #drop(): void {
    for (const { body } of this.#queue.splice(0)) this.#options.buffers.give(body);
  }

  #pump(): void {
    while (!this.failed && this.#inFlight < this.#options.concurrency && this.#queue.length > 0) {
      const { n, body } = this.#queue.shift()!;
      this.#inFlight += 1;
      this.#options.upload(n, body).then(
        (etag) => {
          this.#uploaded.set(n, { n, size: body.byteLength, etag });
          this.#options.buffers.give(body);
          this.#done();
        },
        (error: unknown) => {
          this.failure ??= error;
          this.#options.buffers.give(body);
          this.#drop();
          this.#cancelWait?.();
          this.#cancelWait = undefined;
          this.#done();
        },
      );
    }
  }

  #idle(): boolean {
    return (
      this.#inFlight === 0 &&
      (this.#queue.length === 0 || this.failed) &&
      (this.#cancelWait === undefined || this.failed)
    );
  }

  #done(): void {
    this.#inFlight -= 1;
    this.#pump();
    this.#changed();
  }

  #changed(): void {
    if (this.#idle()) {
      for (const resolve of this.#settled.splice(0)) resolve();
    }
    if (this.failed || !this.full) this.onChange?.();
  }
}
