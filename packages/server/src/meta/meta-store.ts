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

/** A stored part of a parts-API upload. Recorded only after its bytes are stored (and synced). */
export interface PartRecord {
  /** Part number, from 1. */
  n: number;
  size: number;
  /** Lower-case hex SHA-256 of the part's bytes. */
  sha256: string;
  /** The storage's own tag for the part (S3's ETag); `null` where the storage has none. */
  etag: string | null;
  storedAt: number;
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
  /** Inserts a new record (version 1). Throws `DuplicateIdError` if the id exists. */
  create(record: NewUploadRecord): Promise<UploadRecord>;
  get(id: string): Promise<UploadRecord | undefined>;
  /** Applies `patch` if the stored version equals `expectedVersion`; returns the new record. */
  update(id: string, expectedVersion: number, patch: UploadPatch): Promise<UploadRecord>;
  /** Removes a record; false when it did not exist. */
  delete(id: string): Promise<boolean>;
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
  /** Counts uploads by state (for metrics). */
  countByState(): Promise<Record<UploadState, number>>;
  close(): Promise<void>;
}
