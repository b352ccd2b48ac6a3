/**
 * Server-side SHA-256 of whole uploads while they stream in. The running hash lives in memory per
 * upload; when it is missing or behind (a restart, another node, a discarded chunk) the stored
 * prefix is hashed again from storage rather than persisting hash state.
 */
import { createHash } from 'node:crypto';
import type { UploadRecord } from '../meta/meta-store.ts';
import type { DataStore, Downloadable } from '../stores/data-store.ts';
import type { DigestThread, ThreadDigest } from './digest-thread.ts';

interface RunningHash {
  hash: ThreadDigest;
  offset: number;
}

export interface HashTap {
  update(chunk: Uint8Array): void;
  /** Records that `bytes` more were kept (the chunk was not discarded). */
  advance(bytes: number): void;
}

export class UploadHasher {
  readonly #running = new Map<string, RunningHash>();
  readonly #reader: (DataStore & Downloadable) | undefined;
  readonly #digests: DigestThread;

  constructor(reader: (DataStore & Downloadable) | undefined, digests: DigestThread) {
    this.#reader = reader;
    this.#digests = digests;
  }

  /** A tap positioned at `record.offset`, rebuilt from storage when needed. */
  async resume(record: UploadRecord): Promise<HashTap | undefined> {
    let running = this.#running.get(record.id);
    if (running === undefined || running.offset !== record.offset) {
      this.forget(record.id);
      if (record.offset > 0 && !this.#reader) return undefined;
      const hash = this.#digests.create('sha256');
      if (record.offset > 0) {
        try {
          const stream = this.#reader!.read(record.storageKey, { start: 0, end: record.offset - 1 });
          for await (const chunk of stream) hash.update(chunk as Uint8Array);
        } catch {
          // A store that cannot read an upload in progress: this upload finishes without a digest.
          hash.discard();
          return undefined;
        }
      }
      running = { hash, offset: record.offset };
      this.#running.set(record.id, running);
    }
    const state = running;
    return {
      update: (chunk) => state.hash.update(chunk),
      advance: (bytes) => {
        state.offset += bytes;
      },
    };
  }

  /** The hex digest if the running hash covers exactly `size` bytes. */
  async finish(id: string, size: number): Promise<string | null> {
    const running = this.#running.get(id);
    this.#running.delete(id);
    if (size === 0) {
      running?.hash.discard();
      return createHash('sha256').digest('hex');
    }
    if (running === undefined) return null;
    if (running.offset !== size) {
      running.hash.discard();
      return null;
    }
    return (await running.hash.digest()).toString('hex');
  }

  forget(id: string): void {
    this.#running.get(id)?.hash.discard();
    this.#running.delete(id);
  }
}
