/**
 * The node:http `(req, res)` handler — the fast path. It does as little per request as a bare Node
 * server: no URL object, headers read from Node's own lower-cased object, the body handed to the
 * store as the IncomingMessage itself. Works in Express (`app.use(handler)`) and Fastify (raw req/res).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { TLSSocket } from 'node:tls';
import { UploadError } from '@ferry/protocol';
import type { Logger } from 'pino';
import type { Metrics } from '../observability/metrics.ts';
import { errorResponse } from './error-response.ts';
import { clientAddress } from './rate-limit.ts';
import { effectiveMethod, originFrom, requestIdFrom } from './request-context.ts';
import type { Router } from './router.ts';
import type { HttpRequest, HttpResponse } from './types.ts';

export type NodeHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  next?: (error?: unknown) => void,
) => void;

export interface NodeHandlerOptions {
  router: Router;
  metrics: Metrics;
  logger: Logger;
  trustProxy: boolean;
  /** Counts requests in flight (graceful shutdown waits for them). */
  tracker?: { begin(): void; end(): void };
}

export function createNodeHandler(options: NodeHandlerOptions): NodeHandler {
  const { router, metrics, logger, trustProxy, tracker } = options;

  return (req, res, next) => {
    // Express strips its mount path from req.url; originalUrl keeps the full path we route on.
    const rawUrl = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '/';
    const queryAt = rawUrl.indexOf('?');
    const path = queryAt === -1 ? rawUrl : rawUrl.slice(0, queryAt);
    if (next !== undefined && !router.owns(path)) {
      next();
      return;
    }
    const started = performance.now();
    tracker?.begin();
    const headers = req.headers;
    const header = (name: string): string | undefined => {
      const value = headers[name];
      return Array.isArray(value) ? value.join(', ') : value;
    };
    const method = effectiveMethod(req.method ?? 'GET', header('x-http-method-override'));
    // A body parser mounted before Ferry read the body: storing "nothing" and answering 204 would
    // make the client resend the same chunk forever.
    const bodyConsumed = req.readableEnded && Number(header('content-length') ?? 0) > 0;
    let controller: AbortController | undefined;
    const request: HttpRequest = {
      method,
      path,
      query: queryAt === -1 ? '' : rawUrl.slice(queryAt + 1),
      header,
      body: req,
      trailer: (name) => req.trailers[name],
      get signal() {
        if (controller === undefined) {
          const created = new AbortController();
          controller = created;
          const onClose = () => {
            if (!res.writableFinished) created.abort(new UploadError('ERR_BODY_ABORTED'));
          };
          if (res.destroyed) onClose();
          else res.once('close', onClose);
        }
        return controller.signal;
      },
      origin: originFrom(
        header,
        {
          proto: (req.socket as TLSSocket).encrypted ? 'https' : 'http',
          host: header('host') ?? 'localhost',
        },
        trustProxy,
      ),
      requestId: requestIdFrom(header('x-request-id')),
      get clientAddress() {
        return clientAddress(header, req.socket.remoteAddress, trustProxy);
      },
    };

    const handled = bodyConsumed
      ? Promise.resolve(
          errorResponse(new UploadError('ERR_BODY_CONSUMED'), { logger, requestId: request.requestId }),
        )
      : router.handle(request);
    handled.then(
      (response) => send(res, response),
      (error: unknown) => {
        // The router maps every error to a response; reaching here is a bug.
        logger.error({ err: error, requestId: request.requestId }, 'unhandled error');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end('{"error":{"code":"ERR_INTERNAL","message":"internal server error"}}');
      },
    );

    res.once('close', () => {
      tracker?.end();
      const seconds = (performance.now() - started) / 1000;
      const status = res.writableFinished ? res.statusCode : 499;
      metrics.requests.inc({ method, status });
      metrics.requestDuration.observe({ method }, seconds);
      logger.info(
        { requestId: request.requestId, method, path, status, ms: Math.round(seconds * 1000) },
        'request',
      );
    });

    function send(target: ServerResponse, response: HttpResponse): void {
      // An answer before the whole body arrived (a body stopped for being too slow, a refusal before
      // reading): close the connection rather than read the rest, so a trickling client cannot keep
      // the socket.
      if (!req.complete) response.headers.connection = 'close';
      const body = response.body;
      if (body === null || typeof body === 'string' || body instanceof Uint8Array) {
        // An explicit length keeps the connection alive (no chunked terminator, no close on HEAD).
        if (
          response.headers['content-length'] === undefined &&
          response.status !== 204 &&
          response.status !== 304
        ) {
          response.headers['content-length'] = body === null ? '0' : String(Buffer.byteLength(body));
        }
        target.writeHead(response.status, response.headers);
        target.end(body ?? undefined);
        return;
      }
      target.writeHead(response.status, response.headers);
      pipeline(body, target).catch((error: unknown) => {
        logger.debug({ err: error, requestId: request.requestId }, 'response stream ended early');
      });
    }
  };
}
