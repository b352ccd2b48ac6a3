/**
 * Builds the Uppy interoperability page (esbuild: `uppy-page.ts` and Uppy's CSS) and serves it on
 * its own origin, so that Uppy talks to Ferry across origins as it would from another site.
 *
 *   node apps/web/uppy/serve.ts [--ferry http://127.0.0.1:1080] [--port 1081]
 *
 * Then open the printed URL; Ferry must allow the page's origin (`ferry serve` allows any by
 * default, or `--cors-origins http://127.0.0.1:1081`). The page sends to the tus endpoint named by
 * its `endpoint` query parameter, so one page can be pointed at any server. The first line printed
 * is `Uppy page on <url>`; SIGINT or SIGTERM stops it.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

const here = fileURLToPath(new URL('.', import.meta.url));

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Uppy to Ferry</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/uppy-page.css">
</head>
<body><main>
<h1>Uppy to Ferry</h1>
<p>Uppy's Dashboard with @uppy/tus, on another origin than the Ferry server at <code id="endpoint"></code>.</p>
<div id="uppy"></div>
</main>
<script type="module" src="/uppy-page.js"></script>
</body></html>
`;

const TYPES: Record<string, string> = {
  'uppy-page.js': 'text/javascript; charset=utf-8',
  'uppy-page.css': 'text/css; charset=utf-8',
};

export interface UppyPage {
  /** `http://127.0.0.1:PORT`: the page's origin, which Ferry must allow. */
  origin: string;
  /** The page's URL for a Ferry tus endpoint (absolute, e.g. `http://127.0.0.1:1080/files/`). */
  url(endpoint: string): string;
  close(): Promise<void>;
}

/** Bundles the page into a temporary directory and serves it on 127.0.0.1 (`port` 0: any). */
export async function startUppyPage(port = 0): Promise<UppyPage> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-uppy-page-'));
  await build({
    entryPoints: [join(here, 'uppy-page.ts'), join(here, 'uppy-page.css')],
    outdir: dir,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'chrome120',
    minify: true,
    logLevel: 'error',
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  const server = createServer(async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://page').pathname;
    if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
      return;
    }
    const name = path.slice(1);
    const type = TYPES[name];
    if (type !== undefined) {
      res.writeHead(200, { 'content-type': type }).end(await readFile(join(dir, name)));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    url: (endpoint) => `${origin}/?endpoint=${encodeURIComponent(endpoint)}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      ferry: { type: 'string', default: 'http://127.0.0.1:1080' },
      port: { type: 'string', default: '1081' },
    },
  });
  const page = await startUppyPage(Number(values.port));
  const endpoint = new URL('/files/', values.ferry).href;
  process.stdout.write(`Uppy page on ${page.url(endpoint)}\n`);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => void page.close().then(() => process.exit(0)));
  }
}
