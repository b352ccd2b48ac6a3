/**
 * What an app sees of Ferry's hooks: the in-process functions it may pass to `createFerry({ hooks })`
 * and the events they (and the webhook) receive. The same event object is the webhook's JSON body.
 */

/** Events delivered after the fact, through the durable outbox (at least once, in order per upload). */
export const HOOK_EVENT_TYPES = ['created', 'finished', 'terminated', 'expired', 'rejected'] as const;
export type HookEventType = (typeof HOOK_EVENT_TYPES)[number];

/** What `hookEvents` may select: the outbox events, and the blocking `pre-create` call. */
export const WEBHOOK_EVENT_NAMES = ['pre-create', ...HOOK_EVENT_TYPES] as const;
export type WebhookEventName = (typeof WEBHOOK_EVENT_NAMES)[number];

/** Where the bytes of an upload are. */
export type StorageLocation =
  /** A file (a directory of pieces for a tus concatenation) on the server's disk. */
  | { store: 'fs'; path: string }
  /** An object in a bucket (while unfinished: the object the multipart upload will create). */
  | { store: 's3'; bucket: string; key: string };

/** An upload as hooks see it. Times are ISO 8601 strings. */
export interface UploadInfo {
  id: string;
  /** The token subject the upload belongs to; "" when the server runs without auth. */
  owner: string;
  protocol: 'tus' | 'parts';
  /** `metadata.filename` (or `name`), as the client declared it; `null` when absent. */
  name: string | null;
  /** `metadata.filetype` (or `type`) as the client declared it, lower-cased without parameters (never trusted); `null` when absent. */
  declaredType: string | null;
  /** Bytes; `null` while a tus upload's length is deferred. */
  size: number | null;
  /** Bytes received so far (equal to `size` once finished). */
  offset: number;
  /** Lower-case hex SHA-256 of the whole file, once the server computed or verified it. */
  sha256: string | null;
  /** The type sniffed from the file's first bytes at finalization; `null` before, and for tus partial uploads. */
  sniffedType: string | null;
  /** Every metadata pair of the upload. */
  metadata: Record<string, string>;
  /** Where the bytes are; `null` when the storage does not say. */
  storage: StorageLocation | null;
  state: 'uploading' | 'finished';
  /** tus concatenation: a `partial` upload (a piece) or the `final` one; `null` otherwise. */
  concat: 'partial' | 'final' | null;
  createdAt: string;
  finishedAt: string | null;
  /** When an unfinished upload expires; `null` = never or finished. */
  expiresAt: string | null;
}

/** One notification. Its `id` is the same on every delivery attempt: de-duplicate on it. */
export interface HookEvent {
  id: string;
  type: HookEventType;
  /** When it happened (ISO 8601), not when it is delivered. */
  time: string;
  upload: UploadInfo;
  /** `rejected` only: why the upload was refused and deleted. */
  reason?: { code: string; message: string };
}

/** What `beforeCreate` (and the `pre-create` webhook) is asked about: an upload not created yet. */
export interface CreateRequest {
  owner: string;
  protocol: 'tus' | 'parts';
  /** Declared bytes; `null` with a deferred length. */
  size: number | null;
  name: string | null;
  declaredType: string | null;
  metadata: Record<string, string>;
  concat: 'partial' | 'final' | null;
}

/** What `beforeCreate` may change. Anything left out stays as the client asked. */
export interface CreateDecision {
  /**
   * The upload's id instead of a random one: 16..128 characters of `A-Z a-z 0-9 _ -`. It must be
   * unguessable if the server runs without auth (the id is then the only key to the upload).
   */
  id?: string;
  /** The upload's metadata instead of the client's (string values only). */
  metadata?: Record<string, string>;
}

/** Bytes arriving, at most once per `progressIntervalMs` per upload. */
export interface ProgressInfo {
  id: string;
  owner: string;
  /** Bytes received so far (may be ahead of what is recorded while a body is being read). */
  receivedBytes: number;
  size: number | null;
  /** Parts API: parts stored so far; 0 for tus. */
  partsReceived: number;
}

type Awaitable<T> = T | Promise<T>;

/**
 * In-process hooks. Each is optional; all may be async. `beforeCreate` and `beforeFinish` may throw
 * `HookRejection` to refuse; any other error they throw answers 503 `ERR_HOOK_FAILED` (the client
 * retries). The `after*` functions are called through the durable outbox: at least once, in order
 * per upload, retried with backoff (across restarts) until they return without throwing.
 */
export interface FerryHooks {
  /** Before an upload exists (nothing stored yet): refuse it, or choose its id or metadata. */
  beforeCreate?(request: CreateRequest): Awaitable<CreateDecision | undefined>;
  /**
   * When every byte is stored, sniffed and hashed, under the upload's lock, before the upload is
   * marked finished: throw `HookRejection` to refuse the file (its bytes and record are deleted,
   * `afterReject` follows). Also for deduplicated and concatenated uploads.
   */
  beforeFinish?(upload: UploadInfo): Awaitable<void>;
  /** Bytes arrived. Called without waiting and never blocks a write; errors are logged. */
  onProgress?(progress: ProgressInfo): void;
  /** Least ms between two `onProgress` calls for one upload. Default 1000. */
  progressIntervalMs?: number;
  afterCreate?(event: HookEvent): Awaitable<void>;
  afterFinish?(event: HookEvent): Awaitable<void>;
  afterTerminate?(event: HookEvent): Awaitable<void>;
  afterExpire?(event: HookEvent): Awaitable<void>;
  afterReject?(event: HookEvent): Awaitable<void>;
}

/** Thrown by `beforeCreate` or `beforeFinish` to refuse an upload with a status and a message. */
export class HookRejection extends Error {
  /** The HTTP status the client gets (400..499). Default 403. */
  readonly status: number;
  constructor(message: string, options: { status?: number } = {}) {
    super(message);
    this.name = 'HookRejection';
    const status = options.status ?? 403;
    this.status = Number.isInteger(status) && status >= 400 && status <= 499 ? status : 403;
  }
}
