// The browser tests drive Debian's Chromium (a test tool's own browser download cannot work on a
// machine without internet access). Installs it with apt-get when it is missing and this runs as
// root on a Debian-like system; otherwise says how, and the browser tests skip (or fail under
// FERRY_REQUIRE_SERVICES=1). Plain JavaScript, no dependencies.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const path = process.env.FERRY_CHROMIUM ?? '/usr/bin/chromium';
if (!existsSync(path)) {
  const apt = spawnSync('sh', ['-c', 'command -v apt-get'], { encoding: 'utf8' }).stdout.trim();
  if (process.getuid?.() === 0 && apt !== '') {
    process.stderr.write('ferry: installing Chromium for the browser tests (apt-get install chromium)\n');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const run = (args) => spawnSync('apt-get', args, { stdio: ['ignore', 'ignore', 'inherit'], env }).status;
    if (run(['update', '-qq']) !== 0 || run(['install', '-y', '-qq', 'chromium']) !== 0) {
      process.stderr.write('ferry: apt-get install chromium failed; the browser tests will not run\n');
    }
  } else {
    process.stderr.write(
      `ferry: no Chromium at ${path}; the browser tests are skipped. Install it (Debian: apt-get install chromium) or set FERRY_CHROMIUM.\n`,
    );
  }
}
