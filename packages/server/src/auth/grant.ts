/**
 * What a verified upload token allows, and the checks the protocols apply with it. A request
 * without a grant (auth off) passes every check: its namespace is ''.
 */
import { UploadError } from '@ferry/protocol';
import { typeAllowed } from '../content/type-patterns.ts';

export { typeAllowed };

export interface Grant {
  /** The token's `sub`: the namespace that owns the uploads made with it. */
  subject: string;
  /** When the token expires, epoch ms. */
  expiresAt: number;
  /** Largest upload the token may create, in bytes. */
  maxSize?: number;
  /** Lower-case MIME types or patterns (`image/*`, `*\/*`) the declared type must match. */
  types?: readonly string[];
  /** The one upload the token reaches. */
  uploadId?: string;
}

/** Metadata keys that declare a file's type: tus clients send `filetype` (Uppy also `type`). */
const TYPE_KEYS = ['filetype', 'type'] as const;

/** A new upload: refused with a token for one upload, above its `maxSize`, or of a type it does not allow. */
export function checkCreate(
  grant: Grant | undefined,
  declared: { size: number | null; metadata: Readonly<Record<string, string>> },
): void {
  if (grant === undefined) return;
  if (grant.uploadId !== undefined) {
    throw new UploadError('ERR_TOKEN_SCOPE', {
      message: 'this upload token reaches one upload only; it cannot create another',
    });
  }
  if (declared.size !== null) checkSize(grant, declared.size);
  if (grant.types !== undefined) {
    const types = TYPE_KEYS.map((key) => declared.metadata[key]).filter((type) => type !== undefined);
    const details = { allowed: grant.types };
    if (types.length === 0) {
      throw new UploadError('ERR_TYPE_NOT_ALLOWED', {
        message: 'this upload token allows some file types only: declare the type (filetype)',
        details,
      });
    }
    // Every declared type must be allowed: a client must not pass one check with `type` while
    // the file is served with `filetype`.
    if (types.some((type) => !typeAllowed(grant.types ?? [], type))) {
      throw new UploadError('ERR_TYPE_NOT_ALLOWED', { details: { ...details, type: types.join(', ') } });
    }
  }
}

/** A size (declared, or bytes that would be stored) above the token's `maxSize` is refused. */
export function checkSize(grant: Grant | undefined, size: number): void {
  if (grant?.maxSize !== undefined && size > grant.maxSize) {
    throw new UploadError('ERR_TOKEN_MAX_SIZE', { details: { maxSize: grant.maxSize } });
  }
}

/** Listing or watching the whole namespace: not with a token for one upload. */
export function checkNamespaceWide(grant: Grant | undefined): void {
  if (grant?.uploadId !== undefined) {
    throw new UploadError('ERR_TOKEN_SCOPE', {
      message: 'this upload token reaches one upload only; it cannot list uploads',
    });
  }
}
