/**
 * Where browser tests find Chromium (Debian's, at /usr/bin/chromium, or `FERRY_CHROMIUM`) and how
 * they start it. Without it they skip, except under `FERRY_REQUIRE_SERVICES=1` (CI), where they fail.
 */
import { existsSync } from 'node:fs';

export const chromiumPath = process.env['FERRY_CHROMIUM'] ?? '/usr/bin/chromium';

/** Headless, and no connections of Chromium's own (this machine's network refuses them). */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** `undefined` when the browser tests can run; else why they are skipped. */
export function browserSkipReason(): string | undefined {
  if (existsSync(chromiumPath)) return undefined;
  const why = `no Chromium at ${chromiumPath} (apt-get install chromium, or set FERRY_CHROMIUM)`;
  if (process.env['FERRY_REQUIRE_SERVICES'] === '1') throw new Error(why);
  return why;
}
