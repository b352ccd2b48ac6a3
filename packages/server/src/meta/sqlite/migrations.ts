/**
 * Schema migrations of the SQLite MetaStore. The schema version lives in SQLite's own
 * `PRAGMA user_version` (a field of the database header, so it changes in the same transaction as
 * the tables). Migrations are append-only: never edit one that has shipped; add the next version.
 */
import type { DatabaseSync } from 'node:sqlite';

export interface Migration {
  /** 1, 2, 3, … in order, without gaps. */
  version: number;
  /** What the migration does, for error messages. */
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'uploads',
    // STRICT: SQLite otherwise stores whatever it is given; a fractional offset or a string size is
    // a bug we want to hear about at the write, not at the next read.
    sql: `
      CREATE TABLE uploads (
        id           TEXT    NOT NULL PRIMARY KEY,
        namespace    TEXT    NOT NULL,
        protocol     TEXT    NOT NULL CHECK (protocol IN ('tus', 'parts')),
        size         INTEGER CHECK (size IS NULL OR size >= 0),
        byte_offset  INTEGER NOT NULL CHECK (byte_offset >= 0),
        metadata     TEXT    NOT NULL,
        concat       TEXT,
        state        TEXT    NOT NULL CHECK (state IN ('uploading', 'finished')),
        storage_key  TEXT    NOT NULL,
        sha256       TEXT,
        created_at   INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL,
        expires_at   INTEGER,
        finished_at  INTEGER,
        version      INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX uploads_expiry ON uploads (state, expires_at);
      CREATE INDEX uploads_namespace ON uploads (namespace, created_at);
    `,
  },
  {
    version: 2,
    name: 'parts',
    // Parts of parts-API uploads. A row is written only after the part's bytes are stored, so the
    // set of rows never claims more than storage holds. The partial index serves dedup lookups.
    sql: `
      ALTER TABLE uploads ADD COLUMN part_size INTEGER CHECK (part_size IS NULL OR part_size > 0);
      ALTER TABLE uploads ADD COLUMN expected_sha256 TEXT;
      CREATE TABLE parts (
        upload_id  TEXT    NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
        n          INTEGER NOT NULL CHECK (n >= 1),
        size       INTEGER NOT NULL CHECK (size >= 0),
        sha256     TEXT    NOT NULL,
        etag       TEXT,
        stored_at  INTEGER NOT NULL,
        PRIMARY KEY (upload_id, n)
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX uploads_digest ON uploads (namespace, sha256, size)
        WHERE state = 'finished' AND sha256 IS NOT NULL;
    `,
  },
  {
    version: 3,
    name: 'sniffed type',
    // The type sniffed from a finished file's magic bytes. Rows written before it stay NULL: their
    // bytes were never looked at, and downloads fall back to the declared type for them.
    sql: `
      ALTER TABLE uploads ADD COLUMN sniffed_type TEXT;
    `,
  },
  {
    version: 4,
    name: 'hook outbox',
    // Hook notifications, queued in the transaction of the change they tell of and removed once
    // delivered. No foreign key to uploads: a removed upload's last events still go out. The index
    // finds each sink's and upload's oldest entry (delivery is in order per upload).
    sql: `
      CREATE TABLE hook_outbox (
        seq              INTEGER PRIMARY KEY AUTOINCREMENT,
        sink             TEXT    NOT NULL,
        upload_id        TEXT    NOT NULL,
        event_id         TEXT    NOT NULL,
        type             TEXT    NOT NULL,
        payload          TEXT    NOT NULL,
        created_at       INTEGER NOT NULL,
        attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        next_attempt_at  INTEGER NOT NULL,
        lease_until      INTEGER,
        last_error       TEXT
      ) STRICT;
      CREATE INDEX hook_outbox_order ON hook_outbox (sink, upload_id, seq);
    `,
  },
  {
    version: 5,
    name: 'allowed types',
    // The creating token's `types` claim, a JSON array, checked against the sniffed type when the
    // upload finishes. Rows written before it stay NULL: no limit beyond the server's allow-list.
    sql: `
      ALTER TABLE uploads ADD COLUMN allowed_types TEXT;
    `,
  },
  {
    version: 6,
    name: 'part write tags',
    // A random tag per write of a part, recorded with it: a part whose SHA-256 the server skipped
    // still tells its versions apart. Rows from before stay NULL (their SHA-256 does it).
    sql: `
      ALTER TABLE parts ADD COLUMN write_tag TEXT;
    `,
  },
];

export class SchemaVersionError extends Error {
  readonly found: number;
  readonly supported: number;
  constructor(found: number, supported: number) {
    super(
      `the metadata database has schema version ${found}, but this Ferry knows versions up to ${supported}; ` +
        'it was written by a newer Ferry — upgrade Ferry (or restore a backup) instead of downgrading',
    );
    this.name = 'SchemaVersionError';
    this.found = found;
    this.supported = supported;
  }
}

function userVersion(db: DatabaseSync): number {
  const row = db.prepare('PRAGMA user_version').get();
  return Number(row?.['user_version'] ?? 0);
}

/**
 * Brings `db` to the newest version in `migrations`, all in one transaction (a failed migration
 * leaves the database as it was). Returns the versions it applied. Refuses a database newer than
 * the code, since an older Ferry would misread columns it does not know.
 */
export function migrate(db: DatabaseSync, migrations: readonly Migration[] = MIGRATIONS): number[] {
  const latest = migrations.length;
  for (let i = 0; i < latest; i++) {
    if (migrations[i]?.version !== i + 1) throw new Error(`migration #${i} must have version ${i + 1}`);
  }
  // IMMEDIATE takes the write lock before reading the version, so two processes opening the same
  // fresh file cannot both decide to run migration 1.
  db.exec('BEGIN IMMEDIATE');
  try {
    const current = userVersion(db);
    if (current > latest) throw new SchemaVersionError(current, latest);
    const applied: number[] = [];
    for (const migration of migrations.slice(current)) {
      try {
        db.exec(migration.sql);
      } catch (error) {
        throw new Error(`schema migration ${migration.version} (${migration.name}) failed`, { cause: error });
      }
      applied.push(migration.version);
    }
    // PRAGMA takes no bound parameters; `latest` is a number we computed, not input.
    if (applied.length > 0) db.exec(`PRAGMA user_version = ${latest}`);
    db.exec('COMMIT');
    return applied;
  } catch (error) {
    db.exec('ROLLBACK');
    throw error;
  }
}
