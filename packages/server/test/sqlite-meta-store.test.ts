import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import { describeMetaStore, sampleUploadRecord } from '@ferry/testing';
import { MIGRATIONS, type Migration, migrate } from '../src/meta/sqlite/migrations.ts';
import { createSqliteMetaStore, SchemaVersionError } from '../src/meta/sqlite/sqlite-meta-store.ts';

let root: string;
let counter = 0;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'ferry-sqlite-meta-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

function dbPath(): string {
  counter++;
  return join(root, `case-${counter}`, 'meta.db');
}

describeMetaStore('sqlite file', async () => {
  const path = dbPath();
  return {
    store: createSqliteMetaStore({ path }),
    cleanup: () => rm(join(path, '..'), { recursive: true, force: true }),
  };
});

describeMetaStore('sqlite :memory:', async () => ({
  store: createSqliteMetaStore({ path: ':memory:' }),
  cleanup: async () => {},
}));

function userVersion(path: string): number {
  const db = new DatabaseSync(path);
  try {
    return Number(db.prepare('PRAGMA user_version').get()?.['user_version']);
  } finally {
    db.close();
  }
}

describe('sqlite meta store', () => {
  it('keeps records across close and reopen of a file database', async () => {
    const path = dbPath();
    const first = createSqliteMetaStore({ path });
    const created = await first.create(sampleUploadRecord({ metadata: { filename: 'ä.txt' } }));
    const updated = await first.update(created.id, 1, { offset: 10 });
    await first.close();
    await first.close();
    const second = createSqliteMetaStore({ path });
    assert.deepEqual(await second.get(created.id), updated);
    await second.close();
  });

  it('opens a file database in WAL mode', async () => {
    const path = dbPath();
    const store = createSqliteMetaStore({ path });
    const db = new DatabaseSync(path);
    try {
      assert.equal(db.prepare('PRAGMA journal_mode').get()?.['journal_mode'], 'wal');
    } finally {
      db.close();
    }
    await store.close();
  });

  it('records the schema version and applies migrations only once', () => {
    const path = dbPath();
    createSqliteMetaStore({ path }).close();
    assert.equal(userVersion(path), MIGRATIONS.length);
    const db = new DatabaseSync(path);
    try {
      assert.deepEqual(migrate(db), []);
    } finally {
      db.close();
    }
    // Reopening would fail on CREATE TABLE if migration 1 ran again.
    createSqliteMetaStore({ path }).close();
    assert.equal(userVersion(path), MIGRATIONS.length);
  });

  it('applies pending migrations in order, and a failing one rolls back entirely', () => {
    const db = new DatabaseSync(':memory:');
    const one: Migration = { version: 1, name: 'a', sql: 'CREATE TABLE a (x INTEGER)' };
    const two: Migration = { version: 2, name: 'b', sql: 'CREATE TABLE b (x INTEGER)' };
    const broken: Migration = { version: 3, name: 'broken', sql: 'CREATE TABLE c (x INTEGER); NOT SQL' };
    assert.deepEqual(migrate(db, [one]), [1]);
    assert.deepEqual(migrate(db, [one, two]), [2]);
    assert.throws(() => migrate(db, [one, two, broken]), /schema migration 3 \(broken\) failed/);
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all();
    assert.deepEqual(
      tables.map((t) => t['name']),
      ['a', 'b'],
    );
    assert.equal(db.prepare('PRAGMA user_version').get()?.['user_version'], 2);
    assert.equal(db.isTransaction, false);
    assert.throws(() => migrate(db, [two]), /must have version 1/);
    db.close();
  });

  it('upgrades a schema-3 database: its uploads keep working, with no allowed types', async () => {
    const path = dbPath();
    await mkdir(join(path, '..'), { recursive: true });
    const db = new DatabaseSync(path);
    migrate(db, MIGRATIONS.slice(0, 3));
    db.prepare(
      `INSERT INTO uploads (id, namespace, protocol, size, byte_offset, metadata, state, storage_key,
         created_at, updated_at, version) VALUES ('old', 'alice', 'tus', 10, 0, '{}', 'uploading', 'k', 1, 1, 1)`,
    ).run();
    db.close();
    const store = await createSqliteMetaStore({ path });
    try {
      assert.equal(userVersion(path), MIGRATIONS.length);
      const old = await store.get('old');
      assert.equal(old?.namespace, 'alice');
      assert.equal(old?.allowedTypes, null);
    } finally {
      await store.close();
    }
  });

  it('refuses a database written by a newer schema version', () => {
    const path = dbPath();
    createSqliteMetaStore({ path }).close();
    const db = new DatabaseSync(path);
    db.exec(`PRAGMA user_version = ${MIGRATIONS.length + 1}`);
    db.close();
    assert.throws(
      () => createSqliteMetaStore({ path }),
      (error) =>
        error instanceof SchemaVersionError &&
        error.found === MIGRATIONS.length + 1 &&
        error.supported === MIGRATIONS.length &&
        /newer Ferry/.test(error.message),
    );
    // Refusing must not have changed anything.
    assert.equal(userVersion(path), MIGRATIONS.length + 1);
  });

  it('rejects values the schema forbids instead of storing them', async () => {
    const store = createSqliteMetaStore({ path: ':memory:' });
    await assert.rejects(store.create(sampleUploadRecord({ offset: 1.5 })));
    await assert.rejects(store.create(sampleUploadRecord({ offset: -1 })));
    const created = await store.create(sampleUploadRecord());
    await assert.rejects(store.update(created.id, 1, { size: -5 }));
    assert.equal((await store.get(created.id))?.version, 1);
    await store.close();
  });

  it('commits the writes of one event-loop turn together, settling each only after the commit', async () => {
    const path = dbPath();
    const store = createSqliteMetaStore({ path });
    const reader = new DatabaseSync(path);
    const count = () => Number(reader.prepare('SELECT count(*) AS n FROM uploads').get()?.['n']);
    try {
      let settled = 0;
      const writes = [1, 2, 3].map(() => store.create(sampleUploadRecord()).then(() => settled++));
      assert.equal(count(), 0, 'not visible to another connection before the commit');
      assert.equal(settled, 0);
      await Promise.all(writes);
      assert.equal(count(), 3);
    } finally {
      reader.close();
      await store.close();
    }
  });

  it('rejects only the failing write of a batch; the others commit', async () => {
    const store = createSqliteMetaStore({ path: ':memory:' });
    const existing = await store.create(sampleUploadRecord());
    const good = sampleUploadRecord();
    const outcomes = await Promise.allSettled([
      store.create(sampleUploadRecord({ offset: -1 })),
      store.create(good),
      store.create(sampleUploadRecord({ id: existing.id })),
      store.update(existing.id, 7, { offset: 1 }),
      store.update(existing.id, 1, { offset: 2 }),
    ]);
    assert.deepEqual(
      outcomes.map((outcome) => outcome.status),
      ['rejected', 'fulfilled', 'rejected', 'rejected', 'fulfilled'],
    );
    assert.equal((await store.get(good.id))?.id, good.id);
    assert.equal((await store.get(existing.id))?.offset, 2);
    await store.close();
  });

  it('commits pending writes on close', async () => {
    const path = dbPath();
    const store = createSqliteMetaStore({ path });
    const record = sampleUploadRecord();
    const pending = store.create(record);
    await store.close();
    await pending;
    const again = createSqliteMetaStore({ path });
    assert.equal((await again.get(record.id))?.id, record.id);
    await again.close();
  });

  it('rejects a write while another connection holds the write lock, and recovers after', async () => {
    const path = dbPath();
    const store = createSqliteMetaStore({ path, busyTimeoutMs: 0 });
    const other = new DatabaseSync(path);
    other.exec('BEGIN IMMEDIATE');
    await assert.rejects(store.create(sampleUploadRecord()), /locked|busy/i);
    other.exec('COMMIT');
    other.close();
    const record = await store.create(sampleUploadRecord());
    assert.equal((await store.get(record.id))?.id, record.id);
    await store.close();
  });

  it('uses the (state, expires_at) index for listExpired', () => {
    const db = new DatabaseSync(':memory:');
    migrate(db);
    const plan = db
      .prepare(
        "EXPLAIN QUERY PLAN SELECT * FROM uploads WHERE state = 'uploading' AND expires_at <= 1 ORDER BY expires_at, id LIMIT 10",
      )
      .all()
      .map((row) => String(row['detail']))
      .join('\n');
    assert.match(plan, /USING INDEX uploads_expiry/);
    db.close();
  });
});
