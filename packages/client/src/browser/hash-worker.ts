/**
 * The browser's fingerprint worker: SHA-256 of a `Blob` with hash-wasm, reading it slice by slice
 * off the main thread (a 200 MB file never blocks the page). One message in, one message out.
 */
import { createSHA256 } from 'hash-wasm';

export interface HashRequest {
  blob: Blob;
  sliceBytes: number;
}

export type HashReply = { sha256: string } | { error: { name: string; message: string } };

interface WorkerScope {
  onmessage: ((event: MessageEvent<HashRequest>) => void) | null;
  postMessage(message: HashReply): void;
}

const scope = globalThis as unknown as WorkerScope;

scope.onmessage = async (event) => {
  const { blob, sliceBytes } = event.data;
  try {
    const hasher = await createSHA256();
    hasher.init();
    for (let offset = 0; offset < blob.size; offset += sliceBytes) {
      const slice = blob.slice(offset, Math.min(blob.size, offset + sliceBytes));
      hasher.update(new Uint8Array(await slice.arrayBuffer()));
    }
    scope.postMessage({ sha256: hasher.digest('hex') });
  } catch (error) {
    const { name, message } = error instanceof Error ? error : new Error(String(error));
    scope.postMessage({ error: { name, message } });
  }
};
