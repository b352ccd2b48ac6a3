/**
 * How big each request body is.
 *
 * - a number: every chunk has that size (the last one what remains);
 * - `by-size`: derived from the file size: tus sends a 32nd of the file per PATCH, at least 8 MiB and
 *   at most `maxChunkSize` (unknown sizes: 8 MiB); parts uses the server's default part size;
 * - `adaptive` (default): starts like `by-size`, then aims each tus PATCH at `targetSeconds` of
 *   transfer at the throughput the previous chunks measured, moving halfway there each time (no
 *   oscillation), clamped to [`minChunkSize`, `maxChunkSize`]. A parts upload has one part size for
 *   its whole life, so there `adaptive` means `by-size` and the parallel pool adapts instead.
 *
 * A chunk is held in memory while it is sent (it may be sent again), so `maxChunkSize` bounds the
 * memory of a tus upload; a parts upload holds up to `parallel` parts.
 */
import { ClientError } from './errors.ts';

export type ChunkSizeOption = number | 'by-size' | 'adaptive';

const MiB = 1024 * 1024;

export const CHUNK_DEFAULTS = Object.freeze({
  /** Default lower bound of an adaptive chunk, in bytes: 1 MiB. */
  minChunkSize: MiB,
  /** Default upper bound of an adaptive chunk, in bytes: 64 MiB. */
  maxChunkSize: 64 * MiB,
  /** Default transfer time an adaptive chunk aims at, in seconds. */
  targetSeconds: 4,
  /** First chunk of an upload whose size gives no better hint, in bytes: 8 MiB. */
  initialChunkSize: 8 * MiB,
});

/** The `by-size` tus chunk size: a 32nd of the file rounded up to MiB, clamped to [8 MiB, max]. */
export function chunkSizeBySize(
  size: number | undefined,
  maxChunkSize = CHUNK_DEFAULTS.maxChunkSize,
): number {
  const bySize = size === undefined ? 0 : Math.ceil(size / 32 / MiB) * MiB;
  return Math.max(1, Math.min(maxChunkSize, Math.max(CHUNK_DEFAULTS.initialChunkSize, bySize)));
}

export interface PlannerOptions {
  chunkSize: ChunkSizeOption;
  minChunkSize?: number;
  maxChunkSize?: number;
  targetSeconds?: number;
}

export class ChunkPlanner {
  readonly mode: 'fixed' | 'by-size' | 'adaptive';
  readonly #min: number;
  readonly #max: number;
  readonly #targetSeconds: number;
  #size: number;

  constructor(options: PlannerOptions, totalSize: number | undefined) {
    this.#min = options.minChunkSize ?? CHUNK_DEFAULTS.minChunkSize;
    this.#max = options.maxChunkSize ?? CHUNK_DEFAULTS.maxChunkSize;
    this.#targetSeconds = options.targetSeconds ?? CHUNK_DEFAULTS.targetSeconds;
    if (!(this.#min >= 1 && this.#max >= this.#min && this.#targetSeconds > 0)) {
      throw new ClientError('ERR_INVALID_OPTIONS', {
        message: 'chunk sizes need 1 ≤ minChunkSize ≤ maxChunkSize and targetSeconds > 0',
      });
    }
    if (typeof options.chunkSize === 'number') {
      if (!Number.isSafeInteger(options.chunkSize) || options.chunkSize < 1) {
        throw new ClientError('ERR_INVALID_OPTIONS', { message: 'chunkSize must be a positive integer' });
      }
      this.mode = 'fixed';
      this.#size = options.chunkSize;
    } else {
      this.mode = options.chunkSize;
      this.#size = chunkSizeBySize(totalSize, this.#max);
    }
  }

  /** Size of the next chunk, in bytes. */
  get chunkSize(): number {
    return this.#size;
  }

  /** End (exclusive) of the chunk that starts at `offset`. */
  end(offset: number, totalSize: number | undefined): number {
    const end = offset + this.#size;
    return totalSize === undefined ? end : Math.min(end, totalSize);
  }

  /** A chunk of `bytes` took `ms` from first byte sent to the server's answer. */
  observe(bytes: number, ms: number): void {
    if (this.mode !== 'adaptive' || bytes < this.#min / 4 || ms <= 0) return;
    const ideal = (bytes / ms) * 1000 * this.#targetSeconds;
    const next = (this.#size + ideal) / 2;
    this.#size = Math.min(this.#max, Math.max(this.#min, Math.round(next / 65_536) * 65_536));
  }
}
