/**
 * Cuts a stream of chunks into S3 parts and uploads them with bounded concurrency. Memory: the
 * part being filled (< one part) plus at most `concurrency` parts queued or in flight, so about
 * (concurrency + 1) × part size per append; past that the body is paused. A part's buffer is used
 * again for a later part once its upload has settled, so a long PATCH does not leave one garbage
 * buffer per part behind it (which made the process's peak memory grow with the upload's size).
 */
import type { ChunkSink } from '../body-reader.ts';
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
  #chunks: Uint8Array[] = [];
  #bytes = 0;
  #next: number;
  #queue: Array<{ n: number; body: Buffer }> = [];
  #inFlight = 0;
  #uploaded = new Map<number, UploadedPart>();
  #settled: Array<() => void> = [];
  /** Buffers of uploaded parts, free for the next parts of the same size. */
  #free: ArrayBuffer[] = [];

  constructor(options: PartCutterOptions) {
    this.#options = options;
    this.#next = options.firstPart;
    if (options.initial !== undefined && options.initial.byteLength > 0) this.push(options.initial);
  }

  get full(): boolean {
    return this.#inFlight + this.#queue.length >= this.#options.concurrency;
  }

  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** Number of the next part to be cut. */
  get nextPart(): number {
    return this.#next;
  }

  push(chunk: Uint8Array): void {
    if (this.failed) return;
    this.#chunks.push(chunk);
    this.#bytes += chunk.byteLength;
    for (;;) {
      const size = partSizeOf(this.#options.plan, this.#next);
      if (this.#bytes < size) break;
      this.#queue.push({ n: this.#next, body: this.#take(size, true) });
      this.#next += 1;
    }
    this.#pump();
  }

  /** Waits until every part cut so far is uploaded or failed. */
  settle(): Promise<void> {
    if (this.#inFlight === 0 && (this.#queue.length === 0 || this.failed)) return Promise.resolve();
    return new Promise((resolve) => this.#settled.push(resolve));
  }

  /** The bytes not yet cut into a part (fewer than one part), taken out of the cutter. */
  takeRest(): Buffer {
    return this.#take(this.#bytes, false);
  }

  /** Parts uploaded without a gap from the first part, in order. */
  contiguous(): UploadedPart[] {
    const parts: UploadedPart[] = [];
    for (let n = this.#options.firstPart; this.#uploaded.has(n); n++) parts.push(this.#uploaded.get(n)!);
    return parts;
  }

  /** The next `size` bytes, copied into one buffer (a free one of that size when `pooled`). */
  #take(size: number, pooled: boolean): Buffer {
    if (size === 0) return Buffer.alloc(0);
    const index = pooled ? this.#free.findIndex((buffer) => buffer.byteLength === size) : -1;
    const target =
      index >= 0 ? Buffer.from(this.#free.splice(index, 1)[0]!, 0, size) : Buffer.allocUnsafeSlow(size);
    let bytes = 0;
    while (bytes < size) {
      const chunk = this.#chunks[0]!;
      const want = size - bytes;
      if (chunk.byteLength <= want) {
        target.set(chunk, bytes);
        bytes += chunk.byteLength;
        this.#chunks.shift();
      } else {
        target.set(chunk.subarray(0, want), bytes);
        this.#chunks[0] = chunk.subarray(want);
        bytes += want;
      }
    }
    this.#bytes -= size;
    return target;
  }

  /** A settled part's buffer: the upload no longer reads it. */
  #release(body: Buffer): void {
    const buffer = body.buffer;
    if (buffer instanceof ArrayBuffer && buffer.byteLength === body.byteLength) this.#free.push(buffer);
  }

  #pump(): void {
    while (!this.failed && this.#inFlight < this.#options.concurrency && this.#queue.length > 0) {
      const { n, body } = this.#queue.shift()!;
      this.#inFlight += 1;
      this.#options.upload(n, body).then(
        (etag) => {
          this.#uploaded.set(n, { n, size: body.byteLength, etag });
          this.#release(body);
          this.#done();
        },
        (error: unknown) => {
          this.failure ??= error;
          this.#queue = [];
          this.#release(body);
          this.#done();
        },
      );
    }
  }

  #done(): void {
    this.#inFlight -= 1;
    this.#pump();
    if (this.#inFlight === 0 && (this.#queue.length === 0 || this.failed)) {
      for (const resolve of this.#settled.splice(0)) resolve();
    }
    if (this.failed || !this.full) this.onChange?.();
  }
}
