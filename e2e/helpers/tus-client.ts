/**
 * Drives the real tus-js-client (its Node build) from tests: one promise per upload run, with what
 * the run saw (progress, acknowledged chunks, the offsets its PATCHes started from), a throttled
 * HTTP stack so a crash can be made to land mid-request, and a streaming SHA-256 download.
 */
import { createHash } from 'node:crypto';
import { get } from 'node:http';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DefaultHttpStack,
  type HttpRequest,
  type HttpStack,
  Upload,
  type UploadOptions,
} from 'tus-js-client';

export interface UploadRun {
  /** The upload URL, known as soon as the upload was created (also when the run fails). */
  readonly url: () => string | null;
  /** Every `onProgress` value, in order. */
  readonly progress: number[];
  /** The largest `bytesAccepted` of `onChunkComplete`: bytes the server acknowledged. */
  readonly acknowledged: () => number;
  /** `Upload-Offset` of every PATCH the client sent, in order. */
  readonly sentOffsets: number[];
  /** Resolves with the upload URL on success; rejects with the client's error. */
  readonly done: Promise<string>;
  readonly upload: Upload;
}

/** tus-js-client accepts Node Readables (its types list only browser sources). */
export type UploadSource = Buffer | Readable;

export function runUpload(source: UploadSource, options: UploadOptions): UploadRun {
  const progress: number[] = [];
  const sentOffsets: number[] = [];
  let acknowledged = 0;
  let upload: Upload | undefined;
  const done = new Promise<string>((resolve, reject) => {
    upload = new Upload(source as Buffer, {
      retryDelays: null,
      ...options,
      onProgress(sent, total) {
        progress.push(sent);
        options.onProgress?.(sent, total);
      },
      onChunkComplete(size, accepted, total) {
        acknowledged = Math.max(acknowledged, accepted);
        options.onChunkComplete?.(size, accepted, total);
      },
      async onBeforeRequest(request: HttpRequest) {
        const offset = request.getHeader('Upload-Offset');
        if (offset !== undefined) sentOffsets.push(Number(offset));
        await options.onBeforeRequest?.(request);
      },
      onSuccess() {
        resolve(upload?.url ?? '');
      },
      onError(error) {
        reject(error);
      },
    });
    upload.start();
  });
  // A run that is expected to fail must not become an unhandled rejection before it is awaited.
  done.catch(() => {});
  return {
    url: () => upload?.url ?? null,
    progress,
    acknowledged: () => acknowledged,
    sentOffsets,
    done,
    upload: upload as unknown as Upload,
  };
}

/** Splits any body tus-js-client hands its HTTP stack into pieces sent at `bytesPerSecond`. */
async function* throttle(
  body: Uint8Array | Readable,
  bytesPerSecond: number,
  beforePiece: (sentBefore: number) => Promise<unknown> | undefined,
): AsyncGenerator<Buffer> {
  const piece = 64 * 1024;
  const started = performance.now();
  let sent = 0;
  const chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array> = body instanceof Uint8Array ? [body] : body;
  for await (const chunk of chunks) {
    const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    for (let at = 0; at < bytes.length; at += piece) {
      const part = bytes.subarray(at, at + piece);
      const hold = beforePiece(sent);
      if (hold !== undefined) await hold;
      sent += part.length;
      const due = started + (sent / bytesPerSecond) * 1000;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      yield part;
    }
  }
}

/**
 * Called before each piece of a request body goes out: `body` counts the bodies this stack sent
 * (0 for the first), `sentBefore` the bytes of this body already out. A returned promise holds the
 * rest of the body until it settles, so a test can act at an exact point inside a request.
 */
export type BodyProbe = (body: number, sentBefore: number) => Promise<unknown> | undefined;

/**
 * tus-js-client's own Node HTTP stack with request bodies slowed to `bytesPerSecond`. Only the pace
 * changes: headers, Content-Length (tus-js-client reads it from `body.size`) and bytes are the same.
 */
export function createThrottledHttpStack(bytesPerSecond: number, probe?: BodyProbe): HttpStack {
  const inner = new DefaultHttpStack({});
  let bodies = 0;
  return {
    getName: () => 'throttled-node-http',
    createRequest(method, url) {
      const request = inner.createRequest(method, url);
      const send = request.send.bind(request);
      request.send = (body: unknown) => {
        if (!(body instanceof Uint8Array || body instanceof Readable)) return send(body);
        const size =
          (body as { size?: number }).size ?? (body instanceof Uint8Array ? body.length : undefined);
        const index = bodies++;
        const beforePiece = (sentBefore: number) => probe?.(index, sentBefore);
        const slowed = Readable.from(throttle(body, bytesPerSecond, beforePiece), { objectMode: false });
        if (size !== undefined) Object.assign(slowed, { size });
        return send(slowed);
      };
      return request;
    },
  };
}

/** GETs a finished file and returns its size and SHA-256 (hex), streaming. */
export function downloadDigest(url: string): Promise<{ status: number; size: number; sha256: string }> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (res) => {
      const hash = createHash('sha256');
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        hash.update(chunk);
      });
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, size, sha256: hash.digest('hex') }));
    }).on('error', reject);
  });
}

/** A tus HEAD: the upload's offset as the server reports it, and the status. */
export function tusHead(url: string): Promise<{ status: number; offset: number | undefined }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { method: 'HEAD', agent: false, headers: { 'Tus-Resumable': '1.0.0' } }, (res) => {
      res.resume();
      res.on('end', () => {
        const offset = res.headers['upload-offset'];
        resolve({ status: res.statusCode ?? 0, offset: offset === undefined ? undefined : Number(offset) });
      });
    });
    req.on('error', reject);
  });
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
