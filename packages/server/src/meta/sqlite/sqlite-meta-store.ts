/**
 * The embedded MetaStore: upload records in one SQLite file through `node:sqlite` (built into
 * Node, no native addon to compile).
 *
 * Layout: one `uploads` table (see migrations.ts); `metadata` and `concat` are JSON text, times are
 * integer epoch milliseconds. The operator provisions a writable directory; SQLite adds `-wal` and
 * `-shm` files next to the database, which belong to it (copy all three, or use `VACUUM INTO`, for
 * a backup).
 *
 * `node:sqlite` is synchronous: each call runs to completion on the event loop. The statements
 * here are single-row lookups by primary key, so that costs microseconds, and it also means no two
 * calls of this process ever interleave inside one statement.
 *
 * Group commit: the writes (create, update, delete) of one event-loop turn share one transaction,
 * committed at `setImmediate`; each write's promise settles only after that commit, so no caller
 * acts on a write that is not committed. A commit writes every page it touched to the WAL, and one
 * upload's insert touches four b-trees, so sharing a commit among the uploads that arrived together
 * cuts the write work per upload (measured: 2,000 uploads of 64 KiB, 32 at a time, bench W4). Each
 * statement still runs at once and alone: a constraint failure undoes that statement only (SQLite's
 * statement-level rollback) and rejects only its caller. If SQLite abandons the whole transaction
 * (disk full, I/O error) or the commit fails, every write of the batch is rejected.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type SQLInputValue, type SQLOutputValue, type StatementSync } from 'node:sqlite';
import { UploadError } from '@ferry/protocol';
import {
  DuplicateIdError,
  type InProgressUpload,
  type MetaStore,
  type NewUploadRecord,
  type OutboxEntry,
  type OutboxItem,
  type PartRecord,
  type UploadPatch,
  type UploadRecord,
  type UploadState,
  VersionConflictError,
  type WriteOptions,
} from '../meta-store.ts';
import { migrate } from './migrations.ts';

export { SchemaVersionError } from './migrations.ts';

export interface SqliteMetaStoreConfig {
  /** Database file, or `':memory:'` for a private in-memory database (tests). Its directory is created. */
  path: string;
  /**
   * How long a statement waits for another connection's write lock (another process on the same
   * file) before failing with SQLITE_BUSY, in ms. Default 5000.
   */
  busyTimeoutMs?: number;
}

const COLUMNS =
  'id, namespace, protocol, size, byte_offset, metadata, concat, state, storage_key, sha256, ' +
  'created_at, updated_at, expires_at, finished_at, version, part_size, expected_sha256, sniffed_type, allowed_types';

/** The patchable fields, in the order of the bits of an update's shape mask. */
const PATCH_FIELDS = [
  ['size', 'size'],
  ['offset', 'byte_offset'],
  ['metadata', 'metadata'],
  ['state', 'state'],
  ['storageKey', 'storage_key'],
  ['sha256', 'sha256'],
  ['expiresAt', 'expires_at'],
  ['finishedAt', 'finished_at'],
  ['sniffedType', 'sniffed_type'],
] as const satisfies readonly (readonly [keyof UploadPatch, string])[];

interface Batch {
  waiting: { resolve: () => void; reject: (error: unknown) => void }[];
}

/** A row in COLUMNS order: statements return arrays, which skips building a keyed object per row. */
type Row = SQLOutputValue[];

function toRecord(row: Row): UploadRecord {
  const concat = row[6] as string | null;
  return {
    id: row[0] as string,
    namespace: row[1] as string,
    protocol: row[2] as UploadRecord['protocol'],
    size: row[3] as number | null,
    offset: row[4] as number,
    metadata: JSON.parse(row[5] as string),
    concat: concat === null ? null : JSON.parse(concat),
    state: row[7] as UploadState,
    storageKey: row[8] as string,
    sha256: row[9] as string | null,
    createdAt: row[10] as number,
    updatedAt: row[11] as number,
    expiresAt: row[12] as number | null,
    finishedAt: row[13] as number | null,
    version: row[14] as number,
    partSize: row[15] as number | null,
    expectedSha256: row[16] as string | null,
    sniffedType: row[17] as string | null,
    allowedTypes: row[18] === null ? null : JSON.parse(row[18] as string),
  };
}

