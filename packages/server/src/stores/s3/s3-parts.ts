/**
 * Cuts a stream of chunks into S3 parts and uploads them with bounded concurrency. Each chunk is
 * copied, as it arrives, into a part-sized buffer from the store's budget (s3-part-buffers.ts);
 * a full buffer is queued for UploadPart and goes back to the budget once its upload has settled.
 * Memory: the buffer being filled plus at most `concurrency` parts queued or in flight, so at most
 * (concurrency + 1) parts per append — and the reader is paused (the body is not read) while
 * every upload slot is busy or the budget has no buffer to give.
 */
import type { ChunkSink } from '../body-reader.ts';
import type { PartBuffers } from './s3-part-buffers.ts';
import { type PartPlan, partSizeOf } from './s3-part-size.ts';

export interface UploadedPart {
  n: number;
  size: number;
  etag: string;
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
  #uploaded = new Map<number, UploadedPart>();
  #settled: Array<() => void> = [];

  constructor(options: PartCutterOptions) {
    this.#options = options;
    this.#next = options.firstPart;
    if (options.initial !== undefined && options.initial.byteLength > 0) this.push(options.initial);
  }

  get full(): boolean {
    return this.#pendingBytes > 0 || this.#inFlight + this.#queue.length >= this.#options.concurrency;
  }

  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** Number of the next part to be cut. */
  get nextPart(): number {
    return this.#next;
  }

  push(chunk: Uint8Array): void {
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
        this.#current = buffer;
        this.#filled = 0;
      }
      const chunk = this.#pending[0]!;
      const room = this.#current.byteLength - this.#filled;
      if (chunk.byteLength <= room) {
        this.#current.set(chunk, this.#filled);
        this.#filled += chunk.byteLength;
        this.#pending.shift();
      } else {
        this.#current.set(chunk.subarray(0, room), this.#filled);
        this.#filled += room;
        this.#pending[0] = chunk.subarray(room);
      }
      this.#pendingBytes -= Math.min(chunk.byteLength, room);
      if (this.#filled === this.#current.byteLength) {
        this.#queue.push({ n: this.#next, body: this.#current });
        this.#next += 1;
        this.#current = undefined;
      }
    }
    this.#pump();
  }

  #granted(buffer: Buffer): void {
    this.#cancelWait = undefined;
    this.#current = buffer;
    this.#filled = 0;
    this.#fill();
    this.#changed();
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
