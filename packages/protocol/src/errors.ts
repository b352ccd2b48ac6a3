/**
 * The one table of Ferry's error codes. Every error a client can see is listed here with its HTTP
 * status and a default human message; `docs/errors.md` documents each code (a test keeps the two
 * in step). Status codes follow the tus 1.0.0 spec where a tus request is involved.
 */
export const ERRORS = {
  // Generic request problems
  ERR_BAD_REQUEST: { status: 400, message: 'the request is malformed' },
  ERR_NOT_FOUND: { status: 404, message: 'no such resource' },
  ERR_METHOD_NOT_ALLOWED: { status: 405, message: 'this method is not allowed on this resource' },
  ERR_HEADERS_TOO_LARGE: { status: 431, message: 'the request headers are too large' },
  ERR_REQUEST_TIMEOUT: { status: 408, message: 'the request took too long to arrive' },
  ERR_RATE_LIMITED: {
    status: 429,
    message: 'too many uploads started in a short time; retry after the Retry-After seconds',
  },
  ERR_SHUTTING_DOWN: { status: 503, message: 'the server is shutting down; retry shortly' },
  ERR_INTERNAL: { status: 500, message: 'internal server error' },
  ERR_BODY_CONSUMED: {
    status: 500,
    message: 'the request body was read before Ferry got it: mount Ferry before any body parser',
  },
  ERR_STORAGE_UNAVAILABLE: { status: 503, message: 'the storage is temporarily unavailable; retry shortly' },
  ERR_STORAGE_REFUSED: {
    status: 502,
    message: "the storage refused the server's request (credentials, permissions or bucket); retry later",
  },

  // tus protocol
  ERR_UNSUPPORTED_VERSION: {
    status: 412,
    message: 'unsupported Tus-Resumable version; this server speaks 1.0.0',
  },
  ERR_INVALID_CONTENT_TYPE: {
    status: 415,
    message: 'a PATCH must have Content-Type: application/offset+octet-stream',
  },
  ERR_INVALID_OFFSET: { status: 400, message: 'Upload-Offset must be a non-negative integer' },
  ERR_INVALID_LENGTH: { status: 400, message: 'Upload-Length must be a non-negative integer' },
  ERR_INVALID_DEFER_LENGTH: { status: 400, message: 'Upload-Defer-Length must be 1' },
  ERR_LENGTH_REQUIRED: { status: 400, message: 'Upload-Length or Upload-Defer-Length: 1 is required' },
  ERR_LENGTH_ALREADY_SET: { status: 400, message: 'the upload length is already set and cannot change' },
  ERR_INVALID_METADATA: {
    status: 400,
    message: 'Upload-Metadata must be comma-separated "key base64value" pairs with unique keys',
  },
  ERR_METADATA_TOO_LARGE: { status: 400, message: 'Upload-Metadata is too large' },
  ERR_INVALID_CONCAT: {
    status: 400,
    message: 'Upload-Concat must be "partial" or "final;" followed by upload URLs',
  },
  ERR_CONCAT_PARTIAL_NOT_FOUND: {
    status: 400,
    message: 'a partial upload named in Upload-Concat does not exist',
  },
  ERR_CONCAT_PARTIAL_UNFINISHED: {
    status: 400,
    message: 'a partial upload named in Upload-Concat is not finished',
  },
  ERR_CONCAT_NOT_PARTIAL: {
    status: 400,
    message: 'an upload named in Upload-Concat is not a partial upload',
  },
  ERR_MODIFY_FINAL: { status: 403, message: 'a final (concatenated) upload cannot be modified' },
  ERR_INVALID_CHECKSUM: { status: 400, message: 'Upload-Checksum must be "algorithm base64digest"' },
  ERR_UNSUPPORTED_CHECKSUM: {
    status: 400,
    message: 'unsupported checksum algorithm; use sha1, md5, sha256 or crc32',
  },
  ERR_CHECKSUM_MISMATCH: {
    status: 460,
    message: 'the checksum of the chunk does not match; the chunk was discarded',
  },
  ERR_OFFSET_MISMATCH: { status: 409, message: 'Upload-Offset does not match the offset of the upload' },
  ERR_UPLOAD_TOO_LARGE: {
    status: 413,
    message: 'the upload is larger than the maximum size this server accepts',
  },
  ERR_EXCEEDS_LENGTH: { status: 413, message: 'the body goes past the declared length of the upload' },
  ERR_UPLOAD_EXPIRED: { status: 410, message: 'the upload has expired' },
  ERR_UPLOAD_LOCKED: {
    status: 423,
    message: 'the upload is being written by another request; retry shortly',
  },
  ERR_STATE_UNAVAILABLE: {
    status: 423,
    message: 'the state of the upload cannot be read right now; retry shortly (progress is kept)',
  },
  ERR_LOCK_LOST: {
    status: 423,
    message: 'this request was stopped because a newer request took over the upload; what arrived was kept',
  },
  ERR_BODY_TIMEOUT: {
    status: 500,
    message: 'the request body stopped arriving; what arrived was kept, retry',
  },
  ERR_BODY_ABORTED: { status: 400, message: 'the request body was cut off; what arrived was kept' },
  ERR_UPLOAD_NOT_FINISHED: {
    status: 404,
    message: 'the upload is not finished; it cannot be downloaded yet',
  },
  ERR_RANGE_NOT_SATISFIABLE: { status: 416, message: 'the requested range is outside the file' },
  ERR_INVALID_ID: { status: 404, message: 'no upload with this id' },

  // JSON request bodies (parts API)
  ERR_INVALID_JSON: { status: 400, message: 'the request body must be a JSON object' },
  ERR_JSON_TOO_LARGE: { status: 413, message: 'the JSON request body is too large' },
  ERR_UNKNOWN_FIELD: { status: 400, message: 'the request body has a field this server does not know' },
  ERR_INVALID_FIELD: { status: 400, message: 'a field of the request body has an invalid value' },
  ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'the request body must be application/json' },

  // Parts API
  ERR_WRONG_PROTOCOL: {
    status: 409,
    message: 'this upload belongs to the other upload API (tus or parts) and must be continued there',
  },
  ERR_INVALID_PART_SIZE: { status: 400, message: 'partSize is outside the limits for this file size' },
  ERR_INVALID_PART_NUMBER: {
    status: 400,
    message: "the part number must be an integer from 1 to the upload's partCount",
  },
  ERR_CONTENT_LENGTH_REQUIRED: { status: 411, message: 'a part needs a Content-Length header' },
  ERR_PART_SIZE_MISMATCH: {
    status: 400,
    message: 'the part has the wrong size: every part but the last has exactly partSize bytes',
  },
  ERR_INVALID_DIGEST: { status: 400, message: 'Content-Digest must be a dictionary like sha-256=:base64:' },
  ERR_DIGEST_MISMATCH: {
    status: 400,
    message: 'the part does not match its Content-Digest; it was not stored',
  },
  ERR_PART_INCOMPLETE: {
    status: 400,
    message: "the part's body ended before Content-Length bytes arrived; it was not stored",
  },
  ERR_PARTS_MISSING: { status: 409, message: 'the upload cannot complete: some parts are missing' },
  ERR_SHA256_MISMATCH: {
    status: 422,
    message: 'the file does not match the declared SHA-256; it was not completed',
  },
  ERR_UPLOAD_FINISHED: { status: 409, message: 'the upload is already complete; it takes no more parts' },
  ERR_PART_NOT_STORED: {
    status: 409,
    message: 'the storage does not hold this part with the reported ETag and size; send it again',
  },
  // Upload tokens (a server started with an auth secret)
  ERR_TOKEN_MISSING: {
    status: 401,
    message: 'this server needs an upload token: send Authorization: Bearer <token>',
  },
  ERR_TOKEN_INVALID: { status: 401, message: 'the upload token is not valid' },
  ERR_TOKEN_EXPIRED: { status: 401, message: 'the upload token has expired' },
  ERR_TOKEN_SCOPE: { status: 403, message: 'the upload token does not allow this request' },
  ERR_TYPE_NOT_ALLOWED: { status: 403, message: 'the upload token does not allow this file type' },
  ERR_TOKEN_MAX_SIZE: { status: 413, message: 'the upload is larger than the upload token allows' },

  // The app's hooks (in-process functions and the pre-create webhook)
  ERR_HOOK_REJECTED: {
    status: 403,
    message: 'the application refused this upload',
  },
  ERR_HOOK_FAILED: {
    status: 503,
    message: "the application's upload hook did not answer; retry shortly",
  },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

