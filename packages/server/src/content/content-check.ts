/**
 * Content checks at finalization: the type of a finished file is sniffed from its first bytes
 * (magic numbers, through file-type), recorded on the upload (`sniffedType`), and matched against
 * the `allowTypes` allow-list. The browser's MIME type is never trusted: a `.png` name with EXE
 * bytes is an EXE. A file the list does not allow is refused with `ERR_TYPE_NOT_ALLOWED` on the
 * request that finished it, and its bytes and record are deleted at once — nothing of it is ever
 * served. The same holds for an upload whose token had a `types` claim (recorded with the upload
 * as `allowedTypes`): the claim is checked against the declared type at creation and against the
 * sniffed type here, since the declaration is only what the client says.
 *
 * What the magic bytes cannot tell (plain text, CSV, JSON, unknown formats) is
 * `application/octet-stream`, except where the declared type is textual (`text/*`,
 * `application/json`) and the first bytes are UTF-8 text without NUL bytes: then the declared type
 * stands. Text has no signature, so this is the only evidence there is; it still keeps binary
 * bytes from passing as text.
 */
import { UploadError } from '@ferry/protocol';
import { fileTypeFromBuffer } from 'file-type';
import type { Logger } from 'pino';
import { ConfigError } from '../config.ts';
import type { RecordView, UploadHooks } from '../hooks/upload-hooks.ts';
import type { MetaStore, UploadRecord } from '../meta/meta-store.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { UploadEvents } from '../service/upload-events.ts';
import type { Downloadable, Terminatable } from '../stores/data-store.ts';
import { normalizeType, typeAllowed } from './type-patterns.ts';

/** Bytes read from the start of a file to sniff it: file-type's documented sample size. */
export const SNIFF_BYTES = 4100;

/** The sniffed type of a file whose first bytes match no known format. */
export const UNKNOWN_TYPE = 'application/octet-stream';

/** Metadata keys that declare a file's type: tus clients send `filetype` (Uppy also `type`). */
const TYPE_KEYS = ['filetype', 'type'] as const;

/** The type the client declared in the upload's metadata, normalized; `null` when none. */
export function declaredTypeOf(metadata: Readonly<Record<string, string>>): string | null {
  for (const key of TYPE_KEYS) {
    const value = metadata[key];
    if (value !== undefined && normalizeType(value) !== '') return normalizeType(value);
  }
  return null;
}

/** Declared types whose content has no magic bytes, believed when the bytes are text. */
function isTextual(type: string): boolean {
  return type.startsWith('text/') || type === 'application/json';
}

/**
 * UTF-8 without NUL bytes. `whole` says the sample is the whole file; otherwise a multi-byte
 * character cut at the sample's end is not an error.
 */
function looksLikeText(sample: Uint8Array, whole: boolean): boolean {
  if (sample.includes(0)) return false;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(sample, { stream: !whole });
    return true;
  } catch {
    return false;
  }
}

/** The type of a file from its first bytes (`sample`) and the type its uploader declared. */
export async function sniffSample(
  sample: Uint8Array,
  declared: string | null,
  whole: boolean,
): Promise<string> {
  let detected: string | undefined;
  try {
    detected = (await fileTypeFromBuffer(sample))?.mime;
  } catch {
    // A malformed header file-type could not parse: the bytes tell nothing certain.
    detected = undefined;
  }
  if (detected !== undefined) return detected;
  if (declared !== null && isTextual(declared) && looksLikeText(sample, whole)) return declared;
  return UNKNOWN_TYPE;
}

/** The first `SNIFF_BYTES` of a stored file (one ranged read; a Range GET on S3). */
export async function readSample(
  reader: Downloadable,
  key: string,
  size: number,
  signal?: AbortSignal,
): Promise<Buffer> {
  const length = Math.min(size, SNIFF_BYTES);
  if (length === 0) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let received = 0;
  for await (const chunk of reader.read(key, { start: 0, end: length - 1 }, signal)) {
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    chunks.push(bytes);
    received += bytes.byteLength;
    if (received >= length) break;
  }
  return Buffer.concat(chunks, Math.min(received, length));
}

/** An upload that has no record yet (a tus final upload being assembled). */
export interface UnrecordedUpload {
  id: string;
  metadata: Record<string, string>;
  /** The creating token's `types` claim; `null` or absent: no limit of its own. */
  allowedTypes?: readonly string[] | null;
}

export interface ContentCheckOptions {
  /** Normalized patterns (config `allowTypes`); empty = every type is allowed. */
  allowTypes: readonly string[];
  reader: Downloadable | undefined;
  remover: Terminatable | undefined;
  meta: MetaStore;
  metrics: Metrics;
  logger: Logger;
  events?: UploadEvents | undefined;
  /** The app's hooks: `beforeFinish` runs in `admit`, and refusals are queued as `rejected` events. */
  hooks?: UploadHooks | undefined;
  now?: () => number;
}

export class ContentCheck {
  readonly #allow: readonly string[];
  readonly #reader: Downloadable | undefined;
  readonly #remover: Terminatable | undefined;
  readonly #meta: MetaStore;
  readonly #metrics: Metrics;
  readonly #logger: Logger;
  readonly #events: UploadEvents | undefined;
  readonly #hooks: UploadHooks | undefined;
  readonly #now: () => number;

