/**
 * A stand-in for the SDK's `Upload` that the test drives by hand: it moves through the states
 * the SDK's state machine allows, emits progress, and settles `start()` when told.
 */
import type {
  StateEvent,
  Upload,
  UploadEvents,
  UploadOptions,
  UploadProgress,
  UploadResult,
} from '@ferry/client';

type Listener = (event: never) => void;

export class FakeUpload implements Upload {
  readonly options: UploadOptions;
  state: Upload['state'] = 'idle';
  progress: UploadProgress = {
    bytesConfirmed: 0,
    bytesInFlight: 0,
    totalBytes: undefined,
    fraction: undefined,
    bytesPerSecond: 0,
    etaSeconds: undefined,
  };
  uploadUrl: string | undefined;
  pausedOffline = false;
  cancelled = false;
  starts = 0;
  readonly #listeners = new Map<string, Set<Listener>>();
  #settle: { resolve(result: UploadResult): void; reject(error: unknown): void } | undefined;
  #promise: Promise<UploadResult> | undefined;

  constructor(options: UploadOptions) {
    this.options = options;
  }

  on<Name extends keyof UploadEvents>(name: Name, listener: (event: UploadEvents[Name]) => void): () => void {
    let set = this.#listeners.get(name as string);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(name as string, set);
    }
    set.add(listener as Listener);
    return () => set.delete(listener as Listener);
  }

  emit<Name extends keyof UploadEvents>(name: Name, event: UploadEvents[Name]): void {
    for (const listener of this.#listeners.get(name as string) ?? [])
      (listener as (e: typeof event) => void)(event);
  }

  listenerCount(): number {
    let count = 0;
    for (const set of this.#listeners.values()) count += set.size;
    return count;
  }

  setState(state: Upload['state'], offline = false): void {
    const previous = this.state;
    this.state = state;
    this.pausedOffline = offline;
    this.emit('state', { state, previous, offline } satisfies StateEvent);
  }

  setProgress(progress: Partial<UploadProgress>): void {
    this.progress = { ...this.progress, ...progress };
    this.emit('progress', this.progress);
  }

  start(): Promise<UploadResult> {
    if (this.#promise !== undefined && this.state !== 'failed') return this.#promise;
    this.starts++;
    this.#promise = new Promise<UploadResult>((resolve, reject) => {
      this.#settle = { resolve, reject };
    });
    this.#promise.catch(() => {});
    this.setState('creating');
    return this.#promise;
  }

  pause(): void {
    if (this.state === 'creating' || this.state === 'uploading') this.setState('paused');
  }

  resume(): void {
    if (this.state === 'paused') this.setState('uploading');
  }

  async cancel(): Promise<void> {
    this.cancelled = true;
    this.setState('cancelled');
    this.#settle?.reject(Object.assign(new Error('the upload was cancelled'), { code: 'ERR_CANCELLED' }));
  }

  /** Ends the upload as the SDK does: the state event first, then the promise. */
  finish(result: Partial<UploadResult> = {}): void {
    const size = (this.options.source as Blob).size;
    this.setProgress({
      bytesConfirmed: size,
      bytesInFlight: 0,
      totalBytes: size,
      fraction: 1,
      etaSeconds: 0,
    });
    this.setState('done');
    this.#settle?.resolve({
      protocol: 'tus',
      id: 'id',
      url: 'http://127.0.0.1:1/files/id',
      size,
      sha256: 'ab'.repeat(32),
      deduplicated: false,
      ...result,
    });
  }

  fail(error: unknown): void {
    this.setState('failed');
    this.#settle?.reject(error);
  }
}

/** A `createUpload` that records every upload it made. */
export function fakeFactory(): { createUpload: (options: UploadOptions) => FakeUpload; made: FakeUpload[] } {
  const made: FakeUpload[] = [];
  return {
    made,
    createUpload(options) {
      const upload = new FakeUpload(options);
      made.push(upload);
      return upload;
    },
  };
}

/** Lets queued microtasks (the store's urgent renders, settled promises) run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}
