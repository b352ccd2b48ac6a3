/** The words on a file's card, apart from the markup so they can be read and tested on their own. */
import { formatBytes, formatDuration, formatRate } from './format.ts';
import type { UploadItem, UploadItemState } from './snapshot.ts';

const STATE_WORDS: Record<UploadItemState, string> = {
  idle: 'Ready',
  creating: 'Preparing',
  uploading: 'Uploading',
  paused: 'Paused',
  completing: 'Finishing',
  done: 'Uploaded',
  failed: 'Failed',
  cancelled: 'Cancelled',
  'needs-file': 'Waiting for the file',
};

/** "Uploading", "Paused", "Waiting for the network", … */
export function stateLabel(item: Pick<UploadItem, 'state' | 'offline'>): string {
  if (item.state === 'paused' && item.offline) return 'Waiting for the network';
  return STATE_WORDS[item.state];
}

/** "45% · 1.2 GB of 2.6 GB" as its two halves: ["45%", "1.2 GB of 2.6 GB"]. */
export function amountText(item: Pick<UploadItem, 'progress' | 'size'>): { percent: string; bytes: string } {
  const { percent, bytesConfirmed, totalBytes } = item.progress;
  const total = totalBytes ?? item.size;
  return {
    percent: `${percent ?? 0}%`,
    bytes:
      total === undefined
        ? formatBytes(bytesConfirmed)
        : `${formatBytes(bytesConfirmed)} of ${formatBytes(total)}`,
  };
}

/** For the progress bar's `aria-valuetext`: "45%, 1.2 GB of 2.6 GB". */
export function progressValueText(item: Pick<UploadItem, 'progress' | 'size'>): string {
  const { percent, bytes } = amountText(item);
  return `${percent}, ${bytes}`;
}

/** Speed and time left, only while bytes move: ["2.4 MB/s", "3 min 20 s left"]. */
export function rateText(item: Pick<UploadItem, 'state' | 'progress'>): { speed?: string; eta?: string } {
  if (item.state !== 'uploading' && item.state !== 'completing') return {};
  const { bytesPerSecond, etaSeconds } = item.progress;
  return {
    ...(bytesPerSecond > 0 ? { speed: formatRate(bytesPerSecond) } : {}),
    ...(etaSeconds !== undefined && bytesPerSecond > 0 ? { eta: `${formatDuration(etaSeconds)} left` } : {}),
  };
}

/** "Parts 12 of 40" (parts protocol). */
export function partsText(item: Pick<UploadItem, 'progress'>): string | undefined {
  const parts = item.progress.parts;
  return parts === undefined ? undefined : `Parts ${parts.confirmed} of ${parts.total}`;
}

/** The list's summary in two halves: "2 of 3 files uploaded" and "45% of 2.6 GB". */
export function summaryParts(totals: {
  files: number;
  done: number;
  percent: number | undefined;
  totalBytes: number;
}): {
  files: string;
  bytes: string;
} {
  const files = totals.files === 1 ? '1 file' : `${totals.files} files`;
  return {
    files: `${totals.done} of ${files} uploaded`,
    bytes: `${totals.percent ?? 0}% of ${formatBytes(totals.totalBytes)}`,
  };
}

/** The list's summary: "2 of 3 files uploaded · 45% of 2.6 GB". */
export function summaryText(totals: {
  files: number;
  done: number;
  percent: number | undefined;
  totalBytes: number;
}): string {
  const { files, bytes } = summaryParts(totals);
  return `${files} · ${bytes}`;
}
