// One upload client of the client benchmark, in a process of its own so its CPU time and resident
// memory are its alone. The harness forks it with the client's kind as its argument; it loads that
// client's library only, says "ready", and the harness starts its meters and sends one job. The
// process exits when the harness disconnects.
import { createReadStream } from 'node:fs';
import http from 'node:http';
import { pipeline } from 'node:stream/promises';

export type ClientKind =
  | 'raw'
  | 'ferry-tus'
  | 'ferry-parts-4'
  | 'ferry-parts-8'
  | 'tusjs'
  | 'tusjs-parallel-4'
  | 'ferry-presigned-4'
  | 'lib-storage';

const isFerry = (kind: ClientKind) => kind.startsWith('ferry-');
const isTusJs = (kind: ClientKind) => kind.startsWith('tusjs');

export interface UploadJob {
  kind: ClientKind;
  /** `http://127.0.0.1:PORT` of the server, or of the proxy in front of it. */
  origin: string;
  file: string;
  size: number;
}

export type UploadReply =
  | {
      ok: true;
      elapsedMs: number;
      /** The finished upload's URL as the client reports it. */
      url: string;
      /** The server's id of the finished file (the last segment of its URL). */
      id: string;
      /** Requests the client retried (Ferry's `retry` events); 0 where the client does not say. */
      retries: number;
      /** From the start until the first body byte was handed to the network (progress events: ±0.1 s). */
      firstByteMs?: number;
      /** Ferry parts: time in the `completing` state (the `complete` call) until done. */
      completeMs?: number;
    }
  | { ok: false; elapsedMs: number; error: string };

/** What a client observed along the way, in ms since the upload started. */
interface Timeline {
  started: number;
  retries: number;
  firstByteMs?: number;
  completingAt?: number;
}

function firstByte(timeline: Timeline): void {
  timeline.firstByteMs ??= performance.now() - timeline.started;
}

const TUS_VERSION = '1.0.0';
const MiB = 1024 * 1024;

function lastSegment(url: string): string {
  const segments = new URL(url).pathname.split('/').filter((s) => s !== '');
  return decodeURIComponent(segments[segments.length - 1] ?? '');
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
}

/** Reads and drops the response body, resolving with status and headers. */
function answerOf(request: http.ClientRequest): Promise<Answer> {
  return new Promise((resolve, reject) => {
    request.once('error', reject);
    request.once('response', (response) => {
      response.resume();
      response.once('error', reject);
      response.once('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers }));
    });
  });
}

/**
 * The baseline: one tus upload as bare as it gets — POST, then the whole file in one PATCH, piped
 * from the file in 1 MiB reads on a keep-alive `node:http` connection. What the server can ingest
 * from a single stream with next to no client work.
 */
async function rawSingleStream(job: UploadJob, timeline: Timeline): Promise<{ url: string; id: string }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const create = http.request(new URL('/files/', job.origin), {
      method: 'POST',
      agent,
      headers: { 'tus-resumable': TUS_VERSION, 'upload-length': String(job.size), 'content-length': '0' },
    });
    const created = answerOf(create);
    create.end();
    const { status, headers } = await created;
    if (status !== 201 || headers.location === undefined)
      throw new Error(`POST answered ${status} (Location: ${headers.location ?? 'none'})`);
    const url = new URL(headers.location, job.origin).href;
    const patch = http.request(url, {
      method: 'PATCH',
      agent,
      headers: {
        'tus-resumable': TUS_VERSION,
        'upload-offset': '0',
        'content-type': 'application/offset+octet-stream',
        'content-length': String(job.size),
      },
    });
    const patched = answerOf(patch);
    firstByte(timeline);
    await pipeline(createReadStream(job.file, { highWaterMark: MiB }), patch);
    const answer = await patched;
    if (answer.status !== 204 || answer.headers['upload-offset'] !== String(job.size))
      throw new Error(
        `PATCH answered ${answer.status} with Upload-Offset ${answer.headers['upload-offset']}`,
      );
    return { url, id: lastSegment(url) };
  } finally {
    agent.destroy();
  }
}

