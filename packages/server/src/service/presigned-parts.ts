/**
 * Parts that travel straight from the client to the S3 bucket, through presigned UploadPart URLs:
 * Ferry's presigned mode (`POST /uploads/:id/presign`, ETag reports, `complete`) and the Uppy
 * `@uppy/aws-s3` signing routes. Knows no HTTP, like PartsService, whose records, locks and
 * removal it shares.
 *
 * The bytes never pass through Ferry, so nothing is believed on the client's word:
 * - a reported part is recorded only after ListParts shows that part with that ETag and size;
 * - `complete` checks every recorded part against ListParts again (page by page) before
 *   CompleteMultipartUpload — a part replaced in the bucket since its report is forgotten and
 *   named missing, never completed;
 * - a declared SHA-256 (or `hashUploads`) is verified by reading the finished object back before
 *   the record says finished (the S3 store's `sha256Of`: parallel ranged GetObject requests
 *   feeding one in-order hash, memory bounded). On a mismatch the object is deleted, a fresh
 *   multipart upload replaces the consumed one and every part is forgotten: the upload stays
 *   open (and empty), the file never becomes visible.
 *
 * A part reported this way has no server-computed digest: its record carries `NO_PART_SHA256` and
 * no write tag (`isReportedPart`), and status answers omit its `digest`.
 *
 * Locks are PartsService's: `<id>` for the upload, `<id>/parts/<n>` for a part.
 */
import { PART_LIMITS, partCountOf, UploadError } from '@ferry/protocol';
import type { Logger } from 'pino';
import type { ServerConfig } from '../config.ts';
import { ContentCheck } from '../content/content-check.ts';
import type { UploadHooks } from '../hooks/upload-hooks.ts';
import type { Lock, Locker } from '../meta/locker.ts';
import {
  type MetaStore,
  type NewUploadRecord,
  NO_PART_SHA256,
  type PartRecord,
  type UploadRecord,
  VersionConflictError,
} from '../meta/meta-store.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { DataStore, Downloadable, PartStore, StoredPart, Terminatable } from '../stores/data-store.ts';
import { sharedDigestThread } from './digest-thread.ts';
import { type PartsService, partLockKey, placePart } from './parts-service.ts';
import { sha256OfStored } from './stored-digest.ts';
import type { UploadEvents } from './upload-events.ts';
import { newUploadId } from './upload-service.ts';

/** A part recorded from a client's ETag report: no digest and no write tag (it never passed the server). */
export function isReportedPart(part: PartRecord): boolean {
  return part.sha256 === NO_PART_SHA256 && part.writeTag === undefined;
}

/** Most part URLs one presign request may ask for. */
export const MAX_PRESIGN_PARTS = 100;

/** What presigning needs from a store (the S3 store has it all). */
export type PresignStore = DataStore &
  PartStore &
  Terminatable &
  Downloadable & {
    readonly bucket: string;
    locate(key: string): { uploadId?: string };
    presignPart(key: string, n: number, options: { expiresInSeconds: number }): Promise<string>;
    listStoredParts(
      key: string,
      options?: { after?: number; limit?: number },
    ): Promise<{ parts: StoredPart[]; next: number | undefined }>;
    /** The SHA-256 (hex) of a finished object, read back faster than one `read` stream. */
    sha256Of?(finishedKey: string, size: number, signal?: AbortSignal): Promise<string>;
  };

export function asPresignStore(store: DataStore): PresignStore | undefined {
  const candidate = store as Partial<PresignStore>;
  return typeof candidate.presignPart === 'function' &&
    typeof candidate.locate === 'function' &&
    typeof candidate.listStoredParts === 'function' &&
    typeof candidate.completeParts === 'function' &&
    typeof candidate.remove === 'function' &&
    typeof candidate.read === 'function'
    ? (store as PresignStore)
    : undefined;
}

