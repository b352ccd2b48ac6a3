/**
 * MetaStore: the upload records. Updates are version-checked (optimistic concurrency): a write
 * names the version it read, and fails with `VersionConflictError` if another writer got there first.
 */

export type UploadState = 'uploading' | 'finished';

export type ConcatRole = { kind: 'partial' } | { kind: 'final'; partIds: string[] };

export interface UploadRecord {
  /** Unguessable id (base64url, >= 128 random bits). */
  id: string;
  /** The owner; uploads, dedup and listings never cross namespaces. '' when auth is off. */
  namespace: string;
  /** Which API created it. */
  protocol: 'tus' | 'parts';
  /** Declared size in bytes; `null` while deferred (tus creation-defer-length). */
  size: number | null;
  /** Bytes acknowledged to the client. Never above what storage holds. */
  offset: number;
  /** Decoded Upload-Metadata (or the parts API's metadata). */
  metadata: Record<string, string>;
  concat: ConcatRole | null;
  state: UploadState;
  /** Where the DataStore keeps the bytes (set at creation, replaced by the finished key). */
  storageKey: string;
  /** Lowercase hex SHA-256 of the whole file, once the server verified it. */
  sha256: string | null;
  createdAt: number;
  updatedAt: number;
  /** Epoch ms after which an unfinished upload is gone; `null` = never. */
  expiresAt: number | null;
  finishedAt: number | null;
  /** Parts API: the size of every part but the last; `null` for tus uploads. */
  partSize: number | null;
  /** Parts API: the whole-file SHA-256 the client declared at creation, verified at completion. */
  expectedSha256: string | null;
  /**
   * The MIME type sniffed from the finished file's first bytes (`application/octet-stream` when
   * they tell nothing); `null` until it finishes, for tus partial uploads, and for uploads that
   * finished before the server sniffed types.
   */
  sniffedType: string | null;
  /**
   * The `types` claim of the upload token that created it (lower-case MIME types or patterns): the
   * sniffed type must match one at finalization. `null` = no such limit (no token, or one without
   * `types`). Fixed at creation: a later request may carry another token of the same subject.
   */
  allowedTypes: readonly string[] | null;
  /** Incremented by every update. */
  version: number;
}

/**
 * What `create` takes: the parts-API fields, the sniffed type and the allowed types may be left out
 * (they default to `null`).
 */
export type NewUploadRecord = Omit<
  UploadRecord,
  'version' | 'updatedAt' | 'partSize' | 'expectedSha256' | 'sniffedType' | 'allowedTypes'
> &
  Partial<Pick<UploadRecord, 'partSize' | 'expectedSha256' | 'sniffedType' | 'allowedTypes'>>;

/** `PartRecord.sha256` of a part whose SHA-256 the server did not compute. */
export const NO_PART_SHA256 = '';

/** A stored part of a parts-API upload. Recorded only after its bytes are stored (and synced). */
export interface PartRecord {
  /** Part number, from 1. */
  n: number;
  size: number;
  /**
   * Lower-case hex SHA-256 of the part's bytes; `NO_PART_SHA256` when the server did not compute
   * it (the part went straight to S3, or its client declined the digest).
   */
  sha256: string;
  /** The storage's own tag for the part (S3's ETag); `null` where the storage has none. */
  etag: string | null;
  storedAt: number;
  /**
   * Random, new for every write of the part through the server: tells two writes of the same part
   * apart where no digest does. Absent on parts reported from S3 and on rows recorded before it existed.
   */
  writeTag?: string;
}

/**
 * What tells one stored version of a part from another: its write tag where it has one, its SHA-256
 * otherwise (`NO_PART_SHA256` for neither: nothing can vouch for such a part).
 */
export function partIdentity(part: Pick<PartRecord, 'sha256' | 'writeTag'>): string {
  return part.writeTag ?? part.sha256;
}

export type UploadPatch = Partial<
  Pick<
    UploadRecord,
    | 'size'
    | 'offset'
    | 'metadata'
    | 'state'
    | 'storageKey'
    | 'sha256'
    | 'expiresAt'
    | 'finishedAt'
    | 'sniffedType'
  >
>;

/** An unfinished upload with what storage holds of it so far (`listInProgress`). */
export interface InProgressUpload {
  record: UploadRecord;
  /** tus: the recorded offset; parts API: the bytes of the recorded parts. */
  receivedBytes: number;
  /** Parts API: how many parts are recorded; 0 for tus. */
  partsReceived: number;
}

/**
 * A notification queued by the write that caused it, in the same transaction (the hooks' durable
 * outbox): it exists exactly when the change it tells of was committed, and survives restarts
 * until it is delivered.
 */
