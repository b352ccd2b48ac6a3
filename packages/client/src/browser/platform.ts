/**
 * The browser platform: XMLHttpRequest, hash-wasm in a Web Worker, `File`/`Blob` and bytes as
 * sources (request bodies sliced in that worker), IndexedDB for resume state (small files kept in
 * it), and `online`/`offline` events.
 */
import { ClientError } from '../core/errors.ts';
import type { Connectivity, HttpClient, Platform, ResumeStore, UploadSource } from '../core/seams.ts';
import { openCommonSource } from '../core/sources.ts';
import { type BrowserHasherOptions, createBrowserHasher, sliceInWorker } from './hasher.ts';
import { createXhrHttpClient } from './http.ts';
import { createIndexedDbResumeStore } from './resume-store.ts';

/** Files up to this size are kept in IndexedDB by default (`keepFilesUpTo`). */
export const DEFAULT_KEEP_FILES_UP_TO = 64 * 1024 * 1024;

/** What a browser accepts as `source`: a `File`/`Blob`, bytes, or an `UploadSource`. */
export async function openBrowserSource(input: unknown): Promise<UploadSource> {
  const source = openCommonSource(input);
  if (source !== undefined) return source;
  throw new ClientError('ERR_INVALID_OPTIONS', {
    message:
      typeof input === 'string'
        ? 'a browser cannot read file paths: pass the File from an <input type="file"> or a drop'
        : 'source must be a File/Blob, a Uint8Array/ArrayBuffer or an UploadSource',
  });
}

/** `navigator.onLine` and the window's `online`/`offline` events. */
export function browserConnectivity(target: EventTarget = globalThis): Connectivity {
  return {
    online: () => globalThis.navigator?.onLine ?? true,
    subscribe(listener) {
      const up = () => listener(true);
      const down = () => listener(false);
      target.addEventListener('online', up);
      target.addEventListener('offline', down);
      return () => {
        target.removeEventListener('online', up);
        target.removeEventListener('offline', down);
      };
    },
  };
}

export interface BrowserPlatformOptions extends BrowserHasherOptions {
  /** Files up to this many bytes are kept with the resume state. Default 64 MiB. */
  keepFilesUpTo?: number;
}

let sharedHttp: HttpClient | undefined;
let sharedStore: ResumeStore | undefined;

export function browserPlatform(options: BrowserPlatformOptions = {}): Platform {
  sharedHttp ??= createXhrHttpClient();
  return {
    http: sharedHttp,
    hasher: createBrowserHasher(options),
    openSource: openBrowserSource,
    defaultResumeStore: () => {
      if (globalThis.indexedDB === undefined) return undefined;
      sharedStore ??= createIndexedDbResumeStore();
      return sharedStore;
    },
    connectivity: browserConnectivity(),
    keepFilesUpTo: options.keepFilesUpTo ?? DEFAULT_KEEP_FILES_UP_TO,
    partChecksum: 'until-sha256',
    sliceBlob: (blob, start, end) => sliceInWorker(options.workerUrl, blob, start, end),
  };
}
