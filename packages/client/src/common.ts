/**
 * What both builds of `@ferry/client` export alike: the platform-free core. `index.ts` (Node) and
 * `browser.ts` add the same three functions on their own platform; a type test keeps the two
 * surfaces identical.
 */
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
  Connectivity,
  Hasher,
  HttpClient,
  HttpRequest,
  HttpResponse,
  IncrementalSha256,
  Platform,
  Protocol,
  RequestBody,
  ResumableUpload,
  ResumeEntry,
  ResumeStore,
  SourceRange,
  UploadSource,
} from './core/seams.ts';
export { resumeKey } from './core/seams.ts';
export { BlobSource, BytesSource } from './core/sources.ts';
export type { UploadState } from './core/state.ts';
export type { TokenOption } from './core/token.ts';
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

import type { ResumableUpload, ResumeStore } from './core/seams.ts';

export interface FindResumableOptions {
  /** The store to read. Default: the platform's (Node: the JSON file; browsers: IndexedDB). */
  resumeStore?: ResumeStore;
}

/** The signatures both entry points implement on their own platform. */
export type FindResumableUploads = (options?: FindResumableOptions) => Promise<ResumableUpload[]>;
