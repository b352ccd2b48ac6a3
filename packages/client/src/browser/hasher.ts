/**
 * SHA-256 in browsers. A `Blob`/`File` is fingerprinted in a Web Worker with hash-wasm (WebCrypto
 * has no streaming digest); the worker reads the file itself, so nothing is copied to it and the
 * page stays responsive. Where no worker can start (a Content-Security-Policy without
 * `worker-src`, a bundler that drops the worker file) the same hashing runs here, yielding between
 * slices. A chunk's digest (`Content-Digest`, `Upload-Checksum`) of a `Blob` slice is computed in a
 * worker too (it reads the slice itself); bytes already in memory are digested with WebCrypto. The
 * same worker cuts the slices of a picked file that requests send (`sliceInWorker`): Chromium's
 * `Blob.slice` waits for the browser process, which is slow while it reads the file.
 */
import { hexToBytes } from '@ferry/protocol';
import { createSHA256, sha256 } from 'hash-wasm';
import { abortReason } from '../core/errors.ts';
import type { Hasher, UploadSource } from '../core/seams.ts';
import { blobUnreadable } from '../core/sources.ts';
import type { HashReply, HashRequest, WorkerError } from './hash-worker.ts';

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
      else if ('error' in reply) reject(blobUnreadable(name, asError(reply.error)));
      else reject(new WorkerFailed('the worker answered something else'));
    };
    worker.onerror = (event) => {
      done();
      event.preventDefault();
      reject(new WorkerFailed(event.message));
    };
    const request: HashRequest = { kind: 'file', blob: file, sliceBytes: SLICE_BYTES };
    worker.postMessage(request);
  });
}

/** The worker script could not load or run: hash here instead. */
class WorkerFailed extends Error {}

function asError(error: WorkerError): Error {
  return Object.assign(new Error(error.message), { name: error.name });
}

/** A worker left idle this long is stopped (the next digest starts one again). */
const DIGEST_WORKER_IDLE_MS = 10_000;

/**
 * One worker answering digest and slice requests by id, shared by every upload of the page. It
 * starts on the first request and stops when idle. When it cannot start or run, `digest` and
 * `slice` reject with `WorkerFailed` and the caller does the work on this thread from then on.
 */
class DigestWorker {
  readonly #workerUrl: string | URL | undefined;
  #worker: Worker | undefined;
  #broken = false;
  #nextId = 1;
  readonly #pending = new Map<
    number,
    { resolve: (reply: Uint8Array | Blob) => void; reject: (error: unknown) => void }
  >();
  #idle: ReturnType<typeof setTimeout> | undefined;

  constructor(workerUrl: string | URL | undefined) {
    this.#workerUrl = workerUrl;
  }

  get broken(): boolean {
    return this.#broken;
  }

  digest(blob: Blob): Promise<Uint8Array> {
    return this.#ask((id) => ({ kind: 'digest', id, blob })) as Promise<Uint8Array>;
  }

  slice(blob: Blob, start: number, end: number): Promise<Blob> {
    return this.#ask((id) => ({ kind: 'slice', id, blob, start, end })) as Promise<Blob>;
  }

  #ask(request: (id: number) => HashRequest): Promise<Uint8Array | Blob> {
    const worker = this.#start();
    if (worker === undefined) return Promise.reject(new WorkerFailed('no worker'));
    clearTimeout(this.#idle);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      worker.postMessage(request(id));
    });
  }

  #start(): Worker | undefined {
    if (this.#broken) return undefined;
    if (this.#worker !== undefined) return this.#worker;
    let worker: Worker;
    try {
      worker = startWorker(this.#workerUrl);
    } catch {
      this.#broken = true;
      return undefined;
    }
    worker.onmessage = (event: MessageEvent<HashReply>) => {
      const reply = event.data;
      if (!('id' in reply)) return;
      const waiting = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      if ('digest' in reply) waiting?.resolve(new Uint8Array(reply.digest));
      else if ('slice' in reply) waiting?.resolve(reply.slice);
      else waiting?.reject(blobUnreadable(undefined, asError(reply.error)));
      if (this.#pending.size === 0) {
        this.#idle = setTimeout(() => this.#stop(), DIGEST_WORKER_IDLE_MS);
      }
    };
    worker.onerror = (event) => {
      event.preventDefault();
      this.#broken = true;
      this.#stop();
    };
    this.#worker = worker;
    return worker;
  }

  #stop(): void {
    clearTimeout(this.#idle);
    this.#worker?.terminate();
    this.#worker = undefined;
    for (const waiting of this.#pending.values()) waiting.reject(new WorkerFailed('the worker stopped'));
    this.#pending.clear();
  }
}

const digestWorkers = new Map<string, DigestWorker>();

function digestWorkerFor(workerUrl: string | URL | undefined): DigestWorker {
  const key = workerUrl === undefined ? '' : String(workerUrl);
  let worker = digestWorkers.get(key);
  if (worker === undefined) {
    worker = new DigestWorker(workerUrl);
    digestWorkers.set(key, worker);
  }
  return worker;
}

/**
 * Bytes [start, end) of `blob` as a `Blob` cut in the page's shared worker, so that this thread
 * never waits for the browser to register the slice; cut here where no worker can run.
 */
export async function sliceInWorker(
  workerUrl: string | URL | false | undefined,
  blob: Blob,
  start: number,
  end: number,
): Promise<Blob> {
  if (workerUrl !== false && typeof Worker !== 'undefined') {
    const worker = digestWorkerFor(workerUrl);
    if (!worker.broken) {
      try {
        return await worker.slice(blob, start, end);
      } catch (error) {
        if (!(error instanceof WorkerFailed)) throw error;
      }
    }
  }
  return blob.slice(start, end);
}

/** SHA-256 of bytes in memory, on this thread (WebCrypto hands the work to the browser). */
async function digestHere(bytes: Uint8Array): Promise<Uint8Array> {
  // WebCrypto exists in secure contexts (https, localhost); elsewhere hash-wasm does it.
  if (globalThis.crypto?.subtle !== undefined) {
    return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  }
  return hexToBytes(await sha256(bytes));
}

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
    async digest(body) {
      if (body instanceof Uint8Array) return digestHere(body);
      if (workerUrl !== false && typeof Worker !== 'undefined') {
        const worker = digestWorkerFor(workerUrl);
        if (!worker.broken) {
          try {
            return await worker.digest(body);
          } catch (error) {
            if (!(error instanceof WorkerFailed)) throw error;
          }
        }
      }
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(await body.arrayBuffer());
      } catch (error) {
        throw blobUnreadable(undefined, error);
      }
      return digestHere(bytes);
    },
  };
}
