/**
 * What a component renders for one upload: frozen objects, replaced only when something a person
 * could see changed, so `useSyncExternalStore` compares them by reference and never loops.
 */
import type { UploadProgress, UploadResult, UploadState } from '@ferry/client';
import type { UploadFailure } from './failure.ts';

/**
 * The SDK's states, plus `needs-file`: an upload left unfinished before a reload whose file the
 * browser did not keep; it continues when the user picks the same file again.
 */
export type UploadItemState = UploadState | 'needs-file';

export interface PartsCount {
  /** Parts the server holds. */
  readonly confirmed: number;
  /** Parts the upload has. */
  readonly total: number;
}

export interface ProgressSnapshot {
  /** Bytes the server confirmed. Never decreases. */
  readonly bytesConfirmed: number;
  /** Bytes sent and not yet confirmed. */
  readonly bytesInFlight: number;
  /** The file's size; `undefined` when not known. */
  readonly totalBytes: number | undefined;
  /** Whole percent of the file the server confirmed, 0–100, rounded down (100 only when all is there). */
  readonly percent: number | undefined;
  /** Send rate, bytes per second (the SDK's moving average). */
  readonly bytesPerSecond: number;
  /** Seconds until every byte is confirmed at the current rate; `undefined` when unknown. */
  readonly etaSeconds: number | undefined;
  /** Parts protocol only: parts confirmed of the upload's total. */
  readonly parts: PartsCount | undefined;
}

export interface UploadSnapshot {
  /** The file's name ('' before a file was chosen). */
  readonly name: string;
  /** The file's size in bytes. */
  readonly size: number | undefined;
  /** The file's media type as the browser reported it ('' when it did not). */
  readonly type: string;
  /** The file itself; `undefined` before one was chosen and for `needs-file`. */
  readonly file: Blob | undefined;
  /** `done` always comes with `result`, `failed` with `error`. */
  readonly state: UploadItemState;
  /** Paused because the network is gone; it continues by itself when the network is back. */
  readonly offline: boolean;
  readonly progress: ProgressSnapshot;
  /** Why it failed, for people (`state` is `failed`). */
  readonly error: UploadFailure | undefined;
  /** What the server stored (`state` is `done`). */
  readonly result: UploadResult | undefined;
  /** The upload's URL on the server, once created or found again. */
  readonly uploadUrl: string | undefined;
  /** It continues an upload started before the page was reloaded. */
  readonly restored: boolean;
}

export interface UploadItem extends UploadSnapshot {
  /** Stable for the life of the item; the key for actions and for React lists. */
  readonly id: string;
}

export const EMPTY_PROGRESS: ProgressSnapshot = Object.freeze({
  bytesConfirmed: 0,
  bytesInFlight: 0,
  totalBytes: undefined,
  percent: undefined,
  bytesPerSecond: 0,
  etaSeconds: undefined,
  parts: undefined,
});

/** Whole percent, rounded down; 0.29 reads as 29, not 28 (floating point), and only 1 reads as 100. */
export function percentOf(fraction: number | undefined): number | undefined {
  if (fraction === undefined) return undefined;
  if (fraction >= 1) return 100;
  return Math.min(99, Math.max(0, Math.floor(fraction * 100 + 1e-9)));
}

/**
 * The SDK's progress as a frozen snapshot; `previous` itself when nothing changed. `size` stands
 * in for the total until the SDK has opened the file.
 */
export function progressSnapshot(
  progress: UploadProgress,
  size: number | undefined,
  previous: ProgressSnapshot = EMPTY_PROGRESS,
): ProgressSnapshot {
  const totalBytes = progress.totalBytes ?? size;
  const fraction =
    progress.fraction ??
    (totalBytes === undefined ? undefined : totalBytes === 0 ? 0 : progress.bytesConfirmed / totalBytes);
  const parts =
    progress.parts === undefined
      ? undefined
      : previous.parts !== undefined &&
          previous.parts.confirmed === progress.parts.confirmed &&
          previous.parts.total === progress.parts.total
        ? previous.parts
        : Object.freeze({ confirmed: progress.parts.confirmed, total: progress.parts.total });
  const next: ProgressSnapshot = {
    bytesConfirmed: progress.bytesConfirmed,
    bytesInFlight: progress.bytesInFlight,
    totalBytes,
    percent: percentOf(fraction),
    bytesPerSecond: progress.bytesPerSecond,
    etaSeconds: progress.etaSeconds,
    parts,
  };
  return shallowEqual(next, previous) ? previous : Object.freeze(next);
}

/** Same keys with identical (`Object.is`) values. */
export function shallowEqual<T extends object>(a: T, b: T): boolean {
  if (a === b) return true;
  const keys = Object.keys(a) as (keyof T)[];
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((key) => Object.is(a[key], b[key]));
}
