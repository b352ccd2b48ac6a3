/**
 * The parts API's core: an upload is cut into numbered parts that arrive in any order and in
 * parallel, each written in place by the PartStore and recorded (MetaStore) only after its bytes
 * are stored; `complete` checks every part is there, verifies the declared SHA-256 and only then
 * makes the file visible. Knows no HTTP, like UploadService.
 *
 * Locking: a part takes the lock `<id>/parts/<n>`, so parts of one upload are written in parallel
 * but one part never by two requests at once (a re-sent part asks a stalled writer to let go).
 * `complete` and `terminate` take the upload's lock `<id>`; `complete` also takes every part's
 * lock, so no part is being written while the file is checked and moved.
 *
 * Verifying a declared SHA-256 where the running hash (parts-hasher.ts) cannot vouch for the file
 * (a restart, another node, parts that did not fit in memory) needs the stored bytes. A store that
 * can read an upload in progress (fs) is read in place. One that cannot (S3: the parts of an
 * unfinished multipart upload cannot be read) has the file completed first — the object exists,
 * but the record still says "uploading", so Ferry serves nothing of it — then read back whole, and
 * only a match marks the upload finished. A mismatch found that way deletes the object and the
 * upload: S3 has no way back from a completed object to its parts, so the client starts over.
 */
import { createHash, randomBytes } from 'node:crypto';
import { defaultPartSize, partCountOf, partRange, partSizeProblem, UploadError } from '@ferry/protocol';
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
  partIdentity,
  type UploadRecord,
} from '../meta/meta-store.ts';
import type { Metrics } from '../observability/metrics.ts';
import type {
  ByteSource,
  DataStore,
  DataStoreCapabilities,
  PartStore,
  StoredPart,
} from '../stores/data-store.ts';
import { type DigestThread, sharedDigestThread } from './digest-thread.ts';
import { PartsHasher, type PartTap } from './parts-hasher.ts';
import { sha256OfRange, sha256OfStored } from './stored-digest.ts';
import { TransferWatch } from './transfer-watch.ts';
import type { UploadEvents } from './upload-events.ts';
import { newUploadId } from './upload-service.ts';

export interface PartsServiceOptions {
  config: Readonly<ServerConfig>;
  dataStore: DataStore;
  capabilities: DataStoreCapabilities;
  metaStore: MetaStore;
  locker: Locker;
  logger: Logger;
  metrics: Metrics;
  events: UploadEvents;
  now?: () => number;
  /**
   * Bytes of received parts the process keeps in memory so the whole file's SHA-256 is computed as
   * the parts arrive (see parts-hasher.ts). Default 128 MiB; 0 reads every part back instead.
   */
  hashMemoryBytes?: number;
  /** Where SHA-256 is computed. Default: the process's hashing thread. */
  digests?: DigestThread;
  /** The app's hooks (`beforeCreate`, `beforeFinish`, the outbox events). Default: none. */
  hooks?: UploadHooks;
}

/**
 * Default of `hashMemoryBytes`: the parts a client may send ahead of a slow one (the Ferry client
 * starts none more than max(56 MiB, 2 × parallel parts) after its first unfinished part: 120 MiB
 * with 8 in parallel), and parallel parts of a few uploads.
 */
export const DEFAULT_HASH_MEMORY_BYTES = 128 * 1024 * 1024;

/** Where part `n` of a parts upload lies in its file, and the upload's geometry. */
export interface PartPlacement {
  size: number;
  partSize: number;
  partCount: number;
  start: number;
  end: number;
}

/**
 * Places part `n` of `record` for a write of `received` bytes, however they are sent (through the
 * server, or reported after a direct upload): refuses a finished upload, a part number past the
 * last part and a size other than the part's.
 */
export function placePart(record: UploadRecord, n: number, received: number): PartPlacement {
  if (record.state === 'finished') throw new UploadError('ERR_UPLOAD_FINISHED');
  const size = record.size ?? 0;
  const partSize = record.partSize ?? size;
  const partCount = partCountOf(size, partSize);
  if (n > partCount) throw new UploadError('ERR_INVALID_PART_NUMBER', { details: { n, partCount } });
  const { start, end } = partRange(n, size, partSize);
  if (received !== end - start) {
    throw new UploadError('ERR_PART_SIZE_MISMATCH', { details: { n, expected: end - start, received } });
  }
  return { size, partSize, partCount, start, end };
}

