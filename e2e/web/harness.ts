/**
 * The web app in a real Chromium against a real `ferry serve` (a child process serving
 * apps/web/dist at `/`, as `npm start` does).
 *
 * - The app is built first when its build is missing or older than its sources
 *   (scripts/ensure-web.mjs, once at a time across test files).
 * - Chromium is `FERRY_CHROMIUM` or /usr/bin/chromium, with the flags the other browser tests use;
 *   the tests are skipped when it is missing, unless `FERRY_REQUIRE_SERVICES=1`.
 * - Each page gets its own browser context (its own IndexedDB and localStorage), with reduced
 *   motion, and records console errors and uncaught exceptions, Content-Security-Policy
 *   violations among them.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, open, rmdir, stat, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, type CDPSession, chromium, type Page } from 'playwright-core';
import {
  createFerryGroup,
  type FerryGroup,
  type FerryProcess,
  type StartOptions,
} from '../helpers/ferry-process.ts';

export const MiB = 1024 * 1024;

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const webDist = join(repoRoot, 'apps', 'web', 'dist');
export const screenshotDir = join(repoRoot, 'test-results', 'web');
export const axePath = join(repoRoot, 'node_modules', 'axe-core', 'axe.min.js');
export const chromiumPath = process.env['FERRY_CHROMIUM'] ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
];

/** `undefined` when the browser tests can run; else why they are skipped. */
export function browserSkipReason(): string | undefined {
  if (existsSync(chromiumPath)) return undefined;
  const why = `no Chromium at ${chromiumPath} (apt-get install chromium, or set FERRY_CHROMIUM)`;
  if (process.env['FERRY_REQUIRE_SERVICES'] === '1') throw new Error(why);
  return why;
}

const BUILD_LOCK = join(tmpdir(), 'ferry-web-build.lock');

/**
 * Builds apps/web when its build is missing or stale. Test files run in parallel processes: a lock
 * directory keeps two builds from writing dist/ at once (the second finds the build fresh).
 */
export async function ensureWebBuilt(): Promise<void> {
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      await mkdir(BUILD_LOCK);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      // A lock left by a process that died mid-build is old: take it over.
      const age = Date.now() - (await stat(BUILD_LOCK).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
      if (age > 300_000) await rmdir(BUILD_LOCK).catch(() => {});
      if (Date.now() > deadline) throw new Error(`${BUILD_LOCK} held for too long`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  try {
    const result = spawnSync(process.execPath, [join(repoRoot, 'scripts', 'ensure-web.mjs')], {
      cwd: repoRoot,
      encoding: 'utf8',
      env: { ...process.env, PATH: `${join(repoRoot, 'node_modules', '.bin')}:${process.env['PATH'] ?? ''}` },
    });
    if (result.status !== 0) throw new Error(`ensure-web failed:\n${result.stderr}`);
    if (/did not build/.test(result.stderr)) throw new Error(`the web app did not build:\n${result.stderr}`);
  } finally {
    await rmdir(BUILD_LOCK).catch(() => {});
  }
  if (!existsSync(join(webDist, 'index.html'))) throw new Error(`no build at ${webDist}`);
}

export interface Digest {
  sha256: string;
  size: number;
}

async function digestOf(chunks: AsyncIterable<Buffer>): Promise<Digest> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of chunks) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { sha256: hash.digest('hex'), size };
}

export function fileDigest(path: string): Promise<Digest> {
  return digestOf(createReadStream(path, { highWaterMark: 4 * MiB }));
}

/** `GET url`: the status and the body's digest. */
export function download(url: string): Promise<Digest & { status: number }> {
  return new Promise((resolve, reject) => {
    request(url, { agent: false }, (res) => {
      digestOf(res).then((digest) => resolve({ ...digest, status: res.statusCode ?? 0 }), reject);
    })
      .on('error', reject)
      .end();
  });
}

/** `method url` with no body: the status and the body as text. */
export function fetchText(url: string, method = 'GET'): Promise<{ status: number; body: string }> {
  return fetch(url, { method }).then(async (res) => ({ status: res.status, body: await res.text() }));
}

