/**
 * UploadService: the protocol-free core. Creates uploads, appends bytes under the upload's lock,
 * finishes, terminates and expires them. It knows no HTTP: protocol adapters (tus now, the parts
 * API later) translate requests into these calls, and every failure is an UploadError.
 */
import { randomFillSync } from 'node:crypto';
import { CHECKSUM_ALGORITHMS, type Checksum, type ChecksumAlgorithm, UploadError } from '@ferry/protocol';
import type { Logger } from 'pino';
import type { ServerConfig } from '../config.ts';
import { ContentCheck } from '../content/content-check.ts';
import type { UploadHooks } from '../hooks/upload-hooks.ts';
import type { Lock, Locker } from '../meta/locker.ts';
import type { MetaStore, NewUploadRecord, UploadPatch, UploadRecord } from '../meta/meta-store.ts';
import type { Metrics } from '../observability/metrics.ts';
import {
  type ByteSource,
  capabilitiesOf,
  type DataStore,
  type DataStoreCapabilities,
} from '../stores/data-store.ts';
import { createDigest, type IncrementalDigest } from './checksum.ts';
import { type DigestThread, sharedDigestThread } from './digest-thread.ts';
import { OrphanSweep, orphanSweeperOf } from './orphan-sweep.ts';
import { sha256OfStored } from './stored-digest.ts';
import { TransferWatch } from './transfer-watch.ts';
import { progressTap, type UploadEvents } from './upload-events.ts';
import { UploadHasher } from './upload-hasher.ts';

export interface UploadServiceOptions {
  config: Readonly<ServerConfig>;
  dataStore: DataStore;
  metaStore: MetaStore;
  locker: Locker;
  logger: Logger;
  metrics: Metrics;
  /** Where progress, completion and removal are announced (`GET /uploads/:id/events`). */
  events?: UploadEvents;
  /** The clock, in epoch ms (tests move it). */
  now?: () => number;
  /**
   * Least time between two sweeps of orphaned storage (multipart uploads and incomplete parts no
   * record owns, on stores that can list them), in ms of `now`. Default 15 minutes.
   */
  orphanSweepIntervalMs?: number;
  /** Where digests are computed. Default: the process's hashing thread. */
  digests?: DigestThread;
  /** The app's hooks (`beforeCreate`, `beforeFinish`, the outbox events). Default: none. */
  hooks?: UploadHooks;
}

export interface CreateUploadInput {
  namespace: string;
  /** Declared size; `null` with a deferred length. */
  size: number | null;
  metadata: Record<string, string>;
  concat?: { kind: 'partial' } | { kind: 'final'; partIds: string[] };
  /** The token's `types` claim: the sniffed type must match one when the upload finishes. */
  allowedTypes?: readonly string[] | undefined;
}

export interface AppendInput {
  namespace: string;
  offset: number;
  body: ByteSource;
  /** The length declared now, for an upload whose length was deferred. */
  declaredSize?: number;
  /** The body's length when the request declared it: refused at once if it goes past the upload. */
  contentLength?: number;
  checksum?: Checksum;
  /**
   * tus checksum-trailer: the checksum arrives after the body (an HTTP trailer), so every supported
   * digest is computed while the body streams and the trailer picks one when it has arrived.
   */
  checksumTrailer?: () => Checksum | undefined;
  signal?: AbortSignal;
}

/** Random bytes for 256 ids, drawn from the CSPRNG at once (as `crypto.randomUUID` does). */
const idPool = Buffer.alloc(16 * 256);
let idPoolUsed = idPool.length;

/** 128 random bits, base64url: unguessable and safe in paths and URLs. */
export function newUploadId(): string {
  if (idPoolUsed === idPool.length) {
    randomFillSync(idPool);
    idPoolUsed = 0;
  }
  const id = idPool.toString('base64url', idPoolUsed, idPoolUsed + 16);
  idPoolUsed += 16;
  return id;
}

