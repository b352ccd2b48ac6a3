// Installs the workspace on first use, so `npm start` and `npm test` work on a fresh clone.
// Runs on whatever Node starts it (the machine's own Node may be older than the pinned one):
// plain JavaScript, no dependencies.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const marker = `${root}node_modules/.package-lock.json`;
const lock = `${root}package-lock.json`;
const needed = [marker, `${root}node_modules/node/bin/node`, `${root}node_modules/.bin/ferry`];

// `npm install` rather than `npm ci`: npm 11 writes lockfiles without the other platforms' optional
// packages (Biome's binaries), and `npm ci` then refuses the lockfile as "out of sync". The
// lockfile still pins every version that gets installed.
const fresh =
  needed.every((path) => existsSync(path)) && statSync(marker).mtimeMs + 1000 >= statSync(lock).mtimeMs;
if (!fresh) {
  process.stderr.write('ferry: installing dependencies (npm install) — first run only\n');
  const result = spawnSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) {
    process.stderr.write('ferry: npm install failed; see the output above\n');
    process.exit(result.status ?? 1);
  }
}
