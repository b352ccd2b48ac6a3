/** A JSON answer of the API: never cached, `extra` headers added. */
import type { HttpResponse } from './types.ts';

export function jsonResponse(
  status: number,
  value: unknown,
  extra: Record<string, string> = {},
): HttpResponse {
  return {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...extra },
    body: JSON.stringify(value),
  };
}
