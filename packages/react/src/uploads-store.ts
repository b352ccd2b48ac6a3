/**
 * Many files, one store: what `useUploads` and `<UploadDropzone>` run on, usable without React
 * (`subscribe` + `getSnapshot` fit `useSyncExternalStore` and anything else).
 *
 * After a reload it lists what the SDK's resume store still holds for this endpoint and protocol:
 * uploads whose file the browser kept continue by themselves; the others wait (`needs-file`) until
 * the user picks the same file again, which the SDK recognises by its SHA-256, size and name and
 * continues from what the server has — the waiting item then gives way to the new one.
 */
import {
  createUpload as createSdkUpload,
  defaultPlatform,
  findResumableUploads as findSdkResumable,
  type Protocol,
  type ResumableUpload,
  type ResumeEntry,
  type ResumeStore,
  type Upload,
  type UploadOptions,
  type UploadResult,
} from '@ferry/client';
import type { UploadFailure } from './failure.ts';
import { liveToken } from './live-token.ts';
import { RenderScheduler } from './render-scheduler.ts';
import { EMPTY_PROGRESS, shallowEqual, type UploadItem } from './snapshot.ts';
import { totalsOf, type UploadTotals } from './totals.ts';
import { TrackedUpload } from './tracked-upload.ts';
import { type Checked, checkFiles, type FileFacts, type FileRules, type Rejection } from './validate.ts';

/** The SDK's upload options (without the per-file ones), the file rules, and the store's own. */
export interface UploadsOptions
  extends Omit<UploadOptions, 'source' | 'name' | 'type' | 'signal'>,
    FileRules {
  /**
   * tus creation URL or parts endpoint. A relative URL (`/files/`) is resolved against the page.
   */
  endpoint: string;
  /** Start each file as soon as it is added. Default true. */
  autoStart?: boolean;
  /**
   * On `restore()` (the hooks call it once), list the uploads left unfinished before a reload and
   * continue them. Default true. Without a resume store (`resumeStore: false`) there is nothing to list.
   */
  restore?: boolean;
  /** Least time between two renders caused by progress alone, in ms. Default 250. */
  renderIntervalMs?: number;
  /** A file passed the rules and was added. */
  onFileAdded?: (item: UploadItem) => void;
  /** The server has the whole file, verified. */
  onComplete?: (item: UploadItem, result: UploadResult) => void;
  /** An upload failed (it can be retried). */
  onError?: (item: UploadItem, error: UploadFailure) => void;
  /** Files refused by `accept`, `maxSize`, `maxFiles` or as duplicates, with the reason in words. */
  onRejected?: (rejections: readonly Rejection[]) => void;
  /** Creates the SDK upload. Default: `createUpload` from `@ferry/client`. */
  createUpload?: (options: UploadOptions) => Upload;
  /** Lists unfinished uploads. Default: `findResumableUploads` from `@ferry/client`. */
  findResumableUploads?: () => Promise<ResumableUpload[]>;
}

export interface UploadsSnapshot {
  /** In the order they were added; frozen, and the same array until something in it changes. */
  readonly items: readonly UploadItem[];
  readonly totals: UploadTotals;
  /** Still looking for uploads left unfinished before a reload. */
  readonly restoring: boolean;
  /** Files refused by the last `add()`, until dismissed or the next `add()`. */
  readonly rejections: readonly Rejection[];
}

export interface UploadsStore {
  subscribe(listener: () => void): () => void;
  getSnapshot(): UploadsSnapshot;
  /** Replaces the options; uploads already added keep the ones they were created with. */
  setOptions(options: UploadsOptions): void;
  /** Checks the files against the rules and adds those that pass (started when `autoStart`). */
  add(files: Iterable<File> | ArrayLike<File>): Checked<File>;
  /** Starts an item added with `autoStart: false`. */
  start(id: string): void;
  pause(id: string): void;
  resume(id: string): void;
  /** After a failure: continues from what the server has. */
  retry(id: string): void;
  /** Stops the upload and deletes it on the server; the item stays, `cancelled`, until removed. */
  cancel(id: string): Promise<void>;
  /**
   * Takes the item off the list; an unfinished upload is cancelled first (deleted on the server),
   * and a `needs-file` one is forgotten by the resume store.
   */
  remove(id: string): Promise<void>;
  dismissRejections(): void;
  /** Lists uploads left unfinished before a reload, once; later calls return the same promise. */
  restore(): Promise<void>;
}

interface Waiting {
  readonly key: string;
  readonly entry: ResumeEntry;
  readonly snapshot: UploadItem;
}

