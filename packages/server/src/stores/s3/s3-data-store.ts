/**
 * The S3 DataStore (and PartStore): upload bytes in an S3 bucket, nothing on local disk.
 *
 * Layout in the bucket (`keyPrefix` defaults to ""):
 *   <keyPrefix><id>        one S3 multipart upload per Ferry upload while it is in progress; the
 *                          finished object under the same key once it is complete (Complete-
 *                          MultipartUpload makes it appear whole or not at all).
 *   <keyPrefix><id>.part   the "incomplete part": the tail of a tus upload that is shorter than a
 *                          part, with its start offset in the metadata `x-amz-meta-ferry-start`.
 *                          The next PATCH reads it back and sends it ahead of its own bytes.
 *
 * The storage key recorded with an upload holds the object key, the UploadId and the part size
 * (s3-keys.ts), so any node can continue any upload after a crash. Offsets come from S3 alone:
 * the parts ListParts reports without a gap from part 1, each of its planned size (a shorter one
 * is the last part), plus the incomplete part when it starts exactly there. Parts are only ever
 * written in order from there, so bytes a client never had acknowledged are never counted; parts
 * past a gap (a failed upload among concurrent ones) are overwritten with 0 bytes before the
 * next PATCH writes, so they can never be counted later.
 *
 * tus PATCH bodies are cut into parts (s3-part-size.ts: 8 MiB by default, larger when the
 * declared length needs more than 10,000 parts, doubling every 1,000 parts for a deferred length)
 * and uploaded `concurrency` at a time; memory per PATCH is at most about (concurrency + 1) parts,
 * and all PATCHes together stay within `memoryBudgetBytes` (s3-part-buffers.ts): past it, a PATCH
 * waits for a buffer and its body is not read meanwhile.
 * The parts API maps part n to UploadPart n, streamed. `read` serves finished objects with ranged
 * GetObject; S3 cannot read back the parts of an unfinished multipart upload, so `read` of an
 * upload in progress is refused (the server then finishes such an upload without a server-side
 * SHA-256 after a restart, and cannot verify a declared SHA-256 of a parts-API upload it did not
 * hash while the parts arrived).
 *
 * What the operator must provision: a bucket, and for the credentials the actions s3:PutObject,
 * s3:GetObject, s3:DeleteObject, s3:AbortMultipartUpload, s3:ListMultipartUploadParts (ListParts),
 * s3:ListBucketMultipartUploads and s3:ListBucket (HeadBucket at startup) on it. A lifecycle rule
 * that aborts incomplete multipart uploads after some days cleans up after uploads that expire
 * while S3 is unreachable.
 */
