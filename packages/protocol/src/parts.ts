/**
 * The parts API's wire shapes, its limits and the helpers both ends share: how a size is cut into
 * parts, and RFC 9530 `Content-Digest` / `Repr-Digest` values. Platform-free (browsers and Node).
 *
 * The limits are S3's, so an upload can move between storages: at most 10,000 parts, and every part
 * but the last between 5 MiB and 5 GiB. The last part holds what remains (it may be smaller, and is
 * empty only for an empty file, which has one empty part).
 */
import { base64ToBytes, bytesToBase64 } from './base64.ts';

const MiB = 1024 * 1024;

export const PART_LIMITS = {
  minPartSize: 5 * MiB,
  maxPartSize: 5 * 1024 * MiB,
  maxParts: 10_000,
} as const;

/** The part size a server picks when the client names none: 8 MiB, doubled until ≤ 10,000 parts. */
export const DEFAULT_PART_SIZE = 8 * MiB;

export function defaultPartSize(size: number): number {
  let partSize = DEFAULT_PART_SIZE;
  while (Math.ceil(size / partSize) > PART_LIMITS.maxParts) partSize *= 2;
  return Math.min(partSize, PART_LIMITS.maxPartSize);
}

/** Number of parts of an upload: at least one (an empty file has one empty part). */
export function partCountOf(size: number, partSize: number): number {
  return Math.max(1, Math.ceil(size / partSize));
}

/** Byte range of part `n` (1-based): `start` inclusive, `end` exclusive. */
export function partRange(n: number, size: number, partSize: number): { start: number; end: number } {
  const start = (n - 1) * partSize;
  return { start, end: Math.min(size, start + partSize) };
}

/** Why a part size is not allowed for `size`, or `undefined` when it is. */
export function partSizeProblem(size: number, partSize: number): string | undefined {
  if (!Number.isSafeInteger(partSize) || partSize < 1) return 'partSize must be a positive integer';
  if (partSize > PART_LIMITS.maxPartSize) return 'partSize must be at most 5 GiB';
  const count = partCountOf(size, partSize);
  if (count > 1 && partSize < PART_LIMITS.minPartSize) {
    return 'partSize must be at least 5 MiB when the file has more than one part';
  }
  if (count > PART_LIMITS.maxParts)
    return 'the file would have more than 10,000 parts; choose a larger partSize';
  return undefined;
}

/** Merges sorted part numbers into inclusive ranges: [1,2,3,5] → [[1,3],[5,5]]. */
export function toRanges(numbers: readonly number[]): [number, number][] {
  const ranges: [number, number][] = [];
  for (const n of numbers) {
    const last = ranges[ranges.length - 1];
    if (last !== undefined && n === last[1] + 1) last[1] = n;
    else ranges.push([n, n]);
  }
  return ranges;
}

/** Expands inclusive ranges back into part numbers. */
export function fromRanges(ranges: readonly (readonly [number, number])[]): number[] {
  const numbers: number[] = [];
  for (const [from, to] of ranges) for (let n = from; n <= to; n++) numbers.push(n);
  return numbers;
}

/** `sha-256=:<base64>:` (RFC 9530) for a SHA-256 digest. */
export function formatSha256Digest(digest: Uint8Array): string {
  return `sha-256=:${bytesToBase64(digest)}:`;
}

/**
 * Reads the `sha-256` member of a `Content-Digest` field (RFC 9530: a structured dictionary whose
 * values are byte sequences, `:base64:`). Returns the 32 digest bytes; `undefined` when the field
 * names no sha-256 (other algorithms are allowed and ignored); throws `SyntaxError` when malformed.
 */
export function parseSha256Digest(field: string): Uint8Array | undefined {
  for (const member of field.split(',')) {
    const trimmed = member.trim();
    const equals = trimmed.indexOf('=');
    if (equals <= 0) throw new SyntaxError('a Content-Digest member must be algorithm=:base64:');
    const algorithm = trimmed.slice(0, equals).trim().toLowerCase();
    if (algorithm !== 'sha-256') continue;
    const value = trimmed.slice(equals + 1).trim();
    const match = /^:([A-Za-z0-9+/]*={0,2}):$/.exec(value);
    if (match === null) throw new SyntaxError('a Content-Digest value must be a byte sequence, :base64:');
    const bytes = base64ToBytes(match[1] as string);
    if (bytes.length !== 32) throw new SyntaxError('a sha-256 digest has 32 bytes');
    return bytes;
  }
  return undefined;
}

/**
 * The `Want-Content-Digest` value (RFC 9530 §4: weight 0 is "not acceptable") with which a part
 * request tells the server it has no use for the part's SHA-256: the server then does not hash the
 * part (the whole file's SHA-256 is still computed and checked at `complete`), and the part's answer
 * and status entry carry no `digest`.
 */
