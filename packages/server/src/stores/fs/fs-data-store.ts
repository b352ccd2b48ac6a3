/**
 * The local-disk DataStore: Ferry's embedded default.
 *
 * Layout under `directory`:
 *   uploads/<id>             one data file per upload in progress. tus PATCH bodies are written in
 *                            place at the end of the file; the file's size IS the upload offset, so
 *                            after a crash (kill -9) the offset is recovered with one `stat`. Parts
 *                            (parts API) are written in place at `(n - 1) * partSize`, in any order
 *                            and in parallel (the file may be sparse until every part arrived); which
 *                            parts are stored is recorded by the MetaStore after each is written, so
 *                            completing needs no copy and no concatenation pass.
 *   files/<id>               a finished upload: `finalize` renames the data file here (atomic, no copy).
 *                            A deduplicated upload is a hard link to an existing finished file.
 *   files/<id>.parts/        a finished concatenation (tus `concatenation`): hard links 000001, 000002, …
 *                            to the partial uploads' finished files, built as `<id>.parts.tmp/` and
 *                            renamed into place; no byte is copied (see fs-parts.ts).
 *
 * Writing: upload bytes go to disk with direct I/O (O_DIRECT, bypassing the page cache) where the
 * file system supports it, buffered otherwise and for the last partial block of each append; see
 * fs-direct.ts. A body declared at most 256 KiB long is written buffered, in one synchronous call
 * when it ends (fs-append.ts). Reads (downloads, re-hashing) are buffered; the kernel keeps the two coherent.
 *
 * Durability: with `none`, a write is acknowledged once the kernel holds it (page cache): it survives
 * a process crash, not a power loss. With `fsync`, every append ends with `fdatasync`, and creating,
 * finishing and concatenating also sync the directories involved, so acknowledged bytes and names
 * survive a power loss. Either way the offset Ferry reports never exceeds what `getOffset` recovers.
 *
 * What the operator must provision:
 *   - One local file system for the whole `directory` (ext4, xfs, btrfs, APFS…): `uploads/` and
 *     `files/` must be on the same file system for the rename to be atomic, and it must support hard
 *     links. If it does not (EXDEV/EPERM from `link`), concatenation falls back to copying each
 *     partial file (`copyFile`, which clones where the file system can) — then a final upload takes
 *     as much space again as its partials. Network file systems are not supported (locking, rename
 *     and size-after-crash guarantees vary).
 *   - Free space for every upload in progress at its full declared size plus every finished file
 *     kept; a full disk fails the write (the client's bytes up to that point are kept).
 *   - No other process writes into `uploads/`. Apps take finished files from `files/` (by the key
 *     Ferry reports) and may delete them there.
 */
