/** `@ferry/client/browser`: the browser seams, for building your own `Platform` or store. */
export { type BrowserHasherOptions, createBrowserHasher } from './browser/hasher.ts';
export { createXhrHttpClient } from './browser/http.ts';
export {
  type BrowserPlatformOptions,
  browserConnectivity,
  browserPlatform,
  DEFAULT_KEEP_FILES_UP_TO,
  openBrowserSource,
} from './browser/platform.ts';
export { createIndexedDbResumeStore, type IndexedDbResumeStoreOptions } from './browser/resume-store.ts';
