/**
 * Reads and checks the JSON bodies of the parts API. Bodies are small (64 KiB at most) and strict:
 * an unknown field is refused rather than ignored, so a misspelt `sha256` never silently turns
 * verification off.
 */
import { UploadError } from '@ferry/protocol';
import type { HttpRequest } from '../../http/types.ts';
import type { ByteSource } from '../../stores/data-store.ts';

/** Largest JSON request body, in bytes. */
export const MAX_JSON_BYTES = 64 * 1024;

export type JsonObject = Record<string, unknown>;

export interface JsonBodyOptions {
  /** The media type the body must declare. Default `application/json`. */
  mediaType?: string;
  /** Largest body, in bytes. Default `MAX_JSON_BYTES`. */
  maxBytes?: number;
  /**
   * The whole body must have arrived this many ms after reading starts, or the request is answered
   * `408 ERR_REQUEST_TIMEOUT` (and its connection closed). 0 or absent = no deadline.
   */
  timeoutMs?: number;
}

/**
 * The body as a JSON object; an empty body is `{}`.
 *
 * A JSON body is small, so it gets one deadline for all of it rather than the idle timer of an
 * upload body: a client that sends a byte every few seconds would keep an idle timer from ever
 * firing and hold the socket (slowloris) for as long as 64 KiB takes at that pace.
 */
export async function readJsonObject(
  request: HttpRequest,
  options: JsonBodyOptions = {},
): Promise<JsonObject> {
  const { mediaType = 'application/json', maxBytes = MAX_JSON_BYTES, timeoutMs = 0 } = options;
  const declared = request.header('content-length');
  if (declared !== undefined && Number(declared) > maxBytes) {
    throw new UploadError('ERR_JSON_TOO_LARGE', { details: { maxBytes } });
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of withDeadline(request.body, timeoutMs)) {
    total += chunk.length;
    if (total > maxBytes) {
      throw new UploadError('ERR_JSON_TOO_LARGE', { details: { maxBytes } });
    }
    chunks.push(chunk);
  }
  if (total === 0) return {};
  const type = request.header('content-type')?.split(';')[0]?.trim().toLowerCase();
  if (type !== mediaType) {
    throw new UploadError('ERR_UNSUPPORTED_MEDIA_TYPE', { message: `the request body must be ${mediaType}` });
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks, total).toString('utf8'));
  } catch (error) {
    throw new UploadError('ERR_INVALID_JSON', {
      message: 'the request body is not valid JSON',
      cause: error,
    });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new UploadError('ERR_INVALID_JSON');
  return value as JsonObject;
}

/**
 * The chunks of `body` until `timeoutMs` after the first is asked for; then `ERR_REQUEST_TIMEOUT`.
 * The read left waiting is not cancelled: the answer closes the connection, which ends it.
 */
async function* withDeadline(body: ByteSource, timeoutMs: number): AsyncGenerator<Uint8Array> {
  if (timeoutMs <= 0) {
    yield* body as AsyncIterable<Uint8Array>;
    return;
  }
  const iterator = (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new UploadError('ERR_REQUEST_TIMEOUT', {
            message: `the JSON request body did not arrive within ${timeoutMs} ms`,
            details: { timeoutMs },
          }),
        ),
      timeoutMs,
    );
  });
  try {
    for (;;) {
      const next = iterator.next();
      // The losing read settles when the connection closes; nobody waits for it then.
      next.catch(() => {});
      const step = await Promise.race([next, expired]);
      if (step.done === true) return;
      yield step.value;
    }
  } finally {
    clearTimeout(timer);
  }
}

/** Refuses fields outside `allowed`. */
export function onlyFields(body: JsonObject, allowed: readonly string[]): void {
  for (const field of Object.keys(body)) {
    if (!allowed.includes(field)) {
      throw new UploadError('ERR_UNKNOWN_FIELD', {
        message: `unknown field "${field.slice(0, 64)}"; allowed: ${allowed.join(', ')}`,
        details: { field: field.slice(0, 64) },
      });
    }
  }
}

export function invalid(field: string, reason: string): UploadError {
  return new UploadError('ERR_INVALID_FIELD', { message: `"${field}" ${reason}`, details: { field } });
}

export function optionalString(body: JsonObject, field: string, maxLength: number): string | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw invalid(field, 'must be a string');
  if (value.length > maxLength) throw invalid(field, `must be at most ${maxLength} characters`);
  return value;
}

export function nonNegativeInteger(body: JsonObject, field: string, required: boolean): number | undefined {
  const value = body[field];
  if (value === undefined || value === null) {
    if (required) throw invalid(field, 'is required');
    return undefined;
  }
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw invalid(field, 'must be a non-negative integer');
  }
  return value;
}

const SHA256_HEX = /^[0-9a-fA-F]{64}$/;

/** A whole-file SHA-256 in hex (either case), returned lower-case. */
export function optionalSha256(body: JsonObject, field: string): string | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || !SHA256_HEX.test(value)) throw invalid(field, 'must be 64 hex digits');
  return value.toLowerCase();
}

/** `metadata`: an object of string values, at most `maxBytes` of JSON. */
export function optionalMetadata(body: JsonObject, field: string, maxBytes: number): Record<string, string> {
  const value = body[field];
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw invalid(field, 'must be an object of strings');
  const metadata: Record<string, string> = {};
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== 'string') throw invalid(field, `value of "${key.slice(0, 64)}" must be a string`);
    if (key === '' || key.length > 256) throw invalid(field, 'keys must have 1 to 256 characters');
    metadata[key] = item;
  }
  if (Buffer.byteLength(JSON.stringify(metadata)) > maxBytes) {
    throw new UploadError('ERR_METADATA_TOO_LARGE', { details: { maxBytes } });
  }
  return metadata;
}
