/**
 * Events about uploads, for `GET /uploads/:id/events` (Server-Sent Events). In-process: the
 * listeners of one upload hear what this process did to it. A shared bus (PostgreSQL
 * `LISTEN/NOTIFY`) plugs in behind the same interface when several nodes serve one upload.
 */
import type { UploadError } from '@ferry/protocol';
import type { UploadRecord } from '../meta/meta-store.ts';

export type UploadEventRecord =
  | { type: 'progress'; record: UploadRecord; receivedBytes: number; partsReceived: number }
  | { type: 'completed'; record: UploadRecord }
  | { type: 'failed'; record: UploadRecord; error: UploadError }
  /** The upload was deleted or expired; listeners stop. */
  | { type: 'removed'; id: string };

export type UploadEventListener = (event: UploadEventRecord) => void;

export interface UploadEvents {
  /** Listens to one upload's events; returns the function that stops listening. */
  subscribe(id: string, listener: UploadEventListener): () => void;
  /** True when someone listens to `id` (so producers skip work nobody reads). */
  hasListeners(id: string): boolean;
  emit(id: string, event: UploadEventRecord): void;
}

export function createUploadEvents(): UploadEvents {
  const listeners = new Map<string, Set<UploadEventListener>>();
  return {
    subscribe(id, listener) {
      let set = listeners.get(id);
      if (set === undefined) {
        set = new Set();
        listeners.set(id, set);
      }
      set.add(listener);
      return () => {
        set.delete(listener);
        if (set.size === 0 && listeners.get(id) === set) listeners.delete(id);
      };
    },
    hasListeners(id) {
      return listeners.has(id);
    },
    emit(id, event) {
      const set = listeners.get(id);
      if (set === undefined) return;
      for (const listener of [...set]) {
        try {
          listener(event);
        } catch {
          // A listener's failure (a closed response) must not stop the write that emitted.
        }
      }
    },
  };
}