export class UploadService {
  readonly config: Readonly<ServerConfig>;
  readonly capabilities: DataStoreCapabilities;
  readonly #data: DataStore;
  readonly #meta: MetaStore;
  readonly #locker: Locker;
  readonly #logger: Logger;
  readonly #metrics: Metrics;
  readonly #now: () => number;
  readonly #hasher: UploadHasher | undefined;
  readonly #digests: DigestThread;
  readonly #events: UploadEvents | undefined;
  readonly #orphans: OrphanSweep | undefined;
  readonly #content: ContentCheck;
  readonly #hooks: UploadHooks | undefined;
  /** Bodies being written now: stopped on shutdown, each storing what it received. */
  readonly #active = new Set<TransferWatch>();
  #shuttingDown = false;

  constructor(options: UploadServiceOptions) {
    this.config = options.config;
    this.#data = options.dataStore;
    this.capabilities = capabilitiesOf(options.dataStore);
    this.#meta = options.metaStore;
    this.#locker = options.locker;
    this.#logger = options.logger;
    this.#metrics = options.metrics;
    this.#now = options.now ?? Date.now;
    this.#events = options.events;
    this.#digests = options.digests ?? sharedDigestThread();
    this.#hooks = options.hooks;
    this.#hasher = options.config.hashUploads
      ? new UploadHasher(this.capabilities.downloadable, this.#digests)
      : undefined;
    this.#content = new ContentCheck({
      allowTypes: options.config.allowTypes,
      reader: this.capabilities.downloadable,
      remover: this.capabilities.terminatable,
      meta: options.metaStore,
      metrics: options.metrics,
      logger: options.logger,
      events: options.events,
      hooks: options.hooks,
      now: this.#now,
    });
    const sweepable = orphanSweeperOf(options.dataStore);
    this.#orphans =
      sweepable === undefined
        ? undefined
        : new OrphanSweep({
            store: sweepable,
            meta: options.metaStore,
            logger: options.logger,
            ...(options.orphanSweepIntervalMs === undefined
              ? {}
              : { intervalMs: options.orphanSweepIntervalMs }),
          });
  }

  async create(input: CreateUploadInput): Promise<UploadRecord> {
    if (input.concat?.kind === 'final') return this.#createFinal(input, input.concat.partIds);
    if (input.size !== null) this.#refuseAboveMaxSize(input.size);
    if (input.size === null && !this.capabilities.deferrable) {
      throw new UploadError('ERR_LENGTH_REQUIRED', { message: 'this storage needs the length at creation' });
    }
    const { id, metadata } = await this.#decideCreation(input);
    const now = this.#now();
    const storageKey = await this.#data.create({ id, size: input.size });
    const fields: NewUploadRecord = {
      id,
      namespace: input.namespace,
      protocol: 'tus',
      size: input.size,
      offset: 0,
      metadata,
      concat: input.concat ?? null,
      state: 'uploading',
      storageKey,
      sha256: null,
      createdAt: now,
      expiresAt: this.#expiryFrom(now),
      finishedAt: null,
      allowedTypes: input.allowedTypes ?? null,
    };
    let record = await this.#meta.create(fields, { outbox: this.#hooks?.outbox('created', fields) });
    this.#metrics.uploadsCreated.inc();
    this.#events?.emit(id, { type: 'created', record });
    if (input.size === 0)
      record = await this.#withLock(id, undefined, undefined, async () => this.#finish(record));
    return record;
  }

  /**
   * The state of an upload for a tus HEAD. Takes the lock (asking a stalled writer to yield) so the
   * offset it reports is not about to move, and reconciles the record with what storage holds.
   */
  async status(id: string, namespace: string, signal?: AbortSignal): Promise<UploadRecord> {
    return this.#withLock(id, signal, undefined, async () => {
      const record = await this.#load(id, namespace);
      return this.#reconcile(record);
    });
  }

  /** Reads a record of either API without locking (downloads, listings). */
  async get(id: string, namespace: string): Promise<UploadRecord> {
    return this.#load(id, namespace, { anyProtocol: true });
  }

  async append(id: string, input: AppendInput): Promise<UploadRecord> {
    const watch = new TransferWatch({
      stallMs: this.config.stallMs,
      bodyTimeoutMs: this.config.bodyTimeoutMs,
      minBytesPerSecond: this.config.minBodyBytesPerSecond,
      request: input.signal,
    });
    if (this.#shuttingDown) watch.stop(new UploadError('ERR_SHUTTING_DOWN'));
    this.#active.add(watch);
    try {
      return await this.#withLock(
        id,
        input.signal,
        () => watch.requestRelease(),
        async () => {
          let record = await this.#load(id, input.namespace);
          if (record.concat?.kind === 'final') throw new UploadError('ERR_MODIFY_FINAL');
          if (record.state === 'finished') {
            if (input.offset !== record.size)
              throw new UploadError('ERR_OFFSET_MISMATCH', offsetDetails(record.size ?? 0));
            // Bytes past the declared length are refused, even at the very end.
            if ((input.contentLength ?? 0) > 0) throw new UploadError('ERR_EXCEEDS_LENGTH');
            return record;
          }
          // Storage may be ahead of the record after a crash; the store checks the offset itself too.
          if (input.offset !== record.offset) record = await this.#reconcile(record);
          if (record.state === 'finished') {
            throw new UploadError('ERR_OFFSET_MISMATCH', offsetDetails(record.offset));
          }
          if (input.declaredSize !== undefined) record = await this.#declareSize(record, input.declaredSize);
          if (input.offset !== record.offset) {
            throw new UploadError('ERR_OFFSET_MISMATCH', offsetDetails(record.offset));
          }
          return this.#write(record, input, watch);
        },
      );
    } finally {
      watch.dispose();
      this.#active.delete(watch);
    }
  }

  async terminate(id: string, namespace: string, signal?: AbortSignal): Promise<void> {
    await this.#withLock(id, signal, undefined, async () => {
      const record = await this.#load(id, namespace, { allowExpired: true });
      await this.#removeBytes(record);
      await this.#meta.delete(id, { outbox: this.#hooks?.outbox('terminated', record) });
      this.#hasher?.forget(id);
      this.#metrics.uploadsTerminated.inc();
      this.#events?.emit(id, { type: 'removed', id, namespace: record.namespace });
    });
  }

  /**
   * Removes expired unfinished uploads with their bytes, then (when due, on stores that can list
   * what they hold) storage no live upload owns that is older than the expiry. Returns how many
   * uploads were removed.
   */
  async sweep(): Promise<number> {
    const removed = await this.#sweepRecords();
    if (this.#orphans !== undefined && this.config.expirySeconds > 0) {
      await this.#orphans.run(this.#now(), this.config.expirySeconds * 1000);
    }
    return removed;
  }

  async #sweepRecords(): Promise<number> {
    let removed = 0;
    for (;;) {
      const now = this.#now();
      const batch = await this.#meta.listExpired(now, 100);
      let progressed = false;
      for (const candidate of batch) {
        let lock: Lock;
        try {
          lock = await this.#locker.acquire(candidate.id, { timeoutMs: 0 });
        } catch {
          continue; // being written right now: not idle, so not expired for long
        }
        try {
          const record = await this.#meta.get(candidate.id);
          if (record === undefined || !this.#isExpired(record, now)) continue;
          await this.#removeBytes(record);
          await this.#meta.delete(record.id, { outbox: this.#hooks?.outbox('expired', record) });
          this.#hasher?.forget(record.id);
          this.#metrics.uploadsExpired.inc();
          this.#events?.emit(record.id, { type: 'removed', id: record.id, namespace: record.namespace });
          removed += 1;
          progressed = true;
          this.#logger.info({ uploadId: record.id }, 'expired upload removed');
        } finally {
          await lock.release();
        }
      }
      if (batch.length < 100 || !progressed) return removed;
    }
  }

  /** Stops every body being read; each stores what it received. */
  shutdown(): void {
    this.#shuttingDown = true;
    for (const watch of this.#active) watch.stop(new UploadError('ERR_SHUTTING_DOWN'));
  }

  async #write(record: UploadRecord, input: AppendInput, watch: TransferWatch): Promise<UploadRecord> {
    const start = record.offset;
    const limit = (record.size ?? this.config.maxSize) - start;
    if (input.contentLength !== undefined && input.contentLength > limit) {
      throw new UploadError('ERR_EXCEEDS_LENGTH', { details: { offset: start, size: record.size } });
    }
    const digests = checksumDigests(input, this.#digests);
    const hash = await this.#hasher?.resume(record);
    const live = this.#events && progressTap(this.#events, record, start);
    const onChunk = (chunk: Uint8Array) => {
      watch.touch(chunk.byteLength);
      if (digests) for (const digest of digests.values()) digest.update(chunk);
      hash?.update(chunk);
      live?.chunk(chunk.byteLength);
    };
    let result: Awaited<ReturnType<DataStore['append']>>;
    try {
      result = await this.#data.append(record.storageKey, start, input.body, {
        signal: watch.signal,
        maxBytes: limit,
        onChunk,
        ...(input.contentLength === undefined ? {} : { expectedBytes: input.contentLength }),
      });
    } catch (error) {
      if (
        error instanceof UploadError &&
        (error.code === 'ERR_OFFSET_MISMATCH' || error.code === 'ERR_NOT_FOUND')
      ) {
        // The record lags storage (a crash between a write and its record): repair it, then let
        // the client re-read the offset.
        this.#hasher?.forget(record.id);
        const repaired = await this.#reconcile(record);
        throw new UploadError('ERR_OFFSET_MISMATCH', offsetDetails(repaired.offset));
      }
      throw error;
    }
    let written = result.bytesWritten;
    let failure = result.interruption;
    if (digests) {
      // tus checksum: the digest covers the whole PATCH body; an incomplete or mismatching body is
      // discarded ("the Server MUST NOT append the received data").
      const complete = failure === undefined;
      let refusal: UploadError | undefined;
      if (complete) {
        let declared: Checksum | undefined;
        try {
          declared = input.checksum ?? input.checksumTrailer?.();
        } catch (error) {
          refusal = error instanceof UploadError ? error : new UploadError('ERR_INVALID_CHECKSUM');
        }
        if (refusal === undefined && declared === undefined) {
          refusal = new UploadError('ERR_INVALID_CHECKSUM', {
            message: 'the Upload-Checksum trailer announced by the request did not arrive',
          });
        } else if (declared) {
          const computed = digests.get(declared.algorithm);
          digests.delete(declared.algorithm);
          if (!(await computed?.digest())?.equals(declared.digest)) {
            refusal = new UploadError('ERR_CHECKSUM_MISMATCH');
          }
        }
      }
      for (const unused of digests.values()) unused.discard();
      if (!complete || refusal) {
        await this.capabilities.truncatable?.truncate(record.storageKey, start);
        this.#hasher?.forget(record.id);
        written = 0;
        failure ??= refusal;
      }
    }
    if (written > 0) {
      hash?.advance(written);
      this.#metrics.bytesReceived.inc(written);
    }
    if (written === 0) live?.dropped();
    let updated = record;
    if (record.size !== null && start + written === record.size) {
      // Complete (also with nothing written: a deferred length declared equal to the bytes already
      // received by an empty last PATCH). One record update covers the offset and the finish.
      updated = await this.#finish(record);
    } else if (written > 0) {
      updated = await this.#meta.update(record.id, record.version, {
        offset: start + written,
        expiresAt: this.#expiryFrom(this.#now()),
      });
      if (this.#events?.hasListeners(record.id)) {
        this.#events.emit(record.id, {
          type: 'progress',
          record: updated,
          receivedBytes: updated.offset,
          partsReceived: 0,
        });
      }
    }
    if (failure !== undefined) {
      throw failure instanceof UploadError
        ? failure
        : new UploadError('ERR_BODY_ABORTED', { cause: failure });
    }
    return updated;
  }

  async #finish(record: UploadRecord): Promise<UploadRecord> {
    const size = record.size ?? record.offset;
    const finishedKey = await this.#data.finalize(record.storageKey, { id: record.id, size });
    const sha256 = this.#hasher === undefined ? null : await this.#finishedDigest(record, finishedKey, size);
    // A partial upload is a fragment of a file: only the final upload it joins has a type to check
    // (and is a file the app's `beforeFinish` is asked about).
    let sniffedType: string | null = null;
    if (record.concat?.kind !== 'partial') {
      sniffedType = await this.#content.admit(record, finishedKey, size, { sha256 });
    }
    const patch: UploadPatch = {
      state: 'finished',
      storageKey: finishedKey,
      offset: size,
      size,
      finishedAt: this.#now(),
      expiresAt: null,
      sniffedType,
    };
    if (sha256 !== null) patch.sha256 = sha256;
    const finished = await this.#meta.update(record.id, record.version, patch, {
      outbox: this.#hooks?.outbox('finished', { ...record, ...patch }),
    });
    this.#metrics.uploadsFinished.inc();
    this.#logger.info({ uploadId: record.id, size }, 'upload finished');
    this.#events?.emit(record.id, { type: 'completed', record: finished });
    return finished;
  }

  /**
   * The finished upload's SHA-256: the running hash's, else the stored object read back (a restart,
   * another node, storage that cannot read an upload in progress). Nothing was declared, so a
   * read-back that fails leaves the upload finished without a digest rather than failing it.
   */
  async #finishedDigest(record: UploadRecord, finishedKey: string, size: number): Promise<string | null> {
    const running = (await this.#hasher?.finish(record.id, size)) ?? null;
    const reader = this.capabilities.downloadable;
    if (running !== null || reader === undefined) return running;
    try {
      return await sha256OfStored(reader, finishedKey, size, { digests: this.#digests, finished: true });
    } catch (error) {
      this.#logger.warn(
        { uploadId: record.id, err: error },
        'the finished upload could not be read back to hash it',
      );
      return null;
    }
  }

  async #createFinal(input: CreateUploadInput, partIds: string[]): Promise<UploadRecord> {
    const concatenatable = this.capabilities.concatenatable;
    if (!concatenatable)
      throw new UploadError('ERR_INVALID_CONCAT', { message: 'this storage cannot concatenate' });
    const parts: UploadRecord[] = [];
    for (const partId of partIds) {
      const part = await this.#meta.get(partId);
      if (part === undefined || part.namespace !== input.namespace) {
        throw new UploadError('ERR_CONCAT_PARTIAL_NOT_FOUND', { details: { id: partId } });
      }
      if (part.concat?.kind !== 'partial')
        throw new UploadError('ERR_CONCAT_NOT_PARTIAL', { details: { id: partId } });
      if (part.state !== 'finished')
        throw new UploadError('ERR_CONCAT_PARTIAL_UNFINISHED', { details: { id: partId } });
      parts.push(part);
    }
    const size = parts.reduce((sum, part) => sum + (part.size ?? 0), 0);
    this.#refuseAboveMaxSize(size);
    const { id, metadata } = await this.#decideCreation({ ...input, size });
    const now = this.#now();
    const storageKey = await concatenatable.concatenate(
      id,
      parts.map((part) => part.storageKey),
    );
    const fields: NewUploadRecord = {
      id,
      namespace: input.namespace,
      protocol: 'tus',
      size,
      offset: size,
      metadata,
      concat: { kind: 'final', partIds },
      state: 'finished',
      storageKey,
      sha256: null,
      createdAt: now,
      expiresAt: null,
      finishedAt: now,
      allowedTypes: input.allowedTypes ?? null,
    };
    // Checked before the record exists: a refused file leaves nothing behind (the partials stay).
    fields.sniffedType = await this.#content.admit(fields, storageKey, size, { sha256: null });
    const record = await this.#meta.create(fields, {
      outbox: this.#hooks && [
        ...this.#hooks.outbox('created', fields),
        ...this.#hooks.outbox('finished', fields),
      ],
    });
    this.#metrics.uploadsCreated.inc();
    this.#metrics.uploadsFinished.inc();
    return record;
  }

  /**
   * The id and metadata of a new upload: a random id and the client's metadata, unless the app's
   * `beforeCreate` hook (or the pre-create webhook) refuses the upload or decides otherwise.
   */
  async #decideCreation(input: CreateUploadInput): Promise<{ id: string; metadata: Record<string, string> }> {
    if (this.#hooks === undefined) return { id: newUploadId(), metadata: input.metadata };
    const decided = await this.#hooks.beforeCreate({
      owner: input.namespace,
      protocol: 'tus',
      size: input.size,
      metadata: input.metadata,
      concat: input.concat?.kind ?? null,
    });
    return { id: decided.id ?? newUploadId(), metadata: decided.metadata };
  }

  async #declareSize(record: UploadRecord, size: number): Promise<UploadRecord> {
    if (record.size !== null) {
      if (record.size === size) return record;
      throw new UploadError('ERR_LENGTH_ALREADY_SET', { details: { size: record.size } });
    }
    this.#refuseAboveMaxSize(size);
    if (size < record.offset) {
      throw new UploadError('ERR_INVALID_LENGTH', {
        message: 'Upload-Length is smaller than the bytes already received',
      });
    }
    return this.#meta.update(record.id, record.version, { size });
  }

  /** Storage is the truth: after a crash the record may lag behind the bytes on disk. */
  async #reconcile(record: UploadRecord): Promise<UploadRecord> {
    if (record.state !== 'uploading') return record;
    let stored: number;
    try {
      stored = await this.#data.getOffset(record.storageKey);
    } catch (error) {
      // A crash between the store's finalize (bytes moved) and recording it leaves a finished file
      // behind an unfinished record: finalize again (it is idempotent) to complete the record.
      if (record.size !== null && error instanceof UploadError && error.code === 'ERR_NOT_FOUND') {
        return this.#finish(record);
      }
      throw error;
    }
    if (stored === record.offset) return record;
    this.#logger.info(
      { uploadId: record.id, recorded: record.offset, stored },
      'offset recovered from storage',
    );
    let updated = await this.#meta.update(record.id, record.version, { offset: stored });
    if (updated.size !== null && stored >= updated.size) updated = await this.#finish(updated);
    return updated;
  }

  async #load(
    id: string,
    namespace: string,
    options: { allowExpired?: boolean; anyProtocol?: boolean } = {},
  ): Promise<UploadRecord> {
    const record = await this.#meta.get(id);
    if (record === undefined || record.namespace !== namespace) throw new UploadError('ERR_NOT_FOUND');
    // A parts-API upload is continued with that API; tus requests about it are refused.
    if (!options.anyProtocol && record.protocol !== 'tus') throw new UploadError('ERR_WRONG_PROTOCOL');
    if (!options.allowExpired && this.#isExpired(record, this.#now()))
      throw new UploadError('ERR_UPLOAD_EXPIRED');
    return record;
  }

  /** A size above the maximum is refused when it is declared, never mid-upload. */
  #refuseAboveMaxSize(size: number): void {
    if (size > this.config.maxSize) {
      throw new UploadError('ERR_UPLOAD_TOO_LARGE', { details: { maxSize: this.config.maxSize } });
    }
  }

  #isExpired(record: UploadRecord, now: number): boolean {
    return record.state === 'uploading' && record.expiresAt !== null && record.expiresAt <= now;
  }

  #expiryFrom(now: number): number | null {
    return this.config.expirySeconds > 0 ? now + this.config.expirySeconds * 1000 : null;
  }

  async #removeBytes(record: UploadRecord): Promise<void> {
    const store = this.capabilities.terminatable;
    if (!store)
      throw new UploadError('ERR_METHOD_NOT_ALLOWED', { message: 'this storage cannot delete uploads' });
    await store.remove(record.storageKey);
  }

  async #withLock<T>(
    id: string,
    signal: AbortSignal | undefined,
    onReleaseRequested: (() => void) | undefined,
    work: () => Promise<T>,
  ): Promise<T> {
    const options: Parameters<Locker['acquire']>[1] = { timeoutMs: this.config.lockWaitMs };
    if (signal) options.signal = signal;
    if (onReleaseRequested) options.onReleaseRequested = onReleaseRequested;
    const lock = await this.#locker.acquire(id, options);
    try {
      return await work();
    } finally {
      await lock.release();
    }
  }
}

/** The running digests a request needs: its declared algorithm, or all of them for a trailer. */
function checksumDigests(
  input: AppendInput,
  thread: DigestThread,
): Map<ChecksumAlgorithm, IncrementalDigest> | undefined {
  if (input.checksum) {
    return new Map([[input.checksum.algorithm, createDigest(input.checksum.algorithm, thread)]]);
  }
  if (!input.checksumTrailer) return undefined;
  return new Map(CHECKSUM_ALGORITHMS.map((algorithm) => [algorithm, createDigest(algorithm, thread)]));
}

function offsetDetails(offset: number) {
  return { details: { offset }, headers: { 'upload-offset': String(offset) } };
}
