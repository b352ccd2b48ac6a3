/**
 * Reads a request body into a sink that takes chunks as they arrive and may ask the reader to
 * wait (the fs store's write queue is full, every S3 part-upload slot is busy). Every store uses it. A body that breaks (error, premature close), an abort signal,
 * `maxBytes` and a failing sink all end reading the same way: stop, keep what arrived, say why.
 * A Node stream is paused, never destroyed: its owner (the HTTP layer) still answers on it.
 */
import { Readable } from 'node:stream';
import { UploadError } from '@ferry/protocol';
import type { AppendOptions, ByteSource } from './data-store.ts';

export interface ChunkSink {
  /** Takes a chunk; the sink may keep it (no copy is made). */
  push(chunk: Uint8Array): void;
  /** True while the reader must wait before the next chunk. */
  readonly full: boolean;
  /** True once writing failed: the reader stops. */
  readonly failed: boolean;
  /** Set by the reader: the sink calls it when it has room again or failed. */
  onChange: (() => void) | undefined;
}

export interface BodyOutcome {
  /** Bytes taken from the body (after `maxBytes`), all handed to the sink. */
  received: number;
  /** Why reading stopped early; undefined when the body ended (or the sink failed). */
  interruption: unknown;
}

/** Reads `body` into `sink`, applying `maxBytes`, `onChunk` and `signal` from `options`. */
export function readBody(body: ByteSource, options: AppendOptions, sink: ChunkSink): Promise<BodyOutcome> {
  const intake = new Intake(sink, options);
  const reading =
    body instanceof Readable
      ? readStream(body, intake, sink, options.signal)
      : readIterable(body, intake, sink, options.signal);
  return reading.then((interruption) => ({ received: intake.received, interruption }));
}

class Intake {
  received = 0;
  #maxBytes: number;
  #onChunk: ((chunk: Uint8Array) => void) | undefined;
  #sink: ChunkSink;

  constructor(sink: ChunkSink, options: AppendOptions) {
    this.#sink = sink;
    this.#maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
    this.#onChunk = options.onChunk;
  }

  /** Takes one chunk; returns a reason to stop reading, or `undefined` to go on. */
  take(value: unknown): { reason: unknown } | undefined {
    let chunk: Uint8Array;
    try {
      chunk = toBytes(value);
    } catch (error) {
      return { reason: error };
    }
    let overflow = false;
    if (this.received + chunk.byteLength > this.#maxBytes) {
      chunk = chunk.subarray(0, this.#maxBytes - this.received);
      overflow = true;
    }
    if (chunk.byteLength > 0) {
      try {
        this.#onChunk?.(chunk);
      } catch (error) {
        return { reason: error };
      }
      this.received += chunk.byteLength;
      this.#sink.push(chunk);
    }
    if (overflow) return { reason: new UploadError('ERR_EXCEEDS_LENGTH') };
    if (this.#sink.failed) return { reason: undefined };
    return undefined;
  }
}

function toBytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (typeof value === 'string') return Buffer.from(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  throw new TypeError('a body chunk must be bytes');
}

function prematureClose(): Error {
  return Object.assign(new Error('the body closed before its end'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}

function readStream(
  source: Readable,
  intake: Intake,
  sink: ChunkSink,
  signal: AbortSignal | undefined,
): Promise<unknown> {
  return new Promise<unknown>((resolve) => {
    if (signal?.aborted) return resolve(signal.reason);
    if (source.readableEnded) return resolve(undefined);
    if (source.errored) return resolve(source.errored);
    if (source.destroyed) return resolve(prematureClose());
    let stopped = false;
    let paused = false;
    const stop = (reason: unknown, ended: boolean) => {
      if (stopped) return;
      stopped = true;
      source.removeListener('data', onData);
      source.removeListener('end', onEnd);
      source.removeListener('close', onClose);
      // The error listener stays as a no-op: a body error after we stopped must not crash.
      signal?.removeEventListener('abort', onAbort);
      sink.onChange = undefined;
      if (!ended) source.pause();
      resolve(reason);
    };
    const onData = (chunk: unknown) => {
      const outcome = intake.take(chunk);
      if (outcome !== undefined) stop(outcome.reason, false);
      else if (sink.full && !paused) {
        paused = true;
        source.pause();
      }
    };
    const onEnd = () => stop(undefined, true);
    const onError = (error: unknown) => stop(error, false);
    const onClose = () => stop(prematureClose(), false);
    const onAbort = () => stop(signal!.reason, false);
    sink.onChange = () => {
      if (sink.failed) stop(undefined, false);
      else if (paused && !sink.full && !stopped) {
        paused = false;
        source.resume();
      }
    };
    source.on('data', onData);
    source.on('end', onEnd);
    source.on('error', onError);
    source.on('close', onClose);
    signal?.addEventListener('abort', onAbort, { once: true });
    source.resume();
  });
}

async function readIterable(
  body: AsyncIterable<Uint8Array>,
  intake: Intake,
  sink: ChunkSink,
  signal: AbortSignal | undefined,
): Promise<unknown> {
  if (signal?.aborted) return signal.reason;
  const iterator = body[Symbol.asyncIterator]();
  const aborted = Symbol('aborted');
  let onAbort: (() => void) | undefined;
  const abortPromise =
    signal === undefined
      ? undefined
      : new Promise<typeof aborted>((resolve) => {
          onAbort = () => resolve(aborted);
          signal.addEventListener('abort', onAbort, { once: true });
        });
  // Lets a generator run its `finally`; a pending `next()` may make this wait, so it is not awaited.
  const release = () => void iterator.return?.()?.catch?.(() => {});
  const waitRoom = () =>
    new Promise<void>((resolve) => {
      sink.onChange = () => {
        if (sink.full && !sink.failed) return;
        sink.onChange = undefined;
        resolve();
      };
    });
  try {
    for (;;) {
      const step = abortPromise ? await Promise.race([iterator.next(), abortPromise]) : await iterator.next();
      if (step === aborted) {
        release();
        return signal!.reason;
      }
      if (step.done) return undefined;
      const outcome = intake.take(step.value);
      if (outcome !== undefined) {
        release();
        return outcome.reason;
      }
      if (sink.full) {
        const room = waitRoom();
        if (abortPromise) {
          if ((await Promise.race([room, abortPromise])) === aborted) {
            sink.onChange = undefined;
            release();
            return signal!.reason;
          }
        } else await room;
      }
      if (sink.failed) {
        release();
        return undefined;
      }
    }
  } catch (error) {
    return error;
  } finally {
    if (onAbort) signal!.removeEventListener('abort', onAbort);
  }
}
