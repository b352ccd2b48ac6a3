/**
 * DataStore: where the bytes of an upload live. The required core is small; everything else is an
 * optional capability, discovered once (see `capabilitiesOf`) and used to build `Tus-Extension`.
 */
import type { Readable } from 'node:stream';

/** The body of a write: a Node stream (fast path) or any async iterable of byte chunks. */
export type ByteSource = Readable | AsyncIterable<Uint8Array>;

export interface CreateDataOptions {
  id: string;
  /** The declared size in bytes, or `null` while the length is deferred. */
  size: number | null;
}

export interface AppendOptions {
  /** Stops reading the body; bytes written so far are kept and reported. */
  signal?: AbortSignal;
  /** Refuse (stop with `ERR_EXCEEDS_LENGTH`) once more than this many bytes arrive. */
  maxBytes?: number;
  /** Called with each chunk before it is written (checksums, progress); must not keep the chunk. */
  onChunk?: (chunk: Uint8Array) => void;
  /**
   * The body's declared length (`Content-Length`), when the request has one: a hint for choosing
   * how to write (the body may still end early). Stores must not trust it beyond that.
   */
  expectedBytes?: number;
}

export interface AppendResult {
  /** Bytes durably handed to storage by this call (per the store's durability setting). */
  bytesWritten: number;
  /** Why the body ended early, if it did (abort, body error, limit); the bytes above are still kept. */
  interruption?: unknown;
}

export interface DataStore {
  /** A short name for logs and metrics ("fs", "s3"). */
  readonly kind: string;
  /** Prepares storage for a new upload; returns the storage key recorded with the upload. */
  create(options: CreateDataOptions): Promise<string>;
  /** Bytes durably stored for the upload: the truth behind every offset the server reports. */
  getOffset(key: string): Promise<number>;
  /**
   * Writes `body` at `offset` (which must equal `getOffset`). Never throws for a body that breaks
   * mid-way: it resolves with the bytes it wrote and the interruption, so no arrived byte is lost.
   */
  append(key: string, offset: number, body: ByteSource, options?: AppendOptions): Promise<AppendResult>;
  /** Makes a complete upload a finished file (atomically visible). Returns the finished key. */
  finalize(key: string, options: { id: string; size: number }): Promise<string>;
}

/** Can delete an upload's bytes (tus termination, expiry). */
export interface Terminatable {
  remove(key: string): Promise<void>;
}

/** Can drop bytes past an offset (a chunk whose checksum did not match is discarded). */
export interface Truncatable {
  truncate(key: string, offset: number): Promise<void>;
}

/** Accepts uploads whose length is only known at the end (tus creation-defer-length). */
export interface LengthDeferrable {
  readonly deferredLength: true;
}

export interface FileStat {
  size: number;
  modifiedAt: Date;
}

/** Serves finished files, whole or by byte range. */
export interface Downloadable {
  stat(finishedKey: string): Promise<FileStat>;
  /**
   * Streams bytes `start`..`end` inclusive of a finished file. A store may also read the stored
   * prefix of an upload in progress (the server uses that to re-hash after a restart).
   */
  read(key: string, range: { start: number; end: number }, signal?: AbortSignal): Readable;
}

/** Joins finished partial uploads into a final one (tus concatenation). */
export interface Concatenatable {
  /** Builds the finished file `finalId` from finished files, in order; returns its finished key. */
  concatenate(finalId: string, finishedKeys: string[]): Promise<string>;
}

/** A part of a parts-API upload: number `n` (from 1) holds `size` bytes from byte `start`. */
export interface PartPlace {
  n: number;
  start: number;
  size: number;
}

/**
 * Stores an upload as numbered parts, in any order and in parallel (the parts API). The caller
 * checks part sizes and keeps the list of stored parts (MetaStore); the store only places bytes.
 */
export interface PartStore {
  /**
   * Writes one part's body at its place. Never writes outside `[start, start + size)`. Like
   * `append`, a body that breaks resolves with the bytes written and the interruption; the caller
   * then does not record the part. Writing a part again replaces its bytes.
   */
  putPart(key: string, part: PartPlace, body: ByteSource, options?: AppendOptions): Promise<PartWriteResult>;
  /**
   * Makes a finished file of an upload whose every part is stored (the caller checked), atomically
   * visible. Idempotent after a crash, like `finalize`. Returns the finished key.
   */
  completeParts(key: string, options: { id: string; size: number; parts: StoredPart[] }): Promise<string>;
}

export interface PartWriteResult extends AppendResult {
  /** The storage's tag for the stored part (S3's ETag); absent where the storage has none. */
  etag?: string;
}

export interface StoredPart {
  n: number;
  size: number;
  etag: string | null;
}

/** Can give a finished file a second id that shares its bytes (dedup without copying). */
export interface Duplicable {
  /** Makes `newId` a finished file with the bytes of `finishedKey`; returns the new finished key. */
  duplicate(finishedKey: string, newId: string): Promise<string>;
}

export interface DataStoreCapabilities {
  terminatable: (DataStore & Terminatable) | undefined;
  truncatable: (DataStore & Truncatable) | undefined;
  deferrable: boolean;
  downloadable: (DataStore & Downloadable) | undefined;
  concatenatable: (DataStore & Concatenatable) | undefined;
  partStore: (DataStore & PartStore) | undefined;
  duplicable: (DataStore & Duplicable) | undefined;
}

/** Finds a store's optional capabilities once, at construction. */
export function capabilitiesOf(store: DataStore): DataStoreCapabilities {
  const any = store as unknown as Record<string, unknown>;
  const has = (name: string) => typeof any[name] === 'function';
  return {
    terminatable: has('remove') ? (store as DataStore & Terminatable) : undefined,
    truncatable: has('truncate') ? (store as DataStore & Truncatable) : undefined,
    deferrable: any['deferredLength'] === true,
    downloadable: has('stat') && has('read') ? (store as DataStore & Downloadable) : undefined,
    concatenatable: has('concatenate') ? (store as DataStore & Concatenatable) : undefined,
    partStore: has('putPart') && has('completeParts') ? (store as DataStore & PartStore) : undefined,
    duplicable: has('duplicate') ? (store as DataStore & Duplicable) : undefined,
  };
}
