/**
 * Direct I/O (O_DIRECT) for the fs store's write path.
 *
 * Why: writing through the page cache costs a fresh page-cache page per 4 KiB, and on a VM that
 * hands freed memory back to its host each of those is expensive — measured with dd on the
 * development VM, 1 GiB in 4 MiB blocks: buffered 179–456 MB/s and 0.9–2.0 s of system CPU,
 * O_DIRECT 619–834 MB/s and 0.18 s. Direct I/O goes from user memory to the device.
 *
 * Its rules (Linux, open(2) "O_DIRECT"): the file offset, the length AND the memory address of each
 * write must be aligned to the device's block. Here everything is aligned to 4096 (`BLOCK`).
 * JavaScript cannot see a buffer's address, so `SlabPool` allocates a slab with a block of slack
 * and finds its aligned start by trying a direct write from each 16-byte step (malloc aligns to
 * 16) until the kernel stops answering EINVAL. Slabs are reused, never freed.
 *
 * How an append is laid out in the file (`DirectWriter`):
 *   - Arriving chunks are copied into the current slab; a full slab is written with a second fd
 *     opened O_WRONLY|O_DIRECT, at a block-aligned file position.
 *   - An append that starts inside a block first reads that block's stored bytes (buffered) into
 *     the slab's start, so the first direct write starts aligned and rewrites them unchanged.
 *   - Whatever does not fill a whole block at the end (body ended, interrupted, limit reached) is
 *     written through the ordinary buffered fd at its exact position, after every direct write.
 *   - One write in flight per append: a direct write moves the file size only when it completes,
 *     so two in flight could complete out of order and leave a size past a hole, which a reader (or
 *     a crash) would take as stored bytes. The file's size is always the bytes stored.
 *
 * A file system that refuses O_DIRECT, or accepts unaligned direct writes (tmpfs since Linux 6.6:
 * it has no cache to bypass), is written buffered: see `probeDirectIo`.
 */
import { closeSync, constants, openSync, read, unlinkSync, write, writeSync } from 'node:fs';
import { join } from 'node:path';
import { type BodyWriter, PROCESS_HIGH_WATER_BYTES, processBudget } from './fs-writer.ts';

/** Alignment of every direct write: file offset, length and memory address. */
export const BLOCK = 4096;
/**
 * Bytes of one slab: the size of a direct write. With one write in flight, dd measured 330 MB/s at
 * 64 KiB, 676 at 256 KiB, 997 at 1 MiB and 971 at 2 MiB here; 1 MiB slabs reach the device's rate
 * and let twice as many uploads write directly as 2 MiB ones (64 concurrent uploads ran faster
 * and cheaper with 1 MiB or 512 KiB slabs than with 2 MiB in interleaved runs).
 */
export const SLAB_BYTES = 1024 * 1024;
/**
 * Slabs a store ever allocates: 16 MiB, as much as `PROCESS_HIGH_WATER_BYTES`. An append that
 * finds none free writes buffered; an append takes a second slab (to fill one while the other is
 * written) only while half are free.
 */
export const MAX_SLABS = 16;

const O_DIRECT: number | undefined = constants.O_DIRECT;
let probeCount = 0;

/** Runs `use` on a fresh O_DIRECT file in `directory`, removed afterwards. */
function withProbeFile<T>(directory: string, use: (fd: number) => T): T {
  const path = join(directory, `.direct-io-probe-${process.pid}-${probeCount++}`);
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | O_DIRECT!, 0o600);
  try {
    return use(fd);
  } finally {
    closeSync(fd);
    unlinkSync(path);
  }
}

/** The first offset into `raw` from which a one-block direct write succeeds. */
function alignedStart(fd: number, raw: Buffer): number | undefined {
  for (let start = 0; start < BLOCK; start += 16) {
    try {
      writeSync(fd, raw, start, BLOCK, 0);
      return start;
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'EINVAL') throw error;
    }
  }
  return undefined;
}

/**
 * Whether appends in `directory` can bypass the page cache. Returns why not, or `undefined` when
 * they can. Synchronous: runs once, when a store is created.
 */
export function probeDirectIo(directory: string): string | undefined {
  if (O_DIRECT === undefined) return 'this platform has no O_DIRECT';
  try {
    return withProbeFile(directory, (fd) => {
      const raw = Buffer.allocUnsafeSlow(2 * BLOCK);
      const start = alignedStart(fd, raw);
      if (start === undefined) return 'no memory alignment was accepted for an O_DIRECT write';
      try {
        writeSync(fd, raw, start, 1, 0);
      } catch (error) {
        if ((error as { code?: unknown }).code === 'EINVAL') return undefined;
        throw error;
      }
      return 'the file system accepts unaligned O_DIRECT writes, so they go through its cache anyway';
    });
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === 'EINVAL') return 'the file system refuses O_DIRECT';
    return `probing O_DIRECT failed: ${(error as Error).message}`;
  }
}

/** Block-aligned slabs of `SLAB_BYTES`, shared by the appends of one store. */
export class SlabPool {
  #directory: string;
  #free: Buffer[] = [];
  #allocated = 0;
  #inUse = 0;

