/**
 * How S3's answers become Ferry's error codes. A missing multipart upload or object is a missing
 * upload (`ERR_NOT_FOUND`); an S3 that does not answer, answers 5xx or throttles is
 * `ERR_STORAGE_UNAVAILABLE` (503: the client retries and resumes, bytes stored before are kept);
 * an S3 that refuses the server's credentials, permissions or bucket is `ERR_STORAGE_REFUSED`
 * (502: the operator has to act). The S3 error's name goes into `details.reason`; its message,
 * which may name the bucket or the key, is kept only as the `cause` for the logs.
 */
import { UploadError } from '@ferry/protocol';

/** RGW answers ListParts on an unknown upload with NoSuchKey where AWS says NoSuchUpload. */
const MISSING = new Set(['NoSuchUpload', 'NoSuchKey', 'NotFound']);
const REFUSED = new Set([
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'NoSuchBucket',
  'AllAccessDisabled',
  'AccountProblem',
  'InvalidToken',
  'ExpiredToken',
  'CredentialsProviderError',
]);
const NETWORK = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
]);

interface S3ErrorShape {
  name?: string;
  code?: string;
  $fault?: string;
  $metadata?: { httpStatusCode?: number };
}

/** The status S3 answered with, if it answered. */
export function s3Status(error: unknown): number | undefined {
  return (error as S3ErrorShape | null)?.$metadata?.httpStatusCode;
}

/** Whether `error` says the object or multipart upload does not exist. */
export function isMissing(error: unknown): boolean {
  const shape = error as S3ErrorShape | null;
  if (shape === null || typeof shape !== 'object') return false;
  if (shape instanceof UploadError) return shape.code === 'ERR_NOT_FOUND';
  return MISSING.has(shape.name ?? '') || (s3Status(error) === 404 && shape.name !== 'NoSuchBucket');
}

/** Turns an S3 SDK error into an `UploadError` where Ferry has a code for it; others pass as-is. */
export function fromS3Error(error: unknown, operation: string): unknown {
  if (error instanceof UploadError) return error;
  const shape = (error ?? {}) as S3ErrorShape;
  if (typeof shape !== 'object') return error;
  const name = shape.name ?? '';
  const status = s3Status(error);
  if (name === 'AbortError') return error;
  if (isMissing(error)) return new UploadError('ERR_NOT_FOUND', { cause: error });
  const details = { storage: 's3', operation, reason: name || shape.code || 'unknown' };
  if (REFUSED.has(name) || status === 403 || status === 401) {
    return new UploadError('ERR_STORAGE_REFUSED', { details, cause: error });
  }
  if (
    (status !== undefined && status >= 500) ||
    status === 429 ||
    name === 'SlowDown' ||
    name === 'TimeoutError' ||
    name === 'RequestTimeout' ||
    NETWORK.has(shape.code ?? '') ||
    NETWORK.has(name) ||
    (status === undefined && shape.$fault === undefined && name !== 'TypeError' && name !== 'RangeError')
  ) {
    return new UploadError('ERR_STORAGE_UNAVAILABLE', { details, cause: error });
  }
  return error;
}
