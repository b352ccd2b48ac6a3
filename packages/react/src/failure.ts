/**
 * Why an upload failed, in words a person can act on. The SDK's error stays attached (`error`)
 * with its code, status and technical message for logs and support.
 */

export interface UploadFailure {
  /** The SDK's code (`ERR_NETWORK`, `ERR_HTTP_STATUS`, …), when the error has one. */
  readonly code: string | undefined;
  /** One or two sentences for people: what happened and what to do. */
  readonly message: string;
  /**
   * Whether trying again can help: false when the server refused the file for what it is (too
   * large, a refused type), the stored file did not match, or the upload is set up wrongly.
   */
  readonly retryable: boolean;
  /** The error itself (a `ClientError` from the SDK, or whatever was thrown). */
  readonly error: unknown;
}

interface ErrorFacts {
  code?: unknown;
  status?: unknown;
  serverCode?: unknown;
  message?: unknown;
}

function facts(error: unknown): ErrorFacts {
  return typeof error === 'object' && error !== null ? (error as ErrorFacts) : {};
}

function byStatus(status: number, name: string): string | undefined {
  if (status === 401) return `The server refused ${name}: you are not signed in, or the sign-in expired.`;
  if (status === 403) return `The server refused ${name}: this upload is not allowed.`;
  if (status === 413) return `The server does not accept a file as large as ${name}.`;
  if (status === 415) return `The server does not accept this type of file.`;
  if (status >= 500) return `The server had a problem with ${name}. Retry in a moment.`;
  if (status >= 400) return `The server refused ${name} (error ${status}).`;
  return undefined;
}

/** What the server's refusal of the upload token (`ERR_UNAUTHORIZED`) means for people. */
function tokenRefusal(serverCode: string | undefined, name: string): string {
  switch (serverCode) {
    case 'ERR_TOKEN_EXPIRED':
      return `Your upload link has expired, so ${name} stopped. Ask for a new link, then retry.`;
    case 'ERR_TOKEN_MAX_SIZE':
      return `${name} is larger than this upload link allows.`;
    case 'ERR_TOKEN_SCOPE':
      return `This upload link cannot start new uploads.`;
    default:
      return `The server did not accept this upload link for ${name}. Ask for a new link, then retry.`;
  }
}

/** Codes after which the same upload cannot succeed; the file has to be added again (or not at all). */
const FINAL_CODES = new Set([
  'ERR_UPLOAD_GONE',
  'ERR_TYPE_NOT_ALLOWED',
  'ERR_VERIFICATION_FAILED',
  'ERR_INVALID_OPTIONS',
  'ERR_PROTOCOL',
  'ERR_UNSUPPORTED_BY_SERVER',
  'ERR_SIZE_REQUIRED',
]);

/** Refusals of the file itself: trying the same file again gets the same answer. */
const FINAL_STATUSES = new Set([400, 411, 413, 415, 422]);

/** The failure of the upload of `name`, described for people. */
export function describeFailure(error: unknown, name: string): UploadFailure {
  const { code, status, serverCode } = facts(error);
  const known = typeof code === 'string' ? code : undefined;
  const retryable =
    !FINAL_CODES.has(known ?? '') &&
    !(known === 'ERR_HTTP_STATUS' && typeof status === 'number' && FINAL_STATUSES.has(status)) &&
    // A refused token is retried once the app hands a new one; a limit of the token is final.
    !(known === 'ERR_UNAUTHORIZED' && status !== 401);
  const message = (() => {
    switch (known) {
      case 'ERR_NETWORK':
      case 'ERR_TIMEOUT':
      case 'ERR_STALLED':
      case 'ERR_RETRY_LIMIT':
        return `The connection kept failing, so ${name} stopped. Retry to continue where it stopped.`;
      case 'ERR_SOURCE_UNREADABLE':
        return `${name} can no longer be read (it was moved, changed or deleted). Choose it again.`;
      case 'ERR_UPLOAD_GONE':
        return `The server no longer has the upload of ${name} (it expired or was deleted). Add the file again.`;
      case 'ERR_VERIFICATION_FAILED':
        return `The file the server stored differs from ${name}, so it was not accepted. Add the file again.`;
      case 'ERR_INVALID_OPTIONS':
      case 'ERR_PROTOCOL':
      case 'ERR_UNSUPPORTED_BY_SERVER':
      case 'ERR_SIZE_REQUIRED':
        return `${name} could not be uploaded: the upload is set up wrongly for this server.`;
      case 'ERR_UNAUTHORIZED':
        return tokenRefusal(typeof serverCode === 'string' ? serverCode : undefined, name);
      case 'ERR_TYPE_NOT_ALLOWED':
        // The declared type (a token's `types`) or the type sniffed from the bytes when the upload
        // finished (the server's allow-list or the token's `types`): the same file is refused again.
        return `The server does not accept this type of file, so ${name} was not uploaded. Choose another file.`;
      case 'ERR_HTTP_STATUS':
        if (serverCode === 'ERR_UPLOAD_TOO_LARGE')
          return `The server does not accept a file as large as ${name}.`;
        return typeof status === 'number' ? byStatus(status, name) : undefined;
      default:
        return undefined;
    }
  })();
  return Object.freeze({
    code: known,
    message: message ?? `${name} could not be uploaded. Retry, or add the file again.`,
    retryable,
    error,
  });
}