type Entry = TrackedUpload | Waiting;

/** Options of the store itself, not passed on to the SDK. */
const STORE_OPTIONS = [
  'autoStart',
  'restore',
  'renderIntervalMs',
  'onFileAdded',
  'onComplete',
  'onError',
  'onRejected',
  'createUpload',
  'findResumableUploads',
  'accept',
  'maxSize',
  'maxFiles',
] as const satisfies readonly (keyof UploadsOptions)[];

function sdkOptionsOf(options: UploadsOptions): Omit<UploadOptions, 'source'> {
  const sdk: Partial<UploadsOptions> = { ...options };
  for (const key of STORE_OPTIONS) delete sdk[key];
  return sdk as Omit<UploadOptions, 'source'>;
}

const NO_REJECTIONS: readonly Rejection[] = Object.freeze([]);

/** `/files/` on https://app.example → https://app.example/files/ (the SDK needs absolute URLs). */
export function resolveEndpoint(endpoint: string): string {
  try {
    return new URL(endpoint, globalThis.document?.baseURI).href;
  } catch {
    return endpoint;
  }
}

export function createUploadsStore(options: UploadsOptions): UploadsStore {
  return new UploadsStoreImpl(options);
}

class UploadsStoreImpl implements UploadsStore {
  #options: UploadsOptions;
  #entries: Entry[] = [];
  readonly #listeners = new Set<() => void>();
  readonly #scheduler: RenderScheduler;
  #snapshot: UploadsSnapshot;
  #rejections: readonly Rejection[] = NO_REJECTIONS;
  #restoring: Promise<void> | undefined;
  #restoringNow = false;
  #nextId = 1;