import {
  closeSync,
  constants,
  createReadStream,
  fdatasync as fdatasyncCallback,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { copyFile, link, mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { UploadError } from '@ferry/protocol';
import type { DirectIo, Durability } from '../../config.ts';
import type {
  AppendOptions,
  AppendResult,
  ByteSource,
  Concatenatable,
  CreateDataOptions,
  DataStore,
  Downloadable,
  Duplicable,
  FileStat,
  LengthDeferrable,
  PartPlace,
  PartStore,
  PartWriteResult,
  StoredPart,
  Terminatable,
  Truncatable,
} from '../data-store.ts';
import { type DirectTarget, writeBody } from './fs-append.ts';
import { BLOCK, probeDirectIo, SlabPool } from './fs-direct.ts';
import {
  assertId,
  FILES_DIR,
  fileKey,
  PARTS_SUFFIX,
  type ParsedKey,
  parseKey,
  partsKey,
  TMP_SUFFIX,
  UPLOADS_DIR,
  uploadKey,
} from './fs-keys.ts';
import { listParts, partName, READ_HIGH_WATER_MARK, readParts } from './fs-parts.ts';

export interface FsDataStoreOptions {
  /** Root directory of the store; created (with `uploads/` and `files/`) if missing. */
  directory: string;
  /** `fsync`: flush to disk before acknowledging a write; `none`: acknowledge from the page cache. */
  durability: Durability;
  /**
   * `auto` (default): write with O_DIRECT when a probe at construction shows the file system does
   * direct I/O; `on`: the same, but throw at construction when it does not; `off`: always buffered.
   */
  directIo?: DirectIo;
}

export type FsDataStore = DataStore &
  Terminatable &
  Truncatable &
  LengthDeferrable &
  Downloadable &
  Concatenatable &
  PartStore &
  Duplicable & {
    readonly directory: string;
    /** The absolute path of a key's bytes: a file, or the directory of a finished concatenation's pieces. */
    locate(key: string): { path: string };
    /** Whether appends write with O_DIRECT (decided at construction). */
    readonly directIo: boolean;
  };

/**
 * Creates the store. Prepares the directories and removes concatenations a crash left half-built,
 * synchronously: this runs once at startup, before any request.
 */
export function createFsDataStore(options: FsDataStoreOptions): FsDataStore {
  return new FileSystemDataStore(options);
}

class FileSystemDataStore implements FsDataStore {
  readonly kind = 'fs';
  locate(key: string): { path: string } {
    return { path: parseKey(this.directory, key).path };
  }

  readonly deferredLength = true as const;
  readonly directory: string;
  readonly directIo: boolean;
  #fsync: boolean;
  #slabs: SlabPool | undefined;
  #uploadsDir: string;
  #filesDir: string;

  constructor(options: FsDataStoreOptions) {
    if (options.durability !== 'fsync' && options.durability !== 'none') {
      throw new TypeError(`durability must be "fsync" or "none", got ${String(options.durability)}`);
    }
    this.directory = options.directory;
    this.#fsync = options.durability === 'fsync';
    this.#uploadsDir = join(options.directory, UPLOADS_DIR);
    this.#filesDir = join(options.directory, FILES_DIR);
    mkdirSync(this.#uploadsDir, { recursive: true });
    mkdirSync(this.#filesDir, { recursive: true });
    for (const entry of readdirSync(this.#filesDir)) {
      if (entry.endsWith(TMP_SUFFIX)) rmSync(join(this.#filesDir, entry), { recursive: true, force: true });
    }
    const directIo = options.directIo ?? 'auto';
    if (directIo !== 'auto' && directIo !== 'on' && directIo !== 'off') {
      throw new TypeError(`directIo must be "auto", "on" or "off", got ${String(directIo)}`);
    }
    const refusal = directIo === 'off' ? 'off' : probeDirectIo(this.#uploadsDir);
    if (directIo === 'on' && refusal !== undefined) {
      throw new Error(`directIo is "on" but ${this.#uploadsDir} cannot be written with O_DIRECT: ${refusal}`);
    }
    this.directIo = refusal === undefined;
    this.#slabs = this.directIo ? new SlabPool(this.#uploadsDir) : undefined;
  }

  // The per-upload metadata calls (open, fstat, close, stat, rename) are synchronous: on a local
  // file system each takes microseconds, less than handing it to the thread pool and waking the
  // event loop again. Measured with 2,000 uploads of 64 KiB, 32 at a time (bench W4): thread-pool
  // wake-ups (futex, scheduler) were a third of the server's CPU with every call asynchronous.
  // Body bytes are still written asynchronously (fs-append.ts, fs-direct.ts).

  async create(options: CreateDataOptions): Promise<string> {
    assertId(options.id);
    // No preallocation: the file's size must stay equal to the bytes received.
    const fd = openSync(join(this.#uploadsDir, options.id), CREATE_FLAGS, 0o644);
    closeSync(fd);
    if (this.#fsync) await syncDirectory(this.#uploadsDir);
    return uploadKey(options.id);
  }

  async getOffset(key: string): Promise<number> {
    const parsed = parseKey(this.directory, key);
    if (parsed.kind === 'parts') return (await this.#stat(parsed)).size;
    return orNotFound(() => statSync(parsed.path)).size;
  }

  async append(
    key: string,
    offset: number,
    body: ByteSource,
    options?: AppendOptions,
  ): Promise<AppendResult> {
    const { path } = this.#inProgress(key);
    const fd = orNotFound(() => openSync(path, constants.O_RDWR));
    try {
      const { size } = fstatSync(fd);
      if (offset !== size) {
        throw new UploadError('ERR_OFFSET_MISMATCH', { details: { expected: size, received: offset } });
      }
      const direct: DirectTarget | undefined = this.#slabs && { path, pool: this.#slabs };
      const result = await writeBody(fd, offset, body, options, direct);
      if (this.#fsync && result.bytesWritten > 0) await fdatasync(fd);
      return result;
    } finally {
      closeSync(fd);
    }
  }

  async finalize(key: string, options: { id: string; size: number }): Promise<string> {
    const { path } = this.#inProgress(key);
    assertId(options.id);
    const target = join(this.#filesDir, options.id);
    let size: number;
    try {
      size = statSync(path).size;
    } catch (error) {
      // A retry after a crash between the rename and recording it: the work is already done.
      if (isCode(error, 'ENOENT')) {
        const done = statSync(target, { throwIfNoEntry: false });
        if (done?.size === options.size) return fileKey(options.id);
      }
      throw notFound(error);
    }
    if (size !== options.size) {
      throw new Error(`cannot finish ${key}: ${options.size} bytes expected, ${size} stored`);
    }
    renameSync(path, target);
    if (this.#fsync) {
      await syncDirectory(this.#filesDir);
      await syncDirectory(this.#uploadsDir);
    }
    return fileKey(options.id);
  }

  async putPart(
    key: string,
    part: PartPlace,
    body: ByteSource,
    options: AppendOptions = {},
  ): Promise<PartWriteResult> {
    const { path } = this.#inProgress(key);
    const fd = orNotFound(() => openSync(path, constants.O_RDWR));
    try {
      // Direct I/O only from a block boundary: a part that starts mid-block shares that block with
      // the part before it, and only buffered writes merge bytes within a block safely.
      const direct: DirectTarget | undefined =
        this.#slabs && part.start % BLOCK === 0 ? { path, pool: this.#slabs } : undefined;
      const result = await writeBody(
        fd,
        part.start,
        body,
        {
          ...options,
          maxBytes: Math.min(options.maxBytes ?? part.size, part.size),
          expectedBytes: part.size,
        },
        direct,
      );
      if (this.#fsync && result.bytesWritten > 0) await fdatasync(fd);
      return result;
    } finally {
      closeSync(fd);
    }
  }

  async completeParts(
    key: string,
    options: { id: string; size: number; parts: StoredPart[] },
  ): Promise<string> {
    return this.finalize(key, { id: options.id, size: options.size });
  }

  async duplicate(finishedKey: string, newId: string): Promise<string> {
    assertId(newId);
    const parsed = this.#finished(finishedKey);
    if (parsed.kind === 'parts') return this.concatenate(newId, [finishedKey]);
    await this.#linkOrCopy(parsed.path, join(this.#filesDir, newId));
    if (this.#fsync) await syncDirectory(this.#filesDir);
    return fileKey(newId);
  }

  async truncate(key: string, offset: number): Promise<void> {
    const { path } = this.#inProgress(key);
    const handle = await open(path, 'r+').catch(notFound);
    try {
      const { size } = await handle.stat();
      if (!Number.isSafeInteger(offset) || offset < 0 || offset > size) {
        throw new RangeError(`cannot truncate ${key} to ${offset}: it holds ${size} bytes`);
      }
      if (offset === size) return;
      await handle.truncate(offset);
      if (this.#fsync) await handle.datasync();
    } finally {
      await handle.close();
    }
  }

  async remove(key: string): Promise<void> {
    const parsed = parseKey(this.directory, key);
    await rm(parsed.path, { force: true, recursive: parsed.kind === 'parts' });
  }

  async stat(finishedKey: string): Promise<FileStat> {
    return this.#stat(this.#finished(finishedKey));
  }

  /** Also reads the stored prefix of an upload in progress (the server re-hashes it after a restart). */
  read(key: string, range: { start: number; end: number }, signal?: AbortSignal): Readable {
    const parsed = parseKey(this.directory, key);
    const { start, end } = range;
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0) {
      throw new RangeError(`invalid byte range ${start}-${end}`);
    }
    if (end < start) return Readable.from([], { objectMode: false });
    if (parsed.kind === 'parts') return readParts(parsed.path, range, signal);
    return createReadStream(parsed.path, {
      start,
      end,
      highWaterMark: READ_HIGH_WATER_MARK,
      ...(signal === undefined ? {} : { signal }),
    });
  }

  async concatenate(finalId: string, finishedKeys: string[]): Promise<string> {
    assertId(finalId);
    const sources: string[] = [];
    for (const key of finishedKeys) {
      const parsed = this.#finished(key);
      if (parsed.kind === 'file') sources.push(parsed.path);
      else sources.push(...(await listParts(parsed.path).catch(notFound)).map((part) => part.path));
    }
    const finalPath = join(this.#filesDir, finalId + PARTS_SUFFIX);
    const tmpPath = finalPath + TMP_SUFFIX;
    await rm(tmpPath, { recursive: true, force: true });
    await mkdir(tmpPath);
    try {
      for (const [index, source] of sources.entries()) {
        await this.#linkOrCopy(source, join(tmpPath, partName(index)));
      }
      if (this.#fsync) await syncDirectory(tmpPath);
      try {
        await rename(tmpPath, finalPath);
      } catch (error) {
        // A retry of a concatenation that already happened: replace it with this (identical) one.
        if (!isCode(error, 'ENOTEMPTY') && !isCode(error, 'EEXIST')) throw error;
        await rm(finalPath, { recursive: true, force: true });
        await rename(tmpPath, finalPath);
      }
      if (this.#fsync) await syncDirectory(this.#filesDir);
    } catch (error) {
      await rm(tmpPath, { recursive: true, force: true });
      throw error;
    }
    return partsKey(finalId);
  }

  async #linkOrCopy(source: string, target: string): Promise<void> {
    try {
      await link(source, target);
      return;
    } catch (error) {
      if (isCode(error, 'ENOENT')) throw notFound(error);
      if (!isCode(error, 'EXDEV') && !isCode(error, 'EPERM') && !isCode(error, 'ENOTSUP')) throw error;
    }
    // The file system has no hard links: copy (clones where the file system supports it).
    await copyFile(source, target).catch(notFound);
    if (this.#fsync) {
      const handle = await open(target, 'r');
      try {
        await handle.datasync();
      } finally {
        await handle.close();
      }
    }
  }

  async #stat(parsed: ParsedKey): Promise<FileStat> {
    if (parsed.kind !== 'parts') {
      const info = await stat(parsed.path).catch(notFound);
      return { size: info.size, modifiedAt: info.mtime };
    }
    const parts = await listParts(parsed.path).catch(notFound);
    let size = 0;
    let newest = 0;
    for (const part of parts) {
      size += part.size;
      newest = Math.max(newest, part.modifiedAt.getTime());
    }
    return { size, modifiedAt: new Date(newest) };
  }

  #inProgress(key: string): ParsedKey {
    const parsed = parseKey(this.directory, key);
    if (parsed.kind !== 'upload') throw new Error(`${key} is a finished file; it cannot be written`);
    return parsed;
  }

  #finished(key: string): ParsedKey {
    const parsed = parseKey(this.directory, key);
    if (parsed.kind === 'upload') throw new UploadError('ERR_UPLOAD_NOT_FINISHED');
    return parsed;
  }
}

const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL;

const fdatasync = promisify(fdatasyncCallback);

/** Runs a synchronous file-system call; a missing file becomes `notFound`'s 404. */
function orNotFound<T>(call: () => T): T {
  try {
    return call();
  } catch (error) {
    notFound(error);
  }
}

function isCode(error: unknown, code: string): boolean {
  return (error as { code?: unknown } | null)?.code === code;
}

/** A missing data file is a missing upload (404); any other error is a storage failure, as-is. */
function notFound(error: unknown): never {
  if (isCode(error, 'ENOENT')) throw new UploadError('ERR_NOT_FOUND', { cause: error });
  throw error;
}

/** Makes a directory's entries (new, renamed, removed names) durable. */
async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
