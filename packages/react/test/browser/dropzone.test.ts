/**
 * `<UploadDropzone>` in Chromium against a real Ferry on another origin: files added through the
 * file chooser and by a drop upload and arrive with the source's SHA-256 (tus and parts); pause,
 * resume, cancel and remove from the card's buttons; the whole flow by keyboard alone; uploads
 * left unfinished by a reload continue (the kept file by itself, a larger one once picked again);
 * and axe-core finds nothing in any state, in light and dark. Screenshots of every state go to
 * test-results/react/.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import {
  axeViolations,
  type DropzoneEvent,
  type DropzoneHarness,
  dropzoneEvents,
  type PageConfig,
  screenshotDir,
  startDropzoneHarness,
  waitForEvents,
} from './harness.ts';
import {
  browserSkipReason,
  download,
  fileDigest,
  MiB,
  startFerry,
  type TestFerry,
  writeRandomFile,
} from './services.ts';

const skip = browserSkipReason();

const TARGET = 'Choose files or drop them here';

const completed = (events: DropzoneEvent[]) =>
  events.filter((event): event is Extract<DropzoneEvent, { type: 'complete' }> => event.type === 'complete');

/** The card of the file `name`. */
const card = (page: Page, name: string) => page.locator('li.ferry-upload', { hasText: name });

async function waitForState(page: Page, name: string, state: string, timeoutMs = 30_000): Promise<void> {
  await card(page, name)
    .locator('.ferry-upload__state', { hasText: new RegExp(`^${state}$`) })
    .waitFor({
      timeout: timeoutMs,
    });
}

/** The progress bar's value (whole percent). */
async function percentOf(page: Page, name: string): Promise<number> {
  return Number(await card(page, name).locator('progress').getAttribute('value'));
}

