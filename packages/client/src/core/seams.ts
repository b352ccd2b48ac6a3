/**
 * The platform seams. The core (state machine, transports, retry, progress) knows none of Node's or
 * a browser's APIs; an entry point injects these four: how bytes are read, how requests are sent,
 * where resume state is kept, how SHA-256 is computed.
 */
import { ClientError } from './errors.ts';
import type { RateLimiter } from './rate-limit.ts';

// ---- HTTP ----

/**
 * Bytes of a source that an HTTP seam reads while it sends them, into small buffers of its own
 * (a Node file): a part never sits in memory whole, and each read lands in a buffer that is still
 * in the CPU's cache. Every attempt reads the range again.
 */
export interface SourceRange {
  /** Bytes in the range. */
  readonly size: number;
  /**
   * Fills `into` with the range's bytes from `offset` on (`offset + into.length <= size`). Rejects
   * with `ERR_SOURCE_UNREADABLE` when the source can no longer be read or ended early.
   */
  readInto(into: Uint8Array, offset: number): Promise<void>;
}

/**
 * A request body: bytes; a `Blob` (a slice of a picked file) that a browser sends without reading
 * it into the page's memory first; or a `SourceRange` read as it goes out (seams that `sendsRanges`).
 */
export type RequestBody = Uint8Array | Blob | SourceRange;

export function isSourceRange(body: RequestBody): body is SourceRange {
  return !(body instanceof Uint8Array) && !(body instanceof Blob);
}

export function bodySize(body: RequestBody): number {
  return body instanceof Uint8Array ? body.length : body.size;
}

/** A body as bytes: a `Blob` or a `SourceRange` read whole (seams and hashers that need them in memory). */
export async function bodyBytes(body: RequestBody): Promise<Uint8Array> {
  if (body instanceof Uint8Array) return body;
  if (body instanceof Blob) return new Uint8Array(await body.arrayBuffer());
  const bytes = new Uint8Array(body.size);
  await body.readInto(bytes, 0);
  return bytes;
}

export interface HttpRequest {
  method: string;
  url: string;
  /** Lower-case names. */
  headers: Record<string, string>;
  body?: RequestBody;
  signal: AbortSignal;
  /** Abort with `ERR_STALLED` when no byte moves either way for this long, in ms. */
  stallTimeoutMs: number;
  /** Abort with `ERR_TIMEOUT` when the whole exchange takes longer, in ms; 0 = no limit. */
  timeoutMs: number;
  /** Called as body bytes are handed to the network (a delta). */
  onSent?: (bytes: number) => void;
  /** Body bytes wait for this limiter before they are sent. */
  rateLimiter?: RateLimiter;
}

export interface HttpResponse {
  status: number;
  /** Lower-case names; repeated headers joined with `, `. */
  headers: Record<string, string>;
  /** The response body as text (the upload APIs answer with small JSON bodies or none). */
  body: string;
}

/**
 * Sends one request. Rejects with a `ClientError` (`ERR_NETWORK`, `ERR_STALLED`, `ERR_TIMEOUT`) when
 * no answer arrived, or with the signal's reason when it aborted. Any status resolves.
 */
export interface HttpClient {
  request(request: HttpRequest): Promise<HttpResponse>;
  /**
   * Sends a `Blob` body as it is, reading it only as it goes out (a browser's XMLHttpRequest). The
   * transports then send slices of a `Blob` source instead of reading them first.
   */
  readonly sendsBlobs?: boolean;
  /**
   * Sends a `SourceRange` body by reading it as it goes out. The transports then give it the
   * ranges of a source that has them, wherever the body's bytes are not needed before sending.
   */
  readonly sendsRanges?: boolean;
  /** Frees pooled connections. */
  close(): void;
}

/** What the HTTP seams say when a request moved no byte for too long, or got no answer in time. */
export function requestGaveUp(code: 'ERR_STALLED' | 'ERR_TIMEOUT', request: HttpRequest): ClientError {
  return new ClientError(code, {
    message:
      code === 'ERR_STALLED'
        ? `${request.method} ${request.url}: no byte moved for ${request.stallTimeoutMs} ms`
        : `${request.method} ${request.url}: no answer within ${request.timeoutMs} ms`,
  });
}

// ---- Sources ----

export interface UploadSource {
  /** Size in bytes; `undefined` for a stream of unknown length until its end was read. */
  readonly size: number | undefined;
  /** A name the source suggests (a file's base name). */
  readonly name: string | undefined;
  /**
   * Bytes [start, end). Fewer bytes only at the end of the source (then `size` is known). Streams
   * read forward: `start` must not be below the last `release`d offset.
   * Rejects with `ERR_SOURCE_UNREADABLE` when the source can no longer be read.
   */
  read(start: number, end: number, signal?: AbortSignal): Promise<Uint8Array>;
  /**
   * Bytes [start, end) as a `Blob`, without reading them (sources backed by a `Blob`). Used instead
   * of `read` where the HTTP seam `sendsBlobs`.
   */
  slice?(start: number, end: number): Blob;
  /**
   * Bytes [start, end) as a `SourceRange`, read only as they are sent (a file on disk). Used instead
   * of `read` where the HTTP seam `sendsRanges` and nothing needs the bytes first (a digest).
   */
  range?(start: number, end: number): SourceRange;
  /** Bytes before `offset` are confirmed and will not be read again (a stream frees them). */
  release(offset: number): void;
  /**
   * The caller is done with `bytes` that `read` returned (sent and answered, or given up): the
   * source may reuse their memory for a later `read`. Optional; the caller must not touch them after.
   */
  recycle?(bytes: Uint8Array): void;
  /** SHA-256 (hex) of everything read, once a stream was read to its end. */
  readonly streamedSha256: string | undefined;
  /**
   * The upload waits (paused or failed): free what a later `read` can reopen (a file handle). A
   * stream keeps its unconfirmed bytes. Optional.
   */
  suspend?(): Promise<void>;
  /** The upload ended (done or cancelled): free everything. */
  close(): Promise<void>;
  /**
   * The `Blob`/`File` behind the source, when there is one: a browser keeps small ones with the
   * resume state so an upload continues after a reload without the user picking the file again.
   */
  readonly file?: Blob;
}