export interface PresignedPartsOptions {
  config: Readonly<ServerConfig>;
  dataStore: DataStore;
  metaStore: MetaStore;
  locker: Locker;
  logger: Logger;
  metrics: Metrics;
  events: UploadEvents;
  parts: PartsService;
  now?: () => number;
  /** The app's hooks (`beforeCreate`, `beforeFinish`, the outbox events). Default: none. */
  hooks?: UploadHooks;
}

export interface PresignedPart {
  n: number;
  url: string;
  /** Headers the PUT must carry (none today; kept so a signer may add some). */
  headers: Record<string, string>;
  /** Epoch ms after which the URL no longer works. */
  expiresAt: number;
}

/** One part as S3 lists it. */
export interface ListedPart {
  n: number;
  size: number;
  etag: string;
}

export class PresignedParts {
  readonly #config: Readonly<ServerConfig>;
  readonly #store: PresignStore | undefined;
  readonly #meta: MetaStore;
  readonly #locker: Locker;
  readonly #logger: Logger;
  readonly #metrics: Metrics;
  readonly #events: UploadEvents;
  readonly #parts: PartsService;
  readonly #now: () => number;
  readonly #content: ContentCheck | undefined;
  readonly #hooks: UploadHooks | undefined;

  constructor(options: PresignedPartsOptions) {
    this.#config = options.config;
    this.#store = asPresignStore(options.dataStore);
    this.#meta = options.metaStore;
    this.#locker = options.locker;
    this.#logger = options.logger;
    this.#metrics = options.metrics;
    this.#events = options.events;
    this.#parts = options.parts;
    this.#now = options.now ?? Date.now;
    this.#hooks = options.hooks;
    this.#content =
      this.#store === undefined
        ? undefined
        : new ContentCheck({
            allowTypes: options.config.allowTypes,
            reader: this.#store,
            remover: this.#store,
            meta: options.metaStore,
            metrics: options.metrics,
            logger: options.logger,
            events: options.events,
            hooks: options.hooks,
            now: this.#now,
          });
  }

  /** False when the storage cannot presign (every method then refuses with 405). */
  get available(): boolean {
    return this.#store !== undefined;
  }

  get bucket(): string {
    return this.#presignStore().bucket;
  }

  /** Presigned UploadPart URLs for parts of an unfinished upload; moves its expiry forward. */
  async presign(id: string, namespace: string, numbers: readonly number[]): Promise<PresignedPart[]> {
    const store = this.#presignStore();
    const record = await this.#parts.load(id, namespace);
    if (record.state === 'finished') throw new UploadError('ERR_UPLOAD_FINISHED');
    if (record.size !== null) {
      const partCount = partCountOf(record.size, record.partSize ?? record.size);
      const wrong = numbers.find((n) => n < 1 || n > partCount);
      if (wrong !== undefined) {
        throw new UploadError('ERR_INVALID_PART_NUMBER', { details: { n: wrong, partCount } });
      }
    }
    return this.#sign(store, record, numbers);
  }

