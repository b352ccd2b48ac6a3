/**
 * Ferry's parts API: parts go up in parallel through the sliding-window pool, each with its own
 * retry and a `Content-Digest` (SHA-256 of exactly the bytes sent). On every (re)start the upload's
 * status is read first and only missing parts are sent. `complete` carries the whole file's SHA-256,
 * so the server verifies the file end to end; a 409 listing missing parts sends those and completes
 * again — success is never reported while a part is missing.
 */
import {
  type CompletedPartsUpload,
  type CreatedPartsUpload,
  type CreatePartsUploadRequest,
  type DeduplicatedUpload,
  type FileInfo,
  formatSha256Digest,
  fromRanges,
  type PartInfo,
  type PartsUploadStatus,
  partCountOf,
  partRange,
  partSizeProblem,
} from '@ferry/protocol';
import { ClientError } from './errors.ts';
import { RetryBudget, withRetry } from './retry.ts';
import { runPool } from './scheduler.ts';
import {
  deleteRemote,
  isSuccess,
  parseJson,
  resolveUrl,
  responseError,
  send,
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

export function createPartsTransport(): Transport {
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
      protocol: 'parts',
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
    confirm: (bytes: number) => void,
    signal: AbortSignal,
  ): Promise<number> {
    const size = context.source.size ?? 0;
    const { start, end } = partRange(n, size, partSize);
    const bytes = await context.source.read(start, end, signal);
    if (bytes.length !== end - start) {
      throw new ClientError('ERR_SOURCE_UNREADABLE', { message: `part ${n}: the source ended early` });
    }
    const digest = formatSha256Digest(await context.hasher.digest(bytes));
    const budget = new RetryBudget(context.policy, context.random);
    await withRetry(
      `part ${n}`,
      async () => {
        const flight = context.progress.startFlight();
        try {
          const answer = await send(context, {
            method: 'PUT',
            url: `${url}/parts/${n}`,
            headers: {
              'content-type': 'application/octet-stream',
              'content-length': String(bytes.length),
              'content-digest': digest,
            },
            body: bytes,
            onSent: (sent) => flight.sent(sent),
            signal,
          });
          if (!isSuccess(answer)) throw responseError(answer, `part ${n}`);
          const info = parseJson(answer) as Partial<PartInfo> | undefined;
          if (info?.size !== undefined && info.size !== bytes.length) {
            throw protocolError(`part ${n}: the server stored ${info.size} bytes of ${bytes.length}`);
          }
          if (info?.digest !== undefined && info.digest !== digest) {
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
    confirm(bytes.length);
    return bytes.length;
  }

  async function complete(
    context: TransportContext,
    url: string,
  ): Promise<{ file: FileInfo } | { missing: number[] }> {
    const sha256 = await context.sha256();
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
        throw error;
      },
      { budget, signal: context.signal, onRetry: context.onRetry },
    );
  }

  return {
    protocol: 'parts',

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
      const received = new Set(fromRanges(current.received));
      let confirmedBytes = 0;
      for (const n of received) {
        const { start, end } = partRange(n, size, partSize);
        confirmedBytes += end - start;
      }
      let confirmedParts = received.size;
      context.progress.setParts(confirmedParts, partCount);
      context.progress.confirmed(confirmedBytes);
      const confirm = (bytes: number) => {
        confirmedBytes += bytes;
        confirmedParts += 1;
        context.progress.setParts(confirmedParts, partCount);
        context.progress.confirmed(confirmedBytes);
      };

      let missing: number[] = [];
      for (let n = 1; n <= partCount; n++) if (!received.has(n)) missing.push(n);
      for (let round = 1; ; round++) {
        await runPool(missing, (n, signal) => putPart(context, remote.url, n, partSize, confirm, signal), {
          concurrency: context.concurrency,
          signal: context.signal,
        });
        context.setPhase('completing');
        const outcome = await complete(context, remote.url);
        if ('file' in outcome) return result(context, outcome.file, remote.url, false);
        if (round >= MAX_COMPLETE_ROUNDS) {
          throw new ClientError('ERR_PROTOCOL', {
            message: `complete still reports missing parts after ${round} rounds: ${outcome.missing.slice(0, 10).join(', ')}`,
          });
        }
        context.setPhase('uploading');
        missing = outcome.missing;
      }
    },

    async terminate(context, remote) {
      await deleteRemote(context, remote.url);
    },
  };
}
