/**
 * The fetch-style adapter: `(Request) => Promise<Response>` for Next.js App Router route handlers,
 * Hono, Bun/Deno-style servers. Same router as the node:http path; only the edges differ.
 */
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import type { Logger } from 'pino';
import type { Metrics } from '../observability/metrics.ts';
import { clientAddress } from './rate-limit.ts';
import { effectiveMethod, originFrom, requestIdFrom } from './request-context.ts';
import type { Router } from './router.ts';
import type { HttpRequest } from './types.ts';

/**
 * `info.clientAddress`: the peer's address, when the host framework tells it (the fetch API does
 * not); the per-address rate limit needs it or trusted forwarding headers.
 */
export type FetchHandler = (request: Request, info?: { clientAddress?: string }) => Promise<Response>;

export interface FetchHandlerOptions {
  router: Router;
  metrics: Metrics;
  logger: Logger;
  trustProxy: boolean;
  /** Counts requests in flight (graceful shutdown waits for them). */
  tracker?: { begin(): void; end(): void };
}

const EMPTY: AsyncIterable<Uint8Array> = { async *[Symbol.asyncIterator]() {} };

export function createFetchHandler(options: FetchHandlerOptions): FetchHandler {
  const { router, metrics, logger, trustProxy, tracker } = options;
  return async (incoming, info) => {
    const started = performance.now();
    const url = new URL(incoming.url);
    const header = (name: string) => incoming.headers.get(name) ?? undefined;
    const method = effectiveMethod(incoming.method.toUpperCase(), header('x-http-method-override'));
    const request: HttpRequest = {
      method,
      path: url.pathname,
      query: url.search.slice(1),
      header,
      // The fetch API exposes no request trailers.
      trailer: () => undefined,
      body: incoming.body ? Readable.fromWeb(incoming.body as NodeReadableStream<Uint8Array>) : EMPTY,
      signal: incoming.signal,
      origin: originFrom(header, { proto: url.protocol.slice(0, -1), host: url.host }, trustProxy),
      requestId: requestIdFrom(header('x-request-id')),
      clientAddress: clientAddress(header, info?.clientAddress, trustProxy),
    };
    tracker?.begin();
    let response: Awaited<ReturnType<Router['handle']>>;
    try {
      response = await router.handle(request);
    } finally {
      tracker?.end();
    }
    const seconds = (performance.now() - started) / 1000;
    metrics.requests.inc({ method, status: response.status });
    metrics.requestDuration.observe({ method }, seconds);
    logger.info(
      { requestId: request.requestId, method, path: request.path, status: response.status },
      'request',
    );
    const body = response.body;
    const init: ResponseInit = { status: response.status, headers: response.headers };
    // A Response may not carry a body with these statuses.
    if (body === null || method === 'HEAD' || response.status === 204 || response.status === 304) {
      if (body instanceof Readable) body.destroy();
      return new Response(null, init);
    }
    if (body instanceof Readable)
      return new Response(Readable.toWeb(body) as ReadableStream<Uint8Array>, init);
    return new Response(body as BodyInit, init);
  };
}
