/**
 * `GET /uploads/:id/events`: an upload's events as Server-Sent Events (text/event-stream). The
 * stream opens with the current state, then follows the upload until it completes, fails for good
 * or is removed. A comment line every 15 s keeps proxies from closing an idle stream.
 */
import { PassThrough } from 'node:stream';
import { UploadError, type UploadEvent } from '@ferry/protocol';
import type { HttpResponse } from '../../http/types.ts';
import type { UploadEventRecord, UploadEvents } from '../../service/upload-events.ts';

const HEARTBEAT_MS = 15_000;

export interface EventStreamOptions {
  id: string;
  events: UploadEvents;
  signal: AbortSignal;
  /** The state to open with (read after subscribing, so nothing falls between). */
  initial: () => Promise<UploadEventRecord>;
  /** Turns an internal event into its wire shape (URLs need the request's origin). */
  toWire: (event: UploadEventRecord) => UploadEvent;
}

export async function openEventStream(options: EventStreamOptions): Promise<HttpResponse> {
  const stream = new PassThrough();
  let closed = false;
  const send = (event: UploadEventRecord) => {
    if (closed) return;
    const wire = options.toWire(event);
    stream.write(`event: ${wire.type}\ndata: ${JSON.stringify(wire)}\n\n`);
    if (wire.type === 'completed' || event.type === 'removed') close();
  };
  const unsubscribe = options.events.subscribe(options.id, send);
  const heartbeat = setInterval(() => {
    if (!closed) stream.write(': keep-alive\n\n');
  }, HEARTBEAT_MS);
  heartbeat.unref();
  function close() {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    unsubscribe();
    stream.end();
  }
  stream.once('close', close);
  options.signal.addEventListener('abort', close, { once: true });
  try {
    // Tells EventSource how long to wait before reconnecting after a dropped stream.
    stream.write('retry: 2000\n\n');
    send(await options.initial());
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

export function removedError(): UploadError {
  return new UploadError('ERR_NOT_FOUND', { message: 'the upload was deleted or expired' });
}
