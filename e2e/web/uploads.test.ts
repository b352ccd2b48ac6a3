/**
 * The web app at `/` of a real `ferry serve`, in Chromium, as a person uses it: files from the
 * file chooser (one of 200 MB) and a drop, each stored with the source's SHA-256; pause and
 * resume; cancel (the upload is gone from the server); a reload mid-upload (a file the browser
 * kept continues by itself, a larger one once it is picked again, as the same upload); going
 * offline and back; the server panel following the uploads; the finished list surviving a reload.
 *
 * The app runs under the server's Content-Security-Policy: the hashing worker must start from its
 * own file, and no violation may be reported.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { UploadList, UploadSummary } from '@ferry/protocol';
import type { Page } from 'playwright-core';
import {
  browserSkipReason,
  download,
  fileDigest,
  MiB,
  type OpenedPage,
  startWebSuite,
  throttle,
  type WebSuite,
} from './harness.ts';
import {
  card,
  choose,
  dropNewFiles,
  finishedEntries,
  waitForFinished,
  waitForPercent,
  waitForState,
} from './page-helpers.ts';

const skip = browserSkipReason();

/** Records CSP violations on `window.cspViolations` from the first script on. */
async function watchCsp(opened: OpenedPage): Promise<void> {
  await opened.context.addInitScript(() => {
    const seen: string[] = [];
    Object.assign(globalThis, { cspViolations: seen });
    document.addEventListener('securitypolicyviolation', (event) => {
      seen.push(`${event.violatedDirective} ${event.blockedURI}`);
    });
  });
}

function cspViolations(page: Page): Promise<string[]> {
  return page.evaluate(() => (globalThis as unknown as { cspViolations: string[] }).cspViolations ?? []);
}

/**
 * Waits until the SDK's resume store (IndexedDB `ferry`: `uploads` entries, `files` kept with them)
 * holds an entry for each of `names` and at least `kept` files: until then a reload would lose them.
 */