import { PassThrough, Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadBucketCommand,
  HeadObjectCommand,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { UploadError } from '@ferry/protocol';
import { droppedBytesCollector } from '../../service/collect-garbage.ts';
import { type ChunkSink, readBody } from '../body-reader.ts';
import type {
  AppendOptions,
  AppendResult,
  ByteSource,
  Concatenatable,
  CreateDataOptions,
  DataStore,
  Downloadable,
  Duplicable,
  FileStat,
  LengthDeferrable,
  PartPlace,
  PartStore,
  PartWriteResult,
  StoredPart,
  Terminatable,
} from '../data-store.ts';
import { fromS3Error, isMissing } from './s3-errors.ts';
import {
  assertUploadId,
  finishedKey,
  type InProgressKey,
  incompleteKey,
  inProgressKey,
  parseS3Key,
} from './s3-keys.ts';
import { type OrphanSweepOptions, type OrphanSweepResult, sweepS3Orphans } from './s3-orphans.ts';
import { type PartBufferStats, PartBuffers } from './s3-part-buffers.ts';
import {
  choosePartPlan,
  DEFAULT_PART_SIZE,
  MAX_PART_SIZE,
  MAX_PARTS,
  MIN_PART_SIZE,
  MiB,
  type PartPlan,
  partSizeOf,
} from './s3-part-size.ts';
import { PartCutter, type StreamedPart, type UploadedPart } from './s3-parts.ts';
import { RangeReader } from './s3-range-reader.ts';

export type { PartBufferStats } from './s3-part-buffers.ts';

import {
  DEFAULT_READ_BACK_IN_FLIGHT,
  DEFAULT_READ_BACK_RANGE_BYTES,
  RangeBuffers,
  sha256InOrder,
} from './s3-read-back.ts';

export interface S3DataStoreOptions {
  /** The bucket; it must exist. */
  bucket: string;
  /** A ready S3 client; when given, the connection fields below are ignored. */
  client?: S3Client;
  /** S3 endpoint URL for S3-compatible servers (Ceph RGW, MinIO…). Default: AWS for `region`. */
  endpoint?: string;
  /** Region. Default: the SDK's (AWS_REGION…), else `us-east-1`. */
  region?: string;
  /** Path-style URLs (`endpoint/bucket/key`), needed by most S3-compatible servers. Default false. */
  forcePathStyle?: boolean;
  /** Credentials. Default: the AWS SDK's default chain (AWS_ACCESS_KEY_ID…, profiles, roles). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Prepended to every object key (`uploads/` → `uploads/<id>`). Default "". */
  keyPrefix?: string;
  /** Preferred part size of tus uploads, in bytes (5 MiB..5 GiB). Default 8 MiB. */
  partSize?: number;
  /** Parts of one PATCH uploaded at the same time. Default 4. */
  concurrency?: number;
  /**
   * Bytes of part buffers all PATCHes (and streamed concatenations) of this store may hold at
   * once, at least `partSize`; a PATCH past it waits (its body is not read). Default
   * `defaultMemoryBudget(partSize, concurrency)`: max(1 GiB, 2 × (concurrency + 1) × partSize).
   */
  memoryBudgetBytes?: number;
  /** Parts per ListParts page (1..1000). Default 1000 (S3's maximum). */
  listPartsPageSize?: number;
  /** HeadBucket at creation, failing with a clear message when the bucket is unreachable. Default true. */
  checkBucket?: boolean;
  /** Entries per ListMultipartUploads / ListObjectsV2 page of the orphan sweep (1..1000). Default 1000. */
  sweepPageSize?: number;
  /** Bytes per ranged GetObject when a finished object is read back whole (`sha256Of`). Default 8 MiB. */
  readBackRangeBytes?: number;
  /** Ranged GetObject requests in flight per read-back (`sha256Of`). Default 4. */
  readBackInFlight?: number;
  /**
   * Read objects back over plain-HTTP connections of the store's own, which read into reused
   * buffers (s3-range-reader.ts), when the endpoint is `http:`; a range they fail to get is fetched
   * through the SDK. False: always through the SDK. Default true.
   */
  readBackOverHttp?: boolean;
}

/** Where an upload's bytes are in the bucket. */
export interface S3Location {
  bucket: string;
  /** The object key (of the multipart upload while in progress, of the object once finished). */
  key: string;
  /** The multipart upload's id while the upload is in progress. */
  uploadId?: string;
}

export interface StoredPartsPage {
  parts: StoredPart[];
  /** Pass as `after` for the next page; undefined on the last page. */
  next: number | undefined;
}

export type S3DataStore = DataStore &
  Terminatable &
  LengthDeferrable &
  Downloadable &
  Concatenatable &
  PartStore &
  Duplicable & {
    readonly bucket: string;
    /** The bucket, object key and (in progress) UploadId of a storage key. */
    locate(key: string): S3Location;
    /**
     * A presigned URL that uploads part `n` of an upload in progress with a plain `PUT` (the
     * response's `ETag` header is the part's tag), valid for `expiresInSeconds`.
     */
    presignPart(key: string, n: number, options: { expiresInSeconds: number }): Promise<string>;
    /** One page of the parts S3 holds for an upload in progress (ListParts), from part `after + 1`. */
    listStoredParts(key: string, options?: { after?: number; limit?: number }): Promise<StoredPartsPage>;
    /** Closes the S3 client's connections if the store made the client. */
    close(): Promise<void>;
    /** What the part buffers of tus PATCHes hold now, and held at most, against the memory budget. */
    bufferStats(): PartBufferStats;
    /** S3 cannot read back an unfinished multipart upload (see `read`). */
    readonly readsInProgress: false;
    /** Aborts multipart uploads and deletes incomplete parts that no live upload owns (s3-orphans.ts). */
    sweepOrphans(options: OrphanSweepOptions): Promise<OrphanSweepResult>;
    /**
     * The SHA-256 (hex) of a finished object of `size` bytes, read back with parallel ranged
     * GetObject requests feeding one in-order hash (s3-read-back.ts). Fails if the object is not
     * `size` bytes long.
     */
    sha256Of(finishedKey: string, size: number, signal?: AbortSignal): Promise<string>;
    /** Ranges `sha256Of` read over its own plain-HTTP connections, and through the SDK, so far. */
    readonly readBackStats: { overHttp: number; throughSdk: number };
  };

/** Creates the store; unless `checkBucket` is false, fails when the bucket cannot be reached. */
export async function createS3DataStore(options: S3DataStoreOptions): Promise<S3DataStore> {
  const store = new S3Store(options);
  if (options.checkBucket !== false) await store.checkBucket();
  return store;
}

const START_METADATA = 'ferry-start';
/** How long the presigned URL of a read-back is valid; a range asked for later goes through the SDK. */
const READ_BACK_URL_SECONDS = 6 * 3600;
const DEFAULT_CONCURRENCY = 4;
/** Uploads whose S3 state this process remembers from its own last PATCH (see `#known`). */
const MAX_KNOWN = 10_000;

/**
 * The memory budget when none is configured: 1 GiB (128 default parts: 64 concurrent PATCHes can
 * each fill a part while as many parts are on their way to S3 — a 256 MiB budget halved the
 * throughput of 64 concurrent uploads in the S3 benchmark), raised so that two PATCHes can always
 * run at full concurrency with large parts.
 */
export function defaultMemoryBudget(partSize: number, concurrency: number): number {
  return Math.max(1024 * MiB, 2 * (concurrency + 1) * partSize);
}

/** What S3 holds for an upload in progress. */
interface UploadState {
  /** Parts 1..k without a gap, each of its planned size except possibly the last (empty in `#known`). */
  parts: UploadedPart[];
  /** k */
  partCount: number;
  partBytes: number;
  /** The last part is shorter than planned: no more bytes can follow. */
  closed: boolean;
  /** Part numbers past the gap that hold bytes: overwritten with 0 bytes before the next write. */
  stale: number[];
  /** The incomplete part, when it continues `partBytes`. */
  tail: { size: number } | undefined;
  /** An incomplete part that is left over (its bytes are already in a part). */
  staleTail: boolean;
  offset: number;
}

class S3Store implements S3DataStore {
  readonly kind = 's3';
  readonly deferredLength = true as const;
  readonly readsInProgress = false as const;
  readonly bucket: string;
  #client: S3Client;
  #ownsClient: boolean;
  #prefix: string;
  #partSize: number;
  #concurrency: number;
  #buffers: PartBuffers;
  #pageSize: number;
  #sweepPageSize: number;
  #readBack: { rangeBytes: number; inFlight: number };
  readonly #readBackOverHttp: boolean;
  /** Ranges read back by each way, for tests and diagnostics. */
  readonly readBackStats = { overHttp: 0, throughSdk: 0 };
  /**
   * What S3 holds for an upload in progress, as this process's own last append left it, so the
   * next PATCH of a sequence does not ask S3 again (ListParts and a HEAD of the incomplete part:
   * about 10 ms of each 8 MiB PATCH against a local RGW, more as the parts add up). Only a PATCH at
   * exactly the remembered offset uses it; anything else, any error and every other operation on
   * the upload read S3 again. It cannot mislead when another node took part in between: a PATCH
   * recorded there moved the offset past this one, and one that wrote to S3 without being recorded
   * used the same part numbers for the same bytes, which this PATCH then overwrites (an incomplete
   * part it expects and no longer finds fails the PATCH, and the retry reads S3).
   */
  #known = new Map<string, UploadState>();

  constructor(options: S3DataStoreOptions) {
    if (typeof options.bucket !== 'string' || options.bucket === '')
      throw new TypeError('bucket is required');
    this.bucket = options.bucket;
    this.#prefix = options.keyPrefix ?? '';
    this.#partSize = options.partSize ?? DEFAULT_PART_SIZE;
    if (
      !Number.isSafeInteger(this.#partSize) ||
      this.#partSize < MIN_PART_SIZE ||
      this.#partSize > MAX_PART_SIZE
    ) {
      throw new RangeError(
        `partSize must be from ${MIN_PART_SIZE} to ${MAX_PART_SIZE} bytes, got ${this.#partSize}`,
      );
    }
    this.#concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
    if (!Number.isSafeInteger(this.#concurrency) || this.#concurrency < 1) {
      throw new RangeError(`concurrency must be a positive integer, got ${this.#concurrency}`);
    }
    const budget = options.memoryBudgetBytes ?? defaultMemoryBudget(this.#partSize, this.#concurrency);
    if (!Number.isSafeInteger(budget) || budget < this.#partSize) {
      throw new RangeError(
        `memoryBudgetBytes must be at least the part size (${this.#partSize}), got ${budget}`,
      );
    }
    this.#buffers = new PartBuffers(budget);
    this.#pageSize = options.listPartsPageSize ?? 1000;
    if (!Number.isSafeInteger(this.#pageSize) || this.#pageSize < 1 || this.#pageSize > 1000) {
      throw new RangeError(`listPartsPageSize must be from 1 to 1000, got ${this.#pageSize}`);
    }
    this.#sweepPageSize = options.sweepPageSize ?? 1000;
    this.#readBackOverHttp = options.readBackOverHttp ?? true;
    this.#readBack = {
      rangeBytes: options.readBackRangeBytes ?? DEFAULT_READ_BACK_RANGE_BYTES,
      inFlight: options.readBackInFlight ?? DEFAULT_READ_BACK_IN_FLIGHT,
    };
    this.#ownsClient = options.client === undefined;
    this.#client = options.client ?? new S3Client(clientConfig(options));
  }

  async checkBucket(): Promise<void> {
    try {
      await this.#client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (error) {
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      const why =
        status === 404
          ? 'it does not exist'
          : status === 403
            ? 'access denied (check the credentials and their permissions)'
            : `${(error as Error).name}: ${(error as Error).message}`;
      throw new Error(`cannot reach S3 bucket "${this.bucket}": ${why}`, { cause: error });
    }
  }

  async close(): Promise<void> {
    if (this.#ownsClient) this.#client.destroy();
  }

  bufferStats(): PartBufferStats {
    return this.#buffers.stats();
  }

  locate(key: string): S3Location {
    const parsed = parseS3Key(key);
    return parsed.kind === 'upload'
      ? { bucket: this.bucket, key: parsed.objectKey, uploadId: parsed.uploadId }
      : { bucket: this.bucket, key: parsed.objectKey };
  }

  async create(options: CreateDataOptions): Promise<string> {
    assertUploadId(options.id);
    const objectKey = this.#prefix + options.id;
    const plan = choosePartPlan(options.size, this.#partSize);
    const created = await this.#send('CreateMultipartUpload', () =>
      this.#client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: objectKey })),
    );
    if (!created.UploadId) throw new Error('S3 CreateMultipartUpload answered without an UploadId');
    return inProgressKey(objectKey, created.UploadId, plan);
  }

  async getOffset(key: string): Promise<number> {
    const parsed = parseS3Key(key);
    if (parsed.kind === 'object') return (await this.#head(parsed.objectKey)).size;
    this.#known.delete(key);
    const state = await this.#inspect(parsed);
    this.#remember(key, state);
    return state.offset;
  }

  async append(
    key: string,
    offset: number,
    body: ByteSource,
    options: AppendOptions = {},
  ): Promise<AppendResult> {
    const ref = this.#inProgress(key);
    const known = this.#known.get(key);
    // Forgotten until this append has finished without an error: its end state is remembered then.
    this.#known.delete(key);
    const state = known !== undefined && known.offset === offset ? known : await this.#inspect(ref);
    if (offset !== state.offset) {
      throw new UploadError('ERR_OFFSET_MISMATCH', { details: { expected: state.offset, received: offset } });
    }
    if (options.signal?.aborted) return { bytesWritten: 0, interruption: options.signal.reason };
    // Parts past a gap must never be counted once the gap is filled: empty them first.
    await Promise.all(state.stale.map((n) => this.#uploadPart(ref, n, Buffer.alloc(0))));
    const initial = state.tail
      ? await this.#readIncomplete(ref, state.partBytes, state.tail.size)
      : undefined;
    const limit = state.closed ? 0 : options.maxBytes;
    const cutter = new PartCutter({
      firstPart: state.partCount + 1,
      plan: ref.plan,
      concurrency: this.#concurrency,
      buffers: this.#buffers,
      upload: (n, bytes) => this.#uploadPart(ref, n, bytes, options.signal),
      stream: (n, size) => this.#streamPart(ref, n, size),
      ...(initial ? { initial } : {}),
      ...(options.expectedBytes === undefined
        ? {}
        : { expectedBytes: Math.min(options.expectedBytes, limit ?? Number.POSITIVE_INFINITY) }),
    });
    try {
      const outcome = await readBody(
        body,
        { ...options, ...(limit === undefined ? {} : { maxBytes: limit }) },
        cutter,
      );
      await cutter.settle();
      if (cutter.failed) throw fromS3Error(cutter.failure, 'UploadPart');
      const result = (bytesWritten: number): AppendResult =>
        outcome.interruption === undefined
          ? { bytesWritten }
          : { bytesWritten, interruption: outcome.interruption };
      if (outcome.received === 0) {
        this.#remember(key, { ...state, stale: [] });
        return result(0);
      }
      const written = cutter.contiguous();
      let partBytes = state.partBytes + written.reduce((sum, part) => sum + part.size, 0);
      let partCount = state.partCount + written.length;
      const rest = cutter.takeRest();
      let tail: { size: number } | undefined;
      // At maxBytes the upload cannot grow any more: its tail is its last part, not an incomplete part.
      const last = options.maxBytes !== undefined && outcome.received === options.maxBytes;
      if (rest.byteLength > 0 && last) {
        await this.#uploadPart(ref, cutter.nextPart, rest);
        await this.#deleteIncomplete(ref);
        partBytes += rest.byteLength;
        partCount += 1;
      } else if (rest.byteLength > 0) {
        tail = { size: rest.byteLength };
        await this.#send('PutObject', () =>
          this.#client.send(
            new PutObjectCommand({
              Bucket: this.bucket,
              Key: incompleteKey(ref.objectKey),
              Body: rest,
              ContentLength: rest.byteLength,
              Metadata: { [START_METADATA]: String(partBytes) },
            }),
          ),
        );
      } else if (written.length > 0 && (state.tail || state.staleTail)) {
        await this.#deleteIncomplete(ref);
      } else if (written.length === 0) {
        // Nothing reached S3 after all (every byte is still in memory: impossible with bytes received).
        return result(outcome.received);
      }
      // Parts 1..partCount are full (the cutter cuts whole parts), but the one that ended the upload.
      this.#remember(key, {
        parts: [],
        partCount,
        partBytes,
        closed: state.closed || (last && rest.byteLength > 0),
        stale: [],
        tail,
        staleTail: false,
        offset: partBytes + (tail?.size ?? 0),
      });
      return result(outcome.received);
    } finally {
      cutter.close();
    }
  }

  async finalize(key: string, options: { id: string; size: number }): Promise<string> {
    const ref = this.#inProgress(key);
    this.#known.delete(key);
    let state: UploadState;
    try {
      state = await this.#inspect(ref);
    } catch (error) {
      if (isMissing(error) && (await this.#isComplete(ref, options.size))) return finishedKey(ref.objectKey);
      throw error;
    }
    if (state.offset !== options.size) {
      throw new Error(`cannot finish ${key}: ${options.size} bytes expected, ${state.offset} stored`);
    }
    if (options.size === 0) return this.#finishEmpty(ref);
    const parts = [...state.parts];
    if (state.tail) {
      const n = parts.length + 1;
      const copied = await this.#send('UploadPartCopy', () =>
        this.#client.send(
          new UploadPartCopyCommand({
            Bucket: this.bucket,
            Key: ref.objectKey,
            UploadId: ref.uploadId,
            PartNumber: n,
            CopySource: this.#copySource(incompleteKey(ref.objectKey)),
          }),
        ),
      );
      parts.push({ n, size: state.tail.size, etag: copied.CopyPartResult?.ETag ?? '' });
    }
    await this.#complete(ref, parts);
    await this.#deleteIncomplete(ref);
    return finishedKey(ref.objectKey);
  }

  async putPart(
    key: string,
    part: PartPlace,
    body: ByteSource,
    options: AppendOptions = {},
  ): Promise<PartWriteResult> {
    const ref = this.#inProgress(key);
    const maxBytes = Math.min(options.maxBytes ?? part.size, part.size);
    if (part.size === 0) {
      // An empty file's one part: nothing to store (completeParts makes the empty object).
      const outcome = await readBody(body, { ...options, maxBytes: 0 }, DISCARD);
      return outcome.interruption === undefined
        ? { bytesWritten: 0 }
        : { bytesWritten: 0, interruption: outcome.interruption };
    }
    // Streamed into UploadPart with the part's exact length; a body that ends short aborts the request.
    const pipe = new StreamSink();
    const abort = new AbortController();
    const sending = this.#client
      .send(
        new UploadPartCommand({
          Bucket: this.bucket,
          Key: ref.objectKey,
          UploadId: ref.uploadId,
          PartNumber: part.n,
          Body: pipe.stream,
          ContentLength: part.size,
        }),
        { abortSignal: abort.signal },
      )
      .then(
        (answer) => ({ etag: answer.ETag ?? '' }),
        (error: unknown) => {
          pipe.fail(error);
          return { error, beforeAbort: !abort.signal.aborted };
        },
      );
    const outcome = await readBody(body, { ...options, maxBytes }, pipe);
    const complete = outcome.received === part.size;
    if (complete) pipe.stream.end();
    else {
      abort.abort(outcome.interruption ?? new Error('the part body ended early'));
      pipe.stream.destroy();
    }
    const answer = await sending;
    if (!complete) {
      // S3 failed first (the body was then no longer read): its error, so an outage is a 503.
      if ('error' in answer && answer.beforeAbort) throw fromS3Error(answer.error, 'UploadPart');
      return {
        bytesWritten: 0,
        interruption: outcome.interruption ?? new UploadError('ERR_PART_INCOMPLETE'),
      };
    }
    if ('error' in answer) throw fromS3Error(answer.error, 'UploadPart');
    const result: PartWriteResult = { bytesWritten: part.size, etag: answer.etag };
    if (outcome.interruption !== undefined) result.interruption = outcome.interruption;
    return result;
  }

  async completeParts(
    key: string,
    options: { id: string; size: number; parts: StoredPart[] },
  ): Promise<string> {
    const ref = this.#inProgress(key);
    if (options.size === 0) {
      try {
        await this.#listParts(ref);
      } catch (error) {
        if (isMissing(error) && (await this.#isComplete(ref, 0))) return finishedKey(ref.objectKey);
        throw error;
      }
      return this.#finishEmpty(ref);
    }
    let listed: UploadedPart[];
    try {
      listed = await this.#listParts(ref);
    } catch (error) {
      if (isMissing(error) && (await this.#isComplete(ref, options.size))) return finishedKey(ref.objectKey);
      throw error;
    }
    const byNumber = new Map(listed.map((part) => [part.n, part]));
    const wanted = [...options.parts].sort((a, b) => a.n - b.n);
    const missing = wanted
      .filter((part) => {
        const stored = byNumber.get(part.n);
        return (
          stored === undefined ||
          stored.size !== part.size ||
          (part.etag !== null && !sameEtag(part.etag, stored.etag))
        );
      })
      .map((part) => part.n);
    if (missing.length > 0) {
      throw new UploadError('ERR_PARTS_MISSING', {
        message: `the upload cannot complete: S3 does not hold ${missing.length} of its parts as recorded`,
        details: { missing },
      });
    }
    await this.#complete(
      ref,
      wanted.map((part) => byNumber.get(part.n)!),
    );
    return finishedKey(ref.objectKey);
  }

  async remove(key: string): Promise<void> {
    this.#known.delete(key);
    const parsed = parseS3Key(key);
    if (parsed.kind === 'upload') {
      await this.#ignoreMissing('AbortMultipartUpload', () =>
        this.#client.send(
          new AbortMultipartUploadCommand({
            Bucket: this.bucket,
            Key: parsed.objectKey,
            UploadId: parsed.uploadId,
          }),
        ),
      );
      await this.#deleteIncomplete(parsed);
    }
    // Also for an upload in progress: a crash may have completed it before the record said so.
    await this.#ignoreMissing('DeleteObject', () =>
      this.#client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: parsed.objectKey })),
    );
  }

  async stat(key: string): Promise<FileStat> {
    const parsed = parseS3Key(key);
    if (parsed.kind === 'upload') throw new UploadError('ERR_UPLOAD_NOT_FINISHED');
    const { size, modifiedAt } = await this.#head(parsed.objectKey);
    return { size, modifiedAt };
  }

  read(key: string, range: { start: number; end: number }, signal?: AbortSignal): Readable {
    const parsed = parseS3Key(key);
    const { start, end } = range;
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0) {
      throw new RangeError(`invalid byte range ${start}-${end}`);
    }
    if (parsed.kind === 'upload') {
      // S3 has no way to read the parts of an unfinished multipart upload.
      throw new UploadError('ERR_METHOD_NOT_ALLOWED', {
        message: 'S3 storage cannot read back an upload that is not finished',
      });
    }
    if (end < start) return Readable.from([], { objectMode: false });
    const client = this.#client;
    const bucket = this.bucket;
    async function* stream(): AsyncGenerator<Uint8Array> {
      let answer: { Body?: unknown };
      try {
        answer = await client.send(
          new GetObjectCommand({ Bucket: bucket, Key: parsed.objectKey, Range: `bytes=${start}-${end}` }),
          signal ? { abortSignal: signal } : {},
        );
      } catch (error) {
        throw fromS3Error(error, 'GetObject');
      }
      const body = answer.Body as Readable;
      try {
        for await (const chunk of body) yield chunk as Uint8Array;
      } finally {
        body.destroy();
      }
    }
    return Readable.from(stream(), { objectMode: false, highWaterMark: 1024 * 1024 });
  }

  async concatenate(finalId: string, finishedKeys: string[]): Promise<string> {
    assertUploadId(finalId);
    const objectKey = this.#prefix + finalId;
    const sources = await Promise.all(
      finishedKeys.map(async (key) => {
        const parsed = parseS3Key(key);
        if (parsed.kind === 'upload') throw new UploadError('ERR_UPLOAD_NOT_FINISHED');
        return { key: parsed.objectKey, size: (await this.#head(parsed.objectKey)).size };
      }),
    );
    const filled = sources.filter((source) => source.size > 0);
    const total = filled.reduce((sum, source) => sum + source.size, 0);
    if (total === 0) {
      await this.#putEmpty(objectKey);
      return finishedKey(objectKey);
    }
    const created = await this.#send('CreateMultipartUpload', () =>
      this.#client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: objectKey })),
    );
    const plan = choosePartPlan(total, this.#partSize);
    const ref: InProgressKey = { kind: 'upload', objectKey, uploadId: created.UploadId!, plan };
    try {
      const ranges = copyRanges(filled);
      const parts =
        ranges !== undefined
          ? await this.#copyParts(ref, ranges)
          : await this.#streamParts(ref, filled, plan);
      await this.#complete(ref, parts);
    } catch (error) {
      await this.#ignoreMissing('AbortMultipartUpload', () =>
        this.#client.send(
          new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: objectKey, UploadId: ref.uploadId }),
        ),
      ).catch(() => {});
      throw error;
    }
    return finishedKey(objectKey);
  }

  async duplicate(key: string, newId: string): Promise<string> {
    return this.concatenate(newId, [key]);
  }

  async presignPart(key: string, n: number, options: { expiresInSeconds: number }): Promise<string> {
    const ref = this.#inProgress(key);
    if (!Number.isSafeInteger(n) || n < 1 || n > MAX_PARTS) throw new RangeError(`invalid part number ${n}`);
    return getSignedUrl(
      this.#client,
      new UploadPartCommand({
        Bucket: this.bucket,
        Key: ref.objectKey,
        UploadId: ref.uploadId,
        PartNumber: n,
      }),
      { expiresIn: options.expiresInSeconds },
    );
  }

  async listStoredParts(
    key: string,
    options: { after?: number; limit?: number } = {},
  ): Promise<StoredPartsPage> {
    const ref = this.#inProgress(key);
    const page = await this.#listPage(
      ref,
      options.after ?? 0,
      Math.min(options.limit ?? this.#pageSize, 1000),
    );
    return {
      parts: page.parts.map((part) => ({ n: part.n, size: part.size, etag: part.etag })),
      next: page.next,
    };
  }

  sweepOrphans(options: OrphanSweepOptions): Promise<OrphanSweepResult> {
    const scope = { client: this.#client, bucket: this.bucket, prefix: this.#prefix };
    return sweepS3Orphans({ ...scope, pageSize: this.#sweepPageSize }, options);
  }

  async sha256Of(finishedKey: string, size: number, signal?: AbortSignal): Promise<string> {
    const parsed = parseS3Key(finishedKey);
    if (parsed.kind === 'upload') {
      throw new UploadError('ERR_METHOD_NOT_ALLOWED', {
        message: 'S3 storage cannot read back an upload that is not finished',
      });
    }
    const buffers = new RangeBuffers(Math.max(1, Math.min(this.#readBack.rangeBytes, size)));
    // Every chunk is garbage once copied into its range's buffer. Left to V8 they waited for a full
    // collection, and the process's peak memory grew with the length of the read
    // (docs/operations.md, "Memory and garbage collection").
    const garbage = droppedBytesCollector();
    let reader: RangeReader | undefined;
    const fetchRange = async (start: number, end: number, abort: AbortSignal): Promise<Uint8Array> => {
      // One buffer per range, used again once hashed: the hash takes it in one call.
      const bytes = buffers.take();
      if (reader !== undefined) {
        try {
          const read = await reader.fetch(start, end, bytes, abort);
          this.readBackStats.overHttp++;
          return read;
        } catch (error) {
          if (abort.aborted) throw error;
          // Any answer the plain reader does not take is asked for again through the SDK, which
          // knows S3's errors and retries.
        }
      }
      this.readBackStats.throughSdk++;
      const answer = await this.#send('GetObject', () =>
        this.#client.send(
          new GetObjectCommand({
            Bucket: this.bucket,
            Key: parsed.objectKey,
            Range: `bytes=${start}-${end}`,
          }),
          { abortSignal: abort },
        ),
      );
      const length = end - start + 1;
      let at = 0;
      try {
        for await (const chunk of answer.Body as Readable) {
          const piece = chunk as Uint8Array;
          if (at + piece.byteLength > length) throw new Error('S3 sent more bytes than asked');
          bytes.set(piece, at);
          at += piece.byteLength;
          garbage.dropped(piece.byteLength);
        }
      } catch (error) {
        throw fromS3Error(error, 'GetObject');
      }
      return bytes.subarray(0, at);
    };
    if (size > 0) {
      // A longer object would hash as a wrong file; say so plainly instead.
      const stored = (await this.#head(parsed.objectKey)).size;
      if (stored !== size) throw new Error(`${finishedKey} holds ${stored} bytes, ${size} expected`);
      reader = await this.#rangeReader(parsed.objectKey);
    }
    try {
      return await sha256InOrder(fetchRange, size, {
        ...this.#readBack,
        hashed: (bytes) => buffers.give(bytes),
        ...(signal ? { signal } : {}),
      });
    } finally {
      reader?.close();
    }
  }

  /** The plain-HTTP reader of an object, when the endpoint is `http:` and it is not turned off. */
  async #rangeReader(objectKey: string): Promise<RangeReader | undefined> {
    if (!this.#readBackOverHttp) return undefined;
    // A presigned GET: signed once, valid for every range (the Range header is not signed).
    const url = new URL(
      await getSignedUrl(this.#client, new GetObjectCommand({ Bucket: this.bucket, Key: objectKey }), {
        expiresIn: READ_BACK_URL_SECONDS,
      }),
    );
    if (url.protocol !== 'http:') return undefined;
    return new RangeReader(url, { maxConnections: this.#readBack.inFlight });
  }

  // ------------------------------------------------------------------------------------------

  #inProgress(key: string): InProgressKey {
    const parsed = parseS3Key(key);
    if (parsed.kind !== 'upload') throw new Error(`${key} is a finished file; it cannot be written`);
    return parsed;
  }

  async #send<T>(operation: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw fromS3Error(error, operation);
    }
  }

  async #ignoreMissing(operation: string, call: () => Promise<unknown>): Promise<void> {
    try {
      await call();
    } catch (error) {
      if (!isMissing(error)) throw fromS3Error(error, operation);
    }
  }

  async #head(
    objectKey: string,
  ): Promise<{ size: number; modifiedAt: Date; metadata: Record<string, string> }> {
    const answer = await this.#send('HeadObject', () =>
      this.#client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: objectKey })),
    );
    return {
      size: answer.ContentLength ?? 0,
      modifiedAt: answer.LastModified ?? new Date(0),
      metadata: answer.Metadata ?? {},
    };
  }

  async #isComplete(ref: InProgressKey, size: number): Promise<boolean> {
    try {
      return (await this.#head(ref.objectKey)).size === size;
    } catch (error) {
      if (isMissing(error)) return false;
      throw error;
    }
  }

  async #listPage(
    ref: InProgressKey,
    after: number,
    limit: number,
  ): Promise<{ parts: UploadedPart[]; next: number | undefined }> {
    const answer = await this.#send('ListParts', () =>
      this.#client.send(
        new ListPartsCommand({
          Bucket: this.bucket,
          Key: ref.objectKey,
          UploadId: ref.uploadId,
          MaxParts: limit,
          ...(after > 0 ? { PartNumberMarker: String(after) } : {}),
        }),
      ),
    );
    const parts = (answer.Parts ?? []).map((part) => ({
      n: part.PartNumber ?? 0,
      size: part.Size ?? 0,
      etag: part.ETag ?? '',
    }));
    const next =
      answer.IsTruncated && answer.NextPartNumberMarker !== undefined
        ? Number(answer.NextPartNumberMarker)
        : undefined;
    return { parts, next: next !== undefined && next > after ? next : undefined };
  }

  /** Every part S3 holds for the upload (ListParts, page by page), in part-number order. */
  async #listParts(ref: InProgressKey): Promise<UploadedPart[]> {
    const parts: UploadedPart[] = [];
    let after = 0;
    for (;;) {
      const page = await this.#listPage(ref, after, this.#pageSize);
      parts.push(...page.parts);
      if (page.next === undefined) break;
      after = page.next;
    }
    return parts.sort((a, b) => a.n - b.n);
  }

  async #inspect(ref: InProgressKey): Promise<UploadState> {
    const [listed, tail] = await Promise.all([this.#listParts(ref), this.#incomplete(ref)]);
    return stateOf(ref.plan, listed, tail);
  }

  /** Keeps `state` (without its list of parts: 10,000 of them may make one upload's list). */
  #remember(key: string, state: UploadState): void {
    if (this.#known.size >= MAX_KNOWN) {
      const oldest = this.#known.keys().next();
      if (!oldest.done) this.#known.delete(oldest.value);
    }
    this.#known.set(key, { ...state, parts: [] });
  }

  /** The incomplete part's start and size, if there is one. */
  async #incomplete(ref: InProgressKey): Promise<{ start: number; size: number } | undefined> {
    try {
      const head = await this.#head(incompleteKey(ref.objectKey));
      const start = Number(head.metadata[START_METADATA]);
      return Number.isSafeInteger(start) ? { start, size: head.size } : undefined;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  /** The incomplete part, which must start at `start` and hold `size` bytes. */
  async #readIncomplete(ref: InProgressKey, start: number, size: number): Promise<Buffer> {
    const changed = () =>
      new UploadError('ERR_UPLOAD_LOCKED', { message: 'the upload changed while it was being read' });
    let answer: GetObjectCommandOutput;
    try {
      answer = await this.#send('GetObject', () =>
        this.#client.send(new GetObjectCommand({ Bucket: this.bucket, Key: incompleteKey(ref.objectKey) })),
      );
    } catch (error) {
      // Gone since it was seen (another writer used it): the client's retry reads S3 again.
      if (isMissing(error)) throw changed();
      throw error;
    }
    if (answer.Metadata?.[START_METADATA] !== String(start)) {
      (answer.Body as Readable | undefined)?.destroy?.();
      throw changed();
    }
    const chunks: Uint8Array[] = [];
    try {
      for await (const chunk of answer.Body as Readable) chunks.push(chunk as Uint8Array);
    } catch (error) {
      throw fromS3Error(error, 'GetObject');
    }
    const bytes = Buffer.concat(chunks);
    // Replaced since it was seen (HeadObject, or this process's last append): another writer is at work.
    if (bytes.byteLength !== size) throw changed();
    return bytes;
  }

  async #deleteIncomplete(ref: { objectKey: string }): Promise<void> {
    await this.#ignoreMissing('DeleteObject', () =>
      this.#client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: incompleteKey(ref.objectKey) })),
    );
  }

  async #uploadPart(ref: InProgressKey, n: number, body: Buffer, signal?: AbortSignal): Promise<string> {
    void signal; // a part in flight is finished even when the body stops: its bytes were received
    return this.#sendPart(ref, n, body, body.byteLength);
  }

  /** UploadPart `n` of `size` bytes; resolves with its ETag. */
  async #sendPart(
    ref: InProgressKey,
    n: number,
    body: Buffer | PassThrough,
    size: number,
    abortSignal?: AbortSignal,
  ): Promise<string> {
    const command = new UploadPartCommand({
      Bucket: this.bucket,
      Key: ref.objectKey,
      UploadId: ref.uploadId,
      PartNumber: n,
      Body: body,
      ContentLength: size,
    });
    const answer = await this.#send('UploadPart', () =>
      this.#client.send(command, abortSignal === undefined ? {} : { abortSignal }),
    );
    return answer.ETag ?? '';
  }

  /** An UploadPart of `size` bytes whose body is written as it arrives (PartCutter). */
  #streamPart(ref: InProgressKey, n: number, size: number): StreamedPart {
    const body = new PassThrough({ highWaterMark: 1024 * 1024 });
    body.on('error', () => {});
    const abort = new AbortController();
    const done = this.#sendPart(ref, n, body, size, abort.signal);
    // Settled by the cutter; never an unhandled rejection.
    done.catch(() => {});
    return {
      write: (bytes) => {
        body.write(bytes);
      },
      end: () => body.end(),
      abort: () => {
        abort.abort(new Error('the part body ended early'));
        body.destroy();
      },
      done,
    };
  }

  async #complete(ref: InProgressKey, parts: UploadedPart[]): Promise<void> {
    await this.#send('CompleteMultipartUpload', () =>
      this.#client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: ref.objectKey,
          UploadId: ref.uploadId,
          MultipartUpload: { Parts: parts.map((part) => ({ PartNumber: part.n, ETag: part.etag })) },
        }),
      ),
    );
  }

  /** S3 completes no multipart upload without a part: an empty file is one PutObject. */
  async #finishEmpty(ref: InProgressKey): Promise<string> {
    await this.#putEmpty(ref.objectKey);
    await this.#ignoreMissing('AbortMultipartUpload', () =>
      this.#client.send(
        new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: ref.objectKey, UploadId: ref.uploadId }),
      ),
    );
    await this.#deleteIncomplete(ref);
    return finishedKey(ref.objectKey);
  }

  async #putEmpty(objectKey: string): Promise<void> {
    await this.#send('PutObject', () =>
      this.#client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: objectKey,
          Body: Buffer.alloc(0),
          ContentLength: 0,
        }),
      ),
    );
  }

  #copySource(objectKey: string): string {
    return `${this.bucket}/${objectKey.split('/').map(encodeURIComponent).join('/')}`;
  }

  /** Server-side copies (UploadPartCopy), `concurrency` at a time. */
  async #copyParts(ref: InProgressKey, ranges: CopyRange[]): Promise<UploadedPart[]> {
    const parts: UploadedPart[] = new Array(ranges.length);
    let index = 0;
    const worker = async () => {
      while (index < ranges.length) {
        const i = index++;
        const range = ranges[i]!;
        const answer = await this.#send('UploadPartCopy', () =>
          this.#client.send(
            new UploadPartCopyCommand({
              Bucket: this.bucket,
              Key: ref.objectKey,
              UploadId: ref.uploadId,
              PartNumber: i + 1,
              CopySource: this.#copySource(range.key),
              CopySourceRange: `bytes=${range.start}-${range.end}`,
            }),
          ),
        );
        parts[i] = { n: i + 1, size: range.end - range.start + 1, etag: answer.CopyPartResult?.ETag ?? '' };
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#concurrency, ranges.length) }, worker));
    return parts;
  }

  /** Reads the sources in order and cuts their bytes into new parts: S3 to S3, never local disk. */
  async #streamParts(
    ref: InProgressKey,
    sources: Array<{ key: string; size: number }>,
    plan: PartPlan,
  ): Promise<UploadedPart[]> {
    const cutter = new PartCutter({
      firstPart: 1,
      plan,
      concurrency: this.#concurrency,
      buffers: this.#buffers,
      upload: (n, bytes) => this.#uploadPart(ref, n, bytes),
    });
    const read = (key: string, size: number) => this.read(finishedKey(key), { start: 0, end: size - 1 });
    async function* all(): AsyncGenerator<Uint8Array> {
      for (const source of sources) yield* read(source.key, source.size);
    }
    try {
      const outcome = await readBody(all(), {}, cutter);
      await cutter.settle();
      if (cutter.failed) throw fromS3Error(cutter.failure, 'UploadPart');
      if (outcome.interruption !== undefined) throw outcome.interruption;
      const parts = cutter.contiguous();
      const rest = cutter.takeRest();
      if (rest.byteLength > 0) {
        const n = cutter.nextPart;
        parts.push({ n, size: rest.byteLength, etag: await this.#uploadPart(ref, n, rest) });
      }
      return parts;
    } finally {
      cutter.close();
    }
  }
}

interface CopyRange {
  key: string;
  start: number;
  end: number;
}

/**
 * The source ranges of a concatenation by UploadPartCopy, or undefined when S3's part limits
 * forbid it (a source other than the last below 5 MiB, or more than 10,000 parts): each source is
 * split evenly into the fewest ranges of at most 5 GiB.
 */
function copyRanges(sources: Array<{ key: string; size: number }>): CopyRange[] | undefined {
  const ranges: CopyRange[] = [];
  for (const [index, source] of sources.entries()) {
    if (index < sources.length - 1 && source.size < MIN_PART_SIZE) return undefined;
    const count = Math.ceil(source.size / MAX_PART_SIZE);
    const each = Math.ceil(source.size / count);
    for (let start = 0; start < source.size; start += each) {
      ranges.push({ key: source.key, start, end: Math.min(source.size, start + each) - 1 });
    }
  }
  return ranges.length <= MAX_PARTS ? ranges : undefined;
}

function sameEtag(a: string, b: string): boolean {
  return a.replaceAll('"', '') === b.replaceAll('"', '');
}

function clientConfig(options: S3DataStoreOptions): S3ClientConfig {
  return {
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    region: options.region ?? process.env['AWS_REGION'] ?? process.env['AWS_DEFAULT_REGION'] ?? 'us-east-1',
    forcePathStyle: options.forcePathStyle ?? false,
    ...(options.credentials ? { credentials: options.credentials } : {}),
    // Streamed bodies with a known length: no aws-chunked encoding, which some S3-compatible
    // servers (Ceph RGW 16) refuse with 411 MissingContentLength.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: { connectionTimeout: 5000, requestTimeout: 120_000 },
  };
}

/** Takes no chunk (maxBytes 0 stops reading at the first byte). */
const DISCARD: ChunkSink = { push() {}, full: false, failed: false, onChange: undefined };

/** A sink that feeds a stream handed to the S3 SDK as a request body. */
/**
 * What S3 holds for an upload in progress, from its parts (as listed, in order) and its incomplete
 * part: parts 1..k without a gap count, anything past a gap is stale.
 */
function stateOf(
  plan: PartPlan,
  listed: readonly UploadedPart[],
  tail: { start: number; size: number } | undefined,
): UploadState {
  const parts: UploadedPart[] = [];
  let partBytes = 0;
  let closed = false;
  for (const part of listed) {
    if (part.n !== parts.length + 1 || closed) break;
    const planned = partSizeOf(plan, part.n);
    if (part.size === 0 || part.size > planned) break;
    parts.push(part);
    partBytes += part.size;
    if (part.size < planned) closed = true;
  }
  const stale = listed.filter((part) => part.n > parts.length && part.size > 0).map((part) => part.n);
  const current = tail !== undefined && !closed && tail.start === partBytes;
  return {
    parts,
    partCount: parts.length,
    partBytes,
    closed,
    stale,
    tail: current ? { size: tail.size } : undefined,
    staleTail: tail !== undefined && !current,
    offset: partBytes + (current ? tail.size : 0),
  };
}

class StreamSink implements ChunkSink {
  readonly stream: PassThrough;
  onChange: (() => void) | undefined;
  failed = false;

  constructor() {
    this.stream = new PassThrough({ highWaterMark: 1024 * 1024 });
    this.stream.on('drain', () => this.onChange?.());
    this.stream.on('error', () => {});
  }

  get full(): boolean {
    return this.stream.writableNeedDrain;
  }

  push(chunk: Uint8Array): void {
    if (!this.failed) this.stream.write(chunk);
  }

  fail(_error: unknown): void {
    this.failed = true;
    this.onChange?.();
  }
}
