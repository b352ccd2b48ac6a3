/**
 * What a transport (tus, parts) is given and must do. The `Upload` owns the state machine, the
 * resume store and the fingerprint; a transport creates an upload, sends what the server lacks
 * (always reading the server's state first, so pause/resume and a restart are the same path), and
 * deletes it.
 */
import { ClientError } from './errors.ts';
import type { ChunkPlanner } from './planner.ts';
import type { ProgressTracker } from './progress.ts';
import type { RateLimiter } from './rate-limit.ts';
import { parseRetryAfter, RetryBudget, type RetryEvent, type RetryPolicy, withRetry } from './retry.ts';
import type { ConcurrencyController } from './scheduler.ts';
import {
  bodySize,
  type Hasher,
  type HttpClient,
  type HttpRequest,
  type HttpResponse,
  type Protocol,
  type RequestBody,
  type UploadSource,
} from './seams.ts';
import { authorization, isTokenRefusal, refusedAsExpired, type TokenSource } from './token.ts';

export interface UploadResult {
  protocol: Protocol;
  /** The server's id of the file. */
  id: string;
  /** Where to download the file (Ferry: `GET`, Range requests allowed). */
  url: string;
  size: number;
  /** Lower-case hex SHA-256 of the source (`undefined` only if it could not be computed). */
  sha256: string | undefined;
  /** The server already had this file (parts dedup): no byte was sent. */
  deduplicated: boolean;
}

/** An upload that exists on the server. */
export interface RemoteUpload {
  /** Absolute URL of the upload. */
  url: string;
  /** Parts only. */
  partSize?: number;
  /** ISO 8601, when the server said. */
  expiresAt?: string | null;
  /** tus: the offset the creation confirmed (creation-with-upload), when known. */
  offset?: number;
  /** The creation already finished the upload (dedup). */
  finished?: UploadResult;
}

export interface TransportContext {
  endpoint: string;
  source: UploadSource;
  http: HttpClient;
  hasher: Hasher;
  /** The platform's `sliceBlob`, when it has one. */
  sliceBlob?: ((blob: Blob, start: number, end: number) => Promise<Blob>) | undefined;
  policy: RetryPolicy;
  /** Extra request headers (lower-case names). */
  headers: Record<string, string>;
  /** The upload token, sent as `Authorization: Bearer` to the server (never to a bucket). */
  token: TokenSource;
  name: string | undefined;
  type: string | undefined;
  metadata: Record<string, string>;
  progress: ProgressTracker;
  planner: ChunkPlanner;
  concurrency: ConcurrencyController;
  stallTimeoutMs: number;
  requestTimeoutMs: number;
  rateLimiter: RateLimiter | undefined;
  /**
   * tus: send `Upload-Checksum: sha256` per chunk when the server advertises it. Parts: send a
   * `Content-Digest` with every part (`true`), with the parts sent before the file's SHA-256 is
   * ready (`until-sha256`), or only with parts re-sent after a mismatch (`false`).
   */
  checksum: boolean | 'until-sha256';
  /** tus: send the first chunk with the creation request when the server advertises it. */
  creationWithUpload: boolean;
  /** Aborts on pause, cancel and the caller's signal. */
  signal: AbortSignal;
  onRetry(event: RetryEvent): void;
  /** Moves the upload to `completing` (and back to `uploading` when the server still lacks parts). */
  setPhase(phase: 'uploading' | 'completing'): void;
  /** The whole source's SHA-256 (waits for the hasher); `undefined` for a stream not yet read to its end. */
  sha256(): Promise<string | undefined>;
  /** The whole source's SHA-256 if already computed. */
  sha256IfReady(): string | undefined;
  random(): number;
}

export interface Transport {
  readonly protocol: Protocol;
  create(context: TransportContext): Promise<RemoteUpload>;
  /** Sends every byte the server lacks and finishes the upload. */
  send(context: TransportContext, remote: RemoteUpload): Promise<UploadResult>;
  /** Deletes the upload on the server (an upload that is already gone counts as deleted). */
  terminate(context: TransportContext, remote: RemoteUpload): Promise<void>;
}

