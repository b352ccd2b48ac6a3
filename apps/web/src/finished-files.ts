/**
 * The files this browser finished uploading, newest first, kept in localStorage (at most
 * `FINISHED_LIMIT`) so the list and its download links survive a reload. Other tabs of the same
 * origin see changes through the `storage` event. A store for `useSyncExternalStore`.
 */
import type { Protocol, UploadResult } from '@ferry/client';
import { useSyncExternalStore } from 'react';

export interface FinishedFile {
  /** The server's id of the file. */
  id: string;
  name: string;
  size: number;
  /** Where to download it: a path on this origin (`/files/:id`), or the absolute URL elsewhere. */
  href: string;
  sha256: string | null;
  protocol: Protocol;
  /** ISO 8601 */
  finishedAt: string;
}

export const FINISHED_LIMIT = 100;
const KEY = 'ferry.finished';

function isFinishedFile(value: unknown): value is FinishedFile {
  if (typeof value !== 'object' || value === null) return false;
  const file = value as Record<string, unknown>;
  return (
    typeof file['id'] === 'string' &&
    typeof file['name'] === 'string' &&
    typeof file['size'] === 'number' &&
    typeof file['href'] === 'string' &&
    typeof file['finishedAt'] === 'string' &&
    (file['protocol'] === 'tus' || file['protocol'] === 'parts')
  );
}

function read(): readonly FinishedFile[] {
  try {
    const parsed: unknown = JSON.parse(globalThis.localStorage?.getItem(KEY) ?? '[]');
    return Object.freeze(Array.isArray(parsed) ? parsed.filter(isFinishedFile) : []);
  } catch {
    return Object.freeze([]);
  }
}

function write(files: readonly FinishedFile[]): void {
  try {
    globalThis.localStorage?.setItem(KEY, JSON.stringify(files));
  } catch {
    // Storage full or blocked: the list lasts until the page is closed.
  }
}

/** A same-origin URL as its path (`/files/abc`), so the link works behind any host name. */
export function linkTo(url: string): string {
  try {
    const resolved = new URL(url, location.href);
    return resolved.origin === location.origin ? `${resolved.pathname}${resolved.search}` : resolved.href;
  } catch {
    return url;
  }
}

let files: readonly FinishedFile[] = read();
const listeners = new Set<() => void>();

function changed(next: readonly FinishedFile[]): void {
  files = next;
  for (const listener of [...listeners]) listener();
}

/** Another tab changed the list. */
function onStorage(event: StorageEvent): void {
  if (event.key === KEY || event.key === null) changed(read());
}

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  if (listeners.size === 1) globalThis.addEventListener('storage', onStorage);
  return () => {
    listeners.delete(listener);
    if (listeners.size === 0) globalThis.removeEventListener('storage', onStorage);
  };
}

export const finishedFiles = {
  subscribe,
  getSnapshot: (): readonly FinishedFile[] => files,

  /** Records a finished upload (once per file id), newest first. */
  add(name: string, protocol: Protocol, result: UploadResult): void {
    const entry: FinishedFile = {
      id: result.id,
      name,
      size: result.size,
      href: linkTo(result.url),
      sha256: result.sha256 ?? null,
      protocol,
      finishedAt: new Date().toISOString(),
    };
    const next = [entry, ...read().filter((file) => file.id !== entry.id)].slice(0, FINISHED_LIMIT);
    write(next);
    changed(Object.freeze(next));
  },

  /** Empties this browser's list (the files stay on the server). */
  clear(): void {
    write([]);
    changed(Object.freeze([]));
  },
};

export function useFinishedFiles(): readonly FinishedFile[] {
  return useSyncExternalStore(finishedFiles.subscribe, finishedFiles.getSnapshot, finishedFiles.getSnapshot);
}
