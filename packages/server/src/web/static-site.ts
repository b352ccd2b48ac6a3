/**
 * The built web app at `/`: a directory of files as a bundler (Vite) writes it, `index.html` at its
 * root and content-hashed files under `assets/`.
 *
 * - `assets/` files never change under their name: cached for a year, `immutable`. Everything else
 *   (`index.html` first) is `no-cache`: revalidated with its `ETag` (`304` when unchanged), so a
 *   rebuilt app shows on the next load.
 * - Paths are decoded once and refused (400) when they could leave the directory: `..` or `.`
 *   segments (also percent-encoded), NUL, backslashes, a request target that is not a path. The
 *   file found must still lie inside the directory once symbolic links are resolved. Dot-files are
 *   never served.
 * - A GET that accepts HTML for a path that is no file gets `index.html` (the app routes in the
 *   browser). The router calls this only for paths it does not own, so API routes are never
 *   shadowed.
 * - Without an `index.html` (the app is not built), HTML requests get a short page that says how
 *   to build it.
 */
import { constants, type Stats } from 'node:fs';
import { type FileHandle, open, realpath, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { UploadError } from '@ferry/protocol';
import type { HttpRequest, HttpResponse } from '../http/types.ts';
import { contentTypeOf } from './content-types.ts';

/**
 * For a Vite + React app that talks to its own origin: scripts and styles from the app's files
 * (React sets inline `style` attributes, hence `'unsafe-inline'` for styles only); hashing runs
 * hash-wasm in a worker, which needs `'wasm-unsafe-eval'` (WebAssembly compilation, not `eval`);
 * previews are `blob:` / `data:` images; no plugins, no framing, forms and `<base>` same-origin.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "worker-src 'self' blob:",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const HTML_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'referrer-policy': 'no-referrer',
};

export const IMMUTABLE = 'public, max-age=31536000, immutable';
export const REVALIDATE = 'no-cache';

/** Files up to this size are read whole (one read, no stream); larger ones are streamed. */
const SMALL_FILE_BYTES = 256 * 1024;

/** Errors that mean "no such file here", whatever the reason: all answer 404. */
const ABSENT = new Set(['ENOENT', 'ENOTDIR', 'EISDIR', 'ELOOP', 'ENAMETOOLONG', 'EACCES', 'EPERM']);

export const NOT_BUILT_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Ferry</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}pre{background:#f3f3f3;padding:.75rem;border-radius:4px}</style>
</head>
<body>
<main>
<h1>Ferry is running</h1>
<p>The web app is not built yet. In the Ferry repository, build it with</p>
<pre><code>npm run build -w apps/web</code></pre>
<p>and reload this page (<code>npm start</code> builds it before starting the server).</p>
<p>The upload APIs work without it: tus and the parts API, see the documentation.</p>
</main>
</body>
</html>
`;

export interface StaticSiteOptions {
  /** The directory of built files; relative to the working directory. */
  directory: string;
}

export interface StaticSite {
  /** Absolute path of the directory. */
  readonly directory: string;
  /** True when the directory holds an `index.html` now. */
  isBuilt(): Promise<boolean>;
  serve(request: HttpRequest): Promise<HttpResponse>;
}

interface Found {
  handle: FileHandle;
  stats: Stats;
  name: string;
}

export function createStaticSite(options: StaticSiteOptions): StaticSite {
  const root = resolve(options.directory);

  async function find(segments: readonly string[]): Promise<Found | undefined> {
    let realRoot: string;
    let real: string;
    try {
      realRoot = await realpath(root);
      real = await realpath(join(realRoot, ...segments));
    } catch (error) {
      if (isAbsent(error)) return undefined;
      throw error;
    }
    if (!real.startsWith(realRoot + sep)) return undefined;
    let handle: FileHandle;
    try {
      handle = await open(real, constants.O_RDONLY);
    } catch (error) {
      if (isAbsent(error)) return undefined;
      throw error;
    }
    try {
      const stats = await handle.stat();
      if (stats.isFile()) return { handle, stats, name: segments[segments.length - 1] ?? '' };
    } catch (error) {
      await handle.close();
      throw error;
    }
    await handle.close();
    return undefined;
  }

  return {
    directory: root,

    async isBuilt() {
      try {
        return (await stat(join(root, 'index.html'))).isFile();
      } catch {
        return false;
      }
    },

    async serve(request) {
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        throw new UploadError('ERR_METHOD_NOT_ALLOWED', { headers: { allow: 'GET, HEAD' } });
      }
      const segments = pathSegments(request.path);
      const hidden = segments.some((segment) => segment.startsWith('.'));
      const directoryIndex = segments.length === 0 || request.path.endsWith('/');
      let file = hidden ? undefined : await find(directoryIndex ? [...segments, 'index.html'] : segments);
      let fallback = false;
      if (file === undefined) {
        if (segments.length > 0 && !acceptsHtml(request)) throw new UploadError('ERR_NOT_FOUND');
        file = await find(['index.html']);
        if (file === undefined) return notBuiltPage(request);
        fallback = true;
      }
      const immutable = !fallback && segments[0] === 'assets' && !directoryIndex;
      return respond(request, file, immutable ? IMMUTABLE : REVALIDATE);
    },
  };
}

/**
 * The path's segments, decoded. Refuses what could name a file outside the directory, so no later
 * step has to be trusted with it.
 */
export function pathSegments(path: string): string[] {
  const refuse = (why: string) =>
    new UploadError('ERR_BAD_REQUEST', { message: `the path is not a file path: ${why}` });
  if (!path.startsWith('/')) throw refuse('it must start with "/"');
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    throw refuse('it has an invalid percent-encoding');
  }
  if (decoded.includes('\0')) throw refuse('it contains NUL');
  if (decoded.includes('\\')) throw refuse('it contains a backslash');
  const segments = decoded.split('/').filter((segment) => segment !== '');
  if (segments.some((segment) => segment === '..' || segment === '.')) {
    throw refuse('it contains a "." or ".." segment');
  }
  return segments;
}

function acceptsHtml(request: HttpRequest): boolean {
  return /\btext\/html\b/i.test(request.header('accept') ?? '');
}

function isAbsent(error: unknown): boolean {
  return ABSENT.has((error as NodeJS.ErrnoException | null)?.code ?? '');
}

function entityTag(stats: Stats): string {
  return `"${stats.size.toString(16)}-${Math.floor(stats.mtimeMs).toString(16)}"`;
}

/** `If-None-Match` uses the weak comparison (RFC 9110 §13.1.2): `W/` is ignored. */
function matches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false;
  return ifNoneMatch
    .split(',')
    .map((tag) => tag.trim().replace(/^W\//, ''))
    .some((tag) => tag === '*' || tag === etag);
}

async function respond(request: HttpRequest, file: Found, cacheControl: string): Promise<HttpResponse> {
  const { handle, stats } = file;
  const type = contentTypeOf(file.name);
  const etag = entityTag(stats);
  const headers: Record<string, string> = {
    'content-type': type,
    etag,
    'cache-control': cacheControl,
    'x-content-type-options': 'nosniff',
  };
  if (type.startsWith('text/html')) Object.assign(headers, HTML_HEADERS);
  if (matches(request.header('if-none-match'), etag)) {
    await handle.close();
    delete headers['content-type'];
    return { status: 304, headers, body: null };
  }
  if (request.method === 'HEAD') {
    await handle.close();
    headers['content-length'] = String(stats.size);
    return { status: 200, headers, body: null };
  }
  if (stats.size <= SMALL_FILE_BYTES) {
    let bytes: Uint8Array;
    try {
      bytes = await handle.readFile();
    } finally {
      await handle.close();
    }
    headers['content-length'] = String(bytes.byteLength);
    return { status: 200, headers, body: bytes };
  }
  headers['content-length'] = String(stats.size);
  // Reads exactly the size announced; the stream closes the file when it ends or is destroyed.
  return { status: 200, headers, body: handle.createReadStream({ start: 0, end: stats.size - 1 }) };
}

function notBuiltPage(request: HttpRequest): HttpResponse {
  const headers: Record<string, string> = {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'content-security-policy':
      "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    'content-length': String(Buffer.byteLength(NOT_BUILT_HTML)),
  };
  return { status: 200, headers, body: request.method === 'HEAD' ? null : NOT_BUILT_HTML };
}
