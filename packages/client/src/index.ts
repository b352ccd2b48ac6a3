/**
 * `@ferry/client` for Node: the platform-free core with the Node seams (node:http, file paths,
 * buffers and streams, worker-thread SHA-256, a JSON-file resume store). See docs/client.md.
 */
import { createUploadWith, type Upload, type UploadOptions } from './core/upload.ts';
import { nodePlatform } from './node/platform.ts';

export * from './core/errors.ts';
export type { ChunkSizeOption } from './core/planner.ts';
export { CHUNK_DEFAULTS } from './core/planner.ts';
export type { UploadProgress } from './core/progress.ts';
export { createRateLimiter, type RateLimiter } from './core/rate-limit.ts';
export {
  type BackoffPolicy,
  backoffDelay,
  DEFAULT_RETRY_POLICY,
  describeError,
  parseRetryAfter,
  type RetryEvent,
  type RetryPolicy,
  type RetryPolicyOptions,
} from './core/retry.ts';
export type {
  Hasher,
  HttpClient,
  HttpRequest,
  HttpResponse,
  IncrementalSha256,
  Platform,
  Protocol,
  ResumeEntry,
  ResumeStore,
  UploadSource,
} from './core/seams.ts';
export { resumeKey } from './core/seams.ts';
export type { UploadState } from './core/state.ts';
export type { UploadResult } from './core/transport.ts';
export type {
  CreatedEvent,
  RestartEvent,
  ResumedEvent,
  StateEvent,
  Upload,
  UploadEvents,
  UploadOptions,
} from './core/upload.ts';
export { createUploadWith } from './core/upload.ts';
export { createNodeHasher } from './node/hasher.ts';
export { createNodeHttpClient, type NodeHttpOptions } from './node/http.ts';
export { nodePlatform } from './node/platform.ts';
export {
  createFileResumeStore,
  defaultResumeStorePath,
  type FileResumeStore,
  type FileResumeStoreOptions,
} from './node/resume-store.ts';
export { BytesSource, NodeFileSource, openNodeSource, StreamSource } from './node/sources.ts';

/**
 * Node's `source`: a file path (or `file:` URL), a `Buffer`/`Uint8Array`, a `Readable` (or any async
 * iterable of bytes) of unknown length — tus only —, or your own `UploadSource`.
 */
export type NodeUploadOptions = UploadOptions;

/** Creates an upload with the Node seams. Call `start()` to run it. */
export function createUpload(options: NodeUploadOptions): Upload {
  return createUploadWith(nodePlatform(), options);
}
export {
  type DownloadOptions,
  type DownloadProgress,
  type DownloadResult,
  downloadFile,
} from './node/download.ts';
