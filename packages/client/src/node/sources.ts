/**
 * Node sources: a file path (positional reads of just the bytes a request needs, or ranges the HTTP
 * seam reads as it sends them; the file is never loaded whole) and a stream of unknown length (`Readable` or any async iterable of bytes; at most
 * one chunk plus one stream read is buffered, and its SHA-256 is computed as the bytes pass). Bytes
 * and Blobs are the sources every platform has (core/sources.ts).
 */
import { type FileHandle, open, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClientError, isClientError } from '../core/errors.ts';
import type { Hasher, IncrementalSha256, SourceRange, UploadSource } from '../core/seams.ts';
import { openCommonSource } from '../core/sources.ts';

function unreadable(path: string, cause: unknown, why?: string): ClientError {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  return new ClientError('ERR_SOURCE_UNREADABLE', {
    message: `${path} can no longer be read (${why ?? code ?? String(cause)}); re-select the file`,
    cause,
  });
}

/** A file on disk. The handle opens on first read and reopens after `close` (a retry after a failure). */
/** Buffers kept for reuse per file source (parts in flight at once, and one more). */
const MAX_SPARE_BUFFERS = 17;
/** Smaller reads are cheap to allocate: not worth keeping. */
const MIN_RECYCLED_BYTES = 64 * 1024;

export class NodeFileSource implements UploadSource {
  readonly path: string;
  readonly size: number;
  readonly name: string;
  readonly streamedSha256 = undefined;
  readonly #mtimeMs: number;
  #handle: Promise<FileHandle> | undefined;
  /** Buffers handed back by `recycle`, reused by `read`: no part-sized allocation (and GC) per part. */
  readonly #spare: Buffer[] = [];
  /** Buffers this source allocated and has not been handed back. */
  readonly #lent = new WeakSet<Uint8Array>();

  constructor(path: string, size: number, mtimeMs: number) {
    this.path = path;
    this.size = size;
    this.name = basename(path);
    this.#mtimeMs = mtimeMs;
  }

  static async open(path: string): Promise<NodeFileSource> {
    try {
      const info = await stat(path);
      if (!info.isFile()) {
        throw new ClientError('ERR_INVALID_OPTIONS', { message: `source ${path} is not a regular file` });
      }
      return new NodeFileSource(path, info.size, info.mtimeMs);
    } catch (error) {
      if (isClientError(error)) throw error;
      throw unreadable(path, error);
    }
  }

  /** Throws when the file changed since the upload started (its bytes would no longer match). */
  async checkUnchanged(handle: FileHandle): Promise<void> {
    const info = await handle.stat();
    if (info.size !== this.size || info.mtimeMs !== this.#mtimeMs) {
      throw unreadable(this.path, undefined, 'it changed since the upload started');
    }
  }

