/**
 * Parts sent straight to S3 (protocol `s3-presigned`): the Ferry server presigns UploadPart URLs
 * in batches, each part is `PUT` to the bucket with only the headers the server named (never the
 * app's `Authorization`: the bucket must not see Ferry credentials), and the `ETag` the bucket
 * answers is reported to the server, which checks it with ListParts before recording the part.
 *
 * URLs are asked for in batches of the parts that will be sent next, and kept until they expire;
 * a URL the bucket refuses (403: expired, clock skew, revoked) is dropped and the part is sent
 * again with a new one, through the part's ordinary retry budget.
 */
import { PART_REPORT_CONTENT_TYPE, type PresignedPartsReply } from '@ferry/protocol';
import { ClientError } from './errors.ts';
import type { HttpResponse, RequestBody } from './seams.ts';
import { isSuccess, parseJson, responseError, send, type TransportContext } from './transport.ts';

/** Part URLs asked for per presign request (the server allows up to 100). */
export const PRESIGN_BATCH = 16;
/** A URL with a lifetime of at least a minute is renewed once this close to its expiry, in ms. */
const RENEW_MARGIN_MS = 15_000;

interface PartUrl {
  url: string;
  headers: Record<string, string>;
  /** Epoch ms after which it is renewed before use. */
  renewAt: number;
}

/** The presigned URLs of one upload, asked for in batches, one request per batch. */
export class PresignedUrls {
  readonly #context: TransportContext;
  readonly #uploadUrl: string;
  readonly #order: () => readonly number[];
  readonly #urls = new Map<number, PartUrl>();
  readonly #pending = new Map<number, Promise<void>>();

  /** `order`: the parts still to send, in the order they will go (batches follow it). */
  constructor(context: TransportContext, uploadUrl: string, order: () => readonly number[]) {
    this.#context = context;
    this.#uploadUrl = uploadUrl;
    this.#order = order;
  }

  async get(n: number, signal: AbortSignal): Promise<PartUrl> {
    const cached = this.#urls.get(n);
    if (cached !== undefined && Date.now() < cached.renewAt) return cached;
    let pending = this.#pending.get(n);
    if (pending === undefined) {
      const batch = this.#batchFrom(n);
      pending = this.#fetch(batch, signal).finally(() => {
        for (const m of batch) this.#pending.delete(m);
      });
      for (const m of batch) this.#pending.set(m, pending);
    }
    await pending;
    const fresh = this.#urls.get(n);
    if (fresh === undefined)
      throw new ClientError('ERR_PROTOCOL', { message: `presign: no URL for part ${n}` });
    return fresh;
  }

  /** The bucket refused `url`: never use it again. */
  drop(n: number, url: string): void {
    if (this.#urls.get(n)?.url === url) this.#urls.delete(n);
  }

  #batchFrom(n: number): number[] {
    const now = Date.now();
    const usable = (m: number) => {
      const known = this.#urls.get(m);
      return known !== undefined && now < known.renewAt;
    };
    const order = this.#order();
    const batch = [n];
    for (let i = Math.max(0, order.indexOf(n) + 1); i < order.length && batch.length < PRESIGN_BATCH; i++) {
      const m = order[i]!;
      if (m !== n && !usable(m) && !this.#pending.has(m)) batch.push(m);
    }
    return batch;
  }

  async #fetch(batch: number[], signal: AbortSignal): Promise<void> {
    const answer = await send(this.#context, {
      method: 'POST',
      url: `${this.#uploadUrl}/presign`,
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: new TextEncoder().encode(JSON.stringify({ parts: batch })),
      signal,
    });
    if (!isSuccess(answer)) throw responseError(answer, 'presign');
    const body = parseJson(answer) as PresignedPartsReply | undefined;
    if (!Array.isArray(body?.parts)) throw new ClientError('ERR_PROTOCOL', { message: 'presign: no parts' });
    const now = Date.now();
    for (const part of body.parts) {
      if (typeof part?.url !== 'string' || !Number.isSafeInteger(part.n)) continue;
      const expiresAt = Date.parse(part.expiresAt);
      const lifetime = Number.isNaN(expiresAt) ? 0 : expiresAt - now;
      // Short-lived URLs (tests, tight policies) are used as they are; the bucket's 403 renews them.
      const renewAt = lifetime >= 60_000 ? expiresAt - RENEW_MARGIN_MS : Number.POSITIVE_INFINITY;
      this.#urls.set(part.n, { url: part.url, headers: part.headers ?? {}, renewAt });
    }
  }
}

/**
 * Sends part `n`'s bytes to the bucket and reports the ETag: one attempt (the caller retries).
 * Throws `ERR_PRESIGNED_URL_REFUSED` (retryable) when the bucket refuses the URL.
 */
export async function sendPartDirect(
  context: TransportContext,
  urls: PresignedUrls,
  uploadUrl: string,
  n: number,
  body: RequestBody,
  length: number,
  onSent: (bytes: number) => void,
  signal: AbortSignal,
): Promise<void> {
  const target = await urls.get(n, signal);
  // No context headers: the bucket gets only what the presigned URL needs.
  const answer: HttpResponse = await context.http.request({
    method: 'PUT',
    url: target.url,
    headers: { ...target.headers },
    body,
    onSent,
    signal,
    stallTimeoutMs: context.stallTimeoutMs,
    timeoutMs: 0,
    ...(context.rateLimiter !== undefined ? { rateLimiter: context.rateLimiter } : {}),
  });
  if (answer.status === 403) {
    urls.drop(n, target.url);
    throw new ClientError('ERR_PRESIGNED_URL_REFUSED', {
      message: `part ${n}: the bucket refused the presigned URL (${bucketError(answer)}); asking for a new one`,
    });
  }
  if (!isSuccess(answer)) {
    const error = responseError(answer, `part ${n} (bucket)`);
    if (answer.status === 400) urls.drop(n, target.url);
    throw error;
  }
  const etag = answer.headers['etag'];
  if (etag === undefined || etag === '') {
    throw new ClientError('ERR_PROTOCOL', {
      message: `part ${n}: the bucket answered without an ETag header; its CORS rule must expose ETag`,
    });
  }
  const reported = await send(context, {
    method: 'PUT',
    url: `${uploadUrl}/parts/${n}`,
    headers: { 'content-type': PART_REPORT_CONTENT_TYPE, accept: 'application/json' },
    body: new TextEncoder().encode(JSON.stringify({ etag, size: length })),
    signal,
  });
  // A 409 ERR_PART_NOT_STORED (S3 does not list the part as sent) is retried: the part goes again.
  if (!isSuccess(reported)) throw responseError(reported, `part ${n} (report)`);
}

/** S3's error `Code` from an XML error body, for messages. */
function bucketError(answer: HttpResponse): string {
  const code = /<Code>([^<]{1,64})<\/Code>/.exec(answer.body)?.[1];
  return code ?? `status ${answer.status}`;
}
