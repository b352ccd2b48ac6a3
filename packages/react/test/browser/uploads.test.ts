/**
 * `<UploadDropzone>` and `useUpload` in Chromium against a real Ferry on another origin: files added
 * through the file chooser and by a drop arrive with the source's SHA-256 (tus and parts); pause,
 * resume, cancel and remove from the card's buttons; uploads left unfinished by a reload continue
 * (the kept file by itself, a larger one once picked again, without starting over).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { dropzoneEvents, waitForEvents } from './harness.ts';
import {
  assertNoViolations,
  card,
  choose,
  completed,
  focused,
  percentOf,
  type Suite,
  screenshot,
  slow,
  startSuite,
  TARGET,
  waitForPercent,
  waitForState,
} from './page-helpers.ts';
import { browserSkipReason, download, MiB } from './services.ts';

describe('uploading with <UploadDropzone> and useUpload in Chromium', { skip: browserSkipReason() }, () => {
  let suite: Suite;
  before(async () => {
    suite = await startSuite();
  });
  after(async () => {
    await suite?.close();
  });

  it('files chosen in the file chooser upload over tus and parts; the server has their exact bytes', async () => {
    const paths = {
      'report.pdf': await suite.file('report.pdf', 3 * MiB + 5),
      'photo.jpg': await suite.file('photo.jpg', 1 * MiB),
      'empty.txt': await suite.file('empty.txt', 0),
    };
    for (const config of [suite.tus(), suite.parts()]) {
      const { page, context, problems } = await suite.harness.open(config);
      try {
        await choose(page, Object.values(paths));
        const events = await waitForEvents(page, (list) => completed(list).length === 3);
        await suite.assertStored(events, paths);
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
    const { page, context, problems } = await suite.harness.open(suite.tus());
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
        const stored = await suite.ferry.stored(event.url);
        assert.equal(stored.sha256, digests[event.name], `${event.name} on the server`);
      }
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('pause, resume, cancel and remove from the buttons; parts are counted', async () => {
    const big = await suite.file('big.bin', 15 * MiB);
    const doomed = await suite.file('doomed.bin', 15 * MiB);
    // A part waits for the rate limiter's tokens, then goes at loopback speed: one part at a time,
    // one every 2.5 s, leaves time to act between parts.
    const { page, context, problems } = await suite.harness.open(
      suite.parts({ limitRate: 2 * MiB, parallel: 1, adaptiveConcurrency: false }),
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
        /Parts [12] of 3/,
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
      await suite.assertStored(events, { 'big.bin': big });

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

  it('an upload cut by a reload continues by itself from the file the browser kept', async () => {
    const path = await suite.file('kept.bin', 3 * MiB);
    const { page, context, problems } = await suite.harness.open(suite.tus(slow));
    try {
      await choose(page, [path]);
      await waitForPercent(page, 'kept.bin', 25);
      await page.reload();
      await card(page, 'kept.bin').locator('text=Continued after a reload').waitFor();
      const events = await waitForEvents(page, (list) => completed(list).length === 1);
      await suite.assertStored(events, { 'kept.bin': path });
      assert.equal(await page.locator('li.ferry-upload').count(), 1);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('a file too big to keep waits after a reload and continues when picked again, without starting over', async () => {
    const size = 4 * MiB;
    const path = await suite.file('movie.bin', size);
    const config = suite.tus({ ...slow, keepFilesUpTo: 0 });
    const { page, context, problems } = await suite.harness.open(config);
    try {
      await choose(page, [path]);
      await waitForPercent(page, 'movie.bin', 30);
      const confirmed = ((await percentOf(page, 'movie.bin')) * size) / 100;
      await page.reload();
      await waitForState(page, 'movie.bin', 'Waiting for the file');
      await assertNoViolations(page, 'needs-file');
      await screenshot(page, 'needs-file-light');

      const before = await suite.ferry.bytesReceived();
      const chooser = page.waitForEvent('filechooser');
      await page.getByRole('button', { name: 'Choose again movie.bin' }).click();
      await (await chooser).setFiles([path]);
      const events = await waitForEvents(page, (list) => completed(list).length === 1);
      await suite.assertStored(events, { 'movie.bin': path });
      const sent = (await suite.ferry.bytesReceived()) - before;
      assert.ok(sent <= size - confirmed + 256 * 1024, `sent ${sent} bytes again: it started over`);
      assert.equal(await page.locator('li.ferry-upload').count(), 1, 'the waiting card gave way');
      assert.match((await card(page, 'movie.bin').textContent()) ?? '', /Continued after a reload/);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('useUpload drives a form of its own: progress, pause, resume, the result; progress renders are throttled', async () => {
    const path = await suite.file('single.bin', 3 * MiB);
    const { page, context, problems } = await suite.harness.open({ ...suite.tus(slow), view: 'useUpload' });
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
      await suite.assertStored(events, { 'single.bin': path });
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
});
