/**
 * tus 1.0.0 over the UploadService: core (HEAD, PATCH, OPTIONS), creation, creation-with-upload,
 * creation-defer-length, expiration, checksum, checksum-trailer, termination and concatenation.
 * Spec: https://tus.io/protocols/resumable-upload — wire details real clients rely on are noted inline.
 */
import {
  CHECKSUM_ALGORITHMS,
  formatMetadata,
  isValidUploadId,
  parseChecksum,
  parseConcat,
  parseMetadata,
  parseNonNegativeInteger,
  TUS_CONTENT_TYPE,
  TUS_VERSION,
  UploadError,
} from '@ferry/protocol';
import type { Logger } from 'pino';
import { checkCreate, checkSize, type Grant } from '../../auth/grant.ts';
import { toUploadError } from '../../http/error-response.ts';
import type { HttpRequest, HttpResponse } from '../../http/types.ts';
import type { UploadRecord } from '../../meta/meta-store.ts';
import type { AppendInput, UploadService } from '../../service/upload-service.ts';

export interface TusProtocol {
  options(): HttpResponse;
  /** `grant`: the request's upload token, whose size and type limits the new upload must meet. */
  create(request: HttpRequest, namespace: string, grant?: Grant): Promise<HttpResponse>;
  head(request: HttpRequest, id: string, namespace: string): Promise<HttpResponse>;
  /** `grant`: the token's `maxSize` bounds a deferred length and the bytes sent. */
  patch(request: HttpRequest, id: string, namespace: string, grant?: Grant): Promise<HttpResponse>;
  terminate(request: HttpRequest, id: string, namespace: string): Promise<HttpResponse>;
}

/** tus checksum-trailer: `Trailer: Upload-Checksum` announces the checksum after the body. */
function announcesChecksumTrailer(request: HttpRequest): boolean {
  const names = request.header('trailer')?.split(',') ?? [];
  return names.some((name) => name.trim().toLowerCase() === 'upload-checksum');
}