  #open(): Promise<FileHandle> {
    this.#handle ??= open(this.path, 'r').then(async (handle) => {
      try {
        await this.checkUnchanged(handle);
        return handle;
      } catch (error) {
        await handle.close();
        throw error;
      }
    });
    const pending = this.#handle;
    pending.catch(() => {
      if (this.#handle === pending) this.#handle = undefined;
    });
    return pending;
  }

  async read(start: number, end: number): Promise<Uint8Array> {
    const length = Math.max(0, Math.min(end, this.size) - start);
    const spare = this.#spare.findIndex((buffer) => buffer.length === length);
    const buffer = spare >= 0 ? (this.#spare.splice(spare, 1)[0] as Buffer) : Buffer.allocUnsafeSlow(length);
    this.#lent.add(buffer);
    await this.#fill(buffer, start);
    return buffer;
  }

  range(start: number, end: number): SourceRange {
    const size = Math.max(0, Math.min(end, this.size) - start);
    return {
      size,
      readInto: (into, offset) => {
        if (offset < 0 || offset + into.length > size) {
          return Promise.reject(
            new RangeError(`bytes ${offset}+${into.length} are outside a range of ${size}`),
          );
        }
        return this.#fill(into, start + offset);
      },
    };
  }

  /** Fills `into` with the file's bytes from `position` on. */
  async #fill(into: Uint8Array, position: number): Promise<void> {
    try {
      const handle = await this.#open();
      let filled = 0;
      while (filled < into.length) {
        const { bytesRead } = await handle.read(into, filled, into.length - filled, position + filled);
        if (bytesRead === 0)
          throw unreadable(this.path, undefined, 'it is shorter than when the upload started');
        filled += bytesRead;
      }
    } catch (error) {
      if (isClientError(error)) throw error;
      throw unreadable(this.path, error);
    }
  }

  release(): void {}

  recycle(bytes: Uint8Array): void {
    if (!this.#lent.has(bytes) || bytes.length < MIN_RECYCLED_BYTES) return;
    this.#lent.delete(bytes);
    this.#spare.push(bytes as Buffer);
    if (this.#spare.length > MAX_SPARE_BUFFERS) this.#spare.shift();
  }

  suspend(): Promise<void> {
    this.#spare.length = 0;
    return this.close();
  }

  async close(): Promise<void> {
    const pending = this.#handle;
    this.#handle = undefined;
    if (pending !== undefined) await (await pending.catch(() => undefined))?.close();
  }
}

/**
 * A stream of unknown length. Reads go forward; bytes stay buffered until `release` says the
 * server confirmed them (a failed PATCH can then be sent again). The size becomes known when the
 * stream ends; the SHA-256 of everything read is then `streamedSha256`.
 */
export class StreamSource implements UploadSource {
  readonly name = undefined;
  #size: number | undefined;
  #sha256: string | undefined;
  readonly #iterator: AsyncIterator<unknown>;
  readonly #hash: IncrementalSha256;
  readonly #close: () => void;
  /** Buffered pieces, in order; the first starts at `#bufferStart`. */
  #pieces: Buffer[] = [];
  #bufferStart = 0;
  #bufferEnd = 0;
  #ended = false;

  constructor(iterable: AsyncIterable<unknown>, hash: IncrementalSha256, close: () => void = () => {}) {
    this.#iterator = iterable[Symbol.asyncIterator]();
    this.#hash = hash;
    this.#close = close;
  }

  get size(): number | undefined {
    return this.#size;
  }

  get streamedSha256(): string | undefined {
    return this.#sha256;
  }

  async #pull(): Promise<void> {
    let next: IteratorResult<unknown>;
    try {
      next = await this.#iterator.next();
    } catch (error) {
      throw new ClientError('ERR_SOURCE_UNREADABLE', {
        message: `the source stream failed (${(error as Error).message}); start the upload again`,
        cause: error,
      });
    }
    if (next.done) {
      this.#ended = true;
      this.#size = this.#bufferEnd;
      this.#sha256 = this.#hash.digestHex();
      return;
    }
    const value = next.value;
    let piece: Buffer;
    if (typeof value === 'string') piece = Buffer.from(value);
    else if (value instanceof Uint8Array)
      piece = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    else throw new ClientError('ERR_INVALID_OPTIONS', { message: 'a source stream must yield bytes' });
    if (piece.length === 0) return;
    this.#hash.update(piece);
    this.#pieces.push(piece);
    this.#bufferEnd += piece.length;
  }

  async read(start: number, end: number): Promise<Uint8Array> {
    if (start < this.#bufferStart) {
      throw new ClientError('ERR_SOURCE_NOT_REWINDABLE', {
        message: `the server wants bytes from ${start}, but the stream already handed over everything before ${this.#bufferStart}`,
      });
    }
    // One byte past `end` tells whether this chunk is the last (its PATCH then declares the length).
    while (!this.#ended && this.#bufferEnd <= end) await this.#pull();
    const to = Math.min(end, this.#bufferEnd);
    if (to <= start) return new Uint8Array(0);
    const out = Buffer.allocUnsafe(to - start);
    let position = this.#bufferStart;
    let filled = 0;
    for (const piece of this.#pieces) {
      const pieceEnd = position + piece.length;
      if (pieceEnd > start && position < to) {
        const from = Math.max(start, position) - position;
        const until = Math.min(to, pieceEnd) - position;
        filled += piece.copy(out, filled, from, until);
      }
      position = pieceEnd;
      if (position >= to) break;
    }
    return out;
  }

  release(offset: number): void {
    while (this.#pieces.length > 0) {
      const first = this.#pieces[0] as Buffer;
      if (this.#bufferStart + first.length > offset) break;
      this.#pieces.shift();
      this.#bufferStart += first.length;
    }
  }

  async close(): Promise<void> {
    this.#pieces = [];
    this.#close();
  }
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function'
  );
}

/** What Node accepts as `source`: a path, bytes, a Blob/File, a Readable / async iterable of bytes, or an UploadSource. */
export async function openNodeSource(input: unknown, hasher: Hasher): Promise<UploadSource> {
  if (typeof input === 'string') return NodeFileSource.open(input);
  if (input instanceof URL && input.protocol === 'file:') return NodeFileSource.open(fileURLToPath(input));
  const common = openCommonSource(input);
  if (common !== undefined) return common;
  if (isAsyncIterable(input) && hasher.incremental !== undefined) {
    const destroy = (input as { destroy?: () => void }).destroy;
    return new StreamSource(input, hasher.incremental(), () => destroy?.call(input));
  }
  throw new ClientError('ERR_INVALID_OPTIONS', {
    message:
      'source must be a file path, a Buffer/Uint8Array, a Blob/File, a Readable stream or an UploadSource',
  });
}