/** Writes `size` random bytes to `path` (a random 1 MiB block, each copy stamped with its index). */
export async function writeRandomFile(path: string, size: number): Promise<void> {
  if (size < MiB) {
    await writeFile(path, randomBytes(size));
    return;
  }
  const block = randomBytes(MiB);
  const handle = await open(path, 'w');
  try {
    for (let offset = 0; offset < size; offset += MiB) {
      block.writeUInt32LE(offset / MiB, 0);
      await handle.write(block, 0, Math.min(MiB, size - offset), offset);
    }
  } finally {
    await handle.close();
  }
}

export interface OpenOptions {
  /** CSS pixels. Default 1280 × 900 (desktop); 360 × 780 is a phone. */
  width?: number;
  height?: number;
  colorScheme?: 'light' | 'dark';
  /** Open in this context instead of a new one (a second tab sharing storage). */
  context?: BrowserContext;
  /** Another page than the app (then nothing is awaited after loading it). */
  url?: string;
}

export interface OpenedPage {
  context: BrowserContext;
  page: Page;
  /** Console errors and warnings and uncaught exceptions (CSP violations are console errors). */
  problems: string[];
}

export interface WebSuite {
  ferry: FerryProcess;
  browser: Browser;
  group: FerryGroup;
  /** The app on `server` (default: `ferry`) in a fresh context, once React rendered. */
  open(options?: OpenOptions, server?: FerryProcess): Promise<OpenedPage>;
  /** Writes `size` random bytes to a file named `name` in a scratch directory; its path. */
  file(name: string, size: number): Promise<string>;
  close(): Promise<void>;
}

export async function startWebSuite(serverOptions: StartOptions = {}): Promise<WebSuite> {
  await ensureWebBuilt();
  await mkdir(screenshotDir, { recursive: true });
  const group = createFerryGroup();
  const files = await group.makeDir('ferry-web-files-');
  let browser: Browser | undefined;
  try {
    const ferry = await group.start(serverOptions);
    browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: CHROMIUM_ARGS });
    const launched = browser;
    return {
      ferry,
      browser: launched,
      group,
      async open(options = {}, server = ferry) {
        const context =
          options.context ??
          (await launched.newContext({
            viewport: { width: options.width ?? 1280, height: options.height ?? 900 },
            colorScheme: options.colorScheme ?? 'light',
            reducedMotion: 'reduce',
            acceptDownloads: true,
          }));
        const page = await context.newPage();
        // DevTools copies every request body it sees (8 MiB parts): on a busy machine the page can
        // be slow to answer while uploading.
        page.setDefaultTimeout(60_000);
        const problems: string[] = [];
        page.on('console', (message) => {
          // Chromium logs every answer ≥ 400 ("Failed to load resource"): a 404 for an upload
          // that was cancelled, or a refused one, is the protocol at work.
          if (message.text().startsWith('Failed to load resource')) return;
          if (message.type() === 'error' || message.type() === 'warning') problems.push(message.text());
        });
        page.on('pageerror', (error) => problems.push(String(error)));
        // Playwright catches file choosers once a listener exists; one added late could miss a
        // chooser opened by a key press.
        page.on('filechooser', () => {});
        if (options.url !== undefined) {
          await page.goto(options.url);
        } else {
          await page.goto(`${server.url}/`);
          await page.getByRole('heading', { name: 'Send files' }).waitFor();
        }
        return { context, page, problems };
      },
      async file(name, size) {
        const path = join(files, name);
        await writeRandomFile(path, size);
        return path;
      },
      async close() {
        await browser?.close().catch(() => {});
        await group.cleanup();
      },
    };
  } catch (error) {
    await browser?.close().catch(() => {});
    await group.cleanup();
    throw error;
  }
}

const sessions = new WeakMap<Page, Promise<CDPSession>>();

/**
 * Caps the page's upload rate (DevTools network throttling, in bytes per second) so a test can act
 * mid-upload; `undefined` lifts it.
 */
export async function throttle(page: Page, bytesPerSecond: number | undefined): Promise<void> {
  let session = sessions.get(page);
  if (session === undefined) {
    session = page.context().newCDPSession(page);
    sessions.set(page, session);
  }
  await (await session).send('Network.emulateNetworkConditions', {
    offline: false,
    latency: 0,
    downloadThroughput: -1,
    uploadThroughput: bytesPerSecond ?? -1,
  });
}
