/**
 * The browser HTTP seam on XMLHttpRequest. Not fetch: fetch reports no upload progress, and
 * Chromium streams request bodies only over HTTP/2. A body may be a `Blob` (a slice of the picked
 * file): the browser reads it as it sends, so a part never passes through the page's memory. `upload.onprogress` drives honest progress
 * (bytes handed to the network) and stall detection (no byte moved either way for
 * `stallTimeoutMs` → the request is aborted with `ERR_STALLED`).
 *
 * A rate limit is applied per request: the whole body's tokens are taken before it is sent, so
 * with `limitRate` chunks should be small next to the rate (the browser sends a body at once).
 * Cross-origin servers must expose their headers (`Access-Control-Expose-Headers`); Ferry does.
 */
import { ClientError } from '../core/errors.ts';
import {
  bodyBytes,
  bodySize,
  type HttpClient,
  type HttpRequest,
  type HttpResponse,
  isSourceRange,
  requestGaveUp,
} from '../core/seams.ts';
import { blobUnreadable } from '../core/sources.ts';

/** Headers a page may not set (the browser sets them itself). */
const FORBIDDEN = new Set(['content-length', 'host', 'connection', 'keep-alive', 'transfer-encoding']);

export function createXhrHttpClient(): HttpClient {
  return {
    async request(request) {
      // Sources in a browser are Blobs, which go out as they are; a `SourceRange` is read whole.
      if (request.body !== undefined && isSourceRange(request.body)) {
        request = { ...request, body: await bodyBytes(request.body) };
      }
      const size = request.body === undefined ? 0 : bodySize(request.body);
      if (size > 0) await request.rateLimiter?.take(size, request.signal);
      return send(request);
    },
    sendsBlobs: true,
    close() {},
  };
}

function parseHeaders(raw: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of raw.trim().split(/[\r\n]+/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return headers;
}

function send(request: HttpRequest): Promise<HttpResponse> {
  return new Promise<HttpResponse>((resolve, reject) => {
    const { signal, body } = request;
    const size = body === undefined ? 0 : bodySize(body);
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const xhr = new XMLHttpRequest();
    xhr.open(request.method, request.url, true);
    xhr.responseType = 'text';
    for (const [name, value] of Object.entries(request.headers)) {
      if (!FORBIDDEN.has(name)) xhr.setRequestHeader(name, value);
    }
    let settled = false;
    let reported = 0;

    const finish = (error: unknown, response?: HttpResponse) => {
      if (settled) return;
      settled = true;
      clearTimeout(stall);
      if (deadline !== undefined) clearTimeout(deadline);
      signal.removeEventListener('abort', onAbort);
      if (error !== undefined) {
        xhr.abort();
        reject(error);
      } else resolve(response as HttpResponse);
    };
    const onAbort = () => finish(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });

    let stall = setTimeout(() => onStall(), request.stallTimeoutMs);
    const onStall = () => finish(requestGaveUp('ERR_STALLED', request));
    const moved = () => {
      clearTimeout(stall);
      stall = setTimeout(onStall, request.stallTimeoutMs);
    };
    const deadline =
      request.timeoutMs > 0
        ? setTimeout(() => {
            finish(requestGaveUp('ERR_TIMEOUT', request));
          }, request.timeoutMs)
        : undefined;

    xhr.upload.onprogress = (event) => {
      moved();
      if (event.loaded > reported) {
        request.onSent?.(event.loaded - reported);
        reported = event.loaded;
      }
    };
    xhr.onprogress = moved;
    xhr.onerror = () => {
      const failed = new ClientError('ERR_NETWORK', {
        message: `${request.method} ${request.url}: the request failed (network error, cut connection or a CORS refusal)`,
      });
      // A file changed or deleted since it was picked fails the request too: say so, not "network".
      if (body instanceof Blob && body.size > 0) {
        body
          .slice(0, 1)
          .arrayBuffer()
          .then(
            () => finish(failed),
            (error: unknown) => finish(blobUnreadable((body as { name?: string }).name, error)),
          );
      } else finish(failed);
    };
    xhr.onload = () => {
      // The last progress event may not have come: a body the server accepted, it received whole.
      const accepted = xhr.status >= 200 && xhr.status < 300;
      if (accepted && size > reported) request.onSent?.(size - reported);
      finish(undefined, {
        status: xhr.status,
        headers: parseHeaders(xhr.getAllResponseHeaders()),
        body: xhr.responseText,
      });
    };
    // XHR copies a view it is given (a subarray of a larger buffer sends only its own bytes), and
    // reads a Blob as it sends it.
    xhr.send(size === 0 ? null : body instanceof Blob ? body : (body as Uint8Array<ArrayBuffer>));
  });
}
