/**
 * One SDK upload watched through its own events (no polling) and seen as a frozen `UploadItem`.
 * `done` is shown only once the result is known and `failed` only with its error, so a component
 * never sees a finished upload without its URL or a failed one without a reason.
 */
import type { Upload, UploadOptions, UploadResult } from '@ferry/client';
import { describeFailure, type UploadFailure } from './failure.ts';
import { progressSnapshot, shallowEqual, type UploadItem } from './snapshot.ts';

/** What the owner of a tracked upload hears. */
export interface TrackedUploadListener {
  /** The item changed; `urgent` unless only progress moved. */
  changed(urgent: boolean): void;
  finished(result: UploadResult): void;
  failed(failure: UploadFailure): void;
  /** The SDK found this file's earlier upload (same SHA-256, size and name) and continues it. */
  resumed(uploadUrl: string): void;
}

export interface TrackedUploadConfig {
  id: string;
  /** The file (or a kept `Blob`) to upload. */
  file: Blob;
  name: string;
  restored: boolean;
  /** The SDK's `createUpload` (or a stand-in). */
  createUpload: (options: UploadOptions) => Upload;
  /** Everything but `source`, `name` and `type`, which come from the file. */
  options: Omit<UploadOptions, 'source'>;
  listener: TrackedUploadListener;
}

function isCancelled(error: unknown): boolean {
  return (
    typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'ERR_CANCELLED'
  );
}

export class TrackedUpload {
  readonly id: string;
  readonly #upload: Upload;
  readonly #listener: TrackedUploadListener;
  readonly #stops: (() => void)[];
  #snapshot: UploadItem;
  /** The `start()` promise being watched (a retry makes a new one). */
  #watched: Promise<UploadResult> | undefined;

  constructor(config: TrackedUploadConfig) {
    const { file, name } = config;
    this.id = config.id;
    this.#listener = config.listener;
    const type = file.type;
    this.#upload = config.createUpload({
      ...config.options,
      source: file,
      ...(name !== '' ? { name } : {}),
      ...(type !== '' ? { type } : {}),
    });
    const upload = this.#upload;
    this.#snapshot = Object.freeze({
      id: config.id,
      name,
      size: file.size,
      type,
      file,
      state: upload.state,
      offline: false,
      progress: progressSnapshot(upload.progress, file.size),
      error: undefined,
      result: undefined,
      uploadUrl: upload.uploadUrl,
      restored: config.restored,
    });
    this.#stops = [
      upload.on('state', ({ state, offline }) => {
        // `done` and `failed` are shown when `start()` settles, with the result or the error.
        if (state === 'done' || state === 'failed') return;
        // The SDK throttles progress events: a state shown at once shows the progress of now with it
        // (else a small file reads "Finishing 0%" until the next progress event).
        const progress = progressSnapshot(upload.progress, file.size, this.#snapshot.progress);
        this.#update({ state, offline, error: undefined, uploadUrl: upload.uploadUrl, progress }, true);
      }),
      upload.on('progress', (progress) => {
        const next = progressSnapshot(progress, file.size, this.#snapshot.progress);
        this.#update({ progress: next, uploadUrl: upload.uploadUrl }, false);
      }),
      upload.on('resumed', ({ url }) => {
        this.#update({ uploadUrl: url }, true);
        this.#listener.resumed(url);
      }),
      upload.on('created', () => this.#update({ uploadUrl: upload.uploadUrl }, true)),
    ];
  }

  get snapshot(): UploadItem {
    return this.#snapshot;
  }

  /** Starts the upload, or after a failure tries again from what the server has. */
  start(): void {
    const state = this.#upload.state;
    if (state !== 'idle' && state !== 'failed') return;
    this.#watch(this.#upload.start());
  }

  pause(): void {
    this.#upload.pause();
  }

  resume(): void {
    this.#upload.resume();
  }

  retry(): void {
    if (this.#upload.state === 'failed') this.start();
  }

  /** Stops the upload and deletes it on the server. */
  cancel(): Promise<void> {
    return this.#upload.cancel();
  }

  /** Marks the item as continuing an upload from before a reload. */
  markRestored(): void {
    this.#update({ restored: true }, true);
  }

  /** Stops listening to the SDK (the item left the list). */
  dispose(): void {
    for (const stop of this.#stops) stop();
  }

  #watch(promise: Promise<UploadResult>): void {
    if (promise === this.#watched) return;
    this.#watched = promise;
    promise.then(
      (result) => {
        if (this.#watched !== promise) return;
        const progress = progressSnapshot(this.#upload.progress, result.size, this.#snapshot.progress);
        this.#update(
          { state: 'done', offline: false, result, progress, uploadUrl: this.#upload.uploadUrl },
          true,
        );
        this.#listener.finished(result);
      },
      (error: unknown) => {
        if (this.#watched !== promise || isCancelled(error)) return;
        const failure = describeFailure(error, this.#snapshot.name || 'The file');
        this.#update({ state: 'failed', offline: false, error: failure }, true);
        this.#listener.failed(failure);
      },
    );
  }

  #update(patch: Partial<UploadItem>, urgent: boolean): void {
    const next = { ...this.#snapshot, ...patch };
    if (shallowEqual(next, this.#snapshot)) return;
    this.#snapshot = Object.freeze(next);
    this.#listener.changed(urgent);
  }
}
