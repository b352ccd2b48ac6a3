/** The Node platform: node:http, node:crypto in a worker thread, file/bytes/stream sources, a JSON resume store. */
import type { HttpClient, Platform, ResumeStore } from '../core/seams.ts';
import { createNodeHasher } from './hasher.ts';
import { createNodeHttpClient } from './http.ts';
import { createFileResumeStore } from './resume-store.ts';
import { openNodeSource } from './sources.ts';

let sharedHttp: HttpClient | undefined;
let sharedStore: ResumeStore | undefined;

/** One keep-alive connection pool and one resume store for every upload of the process. */
export function nodePlatform(): Platform {
  sharedHttp ??= createNodeHttpClient();
  return {
    http: sharedHttp,
    hasher: createNodeHasher(),
    openSource: openNodeSource,
    defaultResumeStore: () => {
      sharedStore ??= createFileResumeStore();
      return sharedStore;
    },
    // A JSON file cannot hold a file's bytes; a path is read again anyway.
    keepFilesUpTo: 0,
    // node:crypto hashes the file at 1-2 GB/s in its worker, ahead of the parts it would vouch for.
    partChecksum: false,
  };
}
