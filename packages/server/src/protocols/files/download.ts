/**
 * GET/HEAD of finished files: one byte range at most (RFC 9110 §14), strong ETags (a finished file
 * never changes), and headers that keep a browser from running what users uploaded: the type (the
 * sniffed one, see `servedType`) is only trusted from a short allow-list, `nosniff` always, and a
 * sanitized attachment name.
 */
import { formatSha256Digest, hexToBytes, UploadError } from '@ferry/protocol';
import type { HttpRequest, HttpResponse } from '../../http/types.ts';
import type { UploadRecord } from '../../meta/meta-store.ts';
import type { UploadService } from '../../service/upload-service.ts';
import { declaredNameOf } from './file-info.ts';

/** Types a browser renders without running scripts. Anything else is served as octet-stream. */
const SAFE_TYPES = new Set([
  'image/png',
  'image/jpeg',
  'image/gif',
  'image/webp',
  'image/avif',
  'image/bmp',
  'video/mp4',
  'video/webm',
  'video/ogg',
  'video/quicktime',
  'audio/mpeg',
  'audio/ogg',
  'audio/wav',
  'audio/webm',
  'audio/flac',
  'audio/aac',
  'audio/mp4',
  'application/pdf',
  'application/zip',
  'application/gzip',
  'application/json',
  'text/plain',
  'text/csv',
]);

export function safeContentType(declared: string | undefined): string {
  const type = (declared ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (!SAFE_TYPES.has(type)) return 'application/octet-stream';
  return type.startsWith('text/') ? `${type}; charset=utf-8` : type;
}

/**
 * The type a download is served as, before the safe-type rules: what the bytes were sniffed as when
 * the file finished (`application/octet-stream` when they matched no format, whatever the client
 * declared), else — uploads never sniffed (tus partials, files finished before sniffing) — the
 * declared type.
 */
export function servedType(record: UploadRecord): string | undefined {
  return record.sniffedType ?? record.metadata['filetype'] ?? record.metadata['type'];
}

/** `attachment` with an ASCII fallback name and the exact UTF-8 name (RFC 6266 / RFC 8187). */
export function contentDisposition(name: string | null | undefined): string {
  const cleaned = (name ?? '')
    .replace(/[\\/]/g, '_')
    .replace(/\p{Cc}/gu, '')
    .trim()
    .slice(0, 255);
  if (cleaned === '') return 'attachment';
  const ascii = cleaned.replace(/[^\x20-\x7e]/g, '_').replace(/["%;\\]/g, '_');
  const encoded = encodeURIComponent(cleaned).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

type Range = { start: number; end: number } | 'unsatisfiable' | undefined;

/** A single `bytes=` range; anything else (several ranges, bad syntax) is ignored: a 200 is then correct. */
export function parseRange(header: string | undefined, size: number): Range {
  if (header === undefined) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return undefined;
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return undefined;
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (last !== '' && Number(last) < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

export async function serveDownload(
  service: UploadService,
  request: HttpRequest,
  id: string,
  namespace: string,
): Promise<HttpResponse> {
  const reader = service.capabilities.downloadable;
  if (!reader)
    throw new UploadError('ERR_METHOD_NOT_ALLOWED', { message: 'this storage cannot serve downloads' });
  const record = await service.get(id, namespace).catch((error: unknown) => {
    if (error instanceof UploadError && error.code === 'ERR_UPLOAD_EXPIRED')
      throw new UploadError('ERR_UPLOAD_NOT_FINISHED');
    throw error;
  });
  if (record.state !== 'finished') throw new UploadError('ERR_UPLOAD_NOT_FINISHED');
  const stat = await reader.stat(record.storageKey);
  const etag = `"${record.sha256 ?? `${record.id}-${stat.size.toString(16)}`}"`;
  const headers: Record<string, string> = {
    'accept-ranges': 'bytes',
    etag,
    'last-modified': new Date(record.finishedAt ?? stat.modifiedAt.getTime()).toUTCString(),
    'content-type': safeContentType(servedType(record)),
    'content-disposition': contentDisposition(declaredNameOf(record.metadata)),
    'x-content-type-options': 'nosniff',
    'cache-control': 'private, max-age=0, must-revalidate',
  };
  // RFC 9530: the digest of the whole file, also on range responses, so a client that fetched the
  // file in ranges can verify what it assembled.
  if (record.sha256 !== null) {
    headers['repr-digest'] = formatSha256Digest(hexToBytes(record.sha256));
  }
  const noneMatch = request.header('if-none-match');
  if (
    noneMatch !== undefined &&
    (noneMatch.trim() === '*' || noneMatch.split(',').some((tag) => tag.trim() === etag))
  ) {
    return { status: 304, headers, body: null };
  }
  const ifRange = request.header('if-range');
  let range = parseRange(request.header('range'), stat.size);
  if (ifRange !== undefined && ifRange.trim() !== etag) range = undefined;
  if (range === 'unsatisfiable') {
    throw new UploadError('ERR_RANGE_NOT_SATISFIABLE', {
      headers: { 'content-range': `bytes */${stat.size}` },
    });
  }
  const start = range?.start ?? 0;
  const end = range?.end ?? stat.size - 1;
  headers['content-length'] = String(end - start + 1);
  if (range) headers['content-range'] = `bytes ${start}-${end}/${stat.size}`;
  const status = range ? 206 : 200;
  if (request.method === 'HEAD' || stat.size === 0) return { status, headers, body: null };
  return { status, headers, body: reader.read(record.storageKey, { start, end }, request.signal) };
}