  constructor(directory: string) {
    this.#directory = directory;
  }

  /** Slabs handed out and not yet released. */
  get inUse(): number {
    return this.#inUse;
  }

  /** A slab, or `undefined` when none may be had now (`second`: for an append that has one). */
  acquire(second: boolean): Buffer | undefined {
    if (second && this.#inUse >= MAX_SLABS / 2) return undefined;
    let slab = this.#free.pop();
    if (slab === undefined) {
      if (this.#allocated >= MAX_SLABS) return undefined;
      slab = this.#allocate();
      if (slab === undefined) return undefined;
      this.#allocated++;
    }
    this.#inUse++;
    return slab;
  }

  release(slab: Buffer): void {
    this.#inUse--;
    this.#free.push(slab);
  }

  #allocate(): Buffer | undefined {
    const raw = Buffer.allocUnsafeSlow(SLAB_BYTES + BLOCK);
    try {
      const start = withProbeFile(this.#directory, (fd) => alignedStart(fd, raw));
      return start === undefined ? undefined : raw.subarray(start, start + SLAB_BYTES);
    } catch {
      // The directory went away or is full: this append writes buffered.
      return undefined;
    }
  }
}

type Done = (error?: NodeJS.ErrnoException | null) => void;

/** Writes `length` bytes of `buffer` from `offset` at `position`, continuing short writes. */
function writeAll(fd: number, buffer: Buffer, offset: number, length: number, position: number, done: Done) {
  write(fd, buffer, offset, length, position, (error, count) => {
    if (error) done(error);
    else if (count === length) done();
    else if (count === 0)
      done(Object.assign(new Error('the file system accepted no bytes'), { code: 'EIO' }));
    else writeAll(fd, buffer, offset + count, length - count, position + count, done);
  });
}

export interface DirectWriterOptions {
  /** The buffered fd of the data file (prefix reads, tail writes). */
  fd: number;
  /** The data file, opened a second time with O_DIRECT at the first direct write. */
  path: string;
  /** Where the body starts in the file. */
  position: number;
  pool: SlabPool;
  /** The first slab, already acquired from `pool`. */
  slab: Buffer;
}

/** Copies chunks into aligned slabs and writes whole blocks with O_DIRECT, one write at a time. */
export class DirectWriter implements BodyWriter {
  written = 0;
  failure: unknown;
  onRoom: (() => void) | undefined;
  onFail: (() => void) | undefined;

  #fd: number;
  #path: string;
  /** The O_DIRECT fd: `undefined` until opened, `null` if the open refused O_DIRECT (write buffered). */
  #directFd: number | null | undefined;
  #pool: SlabPool;
  /** The slab being filled; `undefined` only while its bytes wait behind the write in flight. */
  #slab: Buffer | undefined;
  #spare: Buffer | undefined;
  /** File position of `#slab[0]` (block-aligned). */
  #base: number;
  /** Bytes of `#slab` in use, counting the prefix. */
  #fill: number;
  /** Leading bytes of `#slab` that are the file's bytes before the body, not yet read from it. */
  #prefix: number;
  /** Chunks (or their rests) that did not fit: they wait for the write in flight. */
  #waiting: Uint8Array[] = [];
  #waitingBytes = 0;
  /** Body bytes received and not yet written: this writer's part of `processBudget.held`. */
  #held = 0;
  #writing = false;
  #ending = false;
  #done = false;
  #onIdle: (() => void) | undefined;

  constructor(options: DirectWriterOptions) {
    this.#fd = options.fd;
    this.#path = options.path;
    this.#pool = options.pool;
    this.#slab = options.slab;
    this.#prefix = options.position % BLOCK;
    this.#base = options.position - this.#prefix;
    this.#fill = this.#prefix;
  }

  get full(): boolean {
    if (this.#waitingBytes > 0) return true;
    return (
      processBudget.held >= PROCESS_HIGH_WATER_BYTES &&
      this.#held > 0 &&
      (this.#writing || this.#fill >= BLOCK)
    );
  }

  push(chunk: Uint8Array): void {
    if (this.failure !== undefined || this.#done) return;
    this.#held += chunk.byteLength;
    processBudget.held += chunk.byteLength;
    if (this.#waiting.length === 0 && this.#slab !== undefined) chunk = this.#copyIn(chunk);
    if (chunk.byteLength > 0) {
      this.#waiting.push(chunk);
      this.#waitingBytes += chunk.byteLength;
    }
    this.#step();
  }

  drain(callback: () => void): void {
    if (this.failure !== undefined || this.#done) {
      callback();
      return;
    }
    this.#onIdle = callback;
    this.#ending = true;
    this.#step();
  }

  /** Copies what fits of `chunk` into the slab; returns the rest. */
  #copyIn(chunk: Uint8Array): Uint8Array {
    const slab = this.#slab!;
    const room = slab.byteLength - this.#fill;
    if (chunk.byteLength <= room) {
      slab.set(chunk, this.#fill);
      this.#fill += chunk.byteLength;
      return chunk.subarray(chunk.byteLength);
    }
    slab.set(chunk.subarray(0, room), this.#fill);
    this.#fill += room;
    return chunk.subarray(room);
  }

  /** Starts whatever write is due; called after every push and every completed write. */
  #step(): void {
    if (this.failure !== undefined || this.#writing || this.#done) return;
    while (this.#waiting.length > 0 && this.#fill < this.#slab!.byteLength) {
      const rest = this.#copyIn(this.#waiting[0]!);
      this.#waitingBytes -= this.#waiting[0]!.byteLength - rest.byteLength;
      if (rest.byteLength === 0) this.#waiting.shift();
      else this.#waiting[0] = rest;
    }
    if (this.#fill === this.#slab!.byteLength) {
      this.#writeBlocks(this.#fill);
      return;
    }
    const aligned = this.#fill - (this.#fill % BLOCK);
    // Near the process bound, write what we hold instead of waiting for a full slab.
    if (aligned > 0 && (this.#ending || processBudget.held >= PROCESS_HIGH_WATER_BYTES)) {
      this.#writeBlocks(aligned);
      return;
    }
    if (this.#ending) this.#writeTail();
  }

  /** Writes `#slab[0, length)` (whole blocks) with O_DIRECT; the rest moves to the next slab. */
  #writeBlocks(length: number): void {
    const slab = this.#slab!;
    const position = this.#base;
    const prefix = this.#prefix;
    const rest = this.#fill - length;
    const next = this.#spare ?? this.#pool.acquire(true);
    this.#spare = undefined;
    if (next !== undefined) next.set(slab.subarray(length, this.#fill));
    this.#slab = next;
    this.#base += length;
    this.#fill = rest;
    this.#prefix = 0;
    this.#writing = true;
    this.#directWrite(slab, length, position, prefix, (error) => {
      this.#writing = false;
      if (error) {
        this.#fail(error, slab);
        return;
      }
      const body = length - prefix;
      this.written += body;
      this.#held -= body;
      processBudget.held -= body;
      if (this.#slab === undefined) {
        // No second slab was free: the rest waited in this one.
        slab.copyWithin(0, length, length + rest);
        this.#slab = slab;
      } else if (this.#spare === undefined) {
        this.#spare = slab;
      } else {
        this.#pool.release(slab);
      }
      this.#step();
      if (!this.full) this.onRoom?.();
    });
  }

  #directWrite(slab: Buffer, length: number, position: number, prefix: number, done: Done): void {
    if (this.#directFd === undefined) {
      // Synchronous, like the store's other per-upload metadata calls (see fs-data-store.ts).
      try {
        this.#directFd = openSync(this.#path, constants.O_WRONLY | O_DIRECT!);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EINVAL') {
          done(error as NodeJS.ErrnoException);
          return;
        }
        this.#directFd = null;
      }
    }
    const fd = this.#directFd ?? this.#fd;
    const writeSlab = () =>
      write(fd, slab, 0, length, position, (error, count) => {
        if (error) done(error);
        else if (count === length) done();
        // A short direct write (a full disk): the rest need not be aligned, write it buffered.
        else writeAll(this.#fd, slab, count, length - count, position + count, done);
      });
    if (prefix === 0) {
      writeSlab();
      return;
    }
    read(this.#fd, slab, 0, prefix, position, (error, count) => {
      if (error) done(error);
      else if (count !== prefix) {
        done(Object.assign(new Error('the data file is shorter than the append offset'), { code: 'EIO' }));
      } else writeSlab();
    });
  }

  /** Writes the bytes that do not fill a block, buffered, at their exact position; then finishes. */
  #writeTail(): void {
    const slab = this.#slab!;
    const length = this.#fill - this.#prefix;
    if (length === 0) {
      this.#finish();
      return;
    }
    this.#writing = true;
    writeAll(this.#fd, slab, this.#prefix, length, this.#base + this.#prefix, (error) => {
      this.#writing = false;
      if (error) {
        this.#fail(error, undefined);
        return;
      }
      this.written += length;
      this.#held -= length;
      processBudget.held -= length;
      this.#finish();
    });
  }

  #finish(): void {
    this.#done = true;
    this.#release(undefined);
    this.#idle();
  }

  #fail(error: unknown, inFlight: Buffer | undefined): void {
    this.failure = error;
    processBudget.held -= this.#held;
    this.#held = 0;
    this.#waiting = [];
    this.#waitingBytes = 0;
    this.#release(inFlight);
    this.#idle();
    this.onFail?.();
  }

  #release(inFlight: Buffer | undefined): void {
    for (const slab of [this.#slab, this.#spare, inFlight]) if (slab !== undefined) this.#pool.release(slab);
    this.#slab = this.#spare = undefined;
    if (typeof this.#directFd === 'number') closeSync(this.#directFd);
    this.#directFd = null;
  }

  #idle(): void {
    const callback = this.#onIdle;
    this.#onIdle = undefined;
    callback?.();
  }
}
