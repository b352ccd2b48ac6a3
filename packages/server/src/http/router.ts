/**
 * Routes a request to its protocol and decorates every response the same way (request id, CORS,
 * `Tus-Resumable` on tus routes). Every error goes through the one `errorResponse` function.
 */
import { isValidUploadId, TUS_VERSION, UploadError } from '@ferry/protocol';
import type { Logger } from 'pino';
import type { Authorizer } from '../auth/authorizer.ts';
import { checkNamespaceWide, type Grant } from '../auth/grant.ts';
import type { ServerConfig } from '../config.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { FeedProtocol } from '../protocols/feed/feed-protocol.ts';
import { serveDownload } from '../protocols/files/download.ts';
import type { PartsProtocol } from '../protocols/parts/parts-protocol.ts';
import { UPPY_S3_PATH, type UppyS3Routes } from '../protocols/s3-signing/uppy-routes.ts';
import type { TusProtocol } from '../protocols/tus/tus-protocol.ts';
import type { UploadService } from '../service/upload-service.ts';
import type { StaticSite } from '../web/static-site.ts';
import { createCors } from './cors.ts';
import { errorResponse } from './error-response.ts';
import { jsonResponse } from './json-response.ts';
import { createRateLimiter, rateLimitKey } from './rate-limit.ts';
import type { HttpRequest, HttpResponse } from './types.ts';

export interface RouterOptions {
  config: Readonly<ServerConfig>;
  service: UploadService;
  tus: TusProtocol;
  parts: PartsProtocol;
  /** Uppy `@uppy/aws-s3` signing routes at `/s3/` (they answer 405 unless the storage is S3). */
  uppy?: UppyS3Routes;
  /** The uploads feed: `GET /uploads` and `GET /uploads/events`. */
  feed: FeedProtocol;
  /** The web app, served at every path the router does not own; none: those paths answer 404. */
  site?: StaticSite;
  metrics: Metrics;
  logger: Logger;
  /** False while starting or shutting down (`/readyz` answers 503). */
  isReady: () => boolean;
  /**
   * Verifies the upload token of every API request. None: auth is off, and every upload lives in
   * the namespace ''.
   */
  authorizer?: Authorizer;
  /** The namespace an upload belongs to, read without a lock (the owner check); needed with `authorizer`. */
  ownerOf?: (id: string) => Promise<string | undefined>;
}

export interface Router {
  /** True when the path belongs to Ferry (a mounted handler passes other paths on). */
  owns(path: string): boolean;
  handle(request: HttpRequest): Promise<HttpResponse>;
}

/** The namespace of every upload while auth is off. */
const OPEN_NAMESPACE = '';