/**
 * Rows come back as arrays: node:sqlite builds keyed rows as null-prototype objects, and reading
 * those cost more than the SQL itself (measured: create+get+update+get on `:memory:` went from
 * ~65 µs to ~25 µs). `setReturnArrays` arrived in Node 24; on Node 22 the keyed rows are turned
 * into arrays here (columns keep their SELECT order), slower but the same.
 */
function prepareArrays(db: DatabaseSync, sql: string): StatementSync {
  const statement = db.prepare(sql);
  if (typeof statement.setReturnArrays === 'function') {
    statement.setReturnArrays(true);
    return statement;
  }
  const get = statement.get.bind(statement);
  const all = statement.all.bind(statement);
  const asArray = (row: unknown) => (row === undefined ? undefined : Object.values(row as object));
  Object.assign(statement, {
    get: (...args: SQLInputValue[]) => asArray(get(...args)),
    all: (...args: SQLInputValue[]) => all(...args).map(asArray),
  });
  return statement;
}

/** `undefined` cannot be bound by node:sqlite; an absent optional field is stored as NULL. */
function nullable(value: SQLInputValue | undefined): SQLInputValue {
  return value === undefined ? null : value;
}

class SqliteMetaStore implements MetaStore {
  #db: DatabaseSync;
  #insert: StatementSync;
  #select: StatementSync;
  #exists: StatementSync;
  #delete: StatementSync;
  #expired: StatementSync;
  #count: StatementSync;
  #putPart: StatementSync;
  #touchForPart: StatementSync;
  #deletePart: StatementSync;
  #listParts: StatementSync;
  #findFinished: StatementSync;
  #inProgress: StatementSync;
  #outboxInsert: StatementSync;
  #outboxClaim: StatementSync;
  #outboxLease: StatementSync;
  #outboxSettle: StatementSync;
  #outboxRetry: StatementSync;
  #outboxBacklog: StatementSync;
  /** Update statements by shape (which fields a patch sets): at most 2^9, each prepared once. */
  #updates: (StatementSync | undefined)[] = [];
  /** The writes in the open transaction, settled when it commits; `undefined` with none open. */
  #batch: Batch | undefined;

