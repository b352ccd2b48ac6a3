/**
 * `<UploadDropzone>` in a real Chromium: the test page (page-entry.tsx) bundled by esbuild the way
 * an app's bundler would (React in its development build, so its warnings show; the client's
 * hashing worker as its own file), served from one origin while Ferry runs on another.
 *
 * Chromium is `FERRY_CHROMIUM` or /usr/bin/chromium, started once with the flags the client's browser
 * tests use; each test gets its own context (its own IndexedDB).
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { servePage } from '@ferry/testing';
import { build } from 'esbuild';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import type { DropzoneEvent, PageConfig } from './page-entry.tsx';
import { CHROMIUM_ARGS, chromiumPath } from './services.ts';

export type { DropzoneEvent, PageConfig };

const here = fileURLToPath(new URL('.', import.meta.url));
const repoRoot = join(here, '..', '..', '..', '..');

/** Where screenshots go: test-results/react/ at the repository's root. */
export const screenshotDir = join(repoRoot, 'test-results', 'react');

/** axe-core's browser bundle, injected with `page.addScriptTag`. */
export const axePath = join(repoRoot, 'node_modules', 'axe-core', 'axe.min.js');

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Send files</title>
<link rel="icon" href="data:,">
<style>
  :root { color-scheme: light dark; }
  body { margin: 0; padding: 2rem 1rem; font-family: 'DejaVu Sans', system-ui, sans-serif; background: Canvas; color: CanvasText; }
  main { max-width: 40rem; margin: 0 auto; }
  h1 { font-size: 1.5rem; margin: 0 0 1rem; }
</style></head>
<body><div id="root"></div><script type="module" src="/assets/page.js"></script></body></html>`;

async function bundle(dir: string): Promise<void> {
  const common = {
    bundle: true,
    format: 'esm' as const,
    platform: 'browser' as const,
    target: 'chrome120',
    conditions: ['ferry-source', 'browser'],
    logLevel: 'error' as const,
    sourcemap: 'inline' as const,
  };
  await build({
    ...common,
    entryPoints: [join(here, 'page-entry.tsx')],
    outfile: join(dir, 'page.js'),
    jsx: 'automatic',
    // React's development build: a getSnapshot that is not cached, a missing key, a bad hook call
    // are reported on the console, where the tests look for them.
    define: { 'process.env.NODE_ENV': '"development"' },
  });
  await build({
    ...common,
    entryPoints: [join(repoRoot, 'packages', 'client', 'src', 'browser', 'hash-worker.ts')],
    outfile: join(dir, 'hash-worker.js'),
  });
}

export interface OpenedPage {
  context: BrowserContext;
  page: Page;
  /** Console errors and uncaught exceptions on the page (React's warnings among them). */
  problems: string[];
}

export interface DropzoneHarness {
  origin: string;
  /** The test page's URL with `config`. */
  url(config: PageConfig): string;
  /** A fresh browser context (its own IndexedDB) on the page with `config`, once React rendered. */
  open(config: PageConfig, options?: { colorScheme?: 'light' | 'dark' }): Promise<OpenedPage>;
  close(): Promise<void>;
}

export async function startDropzoneHarness(): Promise<DropzoneHarness> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-react-browser-'));
  await bundle(join(dir, 'assets'));
  await mkdir(screenshotDir, { recursive: true });
  const pages = await servePage(PAGE, join(dir, 'assets'));
  const browser: Browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: CHROMIUM_ARGS,
  });
  const url = (config: PageConfig) => `${pages.origin}/?config=${encodeURIComponent(JSON.stringify(config))}`;
  return {
    origin: pages.origin,
    url,
    async open(config, options = {}) {
      const context = await browser.newContext({
        viewport: { width: 760, height: 720 },
        colorScheme: options.colorScheme ?? 'light',
        reducedMotion: 'reduce',
      });
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('console', (message) => {
        // Chromium logs every answer ≥ 400 ("Failed to load resource"): a tus 409 after a pause is
        // the protocol at work, not a problem of the page.
        if (message.text().startsWith('Failed to load resource')) return;
        if (message.type() === 'error' || message.type() === 'warning') problems.push(message.text());
      });
      page.on('pageerror', (error) => problems.push(String(error)));
      // Playwright starts catching file choosers when the first listener is added, asynchronously: a
      // chooser opened by a key press right after `waitForEvent('filechooser')` could slip past it.
      page.on('filechooser', () => {});
      await page.goto(url(config));
      await page.locator('main').waitFor();
      return { context, page, problems };
    },
    async close() {
      await browser.close().catch(() => {});
      await pages.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** What the dropzone's callbacks reported so far. */
export function dropzoneEvents(page: Page): Promise<DropzoneEvent[]> {
  return page.evaluate(() => (globalThis as unknown as { dropzoneEvents: DropzoneEvent[] }).dropzoneEvents);
}

/** Waits until the callbacks reported what `done` looks for; fails early on an upload error. */
export async function waitForEvents(
  page: Page,
  done: (events: DropzoneEvent[]) => boolean,
  timeoutMs = 60_000,
): Promise<DropzoneEvent[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const events = await dropzoneEvents(page);
    if (done(events)) return events;
    const error = events.find((event) => event.type === 'error');
    if (error !== undefined) throw new Error(`an upload failed: ${JSON.stringify(error)}`);
    if (Date.now() > deadline) throw new Error(`timed out; events so far: ${JSON.stringify(events)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[]; failureSummary: string }[];
}

/** axe-core's violations on the page as it is now: WCAG 2.0–2.2 A and AA, and axe's best practices. */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  if (!(await page.evaluate(() => 'axe' in globalThis))) await page.addScriptTag({ path: axePath });
  return page.evaluate(async () => {
    const axe = (
      globalThis as unknown as { axe: { run(context: unknown, options: unknown): Promise<unknown> } }
    ).axe;
    const results = (await axe.run(document, {
      runOnly: {
        type: 'tag',
        values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22a', 'wcag22aa', 'best-practice'],
      },
      resultTypes: ['violations'],
    })) as {
      violations: {
        id: string;
        impact: string | null;
        help: string;
        nodes: { target: string[]; failureSummary: string }[];
      }[];
    };
    return results.violations.map(({ id, impact, help, nodes }) => ({
      id,
      impact,
      help,
      nodes: nodes.map(({ target, failureSummary }) => ({ target, failureSummary })),
    }));
  });
}
