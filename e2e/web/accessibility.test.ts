/**
 * The web app against WCAG 2.2 AA in Chromium: axe-core (WCAG 2.0–2.2 A/AA and best practices)
 * finds nothing in any state — empty, uploading, paused, failed, finished — in light and dark, on a
 * desktop and on a 360 px wide phone, where nothing scrolls sideways; a screenshot of each is saved
 * in test-results/web/. And the whole flow by keyboard alone: protocol, file chooser, pause,
 * resume, the download link, clearing the list, with a visible focus ring at every stop.
 *
 * The server refuses files over 100 MB, so a bigger file fails as a real refusal would.
 */
import assert from 'node:assert/strict';
import { readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { UploadList } from '@ferry/protocol';
import type { Page } from 'playwright-core';
import { browserSkipReason, fileDigest, MiB, startWebSuite, throttle, type WebSuite } from './harness.ts';
import {
  assertNoViolations,
  card,
  choose,
  focused,
  screenshot,
  scrollsSideways,
  tabTo,
  waitForFinished,
  waitForPercent,
  waitForState,
} from './page-helpers.ts';

const skip = browserSkipReason();

interface Look {
  name: string;
  width: number;
  height: number;
  colorScheme: 'light' | 'dark';
}

const LOOKS: readonly Look[] = [
  { name: 'desktop-light', width: 1280, height: 900, colorScheme: 'light' },
  { name: 'desktop-dark', width: 1280, height: 900, colorScheme: 'dark' },
  { name: 'phone-light', width: 360, height: 780, colorScheme: 'light' },
  { name: 'phone-dark', width: 360, height: 780, colorScheme: 'dark' },
];

/** The page in every look: axe finds nothing, a phone does not scroll sideways, a screenshot each. */
async function checkState(page: Page, state: string): Promise<void> {
  for (const look of LOOKS) {
    await page.setViewportSize({ width: look.width, height: look.height });
    await page.emulateMedia({ colorScheme: look.colorScheme, reducedMotion: 'reduce' });
    await assertNoViolations(page, `${state}, ${look.name}`);
    if (look.width < 400)
      assert.equal(await scrollsSideways(page), false, `${state}: sideways scrolling at 360 px`);
    await screenshot(page, `${state}-${look.name}`);
  }
}

/** The focused element shows a focus ring: a solid outline at least 2 px wide. */
async function assertFocusVisible(page: Page): Promise<void> {
  const outline = await page.evaluate(() => {
    const style = getComputedStyle(document.activeElement as Element);
    return { style: style.outlineStyle, width: Number.parseFloat(style.outlineWidth) };
  });
  assert.equal(outline.style, 'solid', `focus ring on "${await focused(page)}"`);
  assert.ok(outline.width >= 2, `focus ring width on "${await focused(page)}"`);
}

/** Waits until the server holds a part of the upload of `name` (`GET /uploads`). */
async function waitForStoredPart(origin: string, name: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const { uploads } = (await (await fetch(`${origin}/uploads`)).json()) as UploadList;
    if (uploads.some((upload) => upload.name === name && (upload.partsReceived ?? 0) > 0)) return;
    if (Date.now() > deadline) throw new Error(`no part of ${name} arrived`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('the web app: accessibility', { skip }, () => {
  let suite: WebSuite;

  before(async () => {
    suite = await startWebSuite({ args: ['--max-size', '100000000'] });
  });
  after(() => suite?.close());

  it('every state passes axe in light and dark, on a desktop and a 360 px phone', async () => {
    const { page, context, problems } = await suite.open();
    await checkState(page, 'empty');

    // Uploading: a part arrived, the rest crawls, so the state holds while it is checked.
    const movie = await suite.file('holiday.mov', 88 * MiB);
    await throttle(page, 6 * MiB);
    await choose(page, [movie]);
    await waitForStoredPart(suite.ferry.url, 'holiday.mov');
    await throttle(page, 128 * 1024);
    await waitForPercent(page, 'holiday.mov', 1);
    await page.locator('.server-upload', { hasText: 'holiday.mov' }).waitFor();
    await checkState(page, 'uploading');

    await card(page, 'holiday.mov').getByRole('button', { name: 'Pause holiday.mov' }).click();
    await waitForState(page, 'holiday.mov', 'Paused');
    await checkState(page, 'paused');

    // A file the server refuses (over its 100 MB limit): a sparse file, nothing to write.
    const tooBig = join(await suite.group.makeDir(), 'backup.iso');
    await writeFile(tooBig, '');
    await truncate(tooBig, 150_000_000);
    await choose(page, [tooBig]);
    await waitForState(page, 'backup.iso', 'Failed');
    assert.match(
      (await card(page, 'backup.iso').textContent()) ?? '',
      /does not accept a file as large as backup\.iso/,
    );
    await checkState(page, 'error');

    await card(page, 'backup.iso').getByRole('button', { name: 'Remove backup.iso' }).click();
    await throttle(page, undefined);
    await card(page, 'holiday.mov').getByRole('button', { name: 'Resume holiday.mov' }).click();
    await waitForFinished(page, ['holiday.mov']);
    await waitForState(page, 'holiday.mov', 'Uploaded');
    await page.locator('.server .empty', { hasText: 'No upload in progress.' }).waitFor();
    await checkState(page, 'finished');

    // Nothing moves under reduced motion: no transition anywhere.
    const moving = await page.evaluate(
      () =>
        [...document.querySelectorAll('*')].filter((element) => {
          const style = getComputedStyle(element);
          return (
            style.transitionDuration.split(',').some((value) => Number.parseFloat(value) > 0) ||
            style.animationName !== 'none'
          );
        }).length,
    );
    assert.equal(moving, 0, 'elements with a transition or animation under reduced motion');
    assert.deepEqual(problems, []);
    await context.close();
  });

  it('the whole flow by keyboard alone', async () => {
    const { page, context, problems } = await suite.open();
    const path = await suite.file('minutes.pdf', 16 * MiB);
    await throttle(page, 512 * 1024);

    // The protocol: arrows move the choice, and it sticks.
    await tabTo(page, /^radio Parts API/);
    await assertFocusVisible(page);
    await page.keyboard.press('ArrowDown');
    assert.equal(await page.getByRole('radio', { name: /tus/ }).isChecked(), true);
    await page.keyboard.press('ArrowUp');
    assert.equal(await page.getByRole('radio', { name: /Parts API/ }).isChecked(), true);

    // The drop area is a button: Enter opens the file chooser.
    await tabTo(page, /^Choose files or drop them here/);
    await assertFocusVisible(page);
    const chooser = page.waitForEvent('filechooser');
    await page.keyboard.press('Enter');
    await (await chooser).setFiles([path]);
    await waitForState(page, 'minutes.pdf', 'Uploading');

    // Pause and Resume are one button: focus stays on it.
    await tabTo(page, /^Pause minutes\.pdf$/);
    await assertFocusVisible(page);
    await page.keyboard.press('Enter');
    await waitForState(page, 'minutes.pdf', 'Paused');
    assert.equal(await focused(page), 'Resume minutes.pdf');
    await throttle(page, undefined);
    await page.keyboard.press('Enter');
    await waitForFinished(page, ['minutes.pdf']);
    await waitForState(page, 'minutes.pdf', 'Uploaded');
    // The Pause button went away with the upload: focus stayed in the card.
    assert.equal(await focused(page), 'Remove minutes.pdf');

    // The download link in the finished list, by Enter: the file that arrives is the source.
    await tabTo(page, /^minutes\.pdf$/);
    await assertFocusVisible(page);
    const downloading = page.waitForEvent('download');
    await page.keyboard.press('Enter');
    const downloaded = await (await downloading).path();
    const source = await fileDigest(path);
    assert.deepEqual(await fileDigest(downloaded), source);
    assert.equal((await readFile(downloaded)).length, source.size);

    // Clearing the list: focus goes to its heading, not to the page.
    await tabTo(page, /^Clear this list of finished files$/);
    await assertFocusVisible(page);
    await page.keyboard.press('Enter');
    await page.locator('.finished .empty').waitFor();
    assert.equal(await focused(page), 'Finished files');

    // The live region told the story.
    const said = (await page.locator('.ferry-dropzone [aria-live="polite"]').first().textContent()) ?? '';
    assert.notEqual(said.trim(), '');
    assert.deepEqual(problems, []);
    await context.close();
  });
});
