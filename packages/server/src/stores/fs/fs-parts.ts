/**
 * Finished concatenations: `files/<id>.parts/` holds hard links `000001`, `000002`, … to the
 * partial uploads' finished files, in order. The directory is built under a `.tmp` name and renamed
 * into place, so readers see either nothing or every part. A part's bytes belong to the inode, so
 * removing a partial upload later leaves the final file intact.
 */
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { addAbortSignal, Readable } from 'node:stream';

/** Reads use large chunks: fewer thread-pool round trips per byte served. */
export const READ_HIGH_WATER_MARK = 1024 * 1024;

const PART_NAME = /^\d{6,}$/;

export interface PartFile {
  path: string;
  size: number;
  modifiedAt: Date;
}

/** Name of the `index`-th part (0-based): fixed width, so names sort in order. */
export function partName(index: number): string {
  return String(index + 1).padStart(6, '0');
}

/** The parts of a parts directory, in order, with their sizes. */
export async function listParts(directory: string): Promise<PartFile[]> {
  const names = (await readdir(directory)).filter((name) => PART_NAME.test(name));
  names.sort((a, b) => Number(a) - Number(b));
  return Promise.all(
    names.map(async (name) => {
      const path = join(directory, name);
      const info = await stat(path);
      return { path, size: info.size, modifiedAt: info.mtime };
    }),
  );
}

/** Streams bytes `start`..`end` (inclusive) of the concatenation of the parts in `directory`. */
export function readParts(
  directory: string,
  range: { start: number; end: number },
  signal: AbortSignal | undefined,
): Readable {
  async function* generate(): AsyncGenerator<Buffer> {
    const parts = await listParts(directory);
    let base = 0;
    for (const part of parts) {
      const partStart = base;
      const partEnd = base + part.size - 1;
      base += part.size;
      if (part.size === 0 || partEnd < range.start) continue;
      if (partStart > range.end) break;
      const stream = createReadStream(part.path, {
        start: Math.max(range.start, partStart) - partStart,
        end: Math.min(range.end, partEnd) - partStart,
        highWaterMark: READ_HIGH_WATER_MARK,
      });
      try {
        for await (const chunk of stream) yield chunk as Buffer;
      } finally {
        stream.destroy();
      }
    }
  }
  const readable = Readable.from(generate(), { objectMode: false, highWaterMark: READ_HIGH_WATER_MARK });
  return signal === undefined ? readable : addAbortSignal(signal, readable);
}