export function createTusProtocol(service: UploadService, logger: Logger): TusProtocol {
  const { config, capabilities } = service;
  const basePath = config.basePath;
  const extensions = [
    'creation',
    'creation-with-upload',
    capabilities.deferrable ? 'creation-defer-length' : undefined,
    config.expirySeconds > 0 ? 'expiration' : undefined,
    capabilities.truncatable ? 'checksum' : undefined,
    capabilities.truncatable ? 'checksum-trailer' : undefined,
    capabilities.terminatable ? 'termination' : undefined,
    capabilities.concatenatable ? 'concatenation' : undefined,
  ]
    .filter((name) => name !== undefined)
    .join(',');

  const uploadUrl = (request: HttpRequest, id: string) => `${request.origin}${basePath}${id}`;

  function baseHeaders(record?: UploadRecord): Record<string, string> {
    const headers: Record<string, string> = { 'tus-resumable': TUS_VERSION };
    if (record && record.state === 'uploading' && record.expiresAt !== null) {
      headers['upload-expires'] = new Date(record.expiresAt).toUTCString();
    }
    return headers;
  }

  /** 201 with `Location` (tus-js-client requires it) and `Upload-Offset` (creation-with-upload). */
  function created(request: HttpRequest, record: UploadRecord): HttpResponse {
    return {
      status: 201,
      headers: {
        ...baseHeaders(record),
        location: uploadUrl(request, record.id),
        'upload-offset': String(record.offset),
      },
      body: null,
    };
  }

  function checkVersion(request: HttpRequest): void {
    const version = request.header('tus-resumable');
    if (version !== TUS_VERSION) {
      throw new UploadError('ERR_UNSUPPORTED_VERSION', {
        headers: { 'tus-version': TUS_VERSION },
        details: { received: version ?? null },
      });
    }
  }

  function contentLength(request: HttpRequest): number | undefined {
    const value = request.header('content-length');
    if (value === undefined) return undefined;
    const parsed = Number(value);
    return Number.isSafeInteger(parsed) && parsed >= 0 ? parsed : undefined;
  }

  /** Accepts absolute URLs (what tus-js-client sends) and relative ones; both must name this endpoint. */
  function partialIdFromUrl(request: HttpRequest, url: string): string {
    let path: string;
    try {
      path = new URL(url, `${request.origin}${basePath}`).pathname;
    } catch {
      throw new UploadError('ERR_INVALID_CONCAT', { details: { url: url.slice(0, 256) } });
    }
    const id = path.startsWith(basePath) ? path.slice(basePath.length) : '';
    if (!isValidUploadId(id))
      throw new UploadError('ERR_CONCAT_PARTIAL_NOT_FOUND', { details: { url: url.slice(0, 256) } });
    return id;
  }

  /**
   * Bytes sent to an upload of deferred length under a token with `maxSize`: only with a
   * Content-Length, which must keep the upload within the limit (a body of unknown length could
   * run past it before anyone counted).
   */
  function checkDeferredBytes(grant: Grant | undefined, offset: number, length: number | undefined): void {
    if (grant?.maxSize === undefined) return;
    if (length === undefined) {
      throw new UploadError('ERR_CONTENT_LENGTH_REQUIRED', {
        message:
          'an upload of deferred length under a token with maxSize needs a Content-Length on each PATCH',
      });
    }
    checkSize(grant, offset + length);
  }

  /** The size a final upload would have; partials that cannot be read are left to `create` to refuse. */
  async function concatenatedSize(partIds: readonly string[], namespace: string): Promise<number> {
    let total = 0;
    for (const partId of partIds) {
      const part = await service.get(partId, namespace).catch(() => undefined);
      total += part?.size ?? 0;
    }
    return total;
  }

  function appendInput(request: HttpRequest, namespace: string, offset: number): AppendInput {
    const input: AppendInput = { namespace, offset, body: request.body, signal: request.signal };
    const checksum = parseChecksum(request.header('upload-checksum'));
    if (checksum) input.checksum = checksum;
    else if (announcesChecksumTrailer(request)) {
      input.checksumTrailer = () => parseChecksum(request.trailer('upload-checksum'));
    }
    const length = contentLength(request);
    if (length !== undefined) input.contentLength = length;
    return input;
  }

  return {
    options() {
      const headers: Record<string, string> = {
        'tus-resumable': TUS_VERSION,
        'tus-version': TUS_VERSION,
        'tus-extension': extensions,
        'tus-max-size': String(config.maxSize),
      };
      if (capabilities.truncatable) headers['tus-checksum-algorithm'] = CHECKSUM_ALGORITHMS.join(',');
      return { status: 204, headers, body: null };
    },

    async create(request, namespace, grant) {
      checkVersion(request);
      const concat = parseConcat(request.header('upload-concat'));
      const metadata = parseMetadata(request.header('upload-metadata'), config.maxMetadataBytes);
      const lengthHeader = request.header('upload-length');
      const deferHeader = request.header('upload-defer-length');
      if (concat?.kind === 'final') {
        // "The Client MUST NOT include the Upload-Length header in the final upload creation."
        if (lengthHeader !== undefined || deferHeader !== undefined) {
          throw new UploadError('ERR_INVALID_CONCAT', {
            message: 'a final upload must not declare its length',
          });
        }
        const partIds = concat.urls.map((url) => partialIdFromUrl(request, url));
        checkCreate(grant, { size: null, metadata });
        if (grant?.maxSize !== undefined) checkSize(grant, await concatenatedSize(partIds, namespace));
        const record = await service.create({
          namespace,
          size: null,
          metadata,
          concat: { kind: 'final', partIds },
          allowedTypes: grant?.types,
        });
        return created(request, record);
      }
      let size: number | null;
      if (deferHeader !== undefined) {
        if (deferHeader.trim() !== '1') throw new UploadError('ERR_INVALID_DEFER_LENGTH');
        if (lengthHeader !== undefined) {
          throw new UploadError('ERR_INVALID_DEFER_LENGTH', {
            message: 'send either Upload-Length or Upload-Defer-Length, not both',
          });
        }
        size = null;
      } else {
        const parsed = parseNonNegativeInteger(lengthHeader, 'ERR_INVALID_LENGTH');
        if (parsed === undefined) throw new UploadError('ERR_LENGTH_REQUIRED');
        size = parsed;
      }
      const withBody = (request.header('content-type') ?? '').split(';')[0]?.trim() === TUS_CONTENT_TYPE;
      // Refuse before creating anything: checksum syntax and a body longer than the upload.
      const firstChunk = withBody ? appendInput(request, namespace, 0) : undefined;
      if (firstChunk?.contentLength !== undefined && size !== null && firstChunk.contentLength > size) {
        throw new UploadError('ERR_EXCEEDS_LENGTH', { details: { size } });
      }
      checkCreate(grant, { size, metadata });
      if (size === null && firstChunk !== undefined) checkDeferredBytes(grant, 0, firstChunk.contentLength);
      let record = await service.create({
        namespace,
        size,
        metadata,
        ...(concat ? { concat } : {}),
        allowedTypes: grant?.types,
      });
      if (firstChunk !== undefined && record.state === 'uploading') {
        try {
          record = await service.append(record.id, firstChunk);
        } catch (error) {
          // The upload exists now: answer with its Location and the offset actually stored, so the
          // client resumes from there instead of losing track of it.
          const known = toUploadError(error);
          // A refused content type deleted the upload: there is nothing to resume.
          if (known === undefined || known.code === 'ERR_TYPE_NOT_ALLOWED') throw error;
          logger.info({ uploadId: record.id, code: known.code }, 'creation-with-upload body incomplete');
          record = await service.get(record.id, namespace);
        }
      }
      return created(request, record);
    },

    async head(request, id, namespace) {
      checkVersion(request);
      let record: UploadRecord;
      try {
        record = await service.status(id, namespace, request.signal);
      } catch (error) {
        // tus clients treat a 5xx on HEAD as "start over from zero": a transient failure must not
        // cost the user their progress, so it is answered as "locked, retry".
        const known = toUploadError(error);
        if (known !== undefined && known.status < 500) throw known;
        logger.warn({ err: error, uploadId: id }, 'HEAD failed transiently');
        throw new UploadError('ERR_STATE_UNAVAILABLE', { cause: error });
      }
      const headers = baseHeaders(record);
      headers['cache-control'] = 'no-store';
      headers['upload-offset'] = String(record.offset);
      if (record.size === null) headers['upload-defer-length'] = '1';
      else headers['upload-length'] = String(record.size);
      if (Object.keys(record.metadata).length > 0)
        headers['upload-metadata'] = formatMetadata(record.metadata);
      if (record.concat?.kind === 'partial') headers['upload-concat'] = 'partial';
      else if (record.concat?.kind === 'final') {
        headers['upload-concat'] =
          `final;${record.concat.partIds.map((part) => uploadUrl(request, part)).join(' ')}`;
      }
      return { status: 200, headers, body: null };
    },

    async patch(request, id, namespace, grant) {
      checkVersion(request);
      const type = (request.header('content-type') ?? '').split(';')[0]?.trim();
      if (type !== TUS_CONTENT_TYPE) throw new UploadError('ERR_INVALID_CONTENT_TYPE');
      const offset = parseNonNegativeInteger(request.header('upload-offset'), 'ERR_INVALID_OFFSET');
      if (offset === undefined)
        throw new UploadError('ERR_INVALID_OFFSET', { message: 'Upload-Offset is required' });
      const input = appendInput(request, namespace, offset);
      const declared = parseNonNegativeInteger(request.header('upload-length'), 'ERR_INVALID_LENGTH');
      if (declared !== undefined) input.declaredSize = declared;
      if (grant?.maxSize !== undefined) {
        if (declared !== undefined) checkSize(grant, declared);
        // An upload of known size was checked at creation; a deferred one is bounded by the bytes sent.
        if (input.contentLength !== undefined) checkSize(grant, offset + input.contentLength);
        else if ((await service.get(id, namespace)).size === null)
          checkDeferredBytes(grant, offset, undefined);
      }
      const record = await service.append(id, input);
      return {
        status: 204,
        headers: { ...baseHeaders(record), 'upload-offset': String(record.offset) },
        body: null,
      };
    },

    async terminate(request, id, namespace) {
      checkVersion(request);
      await service.terminate(id, namespace, request.signal);
      // tus-js-client treats only exactly 204 as a successful termination.
      return { status: 204, headers: { 'tus-resumable': TUS_VERSION }, body: null };
    },
  };
}