export interface OutboxEntry {
  /** Who delivers it: `app` (the in-process `after*` hooks) or `webhook` (the hook URL). */
  sink: string;
  /** The upload it is about. One sink gets one upload's entries one at a time, in order. */
  uploadId: string;
  /** Unique, and the same on every attempt (a receiver de-duplicates on it). */
  eventId: string;
  /** What happened (`created`, `finished`…). */
  type: string;
  /** The JSON text delivered. */
  payload: string;
  /** Epoch ms. */
  createdAt: number;
}

/** A queued entry, as `claimOutbox` hands it out. */
export interface OutboxItem extends OutboxEntry {
  /** Position in the queue (increasing). */
  seq: number;
  /** Failed deliveries so far. */
  attempts: number;
}

/** What `create`, `update` and `delete` may queue in the same transaction. */
export interface WriteOptions {
  outbox?: readonly OutboxEntry[] | undefined;
}

export class VersionConflictError extends Error {
  constructor(id: string) {
    super(`upload ${id} was changed by another writer`);
    this.name = 'VersionConflictError';
  }
}

export class DuplicateIdError extends Error {
  constructor(id: string) {
    super(`an upload with id ${id} already exists`);
    this.name = 'DuplicateIdError';
  }
}

export interface MetaStore {
  /**
   * Inserts a new record (version 1). Throws `DuplicateIdError` if the id exists. `options.outbox`
   * is queued in the same transaction, only if the record is inserted.
   */
  create(record: NewUploadRecord, options?: WriteOptions): Promise<UploadRecord>;
  get(id: string): Promise<UploadRecord | undefined>;
  /**
   * Applies `patch` if the stored version equals `expectedVersion`; returns the new record.
   * `options.outbox` is queued in the same transaction, only if the patch is applied.
   */
  update(
    id: string,
    expectedVersion: number,
    patch: UploadPatch,
    options?: WriteOptions,
  ): Promise<UploadRecord>;
  /**
   * Removes a record; false when it did not exist. `options.outbox` is queued in the same
   * transaction, only if a record was removed.
   */
  delete(id: string, options?: WriteOptions): Promise<boolean>;
  /** Unfinished uploads whose `expiresAt` is at or before `now`, oldest first, at most `limit`. */
  listExpired(now: number, limit: number): Promise<UploadRecord[]>;
  /**
   * Records a stored part of an unfinished upload, replacing any record with the same number, and
   * moves the upload's expiry to `expiresAt` (a new version). False when the upload does not exist
   * or is finished: then nothing is recorded.
   */
  putPart(id: string, part: PartRecord, expiresAt: number | null): Promise<boolean>;
  /** Forgets a part (before its bytes are overwritten); false when it was not recorded. */
  deletePart(id: string, n: number): Promise<boolean>;
  /** The recorded parts of an upload, by part number. Deleting the upload deletes its parts. */
  listParts(id: string): Promise<PartRecord[]>;
  /**
   * A finished upload in `namespace` whose server-verified SHA-256 and size are these (dedup).
   * Never looks across namespaces.
   */
  findFinished(namespace: string, sha256: string, size: number): Promise<UploadRecord | undefined>;
  /**
   * The unfinished uploads of `namespace` that have not expired at `now` (`expiresAt` after it, or
   * none), newest first (by `createdAt`), at most `limit`. Never looks across namespaces.
   */
  listInProgress(namespace: string, now: number, limit: number): Promise<InProgressUpload[]>;
  /** Queues outbox entries on their own (a change that has no record to write). */
  enqueue(entries: readonly OutboxEntry[]): Promise<void>;
  /**
   * Hands out up to `limit` entries due for delivery (`nextAttemptAt` at or before `now`) that no one
   * holds, each the oldest queued entry of its sink and upload (so one upload's entries go in order),
   * oldest first, and holds them until `leaseUntil` (epoch ms): another caller gets them only after
   * that, if they were neither settled nor put back.
   */
  claimOutbox(now: number, limit: number, leaseUntil: number): Promise<OutboxItem[]>;
  /** Removes a delivered entry. */
  settleOutbox(seq: number): Promise<void>;
  /** Puts a failed entry back: counted, due again at `nextAttemptAt`, with the failure for operators. */
  retryOutbox(seq: number, nextAttemptAt: number, error: string): Promise<void>;
  /** Entries waiting for delivery, and the oldest one's `createdAt` (`null` with none). */
  outboxBacklog(): Promise<{ pending: number; oldestCreatedAt: number | null }>;
  /** Counts uploads by state (for metrics). */
  countByState(): Promise<Record<UploadState, number>>;
  close(): Promise<void>;
}
