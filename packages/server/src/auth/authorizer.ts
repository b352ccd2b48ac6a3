/**
 * Authorizes every request of a server started with an auth secret, before any lock is taken or
 * any body is read: the token comes from `Authorization: Bearer <token>`, or — on download GETs
 * only, so a link can be followed by a browser — from `?token=`. Elsewhere a query token is not
 * looked at: URLs end up in logs, histories and Referer headers, and an upload must not leak its
 * owner's token that way.
 */
import { UploadError } from '@ferry/protocol';
import type { HttpRequest } from '../http/types.ts';
import type { Grant } from './grant.ts';
import { createTokenVerifier } from './upload-token.ts';

export interface Authorizer {
  /** The grant of the request's token. Throws `ERR_TOKEN_MISSING`, `ERR_TOKEN_INVALID` or `ERR_TOKEN_EXPIRED`. */
  authorize(request: HttpRequest, options: { allowQueryToken: boolean }): Promise<Grant>;
}

const BEARER = /^Bearer[ \t]+([A-Za-z0-9\-_.~+/]+=*)[ \t]*$/i;

export function createAuthorizer(options: { secret: string; now?: () => number }): Authorizer {
  const verifier = createTokenVerifier(options);
  return {
    async authorize(request, { allowQueryToken }) {
      const header = request.header('authorization');
      let token: string | undefined;
      if (header !== undefined) {
        token = BEARER.exec(header)?.[1];
        if (token === undefined) {
          throw new UploadError('ERR_TOKEN_INVALID', {
            message: 'the Authorization header must be "Bearer <token>"',
            headers: { 'www-authenticate': 'Bearer realm="ferry", error="invalid_request"' },
          });
        }
      } else if (request.query !== '' && request.query.includes('token=')) {
        const fromQuery = new URLSearchParams(request.query).get('token');
        if (fromQuery !== null && !allowQueryToken) {
          throw missing(
            'a token in the query string is accepted on download links only: send Authorization: Bearer <token>',
          );
        }
        token = fromQuery ?? undefined;
      }
      if (token === undefined || token === '') throw missing();
      return verifier.verify(token);
    },
  };
}

function missing(message?: string): UploadError {
  return new UploadError('ERR_TOKEN_MISSING', {
    ...(message === undefined ? {} : { message }),
    headers: { 'www-authenticate': 'Bearer realm="ferry"' },
  });
}
