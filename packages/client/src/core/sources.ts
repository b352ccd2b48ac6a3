/**
 * Sources every platform has: bytes in memory and a `Blob` (a browser `File`, or Node's `Blob` /
 * `File`). Both builds accept them; each entry point adds its own (Node: paths and streams).
 */
import { ClientError } from './errors.ts';
import type { UploadSource } from './seams.ts';

/** Bytes in memory; reads are views, not copies. */
export class BytesSource implements UploadSource {
  readonly size: number;
  readonly name = undefined;
  readonly streamedSha256 = undefined;
  readonly bytes: Uint8Array;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.size = bytes.length;
  }

  async read(start: number, end: number): Promise<Uint8Array> {
    return this.bytes.subarray(start, Math.min(end, this.size));
  }

  release(): void {}

  async close(): Promise<void> {}
}

/**
 * A `Blob` or `File`. Reads slice it, so only the bytes a request needs are in memory. A browser
 * refuses to read a picked file that was changed, moved or deleted since it was picked
 * (`NotReadableError`, `NotFoundError`): that becomes `ERR_SOURCE_UNREADABLE`, asking the user to
 * pick the file again.
 */
export class BlobSource implements UploadSource {
  readonly file: Blob;
  readonly size: number;
  readonly name: string | undefined;
  readonly streamedSha256 = undefined;

  constructor(file: Blob) {
    this.file = file;
    this.size = file.size;
    const name = (file as { name?: unknown }).name;
    this.name = typeof name === 'string' && name !== '' ? name : undefined;
  }

  async read(start: number, end: number): Promise<Uint8Array> {
    try {
      return new Uint8Array(await this.file.slice(start, Math.min(end, this.size)).arrayBuffer());
    } catch (error) {
      throw blobUnreadable(this.name, error);
    }
  }

  slice(start: number, end: number): Blob {
    return this.file.slice(start, Math.min(end, this.size));
  }

  release(): void {}

  async close(): Promise<void> {}
}

/** The error for a `Blob` the platform refuses to read. */
export function blobUnreadable(name: string | undefined, cause: unknown): ClientError {
  const why =
    cause instanceof Error || (typeof DOMException !== 'undefined' && cause instanceof DOMException)
      ? `${(cause as Error).name}: ${(cause as Error).message}`
      : String(cause);
  return new ClientError('ERR_SOURCE_UNREADABLE', {
    message: `${name ?? 'the file'} can no longer be read (${why}); it was changed, moved or deleted since it was picked — re-select the file`,
    cause,
  });
}

export function isUploadSource(value: unknown): value is UploadSource {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as UploadSource).read === 'function' &&
    typeof (value as UploadSource).release === 'function' &&
    typeof (value as UploadSource).close === 'function'
  );
}

/** What every platform accepts as `source`: a `Blob`/`File`, bytes, or an `UploadSource`; else `undefined`. */
export function openCommonSource(input: unknown): UploadSource | undefined {
  if (typeof Blob !== 'undefined' && input instanceof Blob) return new BlobSource(input);
  if (input instanceof Uint8Array) return new BytesSource(input);
  if (input instanceof ArrayBuffer) return new BytesSource(new Uint8Array(input));
  if (isUploadSource(input)) return input;
  return undefined;
}
