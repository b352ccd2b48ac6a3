/**
 * Parallel, ranged, resumable downloads to a file (Node), verified before the file gets its name.
 *
 * Bytes go into `<output>.part` at their offsets; `<output>.part.json` records which chunks are
 * complete and which version of the file they belong to (its `ETag` and size). A rerun after a
 * crash or Ctrl-C fetches only the missing chunks, with `If-Range` so a file that changed on the
 * server restarts the download instead of mixing two versions. At the end the whole file is checked
 * against the server's `Repr-Digest: sha-256` (RFC 9530) — or, from Ferry, an ETag that is the
 * SHA-256 — and against the size; only then is it renamed to `output`.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { parseSha256Digest } from '@ferry/protocol';
import { ClientError, isAbortError } from '../core/errors.ts';
import { createRateLimiter } from '../core/rate-limit.ts';
import {
  normalizeRetryPolicy,
  parseRetryAfter,
  RetryBudget,
  type RetryEvent,
  type RetryPolicyOptions,
  withRetry,
} from '../core/retry.ts';
import { authorization, isTokenRefusal, type TokenOption, TokenSource } from '../core/token.ts';

export interface DownloadOptions {
  url: string;
  /** Where the finished file goes; `<output>.part` and `<output>.part.json` are used meanwhile. */
  output: string;
  /** Ranged requests in flight at once. Default 4. */
  parallel?: number;
  /** Bytes per ranged request. Default 8 MiB. */
  chunkSize?: number;
  /** Extra request headers. */
  headers?: Record<string, string>;
  /**
   * The upload token, sent as `Authorization: Bearer <token>`; a function is asked again once when
   * the server answers that the token expired (as for uploads). It wins over `headers.authorization`.
   */
  token?: TokenOption;
  retry?: RetryPolicyOptions;
  /** Bytes per second across all requests; unlimited by default. */
  limitRate?: number;
  /** Aborting keeps `.part` and its state file, so the next run resumes. */
  signal?: AbortSignal;
  /** Called before a failed request is tried again. */
  onRetry?: (event: RetryEvent) => void;
  /** Called as bytes arrive (at most every `progressIntervalMs`) and once at the end. */
  onProgress?: (progress: DownloadProgress) => void;
  progressIntervalMs?: number;
}

export interface DownloadProgress {
  bytesDone: number;
  totalBytes: number;
  /** Bytes per second, moving average. */
  speed: number;
}

export interface DownloadResult {
  path: string;
  size: number;
  /** Lower-case hex SHA-256 of the file written. */
  sha256: string;
  /** How the file was checked: against the server's digest, or only its size. */
  verifiedBy: 'repr-digest' | 'etag' | 'size';
  /** Bytes fetched by this run (less than `size` when it resumed). */
  bytesFetched: number;
  resumed: boolean;
}

interface DownloadState {
  url: string;
  etag: string | null;
  size: number;
  chunkSize: number;
  done: number[];
}

interface Head {
  size: number;
  etag: string | null;
  ranges: boolean;
  digest: Uint8Array | undefined;
}

const MiB = 1024 * 1024;

