/** Files and digests for tests: big pseudo-random files written fast, and SHA-256 of a file or a download. */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, writeFile } from 'node:fs/promises';
import { request } from 'node:http';

const MiB = 1024 * 1024;

export interface Digest {
  sha256: string;
  size: number;
}

async function digestOf(chunks: AsyncIterable<Buffer>): Promise<Digest> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of chunks) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { sha256: hash.digest('hex'), size };
}

/** SHA-256 (hex) and size of a file. */
export function fileDigest(path: string): Promise<Digest> {
  return digestOf(createReadStream(path, { highWaterMark: 4 * MiB }));
}

/** `GET url`: the status, and the SHA-256 and size of the body. */
export function downloadDigest(url: string): Promise<Digest & { status: number }> {
  return new Promise((resolve, reject) => {
    request(url, { agent: false }, (res) => {
      digestOf(res).then((digest) => resolve({ ...digest, status: res.statusCode ?? 0 }), reject);
    })
      .on('error', reject)
      .end();
  });
}

/** Writes `size` random bytes to `path` (a random 1 MiB block, each copy stamped with its index). */
export async function writeRandomFile(path: string, size: number): Promise<void> {
  if (size < MiB) {
    await writeFile(path, randomBytes(size));
    return;
  }
  const block = randomBytes(MiB);
  const handle = await open(path, 'w');
  try {
    for (let offset = 0; offset < size; offset += MiB) {
      block.writeUInt32LE(offset / MiB, 0);
      await handle.write(block, 0, Math.min(MiB, size - offset), offset);
    }
  } finally {
    await handle.close();
  }
}

/** A 1×1 PNG: the smallest file whose magic bytes say `image/png`. */
export const PNG_1X1: Buffer = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==',
  'base64',
);

/** What the magic bytes of `exeBytes` are sniffed as. */
export const EXE_TYPE = 'application/x-msdownload';

/** A Windows executable's header (MZ, then the PE signature at the offset MZ points to), padded with `fill`. */
export function exeBytes(size = 6000, fill = 0x90): Buffer {
  const bytes = Buffer.alloc(size, fill);
  bytes.write('MZ', 0, 'latin1');
  bytes.writeUInt32LE(0x80, 0x3c);
  bytes.write('PE\0\0', 0x80, 'latin1');
  return bytes;
}
