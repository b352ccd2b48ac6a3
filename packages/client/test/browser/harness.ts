import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { browserSkipReason, CHROMIUM_ARGS, chromiumPath, servePage } from '@ferry/testing';
import { build } from 'esbuild';
import { type BrowserContext, chromium, type Page } from 'playwright-core';

export { browserSkipReason, chromiumPath };

const here = fileURLToPath(new URL('.', import.meta.url));
const clientRoot = join(here, '..', '..');

/** Bundles the page script and the hashing worker into `dir`. */
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
  await build({ ...common, entryPoints: [join(here, 'page-entry.ts')], outfile: join(dir, 'client.js') });
  await build({
    ...common,
    entryPoints: [join(clientRoot, 'src', 'browser', 'hash-worker.ts')],
    outfile: join(dir, 'hash-worker.js'),
  });
}

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ferry client test</title></head>
<body><input type="file" id="file" aria-label="file">
<script type="module" src="/assets/client.js"></script></body></html>`;

export interface BrowserHarness {
  /** Origin of the test page. */
  origin: string;
  /** Starts Chromium on `profileDir` (a new one when omitted) and opens the page. */
  open(profileDir?: string): Promise<{ context: BrowserContext; page: Page; profileDir: string }>;
  close(): Promise<void>;
}

export async function startBrowserHarness(): Promise<BrowserHarness> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-browser-'));
  await bundle(join(dir, 'assets'));
  const pages = await servePage(PAGE, join(dir, 'assets'));
  const contexts = new Set<BrowserContext>();
  return {
    origin: pages.origin,
    async open(profileDir) {
      const profile = profileDir ?? (await mkdtemp(join(dir, 'profile-')));
      // A persistent profile: IndexedDB survives closing the browser, as it does for a user.
      const context = await chromium.launchPersistentContext(profile, {
        executablePath: chromiumPath,
        headless: true,
        args: CHROMIUM_ARGS,
      });
      contexts.add(context);
      context.on('close', () => contexts.delete(context));
      const page = context.pages()[0] ?? (await context.newPage());
      await page.goto(`${pages.origin}/`);
      await page.waitForFunction(() => 'ferry' in globalThis);
      return { context, page, profileDir: profile };
    },
    async close() {
      await Promise.all([...contexts].map((context) => context.close().catch(() => {})));
      await pages.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