async function waitForResumeEntries(page: Page, names: string[], kept: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const stored = await page.evaluate(async () => {
      // Opening a database that does not exist would create it without its stores: look first.
      if (!(await indexedDB.databases()).some((database) => database.name === 'ferry')) return undefined;
      return new Promise<{ names: string[]; kept: number } | undefined>((resolve) => {
        const request = indexedDB.open('ferry');
        request.onerror = () => resolve(undefined);
        request.onsuccess = () => {
          const db = request.result;
          if (!db.objectStoreNames.contains('uploads') || !db.objectStoreNames.contains('files')) {
            db.close();
            resolve(undefined);
            return;
          }
          const transaction = db.transaction(['uploads', 'files']);
          const entries = transaction.objectStore('uploads').getAll();
          const files = transaction.objectStore('files').count();
          transaction.oncomplete = () => {
            db.close();
            resolve({
              names: entries.result.map((entry: { name: string | null }) => entry.name ?? ''),
              kept: files.result,
            });
          };
        };
      });
    });
    if (stored !== undefined && names.every((name) => stored.names.includes(name)) && stored.kept >= kept)
      return;
    if (Date.now() > deadline) throw new Error(`not resumable in time: ${JSON.stringify(stored)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('the web app in Chromium', { skip }, () => {
  let suite: WebSuite;

  before(async () => {
    suite = await startWebSuite();
  });
  after(() => suite?.close());

  /** The uploads in progress the server lists (`GET /uploads`). */
  async function inProgress(): Promise<UploadSummary[]> {
    const res = await fetch(`${suite.ferry.url}/uploads`);
    return ((await res.json()) as UploadList).uploads;
  }

  /** Waits until the server lists an upload of `name` (for which `ready` holds). */
  async function waitForServerUpload(
    name: string,
    ready: (upload: UploadSummary) => boolean = () => true,
  ): Promise<UploadSummary> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const found = (await inProgress()).find((upload) => upload.name === name);
      if (found !== undefined && ready(found)) return found;
      if (Date.now() > deadline) throw new Error(`the server never listed ${name}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Every finished entry's file on the server has the digest `expected[name]`. */
  async function assertStored(page: Page, expected: Record<string, { sha256: string; size: number }>) {
    const entries = await waitForFinished(page, Object.keys(expected));
    for (const [name, digest] of Object.entries(expected)) {
      const entry = entries.find((candidate) => candidate.name === name);
      assert.ok(entry, `${name} is in the finished list`);
      assert.match(entry.href, /^\/files\/[A-Za-z0-9_-]{16,}$/, 'a plain link to /files/:id');
      assert.equal(entry.sha256, digest.sha256, `${name}: the SHA-256 the page shows`);
      const stored = await download(`${suite.ferry.url}${entry.href}`);
      assert.deepEqual(stored, { ...digest, status: 200 }, `${name} as the server stores it`);
    }
  }

  it('three files from the chooser (one of 200 MB) and one dropped arrive whole; the panel follows them', async () => {
    const paths = {
      'photo.jpg': await suite.file('photo.jpg', 3 * MiB + 17),
      'report.pdf': await suite.file('report.pdf', 12 * MiB),
      'movie.mp4': await suite.file('movie.mp4', 200 * 1000 * 1000),
    };
    const opened = await suite.open();
    await watchCsp(opened);
    await opened.page.reload();
    const { page, problems } = opened;
    const workers: string[] = [];
    page.on('worker', (worker) => workers.push(new URL(worker.url()).pathname));

    // What the server panel shows of each upload, recorded in the page as it changes.
    await page.evaluate(() => {
      const seen: string[] = [];
      Object.assign(globalThis, { serverPanelSeen: seen });
      new MutationObserver(() => {
        for (const item of document.querySelectorAll('.server-upload')) seen.push(item.textContent ?? '');
      }).observe(document.body, { childList: true, subtree: true, characterData: true });
    });
    await choose(page, Object.values(paths));
    const dropped = await dropNewFiles(page, { 'notes.txt': 300_000 });

    const expected: Record<string, { sha256: string; size: number }> = {
      'notes.txt': { sha256: dropped['notes.txt'] as string, size: 300_000 },
    };
    for (const [name, path] of Object.entries(paths)) expected[name] = await fileDigest(path);
    await assertStored(page, expected);
    for (const name of Object.keys(expected)) await waitForState(page, name, 'Uploaded');
    // The panel showed the big file while it travelled, with its parts, whoever sent it; nothing is
    // in progress any more, and it lists what finished meanwhile.
    const panel = await page.evaluate(
      () => (globalThis as unknown as { serverPanelSeen: string[] }).serverPanelSeen,
    );
    assert.ok(
      panel.some((text) => text.startsWith('movie.mp4') && /Parts \d+ of 24/.test(text)),
      `the server panel showed: ${[...new Set(panel)].slice(0, 10).join(' | ')}`,
    );
    await page.locator('.server .empty', { hasText: 'No upload in progress.' }).waitFor();
    assert.ok((await page.locator('.server .file__name').allTextContents()).includes('movie.mp4'));

    // The SDK's hashing worker ran from its own file under the CSP, which nothing broke.
    assert.ok(
      workers.some((path) => /^\/assets\/hash-worker-[\w-]+\.js$/.test(path)),
      `workers: ${workers}`,
    );
    assert.deepEqual(await cspViolations(page), []);
    assert.deepEqual(problems, []);

    // The finished list is this browser's: it is still there after a reload, in another tab too.
    await page.reload();
    assert.deepEqual(
      (await finishedEntries(page)).map((entry) => entry.name).sort(),
      Object.keys(expected).sort(),
    );
    const other = await suite.open({ context: opened.context });
    assert.equal((await finishedEntries(other.page)).length, 4);
    await opened.context.close();
  });

  it('pause and resume, and cancel, over tus', async () => {
    const { page, context, problems } = await suite.open();
    await page.getByRole('radio', { name: /tus/ }).check();
    const keep = await suite.file('keep.bin', 40 * MiB);
    const drop = await suite.file('drop.bin', 40 * MiB);
    await throttle(page, 2 * MiB);
    await choose(page, [keep, drop]);
    // Both created (each creation request carries a first chunk): then slow enough to act on.
    await waitForPercent(page, 'keep.bin', 1);
    await waitForPercent(page, 'drop.bin', 1);
    await throttle(page, 128 * 1024);

    await card(page, 'keep.bin').getByRole('button', { name: 'Pause keep.bin' }).click();
    await waitForState(page, 'keep.bin', 'Paused');
    // A request already on its way when Pause was pressed may still land (a creation request that
    // carries the first chunk runs to its answer, so its upload is known): wait until the server's
    // count has stopped moving, then nothing may arrive for a second.
    let paused = await waitForServerUpload('keep.bin');
    const settled = Date.now() + 60_000;
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 400));
      const now = await waitForServerUpload('keep.bin');
      if (now.receivedBytes === paused.receivedBytes) break;
      if (Date.now() > settled) throw new Error('bytes kept arriving after Pause');
      paused = now;
    }
    assert.equal(paused.protocol, 'tus');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const still = (await inProgress()).find((upload) => upload.id === paused.id);
    assert.equal(still?.receivedBytes, paused.receivedBytes, 'nothing arrives while paused');

    const server = await waitForServerUpload('drop.bin');
    await card(page, 'drop.bin').getByRole('button', { name: 'Cancel drop.bin' }).click();
    await waitForState(page, 'drop.bin', 'Cancelled');
    // The card says Cancelled as the request to delete it leaves; the server answers soon after.
    const gone = Date.now() + 30_000;
    while (
      (await fetch(server.url, { method: 'HEAD', headers: { 'tus-resumable': '1.0.0' } })).status !== 404
    ) {
      if (Date.now() > gone) throw new Error(`${server.url} still exists after Cancel`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(!(await inProgress()).some((upload) => upload.id === server.id), 'gone from the server');

    await throttle(page, undefined);
    await card(page, 'keep.bin').getByRole('button', { name: 'Resume keep.bin' }).click();
    await assertStored(page, { 'keep.bin': await fileDigest(keep) });
    const href = (await finishedEntries(page)).find((entry) => entry.name === 'keep.bin')?.href;
    assert.equal(href, `/files/${paused.id}`, 'the same upload continued');
    assert.deepEqual(problems, []);
    await context.close();
  });

  it('a reload mid-upload: a kept file continues by itself, a larger one once picked again', async () => {
    const { page, context, problems } = await suite.open();
    // Kept in IndexedDB (up to 64 MiB), and not kept; 1 MiB/s: neither can finish before the reload.
    const small = await suite.file('kept.bin', 10 * MiB);
    const large = await suite.file('large.bin', 65 * MiB);
    await throttle(page, 1 * MiB);
    await choose(page, [small, large]);
    // The page reloads once both are resumable: recorded in the SDK's resume store, kept.bin with
    // its bytes.
    await waitForResumeEntries(page, ['kept.bin', 'large.bin'], 1);
    const kept = await waitForServerUpload('kept.bin');
    const before = await waitForServerUpload('large.bin');
    await page.reload();
    await page.getByRole('heading', { name: 'Send files' }).waitFor();
    assert.ok(
      (await inProgress()).some((upload) => upload.id === before.id),
      'large.bin was unfinished when the page reloaded',
    );
    await throttle(page, undefined);
    await waitForState(page, 'large.bin', 'Waiting for the file');
    await card(page, 'kept.bin').getByText('Continued after a reload').waitFor();

    const chooser = page.waitForEvent('filechooser');
    await card(page, 'large.bin').getByRole('button', { name: 'Choose again large.bin' }).click();
    await (await chooser).setFiles([large]);
    await card(page, 'large.bin').getByText('Continued after a reload').waitFor();
    await assertStored(page, { 'kept.bin': await fileDigest(small), 'large.bin': await fileDigest(large) });
    const hrefs = Object.fromEntries((await finishedEntries(page)).map((entry) => [entry.name, entry.href]));
    assert.equal(hrefs['large.bin'], `/files/${before.id}`, 'large.bin continued the same upload');
    assert.equal(hrefs['kept.bin'], `/files/${kept.id}`, 'kept.bin continued the same upload');
    assert.deepEqual(problems, []);
    await context.close();
  });

  it('after a reload, uploads of the protocol not chosen now get a list of their own and continue', async () => {
    const { page, context, problems } = await suite.open();
    await page.getByRole('radio', { name: /tus/ }).check();
    const path = await suite.file('notes-tus.bin', 40 * MiB);
    await throttle(page, 2 * MiB);
    await choose(page, [path]);
    // Resumable once its creation request (which carries the first chunk) was answered.
    await waitForResumeEntries(page, ['notes-tus.bin'], 0);
    await throttle(page, 128 * 1024);
    const before = await waitForServerUpload('notes-tus.bin');
    // The next files go over the parts API; the tus upload must not be forgotten.
    await page.getByRole('radio', { name: /Parts API/ }).check();
    await page.reload();
    await throttle(page, undefined);
    const other = page.locator('.send__other');
    await other.getByRole('heading', { name: 'Unfinished tus 1.0 uploads' }).waitFor();
    assert.equal(
      await page.getByRole('radio', { name: /Parts API/ }).isChecked(),
      true,
      'the choice was kept',
    );
    await other
      .locator('li.ferry-upload', { hasText: 'notes-tus.bin' })
      .getByText('Continued after a reload')
      .waitFor();
    await assertStored(page, { 'notes-tus.bin': await fileDigest(path) });
    const href = (await finishedEntries(page)).find((entry) => entry.name === 'notes-tus.bin')?.href;
    assert.equal(href, `/files/${before.id}`, 'the same upload continued');
    assert.deepEqual(problems, []);
    await context.close();
  });

  it('offline: shown as waiting for the network, and continues once back online', async () => {
    const { page, context, problems } = await suite.open();
    // 512 KiB/s: at least 24 s to go when the network drops.
    const path = await suite.file('trip.bin', 12 * MiB);
    await throttle(page, 512 * 1024);
    await choose(page, [path]);
    await waitForServerUpload('trip.bin');
    await waitForState(page, 'trip.bin', 'Uploading');

    await context.setOffline(true);
    await waitForState(page, 'trip.bin', 'Waiting for the network');
    assert.equal(await card(page, 'trip.bin').getByRole('button', { name: 'Resume trip.bin' }).count(), 1);
    // Back online, at full speed: it continues by itself.
    await context.setOffline(false);
    await throttle(page, undefined);
    await assertStored(page, { 'trip.bin': await fileDigest(path) });
    assert.deepEqual(
      problems.filter((text) => !/ERR_INTERNET_DISCONNECTED|net::/.test(text)),
      [],
    );
    await context.close();
  });
});
