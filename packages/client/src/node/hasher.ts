/**
 * SHA-256 on Node with node:crypto. A file is hashed in a worker thread that reads it by path (the
 * fingerprint of a large file never blocks the event loop); bytes in memory are hashed in this
 * thread in 4 MiB steps that yield to the event loop in between.
 */
import { createHash } from 'node:crypto';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { ClientError } from '../core/errors.ts';
import type { Hasher, UploadSource } from '../core/seams.ts';
import { NodeFileSource } from './sources.ts';

const STEP_BYTES = 4 * 1024 * 1024;

// The worker is a sibling module: `.ts` when running from sources, `.js` once compiled.
const WORKER_URL = new URL(
  import.meta.url.endsWith('.ts') ? './hash-worker.ts' : './hash-worker.js',
  import.meta.url,
);

function hashFileInWorker(source: NodeFileSource, signal: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const worker = new Worker(WORKER_URL, { workerData: { path: source.path, size: source.size } });
    const onAbort = () => {
      void worker.terminate();
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    const settle = () => signal.removeEventListener('abort', onAbort);
    worker.once('message', (message: { sha256?: string; error?: { code?: string; message: string } }) => {
      settle();
      void worker.terminate();
      if (message.sha256 !== undefined) resolve(message.sha256);
      else {
        reject(
          new ClientError('ERR_SOURCE_UNREADABLE', {
            message: `${source.path} can no longer be read (${message.error?.code ?? message.error?.message}); re-select the file`,
          }),
        );
      }
    });
    worker.once('error', (error) => {
      settle();
      reject(error);
    });
  });
}

export function createNodeHasher(): Hasher {
  return {
    async hashSource(source: UploadSource, signal: AbortSignal): Promise<string> {
      if (source instanceof NodeFileSource) return hashFileInWorker(source, signal);
      const size = source.size;
      if (size === undefined) throw new TypeError('a source of unknown size cannot be hashed up front');
      const hash = createHash('sha256');
      for (let offset = 0; offset < size; offset += STEP_BYTES) {
        if (signal.aborted) throw signal.reason;
        hash.update(await source.read(offset, Math.min(size, offset + STEP_BYTES), signal));
        if (offset + STEP_BYTES < size) await yieldToLoop();
      }
      return hash.digest('hex');
    },
    async digest(bytes: Uint8Array): Promise<Uint8Array> {
      return createHash('sha256').update(bytes).digest();
    },
    incremental() {
      const hash = createHash('sha256');
      return {
        update: (bytes) => {
          hash.update(bytes);
        },
        digestHex: () => hash.digest('hex'),
      };
    },
  };
}
