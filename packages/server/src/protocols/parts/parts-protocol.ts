/**
 * The parts API over HTTP (see docs/parts-api.md):
 *
 *   POST   /uploads                  create (or deduplicate)
 *   GET    /uploads/:id              status: received parts, bytes, state
 *   PUT    /uploads/:id/parts/:n     one part's bytes (Content-Length required, Content-Digest optional;
 *                                    `Want-Content-Digest: sha-256=0` declines the part's digest)
 *   PUT    /uploads/:id/parts/:n     with `Content-Type: application/vnd.ferry.part-report+json`: a part
 *                                    sent straight to S3, reported by its `{etag, size}`
 *   POST   /uploads/:id/presign      presigned UploadPart URLs (S3 storage)
 *   POST   /uploads/:id/complete     finish: every part present, declared SHA-256 verified
 *   DELETE /uploads/:id              abort: the upload and its bytes are gone
 *   GET    /uploads/:id/events       Server-Sent Events: progress, completed, failed
 *
 * JSON in, JSON out; every error is the common `{ "error": { code, message, details? } }` body.
 */
import {
  acceptsSha256Digest,
  type CompletedPartsUpload,
  type CreatedPartsUpload,
  type DeduplicatedUpload,
  formatSha256Digest,
  hexToBytes,
  PART_LIMITS,
  type PartInfo,
  type PartsUploadStatus,
  type PresignedPartsReply,
  parseSha256Digest,
  partCountOf,
  toRanges,
  UploadError,
  type UploadEvent,
} from '@ferry/protocol';
import { checkCreate, type Grant } from '../../auth/grant.ts';
import type { ServerConfig } from '../../config.ts';
import { jsonResponse } from '../../http/json-response.ts';
import type { HttpRequest, HttpResponse } from '../../http/types.ts';
import { NO_PART_SHA256, type PartRecord, type UploadRecord } from '../../meta/meta-store.ts';
import type { PartsService } from '../../service/parts-service.ts';
import type { PresignedParts } from '../../service/presigned-parts.ts';
import type { UploadEventRecord, UploadEvents } from '../../service/upload-events.ts';
import { fileInfo as fileInfoOf, isoTime, NAME_KEY, TYPE_KEY } from '../files/file-info.ts';
import { openEventStream, removedError } from './event-stream.ts';
import {
  nonNegativeInteger,
  onlyFields,
  optionalMetadata,
  optionalSha256,
  optionalString,
  readJsonObject,
} from './json-body.ts';
import { PART_REPORT_TYPE, readPresignRequest, readReport } from './presign-body.ts';

export interface PartsProtocol {
  /** `grant`: the request's upload token, whose size and type limits the new upload must meet. */
  create(request: HttpRequest, namespace: string, grant?: Grant): Promise<HttpResponse>;
  status(request: HttpRequest, id: string, namespace: string): Promise<HttpResponse>;
  putPart(request: HttpRequest, id: string, part: string, namespace: string): Promise<HttpResponse>;
  presign(request: HttpRequest, id: string, namespace: string): Promise<HttpResponse>;
  complete(request: HttpRequest, id: string, namespace: string): Promise<HttpResponse>;
  terminate(request: HttpRequest, id: string, namespace: string): Promise<HttpResponse>;
  events(request: HttpRequest, id: string, namespace: string): Promise<HttpResponse>;
}

const PART_NUMBER = /^[1-9][0-9]{0,4}$/;