export const NO_PART_DIGEST = 'sha-256=0';

/**
 * Whether a `Want-Content-Digest` field (a structured dictionary of `algorithm=weight`, weights
 * 0–10) accepts sha-256: false only when it gives sha-256 the weight 0. An absent or malformed field
 * accepts it (the digest is then sent, as by default).
 */
export function acceptsSha256Digest(field: string | undefined): boolean {
  if (field === undefined) return true;
  for (const member of field.split(',')) {
    const [algorithm, weight, ...rest] = member.split('=').map((piece) => piece.trim());
    if (algorithm?.toLowerCase() !== 'sha-256' || rest.length > 0) continue;
    if (weight !== undefined && /^(?:0|10|[1-9])$/.test(weight)) return weight !== '0';
  }
  return true;
}

// ---- Wire shapes (JSON bodies) ----

/** `POST /uploads` */
export interface CreatePartsUploadRequest {
  size: number;
  name?: string;
  type?: string;
  metadata?: Record<string, string>;
  partSize?: number;
  /** Lower-case hex SHA-256 of the whole file: enables dedup, and `complete` verifies it. */
  sha256?: string;
}

/** A finished file, as every parts-API response describes it. */
export interface FileInfo {
  id: string;
  /** Where to download it (`GET`, Range requests allowed). */
  url: string;
  size: number;
  name: string | null;
  /** The type the client declared (`filetype` metadata). */
  type: string | null;
  /**
   * The type the server sniffed from the file's first bytes when it finished
   * (`application/octet-stream` when they match no known format); null when it was not sniffed.
   * Downloads are served with this type (within the server's safe-type rules).
   */
  sniffedType: string | null;
  /** Lower-case hex SHA-256, when the server verified it. */
  sha256: string | null;
  metadata: Record<string, string>;
  finishedAt: string;
}

/** `201` from `POST /uploads` */
export interface CreatedPartsUpload {
  id: string;
  url: string;
  partSize: number;
  partCount: number;
  expiresAt: string | null;
}

/** `200` from `POST /uploads` when an identical verified file exists in the same namespace. */
export interface DeduplicatedUpload {
  id: string;
  deduplicated: true;
  file: FileInfo;
}

export interface PartInfo {
  n: number;
  size: number;
  /**
   * `sha-256=:<base64>:` of the part's bytes, computed by the server; absent for a part that went
   * straight to S3 (the server never saw its bytes).
   */
  digest?: string;
}

/** The `Content-Type` of a part report (`PUT /uploads/:id/parts/:n` for a part sent straight to S3). */
export const PART_REPORT_CONTENT_TYPE = 'application/vnd.ferry.part-report+json';

/** `PUT /uploads/:id/parts/:n` with `Content-Type: application/vnd.ferry.part-report+json` */
export interface PartReport {
  /** The `ETag` header S3 answered to the part's PUT (quoted or not). */
  etag: string;
  /** The part's size in bytes. */
  size: number;
}

/** `POST /uploads/:id/presign`: part numbers, or inclusive ranges `[from, to]`; at most 100 parts. */
export interface PresignPartsRequest {
  parts: Array<number | [number, number]>;
}

/** One presigned UploadPart URL: `PUT` the part's bytes there with `headers`, no other header needed. */
export interface PresignedPartUrl {
  n: number;
  url: string;
  headers: Record<string, string>;
  /** ISO 8601: after this the URL answers 403; ask again. */
  expiresAt: string;
}

/** `200` from `POST /uploads/:id/presign` */
export interface PresignedPartsReply {
  parts: PresignedPartUrl[];
}

/** `GET /uploads/:id` */
export interface PartsUploadStatus {
  id: string;
  size: number;
  partSize: number;
  partCount: number;
  /** Received parts as inclusive ranges of part numbers: `[[1, 3], [5, 5]]`. */
  received: [number, number][];
  receivedBytes: number;
  state: 'uploading' | 'finished';
  expiresAt: string | null;
  /** Each received part with its size and digest (so a client can compare before completing). */
  parts: PartInfo[];
  /** Present once finished. */
  file?: FileInfo;
}

/** `POST /uploads/:id/complete` */
export interface CompletePartsRequest {
  sha256?: string;
}

export interface CompletedPartsUpload {
  file: FileInfo;
}

/** Events of `GET /uploads/:id/events` (Server-Sent Events; the event name is `type`). */
export type UploadEvent =
  | { type: 'progress'; id: string; receivedBytes: number; size: number; partsReceived: number }
  | { type: 'completed'; id: string; file: FileInfo }
  | { type: 'failed'; id: string; error: { code: string; message: string } };
