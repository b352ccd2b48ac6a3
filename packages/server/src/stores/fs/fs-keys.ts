/**
 * Storage keys of the fs store and the only way from a key to a path. A key is recorded with the
 * upload and comes back from the metadata store, so it is parsed strictly every time: a key that is
 * not exactly one of the three shapes below never reaches the file system (no `..`, no absolute
 * paths, no separators inside the id).
 *
 *   uploads/<id>        an upload in progress (one data file, appended in place)
 *   files/<id>          a finished upload (the same file, renamed)
 *   files/<id>.parts    a finished concatenation (a directory of hard links to the partial files)
 */
import { join } from 'node:path';
import { UploadError } from '@ferry/protocol';

/** Upload ids are base64url, 16..128 characters (so no `.`, `/` or `\` can appear). */
const ID_PATTERN = /^[A-Za-z0-9_-]{16,128}$/;
const KEY_PATTERN = /^(uploads|files)\/([A-Za-z0-9_-]{16,128})(\.parts)?$/;

export const UPLOADS_DIR = 'uploads';
export const FILES_DIR = 'files';
export const PARTS_SUFFIX = '.parts';
export const TMP_SUFFIX = '.tmp';

export type KeyKind = 'upload' | 'file' | 'parts';

export interface ParsedKey {
  kind: KeyKind;
  id: string;
  /** Absolute path of the data file (or of the parts directory). */
  path: string;
}

export function assertId(id: string): void {
  if (typeof id !== 'string' || !ID_PATTERN.test(id)) {
    throw new UploadError('ERR_INVALID_ID', { details: { reason: 'not a valid upload id' } });
  }
}

export function uploadKey(id: string): string {
  return `${UPLOADS_DIR}/${id}`;
}

export function fileKey(id: string): string {
  return `${FILES_DIR}/${id}`;
}

export function partsKey(id: string): string {
  return `${FILES_DIR}/${id}${PARTS_SUFFIX}`;
}

/** Parses a key made by this store; anything else is refused with `ERR_INVALID_ID`. */
export function parseKey(directory: string, key: string): ParsedKey {
  const match = typeof key === 'string' ? KEY_PATTERN.exec(key) : null;
  if (match === null) {
    throw new UploadError('ERR_INVALID_ID', { details: { reason: 'not a storage key of this store' } });
  }
  const [, area, id, parts] = match as unknown as [string, string, string, string | undefined];
  if (area === UPLOADS_DIR && parts !== undefined) {
    throw new UploadError('ERR_INVALID_ID', { details: { reason: 'not a storage key of this store' } });
  }
  const kind: KeyKind = area === UPLOADS_DIR ? 'upload' : parts === undefined ? 'file' : 'parts';
  return { kind, id, path: join(directory, area, id + (parts ?? '')) };
}
