/**
 * The one function that turns any throwable into a response. Known errors keep their status and
 * message; anything else is logged with its stack and answered as a generic 500 — never echoed.
 */
import { errorBody, TUS_VERSION, UploadError } from '@ferry/protocol';
import type { Logger } from 'pino';
import { LockTimeoutError } from '../meta/locker.ts';
import { VersionConflictError } from '../meta/meta-store.ts';
import type { HttpResponse } from './types.ts';

/** Storage errors that are worth a retry: the client should try again, not start over. */
const TRANSIENT_CODES = new Set([
  'EAGAIN',
  'EBUSY',
  'EMFILE',
  'ENFILE',
  'ETIMEDOUT',
  'ECONNRESET',
  'ECONNREFUSED',
]);

export function toUploadError(error: unknown): UploadError | undefined {
  if (error instanceof UploadError) return error;
  if (error instanceof LockTimeoutError) return new UploadError('ERR_UPLOAD_LOCKED', { cause: error });
  // Another writer changed the record between our read and our write: the same answer as a lock.
  if (error instanceof VersionConflictError) return new UploadError('ERR_UPLOAD_LOCKED', { cause: error });
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') {
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      return new UploadError('ERR_STORAGE_UNAVAILABLE', {
        message: 'the storage is full; retry later',
        cause: error,
      });
    }
    if (TRANSIENT_CODES.has(code)) return new UploadError('ERR_STORAGE_UNAVAILABLE', { cause: error });
  }
  return undefined;
}

export interface ErrorResponseOptions {
  logger: Logger;
  requestId?: string;
  /** A tus request: every response carries `Tus-Resumable`. */
  tus?: boolean;
}

export function errorResponse(error: unknown, options: ErrorResponseOptions): HttpResponse {
  let known = toUploadError(error);
  if (known === undefined) {
    options.logger.error({ err: error, requestId: options.requestId }, 'unexpected error');
    known = new UploadError('ERR_INTERNAL', { cause: error });
  } else if (known.status >= 500) {
    options.logger.warn(
      { err: known.cause ?? known, code: known.code, requestId: options.requestId },
      known.message,
    );
  }
  const headers: Record<string, string> = {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    ...known.headers,
  };
  if (options.tus) headers['tus-resumable'] = TUS_VERSION;
  return { status: known.status, headers, body: JSON.stringify(errorBody(known)) };
}