/** Longest delay a timer takes (about 24.8 days); a token that lives longer ends no stream. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export function createRouter(options: RouterOptions): Router {
  const { config, service, tus, parts, uppy, feed, site, metrics, logger, authorizer, ownerOf } = options;
  if (authorizer !== undefined && ownerOf === undefined) {
    throw new TypeError('createRouter: an authorizer needs ownerOf for the owner check');
  }

  /** The request's grant; none while auth is off. Runs before any lock is taken or body read. */
  async function authorize(request: HttpRequest, allowQueryToken = false): Promise<Grant | undefined> {
    return authorizer?.authorize(request, { allowQueryToken });
  }

  const namespaceOf = (grant: Grant | undefined) => grant?.subject ?? OPEN_NAMESPACE;

  const limiter =
    config.rateLimitPerSecond > 0
      ? createRateLimiter({ perSecond: config.rateLimitPerSecond, burst: config.rateLimitBurst })
      : undefined;

  /**
   * The rate limit, taken by requests that start an upload (the other requests of an upload are
   * bounded by the upload itself, so a parallel upload is never limited mid-way). Counted per token
   * subject when auth is on — users behind one NAT are told apart — else per client address; a
   * request whose address is unknown (a fetch adapter without it) is not counted.
   */
  function limitStart(request: HttpRequest, grant: Grant | undefined): void {
    if (limiter === undefined) return;
    const key =
      grant !== undefined
        ? `sub:${grant.subject}`
        : request.clientAddress !== undefined
          ? `ip:${rateLimitKey(request.clientAddress)}`
          : undefined;
    if (key === undefined) return;
    const wait = limiter.take(key);
    if (wait > 0) {
      throw new UploadError('ERR_RATE_LIMITED', {
        headers: { 'retry-after': String(wait) },
        details: { retryAfterSeconds: wait },
      });
    }
  }

  /**
   * Another owner's upload, or one outside a single-upload token's reach, answers 404 — the same as
   * an id that does not exist, so ids cannot be probed. Checked on the record read without a lock,
   * so a stranger's request never asks the owner's writer to yield.
   */
  async function reach(grant: Grant | undefined, id: string): Promise<void> {
    if (grant === undefined) return;
    if (grant.uploadId !== undefined && grant.uploadId !== id) throw new UploadError('ERR_NOT_FOUND');
    if ((await ownerOf?.(id)) !== grant.subject) throw new UploadError('ERR_NOT_FOUND');
  }

  /** An event stream ends when its token expires; the client reconnects with a fresh one. */
  function untilExpiry(request: HttpRequest, grant: Grant | undefined): HttpRequest {
    if (grant === undefined) return request;
    const left = grant.expiresAt - Date.now();
    if (left > MAX_TIMER_MS) return request;
    const signal = AbortSignal.any([request.signal, AbortSignal.timeout(Math.max(0, left))]);
    return Object.create(request, { signal: { value: signal } }) as HttpRequest;
  }
  const basePath = config.basePath;
  const bareBase = basePath.slice(0, -1);
  const partsPath = config.partsPath;
  const bareParts = partsPath.slice(0, -1);

  /**
   * `/uploads` (create; list), `/uploads/events` (the feed), `/uploads/:id`, `/uploads/:id/parts/:n`,
   * `/uploads/:id/complete`, `/uploads/:id/events`.
   */
  async function routeParts(request: HttpRequest): Promise<HttpResponse> {
    const { path, method } = request;
    const notAllowed = (allow: string) => new UploadError('ERR_METHOD_NOT_ALLOWED', { headers: { allow } });
    const grant = await authorize(request);
    const namespace = namespaceOf(grant);
    if (path === partsPath || path === bareParts) {
      if (method === 'POST') {
        limitStart(request, grant);
        return parts.create(request, namespace, grant);
      }
      if (method === 'GET' || method === 'HEAD') {
        checkNamespaceWide(grant);
        return feed.list(request, namespace);
      }
      throw notAllowed('GET, HEAD, POST');
    }
    const segments = path.slice(partsPath.length).split('/');
    const id = segments[0] ?? '';
    // Upload ids have at least 16 characters, so `events` never names an upload.
    if (segments.length === 1 && id === 'events') {
      if (method !== 'GET') throw notAllowed('GET');
      checkNamespaceWide(grant);
      return feed.events(untilExpiry(request, grant), namespace);
    }
    if (!isValidUploadId(id)) throw new UploadError('ERR_INVALID_ID');
    await reach(grant, id);
    if (segments.length === 1) {
      if (method === 'GET' || method === 'HEAD') return parts.status(request, id, namespace);
      if (method === 'DELETE') return parts.terminate(request, id, namespace);
      throw notAllowed('GET, HEAD, DELETE');
    }
    if (segments.length === 3 && segments[1] === 'parts') {
      if (method === 'PUT') return parts.putPart(request, id, segments[2] ?? '', namespace);
      throw notAllowed('PUT');
    }
    if (segments.length === 2 && segments[1] === 'complete') {
      if (method === 'POST') return parts.complete(request, id, namespace);
      throw notAllowed('POST');
    }
    if (segments.length === 2 && segments[1] === 'events') {
      if (method === 'GET') return parts.events(untilExpiry(request, grant), id, namespace);
      throw notAllowed('GET');
    }
    if (segments.length === 2 && segments[1] === 'presign') {
      if (method === 'POST') return parts.presign(request, id, namespace);
      throw notAllowed('POST');
    }
    throw new UploadError('ERR_NOT_FOUND');
  }
  const cors = createCors(config.corsOrigins, config.corsCredentials);

  /** The paths that belong to the API; the web app never answers them. */
  function owns(path: string): boolean {
    return (
      path.startsWith(basePath) ||
      path === bareBase ||
      path.startsWith(partsPath) ||
      path === bareParts ||
      (uppy !== undefined && path.startsWith(UPPY_S3_PATH)) ||
      path === '/healthz' ||
      path === '/readyz' ||
      path === '/metrics'
    );
  }

  async function route(request: HttpRequest): Promise<HttpResponse> {
    const { path, method } = request;
    if (path.startsWith(partsPath) || path === bareParts) return routeParts(request);
    if (uppy !== undefined && path.startsWith(UPPY_S3_PATH)) {
      const grant = await authorize(request);
      if (method === 'POST' && (path === `${UPPY_S3_PATH}multipart` || path === `${UPPY_S3_PATH}multipart/`))
        limitStart(request, grant);
      return uppy.handle(request, namespaceOf(grant), grant);
    }
    if (path === basePath || path === bareBase) {
      const grant = await authorize(request);
      if (method === 'POST') {
        limitStart(request, grant);
        return tus.create(request, namespaceOf(grant), grant);
      }
      if (method === 'OPTIONS') return tus.options();
      throw new UploadError('ERR_METHOD_NOT_ALLOWED', { headers: { allow: 'POST, OPTIONS' } });
    }
    if (path.startsWith(basePath)) {
      // tus clients always send Tus-Resumable; a GET or plain HEAD is a download, which alone may
      // carry its token in the query string (a link a browser follows).
      const download =
        method === 'GET' || (method === 'HEAD' && request.header('tus-resumable') === undefined);
      const grant = await authorize(request, download);
      const namespace = namespaceOf(grant);
      const id = path.slice(basePath.length);
      if (!isValidUploadId(id)) throw new UploadError('ERR_INVALID_ID');
      if (method !== 'OPTIONS') await reach(grant, id);
      if (download) return serveDownload(service, request, id, namespace);
      switch (method) {
        case 'HEAD':
          return tus.head(request, id, namespace);
        case 'PATCH':
          return tus.patch(request, id, namespace, grant);
        case 'DELETE':
          return tus.terminate(request, id, namespace);
        case 'OPTIONS':
          return tus.options();
        default:
          throw new UploadError('ERR_METHOD_NOT_ALLOWED', {
            headers: { allow: 'GET, HEAD, PATCH, DELETE, OPTIONS' },
          });
      }
    }
    if (method === 'GET' || method === 'HEAD') {
      if (path === '/healthz') return jsonResponse(200, { status: 'ok' });
      if (path === '/readyz')
        return options.isReady()
          ? jsonResponse(200, { status: 'ready' })
          : jsonResponse(503, { status: 'not ready' });
      if (path === '/metrics') {
        return {
          status: 200,
          headers: { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' },
          body: await metrics.registry.metrics(),
        };
      }
    }
    if (site !== undefined && !owns(path)) return site.serve(request);
    throw new UploadError('ERR_NOT_FOUND');
  }

  return {
    owns,

    async handle(request) {
      const onTus = request.path.startsWith(bareBase);
      const origin = request.header('origin');
      let response: HttpResponse;
      if (request.method === 'OPTIONS' && request.header('access-control-request-method') !== undefined) {
        // A CORS preflight: answered before any protocol check (browsers send no tus headers here).
        response = { status: 204, headers: { ...cors.preflight(origin) }, body: null };
      } else {
        try {
          response = await route(request);
        } catch (error) {
          response = errorResponse(error, { logger, requestId: request.requestId, tus: onTus });
        }
      }
      const headers = response.headers;
      headers['x-request-id'] = request.requestId;
      if (onTus && headers['tus-resumable'] === undefined) headers['tus-resumable'] = TUS_VERSION;
      const corsHeaders = cors.headers(origin);
      if (corsHeaders) Object.assign(headers, corsHeaders);
      return response;
    },
  };
}
