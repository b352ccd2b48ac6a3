/**
 * Real servers for the client tests, on loopback port 0 with temporary directories: Ferry in-process
 * (`createFerry`) and @tus/server with @tus/file-store (the reference tus server). Plus digests of
 * what a server stored, and a temporary resume store.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFerry, type Ferry, type FerryOptions } from '@ferry/server';
import { downloadDigest, fileDigest } from '@ferry/testing';
import { FileStore } from '@tus/file-store';
import { Server as TusServer } from '@tus/server';
import { createFileResumeStore, type FileResumeStore } from '../src/node-api.ts';

export const MiB = 1024 * 1024;

export interface TestServer {
  kind: 'ferry' | '@tus/server';
  /** tus creation URL. */
  endpoint: string;
  /** `http://127.0.0.1:PORT` */
  origin: string;
  dataDir: string;
  ferry?: Ferry;
  /** SHA-256 (hex) and size of the finished upload at `url`, read from the server's storage. */
  stored(url: string): Promise<{ sha256: string; size: number }>;
  stop(): Promise<void>;
}

export async function makeTempDir(prefix = 'ferry-client-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export { downloadDigest, fileDigest, writeRandomFile } from '@ferry/testing';

/** One request; resolves with the status and headers. */
export function request(
  url: string,
  method: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString(),
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

export function tusHead(
  url: string,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  return request(url, 'HEAD', { 'tus-resumable': '1.0.0' });
}

export async function startFerry(options: FerryOptions = {}): Promise<TestServer> {
  const dataDir = await makeTempDir('ferry-client-ferry-');
  const ferry = await createFerry({ dataDir, logLevel: 'silent', ...options });
  const { url } = await ferry.listen({ host: '127.0.0.1', port: 0 });
  return {
    kind: 'ferry',
    endpoint: `${url}${ferry.config.basePath}`,
    origin: url,
    dataDir,
    ferry,
    async stored(fileUrl) {
      const download = await downloadDigest(fileUrl);
      if (download.status !== 200) throw new Error(`GET ${fileUrl} answered ${download.status}`);
      return { sha256: download.sha256, size: download.size };
    },
    async stop() {
      try {
        await ferry.close();
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    },
  };
}

/** Bytes Ferry received and stored so far (its `ferry_received_bytes_total` counter). */
export async function ferryBytesReceived(server: TestServer): Promise<number> {
  const metric = await server.ferry?.metrics.bytesReceived.get();
  return metric?.values[0]?.value ?? 0;
}

export async function startTusNodeServer(): Promise<TestServer> {
  const dataDir = await makeTempDir('ferry-client-tus-');
  const tus = new TusServer({ path: '/files', datastore: new FileStore({ directory: dataDir }) });
  const server: Server = createServer((req, res) => {
    void tus.handle(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    kind: '@tus/server',
    endpoint: `${origin}/files`,
    origin,
    dataDir,
    async stored(fileUrl) {
      const id = decodeURIComponent(new URL(fileUrl).pathname.split('/').pop() ?? '');
      return fileDigest(join(dataDir, id));
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** A resume store in its own temporary directory. */
export async function tempResumeStore(): Promise<{ store: FileResumeStore; dir: string }> {
  const dir = await makeTempDir('ferry-client-store-');
  return { store: createFileResumeStore({ path: join(dir, 'uploads.json') }), dir };
}
