/**
 * tus 1.0.0 against Ferry or any tus server: creation (optionally with the first chunk), sequential
 * PATCHes, HEAD to resume, `Upload-Defer-Length` for streams, `Upload-Checksum: sha256` per chunk
 * when advertised, termination. One upload takes one PATCH at a time: tus cannot write one upload
 * in parallel without the concatenation extension.
 *
 * Resume rules (the bugs tus clients are known for, avoided here):
 * - A HEAD answered with a 5xx, 423 or a network error is retried under the policy; only 404, 410
 *   and 403 mean the upload is gone (the `Upload` then starts over and says so in an event).
 * - After any failed PATCH the offset is read again with HEAD before anything is sent: the server
 *   keeps what arrived of a cut body, and 409 means our offset was wrong, never "start over".
 * - Whenever the server confirms new bytes, the retry count starts over.
 */
import { bytesToBase64, formatMetadata, TUS_VERSION } from '@ferry/protocol';
import { ClientError } from './errors.ts';
import type { Flight } from './progress.ts';
import { RetryBudget, sleep, withRetry } from './retry.ts';
import { bodySize, type HttpResponse, type RequestBody } from './seams.ts';
import {
  deleteRemote,
  idOfUrl,
  isSuccess,
  type RemoteUpload,
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

const OCTET_STREAM = 'application/offset+octet-stream';

/** What the server advertises in its OPTIONS answer; empty when OPTIONS failed (try anyway). */
interface Capabilities {
  known: boolean;
  extensions: Set<string>;
  checksumAlgorithms: Set<string>;
}

function parseList(value: string | undefined): Set<string> {
  return new Set(
    (value ?? '')
      .split(',')
      .map((item) => item.trim().toLowerCase())
      .filter((item) => item !== ''),
  );
}

function parseOffset(response: HttpResponse, operation: string): number {
  const value = response.headers['upload-offset'];
  if (value === undefined || !/^\d+$/.test(value.trim())) {
    throw new ClientError('ERR_PROTOCOL', {
      message: `${operation}: the answer ${response.status} has no valid Upload-Offset`,
      status: response.status,
    });
  }
  return Number(value.trim());
}

export function createTusTransport(): Transport {
  let capabilities: Promise<Capabilities> | undefined;

  function discover(context: TransportContext): Promise<Capabilities> {
    capabilities ??= send(context, {
      method: 'OPTIONS',
      url: context.endpoint,
      headers: { 'tus-resumable': TUS_VERSION },
    }).then(
      (response) =>
        isSuccess(response)
          ? {
              known: true,
              extensions: parseList(response.headers['tus-extension']),
              checksumAlgorithms: parseList(response.headers['tus-checksum-algorithm']),
            }
          : { known: false, extensions: new Set<string>(), checksumAlgorithms: new Set<string>() },
      () => ({ known: false, extensions: new Set<string>(), checksumAlgorithms: new Set<string>() }),
    );
    return capabilities;
  }

  async function useChecksum(context: TransportContext): Promise<boolean> {
    if (!context.checksum) return false;
    const caps = await discover(context);
    return caps.extensions.has('checksum') && caps.checksumAlgorithms.has('sha256');
  }

  function uploadMetadata(context: TransportContext): string {
    const metadata: Record<string, string> = { ...context.metadata };
    // tusd, @tus/server and Ferry read these two keys (tusd also uses filetype as Content-Type).
    if (context.name !== undefined) metadata['filename'] ??= context.name;
    if (context.type !== undefined) metadata['filetype'] ??= context.type;
    return formatMetadata(metadata);
  }

  /** The `Upload-Checksum` header of a chunk's bytes (where `useChecksum`). */
  async function checksumHeader(
    context: TransportContext,
    body: Uint8Array | Blob,
  ): Promise<Record<string, string>> {
    return { 'upload-checksum': `sha256 ${bytesToBase64(await context.hasher.digest(body))}` };
  }

  function result(context: TransportContext, url: string, size: number): UploadResult {
    return {
      protocol: 'tus',
      id: idOfUrl(url),
      // Ferry serves the finished file at the upload URL.
      url,
      size,
      sha256: context.sha256IfReady() ?? context.source.streamedSha256,
      deduplicated: false,
    };
  }

  return {
    protocol: 'tus',

    async create(context) {
      const caps = await discover(context);
      const { source } = context;
      const deferred = source.size === undefined;
      if (deferred && caps.known && !caps.extensions.has('creation-defer-length')) {
        throw new ClientError('ERR_UNSUPPORTED_BY_SERVER', {
          message: 'the server does not support creation-defer-length, needed for a stream of unknown length',
        });
      }
      const headers: Record<string, string> = { 'tus-resumable': TUS_VERSION };
      if (deferred) headers['upload-defer-length'] = '1';
      else headers['upload-length'] = String(source.size);
      const metadata = uploadMetadata(context);
      if (metadata !== '') headers['upload-metadata'] = metadata;

      // creation-with-upload saves a round trip per upload (all of it for a small file). Its bytes
      // are read first: the request runs to its answer even when the upload is paused meanwhile.
      let body: Uint8Array | Blob | undefined;
      if (
        context.creationWithUpload &&
        !deferred &&
        caps.extensions.has('creation-with-upload') &&
        (source.size ?? 0) > 0
      ) {
        body = await readBody(context, 0, context.planner.end(0, source.size), context.signal);
        headers['content-type'] = OCTET_STREAM;
        if (await useChecksum(context)) Object.assign(headers, await checksumHeader(context, body));
      }

      // A creation request with bytes, once sent, runs to its answer even when the upload is paused
      // or cancelled meanwhile: the server creates the upload as the request arrives, and only the
      // answer says where, so that the upload can be continued or deleted instead of left behind.
      const toTheAnswer = new AbortController().signal;
      const budget = new RetryBudget(context.policy, context.random);
      const response = await withRetry(
        'create',
        async () => {
          if (context.signal.aborted) throw context.signal.reason;
          const flight = body === undefined ? undefined : context.progress.startFlight();
          try {
            const answer = await send(context, {
              method: 'POST',
              url: context.endpoint,
              headers,
              ...(body === undefined
                ? {}
                : {
                    body,
                    signal: toTheAnswer,
                    onSent: (bytes: number) => {
                      if (!context.signal.aborted) flight?.sent(bytes);
                    },
                  }),
            });
            if (!isSuccess(answer)) throw responseError(answer, 'create');
            return answer;
          } finally {
            flight?.end();
          }
        },
        { budget, signal: context.signal, onRetry: context.onRetry },
      ).finally(() => recycleBody(context, body));
      const location = response.headers['location'];
      if (location === undefined || location === '') {
        throw new ClientError('ERR_PROTOCOL', {
          message: `create: the answer ${response.status} has no Location header`,
          status: response.status,
        });
      }
      const url = resolveUrl(location, context.endpoint);
      const remote: RemoteUpload = { url };
      const expires = response.headers['upload-expires'];
      if (expires !== undefined) remote.expiresAt = new Date(expires).toISOString();
      if (source.size === 0) remote.offset = 0;
      else if (body !== undefined && response.headers['upload-offset'] !== undefined) {
        remote.offset = parseOffset(response, 'create');
        context.progress.confirmed(remote.offset);
      }
      return remote;
    },

    async send(context, remote) {
      const { source, progress, signal } = context;
      const budget = new RetryBudget(context.policy, context.random);
      let offset = remote.offset;
      // A deferred length is declared with the PATCH that reaches the end of the stream.
      let lengthDeclared = source.size !== undefined;
      for (;;) {
        let flight: Flight | undefined;
        let body: RequestBody | undefined;
        try {
          if (offset === undefined) {
            const state = await head(context, remote.url);
            if (state.length !== undefined) lengthDeclared = true;
            if (state.length !== undefined && source.size !== undefined && state.length !== source.size) {
              throw new ClientError('ERR_PROTOCOL', {
                message: `the upload at the server is ${state.length} bytes long, the source ${source.size}`,
              });
            }
            offset = state.offset;
            if (offset > progress.bytesConfirmed) budget.confirmed();
            progress.confirmed(offset);
          }
          source.release(offset);
          if (source.size !== undefined && offset >= source.size && lengthDeclared) {
            return result(context, remote.url, source.size);
          }
          const end = context.planner.end(offset, source.size);
          // A chunk with a checksum is read first; any other is read only as it goes out.
          const bytes = (await useChecksum(context))
            ? await readBody(context, offset, end, signal)
            : undefined;
          body = bytes ?? (await sendBody(context, offset, end, signal));
          const length = bodySize(body);
          const headers: Record<string, string> = {
            'tus-resumable': TUS_VERSION,
            'upload-offset': String(offset),
            'content-type': OCTET_STREAM,
            ...(bytes === undefined ? {} : await checksumHeader(context, bytes)),
          };
          const size = source.size;
          if (size !== undefined) progress.setTotal(size);
          const reachesEnd = size !== undefined && offset + length === size;
          if (!lengthDeclared && reachesEnd) headers['upload-length'] = String(size);

          flight = progress.startFlight();
          const started = performance.now();
          const answer = await send(context, {
            method: 'PATCH',
            url: remote.url,
            headers,
            body,
            onSent: (sent) => flight?.sent(sent),
          });
          flight.end();
          if (!isSuccess(answer)) throw responseError(answer, 'PATCH');
          const next = parseOffset(answer, 'PATCH');
          if (next < offset || next > offset + length) {
            throw new ClientError('ERR_PROTOCOL', {
              message: `PATCH at ${offset} with ${length} bytes answered Upload-Offset ${next}`,
            });
          }
          if (headers['upload-length'] !== undefined) lengthDeclared = true;
          context.planner.observe(length, performance.now() - started);
          if (next > offset) budget.confirmed();
          offset = next;
          progress.confirmed(offset);
        } catch (error) {
          flight?.end();
          if (signal.aborted) throw signal.reason;
          const delayMs = budget.failed(error);
          context.onRetry({
            operation: offset === undefined ? 'HEAD' : 'PATCH',
            attempt: budget.failures,
            delayMs,
            error,
          });
          // Read the server's offset again before sending anything.
          offset = undefined;
          await sleep(delayMs, signal);
        } finally {
          recycleBody(context, body);
        }
      }
    },

    async terminate(context, remote) {
      await deleteRemote(context, remote.url, { 'tus-resumable': TUS_VERSION });
    },
  };
}

/** HEAD: the server's offset and length. 404/410/403 throw `ERR_UPLOAD_GONE` (not retried). */
async function head(context: TransportContext, url: string): Promise<{ offset: number; length?: number }> {
  const answer = await send(context, { method: 'HEAD', url, headers: { 'tus-resumable': TUS_VERSION } });
  if (!isSuccess(answer)) throw responseError(answer, 'HEAD');
  const offset = parseOffset(answer, 'HEAD');
  const length = answer.headers['upload-length'];
  return length !== undefined && /^\d+$/.test(length.trim())
    ? { offset, length: Number(length) }
    : { offset };
}