/** The lock a part's writers and `complete` take (an upload's own lock is its id). */
export function partLockKey(id: string, n: number): string {
  return `${id}/parts/${n}`;
}

/** What `completeWith` hands its `finish`: an upload in progress whose every part is recorded. */
export interface ReadyToComplete {
  record: UploadRecord;
  size: number;
  partCount: number;
  /** The recorded parts, as the metadata store lists them. */
  parts: PartRecord[];
  /** The same, as the storage completes them. */
  stored: StoredPart[];
  /** The SHA-256 values declared at creation and at completion. */
  declared: string[];
}

export interface CreatePartsInput {
  namespace: string;
  size: number;
  metadata: Record<string, string>;
  partSize?: number;
  /** Lower-case hex SHA-256 of the whole file. */
  sha256?: string;
  /** The token's `types` claim: the sniffed type must match one when the upload finishes. */
  allowedTypes?: readonly string[] | undefined;
}

export interface CreatePartsResult {
  record: UploadRecord;
  /** True when an identical verified file existed: the record is already finished. */
  deduplicated: boolean;
}

export interface PutPartInput {
  namespace: string;
  n: number;
  body: ByteSource;
  /** The request's `Content-Length`: must equal the part's size. */
  contentLength: number;
  /** The SHA-256 the client declared for the part (`Content-Digest`), if any. */
  digest?: Uint8Array;
  /**
   * False: the client has no use for the part's SHA-256, so it is not computed unless `digest` must
   * be checked (the record then has `NO_PART_SHA256`). Default true.
   */
  wantDigest?: boolean;
  signal?: AbortSignal;
}

export interface PartsStatus {
  record: UploadRecord;
  parts: PartRecord[];
}

export class PartsService {
  readonly #config: Readonly<ServerConfig>;
  readonly #store: (DataStore & PartStore) | undefined;
  readonly #caps: DataStoreCapabilities;
  readonly #meta: MetaStore;
  readonly #locker: Locker;
  readonly #logger: Logger;
  readonly #metrics: Metrics;
  readonly #events: UploadEvents;
  readonly #now: () => number;
  readonly #active = new Set<TransferWatch>();
  readonly #hasher: PartsHasher | undefined;
  readonly #digests: DigestThread;
  /** False for a store that cannot read an upload in progress (S3). */
  readonly #readsInProgress: boolean;
  readonly #content: ContentCheck;
  readonly #hooks: UploadHooks | undefined;
  #shuttingDown = false;

