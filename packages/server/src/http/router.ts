/**
 * Routes a request to its protocol and decorates every response the same way (request id, CORS,
 * `Tus-Resumable` on tus routes). Every error goes through the one `errorResponse` function.
 */
import { isValidUploadId, TUS_VERSION, UploadError } from '@ferry/protocol';
import type { Logger } from 'pino';
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
}

export interface Router {
  /** True when the path belongs to Ferry (a mounted handler passes other paths on). */
  owns(path: string): boolean;
  handle(request: HttpRequest): Promise<HttpResponse>;
}

const NAMESPACE = '';

export function createRouter(options: RouterOptions): Router {
  const { config, service, tus, parts, uppy, feed, site, metrics, logger } = options;
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
    if (path === partsPath || path === bareParts) {
      if (method === 'POST') return parts.create(request, NAMESPACE);
      if (method === 'GET' || method === 'HEAD') return feed.list(request, NAMESPACE);
      throw notAllowed('GET, HEAD, POST');
    }
    const segments = path.slice(partsPath.length).split('/');
    const id = segments[0] ?? '';
    // Upload ids have at least 16 characters, so `events` never names an upload.
    if (segments.length === 1 && id === 'events') {
      if (method === 'GET') return feed.events(request, NAMESPACE);
      throw notAllowed('GET');
    }
    if (!isValidUploadId(id)) throw new UploadError('ERR_INVALID_ID');
    if (segments.length === 1) {
      if (method === 'GET' || method === 'HEAD') return parts.status(request, id, NAMESPACE);
      if (method === 'DELETE') return parts.terminate(request, id, NAMESPACE);
      throw notAllowed('GET, HEAD, DELETE');
    }
    if (segments.length === 3 && segments[1] === 'parts') {
      if (method === 'PUT') return parts.putPart(request, id, segments[2] ?? '', NAMESPACE);
      throw notAllowed('PUT');
    }
    if (segments.length === 2 && segments[1] === 'complete') {
      if (method === 'POST') return parts.complete(request, id, NAMESPACE);
      throw notAllowed('POST');
    }
    if (segments.length === 2 && segments[1] === 'events') {
      if (method === 'GET') return parts.events(request, id, NAMESPACE);
      throw notAllowed('GET');
    }
    if (segments.length === 2 && segments[1] === 'presign') {
      if (method === 'POST') return parts.presign(request, id, NAMESPACE);
      throw notAllowed('POST');
    }
    throw new UploadError('ERR_NOT_FOUND');
  }
  const cors = createCors(config.corsOrigins);

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
    if (uppy !== undefined && path.startsWith(UPPY_S3_PATH)) return uppy.handle(request, NAMESPACE);
    if (path === basePath || path === bareBase) {
      if (method === 'POST') return tus.create(request, NAMESPACE);
      if (method === 'OPTIONS') return tus.options();
      throw new UploadError('ERR_METHOD_NOT_ALLOWED', { headers: { allow: 'POST, OPTIONS' } });
    }
    if (path.startsWith(basePath)) {
      const id = path.slice(basePath.length);
      if (!isValidUploadId(id)) throw new UploadError('ERR_INVALID_ID');
      switch (method) {
        case 'HEAD':
          // tus clients always send Tus-Resumable; a plain HEAD is a download probe.
          return request.header('tus-resumable') !== undefined
            ? tus.head(request, id, NAMESPACE)
            : serveDownload(service, request, id, NAMESPACE);
        case 'GET':
          return serveDownload(service, request, id, NAMESPACE);
        case 'PATCH':
          return tus.patch(request, id, NAMESPACE);
        case 'DELETE':
          return tus.terminate(request, id, NAMESPACE);
        case 'OPTIONS':
          return tus.options();
        default:
          throw new UploadError('ERR_METHOD_NOT_ALLOWED', {
            headers: { allow: 'GET, HEAD, PATCH, DELETE, OPTIONS' },
          });
      }
    }
    if (method === 'GET' || method === 'HEAD') {
      if (path === '/healthz') return json(200, { status: 'ok' });
      if (path === '/readyz')
        return options.isReady() ? json(200, { status: 'ready' }) : json(503, { status: 'not ready' });
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

function json(status: number, value: unknown): HttpResponse {
  return {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' },
    body: JSON.stringify(value),
  };
}
