/**
 * The test page's script: the browser build of the client on `window.ferry`, and `window.testApi`,
 * which runs uploads in the page and records what they report, for the tests to poll.
 */

import type { Upload, UploadOptions } from '../../src/browser.ts';
import * as client from '../../src/browser.ts';
import * as seams from '../../src/browser-api.ts';

export interface UploadSpec {
  endpoint: string;
  protocol?: 'tus' | 'parts';
  /** Parts straight to the S3 bucket through presigned URLs. */
  presigned?: boolean;
  chunkSize?: number;
  parallel?: number;
  limitRate?: number;
  keepFilesUpTo?: number;
  name?: string;
}

export interface UploadStatus {
  state: string;
  pausedOffline: boolean;
  bytesConfirmed: number;
  totalBytes: number | undefined;
  uploadUrl: string | undefined;
  created: string[];
  resumed: string[];
  states: { state: string; offline: boolean }[];
  /** `progress.bytesConfirmed` never went down and never passed the total. */
  progressHonest: boolean;
  result?: { url: string; sha256: string | undefined; size: number };
  error?: { code: string | undefined; message: string };
}

const uploads = new Map<string, { upload: Upload; status: UploadStatus }>();

function pickedFile(): File {
  const file = (document.querySelector('#file') as HTMLInputElement).files?.[0];
  if (file === undefined) throw new Error('no file picked');
  return file;
}

function begin(id: string, spec: UploadSpec, source: Blob): void {
  const options: UploadOptions = { ...spec, source };
  const upload = client.createUpload(options);
  const status: UploadStatus = {
    state: upload.state,
    pausedOffline: false,
    bytesConfirmed: 0,
    totalBytes: undefined,
    uploadUrl: undefined,
    created: [],
    resumed: [],
    states: [],
    progressHonest: true,
  };
  uploads.set(id, { upload, status });
  upload.on('created', ({ url }) => status.created.push(url));
  upload.on('resumed', ({ url }) => status.resumed.push(url));
  upload.on('state', ({ state, offline }) => status.states.push({ state, offline }));
  upload.on('progress', (progress) => {
    if (progress.bytesConfirmed < status.bytesConfirmed) status.progressHonest = false;
    if (progress.totalBytes !== undefined && progress.bytesConfirmed > progress.totalBytes) {
      status.progressHonest = false;
    }
    status.bytesConfirmed = progress.bytesConfirmed;
    status.totalBytes = progress.totalBytes;
  });
  upload.start().then(
    (result) => {
      status.result = { url: result.url, sha256: result.sha256, size: result.size };
    },
    (error: { code?: string; message?: string }) => {
      status.error = { code: error.code, message: String(error.message ?? error) };
    },
  );
}

const testApi = {
  /** Uploads the file picked in `#file`. */
  beginPicked(id: string, spec: UploadSpec): void {
    begin(id, spec, pickedFile());
  },
  /** Uploads `size` pseudo-random bytes made in the page; resolves to their SHA-256. */
  async beginRandom(id: string, spec: UploadSpec, size: number): Promise<string> {
    const bytes = new Uint8Array(size);
    for (let offset = 0; offset < size; offset += 65_536) {
      crypto.getRandomValues(bytes.subarray(offset, Math.min(size, offset + 65_536)));
    }
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
    begin(id, spec, new Blob([bytes]));
    return [...digest].map((byte) => byte.toString(16).padStart(2, '0')).join('');
  },
  /** What `findResumableUploads` lists. */
  async resumable(): Promise<{ key: string; url: string; size: number; keptBytes: number | undefined }[]> {
    return (await client.findResumableUploads()).map(({ key, entry, file }) => ({
      key,
      url: entry.uploadUrl,
      size: entry.size,
      keptBytes: file?.size,
    }));
  },
  /** Continues the resumable upload `key` from the file IndexedDB kept. */
  async beginKept(id: string, key: string, spec: Omit<UploadSpec, 'endpoint'>): Promise<void> {
    const found = (await client.findResumableUploads()).find((upload) => upload.key === key);
    if (found?.file === undefined) throw new Error(`no kept file for ${key}`);
    const { endpoint, protocol, name } = found.entry;
    begin(id, { ...spec, endpoint, protocol, ...(name !== null ? { name } : {}) }, found.file);
  },
  status(id: string): UploadStatus {
    const found = uploads.get(id);
    if (found === undefined) throw new Error(`no upload ${id}`);
    const { upload, status } = found;
    return {
      ...status,
      state: upload.state,
      pausedOffline: upload.pausedOffline,
      uploadUrl: upload.uploadUrl,
    };
  },
  pause(id: string): void {
    uploads.get(id)?.upload.pause();
  },
  resume(id: string): void {
    uploads.get(id)?.upload.resume();
  },
  async cancel(id: string): Promise<void> {
    await uploads.get(id)?.upload.cancel();
  },
  /** Fingerprints the picked file as an upload would; reports the time it took. */
  async hashPicked(): Promise<{ sha256: string; ms: number; size: number }> {
    const file = pickedFile();
    const started = performance.now();
    const sha256 = await client
      .defaultPlatform()
      .hasher.hashSource(new client.BlobSource(file), new AbortController().signal);
    return { sha256, ms: performance.now() - started, size: file.size };
  },
};

export type TestApi = typeof testApi;

Object.assign(globalThis, { ferry: { ...client, ...seams }, testApi });