  constructor(options: PartsServiceOptions) {
    this.#config = options.config;
    this.#caps = options.capabilities;
    this.#store = options.capabilities.partStore;
    this.#meta = options.metaStore;
    this.#locker = options.locker;
    this.#logger = options.logger;
    this.#metrics = options.metrics;
    this.#events = options.events;
    this.#now = options.now ?? Date.now;
    this.#hooks = options.hooks;
    const reader = options.capabilities.downloadable;
    this.#content = new ContentCheck({
      allowTypes: options.config.allowTypes,
      reader,
      remover: options.capabilities.terminatable,
      meta: options.metaStore,
      metrics: options.metrics,
      logger: options.logger,
      events: options.events,
      hooks: options.hooks,
      now: this.#now,
    });
    this.#digests = options.digests ?? sharedDigestThread();
    this.#readsInProgress = (options.dataStore as { readsInProgress?: boolean }).readsInProgress !== false;
    this.#hasher =
      reader === undefined
        ? undefined
        : new PartsHasher({
            reader,
            locker: options.locker,
            retainBytes: options.hashMemoryBytes ?? DEFAULT_HASH_MEMORY_BYTES,
            lockWaitMs: options.config.lockWaitMs,
            readsInProgress: this.#readsInProgress,
            digests: this.#digests,
          });
  }

  /** Bytes of received parts held in memory for hashing in order (a gauge for tests and metrics). */
  get hashMemoryInUse(): number {
    return this.#hasher?.retainedBytes ?? 0;
  }

  /** False when the storage cannot store parts (the routes then answer 405). */
  get available(): boolean {
    return this.#store !== undefined;
  }

  async create(input: CreatePartsInput): Promise<CreatePartsResult> {
    const store = this.#partStore();
    if (input.size > this.#config.maxSize) {
      throw new UploadError('ERR_UPLOAD_TOO_LARGE', { details: { maxSize: this.#config.maxSize } });
    }
    const partSize = input.partSize ?? defaultPartSize(input.size);
    const problem = partSizeProblem(input.size, partSize);
    if (problem !== undefined) {
      throw new UploadError('ERR_INVALID_PART_SIZE', { message: problem, details: { partSize } });
    }
    const decided = await this.decideCreation(input.namespace, input.size, input.metadata);
    if (input.sha256 !== undefined) {
      const existing = await this.#dedup({ ...input, metadata: decided.metadata }, partSize, decided.id);
      if (existing !== undefined) return { record: existing, deduplicated: true };
    }
    const id = decided.id ?? newUploadId();
    const now = this.#now();
    const storageKey = await store.create({ id, size: input.size });
    const fields: NewUploadRecord = {
      id,
      namespace: input.namespace,
      protocol: 'parts',
      size: input.size,
      offset: 0,
      metadata: decided.metadata,
      concat: null,
      state: 'uploading',
      storageKey,
      sha256: null,
      createdAt: now,
      expiresAt: this.#expiryFrom(now),
      finishedAt: null,
      partSize,
      expectedSha256: input.sha256 ?? null,
      allowedTypes: input.allowedTypes ?? null,
    };
    const record = await this.#meta.create(fields, { outbox: this.#hooks?.outbox('created', fields) });
    this.#metrics.uploadsCreated.inc();
    this.#events.emit(id, { type: 'created', record });
    return { record, deduplicated: false };
  }

  async status(id: string, namespace: string): Promise<PartsStatus> {
    const record = await this.#load(id, namespace);
    const parts = record.state === 'uploading' ? await this.#meta.listParts(id) : [];
    return { record, parts };
  }

  async putPart(id: string, input: PutPartInput): Promise<PartRecord> {
    this.#partStore();
    const watch = new TransferWatch({
      stallMs: this.#config.stallMs,
      bodyTimeoutMs: this.#config.bodyTimeoutMs,
      minBytesPerSecond: this.#config.minBodyBytesPerSecond,
      request: input.signal,
    });
    if (this.#shuttingDown) watch.stop(new UploadError('ERR_SHUTTING_DOWN'));
    this.#active.add(watch);
    try {
      const lock = await this.#lock(partLockKey(id, input.n), input.signal, () => watch.requestRelease());
      try {
        const record = await this.#load(id, input.namespace);
        const { size, partSize, partCount, start, end } = placePart(record, input.n, input.contentLength);
        // Forget a stored copy before its bytes are overwritten: the record never claims bytes
        // that are being replaced (if this write fails, the part is simply missing).
        await this.#meta.deletePart(id, input.n);
        const tap = await this.#tap(record, input.n, size, partSize, partCount);
        let stored = false;
        try {
          const part = await this.#writePart(id, record, input, { start, end }, watch, tap);
          stored = true;
          tap?.stored(partIdentity(part));
          return part;
        } finally {
          if (!stored) tap?.failed();
        }
      } finally {
        await lock.release();
      }
    } finally {
      watch.dispose();
      this.#active.delete(watch);
    }
  }

  /** Writes and records one part; the caller holds the part's lock. */
  async #writePart(
    id: string,
    record: UploadRecord,
    input: PutPartInput,
    range: { start: number; end: number },
    watch: TransferWatch,
    tap: PartTap | undefined,
  ): Promise<PartRecord> {
    const store = this.#partStore();
    const { start, end } = range;
    // The part's own SHA-256 costs as much CPU as the whole file's running hash, and the answer waits
    // for it: computed only when it must be checked or the client wants it back.
    const hash =
      input.digest !== undefined || input.wantDigest !== false ? this.#digests.create('sha256') : undefined;
    let result: Awaited<ReturnType<typeof store.putPart>>;
    try {
      result = await store.putPart(record.storageKey, { n: input.n, start, size: end - start }, input.body, {
        signal: watch.signal,
        maxBytes: end - start,
        expectedBytes: end - start,
        onChunk: (chunk) => {
          watch.touch(chunk.byteLength);
          hash?.update(chunk);
          tap?.chunk(chunk);
        },
      });
    } catch (error) {
      hash?.discard();
      throw error;
    }
    if (result.bytesWritten > 0) this.#metrics.bytesReceived.inc(result.bytesWritten);
    if (result.interruption !== undefined || result.bytesWritten !== end - start) hash?.discard();
    if (result.interruption !== undefined) {
      throw result.interruption instanceof UploadError
        ? result.interruption
        : new UploadError('ERR_PART_INCOMPLETE', { cause: result.interruption });
    }
    if (result.bytesWritten !== end - start) {
      throw new UploadError('ERR_PART_INCOMPLETE', {
        details: { n: input.n, expected: end - start, received: result.bytesWritten },
      });
    }
    const digest = await hash?.digest();
    if (digest !== undefined && input.digest !== undefined && !digest.equals(input.digest)) {
      throw new UploadError('ERR_DIGEST_MISMATCH', {
        details: { n: input.n, actual: `sha-256=:${digest.toString('base64')}:` },
      });
    }
    const part: PartRecord = {
      n: input.n,
      size: end - start,
      sha256: digest?.toString('hex') ?? NO_PART_SHA256,
      etag: result.etag ?? null,
      storedAt: this.#now(),
      writeTag: randomBytes(12).toString('base64url'),
    };
    if (!(await this.#meta.putPart(id, part, this.#expiryFrom(this.#now())))) {
      // Completed or deleted while this part was written: its bytes are not part of anything.
      const now = await this.#meta.get(id);
      throw new UploadError(now?.state === 'finished' ? 'ERR_UPLOAD_FINISHED' : 'ERR_NOT_FOUND');
    }
    if (this.#events.hasListeners(id)) await this.#emitProgress(id);
    return part;
  }

  /** The running whole-file hash's view of one part write, when the storage can be read back. */
  async #tap(
    record: UploadRecord,
    n: number,
    size: number,
    partSize: number,
    partCount: number,
  ): Promise<PartTap | undefined> {
    if (this.#hasher === undefined || size === 0) return undefined;
    const layout = { id: record.id, storageKey: record.storageKey, size, partSize, partCount };
    return this.#hasher.begin(layout, n, () => this.#meta.listParts(record.id));
  }

  /**
   * The part of completing every way of sending parts shares: under the upload's lock and every
   * part's lock, a finished upload is returned as it is (a different declared SHA-256 refused), a
   * missing part refuses with `ERR_PARTS_MISSING`; otherwise `finish` runs, still under the locks,
   * with the parts as recorded.
   */
  async completeWith(
    id: string,
    input: { namespace: string; sha256?: string; signal?: AbortSignal },
    finish: (ready: ReadyToComplete) => Promise<UploadRecord>,
  ): Promise<UploadRecord> {
    const uploadLock = await this.#lock(id, input.signal);
    const partLocks: Lock[] = [];
    try {
      const record = await this.#load(id, input.namespace);
      if (record.state === 'finished') {
        if (input.sha256 !== undefined && record.sha256 !== null && record.sha256 !== input.sha256) {
          throw new UploadError('ERR_SHA256_MISMATCH', { details: { actual: record.sha256 } });
        }
        return record;
      }
      const size = record.size ?? 0;
      const partSize = record.partSize ?? size;
      const partCount = partCountOf(size, partSize);
      for (let n = 1; n <= partCount; n++) partLocks.push(await this.#lock(partLockKey(id, n), input.signal));
      const parts = await this.#meta.listParts(id);
      const present = new Map(parts.map((part) => [part.n, part]));
      const missing: number[] = [];
      // An empty file's one part is empty: there is nothing to send, so it is never missing.
      for (let n = 1; n <= partCount && size > 0; n++) {
        const { start, end } = partRange(n, size, partSize);
        if (present.get(n)?.size !== end - start) missing.push(n);
      }
      if (missing.length > 0) {
        throw new UploadError('ERR_PARTS_MISSING', {
          message: `the upload cannot complete: ${missing.length} of ${partCount} parts are missing`,
          details: { missing },
        });
      }
      return await finish({
        record,
        size,
        partCount,
        parts,
        stored: parts
          .filter((part) => part.n <= partCount)
          .map((part) => ({ n: part.n, size: part.size, etag: part.etag })),
        declared: [input.sha256, record.expectedSha256].filter((value) => value != null),
      });
    } finally {
      for (const lock of partLocks.reverse()) await lock.release();
      await uploadLock.release();
    }
  }

  /**
   * Finishes the upload once every part is stored and the declared SHA-256 (here or at creation)
   * matches. Idempotent: completing a finished upload returns it.
   */
  complete(
    id: string,
    input: { namespace: string; sha256?: string; signal?: AbortSignal },
  ): Promise<UploadRecord> {
    const store = this.#partStore();
    return this.completeWith(id, input, async ({ record, size, partCount, parts, stored, declared }) => {
      let sha256: string | null = null;
      let finishedKey: string | undefined;
      if (declared.length === 0 && !this.#config.hashUploads && size > 0) {
        // The running hash took every part as it arrived: when it covers the file without reading
        // any of it back, the file has its SHA-256 for free. A client that sent every part with a
        // Content-Digest then gets it here instead of waiting for its own (a browser's WebAssembly
        // SHA-256 is slower than its network).
        sha256 =
          (await this.#hasher?.finish(record, parts, { signal: input.signal, readBack: false })) ?? null;
      }
      if (declared.length > 0 || this.#config.hashUploads) {
        sha256 =
          size === 0 ? null : ((await this.#hasher?.finish(record, parts, { signal: input.signal })) ?? null);
        // What the running hash cannot vouch for, and any refusal, is decided on the stored bytes
        // (a refusal by the running hash stands where they cannot be read in place: it checked
        // every part against its recorded digest).
        if (sha256 === null || declared.some((value) => value !== sha256)) {
          sha256 =
            (await this.#hashStored(record.storageKey, size, { signal: input.signal, finished: false })) ??
            sha256;
        }
        // Where the bytes cannot be read in place (S3), the completed object is read back; with a
        // declared SHA-256 it is removed again if the bytes differ.
        if (sha256 === null && size > 0 && this.#caps.downloadable && this.#caps.terminatable) {
          finishedKey = await store.completeParts(record.storageKey, { id, size, parts: stored });
          sha256 = await this.#hashStored(finishedKey, size, { signal: input.signal, finished: true });
          const wrong = declared.find((value) => value !== sha256);
          if (wrong !== undefined && sha256 !== null) {
            await this.#discard(record, finishedKey, { expected: wrong, actual: sha256 });
          }
        }
        if (sha256 === null && declared.length > 0) {
          // Never finish as "verified" what could not be checked.
          throw new UploadError('ERR_METHOD_NOT_ALLOWED', {
            message: 'this storage cannot read files back, so it cannot verify a declared SHA-256',
          });
        }
        const wrong = declared.find((value) => value !== sha256);
        if (wrong !== undefined && sha256 !== null) {
          // The parts stay: a client finds the ones to re-send by their digests in the status.
          await this.#digestParts(record, parts, input.signal);
          const error = new UploadError('ERR_SHA256_MISMATCH', {
            details: { expected: wrong, actual: sha256 },
          });
          this.#events.emit(id, { type: 'failed', record, error });
          throw error;
        }
      }
      finishedKey ??= await store.completeParts(record.storageKey, { id, size, parts: stored });
      const sniffedType = await this.#content.admit(record, finishedKey, size, {
        signal: input.signal,
        sha256,
      });
      const patch = {
        state: 'finished',
        storageKey: finishedKey,
        offset: size,
        sha256,
        finishedAt: this.#now(),
        expiresAt: null,
        sniffedType,
      } as const;
      const finished = await this.#meta.update(id, record.version, patch, {
        outbox: this.#hooks?.outbox('finished', { ...record, ...patch }),
      });
      this.#metrics.uploadsFinished.inc();
      this.#logger.info({ uploadId: id, size, parts: partCount }, 'upload finished');
      this.#events.emit(id, { type: 'completed', record: finished });
      return finished;
    });
  }

  async terminate(id: string, namespace: string, signal?: AbortSignal): Promise<void> {
    const lock = await this.#lock(id, signal);
    try {
      const record = await this.#load(id, namespace, { allowExpired: true });
      const remover = this.#caps.terminatable;
      if (!remover)
        throw new UploadError('ERR_METHOD_NOT_ALLOWED', { message: 'this storage cannot delete uploads' });
      this.#hasher?.forget(id);
      await remover.remove(record.storageKey);
      await this.#meta.delete(id, { outbox: this.#hooks?.outbox('terminated', record) });
      this.#metrics.uploadsTerminated.inc();
      this.#events.emit(id, { type: 'removed', id, namespace: record.namespace });
    } finally {
      await lock.release();
    }
  }

  /** Reads a record of this API without locking; refuses tus uploads and expired ones. */
  async load(id: string, namespace: string): Promise<UploadRecord> {
    return this.#load(id, namespace);
  }

  /** Progress for an event stream: bytes and parts stored so far. */
  async progressOf(id: string): Promise<{ receivedBytes: number; partsReceived: number }> {
    const parts = await this.#meta.listParts(id);
    return { receivedBytes: parts.reduce((sum, part) => sum + part.size, 0), partsReceived: parts.length };
  }

  /** Stops every part body being read; a stopped part is not recorded (the client re-sends it). */
  shutdown(): void {
    this.#shuttingDown = true;
    this.#hasher?.close();
    for (const watch of this.#active) watch.stop(new UploadError('ERR_SHUTTING_DOWN'));
  }

  /**
   * The id (`undefined`: a random one) and metadata of a new upload, as the app's `beforeCreate`
   * hook (or the pre-create webhook) decides; refuses the upload when they do.
   */
  async decideCreation(
    namespace: string,
    size: number | null,
    metadata: Record<string, string>,
  ): Promise<{ id: string | undefined; metadata: Record<string, string> }> {
    if (this.#hooks === undefined) return { id: undefined, metadata };
    return this.#hooks.beforeCreate({ owner: namespace, protocol: 'parts', size, metadata, concat: null });
  }

  async #dedup(
    input: CreatePartsInput,
    partSize: number,
    chosenId: string | undefined,
  ): Promise<UploadRecord | undefined> {
    const duplicable = this.#caps.duplicable;
    if (!duplicable || input.sha256 === undefined) return undefined;
    const original = await this.#meta.findFinished(input.namespace, input.sha256, input.size);
    // A copy would skip the content check: an original the allow-list or the token's types do not
    // allow (or one never sniffed) is not copied, and the bytes are uploaded and checked instead.
    const allowedTypes = input.allowedTypes ?? null;
    if (original === undefined || !this.#content.allows(original.sniffedType, allowedTypes)) return undefined;
    const id = chosenId ?? newUploadId();
    let storageKey: string;
    try {
      storageKey = await duplicable.duplicate(original.storageKey, id);
    } catch (error) {
      // The app may have taken the original file away: upload the bytes instead.
      if (error instanceof UploadError && error.code === 'ERR_NOT_FOUND') return undefined;
      throw error;
    }
    const now = this.#now();
    const fields: NewUploadRecord = {
      id,
      namespace: input.namespace,
      protocol: 'parts',
      size: input.size,
      offset: input.size,
      metadata: input.metadata,
      concat: null,
      state: 'finished',
      storageKey,
      // The original's digest was verified by this server; the bytes are the same inode.
      sha256: original.sha256,
      sniffedType: original.sniffedType,
      createdAt: now,
      expiresAt: null,
      finishedAt: now,
      partSize,
      expectedSha256: input.sha256,
      allowedTypes,
    };
    if (this.#hooks?.checksFinish) {
      try {
        await this.#hooks.beforeFinish(fields);
      } catch (error) {
        await this.#caps.terminatable?.remove(storageKey);
        throw error;
      }
    }
    const record = await this.#meta.create(fields, {
      outbox: this.#hooks && [
        ...this.#hooks.outbox('created', fields),
        ...this.#hooks.outbox('finished', fields),
      ],
    });
    this.#metrics.uploadsCreated.inc();
    this.#metrics.uploadsFinished.inc();
    this.#logger.info({ uploadId: id, original: original.id, size: input.size }, 'upload deduplicated');
    return record;
  }

  /**
   * A completed object whose bytes are not what the client declared: the object and the upload go
   * (the parts are inside the object now), and the client is told so.
   */
  async #discard(
    record: UploadRecord,
    finishedKey: string,
    digests: { expected: string; actual: string },
  ): Promise<never> {
    this.#hasher?.forget(record.id);
    await this.#caps.terminatable!.remove(finishedKey);
    const error = new UploadError('ERR_SHA256_MISMATCH', {
      message:
        'the file does not have the declared SHA-256; this storage cannot keep its parts once they are joined, so the upload is gone: start a new one',
      details: { ...digests, partsKept: false },
    });
    await this.#meta.delete(record.id, {
      outbox: this.#hooks?.outbox('rejected', record, { code: error.code, message: error.message }),
    });
    this.#metrics.uploadsRejected.inc({ reason: 'sha256' });
    this.#logger.info(
      { uploadId: record.id, ...digests },
      'upload discarded: SHA-256 mismatch after completing',
    );
    this.#events.emit(record.id, { type: 'failed', record, error });
    this.#events.emit(record.id, { type: 'removed', id: record.id, namespace: record.namespace });
    throw error;
  }

  /**
   * Computes and records the SHA-256 of every part stored without one (its client declined it), so
   * that after a refused whole-file SHA-256 the status lists every part's digest. The caller holds
   * every part's lock. Parts that cannot be read in place keep none.
   */
  async #digestParts(record: UploadRecord, parts: PartRecord[], signal?: AbortSignal): Promise<void> {
    const reader = this.#caps.downloadable;
    if (!reader || !this.#readsInProgress) return;
    const size = record.size ?? 0;
    const partSize = record.partSize ?? size;
    for (const part of parts) {
      if (part.sha256 !== NO_PART_SHA256 || part.writeTag === undefined || part.size === 0) continue;
      const { start, end } = partRange(part.n, size, partSize);
      const sha256 = await sha256OfRange(
        reader,
        record.storageKey,
        { start, end: end - 1 },
        {
          digests: this.#digests,
          signal,
        },
      );
      await this.#meta.putPart(record.id, { ...part, sha256 }, this.#expiryFrom(this.#now()));
    }
  }

  /** The SHA-256 of stored bytes, or null when the store cannot read them. */
  async #hashStored(
    storageKey: string,
    size: number,
    options: { signal?: AbortSignal | undefined; finished: boolean },
  ): Promise<string | null> {
    if (size === 0) return createHash('sha256').digest('hex');
    const reader = this.#caps.downloadable;
    if (!reader) return null;
    if (!options.finished && !this.#readsInProgress) return null;
    try {
      return await sha256OfStored(reader, storageKey, size, { ...options, digests: this.#digests });
    } catch (error) {
      // The bytes of an unfinished upload are gone from where parts are written when an earlier
      // `complete` got as far as finishing the file (then crashed, or a `beforeFinish` hook failed):
      // the caller completes again (idempotent) and hashes the finished file instead.
      if (!options.finished && isNotFound(error)) return null;
      throw error;
    }
  }

  async #emitProgress(id: string): Promise<void> {
    const record = await this.#meta.get(id);
    if (record === undefined) return;
    const { receivedBytes, partsReceived } = await this.progressOf(id);
    this.#events.emit(id, { type: 'progress', record, receivedBytes, partsReceived });
  }

  async #load(
    id: string,
    namespace: string,
    options: { allowExpired?: boolean } = {},
  ): Promise<UploadRecord> {
    const record = await this.#meta.get(id);
    if (record === undefined || record.namespace !== namespace) throw new UploadError('ERR_NOT_FOUND');
    if (record.protocol !== 'parts') throw new UploadError('ERR_WRONG_PROTOCOL');
    const expired =
      record.state === 'uploading' && record.expiresAt !== null && record.expiresAt <= this.#now();
    if (expired && !options.allowExpired) throw new UploadError('ERR_UPLOAD_EXPIRED');
    return record;
  }

  #partStore(): DataStore & PartStore {
    if (!this.#store) {
      throw new UploadError('ERR_METHOD_NOT_ALLOWED', {
        message: 'this storage does not support the parts API',
      });
    }
    return this.#store;
  }

  async #lock(key: string, signal?: AbortSignal, onReleaseRequested?: () => void): Promise<Lock> {
    const options: Parameters<Locker['acquire']>[1] = { timeoutMs: this.#config.lockWaitMs };
    if (signal) options.signal = signal;
    if (onReleaseRequested) options.onReleaseRequested = onReleaseRequested;
    return this.#locker.acquire(key, options);
  }

  #expiryFrom(now: number): number | null {
    return this.#config.expirySeconds > 0 ? now + this.#config.expirySeconds * 1000 : null;
  }
}

function isNotFound(error: unknown): boolean {
  if (error instanceof UploadError) return error.code === 'ERR_NOT_FOUND';
  return (error as { code?: unknown } | null)?.code === 'ENOENT';
}
