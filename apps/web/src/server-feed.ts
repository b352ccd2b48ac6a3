/**
 * The uploads in progress on the server, live: `GET /uploads/events` (Server-Sent Events, see
 * docs/uploads-feed.md) folded into one frozen snapshot for `useSyncExternalStore`. Events are
 * upserts keyed by id; every (re)connection starts with a `snapshot` that replaces what was held.
 * The stream is read with `fetch` (event-stream.ts) so it carries the page's token; a refusal is
 * reported to the page's access state, and a new token opens the stream again.
 *
 * The feed carries bytes received, not speed: the rate shown is measured here, over the progress
 * events of the last few seconds (parts arrive whole, so two events alone can be milliseconds and
 * many megabytes apart).
 */
import type { UploadFeedEvent, UploadSummary } from '@ferry/protocol';
import { useSyncExternalStore } from 'react';
import { pageAccess } from './access.ts';
import { type EventStream, openEventStream } from './event-stream.ts';
import { linkTo } from './finished-files.ts';

/** `refused`: the server refused the page's token (or its lack of one); it reopens with a new one. */
export type FeedConnection = 'connecting' | 'live' | 'reconnecting' | 'refused';

export interface ServerUpload {
  readonly summary: UploadSummary;
  /** `performance.now()` when bytes last arrived (or when the upload was first seen). */
  readonly movedAt: number;
  /** Recent (time, bytes received) pairs the rate is measured over, oldest first (`rateAt`). */
  readonly samples: readonly Sample[];
  /** Why the server refused to complete it, when it did. */
  readonly error: string | undefined;
}

export interface FinishedOnServer {
  readonly id: string;
  readonly name: string;
  readonly size: number;
  readonly href: string;
  /** ISO 8601 */
  readonly finishedAt: string;
}

export interface FeedSnapshot {
  readonly connection: FeedConnection;
  /** Newest first, as the server lists them. */
  readonly uploads: readonly ServerUpload[];
  /** True when the server had more uploads in progress than its list holds. */
  readonly truncated: boolean;
  /** Files that finished while this page listened, newest first (at most `RECENT_LIMIT`). */
  readonly finished: readonly FinishedOnServer[];
}

interface Sample {
  readonly at: number;
  readonly bytes: number;
}

export const RECENT_LIMIT = 8;
/**
 * The rate is measured over the progress of this many milliseconds: tus reports bytes as they
 * arrive, the parts API a whole part once it is stored (8 MiB or more), so parts need longer.
 */
const RATE_WINDOW_MS: Readonly<Record<UploadSummary['protocol'], number>> = { tus: 5000, parts: 20_000 };
/** The rate is shown once it spans at least this many milliseconds. */
const RATE_MIN_SPAN_MS = 1000;
/** How long to wait before reopening a feed whose answer was not a stream (a 5xx, a proxy's error page). */
const REOPEN_MS = 5000;

/**
 * Bytes per second at `now` (a `performance.now()` time) over the protocol's window: what arrived
 * since the last sample before the window, over the time since then, so a rate fades while nothing
 * arrives. 0 until the samples span a second.
 */
export function rateAt(upload: ServerUpload, now: number): number {
  const window = RATE_WINDOW_MS[upload.summary.protocol];
  const { samples } = upload;
  const newest = samples[samples.length - 1];
  const inside = samples.findIndex((sample) => now - sample.at <= window);
  const base = inside === -1 ? newest : (samples[Math.max(0, inside - 1)] ?? newest);
  if (newest === undefined || base === undefined || newest.at - base.at < RATE_MIN_SPAN_MS) return 0;
  return Math.max(0, ((newest.bytes - base.bytes) * 1000) / (now - base.at));
}

export interface ServerFeed {
  subscribe(listener: () => void): () => void;
  getSnapshot(): FeedSnapshot;
}

