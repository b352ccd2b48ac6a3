/**
 * What the body readers of fs-append.ts need from a writer, and the byte budget all writers of the
 * process share. Two writers implement it: the buffered one (fs-append.ts) and the direct-I/O one
 * (fs-direct.ts).
 */

/**
 * Received-but-unwritten bytes of all appends in this process together. Past it, a body with
 * anything queued pauses until its own write completes: with many concurrent uploads and a disk
 * slower than the network, memory stays bounded (64 uploads × 8 MiB would be 512 MiB) while each
 * upload keeps one write going.
 */
export const PROCESS_HIGH_WATER_BYTES = 16 * 1024 * 1024;

/** The process-wide count behind `PROCESS_HIGH_WATER_BYTES`. */
export const processBudget = { held: 0 };

/** Takes chunks as they arrive and writes them at increasing file positions. */
export interface BodyWriter {
  /** Bytes of the body the kernel accepted. */
  readonly written: number;
  /** The first write error; once set, nothing more is written. */
  readonly failure: unknown;
  /** True while the body should stay paused. */
  readonly full: boolean;
  /** Called after a write completes while the writer has room again. */
  onRoom: (() => void) | undefined;
  /** Called once when a write fails (the reader should stop). */
  onFail: (() => void) | undefined;
  /** Takes one chunk of the body (the writer may keep it until written: callers must not reuse it). */
  push(chunk: Uint8Array): void;
  /** Calls `callback` once everything pushed is written, or as soon as a write has failed. */
  drain(callback: () => void): void;
}