/**
 * Server codes that refuse the file for what it is: its declared type at creation (a token's
 * `types`), or the type sniffed from its bytes when it finished (the server's allow-list, or the
 * token's `types`; the upload is deleted then). The same file is refused again, so the client
 * reports `ERR_TYPE_NOT_ALLOWED` and stops, whether or not a token is involved.
 */
export const CONTENT_REFUSAL_CODES: readonly string[] = ['ERR_TYPE_NOT_ALLOWED'];

/** Statuses that mean "this upload does not exist (for you) any more" (tus spec: 404, 410, 403). */
export const GONE_STATUSES: readonly number[] = [403, 404, 410];

/**
 * A request to the server with the context's headers, token, signal, timeouts and rate limit. A
 * 401 that refuses the token as expired is sent once more with a token asked for anew — not a
 * failed attempt: the retry budget never sees it. A second refusal is the caller's answer.
 */
export async function send(
  context: TransportContext,
  request: Omit<HttpRequest, 'signal' | 'stallTimeoutMs' | 'timeoutMs' | 'headers'> & {
    headers?: Record<string, string>;
    signal?: AbortSignal;
  },
): Promise<HttpResponse> {
  const hasBody = request.body !== undefined && bodySize(request.body) > 0;
  // Body bytes a refused attempt handed to the network are not reported twice.
  const { onSent } = request;
  let reported = 0;
  const once = async (token: string | undefined) => {
    let sent = 0;
    return context.http.request({
      ...request,
      headers: { ...context.headers, ...request.headers, ...authorization(token) },
      signal: request.signal ?? context.signal,
      stallTimeoutMs: context.stallTimeoutMs,
      // A body may take long on a slow link; stall detection guards it. Requests without one get a deadline.
      timeoutMs: hasBody ? 0 : context.requestTimeoutMs,
      ...(hasBody && context.rateLimiter !== undefined ? { rateLimiter: context.rateLimiter } : {}),
      ...(onSent === undefined
        ? {}
        : {
            onSent: (bytes: number) => {
              sent += bytes;
              if (sent > reported) {
                onSent(sent - reported);
                reported = sent;
              }
            },
          }),
    });
  };
  const token = await context.token.current();
  const answer = await once(token);
  if (token === undefined) return answer;
  if (!refusedAsExpired(answer)) {
    if (answer.status !== 401) context.token.accepted(token);
    return answer;
  }
  const fresh = await context.token.refresh(token);
  if (fresh === undefined) return answer;
  const again = await once(fresh);
  if (again.status !== 401) context.token.accepted(fresh);
  return again;
}

/**
 * The source's bytes [start, end) as a request body: a `Blob` slice where the HTTP seam sends those
 * (nothing read into memory), else the bytes read. Fewer bytes only at the end of a stream.
 */
export function readBody(
  context: TransportContext,
  start: number,
  end: number,
  signal: AbortSignal,
): Promise<Uint8Array | Blob> {
  const { source } = context;
  if (context.http.sendsBlobs === true && source.slice !== undefined && source.size !== undefined) {
    const stop = Math.min(end, source.size);
    const { file } = source;
    if (context.sliceBlob !== undefined && file !== undefined && file.size === source.size) {
      return context.sliceBlob(file, start, stop);
    }
    return Promise.resolve(source.slice(start, stop));
  }
  return source.read(start, end, signal);
}

/**
 * The source's bytes [start, end) as a body that is only sent, never looked at first (no digest of
 * it is made): a `SourceRange` the HTTP seam reads as it sends, where both sides have those (a Node
 * file: no part-sized buffer), else what `readBody` gives.
 */
export function sendBody(
  context: TransportContext,
  start: number,
  end: number,
  signal: AbortSignal,
): Promise<RequestBody> {
  const { source } = context;
  if (context.http.sendsRanges === true && source.range !== undefined && source.size !== undefined) {
    return Promise.resolve(source.range(start, Math.min(end, source.size)));
  }
  return readBody(context, start, end, signal);
}

