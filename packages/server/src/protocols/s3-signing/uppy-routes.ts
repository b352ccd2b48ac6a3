/**
 * The signing routes of Uppy's `@uppy/aws-s3` (its Companion contract), so the plugin works
 * against Ferry unchanged with `companionEndpoint: '<ferry origin>'` and `shouldUseMultipart: true`:
 *
 *   POST   /s3/multipart                             {filename, type, metadata} → {key, uploadId, bucket}
 *   GET    /s3/multipart/:uploadId?key=              → [{PartNumber, Size, ETag}] (every ListParts page)
 *   GET    /s3/multipart/:uploadId/batch?key=&partNumbers=1,2,3 → {presignedUrls: {"1": url, …}}
 *   GET    /s3/multipart/:uploadId/:partNumber?key=  → {url, expires}
 *   POST   /s3/multipart/:uploadId/complete?key=     {parts: [{PartNumber, ETag}]} → {location, key, bucket}
 *   DELETE /s3/multipart/:uploadId?key=              → {}
 *   GET    /s3/params, GET /s3/sts                   → 405: see below
 *
 * Every upload made here is a Ferry parts upload (recorded, listed in the feed, served at
 * `/files/:id` once complete, swept when it expires). `key` is the Ferry upload id; `uploadId`
 * is S3's, and both must match. The size is learnt at completion from what S3 holds.
 *
 * Not served: `/s3/params` (single-request uploads by a presigned POST form): Uppy never tells
 * the server such an upload finished, so Ferry could not record or verify it. `/s3/sts` would hand
 * out bucket credentials. Both answer 405 with the reason.
 */
import { UploadError } from '@ferry/protocol';
import { checkCreate, type Grant } from '../../auth/grant.ts';
import type { ServerConfig } from '../../config.ts';
import { jsonResponse } from '../../http/json-response.ts';
import type { HttpRequest, HttpResponse } from '../../http/types.ts';
import type { PartsService } from '../../service/parts-service.ts';
import type { PresignedParts } from '../../service/presigned-parts.ts';
import { NAME_KEY, TYPE_KEY } from '../files/file-info.ts';
import { invalid, readJsonObject } from '../parts/json-body.ts';

/** The prefix the plugin appends to `companionEndpoint`. */
export const UPPY_S3_PATH = '/s3/';

/** Companion accepts 1 MB completion bodies: 10,000 parts with their ETags fit. */
const MAX_COMPLETE_BYTES = 1024 * 1024;

export interface UppyS3Routes {
  /**
   * `grant`: the request's upload token. Its type limits apply at creation; its `maxSize` at
   * completion, where the size is first known (a larger object is removed).
   */
  handle(request: HttpRequest, namespace: string, grant?: Grant): Promise<HttpResponse>;
}

