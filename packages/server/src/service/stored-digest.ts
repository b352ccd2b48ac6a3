/** The SHA-256 of bytes already in storage, for when no running hash can vouch for them. */
import { createHash } from 'node:crypto';
import type { DataStore, Downloadable } from '../stores/data-store.ts';
import type { DigestThread } from './digest-thread.ts';

/** A store that reads a finished object back faster than one `read` stream (S3: parallel ranges). */
interface FastReadBack {
  sha256Of(finishedKey: string, size: number, signal?: AbortSignal): Promise<string>;
}

function hasFastReadBack(store: object): store is FastReadBack {
  return typeof (store as Partial<FastReadBack>).sha256Of === 'function';
}

/**
 * The SHA-256 (hex) of the first `size` bytes under `key`. `finished` says the key is a finished
 * object, which a store may read back its own faster way; otherwise one `read` stream is hashed on
 * the hashing thread.
 */
export async function sha256OfStored(
  store: DataStore & Downloadable,
  key: string,
  size: number,
  options: { digests: DigestThread; finished: boolean; signal?: AbortSignal | undefined },
): Promise<string> {
  if (size === 0) return createHash('sha256').digest('hex');
  if (options.finished && hasFastReadBack(store)) return store.sha256Of(key, size, options.signal);
  return sha256OfRange(store, key, { start: 0, end: size - 1 }, options);
}

/** The SHA-256 (hex) of bytes `start..end` (inclusive, not empty) under `key`, as one `read` stream on the hashing thread. */
export async function sha256OfRange(
  store: DataStore & Downloadable,
  key: string,
  range: { start: number; end: number },
  options: { digests: DigestThread; signal?: AbortSignal | undefined },
): Promise<string> {
  const hash = options.digests.create('sha256');
  try {
    for await (const chunk of store.read(key, range, options.signal)) hash.update(chunk as Uint8Array);
  } catch (error) {
    hash.discard();
    throw error;
  }
  return (await hash.digest()).toString('hex');
}
