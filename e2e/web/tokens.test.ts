/**
 * The web app against `ferry serve --auth-secret`, in Chromium: opened at `/#token=…` it takes the
 * token out of the address bar, sends it with every upload request and on the uploads feed (read
 * with fetch, since EventSource cannot send it), and puts it on download links; opened without a
 * token it says the server needs an upload link instead of failing silently; a token that expires
 * says so in plain words, and a new `#token=…` lets the stopped upload continue on Retry.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mintUploadToken } from '@ferry/server';
import type { Page } from 'playwright-core';
import {
  browserSkipReason,
  download,
  fileDigest,
  MiB,
  startWebSuite,
  throttle,
  type WebSuite,
} from './harness.ts';
import { card, choose, screenshot, waitForFinished, waitForState } from './page-helpers.ts';

const skip = browserSkipReason();
const SECRET = 'web-app-token-tests-secret-0123456789abcdef';

const mint = (subject: string, ttlSeconds = 600) => mintUploadToken({ secret: SECRET, subject, ttlSeconds });

async function openWithToken(suite: WebSuite, fragment: string) {
  const opened = await suite.open({ url: `${suite.ferry.url}/${fragment}` });
  await opened.page.getByRole('heading', { name: 'Send files' }).waitFor();
  return opened;
}

const notice = (page: Page) => page.getByRole('alert').filter({ hasText: /upload link/ });

describe('the web app with upload tokens', { skip }, () => {
  let suite: WebSuite;

  before(async () => {
    suite = await startWebSuite({ args: ['--auth-secret', SECRET] });
  });
  after(() => suite?.close());

  it('opened at #token=…: uploads with it, the feed shows the upload, the download link works', async () => {
    const token = await mint('erin');
    const { page, context, problems } = await openWithToken(suite, `#token=${token}`);
    // Read once, then out of the address bar (and so out of the history and of copied links).
    assert.equal(await page.evaluate(() => location.hash), '');
    assert.equal(await page.evaluate(() => location.href), `${suite.ferry.url}/`);
    await page.locator('.connection', { hasText: 'Live' }).waitFor();
    assert.equal(await notice(page).count(), 0);

    await page.evaluate(() => {
      const seen: string[] = [];
      Object.assign(globalThis, { serverPanelSeen: seen });
      new MutationObserver(() => {
        for (const item of document.querySelectorAll('.server-upload')) seen.push(item.textContent ?? '');
      }).observe(document.body, { childList: true, subtree: true, characterData: true });
    });
    const path = await suite.file('erin.bin', 20 * MiB);
    // Slow enough for the feed to show the upload while it is in progress.
    await throttle(page, 4 * MiB);
    await choose(page, [path]);
    const [entry] = await waitForFinished(page, ['erin.bin']);
    await throttle(page, undefined);
    const panel = await page.evaluate(
      () => (globalThis as unknown as { serverPanelSeen: string[] }).serverPanelSeen,
    );
    assert.ok(
      panel.some((text) => text.startsWith('erin.bin')),
      `the server panel showed: ${[...new Set(panel)].slice(0, 5).join(' | ')}`,
    );

    // The link carries the token (a download is the one place the server reads it from the query).
    assert.ok(entry !== undefined);
    assert.match(entry.href, /^\/files\/[\w-]+\?token=/);
    assert.deepEqual(
      await download(`${suite.ferry.url}${entry.href}`).then(({ sha256, size }) => ({ sha256, size })),
      await fileDigest(path),
    );
    const bare = await download(`${suite.ferry.url}${entry.href.replace(/\?.*$/, '')}`);
    assert.equal(bare.status, 401, 'without the token the file is not served');
    // The panel's own "finished" link works the same way, followed by the browser itself.
    const panelLink = page.locator('.server .file__name', { hasText: 'erin.bin' });
    await panelLink.waitFor();
    const saved = page.waitForEvent('download');
    await panelLink.click();
    assert.equal((await (await saved).failure()) ?? null, null);
    assert.deepEqual(problems, []);
    await context.close();
  });

  it('opened without a token: the page says the server needs an upload link, and a file fails in words', async () => {
    const { page, context } = await suite.open();
    await notice(page).filter({ hasText: 'This server needs an upload link' }).waitFor();
    await page.locator('.connection', { hasText: 'No access' }).waitFor();
    await choose(page, [await suite.file('nobody.bin', 1000)]);
    await waitForState(page, 'nobody.bin', 'Failed');
    assert.match((await card(page, 'nobody.bin').textContent()) ?? '', /did not accept this upload link/);
    await screenshot(page, 'token-needed');
    await context.close();
  });

  it('an expired token: the page says so plainly; a new #token=… lets Retry finish the upload', async () => {
    const { page, context } = await openWithToken(suite, `#token=${await mint('erin', 2)}`);
    // The feed's stream ends when its token expires and reconnecting is refused as expired (or, on a
    // machine slow to open the page, the first connection already is): the page says so either way.
    await notice(page).filter({ hasText: 'Your upload link has expired — ask for a new one' }).waitFor({
      timeout: 20_000,
    });
    const path = await suite.file('late.bin', 3 * MiB);
    await choose(page, [path]);
    await waitForState(page, 'late.bin', 'Failed');
    assert.match((await card(page, 'late.bin').textContent()) ?? '', /upload link has expired/);
    await screenshot(page, 'token-expired');

    await page.evaluate(
      (token) => {
        location.hash = `token=${token}`;
      },
      await mint('erin'),
    );
    await page.locator('.connection', { hasText: 'Live' }).waitFor();
    assert.equal(await page.evaluate(() => location.hash), '');
    assert.equal(await notice(page).count(), 0);
    await card(page, 'late.bin')
      .getByRole('button', { name: /^Retry/ })
      .click();
    const [entry] = await waitForFinished(page, ['late.bin']);
    assert.ok(entry !== undefined);
    const fetched = await download(`${suite.ferry.url}${entry.href}`);
    assert.deepEqual({ sha256: fetched.sha256, size: fetched.size }, await fileDigest(path));
    await context.close();
  });
});
