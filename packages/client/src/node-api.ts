/**
 * `@ferry/client/node`: what only Node has — ranged, parallel, verified downloads to a file, and the
 * Node seams for building your own `Platform`.
 */
export {
  type DownloadOptions,
  type DownloadProgress,
  type DownloadResult,
  downloadFile,
} from './node/download.ts';
export { createNodeHasher } from './node/hasher.ts';
export { createNodeHttpClient, type NodeHttpOptions } from './node/http.ts';
export { nodePlatform } from './node/platform.ts';
export {
  createFileResumeStore,
  defaultResumeStorePath,
  type FileResumeStore,
  type FileResumeStoreOptions,
} from './node/resume-store.ts';
export { NodeFileSource, openNodeSource, StreamSource } from './node/sources.ts';
