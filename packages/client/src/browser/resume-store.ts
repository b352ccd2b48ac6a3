/**
 * The browser resume store: IndexedDB database `ferry`, with two object stores keyed by the resume
 * key — `uploads` (the `ResumeEntry`) and `files` (a kept `Blob`, see `keepFilesUpTo`). IndexedDB
 * transactions make every change atomic across tabs; an entry and its file are removed together.
 * Entries past their server expiry or older than `maxAgeMs` are pruned when listed.
 */
import type { ResumeEntry, ResumeStore } from '../core/seams.ts';

export interface IndexedDbResumeStoreOptions {
  /** Database name. Default `ferry`. */
  databaseName?: string;
  /** Entries older than this are pruned, in ms. Default 7 days. */
  maxAgeMs?: number;
  /** The IndexedDB factory. Default `globalThis.indexedDB`. */
  indexedDB?: IDBFactory;
}

const ENTRIES = 'uploads';
const FILES = 'files';

function settle<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function committed(transaction: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    transaction.oncomplete = () => resolve();
    transaction.onerror = () => reject(transaction.error);
    transaction.onabort = () =>
      reject(transaction.error ?? new DOMException('transaction aborted', 'AbortError'));
  });
}

export function createIndexedDbResumeStore(options: IndexedDbResumeStoreOptions = {}): ResumeStore {
  const name = options.databaseName ?? 'ferry';
  const maxAgeMs = options.maxAgeMs ?? 7 * 24 * 3600 * 1000;
  let database: Promise<IDBDatabase> | undefined;

  const open = (): Promise<IDBDatabase> => {
    database ??= new Promise<IDBDatabase>((resolve, reject) => {
      const factory = options.indexedDB ?? globalThis.indexedDB;
      if (factory === undefined) {
        reject(new Error('IndexedDB is not available here; pass resumeStore: false or another store'));
        return;
      }
      const request = factory.open(name, 1);
      request.onupgradeneeded = () => {
        const db = request.result;
        if (!db.objectStoreNames.contains(ENTRIES)) db.createObjectStore(ENTRIES);
        if (!db.objectStoreNames.contains(FILES)) db.createObjectStore(FILES);
      };
      request.onsuccess = () => {
        const db = request.result;
        // Another tab upgrading the database: step aside, reopen on next use.
        db.onversionchange = () => {
          db.close();
          database = undefined;
        };
        resolve(db);
      };
      request.onerror = () => reject(request.error);
      request.onblocked = () => reject(new Error(`IndexedDB ${name} is blocked by another tab`));
    });
    const pending = database;
    pending.catch(() => {
      if (database === pending) database = undefined;
    });
    return pending;
  };

  const live = (entry: ResumeEntry, now: number): boolean => {
    if (entry.expiresAt != null && Date.parse(entry.expiresAt) <= now) return false;
    return now - Date.parse(entry.createdAt) < maxAgeMs;
  };

  return {
    async get(key) {
      const db = await open();
      const entry = await settle<ResumeEntry | undefined>(
        db.transaction(ENTRIES).objectStore(ENTRIES).get(key),
      );
      return entry !== undefined && live(entry, Date.now()) ? entry : undefined;
    },
    async set(key, entry) {
      const db = await open();
      const transaction = db.transaction(ENTRIES, 'readwrite');
      transaction.objectStore(ENTRIES).put(entry, key);
      await committed(transaction);
    },
    async remove(key) {
      const db = await open();
      const transaction = db.transaction([ENTRIES, FILES], 'readwrite');
      transaction.objectStore(ENTRIES).delete(key);
      transaction.objectStore(FILES).delete(key);
      await committed(transaction);
    },
    async list() {
      const db = await open();
      const transaction = db.transaction([ENTRIES, FILES], 'readwrite');
      const entries = transaction.objectStore(ENTRIES);
      const [keys, values] = await Promise.all([
        settle(entries.getAllKeys()),
        settle<ResumeEntry[]>(entries.getAll()),
      ]);
      const now = Date.now();
      const found: { key: string; entry: ResumeEntry }[] = [];
      keys.forEach((key, index) => {
        const entry = values[index] as ResumeEntry;
        if (live(entry, now)) found.push({ key: String(key), entry });
        else {
          entries.delete(key);
          transaction.objectStore(FILES).delete(key);
        }
      });
      await committed(transaction);
      return found;
    },
    async keepFile(key, file) {
      const db = await open();
      const transaction = db.transaction(FILES, 'readwrite');
      // IndexedDB stores the Blob's bytes, not a reference: it stays readable after a reload.
      transaction.objectStore(FILES).put(file, key);
      await committed(transaction);
    },
    async keptFile(key) {
      const db = await open();
      return settle<Blob | undefined>(db.transaction(FILES).objectStore(FILES).get(key));
    },
  };
}
