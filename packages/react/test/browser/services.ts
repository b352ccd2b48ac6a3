/**
 * What the browser tests run against: Debian's Chromium (skipped without it, except when
 * `FERRY_REQUIRE_SERVICES=1`, as in the client's browser tests) and a real Ferry in this process on
 * loopback port 0 — the server `ferry serve` runs — with files to pick and their digests.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFerry, type Ferry, type FerryOptions } from '@ferry/server';

export const MiB = 1024 * 1024;

export const chromiumPath = process.env['FERRY_CHROMIUM'] ?? '/usr/bin/chromium';

/** `undefined` when the browser tests can run; else why they are skipped. */
export function browserSkipReason(): string | undefined {
  if (existsSync(chromiumPath)) return undefined;
  const why = `no Chromium at ${chromiumPath} (apt-get install chromium, or set FERRY_CHROMIUM)`;
  if (process.env['FERRY_REQUIRE_SERVICES'] === '1') throw new Error(why);
  return why;
}

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

export function fileDigest(path: string): Promise<Digest> {
  return digestOf(createReadStream(path));
}

/** `GET url`: the status and the body's digest. */
export function download(url: string): Promise<Digest & { status: number }> {
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

export interface TestFerry {
  ferry: Ferry;
  /** `http://127.0.0.1:PORT` */
  origin: string;
  /** The tus creation URL. */
  endpoint: string;
  /** Digest of the finished file at `url`, as the server serves it. */
  stored(url: string): Promise<Digest>;
  /** Body bytes the server received and stored so far. */
  bytesReceived(): Promise<number>;
  stop(): Promise<void>;
}

export async function startFerry(options: FerryOptions = {}): Promise<TestFerry> {
  const dataDir = await mkdtemp(join(tmpdir(), 'ferry-react-server-'));
  const ferry = await createFerry({ dataDir, logLevel: 'silent', ...options });
  const { url } = await ferry.listen({ host: '127.0.0.1', port: 0 });
  return {
    ferry,
    origin: url,
    endpoint: `${url}${ferry.config.basePath}`,
    async stored(fileUrl) {
      const { status, ...digest } = await download(fileUrl);
      if (status !== 200) throw new Error(`GET ${fileUrl} answered ${status}`);
      return digest;
    },
    async bytesReceived() {
      return (await ferry.metrics.bytesReceived.get()).values[0]?.value ?? 0;
    },
    async stop() {
      try {
        await ferry.close();
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    },
  };
}
