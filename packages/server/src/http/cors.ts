/**
 * CORS for browser clients on other origins. The allow list covers every tus request header plus
 * what apps add (Authorization, X-Request-ID); the expose list covers every header a tus client or
 * a download reads — tus-js-client fails without `Location` and `Upload-Offset` exposed — and the
 * `WWW-Authenticate` challenge of a 401.
 */

export const ALLOWED_METHODS = 'POST, GET, HEAD, PATCH, PUT, DELETE, OPTIONS';

export const ALLOWED_HEADERS = [
  'Authorization',
  'Content-Type',
  'Content-Digest',
  'Want-Content-Digest',
  'Origin',
  'X-Requested-With',
  'X-Request-ID',
  'X-HTTP-Method-Override',
  'Tus-Resumable',
  'Upload-Length',
  'Upload-Defer-Length',
  'Upload-Metadata',
  'Upload-Offset',
  'Upload-Concat',
  'Upload-Checksum',
  'Range',
  'If-Range',
  'If-None-Match',
].join(', ');

export const EXPOSED_HEADERS = [
  'Location',
  'Upload-Offset',
  'Upload-Length',
  'Upload-Defer-Length',
  'Upload-Expires',
  'Upload-Metadata',
  'Upload-Concat',
  'Tus-Resumable',
  'Tus-Version',
  'Tus-Extension',
  'Tus-Max-Size',
  'Tus-Checksum-Algorithm',
  'X-Request-ID',
  'Content-Length',
  'Content-Range',
  'Content-Disposition',
  'Accept-Ranges',
  'ETag',
  'Last-Modified',
  'Repr-Digest',
  'WWW-Authenticate',
].join(', ');

/** `credentials`: allow credentialed requests; only with an exact origin list (checked by the config). */
export function createCors(allowedOrigins: readonly string[], credentials = false) {
  const any = allowedOrigins.includes('*');
  if (credentials && any) throw new TypeError('createCors: credentials need an exact origin list, not *');
  const withCredentials: Record<string, string> = credentials
    ? { 'access-control-allow-credentials': 'true' }
    : {};
  const allowed = new Set(allowedOrigins);
  return {
    /** Headers for a response to a request from `origin` (none when the origin is not allowed). */
    headers(origin: string | undefined): Record<string, string> | undefined {
      if (origin === undefined || (!any && !allowed.has(origin))) return undefined;
      // Echo the origin rather than "*" so an app that adds credentials later keeps working.
      return {
        'access-control-allow-origin': origin,
        'access-control-expose-headers': EXPOSED_HEADERS,
        ...withCredentials,
        vary: 'Origin',
      };
    },
    /** Extra headers for a preflight request. */
    preflight(origin: string | undefined): Record<string, string> | undefined {
      if (origin === undefined || (!any && !allowed.has(origin))) return undefined;
      return {
        'access-control-allow-origin': origin,
        'access-control-allow-methods': ALLOWED_METHODS,
        'access-control-allow-headers': ALLOWED_HEADERS,
        'access-control-max-age': '86400',
        ...withCredentials,
        vary: 'Origin',
      };
    },
  };
}

export type Cors = ReturnType<typeof createCors>;
