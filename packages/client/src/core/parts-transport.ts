/**
 * Ferry's parts API: parts go up in parallel through the sliding-window pool, each with its own
 * retry. On every (re)start the upload's status is read first and only missing parts are sent.
 * `complete` carries the whole file's SHA-256, so the server verifies the file end to end; a 409
 * listing missing parts sends those and completes again — success is never reported while a part
 * is missing. A part carries a `Content-Digest` (SHA-256 of exactly its bytes) when `checksum` asks:
 * always, or (the default) while the file's SHA-256 is not computed yet. When every part was sent
 * with a digest, `complete` need not wait for the file's SHA-256 (a browser hashes a big file
 * slower than it sends it): the server verified each part and reports the file's SHA-256 itself.
 * Otherwise digests are computed only when the server refuses the file's SHA-256: the parts whose
 * digest at the server differs from the source's are sent again, with a digest, and completed again.
 *
 * The same transport in `s3-presigned` mode (the upload option `presigned`) sends each part straight to the S3 bucket through
 * a presigned URL and reports its ETag instead (presigned-parts.ts); everything else is shared.
 */
import {
  type CompletedPartsUpload,
  type CreatedPartsUpload,
  type CreatePartsUploadRequest,
  type DeduplicatedUpload,
  type FileInfo,
  formatSha256Digest,
  fromRanges,
  NO_PART_DIGEST,
  type PartInfo,
  type PartsUploadStatus,
  partCountOf,
  partRange,
  partSizeProblem,
} from '@ferry/protocol';
import { ClientError } from './errors.ts';
import { PresignedUrls, sendPartDirect } from './presigned-parts.ts';
import { RetryBudget, withRetry } from './retry.ts';
import { runPool } from './scheduler.ts';
import { bodySize } from './seams.ts';
import {
  deleteRemote,
  isSuccess,
  parseJson,
  readBody,
  recycleBody,
  resolveUrl,
  responseError,
  send,
  sendBody,
  type Transport,
  type TransportContext,
  type UploadResult,
} from './transport.ts';

const JSON_HEADERS = { 'content-type': 'application/json', accept: 'application/json' };
/** Rounds of "complete → 409 missing parts → send them" before giving up. */
const MAX_COMPLETE_ROUNDS = 3;

function encodeJson(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

function protocolError(message: string): ClientError {
  return new ClientError('ERR_PROTOCOL', { message });
}

function object(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null)
    throw protocolError(`${what}: the answer is not a JSON object`);
  return value as Record<string, unknown>;
}

/** The parts a `409 ERR_PARTS_MISSING` names: `details.missing` as numbers or inclusive ranges. */
function missingFromDetails(details: Record<string, unknown> | undefined): number[] | undefined {
  const missing = details?.['missing'];
  if (!Array.isArray(missing)) return undefined;
  if (missing.every((item) => Number.isInteger(item))) return missing as number[];
  if (missing.every((item) => Array.isArray(item) && item.length === 2)) {
    return fromRanges(missing as [number, number][]);
  }
  return undefined;
}

/**
 * Bytes of parts a server may have to hold ahead of the first part it still lacks. A Ferry server
 * computes the file's SHA-256 as parts arrive, in order; parts that arrive ahead of a slow one wait
 * in its memory (128 MiB by default, for all uploads), and on S3, where they cannot be read back, an
 * upload whose parts overflow that loses its running hash: `complete` then reads the whole object
 * back (4 s per GiB against a local RGW).
 */
const WINDOW_BYTES = 56 * 1024 * 1024;

/**
 * How many parts, from the first unfinished one, may be in flight at once: WINDOW_BYTES of them,
 * but at least twice `parallel` (with fewer, parallel parts on a long link wait for a slow one
 * too often: 8 in flight within 9 sent 93 MB/s against 118 over the emulated long link).
 */
export function partsWindow(parallel: number, partSize: number): number {
  return Math.max(2 * parallel, Math.floor(WINDOW_BYTES / partSize) + 1);
}