  constructor(options: ContentCheckOptions) {
    this.#allow = options.allowTypes;
    if (this.#allow.length > 0 && (options.reader === undefined || options.remover === undefined)) {
      // An allow-list that cannot be enforced must not look as if it were.
      throw new ConfigError(
        'option "allowTypes" needs storage that can read files back and delete them (fs and s3 can)',
      );
    }
    this.#reader = options.reader;
    this.#remover = options.remover;
    this.#meta = options.meta;
    this.#metrics = options.metrics;
    this.#logger = options.logger;
    this.#events = options.events;
    this.#hooks = options.hooks;
    this.#now = options.now ?? Date.now;
  }

  /** True when an allow-list is configured. */
  get active(): boolean {
    return this.#allow.length > 0;
  }

  /**
   * Whether a file of this sniffed type (`null`: never sniffed) may be kept, under the server's
   * allow-list and the upload's own `allowedTypes` (its token's `types` claim) when it has one.
   */
  allows(sniffed: string | null, allowedTypes: readonly string[] | null = null): boolean {
    if (allowedTypes !== null && (sniffed === null || !typeAllowed(allowedTypes, sniffed))) return false;
    return !this.active || (sniffed !== null && typeAllowed(this.#allow, sniffed));
  }

  /**
   * Sniffs the finished file at `key` and returns its type, or refuses it: then its bytes (and its
   * record, if it has one) are deleted, the refusal is announced, and `ERR_TYPE_NOT_ALLOWED` is
   * thrown. `null` where the storage cannot read files back (and no allow-list is set).
   */
  async check(
    upload: UploadRecord | UnrecordedUpload,
    key: string,
    size: number,
    signal?: AbortSignal,
  ): Promise<string | null> {
    if (this.#reader === undefined) return null;
    const declared = declaredTypeOf(upload.metadata);
    const sample = await readSample(this.#reader, key, size, signal);
    const sniffed = await sniffSample(sample, declared, size <= SNIFF_BYTES);
    const claim = upload.allowedTypes ?? null;
    if (this.allows(sniffed, claim)) return sniffed;
    // The token's claim is named when it is what refuses the file, else the server's list.
    const byToken = claim !== null && !typeAllowed(claim, sniffed);
    const allowed = byToken ? claim : this.#allow;
    const error = new UploadError('ERR_TYPE_NOT_ALLOWED', {
      message:
        `the file's content is ${sniffed}` +
        (declared !== null && declared !== sniffed ? ` (it was declared as ${declared})` : '') +
        `, and ${byToken ? "this upload's token allows" : 'this server accepts'} only ${allowed.join(', ')}: the upload was deleted`,
      details: { sniffed, declared, allowed },
    });
    await this.#remover?.remove(key);
    this.#metrics.uploadsRejected.inc({ reason: 'type' });
    this.#logger.info(
      { uploadId: upload.id, sniffed, declared, size },
      'upload refused: content type not allowed',
    );
    if ('version' in upload) {
      await this.#meta.delete(upload.id, {
        outbox: this.#hooks?.outbox('rejected', upload, { code: error.code, message: error.message }),
      });
      this.#events?.emit(upload.id, { type: 'failed', record: upload, error });
      this.#events?.emit(upload.id, { type: 'removed', id: upload.id, namespace: upload.namespace });
    }
    throw error;
  }

  /**
   * What a file passes before it is marked finished: the content check, then the app's
   * `beforeFinish` hook (given the file as it is about to be recorded, with its SHA-256 and sniffed
   * type). Returns the sniffed type. A refusal by either deletes the file's bytes (and its record,
   * if it has one) and throws; a hook that failed throws `ERR_HOOK_FAILED` and leaves everything as
   * it is, so a retry can finish the upload.
   */
  async admit(
    upload: UploadRecord | (RecordView & UnrecordedUpload),
    key: string,
    size: number,
    options: { signal?: AbortSignal | undefined; sha256: string | null },
  ): Promise<string | null> {
    const sniffedType = await this.check(upload, key, size, options.signal);
    const hooks = this.#hooks;
    if (hooks === undefined || !hooks.checksFinish || !('namespace' in upload)) return sniffedType;
    try {
      await hooks.beforeFinish({
        ...upload,
        state: 'finished',
        storageKey: key,
        size,
        offset: size,
        sha256: options.sha256,
        sniffedType,
        finishedAt: this.#now(),
      });
    } catch (error) {
      if (error instanceof UploadError && error.code === 'ERR_HOOK_REJECTED') {
        await this.#remover?.remove(key);
        this.#metrics.uploadsRejected.inc({ reason: 'hook' });
        this.#logger.info({ uploadId: upload.id, size, why: error.message }, 'upload refused by the app');
        if ('version' in upload) {
          await this.#meta.delete(upload.id, {
            outbox: hooks.outbox('rejected', upload, { code: error.code, message: error.message }),
          });
          this.#events?.emit(upload.id, { type: 'failed', record: upload, error });
          this.#events?.emit(upload.id, { type: 'removed', id: upload.id, namespace: upload.namespace });
        }
      }
      throw error;
    }
    return sniffedType;
  }
}
