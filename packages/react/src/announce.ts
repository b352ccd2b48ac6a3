/**
 * What a screen reader hears about the list, through one polite live region: a file added, paused,
 * resumed, failed or finished, and progress in steps of a quarter — not every percent, which would
 * bury everything else the user is listening to.
 */
import type { UploadItem } from './snapshot.ts';

/** Progress is announced when it passes 25, 50 and 75 %; 100 % is the "finished" message. */
export const PROGRESS_STEP = 25;

/** The last step `percent` reached: 0, 25, 50, 75 or 100. */
export function progressStep(percent: number | undefined, step = PROGRESS_STEP): number {
  if (percent === undefined || percent <= 0) return 0;
  return Math.min(100, Math.floor(percent / step) * step);
}

const LIVE = new Set(['creating', 'uploading', 'completing']);

function added(item: UploadItem): string {
  if (item.state === 'needs-file') {
    return `${item.name} was not finished before the page reloaded. Choose it again to continue.`;
  }
  if (item.restored) {
    const percent = item.progress.percent;
    return percent !== undefined && percent > 0
      ? `${item.name} continues from ${percent}%.`
      : `${item.name} continues from before the page reloaded.`;
  }
  return `${item.name} added.`;
}

/** The sentence for one item's change, if it deserves one. */
export function describeChange(before: UploadItem | undefined, after: UploadItem): string | undefined {
  if (before === undefined) return added(after);
  const { name } = after;
  if (before.state !== after.state) {
    switch (after.state) {
      case 'paused':
        return after.offline ? `${name} paused: waiting for the network.` : `${name} paused.`;
      case 'done':
        return `${name} finished uploading.`;
      case 'failed':
        return `${name} failed. ${after.error?.message ?? ''}`.trim();
      case 'cancelled':
        return `${name} cancelled.`;
      default:
        if (before.state === 'paused' && LIVE.has(after.state)) return `${name} resumed.`;
        if (before.state === 'failed' && LIVE.has(after.state)) return `Retrying ${name}.`;
        if (before.state === 'idle' && LIVE.has(after.state)) return `${name} started.`;
    }
  }
  if (before.restored !== after.restored && after.restored) {
    return `${name} continues where it stopped before the page reloaded.`;
  }
  if (LIVE.has(after.state)) {
    const reached = progressStep(after.progress.percent);
    if (reached > progressStep(before.progress.percent) && reached < 100) {
      return `${name}: ${reached}% uploaded.`;
    }
  }
  return undefined;
}

/**
 * What changed between two snapshots of the list, in order. An item that left the list says
 * nothing: the user removed it.
 */
export function announcements(previous: readonly UploadItem[], next: readonly UploadItem[]): string[] {
  if (previous === next) return [];
  const before = new Map(previous.map((item) => [item.id, item]));
  const messages: string[] = [];
  for (const item of next) {
    const old = before.get(item.id);
    if (old === item) continue;
    const message = describeChange(old, item);
    if (message !== undefined) messages.push(message);
  }
  return messages;
}
