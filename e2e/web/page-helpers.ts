/**
 * Reading and driving the web app as a person would: the drop area, a file's card, the finished
 * list, the server panel, the focused element; axe-core's verdict; screenshots.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { axePath, screenshotDir } from './harness.ts';

/** The drop area's accessible name starts with this. */
export const TARGET = /^Choose files or drop them here/;

/** The card of the file `name` in the drop area's list. */
export const card = (page: Page, name: string) => page.locator('li.ferry-upload', { hasText: name });

/** Waits until the card of `name` says `state` ("Uploading", "Paused", "Uploaded", …). */
export async function waitForState(
  page: Page,
  name: string,
  state: string,
  timeoutMs = 60_000,
): Promise<void> {
  await card(page, name)
    .locator('.ferry-upload__state', { hasText: new RegExp(`^${state}$`) })
    .waitFor({ timeout: timeoutMs });
}

/** The card's progress bar value (whole percent). */
export async function percentOf(page: Page, name: string): Promise<number> {
  return Number(await card(page, name).locator('progress').getAttribute('value'));
}

export async function waitForPercent(
  page: Page,
  name: string,
  least: number,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await percentOf(page, name)) < least) {
    if (Date.now() > deadline) throw new Error(`${name} stayed below ${least}%`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Clicks the drop area and picks `paths` in the file chooser it opens. */
export async function choose(page: Page, paths: string[]): Promise<void> {
  const chooser = page.waitForEvent('filechooser');
  await page.getByRole('button', { name: TARGET }).first().click();
  await (await chooser).setFiles(paths);
}

/**
 * Drops files made in the page (random bytes) on the drop area with real drag events; returns each
 * file's SHA-256 as the page computed it.
 */
export async function dropNewFiles(
  page: Page,
  files: Record<string, number>,
): Promise<Record<string, string>> {
  const digests = await page.evaluate(async (files) => {
    const made: Record<string, string> = {};
    const transfer = new DataTransfer();
    for (const [name, size] of Object.entries(files)) {
      const bytes = new Uint8Array(size);
      for (let at = 0; at < size; at += 65_536)
        crypto.getRandomValues(bytes.subarray(at, Math.min(size, at + 65_536)));
      const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
      made[name] = [...digest].map((byte) => byte.toString(16).padStart(2, '0')).join('');
      transfer.items.add(new File([bytes], name, { type: 'application/octet-stream' }));
    }
    (globalThis as unknown as { testTransfer: DataTransfer }).testTransfer = transfer;
    return made;
  }, files);
  for (const type of ['dragenter', 'dragover', 'drop']) {
    const accepted = await page.evaluate((type) => {
      const dataTransfer = (globalThis as unknown as { testTransfer: DataTransfer }).testTransfer;
      const target = document.querySelector('.ferry-dropzone__target') as HTMLElement;
      return !target.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer }));
    }, type);
    assert.ok(accepted, `the drop area took the ${type} (called preventDefault)`);
  }
  return digests;
}

export interface FinishedEntry {
  name: string;
  href: string;
  sha256: string | undefined;
}

/** The "Finished files" list: each link's text and href, and the SHA-256 shown under it. */
export function finishedEntries(page: Page): Promise<FinishedEntry[]> {
  return page.locator('.finished .file').evaluateAll((items) =>
    items.map((item) => ({
      name: item.querySelector('a')?.textContent ?? '',
      href: item.querySelector('a')?.getAttribute('href') ?? '',
      sha256: item.querySelector('.file__digest code')?.textContent ?? undefined,
    })),
  );
}

/** Waits until the finished list holds at least the files `names`. */
export async function waitForFinished(
  page: Page,
  names: string[],
  timeoutMs = 180_000,
): Promise<FinishedEntry[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const entries = await finishedEntries(page);
    if (names.every((name) => entries.some((entry) => entry.name === name))) return entries;
    const failed = await page.locator('li.ferry-upload[data-state="failed"]').allTextContents();
    if (failed.length > 0) throw new Error(`an upload failed: ${failed.join(' | ')}`);
    if (Date.now() > deadline) {
      const cards = await page.locator('li.ferry-upload').allTextContents();
      throw new Error(
        `not finished in time; finished: ${JSON.stringify(entries)}; cards: ${cards.join(' | ')}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** What the focused element is called (its text, with visually hidden words). */
export function focused(page: Page): Promise<string> {
  return page.evaluate(() => {
    const element = document.activeElement;
    if (element === null || element === document.body) return '(nothing)';
    if (element instanceof HTMLInputElement)
      return `${element.type} ${element.labels?.[0]?.textContent ?? ''}`.trim();
    return element.textContent?.replace(/\s+/g, ' ').trim() ?? '';
  });
}

/** Presses Tab until the focused element's name matches `name`; fails after `limit` presses. */
export async function tabTo(page: Page, name: RegExp, limit = 40): Promise<void> {
  const seen: string[] = [];
  for (let i = 0; i < limit; i++) {
    await page.keyboard.press('Tab');
    const now = await focused(page);
    if (name.test(now)) return;
    seen.push(now);
  }
  throw new Error(`Tab never reached ${name}; it went through: ${seen.join(' → ')}`);
}

let axeSource: string | undefined;

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[]; failureSummary: string }[];
}

/** axe-core's violations on the page as it is now: WCAG 2.0–2.2 A and AA, and axe's best practices. */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  // Evaluated, not added as a <script>: the app's Content-Security-Policy refuses inline scripts.
  if (!(await page.evaluate(() => 'axe' in globalThis))) {
    axeSource ??= await readFile(axePath, 'utf8');
    await page.evaluate(axeSource);
  }
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
    })) as { violations: AxeViolation[] };
    return results.violations.map(({ id, impact, help, nodes }) => ({
      id,
      impact,
      help,
      nodes: nodes.map(({ target, failureSummary }) => ({ target, failureSummary })),
    }));
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

/** A full-page screenshot in test-results/web/`name`.png, the pointer off the page. */
export async function screenshot(page: Page, name: string): Promise<void> {
  await page.mouse.move(0, 0);
  await page.screenshot({ path: join(screenshotDir, `${name}.png`), fullPage: true });
}

/** Whether the page scrolls sideways (content wider than the viewport). */
export function scrollsSideways(page: Page): Promise<boolean> {
  return page.evaluate(() => document.documentElement.scrollWidth > document.documentElement.clientWidth);
}
