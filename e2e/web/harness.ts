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
import { existsSync } from 'node:fs';
import { mkdir, rmdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHROMIUM_ARGS, chromiumPath, writeRandomFile } from '@ferry/testing';
import { type Browser, type BrowserContext, type CDPSession, chromium, type Page } from 'playwright-core';
import {
  createFerryGroup,
  type FerryGroup,
  type FerryProcess,
  type StartOptions,
} from '../helpers/ferry-process.ts';

export type { Digest } from '@ferry/testing';
export {
  browserSkipReason,
  CHROMIUM_ARGS,
  chromiumPath,
  downloadDigest as download,
  fileDigest,
  writeRandomFile,
} from '@ferry/testing';

export const MiB = 1024 * 1024;

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const webDist = join(repoRoot, 'apps', 'web', 'dist');
export const screenshotDir = join(repoRoot, 'test-results', 'web');
export const axePath = join(repoRoot, 'node_modules', 'axe-core', 'axe.min.js');
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

/** `method url` with no body: the status and the body as text. */
export function fetchText(url: string, method = 'GET'): Promise<{ status: number; body: string }> {
  return fetch(url, { method }).then(async (res) => ({ status: res.status, body: await res.text() }));
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
