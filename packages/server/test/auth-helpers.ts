/**
 * Helpers of the upload-token tests: a server with an auth secret, tokens minted the supported
 * way, and hand-made JWTs for the attacks (other algorithms, tampered parts, malformed claims).
 */
import { createHmac, generateKeyPairSync, sign } from 'node:crypto';
import { mintUploadToken, type UploadTokenOptions } from '../src/auth/upload-token.ts';
import { createUpload, type Reply, send, TUS } from './tus-helpers.ts';

export const SECRET = 'test-secret-of-the-auth-tests-0123456789';

/** A token for `subject` signed with SECRET, valid for a minute unless told otherwise. */
export function tokenFor(
  subject: string,
  extra: Partial<Omit<UploadTokenOptions, 'secret' | 'subject'>> = {},
): Promise<string> {
  return mintUploadToken({ secret: SECRET, subject, ttlSeconds: 60, ...extra });
}

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

const b64url = (value: unknown) =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** A JWT with any header and payload, signed by `signer` over `header.payload` (or unsigned). */
export function rawJwt(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  signer?: (input: string) => Buffer,
): string {
  const input = `${b64url(header)}.${b64url(payload)}`;
  return `${input}.${signer === undefined ? '' : signer(input).toString('base64url')}`;
}

export const hmacWith =
  (secret: string, hash = 'sha256') =>
  (input: string) =>
    createHmac(hash, secret).update(input).digest();

/** Signs with a fresh RSA key (RS256): a real signature, by a key the server never trusted. */
export function rs256(input: string): Buffer {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return sign('sha256', Buffer.from(input), privateKey);
}

export function claims(subject: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  return { sub: subject, iat: now, exp: now + 60, ...extra };
}

/** Creates a tus upload of `length` bytes as the token's owner; returns its Location. */
export function createAs(
  endpoint: string,
  token: string,
  length: number,
  headers: Record<string, string> = {},
): Promise<string> {
  return createUpload(endpoint, length, { ...bearer(token), ...headers });
}

/** PATCHes `body` at `offset` as the token's owner. */
export function patchAs(
  location: string,
  token: string,
  offset: number,
  body: Buffer | string,
): Promise<Reply> {
  return send(location, {
    method: 'PATCH',
    headers: {
      ...TUS,
      ...bearer(token),
      'content-type': 'application/offset+octet-stream',
      'upload-offset': String(offset),
    },
    body,
  });
}

/** A parts-API JSON request as the token's owner. */
export function jsonAs(
  url: string,
  token: string | undefined,
  method: string,
  body?: unknown,
): Promise<Reply> {
  return send(url, {
    method,
    headers: {
      ...(token === undefined ? {} : bearer(token)),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}