export async function downloadFile(options: DownloadOptions): Promise<DownloadResult> {
  const parallel = Math.max(1, Math.trunc(options.parallel ?? 4));
  const policy = normalizeRetryPolicy(options.retry ?? {});
  const url = new URL(options.url);
  const secure = url.protocol === 'https:';
  const agent = secure
    ? new HttpsAgent({ keepAlive: true, maxSockets: parallel })
    : new HttpAgent({ keepAlive: true, maxSockets: parallel });
  const limiter = options.limitRate === undefined ? undefined : createRateLimiter(options.limitRate);
  const partPath = `${options.output}.part`;
  const statePath = `${partPath}.json`;
  const signal = options.signal ?? new AbortController().signal;
  const headers = options.headers ?? {};
  const tokens = new TokenSource(options.token);
  /** Runs `attempt` with the token; once more with a new one when the server says it expired. */
  const authorized = async <T>(attempt: (withToken: Record<string, string>) => Promise<T>): Promise<T> => {
    const token = await tokens.current();
    const tried = async (used: string | undefined) => {
      const result = await attempt({ ...headers, ...authorization(used) });
      if (used !== undefined) tokens.accepted(used);
      return result;
    };
    try {
      return await tried(token);
    } catch (error) {
      if (token === undefined || !refusedAsExpired(error)) throw error;
      const fresh = await tokens.refresh(token);
      if (fresh === undefined) throw error;
      return tried(fresh);
    }
  };
  /** Runs one request (and its retries) under a budget of its own: failures in a row per request. */
  const retrying = <T>(operation: string, attempt: () => Promise<T>) =>
    withRetry(operation, attempt, {
      budget: new RetryBudget(policy),
      signal,
      onRetry: (event) => options.onRetry?.(event),
    });
  try {
    const head = await retrying('head', () => authorized((withToken) => headOf(url, agent, withToken)));
    const chunkSize = Math.max(64 * 1024, Math.trunc(options.chunkSize ?? 8 * MiB));
    let state = await readState(statePath);
    const resumable =
      state !== undefined &&
      head.ranges &&
      state.url === options.url &&
      state.etag !== null &&
      state.etag === head.etag &&
      state.size === head.size;
    if (!resumable || state === undefined) {
      state = { url: options.url, etag: head.etag, size: head.size, chunkSize, done: [] };
      await rm(partPath, { force: true });
    }
    const file = await open(partPath, resumable ? 'r+' : 'w');
    let bytesFetched = 0;
    try {
      const chunkCount = Math.max(1, Math.ceil(head.size / state.chunkSize));
      const done = new Set(state.done);
      const alreadyDone = [...done].reduce((sum, index) => sum + chunkLength(index, state, head.size), 0);
      const progress = progressReporter(options, head.size, alreadyDone);
      const todo = head.size === 0 ? [] : [...Array(chunkCount).keys()].filter((index) => !done.has(index));
      let saving = Promise.resolve();
      const save = () => {
        const snapshot = JSON.stringify({ ...state, done: [...done].sort((a, b) => a - b) });
        saving = saving.then(() => writeAtomically(statePath, snapshot));
        return saving;
      };
      await save();
      /** Fetches `range` (the whole file when undefined) into the file at its place, with retries. */
      const fetchInto = (operation: string, range: { start: number; end: number } | undefined) =>
        retrying(operation, async () => {
          const base = range?.start ?? 0;
          let written = 0;
          await authorized((withToken) =>
            getRange(url, agent, withToken, head, range, signal, async (chunk) => {
              await limiter?.take(chunk.length, signal);
              await file.write(chunk, 0, chunk.length, base + written);
              written += chunk.length;
              bytesFetched += chunk.length;
              progress.add(chunk.length);
            }),
          ).catch((error: unknown) => {
            // A failed attempt's bytes are fetched again: take them back out of the progress.
            progress.add(-written);
            throw error;
          });
        });
      if (head.ranges) {
        const queue = [...todo];
        const worker = async () => {
          for (let index = queue.shift(); index !== undefined; index = queue.shift()) {
            const start = index * state.chunkSize;
            await fetchInto(`chunk ${index}`, {
              start,
              end: start + chunkLength(index, state, head.size) - 1,
            });
            done.add(index);
            await save();
          }
        };
        await Promise.all(Array.from({ length: Math.min(parallel, queue.length) }, worker));
      } else if (head.size > 0) {
        // No ranges: one plain GET of the whole file.
        await fetchInto('download', undefined);
      }
      await file.truncate(head.size);
      await file.sync();
      progress.finish();
    } finally {
      await file.close();
    }
    const sha256 = await hashFile(partPath);
    const verifiedBy = verify(head, sha256);
    await rename(partPath, options.output);
    await rm(statePath, { force: true });
    return { path: options.output, size: head.size, sha256, verifiedBy, bytesFetched, resumed: resumable };
  } finally {
    agent.destroy();
  }
}

/** A 401 that says the token expired; a HEAD's 401 has no body to say which, so it counts too. */
function refusedAsExpired(error: unknown): boolean {
  return (
    error instanceof ClientError &&
    error.code === 'ERR_UNAUTHORIZED' &&
    error.status === 401 &&
    (error.serverCode === undefined || error.serverCode === 'ERR_TOKEN_EXPIRED')
  );
}

function chunkLength(index: number, state: DownloadState, size: number): number {
  const start = index * state.chunkSize;
  return Math.max(0, Math.min(size, start + state.chunkSize) - start);
}

function verify(head: Head, sha256: string): DownloadResult['verifiedBy'] {
  if (head.digest !== undefined) {
    const expected = Buffer.from(head.digest).toString('hex');
    if (expected !== sha256) {
      throw new ClientError('ERR_VERIFICATION_FAILED', {
        message: `the downloaded file's SHA-256 ${sha256} is not the server's ${expected}; it was kept as .part`,
      });
    }
    return 'repr-digest';
  }
  // Ferry's ETag of a verified file is its SHA-256; other servers' ETags are opaque.
  const tag = head.etag?.replace(/^W\//, '').replace(/"/g, '');
  if (tag !== undefined && /^[0-9a-f]{64}$/.test(tag)) {
    if (tag !== sha256) {
      throw new ClientError('ERR_VERIFICATION_FAILED', {
        message: `the downloaded file's SHA-256 ${sha256} is not the ETag's ${tag}; it was kept as .part`,
      });
    }
    return 'etag';
  }
  return 'size';
}

function send(
  url: URL,
  agent: HttpAgent | HttpsAgent,
  method: string,
  headers: Record<string, string>,
  signal?: AbortSignal,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const make = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = make(url, { method, headers, agent, ...(signal ? { signal } : {}) }, resolve);
    req.setTimeout(30_000, () => req.destroy(new ClientError('ERR_TIMEOUT')));
    req.on('error', (error) => {
      reject(
        isAbortError(error) || error instanceof ClientError
          ? error
          : new ClientError('ERR_NETWORK', { cause: error }),
      );
    });
    req.end();
  });
}

