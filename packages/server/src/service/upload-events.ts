/**
 * Events about uploads, for `GET /uploads/:id/events` (one upload) and `GET /uploads/events` (every
 * upload of a namespace). In-process: listeners hear what this process did. A shared bus
 * (PostgreSQL `LISTEN/NOTIFY`) plugs in behind the same interface when several nodes serve one
 * namespace.
 *
 * Producers ask `hasListeners(id)` before doing work only a listener needs (reading a record back,
 * counting parts, timing a body), so with nobody listening an event costs one map lookup.
 */
import type { UploadError } from '@ferry/protocol';
import type { UploadRecord } from '../meta/meta-store.ts';

export type UploadEventRecord =
  /** A new upload (not for uploads created already finished: deduplicated or concatenated). */
  | { type: 'created'; record: UploadRecord }
  /**
   * Bytes arrived. `receivedBytes` may be ahead of `record.offset` while a tus `PATCH` is still
   * being read (the record is written when the body ends).
   */
  | { type: 'progress'; record: UploadRecord; receivedBytes: number; partsReceived: number }
  | { type: 'completed'; record: UploadRecord }
  | { type: 'failed'; record: UploadRecord; error: UploadError }
  /** The upload was deleted or expired; listeners stop. */
  | { type: 'removed'; id: string; namespace: string };

export type UploadEventListener = (event: UploadEventRecord) => void;

export interface UploadEvents {
  /** Listens to one upload's events; returns the function that stops listening. */
  subscribe(id: string, listener: UploadEventListener): () => void;
  /** Listens to the events of every upload in `namespace`; returns the function that stops listening. */
  subscribeNamespace(namespace: string, listener: UploadEventListener): () => void;
  /** Listens to the events of every upload (the `onProgress` hook); returns the function that stops listening. */
  subscribeAll(listener: UploadEventListener): () => void;
  /**
   * True when someone may want `id`'s events: a listener of that upload, or of any namespace
   * (the namespace is not known before the record is read, and reading it is the work to skip).
   */
  hasListeners(id: string): boolean;
  emit(id: string, event: UploadEventRecord): void;
}

export function createUploadEvents(): UploadEvents {
  const listeners = new Map<string, Set<UploadEventListener>>();
  const namespaces = new Map<string, Set<UploadEventListener>>();
  const everything = new Set<UploadEventListener>();

  function add(map: Map<string, Set<UploadEventListener>>, key: string, listener: UploadEventListener) {
    let set = map.get(key);
    if (set === undefined) {
      set = new Set();
      map.set(key, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && map.get(key) === set) map.delete(key);
    };
  }

  function deliver(set: Set<UploadEventListener> | undefined, event: UploadEventRecord) {
    if (set === undefined) return;
    for (const listener of [...set]) {
      try {
        listener(event);
      } catch {
        // A listener's failure (a closed response) must not stop the write that emitted.
      }
    }
  }

  return {
    subscribe(id, listener) {
      return add(listeners, id, listener);
    },
    subscribeNamespace(namespace, listener) {
      return add(namespaces, namespace, listener);
    },
    subscribeAll(listener) {
      everything.add(listener);
      return () => {
        everything.delete(listener);
      };
    },
    hasListeners(id) {
      return everything.size > 0 || namespaces.size > 0 || listeners.has(id);
    },
    emit(id, event) {
      deliver(listeners.get(id), event);
      if (everything.size > 0) deliver(everything, event);
      if (namespaces.size === 0) return;
      deliver(namespaces.get(event.type === 'removed' ? event.namespace : event.record.namespace), event);
    },
  };
}

/** A body reports its progress at most this often (the feed shows ~4 updates a second). */
export const PROGRESS_INTERVAL_MS = 250;

export interface ProgressTap {
  /** `bytes` more arrived. */
  chunk(bytes: number): void;
  /** None of the body was kept (a checksum refused it): undo what listeners were shown. */
  dropped(): void;
}

/**
 * Counts the bytes of a body as they arrive (`record`'s bytes from `start`) and emits `progress`
 * at most every `PROGRESS_INTERVAL_MS`, only while someone listens: a long `PATCH` then shows live
 * progress instead of one jump at its end. With nobody listening, a chunk costs an addition and a
 * map lookup.
 */
export function progressTap(events: UploadEvents, record: UploadRecord, start: number): ProgressTap {
  let received = start;
  let last = Number.NEGATIVE_INFINITY;
  let shown = false;
  return {
    chunk(bytes) {
      received += bytes;
      if (!events.hasListeners(record.id)) return;
      const now = performance.now();
      if (now - last < PROGRESS_INTERVAL_MS) return;
      last = now;
      shown = true;
      events.emit(record.id, { type: 'progress', record, receivedBytes: received, partsReceived: 0 });
    },
    dropped() {
      if (shown) events.emit(record.id, { type: 'progress', record, receivedBytes: start, partsReceived: 0 });
    },
  };
}
