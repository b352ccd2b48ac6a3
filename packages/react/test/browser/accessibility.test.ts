/**
 * `<UploadDropzone>` for people who do not use a mouse or do not see the screen: the whole flow by
 * keyboard with a visible focus ring and focus that never falls to the page; no motion when reduced
 * motion is asked for; the live region's words; axe-core (WCAG 2.2 A/AA and best practices) with no
 * violation when empty, uploading, paused, failed, finished and refusing files, in light and dark.
 * Screenshots of every state go to test-results/react/.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitForEvents } from './harness.ts';
import {
  assertNoViolations,
  card,
  choose,
  completed,
  focused,
  type Suite,
  screenshot,
  slow,
  startSuite,
  TARGET,
  waitForPercent,
  waitForState,
} from './page-helpers.ts';
import { browserSkipReason, MiB } from './services.ts';

describe('<UploadDropzone> by keyboard and screen reader in Chromium', { skip: browserSkipReason() }, () => {
  let suite: Suite;
  before(async () => {
    suite = await startSuite();
  });
  after(async () => {
    await suite?.close();
  });

  it('works by keyboard alone, with a visible focus ring', async () => {
    const path = await suite.file('keyboard.bin', 3 * MiB);
    const { page, context, problems } = await suite.harness.open(suite.tus(slow));
    try {
      await page.keyboard.press('Tab');
      assert.equal(await focused(page), TARGET);
      const ring = await page.evaluate(() => {
        const style = getComputedStyle(document.activeElement as Element);
        return `${style.outlineStyle} ${style.outlineWidth}`;
      });
      assert.equal(ring, 'solid 3px');
      const transition = () =>
        page.evaluate(
          () =>
            getComputedStyle(document.querySelector('.ferry-dropzone__target') as Element).transitionDuration,
        );
      assert.equal(await transition(), '0s', 'nothing moves when the user asks for reduced motion');
      await page.emulateMedia({ reducedMotion: 'no-preference' });
      assert.notEqual(await transition(), '0s', 'hover colours fade where motion is welcome');
      await page.emulateMedia({ reducedMotion: 'reduce' });
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

  for (const scheme of ['light', 'dark'] as const) {
    it(`axe finds no violation when empty, uploading, paused, failed, finished or refusing files (${scheme})`, async () => {
      const slowFile = await suite.file('holiday-video.mp4', 10 * MiB);
      const quick = await suite.file('notes.txt', 20_000);
      const tooBig = await suite.file('manual.pdf', 3_000_000);
      const { page, context, problems } = await suite.harness.open(suite.tus(slow), { colorScheme: scheme });
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

      const failing = await suite.harness.open({ endpoint: suite.small.endpoint }, { colorScheme: scheme });
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

      const strict = await suite.harness.open(
        suite.tus({ accept: '.txt,.pdf', maxSize: 2_000_000, maxFiles: 3 }),
        {
          colorScheme: scheme,
        },
      );
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

  it('the live region announces added, paused, resumed, progress by quarters and finished', async () => {
    const path = await suite.file('spoken.bin', 3 * MiB);
    const { page, context } = await suite.harness.open(suite.tus(slow));
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
      // One announcement may hold several sentences (a resume that finds the server past a quarter).
      const heard = (await page.evaluate(() => (globalThis as unknown as { heard: string[] }).heard)).flatMap(
        (text) => text.trim().split(/(?<=\.)\s+(?=spoken)/),
      );
      const sentences = heard.filter((text) => text !== '');
      // Where the pause and the last quarter fall depends on timing; what is said, and in what
      // order, does not. (The exact sequence, percent by percent, is a unit test.)
      const quarters = sentences.filter((text) => /^spoken\.bin: \d+% uploaded\.$/.test(text));
      assert.deepEqual(
        sentences.filter((text) => !quarters.includes(text)),
        ['spoken.bin added.', 'spoken.bin paused.', 'spoken.bin resumed.', 'spoken.bin finished uploading.'],
        JSON.stringify(sentences),
      );
      assert.ok(quarters.length >= 1 && quarters.length <= 3, JSON.stringify(sentences));
      const percents = quarters.map((text) => Number(/(\d+)%/.exec(text)?.[1]));
      assert.ok(
        percents.every(
          (percent, i) => [25, 50, 75].includes(percent) && (i === 0 || percent > (percents[i - 1] ?? 0)),
        ),
        `quarters only, each once, rising: ${JSON.stringify(sentences)}`,
      );
      assert.ok(sentences.indexOf('spoken.bin: 25% uploaded.') < sentences.indexOf('spoken.bin paused.'));
    } finally {
      await context.close();
    }
  });
});
