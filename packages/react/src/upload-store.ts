/**
 * One upload at a time: what `useUpload` runs on. `start(file)` begins a file; later calls act on
 * that upload until it is over (done, failed or cancelled), when another file may start.
 */
import {
  createUpload as createSdkUpload,
  type Upload,
  type UploadOptions,
  type UploadResult,
} from '@ferry/client';
import type { UploadFailure } from './failure.ts';
import { liveToken } from './live-token.ts';
import { RenderScheduler } from './render-scheduler.ts';
import { EMPTY_PROGRESS, type UploadSnapshot } from './snapshot.ts';
import { TrackedUpload } from './tracked-upload.ts';
import { resolveEndpoint } from './uploads-store.ts';

export interface SingleUploadOptions extends Omit<UploadOptions, 'source' | 'signal'> {
  /** tus creation URL or parts endpoint; a relative URL is resolved against the page. */
  endpoint: string;
  /** The file `start()` uploads when given none. */
  source?: Blob;
  /** Least time between two renders caused by progress alone, in ms. Default 250. */
  renderIntervalMs?: number;
  /** The server has the whole file, verified. */
  onComplete?: (result: UploadResult) => void;
  /** The upload failed (it can be retried). */
  onError?: (error: UploadFailure) => void;
  /** Creates the SDK upload. Default: `createUpload` from `@ferry/client`. */
  createUpload?: (options: UploadOptions) => Upload;
}

export interface UploadStore {
  subscribe(listener: () => void): () => void;
  getSnapshot(): UploadSnapshot;
  setOptions(options: SingleUploadOptions): void;
  /**
   * Uploads `file` (default: the `source` option), or starts the current upload when it was not
   * started, or retries it after a failure. Throws while another file is still uploading or paused.
   */
  start(file?: Blob): void;
  pause(): void;
  resume(): void;
  /** After a failure: continues from what the server has. */
  retry(): void;
  /** Stops the upload and deletes it on the server. */
  cancel(): Promise<void>;
}

export const IDLE_SNAPSHOT: UploadSnapshot = Object.freeze({
  name: '',
  size: undefined,
  type: '',
  file: undefined,
  state: 'idle',
  offline: false,
  progress: EMPTY_PROGRESS,
  error: undefined,
  result: undefined,
  uploadUrl: undefined,
  restored: false,
});

/** Options of the store itself, not passed on to the SDK. */
const STORE_OPTIONS = ['source', 'renderIntervalMs', 'onComplete', 'onError', 'createUpload'] as const;

const OVER = new Set(['done', 'failed', 'cancelled']);

export function createUploadStore(options: SingleUploadOptions): UploadStore {
  return new UploadStoreImpl(options);
}

class UploadStoreImpl implements UploadStore {
  #options: SingleUploadOptions;
  #current: TrackedUpload | undefined;
  #snapshot: UploadSnapshot = IDLE_SNAPSHOT;
  /** The item `#snapshot` was made from. */
  #shown: UploadSnapshot | undefined;
  #count = 0;
  readonly #listeners = new Set<() => void>();
  readonly #scheduler: RenderScheduler;

  constructor(options: SingleUploadOptions) {
    this.#options = options;
    this.#scheduler = new RenderScheduler(options.renderIntervalMs ?? 250, () => this.#flush());
  }

  subscribe = (listener: () => void): (() => void) => {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  };

  getSnapshot = (): UploadSnapshot => this.#snapshot;

  setOptions = (options: SingleUploadOptions): void => {
    this.#options = options;
  };

  start = (file?: Blob): void => {
    const current = this.#current;
    const state = current?.snapshot.state;
    if (file === undefined && current !== undefined && state !== 'done' && state !== 'cancelled') {
      current.start();
      return;
    }
    const source = file ?? this.#options.source;
    if (source === undefined) throw new Error('useUpload: start() needs a file (or the source option)');
    if (current !== undefined && state !== undefined && !OVER.has(state)) {
      throw new Error(
        `useUpload: ${current.snapshot.name} is still uploading; cancel it before starting another file`,
      );
    }
    current?.dispose();
    const options = this.#options;
    const sdkOptions: Partial<SingleUploadOptions> = { ...options };
    for (const key of STORE_OPTIONS) delete sdkOptions[key];
    const upload = new TrackedUpload({
      id: `upload-${++this.#count}`,
      file: source,
      name: options.name ?? (source instanceof File ? source.name : ''),
      restored: false,
      createUpload: options.createUpload ?? createSdkUpload,
      options: {
        progressIntervalMs: options.renderIntervalMs ?? 250,
        ...(sdkOptions as Omit<UploadOptions, 'source'>),
        ...liveToken(() => this.#options.token),
        endpoint: resolveEndpoint(options.endpoint),
      },
      listener: {
        changed: (urgent) => this.#scheduler.request(urgent),
        finished: (result) => this.#options.onComplete?.(result),
        failed: (failure) => this.#options.onError?.(failure),
        resumed: () => {},
      },
    });
    this.#current = upload;
    this.#scheduler.request(true);
    upload.start();
  };

  pause = (): void => this.#current?.pause();

  resume = (): void => this.#current?.resume();

  retry = (): void => this.#current?.retry();

  cancel = async (): Promise<void> => {
    await this.#current?.cancel();
  };

  #flush(): void {
    const item = this.#current?.snapshot;
    if (item === undefined || item === this.#shown) return;
    this.#shown = item;
    const { id: _id, ...snapshot } = item;
    this.#snapshot = Object.freeze(snapshot);
    for (const listener of [...this.#listeners]) listener();
  }
}
