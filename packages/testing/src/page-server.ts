/**
 * A loopback HTTP server for a browser test's page: `html` at `/` (and `/index.html`), and the
 * scripts a test bundled into `assetsDir` at `/assets/<name>.js`. Each test page gets its own
 * origin, so requests to Ferry from it are cross-origin.
 */
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

export interface PageServer {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  close(): Promise<void>;
}

export async function servePage(html: string, assetsDir: string): Promise<PageServer> {
  const server = createServer(async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://page').pathname;
    if (path === '/' || path === '/index.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
      return;
    }
    const asset = /^\/assets\/([a-z-]+\.js)$/.exec(path)?.[1];
    if (asset !== undefined) {
      try {
        const body = await readFile(join(assetsDir, asset));
        res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(body);
        return;
      } catch {}
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
