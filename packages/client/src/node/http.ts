/**
 * The Node HTTP seam on node:http / node:https. Not fetch: fetch reports no upload progress and
 * cannot apply backpressure per write. Bodies are written in slices; a slice counts as sent when
 * Node handed it to the socket, which drives honest progress, the rate limit and stall detection
 * (no byte moved either way for `stallTimeoutMs` → the request is destroyed with `ERR_STALLED`).
 * Connections are kept alive and reused across requests.
 *
 * A `SourceRange` body (a part of a file) is read as it goes out, 1 MiB at a time, into buffers
 * this client keeps and reuses (the most recently freed first, likely still in the CPU's cache);
 * the next read runs while the last one is written. Copying a file's pages into part-sized buffers
 * cost the Node client four to five times the CPU of these small ones while an upload kept both
 * cores busy.
 */
import http from 'node:http';
import https from 'node:https';
import { ClientError } from '../core/errors.ts';
import {
  bodyBytes,
  bodySize,
  type HttpClient,
  type HttpRequest,
  type HttpResponse,
  requestGaveUp,
  type SourceRange,
} from '../core/seams.ts';

/** Bytes per write: small enough for smooth progress and rate limiting, large enough to be cheap. */
const SLICE_BYTES = 256 * 1024;
/** Bytes per read of a `SourceRange` body. Smaller reads cost more per byte in calls to the file system. */
const READ_BYTES = 1024 * 1024;
/** Read buffers kept for reuse (two per request in flight cover 8 parallel requests). */
const MAX_SPARE_READ_BUFFERS = 16;

/** Read buffers for `SourceRange` bodies, handed out most recently freed first. */
class ReadBuffers {
  readonly #spare: Buffer[] = [];

  take(): Buffer {
    return this.#spare.pop() ?? Buffer.allocUnsafeSlow(READ_BYTES);
  }

  give(buffer: Buffer): void {
    if (this.#spare.length < MAX_SPARE_READ_BUFFERS) this.#spare.push(buffer);
  }
}

export interface NodeHttpOptions {
  /** Most connections per host. Default 16. */
  maxSockets?: number;
}

export function createNodeHttpClient(options: NodeHttpOptions = {}): HttpClient {
  const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? 16, scheduling: 'lifo' as const };
  const agents = { http: new http.Agent(agentOptions), https: new https.Agent(agentOptions) };
  const buffers = new ReadBuffers();

  return {
    async request(request) {
      // This seam does not declare `sendsBlobs`, so bodies come as bytes; a `Blob` is read whole.
      if (request.body instanceof Blob) request = { ...request, body: await bodyBytes(request.body) };
      return send(
        request,
        request.url.startsWith('https:') ? https : http,
        request.url.startsWith('https:') ? agents.https : agents.http,
        buffers,
      );
    },
    sendsRanges: true,
    close() {
      agents.http.destroy();
      agents.https.destroy();
    },
  };
}

