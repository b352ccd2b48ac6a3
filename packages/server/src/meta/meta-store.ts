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
  /** Incremented by every update. */
  version: number;
}

export type UploadPatch = Partial<
  Pick<
    UploadRecord,
    'size' | 'offset' | 'metadata' | 'state' | 'storageKey' | 'sha256' | 'expiresAt' | 'finishedAt'
  >
>;

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
  create(record: Omit<UploadRecord, 'version' | 'updatedAt'>): Promise<UploadRecord>;
  get(id: string): Promise<UploadRecord | undefined>;
  /** Applies `patch` if the stored version equals `expectedVersion`; returns the new record. */
  update(id: string, expectedVersion: number, patch: UploadPatch): Promise<UploadRecord>;
  /** Removes a record; false when it did not exist. */
  delete(id: string): Promise<boolean>;
  /** Unfinished uploads whose `expiresAt` is at or before `now`, oldest first, at most `limit`. */
  listExpired(now: number, limit: number): Promise<UploadRecord[]>;
  /** Counts uploads by state (for metrics). */
  countByState(): Promise<Record<UploadState, number>>;
  close(): Promise<void>;
}