/** `@ferry/client` with its defaults, except the protocol and, for parts, the parts in flight. */
async function ferryClient(job: UploadJob, timeline: Timeline): Promise<{ url: string; id: string }> {
  const { createUpload } = ferry!;
  const upload =
    job.kind === 'ferry-tus'
      ? createUpload({ endpoint: new URL('/files/', job.origin).href, source: job.file })
      : createUpload({
          endpoint: new URL('/uploads', job.origin).href,
          protocol: 'parts',
          source: job.file,
          parallel: job.kind === 'ferry-parts-8' ? 8 : 4,
          ...(job.kind === 'ferry-presigned-4' ? { presigned: true } : {}),
        });
  upload.on('retry', () => timeline.retries++);
  upload.on('progress', (progress) => {
    if (progress.bytesInFlight > 0 || progress.bytesConfirmed > 0) firstByte(timeline);
  });
  upload.on('state', ({ state }) => {
    if (state === 'completing') timeline.completingAt = performance.now();
  });
  const result = await upload.start();
  // A fresh server holds nothing to deduplicate against; a deduplicated run would have sent nothing.
  if (result.deduplicated) throw new Error('the server deduplicated the upload: no byte was sent');
  return { url: result.url, id: result.id };
}

/** tus-js-client for Node with its defaults (one PATCH with the whole file), or 4 parallel uploads. */
function tusJsClient(job: UploadJob, timeline: Timeline): Promise<{ url: string; id: string }> {
  const tus = tusJs!;
  return new Promise((resolve, reject) => {
    const upload: InstanceType<typeof tus.Upload> = new tus.Upload(createReadStream(job.file), {
      endpoint: new URL('/files/', job.origin).href,
      ...(job.kind === 'tusjs-parallel-4' ? { parallelUploads: 4 } : {}),
      onError: reject,
      onProgress: (bytesSent) => {
        if (bytesSent > 0) firstByte(timeline);
      },
      onSuccess: () => {
        if (upload.url === null) reject(new Error('tus-js-client finished without an upload URL'));
        else resolve({ url: upload.url, id: lastSegment(upload.url) });
      },
    });
    upload.start();
  });
}

/**
 * The S3 section's reference: @aws-sdk/lib-storage `Upload` straight to the bucket (8 MiB parts,
 * 4 at a time), the S3 settings from the environment (S3_ENDPOINT, S3_BUCKET, S3_ACCESS_KEY_ID…).
 */
async function libStorage(job: UploadJob, timeline: Timeline): Promise<{ url: string; id: string }> {
  const { S3Client } = await import('@aws-sdk/client-s3');
  const { Upload } = await import('@aws-sdk/lib-storage');
  const env = process.env;
  const client = new S3Client({
    endpoint: env['S3_ENDPOINT']!,
    region: env['S3_REGION'] ?? 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: env['S3_ACCESS_KEY_ID']!, secretAccessKey: env['S3_SECRET_ACCESS_KEY']! },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const key = `${env['S3_BENCH_PREFIX'] ?? 'bench/'}lib-storage-${process.pid}-${Date.now()}`;
  try {
    const upload = new Upload({
      client,
      params: { Bucket: env['S3_BUCKET']!, Key: key, Body: createReadStream(job.file) },
      partSize: 8 * MiB,
      queueSize: 4,
      leavePartsOnError: false,
    });
    upload.on('httpUploadProgress', () => firstByte(timeline));
    await upload.done();
  } finally {
    client.destroy();
  }
  return { url: key, id: key };
}

async function run(job: UploadJob): Promise<UploadReply> {
  const timeline: Timeline = { started: performance.now(), retries: 0 };
  try {
    const done =
      job.kind === 'raw'
        ? await rawSingleStream(job, timeline)
        : job.kind === 'lib-storage'
          ? await libStorage(job, timeline)
          : isTusJs(job.kind)
            ? await tusJsClient(job, timeline)
            : await ferryClient(job, timeline);
    const ended = performance.now();
    return {
      ok: true,
      elapsedMs: ended - timeline.started,
      ...done,
      retries: timeline.retries,
      ...(timeline.firstByteMs !== undefined ? { firstByteMs: timeline.firstByteMs } : {}),
      ...(timeline.completingAt !== undefined ? { completeMs: ended - timeline.completingAt } : {}),
    };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { ok: false, elapsedMs: performance.now() - timeline.started, error: message };
  }
}

if (process.send === undefined) {
  process.stderr.write('upload-client must be started by the bench harness (it talks over IPC)\n');
  process.exit(2);
}
const kind = process.argv[2] as ClientKind;
// Only the library this process measures is loaded, so its resident memory is that client's own.
const ferry = isFerry(kind) ? await import('@ferry/client') : undefined;
const tusJs = isTusJs(kind) ? await import('tus-js-client') : undefined;
process.on('disconnect', () => process.exit(0));
process.once('message', async (job: UploadJob) => {
  process.send!(await run({ ...job, kind }));
});
process.send({ ready: true });