  /**
   * Records part `n` after checking that S3 holds it with this ETag and size (ListParts).
   * Idempotent: reporting the same part again replaces its record.
   */
  async reportPart(
    id: string,
    input: { namespace: string; n: number; etag: string; size: number; signal?: AbortSignal },
  ): Promise<PartRecord> {
    const store = this.#presignStore();
    const lock = await this.#lock(partLockKey(id, input.n), input.signal);
    try {
      const record = await this.#parts.load(id, input.namespace);
      placePart(record, input.n, input.size);
      const page = await store.listStoredParts(record.storageKey, { after: input.n - 1, limit: 1 });
      const stored = page.parts.find((part) => part.n === input.n);
      if (stored === undefined || stored.size !== input.size || !sameEtag(stored.etag ?? '', input.etag)) {
        throw new UploadError('ERR_PART_NOT_STORED', {
          details: {
            n: input.n,
            ...(stored === undefined ? {} : { storedSize: stored.size, storedEtag: stored.etag }),
          },
        });
      }
      const part: PartRecord = {
        n: input.n,
        size: stored.size,
        sha256: NO_PART_SHA256,
        etag: stored.etag,
        storedAt: this.#now(),
      };
      if (!(await this.#meta.putPart(id, part, this.#expiryFrom(this.#now())))) {
        const now = await this.#meta.get(id);
        throw new UploadError(now?.state === 'finished' ? 'ERR_UPLOAD_FINISHED' : 'ERR_NOT_FOUND');
      }
      if (this.#events.hasListeners(id)) {
        const progress = await this.#parts.progressOf(id);
        const current = await this.#meta.get(id);
        if (current !== undefined) this.#events.emit(id, { type: 'progress', record: current, ...progress });
      }
      return part;
    } finally {
      await lock.release();
    }
  }

  /** True when some recorded part of the upload came from an ETag report (see `complete`). */
  async hasReportedParts(id: string): Promise<boolean> {
    if (this.#store === undefined) return false;
    const parts = await this.#meta.listParts(id);
    return parts.some(isReportedPart);
  }

  /**
   * Completes an upload whose parts (some or all) went straight to S3: every part recorded and
   * listed by S3 as recorded, then CompleteMultipartUpload, then the read-back verification.
   */
  complete(
    id: string,
    input: { namespace: string; sha256?: string; signal?: AbortSignal },
  ): Promise<UploadRecord> {
    const store = this.#presignStore();
    return this.#parts.completeWith(id, input, ({ record, size, stored, declared }) =>
      this.#finish(store, record, { size, parts: stored, declared, signal: input.signal }),
    );
  }

  // ---- Uppy @uppy/aws-s3 (its Companion signing contract) ----------------------------------

  /**
   * A Ferry upload of unknown size, made for Uppy's `POST /s3/multipart`: its size is learnt at
   * completion from the parts S3 holds.
   */
  async createOpen(input: {
    namespace: string;
    metadata: Record<string, string>;
    /** The token's `types` claim, checked against the sniffed type at completion. */
    allowedTypes?: readonly string[] | undefined;
  }): Promise<UploadRecord> {
    const store = this.#presignStore();
    const decided = await this.#parts.decideCreation(input.namespace, null, input.metadata);
    const id = decided.id ?? newUploadId();
    const now = this.#now();
    const storageKey = await store.create({ id, size: null });
    const fields: NewUploadRecord = {
      id,
      namespace: input.namespace,
      protocol: 'parts',
      size: null,
      offset: 0,
      metadata: decided.metadata,
      concat: null,
      state: 'uploading',
      storageKey,
      sha256: null,
      createdAt: now,
      expiresAt: this.#expiryFrom(now),
      finishedAt: null,
      allowedTypes: input.allowedTypes ?? null,
    };
    const record = await this.#meta.create(fields, { outbox: this.#hooks?.outbox('created', fields) });
    this.#metrics.uploadsCreated.inc();
    this.#events.emit(id, { type: 'created', record });
    return record;
  }

  /** The upload Uppy names by `key` (the Ferry id) and S3 `uploadId`; anything else is 404. */
  async openUpload(namespace: string, key: string, uploadId: string): Promise<UploadRecord> {
    const record = await this.#parts.load(key, namespace);
    if (record.state === 'finished') throw new UploadError('ERR_UPLOAD_FINISHED');
    if (this.uploadIdOf(record.storageKey) !== uploadId) throw new UploadError('ERR_NOT_FOUND');
    return record;
  }

  /** S3's UploadId of an upload in progress ('' when the storage key has none). */
  uploadIdOf(storageKey: string): string {
    return this.#presignStore().locate(storageKey).uploadId ?? '';
  }

  /** Part URLs for an upload made by `createOpen` (any part number S3 allows). */
  async presignOpen(record: UploadRecord, numbers: readonly number[]): Promise<PresignedPart[]> {
    const store = this.#presignStore();
    const wrong = numbers.find((n) => !Number.isSafeInteger(n) || n < 1 || n > PART_LIMITS.maxParts);
    if (wrong !== undefined) throw new UploadError('ERR_INVALID_PART_NUMBER', { details: { n: wrong } });
    return this.#sign(store, record, numbers);
  }

  /** Every part S3 holds for the upload, page by page. */
  async listStored(record: UploadRecord): Promise<ListedPart[]> {
    const store = this.#presignStore();
    const parts: ListedPart[] = [];
    let after = 0;
    for (;;) {
      const page = await store.listStoredParts(record.storageKey, { after });
      for (const part of page.parts) parts.push({ n: part.n, size: part.size, etag: part.etag ?? '' });
      if (page.next === undefined) break;
      after = page.next;
    }
    return parts;
  }

  /**
   * Completes an upload made by `createOpen` with the parts the client names (number and ETag):
   * each must be listed by S3 with that ETag; the size is the sum of their sizes.
   */
  async completeOpen(
    id: string,
    input: {
      namespace: string;
      uploadId: string;
      parts: Array<{ n: number; etag: string }>;
      signal?: AbortSignal;
    },
  ): Promise<UploadRecord> {
    const store = this.#presignStore();
    const lock = await this.#lock(id, input.signal);
    try {
      const record = await this.#parts.load(id, input.namespace);
      if (record.state === 'finished') return record;
      if (this.uploadIdOf(record.storageKey) !== input.uploadId) throw new UploadError('ERR_NOT_FOUND');
      const listed = new Map((await this.listStored(record)).map((part) => [part.n, part]));
      const wanted = [...input.parts].sort((a, b) => a.n - b.n);
      const wrong = wanted.filter((part) => {
        const stored = listed.get(part.n);
        return stored === undefined || !sameEtag(stored.etag, part.etag);
      });
      if (wanted.length === 0 || wrong.length > 0) {
        throw new UploadError('ERR_PARTS_MISSING', {
          message:
            wanted.length === 0
              ? 'the upload cannot complete without a part'
              : `the upload cannot complete: S3 does not hold ${wrong.length} of the parts with the ETags given`,
          details: { missing: wrong.map((part) => part.n) },
        });
      }
      const parts = wanted.map((part) => listed.get(part.n)!);
      const size = parts.reduce((sum, part) => sum + part.size, 0);
      if (size > this.#config.maxSize) {
        throw new UploadError('ERR_UPLOAD_TOO_LARGE', { details: { maxSize: this.#config.maxSize } });
      }
      return await this.#finish(store, record, { size, parts, declared: [], signal: input.signal });
    } finally {
      await lock.release();
    }
  }

  // ------------------------------------------------------------------------------------------

  async #sign(
    store: PresignStore,
    record: UploadRecord,
    numbers: readonly number[],
  ): Promise<PresignedPart[]> {
    if (numbers.length > MAX_PRESIGN_PARTS) {
      throw new UploadError('ERR_INVALID_FIELD', {
        message: `at most ${MAX_PRESIGN_PARTS} parts per request`,
        details: { maxParts: MAX_PRESIGN_PARTS },
      });
    }
    const seconds = this.#config.presignExpirySeconds;
    const now = this.#now();
    const signed = await Promise.all(
      [...new Set(numbers)].map(async (n) => ({
        n,
        url: await store.presignPart(record.storageKey, n, { expiresInSeconds: seconds }),
        headers: {},
        expiresAt: now + seconds * 1000,
      })),
    );
    await this.#touch(record);
    return signed;
  }

  /** A client asking for URLs is at work: the upload's expiry moves forward, as with a stored part. */
  async #touch(record: UploadRecord): Promise<void> {
    const expiresAt = this.#expiryFrom(this.#now());
    if (expiresAt === null) return;
    try {
      await this.#meta.update(record.id, record.version, { expiresAt });
    } catch (error) {
      // Another request changed the record at the same moment, and moved the expiry itself.
      if (!(error instanceof VersionConflictError)) throw error;
    }
  }

  /**
   * CompleteMultipartUpload (the store checks every part against ListParts), then the read-back
   * SHA-256 where one was declared or `hashUploads` is on, then the record says finished.
   */
  async #finish(
    store: PresignStore,
    record: UploadRecord,
    input: { size: number; parts: StoredPart[]; declared: string[]; signal: AbortSignal | undefined },
  ): Promise<UploadRecord> {
    const { id } = record;
    const { size } = input;
    let finishedKey: string;
    try {
      finishedKey = await store.completeParts(record.storageKey, { id, size, parts: input.parts });
    } catch (error) {
      if (error instanceof UploadError && error.code === 'ERR_PARTS_MISSING') {
        // Replaced or lost in the bucket since it was reported: forget it, so status says missing.
        const missing = (error.details?.['missing'] as number[] | undefined) ?? [];
        for (const n of missing) await this.#meta.deletePart(id, n);
      }
      throw error;
    }
    let sha256: string | null = null;
    if (input.declared.length > 0 || this.#config.hashUploads) {
      sha256 = await this.#hashObject(store, finishedKey, size, input.signal);
      const wrong = input.declared.find((value) => value !== sha256);
      if (wrong !== undefined) {
        await this.#reopen(store, record, finishedKey);
        const error = new UploadError('ERR_SHA256_MISMATCH', {
          message:
            'the file does not match the declared SHA-256: it was deleted and the upload reopened empty; send every part again',
          details: { expected: wrong, actual: sha256 },
        });
        this.#events.emit(id, { type: 'failed', record, error });
        throw error;
      }
    }
    // A refused type deletes the object and the upload (unlike a SHA-256 mismatch, sending the
    // same bytes again cannot help).
    const sniffedType =
      (await this.#content?.admit(record, finishedKey, size, { signal: input.signal, sha256 })) ?? null;
    const current = (await this.#meta.get(id)) ?? record;
    const patch = {
      state: 'finished',
      storageKey: finishedKey,
      size,
      offset: size,
      sha256,
      finishedAt: this.#now(),
      expiresAt: null,
      sniffedType,
    } as const;
    const finished = await this.#meta.update(id, current.version, patch, {
      outbox: this.#hooks?.outbox('finished', { ...current, ...patch }),
    });
    this.#metrics.uploadsFinished.inc();
    this.#logger.info({ uploadId: id, size, parts: input.parts.length, direct: true }, 'upload finished');
    this.#events.emit(id, { type: 'completed', record: finished });
    return finished;
  }

  /** The finished object's SHA-256: the store's parallel read-back, else one `read` stream. */
  #hashObject(
    store: PresignStore,
    finishedKey: string,
    size: number,
    signal: AbortSignal | undefined,
  ): Promise<string> {
    return sha256OfStored(store, finishedKey, size, {
      digests: sharedDigestThread(),
      finished: true,
      signal,
    });
  }

