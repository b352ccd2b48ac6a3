/**
 * The browser's hashing worker, off the main thread:
 * - `file`: SHA-256 of a whole `Blob` with hash-wasm, read slice by slice (the fingerprint; a 1 GiB
 *   file never blocks the page). One message in, one out; the worker is then terminated.
 * - `digest`: SHA-256 of one part or chunk (a `Blob` slice), with WebCrypto where it exists. Many
 *   messages, answered by `id`; the worker stays up while there is work.
 * - `slice`: a slice of a `Blob`, cut here and sent back. Chromium registers every new `Blob` with
 *   its browser process in a synchronous call, which waits as long as the browser is busy reading
 *   the file (over 150 ms during a big upload): cut on the page's thread, a chunk's slice stalls it.
 */
import { createSHA256 } from 'hash-wasm';

export type HashRequest =
  | { kind: 'file'; blob: Blob; sliceBytes: number }
  | { kind: 'digest'; id: number; blob: Blob }
  | { kind: 'slice'; id: number; blob: Blob; start: number; end: number };

export interface WorkerError {
  name: string;
  message: string;
}

export type HashReply =
  | { sha256: string }
  | { error: WorkerError }
  | { id: number; digest: ArrayBuffer }
  | { id: number; slice: Blob }
  | { id: number; error: WorkerError };

interface WorkerScope {
  onmessage: ((event: MessageEvent<HashRequest>) => void) | null;
  postMessage(message: HashReply, transfer?: Transferable[]): void;
}

const scope = globalThis as unknown as WorkerScope;

function describe(error: unknown): WorkerError {
  const { name, message } = error instanceof Error ? error : new Error(String(error));
  return { name, message };
}

function readSlice(blob: Blob, offset: number, sliceBytes: number): Promise<ArrayBuffer> | undefined {
  if (offset >= blob.size) return undefined;
  const reading = blob.slice(offset, Math.min(blob.size, offset + sliceBytes)).arrayBuffer();
  reading.catch(() => {});
  return reading;
}

async function hashFile(blob: Blob, sliceBytes: number): Promise<string> {
  const hasher = await createSHA256();
  hasher.init();
  // The browser reads the next slice (in its own process) while this one is hashed.
  let next = readSlice(blob, 0, sliceBytes);
  for (let offset = 0; next !== undefined; offset += sliceBytes) {
    const bytes = await next;
    next = readSlice(blob, offset + sliceBytes, sliceBytes);
    hasher.update(new Uint8Array(bytes));
  }
  return hasher.digest('hex');
}

async function digest(blob: Blob): Promise<ArrayBuffer> {
  const bytes = await blob.arrayBuffer();
  if (globalThis.crypto?.subtle !== undefined) return crypto.subtle.digest('SHA-256', bytes);
  const hasher = await createSHA256();
  hasher.init();
  hasher.update(new Uint8Array(bytes));
  return hasher.digest('binary').slice().buffer;
}

scope.onmessage = async (event) => {
  const request = event.data;
  if (request.kind === 'slice') {
    try {
      scope.postMessage({ id: request.id, slice: request.blob.slice(request.start, request.end) });
    } catch (error) {
      scope.postMessage({ id: request.id, error: describe(error) });
    }
    return;
  }
  if (request.kind === 'digest') {
    try {
      const result = await digest(request.blob);
      scope.postMessage({ id: request.id, digest: result }, [result]);
    } catch (error) {
      scope.postMessage({ id: request.id, error: describe(error) });
    }
    return;
  }
  try {
    scope.postMessage({ sha256: await hashFile(request.blob, request.sliceBytes) });
  } catch (error) {
    scope.postMessage({ error: describe(error) });
  }
};
