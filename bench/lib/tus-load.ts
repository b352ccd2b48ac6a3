// A lean tus 1.0 load generator: node:http with keep-alive agents, bodies written as views onto a
// pre-generated pool, every status and every returned Upload-Offset checked. It runs in its own
// process (bench/client/load-client.ts) so its CPU never mixes with a server's.
import http from 'node:http';
import type { Payload } from './payload.ts';
import type { LoadSpec } from './workloads.ts';

export interface UploadRecord {
  /** Absolute upload URL from the creation response. */
  url: string;
  /** Last path segment of the URL: the id the servers name their stored files by. */
  id: string;
  size: number;
  /** SHA-256 (hex) of the bytes the client sent. */
  sha256: string;
}

export interface LoadOutcome {
  ok: boolean;
  error?: string;
  elapsedMs: number;
  /** CPU seconds (user + system) the client spent while the clock ran. */
  clientCpuSeconds: number;
  /** Payload bytes acknowledged by the server. */
  bytes: number;
  uploads: UploadRecord[];
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

const tusVersion = '1.0.0';

function send(
  agent: http.Agent,
  url: URL,
  method: string,
  headers: Record<string, string | number>,
  signal: AbortSignal,
  body?: Iterable<Buffer>,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent, signal });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString(),
        }),
      );
    });
    if (body === undefined) {
      req.end();
      return;
    }
    writeBody(req, body).catch((error: unknown) => req.destroy(error as Error));
  });
}

/** Writes with backpressure; stops quietly if the request ends early (an error reply or an abort). */
async function writeBody(req: http.ClientRequest, body: Iterable<Buffer>): Promise<void> {
  for (const slice of body) {
    if (req.destroyed) return;
    if (!req.write(slice)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          req.off('drain', done);
          req.off('close', done);
          resolve();
        };
        req.on('drain', done);
        req.on('close', done);
      });
    }
  }
  if (!req.destroyed) req.end();
}

function describe(reply: Reply): string {
  return `${reply.status} ${reply.body.slice(0, 200)}`.trim();
}

export async function runLoad(
  endpoint: string,
  spec: LoadSpec,
  payload: Payload,
  sliceSize: number,
): Promise<LoadOutcome> {
  const agent = new http.Agent({
    keepAlive: true,
    maxSockets: spec.concurrency,
    maxFreeSockets: spec.concurrency,
  });
  const signal = AbortSignal.timeout(spec.timeoutMs);
  const endpointUrl = new URL(endpoint);
  const urls: string[] = new Array(spec.uploads);
  let acknowledged = 0;
  let next = 0;
  let failed = false;

  async function upload(index: number): Promise<void> {
    const created = await send(
      agent,
      endpointUrl,
      'POST',
      { 'Tus-Resumable': tusVersion, 'Upload-Length': spec.uploadSize, 'Content-Length': 0 },
      signal,
    );
    const location = created.headers.location;
    if (created.status !== 201 || location === undefined) {
      throw new Error(`POST answered ${describe(created)} (Location: ${location ?? 'none'})`);
    }
    // tus 1.0 creation: "The Server MUST set the Location header"; it may be relative.
    const url = new URL(location, endpointUrl);
    urls[index] = url.href;
    for (let offset = 0; offset < spec.uploadSize; ) {
      const length = Math.min(spec.patchSize, spec.uploadSize - offset);
      const reply = await send(
        agent,
        url,
        'PATCH',
        {
          'Tus-Resumable': tusVersion,
          'Content-Type': 'application/offset+octet-stream',
          'Upload-Offset': offset,
          'Content-Length': length,
        },
        signal,
        payload.slices(index, offset, length, sliceSize),
      );
      const returned = Number(reply.headers['upload-offset']);
      if (reply.status !== 204 || returned !== offset + length) {
        throw new Error(
          `PATCH at ${offset} answered ${describe(reply)} with Upload-Offset ${returned}, expected ${offset + length}`,
        );
      }
      acknowledged += length;
      offset += length;
    }
  }

  async function worker(): Promise<void> {
    while (next < spec.uploads && !failed) {
      try {
        await upload(next++);
      } catch (cause) {
        failed = true;
        throw cause;
      }
    }
  }

  const cpuStart = process.cpuUsage();
  const started = performance.now();
  let error: string | undefined;
  try {
    await Promise.all(Array.from({ length: Math.min(spec.concurrency, spec.uploads) }, worker));
  } catch (cause) {
    error = cause instanceof Error ? cause.message : String(cause);
  }
  const elapsedMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuStart);
  const clientCpuSeconds = (cpu.user + cpu.system) / 1e6;
  agent.destroy();
  if (error !== undefined) {
    return { ok: false, error, elapsedMs, clientCpuSeconds, bytes: acknowledged, uploads: [] };
  }
  // Expected digests are computed after the clock stopped (and cached across runs).
  const uploads = urls.map((url, index) => ({
    url,
    id: new URL(url).pathname.split('/').filter(Boolean).pop() ?? '',
    size: spec.uploadSize,
    sha256: payload.sha256(index, spec.uploadSize),
  }));
  return { ok: true, elapsedMs, clientCpuSeconds, bytes: acknowledged, uploads };
}