function send(
  request: HttpRequest,
  transport: typeof http | typeof https,
  agent: http.Agent,
  buffers: ReadBuffers,
): Promise<HttpResponse> {
  return new Promise<HttpResponse>((resolve, reject) => {
    const { signal } = request;
    const body = request.body as Uint8Array | SourceRange | undefined;
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const headers: Record<string, string> = { ...request.headers };
    if (body !== undefined) headers['content-length'] = String(bodySize(body));
    const req = transport.request(request.url, { method: request.method, headers, agent });
    let settled = false;
    let responded = false;
    let ended = false;

    const finish = (error: unknown, response?: HttpResponse) => {
      if (settled) return;
      settled = true;
      clearTimeout(stall);
      if (deadline !== undefined) clearTimeout(deadline);
      signal.removeEventListener('abort', onAbort);
      // A connection whose request body was not sent to the end cannot carry another request.
      if (error !== undefined || !ended) req.destroy();
      if (error !== undefined) reject(error);
      else resolve(response as HttpResponse);
    };
    const onAbort = () => finish(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });

    const stall = setTimeout(() => {
      finish(requestGaveUp('ERR_STALLED', request));
    }, request.stallTimeoutMs);
    const moved = () => stall.refresh();
    const deadline =
      request.timeoutMs > 0
        ? setTimeout(() => {
            finish(requestGaveUp('ERR_TIMEOUT', request));
          }, request.timeoutMs)
        : undefined;

    req.on('error', (error) => {
      finish(
        new ClientError('ERR_NETWORK', {
          message: `${request.method} ${request.url}: ${error.message}`,
          cause: error,
        }),
      );
    });
    req.on('response', (res) => {
      responded = true;
      moved();
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => {
        moved();
        chunks.push(chunk);
      });
      res.on('error', (error) => {
        finish(
          new ClientError('ERR_NETWORK', {
            message: `${request.method} ${request.url}: ${error.message}`,
            cause: error,
          }),
        );
      });
      res.on('end', () => {
        const responseHeaders: Record<string, string> = {};
        for (const [name, value] of Object.entries(res.headers)) {
          if (value !== undefined) responseHeaders[name] = Array.isArray(value) ? value.join(', ') : value;
        }
        finish(undefined, {
          status: res.statusCode ?? 0,
          headers: responseHeaders,
          body: Buffer.concat(chunks).toString('utf8'),
        });
      });
    });

    if (body === undefined || bodySize(body) === 0) {
      ended = true;
      req.end();
      return;
    }
    /** Writes `bytes` in slices; `written` runs once all of them reached the socket. False: stop sending. */
    const writeAll = async (bytes: Buffer, written?: () => void): Promise<boolean> => {
      for (let offset = 0; offset < bytes.length; offset += SLICE_BYTES) {
        const slice = bytes.subarray(offset, Math.min(bytes.length, offset + SLICE_BYTES));
        await request.rateLimiter?.take(slice.length, signal);
        // A server may answer early (413, 409) without reading the body: stop writing then.
        if (settled || responded || req.destroyed) return false;
        const last = offset + SLICE_BYTES >= bytes.length;
        const flushed = req.write(slice, (error) => {
          if (error != null) return;
          moved();
          request.onSent?.(slice.length);
          if (last) written?.();
        });
        if (!flushed) {
          await new Promise<void>((resolveWrite) => {
            const done = () => {
              req.off('drain', done);
              req.off('close', done);
              resolveWrite();
            };
            req.on('drain', done);
            req.on('close', done);
          });
        }
      }
      return true;
    };
    const write = async () => {
      const complete =
        body instanceof Uint8Array
          ? await writeAll(Buffer.from(body.buffer, body.byteOffset, body.byteLength))
          : await writeRange(body, buffers, writeAll);
      if (complete && !settled && !req.destroyed) {
        ended = true;
        req.end();
      }
    };
    write().catch((error: unknown) => finish(error));
  });
}

/**
 * Sends a `SourceRange` through `writeAll`, reading the next piece while the last one is written.
 * A buffer goes back to `buffers` once the socket took all of it; one still queued when the request
 * fails is left to the collector.
 */
async function writeRange(
  range: SourceRange,
  buffers: ReadBuffers,
  writeAll: (bytes: Buffer, written: () => void) => Promise<boolean>,
): Promise<boolean> {
  /** Reads the piece at `offset` into a buffer of `buffers`; resolves with the buffer and the piece. */
  const readAt = async (offset: number): Promise<{ buffer: Buffer; piece: Buffer }> => {
    const buffer = buffers.take();
    const piece = buffer.subarray(0, Math.min(READ_BYTES, range.size - offset));
    try {
      await range.readInto(piece, offset);
    } catch (error) {
      buffers.give(buffer);
      throw error;
    }
    return { buffer, piece };
  };
  let next: ReturnType<typeof readAt> | undefined = readAt(0);
  try {
    for (let offset = 0; next !== undefined; ) {
      const { buffer, piece } = await next;
      offset += piece.length;
      next = offset < range.size ? readAt(offset) : undefined;
      if (!(await writeAll(piece, () => buffers.give(buffer)))) return false;
    }
    return true;
  } finally {
    // Stopped early: the read under way finishes on its own; its buffer is reused, its error dropped.
    next?.then(
      ({ buffer }) => buffers.give(buffer),
      () => {},
    );
  }
}