export function createUppyS3Routes(
  presigned: PresignedParts,
  parts: PartsService,
  config: Readonly<ServerConfig>,
): UppyS3Routes {
  const fileUrl = (request: HttpRequest, id: string) => `${request.origin}${config.basePath}${id}`;

  async function create(request: HttpRequest, namespace: string, grant?: Grant): Promise<HttpResponse> {
    const body = await readJsonObject(request, { timeoutMs: config.bodyTimeoutMs });
    const filename = body['filename'];
    if (typeof filename !== 'string' || filename === '' || filename.length > 1024) {
      throw invalid('filename', 'is required (a string of at most 1024 characters)');
    }
    const type = body['type'];
    if (type !== undefined && (typeof type !== 'string' || type.length > 255)) {
      throw invalid('type', 'must be a string');
    }
    const metadata = uppyMetadata(body['metadata'], config.maxMetadataBytes);
    metadata[NAME_KEY] = filename;
    if (typeof type === 'string' && type !== '') metadata[TYPE_KEY] = type;
    checkCreate(grant, { size: null, metadata });
    const record = await presigned.createOpen({ namespace, metadata, allowedTypes: grant?.types });
    // `uploadId` is S3's; openUpload checks it against the record on every later call.
    const uploadId = presigned.uploadIdOf(record.storageKey);
    return jsonResponse(200, { key: record.id, uploadId, bucket: presigned.bucket });
  }

  return {
    async handle(request, namespace, grant) {
      if (!presigned.available) {
        throw new UploadError('ERR_METHOD_NOT_ALLOWED', {
          message: "Uppy's S3 signing routes need S3 storage",
        });
      }
      const rest = request.path.slice(UPPY_S3_PATH.length);
      const segments = rest.split('/').map(decodeSegment);
      const { method } = request;
      const query = new URLSearchParams(request.query);
      if (segments[0] === 'params' || segments[0] === 'sts') {
        throw new UploadError('ERR_METHOD_NOT_ALLOWED', {
          message:
            segments[0] === 'params'
              ? 'single-request S3 uploads are not served: set shouldUseMultipart: true in @uppy/aws-s3'
              : 'Ferry does not hand out S3 credentials: use companionEndpoint signing',
        });
      }
      if (segments[0] !== 'multipart') throw new UploadError('ERR_NOT_FOUND');
      if (segments.length === 1) {
        if (method === 'POST') return create(request, namespace, grant);
        throw new UploadError('ERR_METHOD_NOT_ALLOWED', { headers: { allow: 'POST' } });
      }
      const uploadId = segments[1] ?? '';
      const key = query.get('key') ?? '';
      if (uploadId === '' || key === '') throw invalid('key', 'and the uploadId are required');
      // Every route below reads the record (owner and S3 upload id) before it takes a lock.
      if (grant?.uploadId !== undefined && grant.uploadId !== key) throw new UploadError('ERR_NOT_FOUND');
      if (segments.length === 2) {
        if (method === 'GET') {
          const record = await presigned.openUpload(namespace, key, uploadId);
          const listed = await presigned.listStored(record);
          return jsonResponse(
            200,
            listed.map((part) => ({ PartNumber: part.n, Size: part.size, ETag: part.etag })),
          );
        }
        if (method === 'DELETE') {
          await presigned.openUpload(namespace, key, uploadId);
          await parts.terminate(key, namespace, request.signal);
          return jsonResponse(200, {});
        }
        throw new UploadError('ERR_METHOD_NOT_ALLOWED', { headers: { allow: 'GET, DELETE' } });
      }
      if (segments.length === 3 && segments[2] === 'complete') {
        if (method !== 'POST')
          throw new UploadError('ERR_METHOD_NOT_ALLOWED', { headers: { allow: 'POST' } });
        await presigned.openUpload(namespace, key, uploadId);
        const body = await readJsonObject(request, {
          maxBytes: MAX_COMPLETE_BYTES,
          timeoutMs: config.bodyTimeoutMs,
        });
        const given = completedParts(body['parts']);
        const record = await presigned.completeOpen(key, {
          namespace,
          uploadId,
          parts: given,
          signal: request.signal,
        });
        if (grant?.maxSize !== undefined && (record.size ?? 0) > grant.maxSize) {
          // Uppy never declares a size: the object is measured once S3 has assembled it.
          await parts.terminate(key, namespace, request.signal);
          throw new UploadError('ERR_TOKEN_MAX_SIZE', { details: { maxSize: grant.maxSize } });
        }
        return jsonResponse(200, {
          location: fileUrl(request, record.id),
          key: record.id,
          bucket: presigned.bucket,
        });
      }
      if (segments.length === 3 && segments[2] === 'batch') {
        if (method !== 'GET') throw new UploadError('ERR_METHOD_NOT_ALLOWED', { headers: { allow: 'GET' } });
        const numbers = (query.get('partNumbers') ?? '')
          .split(',')
          .filter((item) => item !== '')
          .map(partNumber);
        if (numbers.length === 0) throw invalid('partNumbers', 'is required');
        const record = await presigned.openUpload(namespace, key, uploadId);
        const signed = await presigned.presignOpen(record, numbers);
        return jsonResponse(200, {
          presignedUrls: Object.fromEntries(signed.map((part) => [String(part.n), part.url])),
        });
      }
      if (segments.length === 3) {
        if (method !== 'GET') throw new UploadError('ERR_METHOD_NOT_ALLOWED', { headers: { allow: 'GET' } });
        const n = partNumber(segments[2] ?? '');
        const record = await presigned.openUpload(namespace, key, uploadId);
        const [signed] = await presigned.presignOpen(record, [n]);
        return jsonResponse(200, { url: signed!.url, expires: config.presignExpirySeconds });
      }
      throw new UploadError('ERR_NOT_FOUND');
    },
  };
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new UploadError('ERR_BAD_REQUEST', { message: 'the path is not valid percent-encoding' });
  }
}

function partNumber(value: string): number {
  if (!/^[1-9][0-9]{0,4}$/.test(value) || Number(value) > 10_000) {
    throw new UploadError('ERR_INVALID_PART_NUMBER', { details: { n: value.slice(0, 16) } });
  }
  return Number(value);
}

/** `parts: [{PartNumber, ETag}]` as Uppy sends it (PartNumber may be a number or a numeric string). */
function completedParts(value: unknown): Array<{ n: number; etag: string }> {
  if (!Array.isArray(value) || value.length === 0 || value.length > 10_000) {
    throw invalid('parts', 'must be a non-empty array of {PartNumber, ETag}');
  }
  return value.map((item) => {
    const part = item as { PartNumber?: unknown; ETag?: unknown } | null;
    if (typeof part !== 'object' || part === null || typeof part.ETag !== 'string') {
      throw invalid('parts', 'items must be {PartNumber, ETag}');
    }
    return { n: partNumber(String(part.PartNumber)), etag: part.ETag };
  });
}

/** Uppy sends every allowed meta field (names, types, sometimes nulls): kept as strings. */
function uppyMetadata(value: unknown, maxBytes: number): Record<string, string> {
  const metadata: Record<string, string> = {};
  if (value === undefined || value === null) return metadata;
  if (typeof value !== 'object' || Array.isArray(value)) throw invalid('metadata', 'must be an object');
  for (const [key, item] of Object.entries(value)) {
    if (key === '' || key.length > 256) throw invalid('metadata', 'keys must have 1 to 256 characters');
    if (item === null || item === undefined) continue;
    metadata[key] = typeof item === 'string' ? item : JSON.stringify(item);
  }
  if (Buffer.byteLength(JSON.stringify(metadata)) > maxBytes) {
    throw new UploadError('ERR_METADATA_TOO_LARGE', { details: { maxBytes } });
  }
  return metadata;
}
