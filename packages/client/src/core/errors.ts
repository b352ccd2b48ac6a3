/**
 * The client's own error codes. Server codes (`ERR_OFFSET_MISMATCH`, `ERR_PARTS_MISSING`, …) live in
 * `@ferry/protocol`; when a server answered with one, it is kept as `serverCode` next to the HTTP
 * `status`. docs/client.md lists every code of this table (a test keeps the two in step).
 */
export const CLIENT_ERRORS = {
  ERR_INVALID_OPTIONS: { retryable: false, message: 'the upload options are invalid' },
  ERR_NETWORK: { retryable: true, message: 'the connection failed or was cut' },
  ERR_TIMEOUT: { retryable: true, message: 'the server did not answer in time' },
  ERR_STALLED: { retryable: true, message: 'no bytes moved for too long; the request was stopped' },
  ERR_HTTP_STATUS: { retryable: false, message: 'the server answered with an unexpected status' },
  ERR_PROTOCOL: { retryable: false, message: 'the server answer breaks the upload protocol' },
  ERR_RETRY_LIMIT: { retryable: false, message: 'the upload gave up after too many failed attempts' },
  ERR_UPLOAD_GONE: {
    retryable: false,
    message: 'the upload no longer exists on the server (expired, deleted or not yours)',
  },
  ERR_SOURCE_UNREADABLE: {
    retryable: false,
    message: 'the file can no longer be read (moved, deleted, changed or permission lost); re-select it',
  },
  ERR_SOURCE_NOT_REWINDABLE: {
    retryable: false,
    message: 'a stream cannot go back to bytes it already handed over; the upload cannot continue',
  },
  ERR_SIZE_REQUIRED: {
    retryable: false,
    message: 'the parts protocol needs the size up front; use tus for streams of unknown length',
  },
  ERR_UNSUPPORTED_BY_SERVER: {
    retryable: false,
    message: 'the server does not support what this upload needs',
  },
  ERR_VERIFICATION_FAILED: {
    retryable: false,
    message: 'the stored file does not match the source (SHA-256 or size differ)',
  },
  ERR_CANCELLED: { retryable: false, message: 'the upload was cancelled' },
  ERR_UNAUTHORIZED: {
    retryable: false,
    message:
      'the server refused the upload token (missing, invalid or expired) or what the upload asks beyond it; serverCode says which',
  },
  ERR_TYPE_NOT_ALLOWED: {
    retryable: false,
    message: 'the server does not accept this type of file; sending it again gets the same answer',
  },
  ERR_PRESIGNED_URL_REFUSED: {
    retryable: true,
    message: 'the bucket refused a presigned URL (expired or revoked); a new one is asked for',
  },
} as const satisfies Record<string, { retryable: boolean; message: string }>;

export type ClientErrorCode = keyof typeof CLIENT_ERRORS;

export interface ClientErrorOptions {
  message?: string;
  cause?: unknown;
  /** HTTP status of the answer that caused the error. */
  status?: number;
  /** `error.code` of the server's JSON error body, when it sent one. */
  serverCode?: string;
  /** `error.details` of the server's JSON error body. */
  details?: Record<string, unknown>;
  /** `Retry-After` of the answer, in ms, already parsed. */
  retryAfterMs?: number;
  /** Overrides the table's `retryable` (an HTTP status decides it for `ERR_HTTP_STATUS`). */
  retryable?: boolean;
}

export class ClientError extends Error {
  readonly code: ClientErrorCode;
  readonly status: number | undefined;
  readonly serverCode: string | undefined;
  readonly details: Record<string, unknown> | undefined;
  readonly retryAfterMs: number | undefined;
  /** Whether trying again may help (the retry policy decides how often). */
  readonly retryable: boolean;

  constructor(code: ClientErrorCode, options: ClientErrorOptions = {}) {
    super(
      options.message ?? CLIENT_ERRORS[code].message,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = 'ClientError';
    this.code = code;
    this.status = options.status;
    this.serverCode = options.serverCode;
    this.details = options.details;
    this.retryAfterMs = options.retryAfterMs;
    this.retryable = options.retryable ?? CLIENT_ERRORS[code].retryable;
  }
}

export function isClientError(value: unknown): value is ClientError {
  return value instanceof ClientError;
}

/** An `AbortSignal`'s reason as something `throw` can carry. */
export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

export function isAbortError(error: unknown): boolean {
  return error instanceof Error && (error.name === 'AbortError' || error.name === 'TimeoutError');
}