  /** After a refused SHA-256: the object goes, a new multipart upload takes over, no part is left. */
  async #reopen(store: PresignStore, record: UploadRecord, finishedKey: string): Promise<void> {
    await store.remove(finishedKey);
    const storageKey = await store.create({ id: record.id, size: record.size });
    for (const part of await this.#meta.listParts(record.id)) await this.#meta.deletePart(record.id, part.n);
    const current = (await this.#meta.get(record.id)) ?? record;
    await this.#meta.update(record.id, current.version, {
      storageKey,
      expiresAt: this.#expiryFrom(this.#now()),
    });
  }

  #presignStore(): PresignStore {
    if (!this.#store) {
      throw new UploadError('ERR_METHOD_NOT_ALLOWED', {
        message: 'this storage takes parts through the server only; presigned URLs need S3 storage',
      });
    }
    return this.#store;
  }

  async #lock(key: string, signal?: AbortSignal): Promise<Lock> {
    const options: Parameters<Locker['acquire']>[1] = { timeoutMs: this.#config.lockWaitMs };
    if (signal) options.signal = signal;
    return this.#locker.acquire(key, options);
  }

  #expiryFrom(now: number): number | null {
    return this.#config.expirySeconds > 0 ? now + this.#config.expirySeconds * 1000 : null;
  }
}

/** S3 ETags are quoted strings; clients may hand them back with or without the quotes. */
export function sameEtag(a: string, b: string): boolean {
  return a.replaceAll('"', '') === b.replaceAll('"', '') && a.replaceAll('"', '') !== '';
}