async function waitForPercent(page: Page, name: string, least: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while ((await percentOf(page, name)) < least) {
    if (Date.now() > deadline) throw new Error(`${name} stayed below ${least}%`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Clicks the drop area and picks `paths` in the file chooser it opens. */
async function choose(page: Page, paths: string[]): Promise<void> {
  const chooser = page.waitForEvent('filechooser');
  await page.getByRole('button', { name: TARGET }).click();
  await (await chooser).setFiles(paths);
}

/** What the focused element is called (its text, with the visually hidden file name). */
function focused(page: Page): Promise<string> {
  return page.evaluate(() => {
    const element = document.activeElement;
    if (element === null || element === document.body) return '(nothing)';
    return element.textContent?.replace(/\s+/g, ' ').trim() ?? '';
  });
}

async function assertNoViolations(page: Page, state: string): Promise<void> {
  const violations = await axeViolations(page);
  assert.deepEqual(
    violations.map(({ id, nodes }) => `${id}: ${nodes.map((node) => node.target.join(' ')).join(', ')}`),
    [],
    `axe in state "${state}": ${JSON.stringify(violations, null, 2)}`,
  );
}

async function screenshot(page: Page, name: string): Promise<void> {
  // The pointer off the page: a hover colour is not part of the state being shown.
  await page.mouse.move(0, 0);
  await page.screenshot({ path: join(screenshotDir, `${name}.png`), fullPage: true });
}

describe('<UploadDropzone> in Chromium', { skip }, () => {
  let harness: DropzoneHarness;
  let ferry: TestFerry;
  /** A Ferry that refuses anything over 1000 bytes: an upload that fails. */
  let small: TestFerry;
  let files: string;

  before(async () => {
    files = await mkdtemp(join(tmpdir(), 'ferry-react-files-'));
    harness = await startDropzoneHarness();
    ferry = await startFerry({ corsOrigins: [harness.origin] });
    small = await startFerry({ corsOrigins: [harness.origin], maxSize: 1000 });
  });

  after(async () => {
    await harness?.close();
    await ferry?.stop();
    await small?.stop();
    if (files !== undefined) await rm(files, { recursive: true, force: true });
  });

  const tus = (extra: Partial<PageConfig> = {}): PageConfig => ({ endpoint: ferry.endpoint, ...extra });
  const parts = (extra: Partial<PageConfig> = {}): PageConfig => ({
    endpoint: `${ferry.origin}/uploads/`,
    protocol: 'parts',
    chunkSize: 5 * MiB,
    ...extra,
  });
  /** Slow enough to act on mid-upload. */
  const slow = { chunkSize: 256 * 1024, limitRate: 1 * MiB };

  async function file(name: string, size: number): Promise<string> {
    const path = join(files, name);
    await writeRandomFile(path, size);
    return path;
  }

  async function assertStored(events: DropzoneEvent[], paths: Record<string, string>): Promise<void> {
    const done = completed(events);
    assert.deepEqual(done.map((event) => event.name).sort(), Object.keys(paths).sort());
    for (const event of done) {
      const source = await fileDigest(paths[event.name] as string);
      assert.equal(event.sha256, source.sha256, event.name);
      assert.deepEqual(await ferry.stored(event.url), source, `${event.name} on the server`);
    }
  }

  it('files chosen in the file chooser upload over tus and parts; the server has their exact bytes', async () => {
    const paths = {
      'report.pdf': await file('report.pdf', 3 * MiB + 5),
      'photo.jpg': await file('photo.jpg', 1 * MiB),
      'empty.txt': await file('empty.txt', 0),
    };
    for (const config of [tus(), parts()]) {
      const { page, context, problems } = await harness.open(config);
      try {
        await choose(page, Object.values(paths));
        const events = await waitForEvents(page, (list) => completed(list).length === 3);
        await assertStored(events, paths);
        for (const name of Object.keys(paths)) await waitForState(page, name, 'Uploaded');
        assert.equal(
          await page.locator('.ferry-dropzone__summary').textContent(),
          '3 of 3 files uploaded · 100% of 4.2 MB',
        );
        assert.deepEqual(problems, [], 'no console errors or React warnings');
      } finally {
        await context.close();
      }
    }
  });

  it('files dropped on the drop area upload', async () => {
    const { page, context, problems } = await harness.open(tus());
    try {
      const digests = await page.evaluate(async () => {
        const made: Record<string, string> = {};
        const transfer = new DataTransfer();
        for (const [name, size] of [
          ['dropped-a.bin', 700_000],
          ['dropped-b.bin', 2_100_000],
        ] as const) {
          const bytes = new Uint8Array(size);
          for (let at = 0; at < size; at += 65_536) {
            crypto.getRandomValues(bytes.subarray(at, Math.min(size, at + 65_536)));
          }
          const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
          made[name] = [...digest].map((byte) => byte.toString(16).padStart(2, '0')).join('');
          transfer.items.add(new File([bytes], name, { type: 'application/octet-stream' }));
        }
        Object.assign(globalThis, { testTransfer: transfer });
        return made;
      });
      const drag = (type: string) =>
        page.evaluate((type) => {
          const dataTransfer = (globalThis as unknown as { testTransfer: DataTransfer }).testTransfer;
          const target = document.querySelector('.ferry-dropzone__target') as HTMLElement;
          // `false`: the page called preventDefault(), which is what lets a browser drop there.
          return target.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer }));
        }, type);
      assert.equal(await drag('dragenter'), false);
      assert.equal(await drag('dragover'), false);
      await page.locator('.ferry-dropzone__target[data-dragging]').waitFor();
      assert.equal(await page.locator('.ferry-dropzone__label').textContent(), 'Drop to add files');
      await screenshot(page, 'dragging-light');
      assert.equal(await drag('drop'), false);
      await page.locator('.ferry-dropzone__target:not([data-dragging])').waitFor();

      const events = await waitForEvents(page, (list) => completed(list).length === 2);
      for (const event of completed(events)) {
        assert.equal(event.sha256, digests[event.name]);
        const stored = await ferry.stored(event.url);
        assert.equal(stored.sha256, digests[event.name], `${event.name} on the server`);
      }
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('pause, resume, cancel and remove from the buttons; parts are counted', async () => {
    const big = await file('big.bin', 15 * MiB);
    const doomed = await file('doomed.bin', 15 * MiB);
    // A part waits for the rate limiter's tokens, then goes at loopback speed: one part at a time,
    // one every 2.5 s, leaves time to act between parts.
    const { page, context, problems } = await harness.open(
      parts({ limitRate: 2 * MiB, parallel: 1, adaptiveConcurrency: false }),
    );
    const deletes: { url: string; status: number }[] = [];
    page.on('response', (response) => {
      if (response.request().method() === 'DELETE')
        deletes.push({ url: response.url(), status: response.status() });
    });
    try {
      await choose(page, [big]);
      await waitForPercent(page, 'big.bin', 33);
      assert.match(
        (await card(page, 'big.bin').locator('.ferry-upload__status').textContent()) ?? '',
        /Parts 1 of 3/,
      );
      await screenshot(page, 'uploading-parts-light');

      await page.getByRole('button', { name: 'Pause big.bin' }).click();
      await waitForState(page, 'big.bin', 'Paused');
      assert.equal(await focused(page), 'Resume big.bin', 'focus stays on the same button, now Resume');
      const paused = await percentOf(page, 'big.bin');
      await new Promise((resolve) => setTimeout(resolve, 800));
      assert.equal(await percentOf(page, 'big.bin'), paused, 'nothing moves while paused');

      await page.getByRole('button', { name: 'Resume big.bin' }).click();
      const events = await waitForEvents(page, (list) => completed(list).length === 1);
      await assertStored(events, { 'big.bin': big });

      await choose(page, [doomed]);
      await waitForPercent(page, 'doomed.bin', 33);
      await page.getByRole('button', { name: 'Cancel doomed.bin' }).click();
      await waitForState(page, 'doomed.bin', 'Cancelled');
      assert.equal(await focused(page), 'Remove doomed.bin', 'Cancel became Remove, still focused');
      const deadline = Date.now() + 10_000;
      while (deletes.length === 0 && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(deletes.length, 1, 'one DELETE');
      assert.equal(deletes[0]?.status, 204);
      assert.equal((await download(deletes[0]?.url as string)).status, 404, 'gone from the server');

      await page.getByRole('button', { name: 'Remove doomed.bin' }).click();
      await card(page, 'doomed.bin').waitFor({ state: 'detached' });
      assert.equal(await focused(page), TARGET, 'focus returns to the drop area');
      assert.equal(completed(await dropzoneEvents(page)).length, 1);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('works by keyboard alone, with a visible focus ring', async () => {
    const path = await file('keyboard.bin', 3 * MiB);
    const { page, context, problems } = await harness.open(tus(slow));
    try {
      await page.keyboard.press('Tab');
      assert.equal(await focused(page), TARGET);
      const ring = await page.evaluate(() => {
        const style = getComputedStyle(document.activeElement as Element);
        return `${style.outlineStyle} ${style.outlineWidth}`;
      });
      assert.equal(ring, 'solid 3px');
      await screenshot(page, 'focus-light');

      let chooser = page.waitForEvent('filechooser');
      await page.keyboard.press('Enter');
      await (await chooser).setFiles([path]);
      await waitForPercent(page, 'keyboard.bin', 1);

      await page.keyboard.press('Tab');
      assert.equal(await focused(page), 'Pause keyboard.bin');
      await page.keyboard.press('Enter');
      await waitForState(page, 'keyboard.bin', 'Paused');
      assert.equal(await focused(page), 'Resume keyboard.bin');
      await page.keyboard.press('Space');
      await card(page, 'keyboard.bin')
        .locator('.ferry-upload__state', { hasText: /^(Preparing|Uploading)$/ })
        .waitFor();
      assert.equal(await focused(page), 'Pause keyboard.bin');

      await page.keyboard.press('Tab');
      assert.equal(await focused(page), 'Cancel keyboard.bin');
      await page.keyboard.press('Shift+Tab');
      assert.equal(await focused(page), 'Pause keyboard.bin');

      // Done: the Pause button goes; focus moves to the card's remaining button, not to the page.
      await waitForEvents(page, (list) => completed(list).length === 1);
      await waitForState(page, 'keyboard.bin', 'Uploaded');
      assert.equal(await focused(page), 'Remove keyboard.bin');

      await page.keyboard.press('Shift+Tab');
      assert.equal(await focused(page), TARGET);
      chooser = page.waitForEvent('filechooser');
      await page.keyboard.press('Space');
      await (await chooser).setFiles([]);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('an upload cut by a reload continues by itself from the file the browser kept', async () => {
    const path = await file('kept.bin', 3 * MiB);
    const { page, context, problems } = await harness.open(tus(slow));
    try {
      await choose(page, [path]);
      await waitForPercent(page, 'kept.bin', 25);
      await page.reload();
      await card(page, 'kept.bin').locator('text=Continued after a reload').waitFor();
      const events = await waitForEvents(page, (list) => completed(list).length === 1);
      await assertStored(events, { 'kept.bin': path });
      assert.equal(await page.locator('li.ferry-upload').count(), 1);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('a file too big to keep waits after a reload and continues when picked again, without starting over', async () => {
    const size = 4 * MiB;
    const path = await file('movie.bin', size);
    const config = tus({ ...slow, keepFilesUpTo: 0 });
    const { page, context, problems } = await harness.open(config);
    try {
      await choose(page, [path]);
      await waitForPercent(page, 'movie.bin', 30);
      const confirmed = ((await percentOf(page, 'movie.bin')) * size) / 100;
      await page.reload();
      await waitForState(page, 'movie.bin', 'Waiting for the file');
      await assertNoViolations(page, 'needs-file');
      await screenshot(page, 'needs-file-light');

      const before = await ferry.bytesReceived();
      const chooser = page.waitForEvent('filechooser');
      await page.getByRole('button', { name: 'Choose again movie.bin' }).click();
      await (await chooser).setFiles([path]);
      const events = await waitForEvents(page, (list) => completed(list).length === 1);
      await assertStored(events, { 'movie.bin': path });
      const sent = (await ferry.bytesReceived()) - before;
      assert.ok(sent <= size - confirmed + 256 * 1024, `sent ${sent} bytes again: it started over`);
      assert.equal(await page.locator('li.ferry-upload').count(), 1, 'the waiting card gave way');
      assert.match((await card(page, 'movie.bin').textContent()) ?? '', /Continued after a reload/);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  for (const scheme of ['light', 'dark'] as const) {
    it(`axe finds no violation when empty, uploading, paused, failed, finished or refusing files (${scheme})`, async () => {
      const slowFile = await file('holiday-video.mp4', 6 * MiB);
      const quick = await file('notes.txt', 20_000);
      const tooBig = await file('manual.pdf', 3_000_000);
      const { page, context, problems } = await harness.open(tus(slow), { colorScheme: scheme });
      try {
        await assertNoViolations(page, 'empty');
        await screenshot(page, `empty-${scheme}`);

        await choose(page, [slowFile, quick]);
        await waitForEvents(page, (list) => completed(list).length === 1);
        await waitForPercent(page, 'holiday-video.mp4', 15);
        await assertNoViolations(page, 'uploading');
        await screenshot(page, `uploading-${scheme}`);
        // 320 CSS pixels wide (WCAG 1.4.10, reflow): everything wraps, nothing scrolls sideways.
        await page.setViewportSize({ width: 320, height: 720 });
        assert.equal(
          await page.evaluate(() => document.documentElement.scrollWidth),
          320,
          'no horizontal scrolling',
        );
        await screenshot(page, `uploading-narrow-${scheme}`);
        await page.setViewportSize({ width: 760, height: 720 });

        await page.getByRole('button', { name: 'Pause holiday-video.mp4' }).click();
        await waitForState(page, 'holiday-video.mp4', 'Paused');
        await assertNoViolations(page, 'paused');
        await screenshot(page, `paused-${scheme}`);

        await page.getByRole('button', { name: 'Resume holiday-video.mp4' }).click();
        await waitForEvents(page, (list) => completed(list).length === 2, 60_000);
        await waitForState(page, 'holiday-video.mp4', 'Uploaded');
        await assertNoViolations(page, 'finished');
        await screenshot(page, `finished-${scheme}`);
        assert.deepEqual(problems, []);
      } finally {
        await context.close();
      }

      const failing = await harness.open({ endpoint: small.endpoint }, { colorScheme: scheme });
      try {
        await choose(failing.page, [quick]);
        await waitForState(failing.page, 'notes.txt', 'Failed');
        assert.equal(
          await card(failing.page, 'notes.txt').locator('.ferry-upload__error').textContent(),
          'The server does not accept a file as large as notes.txt.',
        );
        assert.equal(
          await failing.page.getByRole('button', { name: 'Retry notes.txt' }).count(),
          0,
          'no Retry for a refusal that would repeat',
        );
        await assertNoViolations(failing.page, 'failed');
        await screenshot(failing.page, `failed-${scheme}`);
      } finally {
        await failing.context.close();
      }

      const strict = await harness.open(tus({ accept: '.txt,.pdf', maxSize: 2_000_000, maxFiles: 3 }), {
        colorScheme: scheme,
      });
      try {
        await choose(strict.page, [tooBig, quick, slowFile]);
        await strict.page.locator('.ferry-dropzone__rejections').waitFor();
        assert.deepEqual(await strict.page.locator('.ferry-dropzone__rejections li').allTextContents(), [
          'manual.pdf is 3 MB; the limit is 2 MB.',
          "holiday-video.mp4 can't be uploaded here: only .txt or .pdf files are accepted.",
        ]);
        assert.equal(
          await strict.page.locator('.ferry-dropzone__hint').textContent(),
          '.txt or .pdf files; up to 2 MB each; at most 3 files.',
        );
        await waitForEvents(strict.page, (list) => completed(list).length === 1);
        await assertNoViolations(strict.page, 'refused');
        await screenshot(strict.page, `refused-${scheme}`);
        assert.deepEqual(strict.problems, []);
      } finally {
        await strict.context.close();
      }
    });
  }

  it('useUpload drives a form of its own: progress, pause, resume, the result; progress renders are throttled', async () => {
    const path = await file('single.bin', 3 * MiB);
    const { page, context, problems } = await harness.open({ ...tus(slow), view: 'useUpload' });
    try {
      await page.getByLabel('File').setInputFiles(path);
      await page.locator('#single-state', { hasText: 'uploading' }).waitFor();
      await page.getByRole('button', { name: 'Pause' }).click();
      await page.locator('#single-state', { hasText: 'paused' }).waitFor();
      const paused = await page.locator('#single-bytes').textContent();
      await new Promise((resolve) => setTimeout(resolve, 600));
      assert.equal(await page.locator('#single-bytes').textContent(), paused);
      const commitsBefore = await page.evaluate(
        () => (globalThis as unknown as { singleCommits: { count: number } }).singleCommits.count,
      );
      const resumedAt = Date.now();
      await page.getByRole('button', { name: 'Resume' }).click();
      const events = await waitForEvents(page, (list) => completed(list).length === 1);
      const seconds = (Date.now() - resumedAt) / 1000;
      await page.locator('#single-state', { hasText: 'done' }).waitFor();
      await assertStored(events, { 'single.bin': path });
      const commits =
        (await page.evaluate(
          () => (globalThis as unknown as { singleCommits: { count: number } }).singleCommits.count,
        )) - commitsBefore;
      // At most one progress render per 250 ms, plus the state changes (resumed, done) and a few spare.
      assert.ok(commits <= seconds * 4 + 6, `${commits} renders in ${seconds.toFixed(1)} s`);
      assert.ok(commits >= 3, `${commits} renders: the progress was shown as it moved`);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('the live region announces added, paused, resumed, progress by quarters and finished', async () => {
    const path = await file('spoken.bin', 3 * MiB);
    const { page, context } = await harness.open(tus(slow));
    try {
      assert.equal(await page.locator('[aria-live]').count(), 1, 'one live region');
      await page.evaluate(() => {
        const heard: string[] = [];
        const region = document.querySelector('[aria-live="polite"]') as HTMLElement;
        new MutationObserver(() => heard.push(region.textContent ?? '')).observe(region, {
          childList: true,
          characterData: true,
          subtree: true,
        });
        Object.assign(globalThis, { heard });
      });
      await choose(page, [path]);
      await waitForPercent(page, 'spoken.bin', 30);
      await page.getByRole('button', { name: 'Pause spoken.bin' }).click();
      await waitForState(page, 'spoken.bin', 'Paused');
      await page.getByRole('button', { name: 'Resume spoken.bin' }).click();
      await waitForEvents(page, (list) => completed(list).length === 1);
      await waitForState(page, 'spoken.bin', 'Uploaded');
      const heard = (await page.evaluate(() => (globalThis as unknown as { heard: string[] }).heard)).map(
        (text) => text.trim(),
      );
      assert.deepEqual(
        heard.filter((text) => text !== ''),
        [
          'spoken.bin added.',
          'spoken.bin: 25% uploaded.',
          'spoken.bin paused.',
          'spoken.bin resumed.',
          'spoken.bin: 50% uploaded.',
          'spoken.bin: 75% uploaded.',
          'spoken.bin finished uploading.',
        ],
      );
    } finally {
      await context.close();
    }
  });
});
