/**
 * Webhook requests: how Ferry signs and sends them, and how a receiver verifies them.
 *
 * Every request is a `POST` of a JSON body with these headers:
 *   Ferry-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the hook secret>
 *   Ferry-Event-Id: the event's id (the same on every attempt; de-duplicate on it)
 *   Ferry-Event-Type: pre-create | created | finished | terminated | expired | rejected
 *   Ferry-Delivery-Attempt: 1, 2, … (outbox events)
 * The timestamp is signed with the body, so a receiver that refuses timestamps older than its
 * replay window (`verifyWebhook`'s `toleranceSeconds`, default 300) cannot be fed an old request
 * again. Each retry is signed anew with its own timestamp.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'ferry-signature';
export const EVENT_ID_HEADER = 'ferry-event-id';
export const EVENT_TYPE_HEADER = 'ferry-event-type';
export const ATTEMPT_HEADER = 'ferry-delivery-attempt';

/** The receiver's default replay window, in seconds. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

/** Largest response body read from a receiver (a pre-create answer), in bytes. */
const MAX_ANSWER_BYTES = 64 * 1024;

/** `t=<seconds>,v1=<hex>` for `body` sent at `timestampSeconds`. */
export function signWebhook(secret: string, body: string, timestampSeconds: number): string {
  const t = Math.floor(timestampSeconds);
  return `t=${t},v1=${hmacHex(secret, t, body)}`;
}

function hmacHex(secret: string, t: number, body: string | Uint8Array): string {
  return createHmac('sha256', secret).update(`${t}.`).update(body).digest('hex');
}

export interface VerifyWebhookOptions {
  /** The hook secret Ferry signs with (`hookSecret`). */
  secret: string;
  /** The `Ferry-Signature` header as received. */
  signature: string | null | undefined;
  /** The request body exactly as received (bytes or the text it decodes to). */
  body: string | Uint8Array;
  /** Oldest (and furthest in the future) timestamp accepted, in seconds from now. Default 300. */
  toleranceSeconds?: number;
  /** The clock, epoch ms. Default `Date.now`. */
  now?: () => number;
}

/**
 * True when `signature` is Ferry's signature of `body` under `secret`, made within the replay
 * window. Compares in constant time. For receivers (Node); other languages: compute
 * HMAC-SHA256(secret, t + "." + body) in hex and compare it with `v1`.
 */
export function verifyWebhook(options: VerifyWebhookOptions): boolean {
  const { secret, signature, body, toleranceSeconds = DEFAULT_TOLERANCE_SECONDS, now = Date.now } = options;
  if (typeof signature !== 'string' || secret === '') return false;
  let t: number | undefined;
  const candidates: string[] = [];
  for (const piece of signature.split(',')) {
    const [key, value] = piece.trim().split('=', 2);
    if (key === 't' && value !== undefined && /^\d{1,12}$/.test(value)) t = Number(value);
    else if (key === 'v1' && value !== undefined && /^[0-9a-f]{64}$/.test(value)) candidates.push(value);
  }
  if (t === undefined || candidates.length === 0) return false;
  if (Math.abs(now() / 1000 - t) > toleranceSeconds) return false;
  const expected = Buffer.from(hmacHex(secret, t, body), 'hex');
  return candidates.some((candidate) => timingSafeEqual(Buffer.from(candidate, 'hex'), expected));
}

export interface WebhookRequest {
  url: string;
  secret: string;
  eventId: string;
  type: string;
  /** The JSON text to send. */
  body: string;
  /** Outbox events: which attempt this is (1 for the first). */
  attempt?: number;
  timeoutMs: number;
  /** The clock, epoch ms. */
  now: () => number;
}

export type WebhookAnswer =
  | { answered: true; ok: boolean; status: number; body: string }
  /** No answer: refused connection, timeout, redirect, reset. */
  | { answered: false; ok: false; error: string };

/** Sends one signed webhook request; never throws. A redirect is not followed (it is a failure). */
export async function sendWebhook(request: WebhookRequest): Promise<WebhookAnswer> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': 'ferry-webhook',
    [SIGNATURE_HEADER]: signWebhook(request.secret, request.body, request.now() / 1000),
    [EVENT_ID_HEADER]: request.eventId,
    [EVENT_TYPE_HEADER]: request.type,
  };
  if (request.attempt !== undefined) headers[ATTEMPT_HEADER] = String(request.attempt);
  const signal = AbortSignal.timeout(request.timeoutMs);
  try {
    const response = await fetch(request.url, {
      method: 'POST',
      headers,
      body: request.body,
      redirect: 'manual',
      signal,
    });
    const body = await readLimited(response);
    if (response.status >= 300 && response.status < 400) {
      return {
        answered: false,
        ok: false,
        error: `redirected (${response.status}); redirects are not followed`,
      };
    }
    return { answered: true, ok: response.ok, status: response.status, body };
  } catch (error) {
    const reason = signal.aborted ? `no answer within ${request.timeoutMs} ms` : describeFetchError(error);
    return { answered: false, ok: false, error: reason };
  }
}

async function readLimited(response: Response): Promise<string> {
  if (response.body === null) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
      if (size >= MAX_ANSWER_BYTES) {
        await reader.cancel();
        break;
      }
    }
  } catch {
    // A body cut short: what arrived is enough to decide.
  }
  return Buffer.concat(chunks).subarray(0, MAX_ANSWER_BYTES).toString('utf8');
}

function describeFetchError(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause as { code?: string; message?: string } | undefined;
    if (cause?.code) return `${error.message}: ${cause.code}`;
    if (cause?.message) return `${error.message}: ${cause.message}`;
    return error.message;
  }
  return String(error);
}