export function createPartsTransport(mode: 'parts' | 's3-presigned' = 'parts'): Transport {
  const direct = mode === 's3-presigned';
  const protocol = 'parts';
  /** The parts of the upload at `url` that this client sent with a Content-Digest the server checked. */
  let digested: { url: string; parts: Set<number> } | undefined;
  function result(
    context: TransportContext,
    file: FileInfo,
    base: string,
    deduplicated: boolean,
  ): UploadResult {
    const size = context.source.size ?? 0;
    const sha256 = context.sha256IfReady();
    if (file.size !== size || (sha256 !== undefined && file.sha256 !== null && file.sha256 !== sha256)) {
      throw new ClientError('ERR_VERIFICATION_FAILED', {
        message: `the server stored ${file.size} bytes with SHA-256 ${file.sha256}; the source has ${size} bytes with SHA-256 ${sha256}`,
      });
    }
    return {
      protocol,
      id: file.id,
      url: resolveUrl(file.url, base),
      size: file.size,
      sha256: sha256 ?? file.sha256 ?? undefined,
      deduplicated,
    };
  }

  async function status(context: TransportContext, url: string): Promise<PartsUploadStatus> {
    const budget = new RetryBudget(context.policy, context.random);
    return withRetry(
      'status',
      async () => {
        const answer = await send(context, { method: 'GET', url, headers: { accept: 'application/json' } });
        if (!isSuccess(answer)) throw responseError(answer, 'status');
        const body = object(parseJson(answer), 'status') as unknown as PartsUploadStatus;
        if (!Number.isSafeInteger(body.partSize) || !Array.isArray(body.received)) {
          throw protocolError('status: the answer lacks partSize or received');
        }
        return body;
      },
      { budget, signal: context.signal, onRetry: context.onRetry },
    );
  }

  async function putPart(
    context: TransportContext,
    url: string,
    n: number,
    partSize: number,
    checksum: TransportContext['checksum'],
    confirm: (n: number, bytes: number, digested: boolean) => void,
    signal: AbortSignal,
    urls: PresignedUrls | undefined,
  ): Promise<number> {
    const size = context.source.size ?? 0;
    const { start, end } = partRange(n, size, partSize);
    // Straight to the bucket there is no Content-Digest to send: S3 (Ceph RGW at least) does not check one.
    const withDigest =
      urls === undefined &&
      (checksum === true || (checksum === 'until-sha256' && context.sha256IfReady() === undefined));
    // A part whose digest is made is read first; any other is read only as it goes out.
    const bytes = withDigest ? await readBody(context, start, end, signal) : undefined;
    const body = bytes ?? (await sendBody(context, start, end, signal));
    const length = bodySize(body);
    if (length !== end - start) {
      throw new ClientError('ERR_SOURCE_UNREADABLE', { message: `part ${n}: the source ended early` });
    }
    let digest: string | undefined;
    try {
      if (bytes !== undefined) digest = formatSha256Digest(await context.hasher.digest(bytes));
      const budget = new RetryBudget(context.policy, context.random);
      await withRetry(
        `part ${n}`,
        async () => {
          const flight = context.progress.startFlight();
          try {
            if (urls !== undefined) {
              await sendPartDirect(context, urls, url, n, body, length, (sent) => flight.sent(sent), signal);
              return;
            }
            const answer = await send(context, {
              method: 'PUT',
              url: `${url}/parts/${n}`,
              headers: {
                'content-type': 'application/octet-stream',
                'content-length': String(length),
                // Without a digest of its own to compare, the part's SHA-256 would only cost the
                // server CPU and the answer time: the whole file's is checked at `complete`.
                ...(digest === undefined
                  ? { 'want-content-digest': NO_PART_DIGEST }
                  : { 'content-digest': digest }),
              },
              body,
              onSent: (sent) => flight.sent(sent),
              signal,
            });
            if (!isSuccess(answer)) throw responseError(answer, `part ${n}`);
            const info = parseJson(answer) as Partial<PartInfo> | undefined;
            if (info?.size !== undefined && info.size !== length) {
              throw protocolError(`part ${n}: the server stored ${info.size} bytes of ${length}`);
            }
            if (digest !== undefined && info?.digest !== undefined && info.digest !== digest) {
              throw new ClientError('ERR_VERIFICATION_FAILED', {
                message: `part ${n}: the server computed ${info.digest}, the client sent ${digest}`,
              });
            }
          } finally {
            flight.end();
          }
        },
        {
          budget,
          signal,
          onRetry: (event) => {
            context.concurrency.failed();
            context.onRetry(event);
          },
        },
      );
    } finally {
      recycleBody(context, body);
    }
    confirm(n, length, digest !== undefined);
    return length;
  }

  /**
   * After the server refused the whole file's SHA-256: the parts whose bytes at the server differ
   * from the source's (the server lists each part's digest; the source's parts are hashed here).
   */
  async function partsThatDiffer(
    context: TransportContext,
    url: string,
    size: number,
    partSize: number,
  ): Promise<number[]> {
    const current = await status(context, url);
    // A part listed without a digest (the server could not compute one) counts as differing.
    const theirs = new Map((current.parts ?? []).map((part) => [part.n, part.digest]));
    const differ: number[] = [];
    for (let n = 1; n <= partCountOf(size, partSize); n++) {
      const { start, end } = partRange(n, size, partSize);
      const body = await readBody(context, start, end, context.signal);
      const digest = formatSha256Digest(await context.hasher.digest(body));
      recycleBody(context, body);
      if (theirs.get(n) !== digest) differ.push(n);
    }
    return differ;
  }

  async function complete(
    context: TransportContext,
    url: string,
    everyPartDigested: boolean,
  ): Promise<{ file: FileInfo } | { missing: number[] } | { mismatch: true }> {
    const sha256 = everyPartDigested ? context.sha256IfReady() : await context.sha256();
    const budget = new RetryBudget(context.policy, context.random);
    return withRetry(
      'complete',
      async () => {
        const answer = await send(context, {
          method: 'POST',
          url: `${url}/complete`,
          headers: JSON_HEADERS,
          body: encodeJson(sha256 === undefined ? {} : { sha256 }),
        });
        if (isSuccess(answer)) {
          const body = object(parseJson(answer), 'complete') as unknown as CompletedPartsUpload;
          if (typeof body.file?.url !== 'string') throw protocolError('complete: the answer has no file');
          return { file: body.file };
        }
        const error = responseError(answer, 'complete');
        if (answer.status === 409 && error.serverCode === 'ERR_PARTS_MISSING') {
          const missing = missingFromDetails(error.details);
          if (missing !== undefined && missing.length > 0) return { missing };
        }
        if (answer.status === 422 && error.serverCode === 'ERR_SHA256_MISMATCH') return { mismatch: true };
        throw error;
      },
      { budget, signal: context.signal, onRetry: context.onRetry },
    );
  }

  return {
    protocol,

    async create(context) {
      const { source } = context;
      if (source.size === undefined) throw new ClientError('ERR_SIZE_REQUIRED');
      const request: CreatePartsUploadRequest = { size: source.size };
      if (context.name !== undefined) request.name = context.name;
      if (context.type !== undefined) request.type = context.type;
      if (Object.keys(context.metadata).length > 0) request.metadata = context.metadata;
      if (context.planner.mode === 'fixed') {
        const problem = partSizeProblem(source.size, context.planner.chunkSize);
        if (problem !== undefined)
          throw new ClientError('ERR_INVALID_OPTIONS', { message: `chunkSize: ${problem}` });
        request.partSize = context.planner.chunkSize;
      }
      // Declared at creation when the fingerprint is ready: the server can then deduplicate.
      const sha256 = context.sha256IfReady();
      if (sha256 !== undefined) request.sha256 = sha256;

      const budget = new RetryBudget(context.policy, context.random);
      const answer = await withRetry(
        'create',
        async () => {
          const response = await send(context, {
            method: 'POST',
            url: context.endpoint,
            headers: JSON_HEADERS,
            body: encodeJson(request),
          });
          if (!isSuccess(response)) throw responseError(response, 'create');
          return response;
        },
        { budget, signal: context.signal, onRetry: context.onRetry },
      );
      const body = object(parseJson(answer), 'create');
      if (body['deduplicated'] === true) {
        const { file } = body as unknown as DeduplicatedUpload;
        if (typeof file?.url !== 'string') throw protocolError('create: a deduplicated answer has no file');
        const finished = result(context, file, context.endpoint, true);
        context.progress.confirmed(source.size);
        return { url: finished.url, finished };
      }
      const created = body as unknown as CreatedPartsUpload;
      if (typeof created.url !== 'string' || !Number.isSafeInteger(created.partSize)) {
        throw protocolError('create: the answer lacks url or partSize');
      }
      return {
        url: resolveUrl(created.url, context.endpoint),
        partSize: created.partSize,
        expiresAt: created.expiresAt ?? null,
      };
    },

    async send(context, remote) {
      const size = context.source.size;
      if (size === undefined) throw new ClientError('ERR_SIZE_REQUIRED');
      const current = await status(context, remote.url);
      if (current.state === 'finished' && current.file !== undefined) {
        context.progress.confirmed(size);
        return result(context, current.file, remote.url, false);
      }
      const partSize = current.partSize;
      const partCount = partCountOf(size, partSize);
      if (current.size !== size || current.partCount !== partCount) {
        throw protocolError(
          `the upload at the server has ${current.size} bytes in ${current.partCount} parts`,
        );
      }
      if (digested?.url !== remote.url) digested = { url: remote.url, parts: new Set() };
      const verified = digested.parts;
      const counted = new Set<number>();
      let confirmedBytes = 0;
      const confirm = (n: number, bytes: number, withDigest: boolean) => {
        if (withDigest) verified.add(n);
        else verified.delete(n);
        if (counted.has(n)) return;
        counted.add(n);
        confirmedBytes += bytes;
        context.progress.setParts(counted.size, partCount);
        context.progress.confirmed(confirmedBytes);
      };
      const received = new Set(fromRanges(current.received));
      for (const n of received) {
        const { start, end } = partRange(n, size, partSize);
        counted.add(n);
        confirmedBytes += end - start;
      }
      context.progress.setParts(counted.size, partCount);
      context.progress.confirmed(confirmedBytes);

      let missing: number[] = [];
      for (let n = 1; n <= partCount; n++) if (!received.has(n)) missing.push(n);
      // Parts carry a Content-Digest when asked, and always once the file's SHA-256 did not match.
      let checksum = context.checksum;
      for (let round = 1; ; round++) {
        const order = missing;
        const urls = direct ? new PresignedUrls(context, remote.url, () => order) : undefined;
        await runPool(
          missing,
          (n, signal) => putPart(context, remote.url, n, partSize, checksum, confirm, signal, urls),
          {
            concurrency: context.concurrency,
            signal: context.signal,
            ...(direct ? {} : { window: partsWindow(context.concurrency.max, partSize) }),
          },
        );
        context.setPhase('completing');
        const outcome = await complete(context, remote.url, verified.size === partCount);
        if ('file' in outcome) return result(context, outcome.file, remote.url, false);
        if ('mismatch' in outcome) {
          missing = await partsThatDiffer(context, remote.url, size, partSize);
          if (missing.length === 0) {
            throw new ClientError('ERR_VERIFICATION_FAILED', {
              message:
                "the server's SHA-256 of the file differs from the source's, yet every part matches: the source changed while it was sent",
            });
          }
          checksum = true;
        }
        if (round >= MAX_COMPLETE_ROUNDS) {
          throw new ClientError('ERR_PROTOCOL', {
            message: `complete still reports missing or differing parts after ${round} rounds: ${missing.slice(0, 10).join(', ')}`,
          });
        }
        context.setPhase('uploading');
        if ('missing' in outcome) missing = outcome.missing;
      }
    },

    async terminate(context, remote) {
      await deleteRemote(context, remote.url);
    },
  };
}
