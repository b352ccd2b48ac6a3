/**
 * SHA-256 in browsers. A `Blob`/`File` is fingerprinted in a Web Worker with hash-wasm (WebCrypto
 * has no streaming digest); the worker reads the file itself, so nothing is copied to it and the
 * page stays responsive. Where no worker can start (a Content-Security-Policy without
 * `worker-src`, a bundler that drops the worker file) the same hashing runs here, yielding between
 * slices. A chunk's digest (`Content-Digest`, `Upload-Checksum`) uses WebCrypto.
 */
import { hexToBytes } from '@ferry/protocol';
import { createSHA256, sha256 } from 'hash-wasm';
import { abortReason } from '../core/errors.ts';
import type { Hasher, UploadSource } from '../core/seams.ts';
import { blobUnreadable } from '../core/sources.ts';
import type { HashReply, HashRequest } from './hash-worker.ts';

const SLICE_BYTES = 8 * 1024 * 1024;

export interface BrowserHasherOptions {
  /**
   * Where the worker script is. Default: `hash-worker.js` next to this module, which bundlers that
   * understand `new Worker(new URL(…, import.meta.url))` (Vite, webpack 5, Parcel) emit by themselves.
   * `false` hashes on the main thread.
   */
  workerUrl?: string | URL | false;
}

function startWorker(workerUrl: string | URL | undefined): Worker {
  if (workerUrl !== undefined) return new Worker(workerUrl, { type: 'module' });
  return new Worker(new URL('./hash-worker.js', import.meta.url), { type: 'module' });
}

function hashInWorker(
  worker: Worker,
  file: Blob,
  name: string | undefined,
  signal: AbortSignal,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const done = () => {
      signal.removeEventListener('abort', onAbort);
      worker.terminate();
    };
    const onAbort = () => {
      done();
      reject(abortReason(signal));
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    worker.onmessage = (event: MessageEvent<HashReply>) => {
      done();
      const reply = event.data;
      if ('sha256' in reply) resolve(reply.sha256);
      else
        reject(
          blobUnreadable(name, Object.assign(new Error(reply.error.message), { name: reply.error.name })),
        );
    };
    worker.onerror = (event) => {
      done();
      event.preventDefault();
      reject(new WorkerFailed(event.message));
    };
    const request: HashRequest = { blob: file, sliceBytes: SLICE_BYTES };
    worker.postMessage(request);
  });
}

/** The worker script could not load or run: hash here instead. */
class WorkerFailed extends Error {}

async function hashHere(source: UploadSource, signal: AbortSignal): Promise<string> {
  const size = source.size;
  if (size === undefined) throw new TypeError('a source of unknown size cannot be hashed up front');
  const hasher = await createSHA256();
  hasher.init();
  for (let offset = 0; offset < size; offset += SLICE_BYTES) {
    if (signal.aborted) throw abortReason(signal);
    hasher.update(await source.read(offset, Math.min(size, offset + SLICE_BYTES), signal));
    // Let the page paint and handle input between slices.
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  return hasher.digest('hex');
}

export function createBrowserHasher(options: BrowserHasherOptions = {}): Hasher {
  const workerUrl = options.workerUrl;
  return {
    async hashSource(source, signal) {
      if (source.file !== undefined && workerUrl !== false) {
        let worker: Worker | undefined;
        try {
          worker = startWorker(workerUrl);
        } catch {
          worker = undefined;
        }
        if (worker !== undefined) {
          try {
            return await hashInWorker(worker, source.file, source.name, signal);
          } catch (error) {
            if (!(error instanceof WorkerFailed)) throw error;
          }
        }
      }
      return hashHere(source, signal);
    },
    async digest(bytes) {
      // WebCrypto exists in secure contexts (https, localhost); elsewhere hash-wasm does it.
      if (globalThis.crypto?.subtle !== undefined) {
        return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
      }
      return hexToBytes(await sha256(bytes));
    },
  };
}