export function createServerFeed(url = '/uploads/events'): ServerFeed {
  let snapshot: FeedSnapshot = Object.freeze({
    connection: 'connecting',
    uploads: Object.freeze([]),
    truncated: false,
    finished: Object.freeze([]),
  });
  const uploads = new Map<string, ServerUpload>();
  const listeners = new Set<() => void>();
  let stream: EventStream | undefined;
  let stopWatchingToken: (() => void) | undefined;

  function publish(changes: Partial<FeedSnapshot>): void {
    const ordered = [...uploads.values()].sort((a, b) =>
      b.summary.createdAt.localeCompare(a.summary.createdAt),
    );
    snapshot = Object.freeze({ ...snapshot, uploads: Object.freeze(ordered), ...changes });
    for (const listener of [...listeners]) listener();
  }

  function upsert(summary: UploadSummary, error?: string): void {
    const now = performance.now();
    const previous = uploads.get(summary.id);
    let movedAt = previous?.movedAt ?? now;
    let samples = previous?.samples ?? [];
    const last = samples[samples.length - 1];
    if (last === undefined || summary.receivedBytes !== last.bytes) {
      if (last !== undefined) movedAt = now;
      // One sample from before the window is kept: the bytes in the window are counted from it.
      const window = RATE_WINDOW_MS[summary.protocol];
      const inside = samples.findIndex((sample) => now - sample.at <= window);
      samples = [
        ...(inside === -1 ? samples.slice(-1) : samples.slice(Math.max(0, inside - 1))),
        { at: now, bytes: summary.receivedBytes },
      ];
    }
    uploads.set(summary.id, Object.freeze({ summary, movedAt, samples, error }));
  }

  function onEvent(event: UploadFeedEvent): void {
    switch (event.type) {
      case 'snapshot': {
        const kept = new Map(uploads);
        uploads.clear();
        for (const summary of event.uploads) {
          const previous = kept.get(summary.id);
          if (previous !== undefined) uploads.set(summary.id, previous);
          upsert(summary);
        }
        publish({ connection: 'live', truncated: event.truncated });
        return;
      }
      case 'created':
      case 'progress':
        upsert(event.upload, uploads.get(event.upload.id)?.error);
        break;
      case 'failed':
        upsert(event.upload, event.error.message);
        break;
      case 'completed': {
        uploads.delete(event.upload.id);
        const { file } = event;
        const done: FinishedOnServer = Object.freeze({
          id: file.id,
          name: file.name ?? event.upload.name ?? 'Unnamed file',
          size: file.size,
          href: linkTo(file.url),
          finishedAt: file.finishedAt,
        });
        const finished = [done, ...snapshot.finished.filter((known) => known.id !== done.id)];
        publish({ finished: Object.freeze(finished.slice(0, RECENT_LIMIT)) });
        return;
      }
      case 'removed':
        uploads.delete(event.id);
        break;
    }
    publish({});
  }

  /** The token the open (or last) stream was asked with. */
  let usedToken: string | undefined;

  function open(): void {
    stream = openEventStream({
      url,
      headers: (): Record<string, string> => {
        usedToken = pageAccess.token();
        return usedToken === undefined ? {} : { authorization: `Bearer ${usedToken}` };
      },
      onOpen: () => pageAccess.accepted(usedToken),
      onEvent: (_type, data) => {
        try {
          onEvent(JSON.parse(data) as UploadFeedEvent);
        } catch {
          // Not an event of this feed: ignored.
        }
      },
      onDrop: () => {
        if (snapshot.connection !== 'reconnecting') publish({ connection: 'reconnecting' });
      },
      onRefused: (status, code) => {
        if (status === 401 || status === 403) {
          pageAccess.refused(usedToken, code);
          // Tried again when the page gets a new token (below), not before: it would be refused again.
          publish({ connection: 'refused' });
          return false;
        }
        if (snapshot.connection !== 'reconnecting') publish({ connection: 'reconnecting' });
        return true;
      },
      refusedRetryMs: REOPEN_MS,
    });
  }

  function close(): void {
    stream?.close();
    stream = undefined;
  }

  /** A new token: a stream that was refused, or runs on the old token, starts again with it. */
  function tokenChanged(): void {
    if (listeners.size === 0 || pageAccess.token() === usedToken) return;
    close();
    publish({ connection: 'connecting' });
    open();
  }

  return {
    subscribe(listener) {
      listeners.add(listener);
      if (listeners.size === 1) {
        stopWatchingToken = pageAccess.subscribe(tokenChanged);
        open();
      }
      return () => {
        listeners.delete(listener);
        if (listeners.size === 0) {
          stopWatchingToken?.();
          close();
        }
      };
    },
    getSnapshot: () => snapshot,
  };
}

const feed = createServerFeed();

export function useServerFeed(): FeedSnapshot {
  return useSyncExternalStore(feed.subscribe, feed.getSnapshot, feed.getSnapshot);
}