  constructor(db: DatabaseSync) {
    this.#db = db;
    // ON CONFLICT DO NOTHING reports a duplicate as `changes: 0` instead of an exception whose
    // extended code we would have to decode.
    this.#insert = prepareArrays(
      db,
      `INSERT INTO uploads (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)
       ON CONFLICT (id) DO NOTHING`,
    );
    this.#select = prepareArrays(db, `SELECT ${COLUMNS} FROM uploads WHERE id = ?`);
    this.#exists = prepareArrays(db, 'SELECT 1 FROM uploads WHERE id = ?');
    this.#delete = prepareArrays(db, 'DELETE FROM uploads WHERE id = ?');
    this.#expired = prepareArrays(
      db,
      `SELECT ${COLUMNS} FROM uploads
       WHERE state = 'uploading' AND expires_at <= ?
       ORDER BY expires_at, id LIMIT ?`,
    );
    this.#count = prepareArrays(db, 'SELECT state, count(*) AS n FROM uploads GROUP BY state');
    this.#touchForPart = prepareArrays(
      db,
      `UPDATE uploads SET expires_at = ?, updated_at = ?, version = version + 1
       WHERE id = ? AND state = 'uploading'`,
    );
    this.#putPart = prepareArrays(
      db,
      `INSERT INTO parts (upload_id, n, size, sha256, etag, stored_at, write_tag) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (upload_id, n) DO UPDATE SET
         size = excluded.size, sha256 = excluded.sha256, etag = excluded.etag, stored_at = excluded.stored_at,
         write_tag = excluded.write_tag`,
    );
    this.#deletePart = prepareArrays(db, 'DELETE FROM parts WHERE upload_id = ? AND n = ?');
    this.#listParts = prepareArrays(
      db,
      'SELECT n, size, sha256, etag, stored_at, write_tag FROM parts WHERE upload_id = ? ORDER BY n',
    );
    this.#findFinished = prepareArrays(
      db,
      `SELECT ${COLUMNS} FROM uploads
       WHERE namespace = ? AND sha256 = ? AND size = ? AND state = 'finished'
       ORDER BY finished_at DESC LIMIT 1`,
    );
    // Walks the namespace index newest first; the part counts are range reads of the parts
    // table's primary key.
    this.#inProgress = prepareArrays(
      db,
      `SELECT ${COLUMNS},
         (SELECT count(*) FROM parts WHERE upload_id = uploads.id),
         (SELECT coalesce(sum(size), 0) FROM parts WHERE upload_id = uploads.id)
       FROM uploads
       WHERE namespace = ? AND state = 'uploading' AND (expires_at IS NULL OR expires_at > ?)
       ORDER BY created_at DESC, id DESC LIMIT ?`,
    );
    this.#outboxInsert = prepareArrays(
      db,
      `INSERT INTO hook_outbox (sink, upload_id, event_id, type, payload, created_at, next_attempt_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
    // The head of each sink's and upload's queue, if it is due and nobody holds it: a held or
    // failing entry keeps the ones behind it waiting (in order per upload), not other uploads'.
    this.#outboxClaim = prepareArrays(
      db,
      `SELECT seq, sink, upload_id, event_id, type, payload, created_at, attempts FROM hook_outbox AS o
       WHERE next_attempt_at <= ?1 AND (lease_until IS NULL OR lease_until <= ?1)
         AND NOT EXISTS (SELECT 1 FROM hook_outbox AS p
                         WHERE p.sink = o.sink AND p.upload_id = o.upload_id AND p.seq < o.seq)
       ORDER BY seq LIMIT ?2`,
    );
    this.#outboxLease = prepareArrays(db, 'UPDATE hook_outbox SET lease_until = ? WHERE seq = ?');
    this.#outboxSettle = prepareArrays(db, 'DELETE FROM hook_outbox WHERE seq = ?');
    this.#outboxRetry = prepareArrays(
      db,
      `UPDATE hook_outbox SET attempts = attempts + 1, next_attempt_at = ?, lease_until = NULL, last_error = ?
       WHERE seq = ?`,
    );
    this.#outboxBacklog = prepareArrays(db, 'SELECT count(*), min(created_at) FROM hook_outbox');
  }

  create(input: NewUploadRecord, options?: WriteOptions): Promise<UploadRecord> {
    return this.#write(() => {
      const record = this.#create(input);
      this.#queue(options?.outbox);
      return record;
    });
  }

  #create(input: NewUploadRecord): UploadRecord {
    const metadata = JSON.stringify(input.metadata);
    const concat = input.concat === null || input.concat === undefined ? null : JSON.stringify(input.concat);
    const allowedTypes =
      input.allowedTypes === null || input.allowedTypes === undefined
        ? null
        : JSON.stringify(input.allowedTypes);
    const { changes } = this.#insert.run(
      input.id,
      input.namespace,
      input.protocol,
      nullable(input.size),
      input.offset,
      metadata,
      concat,
      input.state,
      input.storageKey,
      nullable(input.sha256),
      input.createdAt,
      input.createdAt,
      nullable(input.expiresAt),
      nullable(input.finishedAt),
      nullable(input.partSize),
      nullable(input.expectedSha256),
      nullable(input.sniffedType),
      allowedTypes,
    );
    if (changes === 0) throw new DuplicateIdError(input.id);
    // Parse back what was stored so the caller holds its own copy, exactly as `get` would return it.
    return {
      id: input.id,
      namespace: input.namespace,
      protocol: input.protocol,
      size: input.size ?? null,
      offset: input.offset,
      metadata: JSON.parse(metadata),
      concat: concat === null ? null : JSON.parse(concat),
      state: input.state,
      storageKey: input.storageKey,
      sha256: input.sha256 ?? null,
      createdAt: input.createdAt,
      updatedAt: input.createdAt,
      expiresAt: input.expiresAt ?? null,
      finishedAt: input.finishedAt ?? null,
      version: 1,
      partSize: input.partSize ?? null,
      expectedSha256: input.expectedSha256 ?? null,
      sniffedType: input.sniffedType ?? null,
      allowedTypes: allowedTypes === null ? null : JSON.parse(allowedTypes),
    };
  }

  async get(id: string): Promise<UploadRecord | undefined> {
    const row = this.#select.get(id) as Row | undefined;
    return row === undefined ? undefined : toRecord(row);
  }

  update(
    id: string,
    expectedVersion: number,
    patch: UploadPatch,
    options?: WriteOptions,
  ): Promise<UploadRecord> {
    return this.#write(() => {
      const record = this.#update(id, expectedVersion, patch);
      this.#queue(options?.outbox);
      return record;
    });
  }

  #update(id: string, expectedVersion: number, patch: UploadPatch): UploadRecord {
    let shape = 0;
    const values: SQLInputValue[] = [];
    for (let bit = 0; bit < PATCH_FIELDS.length; bit++) {
      const field = PATCH_FIELDS[bit]![0];
      const value = patch[field];
      if (value === undefined) continue;
      shape |= 1 << bit;
      values.push(field === 'metadata' ? JSON.stringify(value) : (value as SQLInputValue));
    }
    values.push(Date.now(), id, expectedVersion);
    const row = this.#updateStatement(shape).get(...values) as Row | undefined;
    if (row !== undefined) return toRecord(row);
    if (this.#exists.get(id) === undefined) throw new UploadError('ERR_NOT_FOUND');
    throw new VersionConflictError(id);
  }

  delete(id: string, options?: WriteOptions): Promise<boolean> {
    return this.#write(() => {
      const deleted = this.#delete.run(id).changes > 0;
      if (deleted) this.#queue(options?.outbox);
      return deleted;
    });
  }

  enqueue(entries: readonly OutboxEntry[]): Promise<void> {
    if (entries.length === 0) return Promise.resolve();
    return this.#write(() => this.#queue(entries));
  }

  claimOutbox(now: number, limit: number, leaseUntil: number): Promise<OutboxItem[]> {
    // Read and held in one write transaction: another process on the same file cannot claim the
    // same entries between the two.
    return this.#write(() => {
      const items = (this.#outboxClaim.all(now, limit) as unknown as Row[]).map(
        (row): OutboxItem => ({
          seq: row[0] as number,
          sink: row[1] as string,
          uploadId: row[2] as string,
          eventId: row[3] as string,
          type: row[4] as string,
          payload: row[5] as string,
          createdAt: row[6] as number,
          attempts: row[7] as number,
        }),
      );
      for (const item of items) this.#outboxLease.run(leaseUntil, item.seq);
      return items;
    });
  }

  settleOutbox(seq: number): Promise<void> {
    return this.#write(() => {
      this.#outboxSettle.run(seq);
    });
  }

  retryOutbox(seq: number, nextAttemptAt: number, error: string): Promise<void> {
    return this.#write(() => {
      this.#outboxRetry.run(nextAttemptAt, error.slice(0, 1000), seq);
    });
  }

  async outboxBacklog(): Promise<{ pending: number; oldestCreatedAt: number | null }> {
    const row = this.#outboxBacklog.get() as unknown as Row;
    return { pending: row[0] as number, oldestCreatedAt: row[1] as number | null };
  }

  #queue(entries: readonly OutboxEntry[] | undefined): void {
    if (entries === undefined) return;
    for (const entry of entries) {
      this.#outboxInsert.run(
        entry.sink,
        entry.uploadId,
        entry.eventId,
        entry.type,
        entry.payload,
        entry.createdAt,
        entry.createdAt,
      );
    }
  }

  putPart(id: string, part: PartRecord, expiresAt: number | null): Promise<boolean> {
    return this.#write(() => {
      // The upload row first: it both checks the upload is unfinished and gives the part row the
      // parent its foreign key needs.
      if (this.#touchForPart.run(expiresAt, Date.now(), id).changes === 0) return false;
      this.#putPart.run(id, part.n, part.size, part.sha256, part.etag, part.storedAt, part.writeTag ?? null);
      return true;
    });
  }

  deletePart(id: string, n: number): Promise<boolean> {
    return this.#write(() => this.#deletePart.run(id, n).changes > 0);
  }

  async listParts(id: string): Promise<PartRecord[]> {
    return (this.#listParts.all(id) as unknown as Row[]).map((row) => ({
      n: row[0] as number,
      size: row[1] as number,
      sha256: row[2] as string,
      etag: row[3] as string | null,
      storedAt: row[4] as number,
      ...(row[5] === null ? {} : { writeTag: row[5] as string }),
    }));
  }

  async findFinished(namespace: string, sha256: string, size: number): Promise<UploadRecord | undefined> {
    const row = this.#findFinished.get(namespace, sha256, size) as Row | undefined;
    return row === undefined ? undefined : toRecord(row);
  }

  async listExpired(now: number, limit: number): Promise<UploadRecord[]> {
    return (this.#expired.all(now, limit) as unknown as Row[]).map(toRecord);
  }

  async listInProgress(namespace: string, now: number, limit: number): Promise<InProgressUpload[]> {
    return (this.#inProgress.all(namespace, now, limit) as unknown as Row[]).map((row) => {
      const record = toRecord(row);
      const partsReceived = row[19] as number;
      return {
        record,
        receivedBytes: record.protocol === 'parts' ? (row[20] as number) : record.offset,
        partsReceived,
      };
    });
  }

  async countByState(): Promise<Record<UploadState, number>> {
    const counts: Record<UploadState, number> = { uploading: 0, finished: 0 };
    for (const row of this.#count.all() as unknown as Row[]) counts[row[0] as UploadState] = row[1] as number;
    return counts;
  }

  async close(): Promise<void> {
    if (this.#batch !== undefined) this.#commit(this.#batch);
    if (this.#db.isOpen) this.#db.close();
  }

  /** Runs one write statement in the open transaction (opening one if needed); see the top. */
  #write<T>(run: () => T): Promise<T> {
    let batch = this.#batch;
    try {
      if (batch === undefined) {
        this.#db.exec('BEGIN IMMEDIATE');
        batch = this.#batch = { waiting: [] };
        const opened = batch;
        setImmediate(() => this.#commit(opened));
      }
    } catch (error) {
      return Promise.reject(error);
    }
    let result: T;
    try {
      result = run();
    } catch (error) {
      // Some failures (SQLITE_FULL, SQLITE_IOERR…) roll the whole transaction back.
      if (!this.#db.isTransaction) this.#abandon(batch, error);
      return Promise.reject(error);
    }
    return new Promise<T>((resolve, reject) => {
      batch.waiting.push({ resolve: () => resolve(result), reject });
    });
  }

  #commit(batch: Batch): void {
    if (this.#batch !== batch) return; // already committed (close) or abandoned
    this.#batch = undefined;
    try {
      this.#db.exec('COMMIT');
    } catch (error) {
      if (this.#db.isTransaction) {
        try {
          this.#db.exec('ROLLBACK');
        } catch {
          // The connection is unusable; the next write reports that.
        }
      }
      for (const waiter of batch.waiting) waiter.reject(error);
      return;
    }
    for (const waiter of batch.waiting) waiter.resolve();
  }

  #abandon(batch: Batch, error: unknown): void {
    if (this.#batch === batch) this.#batch = undefined;
    for (const waiter of batch.waiting) waiter.reject(error);
  }

  #updateStatement(shape: number): StatementSync {
    let statement = this.#updates[shape];
    if (statement === undefined) {
      let set = '';
      for (let bit = 0; bit < PATCH_FIELDS.length; bit++) {
        if (shape & (1 << bit)) set += `${PATCH_FIELDS[bit]![1]} = ?, `;
      }
      statement = prepareArrays(
        this.#db,
        `UPDATE uploads SET ${set}updated_at = ?, version = version + 1
         WHERE id = ? AND version = ? RETURNING ${COLUMNS}`,
      );
      this.#updates[shape] = statement;
    }
    return statement;
  }
}

export function createSqliteMetaStore(config: SqliteMetaStoreConfig): MetaStore {
  const { path, busyTimeoutMs = 5000 } = config;
  if (path !== ':memory:' && !path.startsWith('file:')) mkdirSync(dirname(path), { recursive: true });
  const db = new DatabaseSync(path, { enableForeignKeyConstraints: true });
  try {
    // WAL lets readers proceed while a write commits. With WAL, synchronous=NORMAL skips the fsync
    // at each commit (it syncs at checkpoints instead): a committed transaction survives a crash of
    // the process, and only a power loss or OS crash can roll back the last few commits. That is
    // acceptable because the byte store, not this table, is the truth for offsets (tus HEAD and
    // PATCH read `getOffset` from storage), and a record a few writes behind is repaired from it.
    db.exec('PRAGMA journal_mode = WAL');
    db.exec('PRAGMA synchronous = NORMAL');
    db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.trunc(busyTimeoutMs))}`);
    db.exec('PRAGMA foreign_keys = ON');
    migrate(db);
    return new SqliteMetaStore(db);
  } catch (error) {
    db.close();
    throw error;
  }
}
