import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFerry, type Ferry, type FerryOptions } from '@ferry/server';

export const MiB = 1024 * 1024;

import { type Digest, downloadDigest as download } from '@ferry/testing';

export type { Digest } from '@ferry/testing';
export {
  browserSkipReason,
  CHROMIUM_ARGS,
  chromiumPath,
  downloadDigest as download,
  fileDigest,
  writeRandomFile,
} from '@ferry/testing';

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
