/**
 * Driving and reading the test page as a person would: the drop area, a file's card, its state and
 * progress, the focused element; axe-core's verdict; screenshots. And `startSuite`, which starts
 * the page, a Ferry and a Ferry that refuses anything over 1000 bytes.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import {
  axeViolations,
  type DropzoneEvent,
  type DropzoneHarness,
  type PageConfig,
  screenshotDir,
  startDropzoneHarness,
} from './harness.ts';
import { fileDigest, MiB, startFerry, type TestFerry, writeRandomFile } from './services.ts';

/** The drop area's accessible name (without a hint). */
export const TARGET = 'Choose files or drop them here';

export const completed = (events: DropzoneEvent[]) =>
  events.filter((event): event is Extract<DropzoneEvent, { type: 'complete' }> => event.type === 'complete');

/** The card of the file `name`. */
export const card = (page: Page, name: string) => page.locator('li.ferry-upload', { hasText: name });

export async function waitForState(
  page: Page,
  name: string,
  state: string,
  timeoutMs = 30_000,
): Promise<void> {
  await card(page, name)
    .locator('.ferry-upload__state', { hasText: new RegExp(`^${state}$`) })
    .waitFor({
      timeout: timeoutMs,
    });
}

/** The progress bar's value (whole percent). */
export async function percentOf(page: Page, name: string): Promise<number> {
  return Number(await card(page, name).locator('progress').getAttribute('value'));
}

export async function waitForPercent(page: Page, name: string, least: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while ((await percentOf(page, name)) < least) {
    if (Date.now() > deadline) throw new Error(`${name} stayed below ${least}%`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Clicks the drop area and picks `paths` in the file chooser it opens. */
export async function choose(page: Page, paths: string[]): Promise<void> {
  const chooser = page.waitForEvent('filechooser');
  await page.getByRole('button', { name: TARGET }).click();
  await (await chooser).setFiles(paths);
}

/** What the focused element is called (its text, with the visually hidden file name). */
export function focused(page: Page): Promise<string> {
  return page.evaluate(() => {
    const element = document.activeElement;
    if (element === null || element === document.body) return '(nothing)';
    return element.textContent?.replace(/\s+/g, ' ').trim() ?? '';
  });
}

export async function assertNoViolations(page: Page, state: string): Promise<void> {
  const violations = await axeViolations(page);
  assert.deepEqual(
    violations.map(({ id, nodes }) => `${id}: ${nodes.map((node) => node.target.join(' ')).join(', ')}`),
    [],
    `axe in state "${state}": ${JSON.stringify(violations, null, 2)}`,
  );
}

export async function screenshot(page: Page, name: string): Promise<void> {
  // The pointer off the page: a hover colour is not part of the state being shown.
  await page.mouse.move(0, 0);
  await page.screenshot({ path: join(screenshotDir, `${name}.png`), fullPage: true });
}

export interface Suite {
  harness: DropzoneHarness;
  ferry: TestFerry;
  /** Refuses anything over 1000 bytes: an upload that fails. */
  small: TestFerry;
  /** A tus page config for `ferry`. */
  tus(extra?: Partial<PageConfig>): PageConfig;
  /** A parts page config for `ferry` (5 MiB parts). */
  parts(extra?: Partial<PageConfig>): PageConfig;
  /** Writes `size` random bytes to a file named `name`; its path. */
  file(name: string, size: number): Promise<string>;
  /** The completed uploads are exactly `paths` (name → path) and the server holds their bytes. */
  assertStored(events: DropzoneEvent[], paths: Record<string, string>): Promise<void>;
  close(): Promise<void>;
}

/** Slow enough to act on mid-upload: 256 KiB chunks at 1 MiB/s. */
export const slow = { chunkSize: 256 * 1024, limitRate: 1 * MiB };

export async function startSuite(): Promise<Suite> {
  const files = await mkdtemp(join(tmpdir(), 'ferry-react-files-'));
  const harness = await startDropzoneHarness();
  const ferry = await startFerry({ corsOrigins: [harness.origin] });
  const small = await startFerry({ corsOrigins: [harness.origin], maxSize: 1000 });
  return {
    harness,
    ferry,
    small,
    tus: (extra = {}) => ({ endpoint: ferry.endpoint, ...extra }),
    parts: (extra = {}) => ({
      endpoint: `${ferry.origin}/uploads/`,
      protocol: 'parts',
      chunkSize: 5 * MiB,
      ...extra,
    }),
    async file(name, size) {
      const path = join(files, name);
      await writeRandomFile(path, size);
      return path;
    },
    async assertStored(events, paths) {
      const done = completed(events);
      assert.deepEqual(done.map((event) => event.name).sort(), Object.keys(paths).sort());
      for (const event of done) {
        const source = await fileDigest(paths[event.name] as string);
        assert.equal(event.sha256, source.sha256, event.name);
        assert.deepEqual(await ferry.stored(event.url), source, `${event.name} on the server`);
      }
    },
    async close() {
      await harness.close();
      await ferry.stop();
      await small.stop();
      await rm(files, { recursive: true, force: true });
    },
  };
}