/** Hands bytes a request no longer needs back to the source (a `Blob` slice holds nothing). */
export function recycleBody(context: TransportContext, body: RequestBody | undefined): void {
  if (body instanceof Uint8Array) context.source.recycle?.(body);
}

/**
 * Deletes the upload at `url` (cancel). A 404 or 410 means it is already gone, which is what was
 * wanted. Retried a few times at most: a cancel should not keep the caller waiting long.
 */
export async function deleteRemote(
  context: TransportContext,
  url: string,
  headers: Record<string, string> = {},
): Promise<void> {
  const budget = new RetryBudget(
    { ...context.policy, limit: Math.min(context.policy.limit, 3) },
    context.random,
  );
  await withRetry(
    'DELETE',
    async () => {
      const answer = await send(context, { method: 'DELETE', url, headers });
      if (isSuccess(answer) || answer.status === 404 || answer.status === 410) return;
      throw responseError(answer, 'DELETE');
    },
    { budget, signal: context.signal, onRetry: context.onRetry },
  );
}

export function isSuccess(response: HttpResponse): boolean {
  return response.status >= 200 && response.status < 300;
}

export function parseJson(response: HttpResponse): unknown {
  if (response.body === '') return undefined;
  try {
    return JSON.parse(response.body);
  } catch {
    return undefined;
  }
}

/** The error for an unexpected answer: status, the server's error code/message/details, `Retry-After`. */
export function responseError(response: HttpResponse, operation: string): ClientError {
  const body = parseJson(response) as
    | { error?: { code?: unknown; message?: unknown; details?: unknown } }
    | undefined;
  const serverCode = typeof body?.error?.code === 'string' ? body.error.code : undefined;
  const serverMessage =
    typeof body?.error?.message === 'string' ? body.error.message : response.body.slice(0, 200).trim();
  const details =
    typeof body?.error?.details === 'object' && body.error.details !== null
      ? (body.error.details as Record<string, unknown>)
      : undefined;
  const retryAfterMs = parseRetryAfter(response.headers['retry-after']);
  if (response.status === 403 && serverCode !== undefined && CONTENT_REFUSAL_CODES.includes(serverCode)) {
    return new ClientError('ERR_TYPE_NOT_ALLOWED', {
      message: `${operation}: the server does not accept this type of file${serverMessage ? ` (${serverMessage})` : ''}`,
      status: response.status,
      serverCode,
      ...(details !== undefined ? { details } : {}),
    });
  }
  if (isTokenRefusal(response.status, serverCode)) {
    const challenge = response.headers['www-authenticate'];
    const why = serverMessage || (challenge === undefined ? '' : `challenge: ${challenge}`);
    return new ClientError('ERR_UNAUTHORIZED', {
      message: `${operation}: ${response.status === 401 ? 'the server refused the upload token' : 'the upload token does not allow this upload'}: ${response.status}${serverCode === undefined ? '' : ` ${serverCode}`}${why ? ` (${why})` : ''}`,
      status: response.status,
      ...(serverCode !== undefined ? { serverCode } : {}),
      ...(details !== undefined ? { details } : {}),
    });
  }
  const gone = GONE_STATUSES.includes(response.status) && operation !== 'create';
  return new ClientError(gone ? 'ERR_UPLOAD_GONE' : 'ERR_HTTP_STATUS', {
    message: `${operation}: the server answered ${response.status}${serverMessage ? ` (${serverMessage})` : ''}`,
    status: response.status,
    ...(serverCode !== undefined ? { serverCode } : {}),
    ...(details !== undefined ? { details } : {}),
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  });
}

/** Resolves a server-given URL (tus `Location`, parts `url`) against the URL of the request. */
export function resolveUrl(location: string, base: string): string {
  return new URL(location, base).href;
}

/** The last path segment of an upload or file URL: the server's id. */
export function idOfUrl(url: string): string {
  const segments = new URL(url).pathname.split('/').filter((segment) => segment !== '');
  return decodeURIComponent(segments[segments.length - 1] ?? '');
}
