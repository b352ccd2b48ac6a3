/**
 * The JSON bodies of presigned mode: `POST /uploads/:id/presign` (`{"parts": [1, [3, 5]]}`) and
 * the part report (`{"etag", "size"}` under its own content type, so a part's bytes can never be
 * mistaken for a report or the other way round).
 */
import { PART_LIMITS, PART_REPORT_CONTENT_TYPE, type PartReport, UploadError } from '@ferry/protocol';
import type { HttpRequest } from '../../http/types.ts';
import { MAX_PRESIGN_PARTS } from '../../service/presigned-parts.ts';
import { invalid, nonNegativeInteger, onlyFields, readJsonObject } from './json-body.ts';

export const PART_REPORT_TYPE = PART_REPORT_CONTENT_TYPE;

/** The part numbers asked for, expanded from numbers and inclusive ranges, at most MAX_PRESIGN_PARTS. */
export async function readPresignRequest(request: HttpRequest, timeoutMs: number): Promise<number[]> {
  const body = await readJsonObject(request, { timeoutMs });
  onlyFields(body, ['parts']);
  const items = body['parts'];
  if (!Array.isArray(items) || items.length === 0) throw invalid('parts', 'must be a non-empty array');
  const numbers = new Set<number>();
  const add = (n: number) => {
    numbers.add(n);
    if (numbers.size > MAX_PRESIGN_PARTS) {
      throw new UploadError('ERR_INVALID_FIELD', {
        message: `at most ${MAX_PRESIGN_PARTS} parts per request`,
        details: { field: 'parts', maxParts: MAX_PRESIGN_PARTS },
      });
    }
  };
  for (const item of items) {
    if (isPartNumber(item)) add(item);
    else if (Array.isArray(item) && item.length === 2 && isPartNumber(item[0]) && isPartNumber(item[1])) {
      const [from, to] = item as [number, number];
      if (to < from) throw invalid('parts', 'a range [from, to] needs from <= to');
      for (let n = from; n <= to; n++) add(n);
    } else {
      throw invalid('parts', `items are part numbers (1..${PART_LIMITS.maxParts}) or ranges [from, to]`);
    }
  }
  return [...numbers].sort((a, b) => a - b);
}

export async function readReport(request: HttpRequest, timeoutMs: number): Promise<PartReport> {
  const body = await readJsonObject(request, { mediaType: PART_REPORT_TYPE, timeoutMs });
  onlyFields(body, ['etag', 'size']);
  const etag = body['etag'];
  if (typeof etag !== 'string' || etag.length === 0 || etag.length > 256 || /[\r\n]/.test(etag)) {
    throw invalid('etag', 'must be the ETag header S3 answered (a non-empty string)');
  }
  const size = nonNegativeInteger(body, 'size', true) as number;
  return { etag, size };
}

function isPartNumber(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 1 && (value as number) <= PART_LIMITS.maxParts;
}