export interface UploadErrorOptions {
  message?: string;
  details?: Record<string, unknown>;
  cause?: unknown;
  /** Extra response headers (for example `Tus-Version` with a 412). */
  headers?: Record<string, string>;
  /**
   * The HTTP status instead of the code's own (a 4xx or 5xx). Only where the status is decided
   * elsewhere: an app's hook refusing an upload with its own status.
   */
  status?: number;
}

/** An error a client may see: its code decides the HTTP status; the message is safe to echo. */
export class UploadError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(code: ErrorCode, options: UploadErrorOptions = {}) {
    super(
      options.message ?? ERRORS[code].message,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = 'UploadError';
    this.code = code;
    this.status =
      options.status !== undefined &&
      Number.isInteger(options.status) &&
      options.status >= 400 &&
      options.status <= 599
        ? options.status
        : ERRORS[code].status;
    this.details = options.details;
    this.headers = options.headers;
  }
}

export function isUploadError(value: unknown): value is UploadError {
  return value instanceof UploadError;
}

/** The JSON body of every error response. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: Record<string, unknown> };
}

export function errorBody(error: UploadError): ErrorBody {
  const body: ErrorBody = { error: { code: error.code, message: error.message } };
  if (error.details !== undefined) body.error.details = error.details;
  return body;
}