  constructor(options: UploadsOptions) {
    this.#options = options;
    this.#scheduler = new RenderScheduler(options.renderIntervalMs ?? 250, () => this.#flush());
    const items: readonly UploadItem[] = Object.freeze([]);
    this.#snapshot = Object.freeze({
      items,
      totals: totalsOf(items),
      restoring: false,
      rejections: NO_REJECTIONS,
    });
  }

  subscribe = (listener: () => void): (() => void) => {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  };

  getSnapshot = (): UploadsSnapshot => this.#snapshot;

  setOptions = (options: UploadsOptions): void => {
    this.#options = options;
  };

  add = (files: Iterable<File> | ArrayLike<File>): Checked<File> => {
    const { accept, maxSize, maxFiles } = this.#options;
    const listed: FileFacts[] = [];
    for (const entry of this.#entries) {
      if (!(entry instanceof TrackedUpload) || entry.snapshot.state === 'cancelled') continue;
      const file = entry.snapshot.file as Blob & Partial<FileFacts>;
      listed.push({
        name: entry.snapshot.name,
        size: file.size,
        type: file.type,
        lastModified: file.lastModified ?? 0,
      });
    }
    const checked = checkFiles(Array.from(files as ArrayLike<File>), { accept, maxSize, maxFiles }, listed);
    const added: TrackedUpload[] = [];
    for (const file of checked.accepted) {
      const upload = this.#track(file, file.name, false);
      this.#entries.push(upload);
      added.push(upload);
    }
    if (checked.accepted.length > 0 || checked.rejected.length > 0) {
      this.#rejections = checked.rejected.length > 0 ? Object.freeze([...checked.rejected]) : NO_REJECTIONS;
    }
    this.#changed(true);
    for (const upload of added) this.#options.onFileAdded?.(upload.snapshot);
    if (checked.rejected.length > 0) this.#options.onRejected?.(checked.rejected);
    if (this.#options.autoStart ?? true) for (const upload of added) upload.start();
    return checked;
  };

  start = (id: string): void => this.#upload(id)?.start();

  pause = (id: string): void => this.#upload(id)?.pause();

  resume = (id: string): void => this.#upload(id)?.resume();

  retry = (id: string): void => this.#upload(id)?.retry();

  cancel = async (id: string): Promise<void> => {
    await this.#upload(id)?.cancel();
  };

  remove = async (id: string): Promise<void> => {
    const entry = this.#entries.find((candidate) => candidate.snapshot.id === id);
    if (entry === undefined) return;
    this.#entries = this.#entries.filter((candidate) => candidate !== entry);
    this.#changed(true);
    if (entry instanceof TrackedUpload) {
      const { state } = entry.snapshot;
      try {
        if (state !== 'done' && state !== 'cancelled') await entry.cancel();
      } finally {
        entry.dispose();
      }
    } else {
      await this.#resumeStore()?.remove(entry.key);
    }
  };

  dismissRejections = (): void => {
    if (this.#rejections === NO_REJECTIONS) return;
    this.#rejections = NO_REJECTIONS;
    this.#changed(true);
  };

  restore = (): Promise<void> => {
    this.#restoring ??= this.#restoreOnce();
    return this.#restoring;
  };

  async #restoreOnce(): Promise<void> {
    const options = this.#options;
    if (options.restore === false || options.resumeStore === false) return;
    this.#restoringNow = true;
    this.#changed(true);
    try {
      const store = options.resumeStore;
      const found = await (options.findResumableUploads?.() ??
        findSdkResumable(store === undefined ? {} : { resumeStore: store }));
      const endpoint = resolveEndpoint(this.#options.endpoint);
      const protocol: Protocol = this.#options.protocol ?? 'tus';
      for (const { key, entry, file } of found) {
        if (entry.endpoint !== endpoint || entry.protocol !== protocol) continue;
        if (this.#entries.some((known) => known.snapshot.uploadUrl === entry.uploadUrl)) continue;
        const name = entry.name ?? (file instanceof File ? file.name : '');
        if (file !== undefined) {
          const upload = this.#track(file, name, true);
          this.#entries.push(upload);
          upload.start();
        } else {
          this.#entries.push({ key, entry, snapshot: this.#waitingItem(entry, name) });
        }
      }
    } catch {
      // An unreadable resume store (private browsing, a blocked IndexedDB): nothing to continue.
    } finally {
      this.#restoringNow = false;
      this.#changed(true);
    }
  }

  #waitingItem(entry: ResumeEntry, name: string): UploadItem {
    return Object.freeze({
      id: `upload-${this.#nextId++}`,
      name,
      size: entry.size,
      type: '',
      file: undefined,
      state: 'needs-file',
      offline: false,
      progress: Object.freeze({ ...EMPTY_PROGRESS, totalBytes: entry.size }),
      error: undefined,
      result: undefined,
      uploadUrl: entry.uploadUrl,
      restored: true,
    });
  }

  #resumeStore(): ResumeStore | undefined {
    const store = this.#options.resumeStore;
    if (store === false) return undefined;
    return store ?? defaultPlatform().defaultResumeStore();
  }

  #upload(id: string): TrackedUpload | undefined {
    const entry = this.#entries.find((candidate) => candidate.snapshot.id === id);
    return entry instanceof TrackedUpload ? entry : undefined;
  }

  #track(file: Blob, name: string, restored: boolean): TrackedUpload {
    const options = this.#options;
    const upload: TrackedUpload = new TrackedUpload({
      id: `upload-${this.#nextId++}`,
      file,
      name,
      restored,
      createUpload: options.createUpload ?? createSdkUpload,
      options: {
        progressIntervalMs: options.renderIntervalMs ?? 250,
        ...sdkOptionsOf(options),
        ...liveToken(() => this.#options.token),
        endpoint: resolveEndpoint(options.endpoint),
      },
      listener: {
        changed: (urgent) => this.#changed(urgent),
        finished: (result) => this.#options.onComplete?.(upload.snapshot, result),
        failed: (failure) => this.#options.onError?.(upload.snapshot, failure),
        resumed: (url) => this.#reattached(upload, url),
      },
    });
    return upload;
  }

  /** A picked file continues an upload that waited for it: it takes the waiting item's place. */
  #reattached(upload: TrackedUpload, url: string): void {
    const index = this.#entries.findIndex(
      (entry) => !(entry instanceof TrackedUpload) && entry.entry.uploadUrl === url,
    );
    if (index === -1 || !this.#entries.includes(upload)) return;
    const entries = this.#entries.map((entry, i) => (i === index ? upload : entry));
    this.#entries = entries.filter((entry, i) => entry !== upload || i === index);
    upload.markRestored();
    this.#changed(true);
  }

  #changed(urgent: boolean): void {
    this.#scheduler.request(urgent);
  }

  #flush(): void {
    const previous = this.#snapshot;
    const fresh = this.#entries.map((entry) => entry.snapshot);
    const items =
      fresh.length === previous.items.length && fresh.every((item, i) => item === previous.items[i])
        ? previous.items
        : Object.freeze(fresh);
    const totals = totalsOf(items);
    const next: UploadsSnapshot = {
      items,
      totals: shallowEqual(totals, previous.totals) ? previous.totals : totals,
      restoring: this.#restoringNow,
      rejections: this.#rejections,
    };
    if (shallowEqual(next, previous)) return;
    this.#snapshot = Object.freeze(next);
    for (const listener of [...this.#listeners]) listener();
  }
}
