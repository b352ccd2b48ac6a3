/** The whole list at a glance: counts by state and progress over every file still in play. */
import { percentOf, type UploadItem } from './snapshot.ts';

export interface UploadTotals {
  /** Files counted below: every item but cancelled ones and those waiting for their file. */
  readonly files: number;
  /** Preparing, uploading or finishing. */
  readonly active: number;
  /** Added but not started (`autoStart: false`). */
  readonly queued: number;
  readonly paused: number;
  readonly done: number;
  readonly failed: number;
  /** Left unfinished before a reload; waiting for the user to pick the file again. */
  readonly needsFile: number;
  /** Sum over the counted files that have not failed (a failed file's bytes are not in play). */
  readonly bytesConfirmed: number;
  readonly totalBytes: number;
  /** Whole percent of `totalBytes` confirmed; `undefined` with no file. */
  readonly percent: number | undefined;
  /** Sum of the active uploads' send rates. */
  readonly bytesPerSecond: number;
  /** Seconds until the active uploads are confirmed at the current rate; `undefined` when unknown. */
  readonly etaSeconds: number | undefined;
}

export function totalsOf(items: readonly UploadItem[]): UploadTotals {
  let files = 0;
  let active = 0;
  let queued = 0;
  let paused = 0;
  let done = 0;
  let failed = 0;
  let needsFile = 0;
  let bytesConfirmed = 0;
  let totalBytes = 0;
  let bytesPerSecond = 0;
  let activeRemaining = 0;
  for (const item of items) {
    if (item.state === 'cancelled') continue;
    if (item.state === 'needs-file') {
      needsFile++;
      continue;
    }
    files++;
    if (item.state === 'failed') {
      failed++;
      continue;
    }
    const size = item.progress.totalBytes ?? item.size ?? 0;
    totalBytes += size;
    bytesConfirmed += Math.min(item.progress.bytesConfirmed, size);
    switch (item.state) {
      case 'idle':
        queued++;
        break;
      case 'paused':
        paused++;
        break;
      case 'done':
        done++;
        break;
      default:
        active++;
        bytesPerSecond += item.progress.bytesPerSecond;
        activeRemaining += Math.max(0, size - item.progress.bytesConfirmed);
    }
  }
  const inPlay = files - failed;
  const fraction =
    inPlay === 0 ? undefined : totalBytes === 0 ? (done === inPlay ? 1 : 0) : bytesConfirmed / totalBytes;
  return Object.freeze({
    files,
    active,
    queued,
    paused,
    done,
    failed,
    needsFile,
    bytesConfirmed,
    totalBytes,
    percent: percentOf(fraction),
    bytesPerSecond,
    etaSeconds: active === 0 ? undefined : bytesPerSecond > 0 ? activeRemaining / bytesPerSecond : undefined,
  });
}
