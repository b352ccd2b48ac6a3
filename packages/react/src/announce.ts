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

/** What the state change between two snapshots of an item says, if anything. */
function stateSentence(before: UploadItem, after: UploadItem): string | undefined {
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
  return undefined;
}

/**
 * The sentences for one item's change, in order: what happened to it, then the quarter its
 * progress passed, if any (a resume may find the server already past the next quarter).
 */
export function describeChange(before: UploadItem | undefined, after: UploadItem): string[] {
  if (before === undefined) return [added(after)];
  const sentences: string[] = [];
  const state = stateSentence(before, after);
  if (state !== undefined) sentences.push(state);
  if (LIVE.has(after.state)) {
    const reached = progressStep(after.progress.percent);
    if (reached > progressStep(before.progress.percent) && reached < 100) {
      sentences.push(`${after.name}: ${reached}% uploaded.`);
    }
  }
  return sentences;
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
    messages.push(...describeChange(old, item));
  }
  return messages;
}
