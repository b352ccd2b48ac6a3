/**
 * Storage keys of the S3 store: everything needed to continue an upload on any node after a crash
 * is in the key the MetaStore records, nothing lives only in a process.
 *
 *   s3-upload:<partSize>[+]:<uploadId>:<objectKey>   an upload in progress: the multipart upload
 *                                                    `uploadId` (URI-encoded) that will become
 *                                                    `objectKey`; its parts are `partSize` bytes
 *                                                    (`+`: doubling every 1,000 parts, for a
 *                                                    deferred length — see s3-part-size.ts)
 *   s3-object:<objectKey>                            a finished upload: the object `objectKey`
 *
 * The incomplete part of an upload in progress (its tail shorter than a part) is the object
 * `<objectKey>.part`.
 */
import { UploadError } from '@ferry/protocol';
import type { PartPlan } from './s3-part-size.ts';

const UPLOAD_PREFIX = 's3-upload:';
const OBJECT_PREFIX = 's3-object:';
const UPLOAD_PATTERN = /^s3-upload:(\d{1,13})(\+?):([^:]+):(.+)$/s;
/** Upload ids are base64url, 16..128 characters. */
const ID_PATTERN = /^[A-Za-z0-9_-]{16,128}$/;
/** S3 object keys: at most 1024 bytes of UTF-8; Ferry refuses control characters in them. */
const MAX_KEY_BYTES = 1024;
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point.
const CONTROL = /[\u0000-\u001f\u007f]/;

export const INCOMPLETE_SUFFIX = '.part';

export interface InProgressKey {
  kind: 'upload';
  objectKey: string;
  uploadId: string;
  plan: PartPlan;
}

export interface FinishedKey {
  kind: 'object';
  objectKey: string;
}

export type ParsedS3Key = InProgressKey | FinishedKey;

export function assertUploadId(id: string): void {
  if (typeof id !== 'string' || !ID_PATTERN.test(id)) {
    throw new UploadError('ERR_INVALID_ID', { details: { reason: 'not a valid upload id' } });
  }
}

export function inProgressKey(objectKey: string, uploadId: string, plan: PartPlan): string {
  return `${UPLOAD_PREFIX}${plan.size}${plan.grows ? '+' : ''}:${encodeURIComponent(uploadId)}:${objectKey}`;
}

export function finishedKey(objectKey: string): string {
  return `${OBJECT_PREFIX}${objectKey}`;
}

export function incompleteKey(objectKey: string): string {
  return objectKey + INCOMPLETE_SUFFIX;
}

/** Parses a key made by this store; anything else is refused with `ERR_INVALID_ID`. */
export function parseS3Key(key: string): ParsedS3Key {
  if (typeof key === 'string' && key.startsWith(OBJECT_PREFIX)) {
    return { kind: 'object', objectKey: checkObjectKey(key.slice(OBJECT_PREFIX.length)) };
  }
  const match = typeof key === 'string' ? UPLOAD_PATTERN.exec(key) : null;
  if (match === null) throw invalidKey();
  const [, size, grows, uploadId, objectKey] = match as unknown as [string, string, string, string, string];
  let decoded: string;
  try {
    decoded = decodeURIComponent(uploadId);
  } catch {
    throw invalidKey();
  }
  const partSize = Number(size);
  if (partSize <= 0) throw invalidKey();
  return {
    kind: 'upload',
    objectKey: checkObjectKey(objectKey),
    uploadId: decoded,
    plan: { size: partSize, grows: grows === '+' },
  };
}

function checkObjectKey(objectKey: string): string {
  if (objectKey === '' || Buffer.byteLength(objectKey) > MAX_KEY_BYTES || CONTROL.test(objectKey)) {
    throw invalidKey();
  }
  return objectKey;
}

function invalidKey(): UploadError {
  return new UploadError('ERR_INVALID_ID', { details: { reason: 'not a storage key of this store' } });
}
