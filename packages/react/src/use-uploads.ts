/** `useUploads`: a list of uploads, its totals, and the uploads left unfinished before a reload. */
import { useEffect, useMemo, useState, useSyncExternalStore } from 'react';
import {
  createUploadsStore,
  type UploadsOptions,
  type UploadsSnapshot,
  type UploadsStore,
} from './uploads-store.ts';

export interface UploadsView extends UploadsSnapshot {
  /** The store itself (to share it with other components, or to use it outside React). */
  store: UploadsStore;
  add: UploadsStore['add'];
  start: UploadsStore['start'];
  pause: UploadsStore['pause'];
  resume: UploadsStore['resume'];
  retry: UploadsStore['retry'];
  cancel: UploadsStore['cancel'];
  remove: UploadsStore['remove'];
  dismissRejections: UploadsStore['dismissRejections'];
}

/**
 * Many uploads. On mount it lists the uploads left unfinished before a reload (`restore`), continues
 * those whose file the browser kept, and shows the others as `needs-file` until the same file is
 * added again. Callbacks are always the latest ones passed; upload options (`headers`, chunk size)
 * apply from the next file on, except `token`, which uploads already added read when they need
 * one. Unmounting does not stop uploads.
 */
export function useUploads(options: UploadsOptions): UploadsView {
  const [store] = useState<UploadsStore>(() => createUploadsStore(options));
  useEffect(() => store.setOptions(options));
  useEffect(() => {
    void store.restore();
  }, [store]);
  const snapshot = useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
  return useMemo(
    () => ({
      ...snapshot,
      store,
      add: store.add,
      start: store.start,
      pause: store.pause,
      resume: store.resume,
      retry: store.retry,
      cancel: store.cancel,
      remove: store.remove,
      dismissRejections: store.dismissRejections,
    }),
    [snapshot, store],
  );
}
