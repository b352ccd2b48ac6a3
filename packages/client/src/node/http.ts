/**
 * The Node HTTP seam on node:http / node:https. Not fetch: fetch reports no upload progress and
 * cannot apply backpressure per write. Bodies are written in slices; a slice counts as sent when
 * Node handed it to the socket, which drives honest progress, the rate limit and stall detection
 * (no byte moved either way for `stallTimeoutMs` → the request is destroyed with `ERR_STALLED`).
 * Connections are kept alive and reused across requests.
 */
import http from 'node:http';
import https from 'node:https';
import { ClientError } from '../core/errors.ts';
import { type HttpClient, type HttpRequest, type HttpResponse, requestGaveUp } from '../core/seams.ts';

/** Bytes per write: small enough for smooth progress and rate limiting, large enough to be cheap. */
const SLICE_BYTES = 256 * 1024;

export interface NodeHttpOptions {
  /** Most connections per host. Default 16. */
  maxSockets?: number;
}

export function createNodeHttpClient(options: NodeHttpOptions = {}): HttpClient {
  const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? 16, scheduling: 'lifo' as const };
  const agents = { http: new http.Agent(agentOptions), https: new https.Agent(agentOptions) };

  return {
    async request(request) {
      // This seam does not declare `sendsBlobs`, so bodies come as bytes; a `Blob` is read whole.
      if (request.body instanceof Blob) {
        request = { ...request, body: new Uint8Array(await request.body.arrayBuffer()) };
      }
      return send(
        request,
        request.url.startsWith('https:') ? https : http,
        request.url.startsWith('https:') ? agents.https : agents.http,
      );
    },
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
): Promise<HttpResponse> {
  return new Promise<HttpResponse>((resolve, reject) => {
    const { signal } = request;
    const body = request.body as Uint8Array | undefined;
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const headers: Record<string, string> = { ...request.headers };
    if (body !== undefined) headers['content-length'] = String(body.length);
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

    if (body === undefined || body.length === 0) {
      ended = true;
      req.end();
      return;
    }
    const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    const write = async () => {
      for (let offset = 0; offset < bytes.length; offset += SLICE_BYTES) {
        const slice = bytes.subarray(offset, Math.min(bytes.length, offset + SLICE_BYTES));
        await request.rateLimiter?.take(slice.length, signal);
        // A server may answer early (413, 409) without reading the body: stop writing then.
        if (settled || responded || req.destroyed) return;
        const flushed = req.write(slice, (error) => {
          if (error != null) return;
          moved();
          request.onSent?.(slice.length);
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
      if (!settled && !req.destroyed) {
        ended = true;
        req.end();
      }
    };
    write().catch((error: unknown) => finish(error));
  });
}
