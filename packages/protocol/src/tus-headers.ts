/**
 * Pure codecs for the tus 1.0.0 request headers. Every parser throws an UploadError with a 400-class
 * code on bad input, so a handler can call them without further checks.
 */
import { base64ToBytes, base64ToUtf8, utf8ToBase64 } from './base64.ts';
import { UploadError } from './errors.ts';

export const TUS_VERSION = '1.0.0';
export const TUS_CONTENT_TYPE = 'application/offset+octet-stream';
export const CHECKSUM_ALGORITHMS = ['sha1', 'md5', 'sha256', 'crc32'] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

/** Largest integer a header may carry: within Number's exact range (2^53 - 1, about 8 PiB). */
const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const DIGITS = /^[0-9]{1,16}$/;

/** Parses a non-negative decimal integer header; `undefined` when absent. */
export function parseNonNegativeInteger(
  value: string | undefined,
  code: 'ERR_INVALID_OFFSET' | 'ERR_INVALID_LENGTH',
): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (!DIGITS.test(trimmed)) throw new UploadError(code);
  const parsed = Number(trimmed);
  if (parsed > MAX_SAFE) throw new UploadError(code);
  return parsed;
}

export type Metadata = Record<string, string>;

const METADATA_KEY = /^[!#-+\--~]+$/; // printable ASCII without space and comma
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Parses `Upload-Metadata`: comma-separated pairs of a key and a base64 value separated by one space.
 * The spec allows a key without a value; tus-js-client sends an empty value as "key " (trailing
 * space). Both decode to the empty string. Keys must be unique and non-empty.
 */
export function parseMetadata(header: string | undefined, maxBytes = 4096): Metadata {
  const metadata: Metadata = {};
  if (header === undefined || header.trim() === '') return metadata;
  if (header.length > maxBytes) throw new UploadError('ERR_METADATA_TOO_LARGE');
  for (const rawPair of header.split(',')) {
    const pair = rawPair.trim();
    const space = pair.indexOf(' ');
    const key = space === -1 ? pair : pair.slice(0, space);
    const encoded = space === -1 ? '' : pair.slice(space + 1);
    if (!METADATA_KEY.test(key) || Object.hasOwn(metadata, key)) {
      throw new UploadError('ERR_INVALID_METADATA', {
        details: { key: key.slice(0, 64) },
        message:
          key === ''
            ? 'Upload-Metadata has an empty key'
            : `Upload-Metadata key "${key.slice(0, 64)}" is invalid or repeated`,
      });
    }
    if (encoded.includes(' ') || !BASE64.test(encoded)) {
      throw new UploadError('ERR_INVALID_METADATA', {
        details: { key },
        message: `the value of Upload-Metadata key "${key}" is not valid base64`,
      });
    }
    metadata[key] = base64ToUtf8(encoded);
  }
  return metadata;
}

/** Formats metadata for `Upload-Metadata` (an empty value is sent as a key alone). */
export function formatMetadata(metadata: Metadata): string {
  return Object.entries(metadata)
    .map(([key, value]) => (value === '' ? key : `${key} ${utf8ToBase64(value)}`))
    .join(',');
}

export interface Checksum {
  algorithm: ChecksumAlgorithm;
  /** The digest bytes the client declared. */
  digest: Uint8Array;
}

const DIGEST_BYTES: Record<ChecksumAlgorithm, number> = { sha1: 20, md5: 16, sha256: 32, crc32: 4 };

/** Parses `Upload-Checksum: <algorithm> <base64 digest>`. */
export function parseChecksum(header: string | undefined): Checksum | undefined {
  if (header === undefined) return undefined;
  const parts = header.trim().split(' ');
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '') throw new UploadError('ERR_INVALID_CHECKSUM');
  const [algorithm, encoded] = parts as [string, string];
  if (!(CHECKSUM_ALGORITHMS as readonly string[]).includes(algorithm)) {
    throw new UploadError('ERR_UNSUPPORTED_CHECKSUM', { details: { algorithm: algorithm.slice(0, 32) } });
  }
  const typed = algorithm as ChecksumAlgorithm;
  if (!BASE64.test(encoded)) throw new UploadError('ERR_INVALID_CHECKSUM');
  const digest = base64ToBytes(encoded);
  if (digest.length !== DIGEST_BYTES[typed]) {
    throw new UploadError('ERR_INVALID_CHECKSUM', {
      message: `a ${typed} digest has ${DIGEST_BYTES[typed]} bytes, this one has ${digest.length}`,
    });
  }
  return { algorithm: typed, digest };
}

export type Concat = { kind: 'partial' } | { kind: 'final'; urls: string[] };

/** Parses `Upload-Concat: partial` or `Upload-Concat: final;<url> <url> …`. */
export function parseConcat(header: string | undefined): Concat | undefined {
  if (header === undefined) return undefined;
  const value = header.trim();
  if (value === 'partial') return { kind: 'partial' };
  if (value.startsWith('final;')) {
    const urls = value
      .slice('final;'.length)
      .split(' ')
      .filter((url) => url !== '');
    if (urls.length === 0) throw new UploadError('ERR_INVALID_CONCAT');
    return { kind: 'final', urls };
  }
  throw new UploadError('ERR_INVALID_CONCAT');
}

/** Upload ids are URL-safe base64url strings; anything else is refused before it reaches storage. */
const UPLOAD_ID = /^[A-Za-z0-9_-]{16,128}$/;

export function isValidUploadId(id: string): boolean {
  return UPLOAD_ID.test(id);
}
