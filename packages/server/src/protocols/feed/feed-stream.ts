/**
 * `GET /uploads/events`: every upload of one namespace as Server-Sent Events. The stream opens with
 * a `snapshot` of the uploads in progress, then follows them: `created`, `progress`, `completed`,
 * `failed`, `removed`.
 *
 * What one connection may cost is bounded, whatever the client does:
 * - `progress` is coalesced per upload and written at most every `progressIntervalMs` (the latest
 *   value wins), so a fast upload costs a few events a second, not one per chunk;
 * - while more than `softBytes` wait for a slow reader, progress stays coalesced (one pending value
 *   per upload) instead of queueing;
 * - past `hardBytes` waiting, the stream is cut. `EventSource` reconnects, and the new stream's
 *   snapshot says where every upload stands, so nothing is lost but intermediate progress.
 */
import { PassThrough } from 'node:stream';
import type { UploadFeedEvent } from '@ferry/protocol';
import type { HttpResponse } from '../../http/types.ts';
import type { InProgressUpload } from '../../meta/meta-store.ts';
import {
  PROGRESS_INTERVAL_MS,
  type UploadEventRecord,
  type UploadEvents,
} from '../../service/upload-events.ts';

export interface FeedLimits {
  /** A comment line this often keeps proxies from closing an idle stream, in ms. */
  heartbeatMs: number;
  /** The reconnection delay the stream asks `EventSource` for, in ms. */
  retryMs: number;
  /** At most one `progress` per upload this often, in ms. */
  progressIntervalMs: number;
  /** Bytes waiting for the client above which progress is held back (and coalesced). */
  softBytes: number;
  /** Bytes waiting for the client above which the stream is cut. */
  hardBytes: number;
  /** Events that may arrive while the snapshot is read before the stream is cut. */
  earlyEvents: number;
}

export const FEED_LIMITS: Readonly<FeedLimits> = Object.freeze({
  heartbeatMs: 15_000,
  retryMs: 2000,
  progressIntervalMs: PROGRESS_INTERVAL_MS,
  softBytes: 64 * 1024,
  hardBytes: 1024 * 1024,
  earlyEvents: 1000,
});

export interface FeedSnapshot {
  uploads: InProgressUpload[];
  truncated: boolean;
}

export interface FeedStreamOptions {
  namespace: string;
  events: UploadEvents;
  /** Ends the stream (the client left, or the server is shutting down). */
  signal: AbortSignal;
  /** The uploads in progress, read after subscribing so that no event falls between. */
  snapshot: () => Promise<FeedSnapshot>;
  snapshotEvent: (snapshot: FeedSnapshot) => UploadFeedEvent;
  toWire: (event: UploadEventRecord) => UploadFeedEvent;
  limits?: Partial<FeedLimits>;
}

export async function openFeedStream(options: FeedStreamOptions): Promise<HttpResponse> {
  const limits = { ...FEED_LIMITS, ...options.limits };
  const { signal } = options;
  const stream = new PassThrough();
  let state: 'opening' | 'open' | 'closed' = 'opening';
  /** Events other than progress that arrived while the snapshot was read. */
  const early: UploadEventRecord[] = [];
  /** The latest progress of each upload not yet written, in the order uploads first reported. */
  const pending = new Map<string, UploadEventRecord>();
  let flushTimer: NodeJS.Timeout | undefined;

  const waiting = () => stream.writableLength + stream.readableLength;
  const write = (event: UploadFeedEvent) => {
    stream.write(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
  };

  function send(event: UploadEventRecord) {
    write(options.toWire(event));
    if (waiting() > limits.hardBytes) cut();
  }

  function onEvent(event: UploadEventRecord) {
    if (state === 'closed') return;
    const id = event.type === 'removed' ? event.id : event.record.id;
    if (event.type === 'progress') {
      pending.set(id, event);
      if (state === 'open') scheduleFlush();
      return;
    }
    // Every other event describes the whole upload: progress still waiting for it is older.
    pending.delete(id);
    if (state === 'open') {
      send(event);
    } else if (early.length < limits.earlyEvents) {
      early.push(event);
    } else {
      cut();
    }
  }

  function scheduleFlush() {
    if (flushTimer !== undefined || pending.size === 0 || state !== 'open') return;
    flushTimer = setTimeout(flush, limits.progressIntervalMs);
    flushTimer.unref();
  }

  function flush() {
    flushTimer = undefined;
    if (state !== 'open') return;
    if (waiting() <= limits.softBytes) {
      for (const event of pending.values()) write(options.toWire(event));
      pending.clear();
      if (waiting() > limits.hardBytes) {
        cut();
        return;
      }
    }
    scheduleFlush();
  }

  /** Drops the events that the snapshot, read after them, already supersedes. */
  function replayAfter(snapshot: FeedSnapshot) {
    const seen = new Map(snapshot.uploads.map((entry) => [entry.record.id, entry]));
    const superseded = (event: UploadEventRecord) => {
      if (event.type !== 'created' && event.type !== 'progress') return false;
      const known = seen.get(event.record.id);
      if (known === undefined) return false;
      if (event.type === 'created') return true;
      return (
        event.record.version < known.record.version ||
        (event.record.version === known.record.version && event.receivedBytes <= known.receivedBytes)
      );
    };
    for (const [id, event] of pending) if (superseded(event)) pending.delete(id);
    for (const event of early.splice(0)) {
      if (state !== 'open') return;
      if (!superseded(event)) send(event);
    }
  }

  const heartbeat = setInterval(() => {
    if (state === 'open' && waiting() <= limits.softBytes) stream.write(': keep-alive\n\n');
  }, limits.heartbeatMs);
  heartbeat.unref();

  function close() {
    if (state === 'closed') return;
    state = 'closed';
    clearInterval(heartbeat);
    clearTimeout(flushTimer);
    unsubscribe();
    signal.removeEventListener('abort', close);
    pending.clear();
    early.length = 0;
    stream.end();
  }

  /** The client reads too slowly: free what waits for it and end the connection. */
  function cut() {
    close();
    stream.destroy();
  }

  const unsubscribe = options.events.subscribeNamespace(options.namespace, onEvent);
  stream.once('close', close);
  if (signal.aborted) close();
  else signal.addEventListener('abort', close, { once: true });
  try {
    // Tells EventSource how long to wait before reconnecting after a dropped stream.
    stream.write(`retry: ${limits.retryMs}\n\n`);
    const snapshot = await options.snapshot();
    if (state === 'opening') {
      write(options.snapshotEvent(snapshot));
      state = 'open';
      replayAfter(snapshot);
      scheduleFlush();
    }
  } catch (error) {
    close();
    throw error;
  }
  return {
    status: 200,
    headers: {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      // nginx buffers responses by default; an event stream must reach the client at once.
      'x-accel-buffering': 'no',
    },
    body: stream,
  };
}