export function createPartsProtocol(
  service: PartsService,
  events: UploadEvents,
  config: Readonly<ServerConfig>,
  closing?: AbortSignal,
  presigned?: PresignedParts,
): PartsProtocol {
  const uploadUrl = (request: HttpRequest, id: string) => `${request.origin}${config.partsPath}${id}`;
  // JSON bodies are small: all of one must arrive within the idle time allowed to an upload body.
  const json = { timeoutMs: config.bodyTimeoutMs };
  const fileInfo = (request: HttpRequest, record: UploadRecord) => fileInfoOf(request.origin, config, record);

  function partInfo(part: PartRecord): PartInfo {
    // A part that went straight to S3, or whose client declined the digest, has none the server computed.
    if (part.sha256 === NO_PART_SHA256) return { n: part.n, size: part.size };
    return { n: part.n, size: part.size, digest: formatSha256Digest(hexToBytes(part.sha256)) };
  }

  function statusBody(request: HttpRequest, record: UploadRecord, parts: PartRecord[]): PartsUploadStatus {
    const size = record.size ?? 0;
    const partSize = record.partSize ?? size;
    const partCount = partCountOf(size, partSize);
    const finished = record.state === 'finished';
    const received = finished ? [[1, partCount] as [number, number]] : toRanges(parts.map((part) => part.n));
    const body: PartsUploadStatus = {
      id: record.id,
      size,
      partSize,
      partCount,
      received,
      receivedBytes: finished ? size : parts.reduce((sum, part) => sum + part.size, 0),
      state: record.state,
      expiresAt: isoTime(record.expiresAt),
      parts: parts.map(partInfo),
    };
    if (finished) body.file = fileInfo(request, record);
    return body;
  }

  function toWire(request: HttpRequest, event: UploadEventRecord): UploadEvent {
    switch (event.type) {
      case 'created':
        return {
          type: 'progress',
          id: event.record.id,
          receivedBytes: 0,
          size: event.record.size ?? 0,
          partsReceived: 0,
        };
      case 'progress':
        return {
          type: 'progress',
          id: event.record.id,
          receivedBytes: event.receivedBytes,
          size: event.record.size ?? event.receivedBytes,
          partsReceived: event.partsReceived,
        };
      case 'completed':
        return { type: 'completed', id: event.record.id, file: fileInfo(request, event.record) };
      case 'failed':
        return {
          type: 'failed',
          id: event.record.id,
          error: { code: event.error.code, message: event.error.message },
        };
      case 'removed': {
        const error = removedError();
        return { type: 'failed', id: event.id, error: { code: error.code, message: error.message } };
      }
    }
  }

  return {
    async create(request, namespace, grant) {
      const body = await readJsonObject(request, json);
      onlyFields(body, ['size', 'name', 'type', 'metadata', 'partSize', 'sha256']);
      const size = nonNegativeInteger(body, 'size', true) as number;
      const partSize = nonNegativeInteger(body, 'partSize', false);
      const metadata = optionalMetadata(body, 'metadata', config.maxMetadataBytes);
      const name = optionalString(body, 'name', 1024);
      const type = optionalString(body, 'type', 255);
      if (name !== undefined) metadata[NAME_KEY] = name;
      if (type !== undefined) metadata[TYPE_KEY] = type;
      checkCreate(grant, { size, metadata });
      const sha256 = optionalSha256(body, 'sha256');
      const { record, deduplicated } = await service.create({
        namespace,
        size,
        metadata,
        ...(partSize === undefined ? {} : { partSize }),
        ...(sha256 === undefined ? {} : { sha256 }),
        allowedTypes: grant?.types,
      });
      if (deduplicated) {
        const reply: DeduplicatedUpload = {
          id: record.id,
          deduplicated: true,
          file: fileInfo(request, record),
        };
        return jsonResponse(200, reply);
      }
      const reply: CreatedPartsUpload = {
        id: record.id,
        url: uploadUrl(request, record.id),
        partSize: record.partSize ?? size,
        partCount: partCountOf(size, record.partSize ?? size),
        expiresAt: isoTime(record.expiresAt),
      };
      return jsonResponse(201, reply, { location: reply.url });
    },

    async status(request, id, namespace) {
      const { record, parts } = await service.status(id, namespace);
      return jsonResponse(200, statusBody(request, record, parts));
    },

    async putPart(request, id, part, namespace) {
      if (!PART_NUMBER.test(part) || Number(part) > PART_LIMITS.maxParts) {
        throw new UploadError('ERR_INVALID_PART_NUMBER', { details: { n: part.slice(0, 16) } });
      }
      const contentType = request.header('content-type')?.split(';')[0]?.trim().toLowerCase();
      if (contentType === PART_REPORT_TYPE) {
        if (presigned === undefined || !presigned.available) throw notPresignable();
        const report = await readReport(request, json.timeoutMs);
        const stored = await presigned.reportPart(id, {
          namespace,
          n: Number(part),
          ...report,
          signal: request.signal,
        });
        return jsonResponse(200, partInfo(stored));
      }
      const lengthHeader = request.header('content-length');
      if (lengthHeader === undefined || request.header('transfer-encoding') !== undefined) {
        throw new UploadError('ERR_CONTENT_LENGTH_REQUIRED');
      }
      if (!/^[0-9]{1,16}$/.test(lengthHeader)) throw new UploadError('ERR_CONTENT_LENGTH_REQUIRED');
      let digest: Uint8Array | undefined;
      const digestHeader = request.header('content-digest');
      if (digestHeader !== undefined) {
        try {
          digest = parseSha256Digest(digestHeader);
        } catch (error) {
          throw new UploadError('ERR_INVALID_DIGEST', { cause: error });
        }
      }
      const stored = await service.putPart(id, {
        namespace,
        n: Number(part),
        body: request.body,
        contentLength: Number(lengthHeader),
        ...(digest === undefined ? {} : { digest }),
        wantDigest: acceptsSha256Digest(request.header('want-content-digest')),
        signal: request.signal,
      });
      return jsonResponse(200, partInfo(stored));
    },

    async presign(request, id, namespace) {
      if (presigned === undefined || !presigned.available) throw notPresignable();
      const numbers = await readPresignRequest(request, json.timeoutMs);
      const signed = await presigned.presign(id, namespace, numbers);
      const reply: PresignedPartsReply = {
        parts: signed.map((part) => ({
          n: part.n,
          url: part.url,
          headers: part.headers,
          expiresAt: new Date(part.expiresAt).toISOString(),
        })),
      };
      return jsonResponse(200, reply);
    },

    async complete(request, id, namespace) {
      const body = await readJsonObject(request, json);
      onlyFields(body, ['sha256']);
      const sha256 = optionalSha256(body, 'sha256');
      // Parts that went straight to S3 are checked with ListParts and the file read back.
      const input = { namespace, signal: request.signal, ...(sha256 === undefined ? {} : { sha256 }) };
      const record =
        presigned !== undefined && (await presigned.hasReportedParts(id))
          ? await presigned.complete(id, input)
          : await service.complete(id, input);
      const reply: CompletedPartsUpload = { file: fileInfo(request, record) };
      return jsonResponse(200, reply);
    },

    async terminate(request, id, namespace) {
      await service.terminate(id, namespace, request.signal);
      return { status: 204, headers: {}, body: null };
    },

    async events(request, id, namespace) {
      await service.load(id, namespace);
      return openEventStream({
        id,
        events,
        signal: closing === undefined ? request.signal : AbortSignal.any([request.signal, closing]),
        toWire: (event) => toWire(request, event),
        initial: async () => {
          const record = await service.load(id, namespace).catch((error: unknown) => {
            if (error instanceof UploadError && error.code === 'ERR_NOT_FOUND') return undefined;
            throw error;
          });
          if (record === undefined) return { type: 'removed', id, namespace };
          if (record.state === 'finished') return { type: 'completed', record };
          const progress = await service.progressOf(id);
          return { type: 'progress', record, ...progress };
        },
      });
    },
  };
}

function notPresignable(): UploadError {
  return new UploadError('ERR_METHOD_NOT_ALLOWED', {
    message: 'this storage takes parts through the server only; presigned URLs need S3 storage',
  });
}
