/**
 * Helpers shared by the tus protocol tests: a Ferry on real loopback in its own temporary data
 * directory, and a node:http client that sends exactly the headers a test gives (no fetch
 * normalisation of methods, Content-Length or bodies on HEAD).
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFerry, type Ferry, type FerryOptions } from '../src/ferry.ts';

export const TUS = { 'tus-resumable': '1.0.0' } as const;
export const OCTETS = { ...TUS, 'content-type': 'application/offset+octet-stream' } as const;

export interface TestServer {
  ferry: Ferry;
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** `http://127.0.0.1:PORT/files/` */
  endpoint: string;
  dataDir: string;
  /** Closes the server and removes the data directory. */
  stop(): Promise<void>;
}

export async function startServer(options: FerryOptions = {}): Promise<TestServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'ferry-tus-test-'));
  let ferry: Ferry | undefined;
  try {
    ferry = await createFerry({ dataDir, logLevel: 'silent', ...options });
    const { url } = await ferry.listen({ host: '127.0.0.1', port: 0 });
    const started = ferry;
    return {
      ferry: started,
      url,
      endpoint: `${url}${started.config.basePath}`,
      dataDir,
      async stop() {
        try {
          await started.close();
        } finally {
          await rm(dataDir, { recursive: true, force: true });
        }
      },
    };
  } catch (error) {
    await ferry?.close().catch(() => {});
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
}

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** `error.code` of a JSON error body, if the body is one. */
  code: string | undefined;
  /** The parsed JSON body, if the body is JSON. */
  json: unknown;
}

export interface SendOptions {
  method?: string;
  headers?: Record<string, string | number>;
  body?: Buffer | string;
}

/** One request on its own connection; resolves with the whole response. */
export function send(url: string, options: SendOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method: options.method ?? 'GET', headers: options.headers ?? {}, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          let json: unknown;
          if (String(res.headers['content-type'] ?? '').startsWith('application/json') && body.length > 0) {
            json = JSON.parse(body.toString('utf8'));
          }
          const code = (json as { error?: { code?: unknown } } | undefined)?.error?.code;
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            code: typeof code === 'string' ? code : undefined,
            json,
          });
        });
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** POST a new upload; returns its absolute Location. */
export async function createUpload(
  endpoint: string,
  length: number | 'deferred',
  headers: Record<string, string> = {},
): Promise<string> {
  const lengthHeader: Record<string, string> =
    length === 'deferred' ? { 'upload-defer-length': '1' } : { 'upload-length': String(length) };
  const reply = await send(endpoint, { method: 'POST', headers: { ...TUS, ...lengthHeader, ...headers } });
  if (reply.status !== 201 || typeof reply.headers.location !== 'string') {
    throw new Error(`creation failed: ${reply.status} ${reply.body.toString()}`);
  }
  return new URL(reply.headers.location, endpoint).href;
}

export function patch(
  location: string,
  offset: number,
  body: Buffer | string,
  headers: Record<string, string> = {},
): Promise<Reply> {
  return send(location, {
    method: 'PATCH',
    headers: { ...OCTETS, 'upload-offset': String(offset), ...headers },
    body,
  });
}

export function head(location: string, headers: Record<string, string> = {}): Promise<Reply> {
  return send(location, { method: 'HEAD', headers: { ...TUS, ...headers } });
}

/** Creates an upload of `content` and sends it in one PATCH; returns its Location. */
export async function uploadWhole(
  endpoint: string,
  content: Buffer | string,
  headers: Record<string, string> = {},
): Promise<string> {
  const bytes = Buffer.from(content);
  const location = await createUpload(endpoint, bytes.length, headers);
  if (bytes.length > 0) {
    const reply = await patch(location, 0, bytes);
    if (reply.status !== 204) throw new Error(`PATCH failed: ${reply.status} ${reply.body.toString()}`);
  }
  return location;
}

/** `filename a.txt,filetype text/plain` → `filename YS50eHQ=,filetype dGV4dC9wbGFpbg==` */
export function metadataHeader(entries: Record<string, string>): string {
  return Object.entries(entries)
    .map(([key, value]) => (value === '' ? key : `${key} ${Buffer.from(value).toString('base64')}`))
    .join(',');
}

export function sha256(bytes: Buffer | Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The upload id: the last path segment of a Location. */
export function idOf(location: string): string {
  return new URL(location).pathname.split('/').pop() ?? '';
}
