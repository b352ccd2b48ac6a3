/** `useUpload`: one upload's live snapshot and its actions, fed by the SDK's events. */
import { useEffect, useMemo, useState, useSyncExternalStore } from 'react';
import type { UploadSnapshot } from './snapshot.ts';
import { createUploadStore, type SingleUploadOptions, type UploadStore } from './upload-store.ts';

export interface UploadView extends UploadSnapshot {
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

/**
 * One upload. The snapshot changes only when something visible changed (state at once, progress
 * at most every `renderIntervalMs`); the actions keep their identity for the component's life.
 * Options are read when a file starts, so new `headers` apply to the next file; a new `token`
 * reaches the running upload too (it is asked for again when the old one expires).
 * Unmounting does not stop the upload: call `cancel()` or `pause()` first if that is wanted.
 */
export function useUpload(options: SingleUploadOptions): UploadView {
  const [store] = useState<UploadStore>(() => createUploadStore(options));
  useEffect(() => store.setOptions(options));
  const snapshot = useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
  return useMemo(
    () => ({
      ...snapshot,
      start: store.start,
      pause: store.pause,
      resume: store.resume,
      retry: store.retry,
      cancel: store.cancel,
    }),
    [snapshot, store],
  );
}