async function failure(response: IncomingMessage): Promise<ClientError> {
  let body = '';
  for await (const chunk of response) if (body.length < 4096) body += String(chunk);
  let serverCode: string | undefined;
  let message = `the server answered ${response.statusCode}`;
  try {
    const parsed = JSON.parse(body) as { error?: { code?: string; message?: string } };
    serverCode = parsed.error?.code;
    if (parsed.error?.message) message = `${message}: ${parsed.error.message}`;
  } catch {
    // Not a JSON error body.
  }
  const status = response.statusCode ?? 0;
  if (isTokenRefusal(status, serverCode)) {
    const challenge = response.headers['www-authenticate'];
    return new ClientError('ERR_UNAUTHORIZED', {
      message: `${message}${serverCode === undefined ? '' : ` (${serverCode})`}${body === '' && challenge !== undefined ? ` (challenge: ${challenge})` : ''}`,
      status,
      ...(serverCode === undefined ? {} : { serverCode }),
    });
  }
  // The retry policy decides by status whether this is tried again.
  const retryAfterMs = parseRetryAfter(response.headers['retry-after']);
  return new ClientError('ERR_HTTP_STATUS', {
    message,
    status: response.statusCode ?? 0,
    ...(serverCode === undefined ? {} : { serverCode }),
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  });
}

async function headOf(
  url: URL,
  agent: HttpAgent | HttpsAgent,
  headers: Record<string, string>,
): Promise<Head> {
  const response = await send(url, agent, 'HEAD', headers);
  if (response.statusCode !== 200) throw await failure(response);
  response.resume();
  const length = Number(response.headers['content-length']);
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new ClientError('ERR_PROTOCOL', {
      message: 'the server did not say how large the file is (Content-Length)',
    });
  }
  const digestHeader = response.headers['repr-digest'];
  let digest: Uint8Array | undefined;
  if (typeof digestHeader === 'string') {
    try {
      digest = parseSha256Digest(digestHeader);
    } catch {
      digest = undefined;
    }
  }
  return {
    size: length,
    etag: typeof response.headers.etag === 'string' ? response.headers.etag : null,
    ranges: response.headers['accept-ranges'] === 'bytes',
    digest,
  };
}

async function getRange(
  url: URL,
  agent: HttpAgent | HttpsAgent,
  headers: Record<string, string>,
  head: Head,
  range: { start: number; end: number } | undefined,
  signal: AbortSignal | undefined,
  onChunk: (chunk: Buffer) => Promise<void>,
): Promise<void> {
  const requestHeaders = { ...headers };
  if (range !== undefined) {
    requestHeaders['range'] = `bytes=${range.start}-${range.end}`;
    if (head.etag !== null && !head.etag.startsWith('W/')) requestHeaders['if-range'] = head.etag;
  }
  const response = await send(url, agent, 'GET', requestHeaders, signal);
  const expected = range === undefined ? 200 : 206;
  if (response.statusCode !== expected) {
    if (range !== undefined && response.statusCode === 200) {
      response.destroy();
      throw new ClientError('ERR_PROTOCOL', {
        message:
          'the file changed on the server while it was downloaded (If-Range no longer matches); run again',
      });
    }
    throw await failure(response);
  }
  const want = range === undefined ? head.size : range.end - range.start + 1;
  let got = 0;
  try {
    for await (const chunk of response) {
      got += (chunk as Buffer).length;
      await onChunk(chunk as Buffer);
    }
  } catch (error) {
    if (isAbortError(error)) throw error;
    throw new ClientError('ERR_NETWORK', { cause: error });
  }
  if (got !== want)
    throw new ClientError('ERR_NETWORK', { message: `the response ended after ${got} of ${want} bytes` });
}

async function readState(path: string): Promise<DownloadState | undefined> {
  try {
    const value = JSON.parse(await readFile(path, 'utf8')) as DownloadState;
    if (!Array.isArray(value.done) || typeof value.size !== 'number' || typeof value.chunkSize !== 'number') {
      return undefined;
    }
    return value;
  } catch {
    return undefined;
  }
}

async function writeAtomically(path: string, text: string): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, text);
  await rename(temporary, path);
}

async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: MiB })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function progressReporter(options: DownloadOptions, total: number, initial: number) {
  const interval = options.progressIntervalMs ?? 250;
  let done = initial;
  let speed = 0;
  let lastAt = performance.now();
  let lastDone = initial;
  let reportedAt = 0;
  // A failed attempt takes its bytes back out of `done`; what is shown never goes backwards.
  let shown = initial;
  const report = (force: boolean) => {
    const now = performance.now();
    if (now - lastAt >= 200) {
      const instant = ((done - lastDone) / (now - lastAt)) * 1000;
      speed = speed === 0 ? instant : 0.7 * speed + 0.3 * instant;
      lastAt = now;
      lastDone = done;
    }
    if (force || now - reportedAt >= interval) {
      reportedAt = now;
      shown = Math.max(shown, Math.min(total, done));
      options.onProgress?.({
        bytesDone: shown,
        totalBytes: total,
        speed: Math.max(0, speed),
      });
    }
  };
  return {
    add(bytes: number) {
      done += bytes;
      report(false);
    },
    finish() {
      done = total;
      report(true);
    },
  };
}
