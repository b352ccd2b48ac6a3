/**
 * Uppy's Dashboard with @uppy/tus, on a page of another origin, uploads to a real `ferry serve`
 * that allows only that origin (CORS: preflights, the tus headers, `Location` exposed). The stored
 * files match the sources, and the web app's server panel, open on Ferry's own origin, sees them
 * arrive: the uploads feed shows every client.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  browserSkipReason,
  download,
  fileDigest,
  MiB,
  repoRoot,
  startWebSuite,
  type WebSuite,
} from './harness.ts';
import { assertNoViolations, screenshot } from './page-helpers.ts';

const skip = browserSkipReason();

/** What the Uppy page records on `window.uppyEvents` (apps/web/uppy/uppy-page.ts). */
type UppyPageEvent =
  | { type: 'success'; name: string; size: number; url: string }
  | { type: 'error'; name: string; message: string }
  | { type: 'complete'; successful: number; failed: number };

interface UppyPage {
  origin: string;
  url(endpoint: string): string;
  close(): Promise<void>;
}

/** `node apps/web/uppy/serve.ts --port 0`, as a person would run it: bundles and serves the page. */
async function startUppyPage(): Promise<UppyPage> {
  const child: ChildProcess = spawn(
    process.execPath,
    [join(repoRoot, 'apps', 'web', 'uppy', 'serve.ts'), '--port', '0'],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const close = async () => {
    child.kill('SIGTERM');
    await exited;
  };
  try {
    const origin = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout?.setEncoding('utf8').on('data', (text: string) => {
        out += text;
        const match = /Uppy page on (http:\/\/[^/\s]+)/.exec(out);
        if (match?.[1] !== undefined) resolve(match[1]);
      });
      void exited.then(() => reject(new Error(`the Uppy page server exited: ${out}`)));
      setTimeout(() => reject(new Error('the Uppy page server did not start within 30 s')), 30_000).unref();
    });
    return { origin, url: (endpoint) => `${origin}/?endpoint=${encodeURIComponent(endpoint)}`, close };
  } catch (error) {
    await close();
    throw error;
  }
}

describe('Uppy to Ferry across origins', { skip }, () => {
  let uppy: UppyPage;
  let suite: WebSuite;

  before(async () => {
    uppy = await startUppyPage();
    suite = await startWebSuite({ args: ['--cors-origins', uppy.origin] });
  });
  after(async () => {
    await suite?.close();
    await uppy?.close();
  });

  it('the Dashboard uploads two files with @uppy/tus; the web app sees them finish', async () => {
    const paths = {
      'poster.png': await suite.file('poster.png', 6 * MiB + 123),
      'readme.txt': await suite.file('readme.txt', 1_500_000),
    };
    // The web app on Ferry's origin, watching the server.
    const app = await suite.open();

    const { page, problems } = await suite.open({ url: uppy.url(`${suite.ferry.url}/files/`) });
    assert.notEqual(new URL(page.url()).origin, new URL(suite.ferry.url).origin, 'another origin');
    await page.locator('.uppy-Dashboard').waitFor();
    await page.locator('input.uppy-Dashboard-input').first().setInputFiles(Object.values(paths));
    await page.getByRole('button', { name: /Upload 2 files/ }).click();

    const deadline = Date.now() + 60_000;
    let events: UppyPageEvent[] = [];
    for (;;) {
      events = await page.evaluate(
        () => (globalThis as unknown as { uppyEvents: UppyPageEvent[] }).uppyEvents,
      );
      if (events.some((event) => event.type === 'complete')) break;
      if (Date.now() > deadline) throw new Error(`Uppy did not complete: ${JSON.stringify(events)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.deepEqual(
      events.filter((event) => event.type === 'complete'),
      [{ type: 'complete', successful: 2, failed: 0 }],
      JSON.stringify(events),
    );
    for (const event of events) {
      if (event.type !== 'success') continue;
      assert.ok(event.url.startsWith(`${suite.ferry.url}/files/`), event.url);
      const source = await fileDigest(paths[event.name as keyof typeof paths]);
      assert.deepEqual(await download(event.url), { ...source, status: 200 }, event.name);
    }
    await screenshot(page, 'uppy-done');

    // The app's panel listed Uppy's uploads as they finished (Uppy's `name` metadata).
    const finished = app.page.locator('.server .file__name');
    await finished.filter({ hasText: 'readme.txt' }).waitFor();
    await finished.filter({ hasText: 'poster.png' }).waitFor();
    await assertNoViolations(app.page, 'after uploads from Uppy');
    await screenshot(app.page, 'uppy-seen-by-the-app');
    assert.deepEqual(app.problems, []);
    assert.deepEqual(
      problems.filter((text) => !text.includes('uppy')),
      [],
    );
  });
});