// ---- Hashing ----

export interface IncrementalSha256 {
  update(bytes: Uint8Array): void;
  /** Lower-case hex. */
  digestHex(): string;
}

export interface Hasher {
  /** SHA-256 (lower-case hex) of a source of known size, off the main thread where the platform can. */
  hashSource(source: UploadSource, signal: AbortSignal): Promise<string>;
  /** SHA-256 of one chunk or part (32 bytes), off the main thread for a `Blob` where the platform can. */
  digest(body: Uint8Array | Blob): Promise<Uint8Array>;
  /** A running SHA-256, for streams of unknown length; platforms without such sources leave it out. */
  incremental?(): IncrementalSha256;
}

// ---- Resume state ----

export type Protocol = 'tus' | 'parts';

/** What is kept to continue an upload after a restart. */
export interface ResumeEntry {
  protocol: Protocol;
  endpoint: string;
  /** The upload's URL on the server (tus Location, parts `url`), absolute. */
  uploadUrl: string;
  size: number;
  name: string | null;
  sha256: string;
  /** Parts only. */
  partSize?: number;
  /** ISO 8601. */
  createdAt: string;
  /** ISO 8601, when the server said; the entry is pruned after it. */
  expiresAt?: string | null;
}

export interface ResumeStore {
  get(key: string): Promise<ResumeEntry | undefined>;
  set(key: string, entry: ResumeEntry): Promise<void>;
  /** Forgets the entry and the file kept with it. */
  remove(key: string): Promise<void>;
  list(): Promise<{ key: string; entry: ResumeEntry }[]>;
  /** Keeps the file's bytes with the entry (stores that can hold a `Blob`: IndexedDB). Optional. */
  keepFile?(key: string, file: Blob): Promise<void>;
  /** The file kept with the entry, if any. */
  keptFile?(key: string): Promise<Blob | undefined>;
}

/** An unfinished upload found in a resume store (`findResumableUploads`). */
export interface ResumableUpload {
  key: string;
  entry: ResumeEntry;
  /**
   * The file, when the store kept it (a browser keeps files up to `keepFilesUpTo`): pass it as
   * `source` with the entry's `endpoint`, `protocol` and `name` to continue. Otherwise the user picks
   * the file again and the upload is re-attached by its SHA-256.
   */
  file: Blob | undefined;
}

/** Whether the network is up, and news when that changes (browsers: `navigator.onLine` and its events). */
export interface Connectivity {
  online(): boolean;
  /** Calls `listener` on every change; returns the unsubscribe function. */
  subscribe(listener: (online: boolean) => void): () => void;
}

/** The key of an upload in a resume store: the same file to the same endpoint over the same protocol. */
export function resumeKey(
  entry: Pick<ResumeEntry, 'protocol' | 'endpoint' | 'sha256' | 'size' | 'name'>,
): string {
  return `${entry.protocol} ${entry.endpoint} ${entry.sha256} ${entry.size} ${entry.name ?? ''}`;
}

export interface Platform {
  http: HttpClient;
  hasher: Hasher;
  /** Turns what a caller passed as `source` into an `UploadSource` (or throws `ERR_INVALID_OPTIONS`). */
  openSource(input: unknown, hasher: Hasher): Promise<UploadSource>;
  /** The resume store used when the options name none; `undefined` when the platform has none. */
  defaultResumeStore(): ResumeStore | undefined;
  /** Present where the platform knows: uploads pause while offline and resume when back online. */
  connectivity?: Connectivity;
  /** Default of `keepFilesUpTo` (bytes); 0 where the default store cannot keep files. */
  keepFilesUpTo: number;
  /**
   * Default of `checksum` for parts: `'until-sha256'` where the file's SHA-256 may take longer
   * than sending it (WebAssembly in browsers), `false` where it is computed faster than any network
   * sends (node:crypto): a per-part digest there would only hash every byte twice.
   */
  partChecksum: boolean | 'until-sha256';
  /**
   * Bytes [start, end) of a `Blob` as a `Blob`, cut where it does not hold up the caller's thread
   * (a browser's worker: Chromium's `Blob.slice` waits for the browser process). Transports use it
   * for the request bodies they cut from a `Blob` source; without it they call the source's `slice`.
   */
  sliceBlob?(blob: Blob, start: number, end: number): Promise<Blob>;
}
