/** Request details both adapters derive the same way: method override, request id, origin. */
import { randomUUID } from 'node:crypto';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const OVERRIDABLE = new Set(['PATCH', 'DELETE', 'HEAD', 'GET', 'PUT']);

/** `X-HTTP-Method-Override` on a POST (for clients and proxies that cannot send PATCH/DELETE). */
export function effectiveMethod(method: string, override: string | undefined): string {
  if (method !== 'POST' || override === undefined) return method;
  const upper = override.trim().toUpperCase();
  return OVERRIDABLE.has(upper) ? upper : method;
}

/** Honours a sane `X-Request-ID` from the client or a proxy; otherwise makes one. */
export function requestIdFrom(header: string | undefined): string {
  return header !== undefined && REQUEST_ID.test(header) ? header : randomUUID();
}

const HOST = /^[A-Za-z0-9.\-:[\]]{1,255}$/;

/**
 * The scheme://host the client used. Forwarding headers are trusted only when configured: behind a
 * TLS-terminating proxy an http Location breaks browsers, and without a proxy they could be forged.
 */
export function originFrom(
  header: (name: string) => string | undefined,
  fallback: { proto: string; host: string },
  trustProxy: boolean,
): string {
  let proto = fallback.proto;
  let host = fallback.host;
  if (trustProxy) {
    const forwarded = header('forwarded');
    if (forwarded !== undefined) {
      const first = forwarded.split(',')[0] ?? '';
      for (const part of first.split(';')) {
        const [key, raw] = part.split('=', 2).map((s) => s.trim());
        const value = raw?.replace(/^"|"$/g, '');
        if (!value) continue;
        if (key?.toLowerCase() === 'proto') proto = value;
        if (key?.toLowerCase() === 'host') host = value;
      }
    } else {
      const xProto = header('x-forwarded-proto')?.split(',')[0]?.trim();
      const xHost = header('x-forwarded-host')?.split(',')[0]?.trim();
      if (xProto) proto = xProto;
      if (xHost) host = xHost;
    }
  }
  if (proto !== 'http' && proto !== 'https') proto = fallback.proto;
  if (!HOST.test(host)) host = fallback.host;
  return `${proto}://${host}`;
}
