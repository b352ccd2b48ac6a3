/**
 * Cleaning up what no upload record points at any more: multipart uploads and incomplete-part
 * objects under the store's key prefix that were left by a crash between S3 and the MetaStore
 * (an upload created in S3 whose record was never written), by a `remove` that failed while S3 was
 * unreachable, or by a record deleted by hand. Without this they cost storage forever: S3 bills the
 * parts of an unfinished multipart upload and never shows them as objects.
 *
 * Only keys that look like Ferry's (`<prefix><upload id>` and `<prefix><upload id>.part`) are
 * considered, and only when they are older than `olderThan`: a multipart upload is made just before
 * its record, so a young one may belong to an upload being created right now. For each candidate
 * the caller says which storage key the live (unfinished) upload with that id has, if any; a
 * multipart upload is kept when it is that upload's, an incomplete part when its upload is live.
 *
 * ListMultipartUploads and ListObjectsV2 are read page by page (`pageSize` entries, S3 allows up to
 * 1000), so memory stays flat however many uploads the bucket holds.
 */
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import { fromS3Error, isMissing } from './s3-errors.ts';
import { INCOMPLETE_SUFFIX, parseS3Key } from './s3-keys.ts';

const ID_PATTERN = /^[A-Za-z0-9_-]{16,128}$/;

export interface OrphanSweepOptions {
  /** Epoch ms: only multipart uploads initiated, and incomplete parts written, before this go. */
  olderThan: number;
  /** The storage key of the unfinished upload `id` (from the MetaStore), or undefined. */
  liveKey(id: string): Promise<string | undefined>;
  /** Entries per listing page (1..1000). Default: the store's setting. */
  pageSize?: number;
  signal?: AbortSignal;
}

export interface OrphanSweepResult {
  /** Multipart uploads aborted. */
  abortedUploads: number;
  /** Incomplete-part objects deleted. */
  deletedParts: number;
}

/** A store that can look for and remove what no upload owns any more. */
export interface OrphanSweepable {
  sweepOrphans(options: OrphanSweepOptions): Promise<OrphanSweepResult>;
}

export interface S3OrphanScope {
  client: S3Client;
  bucket: string;
  prefix: string;
  pageSize: number;
}

export async function sweepS3Orphans(
  scope: S3OrphanScope,
  options: OrphanSweepOptions,
): Promise<OrphanSweepResult> {
  const pageSize = options.pageSize ?? scope.pageSize;
  if (!Number.isSafeInteger(pageSize) || pageSize < 1 || pageSize > 1000) {
    throw new RangeError(`pageSize must be from 1 to 1000, got ${pageSize}`);
  }
  const abortedUploads = await abortOrphanUploads(scope, options, pageSize);
  const deletedParts = await deleteOrphanParts(scope, options, pageSize);
  return { abortedUploads, deletedParts };
}

/** The upload id an object key under the prefix names, if it is one of Ferry's keys. */
function idOf(scope: S3OrphanScope, objectKey: string, suffix = ''): string | undefined {
  if (!objectKey.startsWith(scope.prefix) || !objectKey.endsWith(suffix)) return undefined;
  const id = objectKey.slice(scope.prefix.length, objectKey.length - suffix.length);
  return ID_PATTERN.test(id) ? id : undefined;
}

/** The object key and UploadId of an unfinished upload's storage key. */
function inProgress(key: string | undefined): { objectKey: string; uploadId: string } | undefined {
  if (key === undefined) return undefined;
  try {
    const parsed = parseS3Key(key);
    return parsed.kind === 'upload' ? parsed : undefined;
  } catch {
    return undefined;
  }
}

async function abortOrphanUploads(
  scope: S3OrphanScope,
  options: OrphanSweepOptions,
  pageSize: number,
): Promise<number> {
  const { client, bucket } = scope;
  let aborted = 0;
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  for (;;) {
    const page = await send('ListMultipartUploads', () =>
      client.send(
        new ListMultipartUploadsCommand({
          Bucket: bucket,
          Prefix: scope.prefix,
          MaxUploads: pageSize,
          ...(keyMarker === undefined ? {} : { KeyMarker: keyMarker }),
          ...(uploadIdMarker === undefined ? {} : { UploadIdMarker: uploadIdMarker }),
        }),
        options.signal ? { abortSignal: options.signal } : {},
      ),
    );
    for (const upload of page.Uploads ?? []) {
      const objectKey = upload.Key ?? '';
      const id = idOf(scope, objectKey);
      const initiated = upload.Initiated?.getTime() ?? Number.POSITIVE_INFINITY;
      if (id === undefined || upload.UploadId === undefined || initiated >= options.olderThan) continue;
      const live = inProgress(await options.liveKey(id));
      if (live !== undefined && live.objectKey === objectKey && live.uploadId === upload.UploadId) continue;
      await ignoreMissing('AbortMultipartUpload', () =>
        client.send(
          new AbortMultipartUploadCommand({ Bucket: bucket, Key: objectKey, UploadId: upload.UploadId }),
        ),
      );
      aborted += 1;
      // Its incomplete part, unless the live upload of that id (a newer multipart upload) owns it.
      if (live === undefined || live.objectKey !== objectKey) {
        await ignoreMissing('DeleteObject', () =>
          client.send(new DeleteObjectCommand({ Bucket: bucket, Key: objectKey + INCOMPLETE_SUFFIX })),
        );
      }
    }
    if (!page.IsTruncated) return aborted;
    const nextKey = page.NextKeyMarker;
    const nextUpload = page.NextUploadIdMarker;
    // A server that says "truncated" without moving the markers would loop forever.
    if (nextKey === undefined || (nextKey === keyMarker && nextUpload === uploadIdMarker)) return aborted;
    keyMarker = nextKey;
    uploadIdMarker = nextUpload;
  }
}

async function deleteOrphanParts(
  scope: S3OrphanScope,
  options: OrphanSweepOptions,
  pageSize: number,
): Promise<number> {
  const { client, bucket } = scope;
  let deleted = 0;
  let token: string | undefined;
  for (;;) {
    const page = await send('ListObjectsV2', () =>
      client.send(
        new ListObjectsV2Command({
          Bucket: bucket,
          Prefix: scope.prefix,
          MaxKeys: pageSize,
          ...(token === undefined ? {} : { ContinuationToken: token }),
        }),
        options.signal ? { abortSignal: options.signal } : {},
      ),
    );
    for (const object of page.Contents ?? []) {
      const key = object.Key ?? '';
      const id = idOf(scope, key, INCOMPLETE_SUFFIX);
      const modified = object.LastModified?.getTime() ?? Number.POSITIVE_INFINITY;
      if (id === undefined || modified >= options.olderThan) continue;
      const live = inProgress(await options.liveKey(id));
      if (live !== undefined && live.objectKey + INCOMPLETE_SUFFIX === key) continue;
      await ignoreMissing('DeleteObject', () =>
        client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })),
      );
      deleted += 1;
    }
    if (!page.IsTruncated || page.NextContinuationToken === undefined) return deleted;
    token = page.NextContinuationToken;
  }
}

async function send<T>(operation: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw fromS3Error(error, operation);
  }
}

async function ignoreMissing(operation: string, call: () => Promise<unknown>): Promise<void> {
  try {
    await call();
  } catch (error) {
    if (!isMissing(error)) throw fromS3Error(error, operation);
  }
}
