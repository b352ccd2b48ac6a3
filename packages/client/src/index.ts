/**
 * `@ferry/client` for Node: the platform-free core with the Node seams (node:http, file paths,
 * bytes, Blobs and streams, worker-thread SHA-256, a JSON-file resume store). Node-only helpers
 * (`downloadFile`, the seams themselves) are in `@ferry/client/node`. See docs/client.md.
 */
import type { FindResumableOptions } from './common.ts';
import { listResumable } from './core/resumable.ts';
import type { Platform, ResumableUpload } from './core/seams.ts';
import { createUploadWith, type Upload, type UploadOptions } from './core/upload.ts';
import { nodePlatform } from './node/platform.ts';

export * from './common.ts';

/**
 * Creates an upload on this platform. Node's `source`: a file path (or `file:` URL), a
 * `Buffer`/`Uint8Array`, a `Blob`/`File`, a `Readable` (or any async iterable of bytes) of unknown
 * length — tus only —, or your own `UploadSource`. Call `start()` to run it.
 */
export function createUpload(options: UploadOptions): Upload {
  return createUploadWith(nodePlatform(), options);
}

/** This platform's seams (Node: one keep-alive pool, worker-thread SHA-256, the JSON resume store). */
export function defaultPlatform(): Platform {
  return nodePlatform();
}

/** The unfinished uploads in the resume store, to offer continuing them (re-run with the same file). */
export function findResumableUploads(options: FindResumableOptions = {}): Promise<ResumableUpload[]> {
  const store = options.resumeStore ?? nodePlatform().defaultResumeStore();
  return store === undefined ? Promise.resolve([]) : listResumable(store);
}
