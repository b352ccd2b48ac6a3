/**
 * `@ferry/client` in browsers (the `browser` export condition): the same exports as the Node build,
 * on the browser seams — XMLHttpRequest, `File`/`Blob` sources, hash-wasm in a Web Worker, IndexedDB
 * resume state, pausing while offline. Browser-only helpers are in `@ferry/client/browser`.
 */

import { browserPlatform } from './browser/platform.ts';
import type { FindResumableOptions } from './common.ts';
import { listResumable } from './core/resumable.ts';
import type { Platform, ResumableUpload } from './core/seams.ts';
import { createUploadWith, type Upload, type UploadOptions } from './core/upload.ts';

export * from './common.ts';

/**
 * Creates an upload on this platform. A browser's `source`: a `File`/`Blob`, a
 * `Uint8Array`/`ArrayBuffer`, or your own `UploadSource`. Call `start()` to run it.
 */
export function createUpload(options: UploadOptions): Upload {
  return createUploadWith(browserPlatform(), options);
}

/** This platform's seams (browsers: XMLHttpRequest, a hashing worker, IndexedDB, online/offline). */
export function defaultPlatform(): Platform {
  return browserPlatform();
}

/**
 * The unfinished uploads in IndexedDB. Those with a `file` continue without the user picking
 * anything; the others continue when the user picks the same file again.
 */
export function findResumableUploads(options: FindResumableOptions = {}): Promise<ResumableUpload[]> {
  const store = options.resumeStore ?? browserPlatform().defaultResumeStore();
  return store === undefined ? Promise.resolve([]) : listResumable(store);
}
